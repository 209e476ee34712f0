"""An agent's prompts, read from the prompt registry (:mod:`hanlin.prompts`) when the agent is
opened — every run and every ``agent:`` request opens it, so a label moved is used by the next
run without a restart.

The system prompt is the registry prompt an agent definition names (``prompt: agent.assistant``)
at its label (``prompt_label``, else ``prompts.label``); its ``system`` text, when it has both,
is what it falls back to if the registry cannot be read. Planner mode reads
``agent.planner.plan`` / ``replan`` / ``subtask`` / ``report``, and conversation memory
``agent.memory.summarize``, at the same label.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hanlin.agents.tool_kinds import AgentSpecError
from hanlin.config import Settings
from hanlin.errors import HanlinError, NotFoundError
from hanlin.prompts import prompt_library
from hanlin.prompts.library import Resolved

PLANNER_KEYS = ("plan", "replan", "subtask", "report")


@dataclass(slots=True)
class AgentPrompts:
    """What an agent run uses: the system prompt, the planner's prompts (planner mode only)
    and notes on any prompt that came from the bundled files instead of the registry."""

    system: str | None
    planner: dict[str, Resolved] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def read_agent_prompts(
    agent: str,
    settings: Settings,
    *,
    prompt: str | None,
    system: str | None,
    label: str | None,
    planner: bool,
) -> AgentPrompts:
    """The prompts of agent ``agent`` (blocking: run it in a thread from async code).

    Raises :class:`AgentSpecError` when ``prompt`` is not in the registry, and the registry's
    error when it cannot be read and there is no ``system`` text to fall back to."""
    library = prompt_library(settings)
    label = label or settings.prompts.label
    out = AgentPrompts(system)
    if prompt is not None:
        try:
            found = library.resolve(prompt, label)
        except NotFoundError as exc:
            raise AgentSpecError(
                f"agent '{agent}' names the prompt '{prompt}', which the registry does not have "
                f"({exc.message})",
                hint=f"create it with `hanlin prompt create {prompt} --file FILE`, or fix the "
                "agent's `prompt:`",
            ) from None
        except (HanlinError, OSError) as exc:
            if system is None:
                raise
            out.notes.append(f"the prompt registry cannot be read ({exc}); used `system`")
        else:
            out.system = found.fill()
            if found.note:
                out.notes.append(found.note)
    if planner:
        for key in PLANNER_KEYS:
            found = library.resolve(f"agent.planner.{key}", label)
            out.planner[key] = found
            if found.note:
                out.notes.append(found.note)
    return out


def summarize_prompt(settings: Settings, label: str | None) -> Resolved:
    """Conversation memory's summary request at ``label`` (never raises: bundled fallback)."""
    return prompt_library(settings).resolve(
        "agent.memory.summarize", label or settings.prompts.label
    )
