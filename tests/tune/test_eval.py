"""Evaluation: answer scoring (English and Chinese), loss over completions, the comparison files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from hanlin.tune.evaluate import (
    EvalExample,
    EvalReport,
    Sample,
    answer_tokens,
    contains_answer,
    evaluate,
    exact_match,
    f1_score,
    read_comparison,
    write_comparison,
)

# --- scoring ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prediction", "reference", "em"),
    [
        ("The Eiffel Tower!", "eiffel tower", 1.0),  # case, punctuation, articles
        ("  Paris ", "Paris.", 1.0),
        ("an apple", "apple pie", 0.0),
        ("北京。", "北京", 1.0),  # Chinese punctuation
        ("「踢爆」", "踢爆", 1.0),
        ("ＡＢＣ１２３", "abc123", 1.0),  # full-width forms
        ("4分钟", "4 分钟", 1.0),  # spaces next to CJK do not matter
        ("北京市", "北京", 0.0),
    ],
)
def test_exact_match(prediction: str, reference: str, em: float) -> None:
    assert exact_match(prediction, reference) == em


def test_f1_is_word_level_for_english_and_character_level_for_chinese() -> None:
    assert f1_score("the cat sat down", "a cat sat") == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))
    # 北京市 vs 北京: precision 2/3, recall 1
    assert f1_score("北京市", "北京") == pytest.approx(0.8)
    assert f1_score("上海", "北京") == 0.0
    assert answer_tokens("在 2018年，CMRC 比赛") == ["在", "2018", "年", "cmrc", "比", "赛"]
    assert f1_score("", "") == 1.0
    assert f1_score("something", "") == 0.0


def test_contains_answer() -> None:
    assert contains_answer("答案是：北京。", "北京") == 1.0
    assert contains_answer("It is the Eiffel Tower, in Paris", "eiffel tower") == 1.0
    assert contains_answer("北 京", "北京") == 1.0
    assert contains_answer("南京", "北京") == 0.0
    assert contains_answer("anything", "...") == 0.0  # nothing to find


# --- the model side ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_and_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, object]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tests.tune.tiny import build_tiny_model

    path = build_tiny_model(tmp_path_factory.mktemp("tiny-eval") / "model")
    return AutoModelForCausalLM.from_pretrained(str(path)), AutoTokenizer.from_pretrained(str(path))


EXAMPLES = [
    EvalExample("User: 中国的首都是哪里？\nAssistant:", " 北京。"),
    EvalExample("User: What is 2 + 3?\nAssistant:", " 5."),
    EvalExample("User: Who wrote Hamlet?\nAssistant:", " Shakespeare."),
]


def test_loss_is_over_completion_tokens_only(model_and_tokenizer: tuple[object, object]) -> None:
    import torch

    model, tok = model_and_tokenizer
    report = evaluate(model, tok, EXAMPLES, generate=False)
    assert report.n == 3
    assert report.exact_match is None  # nothing generated

    total, count = 0.0, 0
    for ex in EXAMPLES:
        # the tiny tokenizer puts BOS in front of text, like Gemma's
        prompt = [tok.bos_token_id, *tok(ex.prompt, add_special_tokens=False)["input_ids"]]
        answer = [*tok(ex.completion, add_special_tokens=False)["input_ids"], tok.eos_token_id]
        ids = torch.tensor([prompt + answer])
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
        for pos in range(len(prompt), len(prompt) + len(answer)):
            total -= float(logp[pos - 1, ids[0, pos]])
            count += 1
    assert report.loss == pytest.approx(total / count, rel=1e-4)
    assert report.perplexity == pytest.approx(math.exp(total / count), rel=1e-4)

    # a longer prompt changes nothing about which tokens are scored
    longer = [EvalExample("Context.\n" + ex.prompt, ex.completion) for ex in EXAMPLES]
    assert evaluate(model, tok, longer, generate=False).loss != pytest.approx(report.loss, rel=1e-9)


def test_bos_comes_from_what_the_tokenizer_does_not_its_flag(
    model_and_tokenizer: tuple[object, object],
) -> None:
    """Like the Gemma tokenizer read from a GGUF: BOS added by the post-processor while
    ``add_bos_token`` says False. The loss must be taken with BOS in front, as llama.cpp serves."""
    import copy

    import torch
    from tokenizers.processors import TemplateProcessing

    model, tok = model_and_tokenizer
    tok = copy.deepcopy(tok)
    tok.backend_tokenizer.post_processor = TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", tok.bos_token_id)]
    )
    assert tok("a")["input_ids"][0] == tok.bos_token_id and not tok.add_bos_token
    ex = EXAMPLES[0]
    prompt = [tok.bos_token_id, *tok(ex.prompt, add_special_tokens=False)["input_ids"]]
    answer = [*tok(ex.completion, add_special_tokens=False)["input_ids"], tok.eos_token_id]
    ids = torch.tensor([prompt + answer])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
    nll = -sum(float(logp[i - 1, ids[0, i]]) for i in range(len(prompt), ids.shape[1]))
    assert evaluate(model, tok, [ex], generate=False).loss == pytest.approx(
        nll / len(answer), rel=1e-4
    )


def test_generation_scores_answers_against_references(
    model_and_tokenizer: tuple[object, object],
) -> None:
    model, tok = model_and_tokenizer
    first = evaluate(model, tok, EXAMPLES, max_new_tokens=6, stop=(), n_samples=2)
    assert len(first.samples) == 2
    assert [s.reference for s in first.samples] == ["北京。", "5."]
    # references equal to what the model says greedily: a perfect score
    echoed = [
        EvalExample(ex.prompt, s.output)
        for ex, s in zip(
            EXAMPLES, evaluate(model, tok, EXAMPLES, max_new_tokens=6, stop=()).samples, strict=True
        )
    ]
    again = evaluate(model, tok, echoed, max_new_tokens=6, stop=())
    assert again.exact_match == 1.0
    assert again.f1 == 1.0
    # and a reference the model never says scores zero
    wrong = [EvalExample(ex.prompt, "zzzz qqqq") for ex in EXAMPLES]
    assert evaluate(model, tok, wrong, max_new_tokens=6, stop=()).exact_match == 0.0


def test_batched_generation_matches_one_by_one(model_and_tokenizer: tuple[object, object]) -> None:
    model, tok = model_and_tokenizer
    together = evaluate(model, tok, EXAMPLES, max_new_tokens=5, stop=(), batch_size=8)
    alone = [
        evaluate(model, tok, [ex], max_new_tokens=5, stop=(), batch_size=1).samples[0].output
        for ex in EXAMPLES
    ]
    assert [s.output for s in together.samples] == alone


# --- the comparison files -----------------------------------------------------------------------


def test_write_comparison_writes_eval_json_and_a_side_by_side_table(tmp_path: Path) -> None:
    before = EvalReport(
        loss=3.0,
        perplexity=math.exp(3.0),
        n=2,
        exact_match=0.0,
        f1=0.1,
        contains=0.0,
        samples=[Sample("User: 游戏的模式有哪些？\nAssistant:", "经典|热血", "我不知道")],
    )
    after = EvalReport(
        loss=1.0,
        perplexity=math.exp(1.0),
        n=2,
        exact_match=0.5,
        f1=0.75,
        contains=0.5,
        samples=[Sample("User: 游戏的模式有哪些？\nAssistant:", "经典|热血", "经典、热血")],
    )
    write_comparison(tmp_path, before, after)
    data = json.loads((tmp_path / "eval.json").read_text("utf-8"))
    assert data["before"]["loss"] == 3.0 and data["after"]["exact_match"] == 0.5
    assert read_comparison(tmp_path) == (before, after)

    md = (tmp_path / "samples.md").read_text("utf-8")
    assert "| exact_match | 0.0% | 50.0% |" in md
    row = next(line for line in md.splitlines() if line.startswith("| 1 |"))
    cells = [c.strip() for c in row.replace("\\|", "¦").split("|")[1:-1]]
    assert cells == [
        "1",
        "User: 游戏的模式有哪些？<br>Assistant:",
        "经典¦热血",
        "我不知道",
        "经典、热血",
    ]


# --- `hanlin tune eval RUN` on a finished run -------------------------------------------------


@pytest.mark.slow
def test_eval_command_reevaluates_a_run(tiny_model: Path, chat_file: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from hanlin.cli.tune_results import register
    from hanlin.tune.config import parse_config
    from hanlin.tune.train import start_run

    config = parse_config(
        {
            "base": str(tiny_model),
            "data": str(chat_file),
            "val_ratio": 0.25,
            "lr": 5e-3,
            "max_steps": 4,
            "batch_size": 4,
            "max_len": 64,
            "save_steps": 100,
            "evaluate": False,
        }
    )
    run = start_run(config, show=False)
    assert not (run.path / "eval.json").exists()
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["eval", run.id, "--n", "3", "--max-new-tokens", "4"])
    assert result.exit_code == 0, result.output
    assert "| loss |" in result.output
    before, after = read_comparison(run.path) or (None, None)
    assert before is not None and after is not None
    assert before.n == after.n == 3
    assert after.loss < before.loss  # 4 steps at a high learning rate fit the tiny set
    assert len(after.samples) == 3 and after.exact_match is not None
    assert "| # | prompt | reference | base | tuned |" in (run.path / "samples.md").read_text()
