"""The MCP conformance suite (``npx @modelcontextprotocol/conformance@0.1.13 server``) against
``hanlin mcp serve --http``.

The scenarios that apply to any server pass. The others need the fixtures of the reference
"everything" server — tools named ``test_simple_text``, ``test_error_handling``,
``test_sampling``…, resources ``test://static-text``, prompts ``test_simple_prompt``… — which a
real server has no reason to ship, so they are not asserted (docs/mcp.md lists them).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

APPLICABLE = {
    "server-initialize",
    "ping",
    "logging-set-level",
    "completion-complete",
    "tools-list",
    "resources-list",
    "resources-subscribe",
    "resources-unsubscribe",
    "prompts-list",
    "server-sse-multiple-streams",
    "dns-rebinding-protection",
}
_LINE = re.compile(r"^([✓✗]) (\S+): (\d+) passed, (\d+) failed", re.M)


@pytest.mark.slow
def test_conformance_suite(npm_dir: Path, http_server: tuple[str, Path]) -> None:
    url, _ = http_server
    suite = npm_dir / "node_modules" / ".bin" / "conformance"
    proc = subprocess.run(
        [str(suite), "server", "--url", url], capture_output=True, text=True, timeout=300
    )
    results = {m.group(2): m.group(1) == "✓" for m in _LINE.finditer(proc.stdout)}
    assert len(results) >= 30, proc.stdout[-2000:] + proc.stderr[-2000:]
    failed = sorted(s for s in APPLICABLE if not results.get(s))
    assert not failed, f"applicable scenarios failed: {failed}\n{proc.stdout[-3000:]}"
