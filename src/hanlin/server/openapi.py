"""Print the server's OpenAPI spec: ``python -m hanlin.server.openapi > docs/openapi.json``.

The spec does not depend on settings or on what is in ``HANLIN_HOME``, so the committed file
can be compared with the app in a test.
"""

from __future__ import annotations

import json
import sys
import tempfile
from typing import Any


def spec() -> dict[str, Any]:
    """The OpenAPI document of an app built with default settings in a scratch home."""
    from pathlib import Path

    from hanlin.config import ServerSettings, Settings
    from hanlin.server.app import create_app

    with tempfile.TemporaryDirectory(prefix="hanlin-openapi-") as home:
        # arguments win over hanlin.toml and HANLIN_* (a non-loopback host would need keys)
        settings = Settings(home=Path(home), server=ServerSettings())
        return create_app(settings).openapi()


def render() -> str:
    return json.dumps(spec(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
