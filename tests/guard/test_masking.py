"""Placeholders: stable per value, never reused, restored in whole and in streamed answers."""

from __future__ import annotations

import json
import random

from hanlin.guard.detect import detector
from hanlin.guard.masking import Masker, mask_text

A, B = "13812345678", "13987654321"
MAIL = "li.lei@example.com"


def _masker() -> Masker:
    return Masker(detector())


def test_the_same_value_gets_the_same_placeholder() -> None:
    m = _masker()
    first = m.mask(f"{A} 和 {B}，再打 {A}")
    second = m.mask(f"回复 {B} 与 {MAIL}")
    assert first == "<PHONE_1> 和 <PHONE_2>，再打 <PHONE_1>"
    assert second == "回复 <PHONE_2> 与 <EMAIL_1>"
    assert m.values == {"<PHONE_1>": A, "<PHONE_2>": B, "<EMAIL_1>": MAIL}
    assert m.counts == {"PHONE": 4, "EMAIL": 1}


def test_full_width_and_separated_forms_restore_as_written() -> None:
    m = _masker()
    text = "电话 １３８１２３４５６７８ 或 138-1234-5678"
    masked = m.mask(text)
    assert masked == "电话 <PHONE_1> 或 <PHONE_2>"
    assert m.restore(masked) == text


def test_placeholders_already_in_the_text_are_never_handed_out_or_restored() -> None:
    m = _masker()
    texts = [f"我输入了 <PHONE_1> 字样，号码 {A}"]
    m.reserve(texts)
    masked = m.mask(texts[0])
    assert masked == "我输入了 <PHONE_1> 字样，号码 <PHONE_2>"
    assert m.restore("<PHONE_1> / <PHONE_2> / <PHONE_9>") == f"<PHONE_1> / {A} / <PHONE_9>"


def test_restore_inside_json_escapes_the_value() -> None:
    m = Masker(detector())
    m.placeholder("SECRET", 'a"b\\c')
    args = json.dumps({"k": "<SECRET_1>"})
    assert json.loads(m.restore(args, json_string=True)) == {"k": 'a"b\\c'}


def test_bare_placeholders_for_embeddings_and_per_document_numbering_at_ingest() -> None:
    bare = Masker(detector(), numbered=False)
    assert bare.mask(f"{A} {B}") == "<PHONE> <PHONE>"
    assert not bare.values  # nothing kept to restore
    text, counts = mask_text(detector(), f"{A}、{A}、{B}")
    assert text == "<PHONE_1>、<PHONE_1>、<PHONE_2>" and counts == {"PHONE": 3}


def _answer_masker() -> tuple[Masker, str, str]:
    m = _masker()
    raw = f"好的：{A}，{B}，{MAIL}；<PHONE_9> 不是我的；a < b > c，<PHONE_"
    masked = m.mask(raw)
    return m, masked, raw


def _stream(m: Masker, pieces: list[str]) -> tuple[str, int]:
    r = m.stream_restorer()
    out, most_held = [], 0
    for p in pieces:
        out.append(r.feed(p))
        most_held = max(most_held, len(r.held))
    out.append(r.flush())
    return "".join(out), most_held


def test_a_placeholder_split_at_every_position_is_restored() -> None:
    m, masked, raw = _answer_masker()
    for cut in range(len(masked) + 1):
        text, held = _stream(m, [masked[:cut], masked[cut:]])
        assert text == raw, cut
        assert held < m.longest
    for a in range(len(masked) + 1):
        for b in range(a, len(masked) + 1):
            assert _stream(m, [masked[:a], masked[a:b], masked[b:]])[0] == raw


def test_random_streams_never_leak_a_placeholder_or_corrupt_text() -> None:
    m, masked, raw = _answer_masker()
    rng = random.Random(7)
    for _ in range(2000):
        cuts = sorted(rng.sample(range(1, len(masked)), rng.randint(1, 12)))
        pieces = [masked[i:j] for i, j in zip([0, *cuts], [*cuts, len(masked)], strict=True)]
        text, _ = _stream(m, pieces)
        assert text == raw


def test_only_a_possible_placeholder_is_held_back() -> None:
    m, _, _ = _answer_masker()
    r = m.stream_restorer()
    assert r.feed("a < b") == "a < b"  # "< b" cannot become a placeholder
    assert r.feed(" <PHO") == " " and r.held == "<PHO"
    assert r.feed("TO>") == "<PHOTO>"  # not one of ours: released as it is
    assert r.feed("<PHONE_1") == "" and r.feed(">!") == f"{A}!"
    assert r.feed("<EMAIL_1") == "" and r.flush() == "<EMAIL_1"  # the stream ended mid-way


def test_a_masker_that_masked_nothing_holds_nothing() -> None:
    r = _masker().stream_restorer()
    assert r.feed("<PHONE_") == "<PHONE_"
