"""Citation precision and recall in the sense of ALCE (Gao et al. 2023, "Enabling Large
Language Models to Generate Text with Citations"), computed as its reference code does.

The answer is cut into sentences (statements); markers like ``[2]`` belong to the sentence
they follow. **Recall**: a statement counts when it cites something and the cited passages,
joined, support it; the share of statements that count. **Precision**: of all citations made,
the share that are not irrelevant — a citation of a supported statement with several citations
is irrelevant when its passage alone does not support the statement and the others without it
still do. "Supports" is an entailment judgement: an NLI or LLM judge
(:mod:`hanlin.evals.judge`), or, without one, :func:`lexical_support`, a clearly weaker proxy
whose metrics carry the suffix ``_lexical``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from hanlin.evals.scoring import answer_tokens
from hanlin.rag.citations import cited_numbers
from hanlin.rag.extractive import split_sentences

#: premise, claim → does the premise support the claim? None when it could not be judged
Support = Callable[[str, str], bool | None]

_MARKER = re.compile(r"[ \t]*[\[【]\s*\d{1,4}(?:\s*[,，、;；]\s*\d{1,4})*\s*[\]】]")
_QUOTES = "「」『』“”‘’\"'"
#: the lexical proxy: this share of a claim's tokens must occur in the passage
LEXICAL_THRESHOLD = 0.7


class Unjudged(Exception):
    """The judge gave no usable verdict: the example's judged metrics stay empty."""


@dataclass(slots=True)
class Statement:
    text: str  # without its citation markers
    cites: list[int]


def statements(answer: str) -> list[Statement]:
    """The answer's sentences with the citation numbers each carries. Every line is cut on
    its own (an answer's lines are not soft-wrapped prose); markers standing alone after a
    sentence join it; a line ending in a colon with no citation ("From the sources:")
    introduces what follows and is no statement."""
    out: list[Statement] = []
    pieces = [
        line[start:end] for line in answer.splitlines() for start, end in split_sentences(line)
    ]
    for piece in pieces:
        cites = cited_numbers(piece)
        text = _MARKER.sub("", piece).strip().strip(_QUOTES).strip()
        if not answer_tokens(text):  # markers (and punctuation) only: the previous sentence's
            if out:
                out[-1].cites += [n for n in cites if n not in out[-1].cites]
            continue
        if not cites and text.endswith((":", "：")):
            continue
        out.append(Statement(text, cites))
    return out


def citation_scores(
    answer: str, passages: dict[int, str], supports: Support
) -> dict[str, float] | None:
    """ALCE citation recall and precision of ``answer`` whose markers number ``passages``;
    None when it makes no statement (a refusal, an empty answer). Raises :class:`Unjudged`
    when ``supports`` cannot judge one of the pairs it needs."""
    found = statements(answer)
    if not found:
        return None

    def judged(premise: str, claim: str) -> bool:
        verdict = supports(premise, claim)
        if verdict is None:
            raise Unjudged(f"no verdict on {claim[:60]!r}")
        return verdict

    supported = 0
    precise = 0
    total_cites = 0
    for st in found:
        refs = st.cites
        total_cites += len(refs)
        if not refs or any(n not in passages for n in refs):
            continue  # an uncited statement, or a marker with no passage, supports nothing
        joint = judged("\n\n".join(passages[n] for n in refs), st.text)
        supported += joint
        if not joint:
            continue
        if len(refs) == 1:
            precise += 1
            continue
        for n in refs:
            if judged(passages[n], st.text):
                precise += 1
                continue
            others = "\n\n".join(passages[m] for m in refs if m != n)
            if not judged(others, st.text):
                precise += 1  # not sufficient alone, but needed: not irrelevant
    return {
        "recall": supported / len(found),
        "precision": precise / total_cites if total_cites else 0.0,
    }


def lexical_support(premise: str, claim: str) -> bool:
    """The no-judge proxy: at least :data:`LEXICAL_THRESHOLD` of the claim's tokens (words,
    each CJK character one token, SQuAD-normalised) occur in the premise. Quoted evidence
    passes; a paraphrase may not, and a contradiction using the same words does."""
    claim_tokens = answer_tokens(claim)
    if not claim_tokens:
        return False
    have = set(answer_tokens(premise))
    return sum(t in have for t in claim_tokens) / len(claim_tokens) >= LEXICAL_THRESHOLD
