"""The analyzer's fast paths (jieba-exact DAG segmenter, cached Latin words and Han runs) give
exactly the tokens the straightforward implementation gave, so existing indexes stay valid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hanlin.knowledge.segment import DagSegmenter
from hanlin.knowledge.tokenize import _HAN_RUN_RE, Analyzer, AnalyzerOptions, _make_jieba

EVAL = Path(__file__).resolve().parents[3] / "shared" / "eval"

SENTENCES = [
    "向量数据库使用近似最近邻索引，常见的算法是分层可导航小世界图。",
    "我们在北京大学的实验室里研究自然语言处理和机器翻译。",
    "結巴分詞在繁體中文上的效果不如簡體中文",  # Traditional: jieba's dictionary is Simplified
    "〇一二三四五六七八九",  # 〇 lies outside jieba's character range
    "㐀㐁中国人民银行\u9fd6\u9fef研究院",  # extension A and the top of the BMP block
    "豈更車賈滑串句龜",  # compatibility ideographs
    "长江大桥南京市长江大桥研究生命起源",  # classic ambiguous segmentations
    "的",
    "",
]


@pytest.fixture(scope="module")
def jieba_tokenizer() -> object:
    return _make_jieba()


def test_dag_segmenter_matches_jieba_word_for_word(jieba_tokenizer: object) -> None:
    seg = DagSegmenter.from_jieba(jieba_tokenizer)
    runs = [m.group() for s in SENTENCES for m in _HAN_RUN_RE.finditer(s)]
    corpus = EVAL / "zh" / "cmrc2018-trial" / "corpus.jsonl"
    if corpus.exists():  # real paragraphs: thousands of runs, names and rare words included
        with corpus.open(encoding="utf-8") as f:
            for line in list(f)[:300]:
                runs += [m.group() for m in _HAN_RUN_RE.finditer(json.loads(line)["text"])]
    assert len(runs) > 8
    for run in runs:
        assert seg.cut(run) == jieba_tokenizer.lcut(run, HMM=False), run  # type: ignore[attr-defined]


# Tokens the analyzer gave before the fast paths (PR "ingest 2x"): the index format is unchanged.
GOLDEN = {
    "The cats' running: covid-19 e.g. 3.5-fold v1.2.3 don’t STOP_words are NOT ignored": [
        "cat", "run", "covid", "19", "e", "g", "3", "5", "fold", "v1", "2", "3", "don", "t",
        "stop", "word", "not", "ignor",
    ],
    "HNSW 索引在向量数据库中很常见，BM25 檢索依賴分詞 (jieba) running tests 2024年": [
        "hnsw", "索引", "向量", "数据库", "中", "很", "常见", "引在", "在向", "量数", "数据",
        "据库", "库中", "中很", "很常", "bm25", "检索", "依赖", "分词", "索依", "赖分", "jieba",
        "run", "test", "2024", "年",
    ],
    "東京タワー와 서울 Tower 〇㐀丽": [
        "东京", "タワ", "ワー", "ー와", "서울", "tower", "〇", "㐀", "丽", "〇㐀", "㐀丽",
    ],
}  # fmt: skip


@pytest.mark.parametrize("text", list(GOLDEN))
def test_english_and_mixed_text_give_the_same_tokens_as_before(text: str) -> None:
    analyzer = Analyzer()
    assert analyzer.analyze(text) == GOLDEN[text]
    assert analyzer.analyze(text) == GOLDEN[text]  # second time from the caches: same tokens


def test_caches_belong_to_one_set_of_options() -> None:
    stemmed, plain = Analyzer(), Analyzer(AnalyzerOptions(stem=False, stopwords=False))
    text = "The runners were running; 研究生命起源"
    assert stemmed.analyze(text)[:3] == ["runner", "were", "run"]
    assert plain.analyze(text)[:4] == ["the", "runners", "were", "running"]
    assert Analyzer(AnalyzerOptions(cjk="bigram")).analyze("研究生命") == ["研究", "究生", "生命"]
    assert stemmed.analyze("研究生命") == ["研究", "生命", "究生"]


def test_cached_default_dictionary_segments_like_jieba(
    jieba_tokenizer: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HANLIN_CACHE", str(tmp_path))
    built: list[int] = []

    def make() -> object:
        built.append(1)
        return jieba_tokenizer

    cold = DagSegmenter.default(make)  # scores jieba's dictionary and writes the cache
    [cached] = (tmp_path / "segment").iterdir()
    warm = DagSegmenter.default(make)  # from the cache: jieba is not loaded again
    assert built == [1]
    runs = [m.group() for s in SENTENCES for m in _HAN_RUN_RE.finditer(s)]
    for run in runs:
        expected = jieba_tokenizer.lcut(run, HMM=False)  # type: ignore[attr-defined]
        assert cold.cut(run) == warm.cut(run) == expected, run
    cached.write_bytes(cached.read_bytes()[:5000])  # damaged: rebuilt, not trusted
    again = DagSegmenter.default(make)
    run = "长江大桥南京市长江大桥"
    assert built == [1, 1] and again.cut(run) == warm.cut(run)
    assert DagSegmenter.default(make) and built == [1, 1]  # the rewritten cache is whole
