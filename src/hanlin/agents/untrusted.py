"""Tool and MCP results as the model reads them: screened for injection (``guard.injection``:
flag, strip or drop with a notice) and put in an untrusted block, so a web page or a tool's
output can be read but not obeyed. What fired is recorded on the tool's span by rule id."""

from __future__ import annotations

from typing import Any

from hanlin.access import caller as access
from hanlin.agents.tools.base import ToolResult
from hanlin.config import GuardSettings
from hanlin.guard.injection import screen
from hanlin.guard.policy import injection_mode
from hanlin.guard.untrusted import wrap


def untrusted_result(settings: GuardSettings, tool: str, result: ToolResult, sp: Any) -> str:
    """The text of a successful ``result`` of ``tool`` as the model's tool message."""
    mode = injection_mode(settings, key=access.current().user or None)
    checked = screen(result.content, mode, settings.allowed_link_hosts)
    if checked.findings:
        sp.set_attribute("hanlin.guard.injection.rules", checked.rules)
        sp.set_attribute("hanlin.guard.injection.mode", mode)
        sp.add_event(f"hanlin.guard.{mode}", {"hanlin.guard.rule": checked.rules})
    return wrap(checked.text, f"tool:{tool}")
