from hanlin.cli.main import main

main()
