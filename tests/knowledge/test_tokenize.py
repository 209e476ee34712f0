"""The keyword analyzer: segmentation, normalization, and the approximate token count."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import pytest
from pydantic import ValidationError

from hanlin.knowledge.tokenize import Analyzer, AnalyzerOptions
from hanlin.text import count_tokens

SIMPLIFIED = "自然语言处理是人工智能的一个重要方向，研究人与计算机之间用自然语言进行有效通信。"
TRADITIONAL = "自然語言處理是人工智慧的一個重要方向，研究人與電腦之間用自然語言進行有效通訊。"


def analyzer(**options: object) -> Analyzer:
    return Analyzer(AnalyzerOptions(**options))  # type: ignore[arg-type]


def test_jieba_gives_real_words_and_query_matches_index() -> None:
    a = analyzer(cjk="jieba")
    doc = a.analyze(SIMPLIFIED)
    assert "自然语言" in doc and "人工智能" in doc and "计算机" in doc
    query = a.analyze("自然语言处理")
    assert query == ["自然语言", "处理"]
    assert set(query) <= set(doc)


@pytest.mark.parametrize("cjk", ["jieba", "bigram", "jieba+bigram"])
def test_every_mode_matches_a_chinese_query_inside_the_text(cjk: str) -> None:
    a = analyzer(cjk=cjk)
    doc = set(a.analyze(SIMPLIFIED))
    for q in ("自然语言处理", "人工智能", "计算机之间"):
        toks = a.analyze(q)
        assert toks and set(toks) <= doc, (cjk, q, toks)


def test_bigram_mode_emits_overlapping_bigrams() -> None:
    assert analyzer(cjk="bigram").analyze("人工智能") == ["人工", "工智", "智能"]
    # A one-character run is kept as a unigram rather than lost.
    assert analyzer(cjk="bigram").analyze("猫") == ["猫"]


def test_traditional_query_matches_simplified_text_only_with_t2s() -> None:
    for cjk in ("jieba", "bigram", "jieba+bigram"):
        on = analyzer(cjk=cjk, t2s=True)
        doc = set(on.analyze(SIMPLIFIED))
        query = on.analyze("自然語言處理")
        assert set(query) <= doc, cjk
        off = analyzer(cjk=cjk, t2s=False)
        assert not set(off.analyze("自然語言處理")) <= set(off.analyze(SIMPLIFIED)), cjk


def test_t2s_lets_jieba_segment_traditional_text() -> None:
    toks = analyzer(cjk="jieba", t2s=True).analyze(TRADITIONAL)
    assert "自然语言" in toks and "重要" in toks


def test_english_stemming() -> None:
    stem = analyzer(stem=True)
    assert stem.analyze("running") == stem.analyze("runs") == ["run"]
    assert stem.analyze("Studies") == stem.analyze("study")
    plain = analyzer(stem=False)
    assert plain.analyze("running") != plain.analyze("runs")


def test_stop_words_dropped_only_when_asked() -> None:
    text = "The effect of the drug is not significant"
    toks = analyzer(stem=False).analyze(text)
    assert toks == ["effect", "drug", "not", "significant"]  # negation kept on purpose
    assert analyzer(stem=False, stopwords=False).analyze(text)[:3] == ["the", "effect", "of"]
    zh = analyzer(cjk="jieba").analyze("我的书")
    assert "的" not in zh and "书" in zh
    assert "的" in analyzer(cjk="jieba", stopwords=False).analyze("我的书")


def test_latin_words_numbers_and_punctuation() -> None:
    a = analyzer(stem=False, stopwords=False)
    assert a.analyze("COVID-19 vaccines, 3.5 mg/kg (p<0.05)!") == [
        "covid", "19", "vaccines", "3.5", "mg", "kg", "p", "0.05",
    ]  # fmt: skip
    assert a.analyze("the patient's TNF-α level") == ["the", "patient", "tnf", "α", "level"]
    assert a.analyze("...!!! ，。？") == []
    # Full-width letters and digits are NFKC-normalized to their ASCII forms.
    assert a.analyze("ＣＯＶＩＤ－１９") == a.analyze("covid-19")


def test_mixed_chinese_english_and_other_scripts() -> None:
    toks = analyzer(cjk="jieba").analyze("使用GPT-4模型处理PDF文件")
    assert {"gpt", "4", "pdf", "模型", "处理", "文件"} <= set(toks)
    # kana and hangul have no jieba dictionary: they become bigrams.
    assert analyzer().analyze("한국어") == ["한국", "국어"]
    assert analyzer().analyze("カタカナ") == ["カタ", "タカ", "カナ"]


def test_index_and_query_time_give_identical_tokens_across_instances_and_threads() -> None:
    texts = [SIMPLIFIED, TRADITIONAL, "Running the COVID-19 trial", "混合 text 与 3.14 数字"]
    for cjk in ("jieba", "bigram", "jieba+bigram"):
        opts = AnalyzerOptions(cjk=cjk)  # type: ignore[arg-type]
        at_index = [Analyzer(opts).analyze(t) for t in texts]
        with ThreadPoolExecutor(4) as pool:
            at_query = list(pool.map(Analyzer(opts).analyze, texts * 8))
        assert at_query == at_index * 8


def test_version_tracks_options_and_is_stable() -> None:
    assert Analyzer().version == Analyzer(AnalyzerOptions()).version
    versions = {
        analyzer(cjk=c, t2s=t, stem=s, stopwords=w).version
        for c in ("jieba", "bigram", "jieba+bigram")
        for t in (True, False)
        for s in (True, False)
        for w in (True, False)
    }
    assert len(versions) == 24
    assert Analyzer().version.startswith("hanlin-analyzer/")


def test_options_reject_typos_and_are_frozen() -> None:
    with pytest.raises(ValidationError):
        AnalyzerOptions(cjk="jeiba")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        AnalyzerOptions(stemming=True)  # type: ignore[call-arg]
    opts = AnalyzerOptions()
    with pytest.raises(ValidationError):
        opts.stem = False


def test_count_tokens_approximation() -> None:
    assert count_tokens("") == 0
    assert count_tokens(" \n\t ") == 0
    assert count_tokens("自然语言") == 4
    assert count_tokens("hello") == 1  # a common word is one token
    assert count_tokens("tokenizer") == 2  # ceil(9 / 6)
    assert count_tokens("internationalization") == 4
    assert count_tokens("a, b.") == 4  # two words, two punctuation marks
    assert count_tokens("GPT-4模型。") == 1 + 1 + 1 + 2 + 1
    assert count_tokens("한국어 カナ") == 5
    text = "The quick brown fox, 自然语言处理！" * 3
    words = text.replace(",", " ").replace("！", " ").split()
    expected = (
        sum(math.ceil(len(w) / 6) if w.isascii() else len(w) for w in words) + 2 * 3
    )  # the comma and the full-width exclamation mark, three times
    assert count_tokens(text) == expected


def test_count_tokens_is_subadditive() -> None:
    text = "Supercalifragilistic 自然语言 ok, fine."
    for cut in range(len(text) + 1):
        assert count_tokens(text[:cut]) + count_tokens(text[cut:]) >= count_tokens(text)
