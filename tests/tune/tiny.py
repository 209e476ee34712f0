"""A tiny random-init causal LM and tokenizer built on the spot (no downloads), plus datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

QA = [
    ("What is the capital of France?", "Paris."),
    ("What is 2 + 3?", "5."),
    ("Who wrote Hamlet?", "Shakespeare."),
    ("一年有几个月？", "十二个月。"),
    ("What color is the sky?", "Blue."),
    ("How many legs does a cat have?", "Four."),
    ("What is the opposite of hot?", "Cold."),
    ("中国的首都是哪里？", "北京。"),
    ("What is 10 - 4?", "6."),
    ("Which planet is red?", "Mars."),
    ("What do bees make?", "Honey."),
    ("What is ice made of?", "Water."),
]


def build_tiny_model(path: Path) -> Path:
    """A 2-layer Llama with a byte-level BPE tokenizer of ~300 tokens, saved to ``path``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, set_seed

    specials = ["<pad>", "<bos>", "<eos>", "<unk>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = [f"User: {q}\nAssistant: {a}\n" for q, a in QA] * 4
    tok.train_from_iterator(corpus, trainer=trainer)
    bos = tok.token_to_id("<bos>")  # like Gemma's tokenizer: BOS before every text
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A <bos> $B", special_tokens=[("<bos>", bos)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    path.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(path))
    set_seed(0)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(str(path))
    return path


def cli(argv: list[str]) -> int:
    """Run ``hanlin`` in-process; the exit status."""
    from hanlin.cli.main import main

    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def chat_rows() -> list[dict[str, Any]]:
    return [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
        for q, a in QA
    ]


def preference_rows() -> list[dict[str, str]]:
    return [{"prompt": q, "chosen": a, "rejected": "I do not know."} for q, a in QA]
