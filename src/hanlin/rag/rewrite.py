"""Conversation-aware query rewriting: a follow-up question becomes a standalone one.

With a model that follows instructions, the model rewrites the question (``rewrite.*.txt``).
Without one (offline, the bundled base model) a deterministic fallback folds the key terms of
the previous user question into a follow-up: "它的首都是哪里？" after "法国有多少人口？" is
searched as "它的首都是哪里？ 法国 人口". Only questions that look like follow-ups are folded
(a pronoun or reference word, or at most one content word), so a new topic is not polluted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from hanlin.knowledge.tokenize import Analyzer, AnalyzerOptions
from hanlin.models.types import Message

#: question words: they say what is asked, not what it is about
_QUESTION_WORDS = (
    "什么 甚麼 什麼 哪 哪一 哪个 哪個 哪里 哪裡 哪儿 哪些 谁 誰 多少 几 幾 怎么 怎麼 怎样 怎樣 "
    "为什么 為什麼 如何 何 何时 何時 何地 是否 吗 嗎 呢 请问 請問 告诉 告訴 一下 "
    "what which who whom whose when where why how does did do many much tell me please"
)
QUESTION_WORDS = frozenset(_QUESTION_WORDS.split())
# references to something said before (Chinese pronouns are single characters inside words)
_ZH_REFERENCE_RE = re.compile(
    r"[它他她其该該此]|[这這][个個些里裡]?|那[个個些里裡]|还有|還有|呢[？?]?$"
)
_EN_REFERENCE_RE = re.compile(
    r"\b(it|its|it's|they|them|their|theirs|this|that|these|those|he|him|his|she|her|there|"
    r"the same|what about|and)\b",
    re.IGNORECASE,
)
_words = Analyzer(AnalyzerOptions(cjk="jieba", t2s=False, stem=False, stopwords=True))


def key_terms(text: str) -> list[str]:
    """Content words of a question in order (question words, stop words and single Han
    characters dropped), as surface forms: jieba words for Chinese, words for English."""
    out: list[str] = []
    for t in _words.analyze(text):
        if t in QUESTION_WORDS or t in out:
            continue
        if len(t) == 1 and not t.isdigit():
            continue
        out.append(t)
    return out


def is_follow_up(question: str) -> bool:
    """Whether a question probably depends on the conversation before it."""
    if _ZH_REFERENCE_RE.search(question) or _EN_REFERENCE_RE.search(question):
        return True
    return len(key_terms(question)) <= 1


def user_turns(history: Sequence[Message]) -> list[str]:
    return [m.text for m in history if m.role == "user" and m.text.strip()]


def fold_history(question: str, history: Sequence[Message], max_terms: int = 8) -> str:
    """The deterministic rewrite: the question plus the key terms of the previous user
    question(s) it does not already contain. Returns the question unchanged when it does not
    look like a follow-up or there is no earlier question."""
    turns = user_turns(history)
    if not turns or not is_follow_up(question):
        return question
    present = set(key_terms(question))
    terms: list[str] = []
    # the previous question; if it was itself a follow-up, the one before it as well
    for turn in reversed(turns[-2:] if is_follow_up(turns[-1]) else turns[-1:]):
        for t in key_terms(turn):
            if t not in present and t not in terms:
                terms.append(t)
    if not terms:
        return question
    return f"{question.rstrip()} {' '.join(terms[:max_terms])}"


def history_text(history: Sequence[Message], max_chars: int = 2000) -> str:
    """The recent conversation as ``User: …`` / ``Assistant: …`` lines for the rewrite prompt."""
    lines: list[str] = []
    used = 0
    for m in reversed(history):
        if m.role not in ("user", "assistant") or not m.text.strip():
            continue
        label = "User" if m.role == "user" else "Assistant"
        line = f"{label}: {' '.join(m.text.split())}"
        if used + len(line) > max_chars:
            break
        lines.append(line)
        used += len(line)
    return "\n".join(reversed(lines))


def clean_rewrite(text: str, question: str) -> str | None:
    """The model's rewrite, or None when it is unusable (empty, rambling, several lines)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return None
    out = lines[0]
    for prefix in ("Standalone question:", "Rewritten question:", "改写后的问题：", "问题："):
        if out.startswith(prefix):
            out = out[len(prefix) :].strip()
    out = out.strip("\"'“”「」 ")
    if not out or len(out) > max(200, 4 * len(question)):
        return None
    return out
