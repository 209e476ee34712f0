"""Chat templates: training text matches what the gateway serves; loss only on replies."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from hanlin.errors import ConfigError
from hanlin.models.providers.llamacpp_prompt import PROMPT_FORMATS, render_prompt
from hanlin.models.types import Message
from hanlin.tune.loading import load_tokenizer
from hanlin.tune.prepare import sft_features
from hanlin.tune.templates import resolve_template, tokenize_segments

CONV = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is 2 + 3?"},
    {"role": "assistant", "content": "5."},
    {"role": "user", "content": "Who wrote Hamlet?"},
    {"role": "assistant", "content": "Shakespeare."},
]


def _gateway_messages(msgs: list[dict[str, str]]) -> list[Message]:
    return [Message(role=m["role"], content=m["content"]) for m in msgs]  # type: ignore[arg-type]


@pytest.mark.parametrize("with_examples", [False, True])
def test_training_prompt_is_the_served_prompt(with_examples: bool) -> None:
    """The deployed model is prompted by llamacpp's transcript format: training uses the same."""
    tmpl = resolve_template("transcript", with_examples=with_examples)
    fmt = PROMPT_FORMATS["transcript"]
    if not with_examples:
        fmt = replace(fmt, preamble="", examples=())
    head = CONV[:4]
    served = render_prompt(_gateway_messages(head), fmt)
    assert tmpl.prompt(head) == served
    # prompt + trained completion = the text of the whole conversation, as served
    full = "".join(s.text for s in tmpl.segments(CONV))
    assert full == served + tmpl.completion("Shakespeare.")
    assert tmpl.completion("Shakespeare.") == " Shakespeare.\n"
    assert ("Water boils" in full) is with_examples


def test_loss_is_taken_only_on_assistant_replies(tiny_model: Path) -> None:
    tok = load_tokenizer(tiny_model)
    tmpl = resolve_template("transcript", tok)
    ids, labels = tokenize_segments(tmpl.segments(CONV), tok, max_len=512)
    assert ids[0] == tok.bos_token_id and labels[0] == -100
    assert ids[-1] == tok.eos_token_id and labels[-1] == tok.eos_token_id
    trained = [i for i, lab in zip(ids, labels, strict=True) if lab != -100]
    assert tok.decode(trained[:-1]) == " 5.\n Shakespeare.\n"
    masked = tok.decode([i for i, lab in zip(ids, labels, strict=True) if lab == -100])
    assert "Be brief" in masked and "Who wrote Hamlet?" in masked and "Shakespeare" not in masked
    # cutting at max_len keeps ids and labels aligned
    short_ids, short_labels = tokenize_segments(tmpl.segments(CONV), tok, max_len=10)
    assert len(short_ids) == len(short_labels) == 10


def test_examples_without_a_reply_left_are_dropped(tiny_model: Path) -> None:
    tok = load_tokenizer(tiny_model)
    tmpl = resolve_template("transcript", tok)
    long_q = {
        "messages": [
            {"role": "user", "content": "word " * 100},
            {"role": "assistant", "content": "ok"},
        ]
    }
    short = {"messages": CONV[1:3]}
    feats = sft_features([long_q, short], tmpl, tok, max_len=32)
    assert len(feats) == 1
    with pytest.raises(ConfigError, match="max_len"):
        sft_features([long_q], tmpl, tok, max_len=32)


def test_the_tokenizers_own_template_is_used_and_masked(tiny_model: Path) -> None:
    tok = load_tokenizer(tiny_model)
    tok.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    tmpl = resolve_template("auto", tok)
    assert tmpl.name == "tokenizer"
    segs = tmpl.segments(CONV)
    assert [s.text for s in segs if s.train] == ["5.\n", "Shakespeare.\n"]
    assert tmpl.prompt(CONV[:2]).endswith("<|user|>What is 2 + 3?\n<|assistant|>")
    # without a template of its own, auto falls back to the served transcript format
    tok.chat_template = None
    assert resolve_template("auto", tok).name == "transcript"
    with pytest.raises(ConfigError, match="no chat template"):
        resolve_template("tokenizer", tok)


def test_other_formats_and_unknown_names() -> None:
    gemma = resolve_template("gemma")
    assert (
        gemma.prompt(CONV[1:2]) == "<start_of_turn>user\nWhat is 2 + 3?<end_of_turn>\n"
        "<start_of_turn>model\n"
    )
    assert gemma.completion("5.") == "5.<end_of_turn>\n"
    custom = resolve_template({"base": "transcript", "user": "Q: {text}\n"})
    assert custom.prompt(CONV[1:2]) == "Q: What is 2 + 3?\nAssistant:"
    with pytest.raises(ConfigError, match="unknown prompt_format 'alpaca'"):
        resolve_template("alpaca")
