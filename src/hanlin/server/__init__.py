"""The HTTP server behind ``hanlin serve``: an OpenAI-compatible API (``/v1``), Hanlin's own
knowledge-base and compute routes (``/api``) and the web UI, all thin layers over the library.

Build the app with :func:`hanlin.server.app.create_app`; see docs/server.md.
"""
