"""The prompts Hanlin ships: RAG's templates, the agents' prompts and the evaluation judge's,
one file each under ``hanlin/prompts/builtin/<name>.txt`` (in the wheel). They are version 1
of their prompt in every registry (seeded on first use, label ``production``), and what a
reader falls back to when the registry cannot be read.

The variables declared here are the ones Hanlin fills in: a version that needs another one
cannot be given the label Hanlin reads (see :meth:`hanlin.prompts.library.PromptLibrary.
set_label`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

from hanlin.prompts.base import NewVersion, Variable, VarType


@dataclass(frozen=True, slots=True)
class BuiltinPrompt:
    name: str
    #: what the prompt is for (shown by ``hanlin prompt ls``)
    purpose: str
    #: the variables Hanlin fills in: name → (type, description)
    variables: tuple[tuple[str, VarType, str], ...] = ()

    @property
    def text(self) -> str:
        return bundled_text(self.name)

    def version(self) -> NewVersion:
        """Version 1 as the registry stores it."""
        return NewVersion(
            text=self.text,
            variables=[Variable(name=n, type=t, description=d) for n, t, d in self.variables],
            message="built-in: the prompt bundled with Hanlin",
        )

    def provides(self) -> set[str]:
        return {n for n, _, _ in self.variables}


_SOURCES: tuple[str, VarType, str] = (
    "sources",
    "str",
    "the numbered sources, each as rag.source renders it",
)
_QUESTION: tuple[str, VarType, str] = ("question", "str", "the user's last question")

BUILTINS: tuple[BuiltinPrompt, ...] = (
    *(
        BuiltinPrompt(
            f"rag.answer.{lang}", f"RAG: system message of a generated answer ({lang})", (_SOURCES,)
        )
        for lang in ("en", "zh")
    ),
    *(
        BuiltinPrompt(
            f"rag.rewrite.{lang}",
            f"RAG: make a follow-up question standalone ({lang})",
            (("history", "str", "the conversation so far, one turn per line"), _QUESTION),
        )
        for lang in ("en", "zh")
    ),
    *(
        BuiltinPrompt(f"rag.refuse.{lang}", f"RAG: the refusal when nothing answers ({lang})")
        for lang in ("en", "zh")
    ),
    *(
        BuiltinPrompt(
            f"rag.extractive.{lang}",
            f"RAG: the frame around quoted evidence ({lang})",
            (("quotes", "str", "the quoted sentences, one per line, each with its [n]"),),
        )
        for lang in ("en", "zh")
    ),
    BuiltinPrompt(
        "rag.source",
        "RAG: one numbered source inside {sources}",
        (
            ("n", "int", "the source's number"),
            ("where", "str", "title › heading (p. 3)"),
            ("text", "str", "the chunk's text"),
        ),
    ),
    BuiltinPrompt("agent.assistant", "agents: the built-in assistant's system prompt"),
    BuiltinPrompt(
        "agent.planner.plan",
        "agents (planner mode): the planning system message",
        (
            ("tools", "str", "the tools, with a short description each"),
            ("max_subtasks", "int", "the most subtasks a plan may have"),
        ),
    ),
    BuiltinPrompt(
        "agent.planner.replan",
        "agents (planner mode): re-plan after a failed subtask",
        (
            ("id", "str", "the failed subtask's id"),
            ("title", "str", "the failed subtask's title"),
            ("error", "str", "why it failed"),
            ("done", "str", "ids of the subtasks done"),
            ("max_subtasks", "int", "the most subtasks a plan may have"),
        ),
    ),
    BuiltinPrompt(
        "agent.planner.subtask",
        "agents (planner mode): the task of one subtask",
        (
            ("goal", "str", "the whole goal"),
            ("context", "str", "results of the subtasks it depends on"),
            ("id", "str", "the subtask's id"),
            ("title", "str", "the subtask's title"),
            ("description", "str", "the subtask's description"),
        ),
    ),
    BuiltinPrompt(
        "agent.planner.report",
        "agents (planner mode): the final report from the subtasks' results",
        (("goal", "str", "the whole goal"), ("results", "str", "each subtask's result")),
    ),
    BuiltinPrompt(
        "eval.judge.support",
        "evaluations: does a passage support a claim (citation metrics; JSON verdict)",
        (
            ("premise", "str", "the cited passage"),
            ("claim", "str", "the sentence that cites it"),
        ),
    ),
    BuiltinPrompt(
        "eval.judge.correct",
        "evaluations: is an answer correct against the gold answers (JSON verdict)",
        (
            ("question", "str", "the question"),
            ("gold", "str", "the gold answers, as a JSON list"),
            ("answer", "str", "the answer to grade"),
        ),
    ),
    BuiltinPrompt(
        "agent.memory.summarize",
        "agents: fold older conversation turns into a summary",
        (
            ("words", "int", "the summary's length, in words at most"),
            ("previous", "str", "the earlier summary, if any, with its heading"),
            ("conversation", "str", "the turns to summarize"),
        ),
    ),
)

BY_NAME = {b.name: b for b in BUILTINS}


@cache
def bundled_text(name: str) -> str:
    """The bundled text of a built-in prompt (its file, without the trailing newline)."""
    path = resources.files("hanlin.prompts").joinpath("builtin", f"{name}.txt")
    return path.read_text(encoding="utf-8").rstrip("\n")


def seeds() -> list[tuple[str, NewVersion]]:
    """Every built-in prompt as the store seeds it."""
    return [(b.name, b.version()) for b in BUILTINS]
