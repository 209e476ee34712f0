"""LoRA SFT step time and peak memory: `hanlin tune run` vs a plain transformers + peft loop.

Both train the same model on the same tokenized data with the same settings (LoRA r16/alpha32/
dropout 0.05 on all linear layers, AdamW, linear decay, grad-norm clip 1.0, batch, max_len,
seed). Each measurement is a fresh subprocess (so peak RSS is its own), interleaved ABBA over
rounds so machine load hits both alike. Step time: the median over the steps after warm-up;
for hanlin from metrics.jsonl's ``elapsed_s`` (which includes our logging/progress overhead),
for the plain loop timed around forward/backward/step.

    .venv/bin/python bench/tune_step.py                       # small Llama config, ~3 minutes
    .venv/bin/python bench/tune_step.py --base bundled --steps 8 --rounds 1 --max-len 64
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

QA = Path(__file__).resolve().parents[2] / "shared/eval/zh/cmrc2018-trial/queries.jsonl"


def build_data(out: Path, n: int) -> Path:
    rows = []
    for line in QA.read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        if q.get("answers"):
            rows.append(
                {
                    "messages": [
                        {"role": "user", "content": q["text"]},
                        {"role": "assistant", "content": q["answers"][0]},
                    ]
                }
            )
    path = out / "qa.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[:n]), "utf-8")
    return path


def build_model(out: Path, data: Path, hidden: int, layers: int) -> Path:
    """A random-init Llama with a byte-level BPE tokenizer trained on the data (no downloads)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, set_seed

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=4000,
        special_tokens=["<pad>", "<bos>", "<eos>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(data.read_text(encoding="utf-8").splitlines(), trainer=trainer)
    bos = tok.token_to_id("<bos>")
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", bos)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    path = out / "model"
    fast.save_pretrained(str(path))
    set_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=hidden,
        intermediate_size=hidden * 3,
        num_hidden_layers=layers,
        num_attention_heads=max(hidden // 64, 1),
        num_key_value_heads=max(hidden // 128, 1),
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=bos,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
    )
    LlamaForCausalLM(cfg).save_pretrained(str(path))
    return path


def config_values(a: argparse.Namespace) -> dict[str, Any]:
    return {
        "base": a.base,
        "data": a.data,
        "method": "sft",
        "lora": True,
        "max_steps": a.steps,
        "batch_size": a.batch,
        "max_len": a.max_len,
        "save_steps": 10**6,
        "evaluate": False,
        "val_ratio": 0.0,
        "lr": 2e-4,
        "seed": 0,
    }


def child_hanlin(a: argparse.Namespace) -> dict[str, Any]:
    from rich.console import Console
    from transformers import TrainerCallback

    from hanlin.tune.config import parse_config
    from hanlin.tune.train import start_run

    class StepTimer(TrainerCallback):
        """Wall and process-CPU seconds of each optimizer step."""

        def __init__(self) -> None:
            self.wall: list[float] = []
            self.cpu: list[float] = []

        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.t0, self.c0 = time.perf_counter(), time.process_time()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.wall.append(time.perf_counter() - self.t0)
            self.cpu.append(time.process_time() - self.c0)

    timer = StepTimer()
    run = start_run(
        parse_config(config_values(a)),
        show=False,
        console=Console(stderr=True, quiet=True),
        callbacks=[timer],
    )
    losses = [m["loss"] for m in run.metrics() if "loss" in m]
    return {"steps": timer.wall[1:], "cpu": timer.cpu[1:], "loss": losses[-1]}


def child_plain(a: argparse.Namespace) -> dict[str, Any]:
    """The textbook loop: tokenizer, collator, peft model, AdamW, linear schedule."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        get_linear_schedule_with_warmup,
        set_seed,
    )

    set_seed(0)
    base = a.base
    if base == "bundled":
        from hanlin.tune.loading import resolve_base

        base = str(resolve_base("bundled").hf_dir)
    tok = AutoTokenizer.from_pretrained(base)
    tok.pad_token = tok.pad_token or tok.eos_token
    feats = []
    for line in Path(a.data).read_text(encoding="utf-8").splitlines():
        msgs = json.loads(line)["messages"]
        prompt = tok(f"User: {msgs[0]['content']}\nAssistant:")["input_ids"]
        reply = tok(f" {msgs[1]['content']}\n", add_special_tokens=False)["input_ids"]
        ids = (prompt + reply + [tok.eos_token_id])[: a.max_len]
        labels = ([-100] * len(prompt) + reply + [tok.eos_token_id])[: a.max_len]
        feats.append({"input_ids": ids, "labels": labels})
    model: Any = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    model = get_peft_model(
        model,
        LoraConfig(
            r=16,
            lora_alpha=32,
            lora_dropout=0.05,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        ),
    )
    loader: Any = torch.utils.data.DataLoader(
        feats,  # type: ignore[arg-type]
        batch_size=a.batch,
        shuffle=True,
        collate_fn=DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100),
        generator=torch.Generator().manual_seed(0),
    )
    opt = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=2e-4, weight_decay=0.0
    )
    sched = get_linear_schedule_with_warmup(opt, 0, a.steps)
    model.train()
    steps, cpu, done, loss = [], [], 0, float("nan")
    while done < a.steps:
        for batch in loader:
            t0, c0 = time.perf_counter(), time.process_time()
            out = model(**batch)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            loss = float(out.loss)
            steps.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            done += 1
            if done >= a.steps:
                break
    return {"steps": steps[1:], "cpu": cpu[1:], "loss": loss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default=None, help="model folder or 'bundled' (default: built)")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--examples", type=int, default=400)
    ap.add_argument("--child", choices=["hanlin", "plain"])
    ap.add_argument("--data")
    ap.add_argument("--json", dest="json_out")
    a = ap.parse_args()
    if a.child:
        result = (child_hanlin if a.child == "hanlin" else child_plain)(a)
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print("RESULT " + json.dumps(result))
        return
    work = Path(tempfile.mkdtemp(prefix="tune-bench-"))
    os.environ.setdefault("HANLIN_HOME", str(work / "home"))
    data = build_data(work, a.examples)
    base = a.base or str(build_model(work, data, a.hidden, a.layers))
    results: dict[str, list[dict[str, Any]]] = {"hanlin": [], "plain": []}
    order = []
    for r in range(a.rounds):
        order += ["hanlin", "plain"] if r % 2 == 0 else ["plain", "hanlin"]
    for kind in order:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            kind,
            "--base",
            base,
            "--data",
            str(data),
            "--steps",
            str(a.steps),
            "--batch",
            str(a.batch),
            "--max-len",
            str(a.max_len),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            sys.exit(f"{kind} failed:\n{proc.stderr[-3000:]}")
        res = json.loads(line[7:])
        res["step_s"] = statistics.median(res["steps"][a.warmup - 1 :])
        res["cpu_s"] = statistics.median(res["cpu"][a.warmup - 1 :])
        results[kind].append(res)
        print(
            f"{kind:7s} median step {res['step_s'] * 1000:8.1f} ms wall, "
            f"{res['cpu_s'] * 1000:8.1f} ms CPU   peak RSS {res['peak_rss_mib']:8.1f} MiB   "
            f"final loss {res['loss']:.3f}",
            flush=True,
        )
    summary = {}
    for kind, rs in results.items():
        summary[kind] = {
            "step_ms": statistics.median(r["step_s"] for r in rs) * 1000,
            "cpu_ms": statistics.median(r["cpu_s"] for r in rs) * 1000,
            "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in rs),
        }
    h, p = summary["hanlin"], summary["plain"]
    print(
        f"\nmodel {base}, batch {a.batch} x {a.max_len} tokens, {a.steps} steps, "
        f"{a.rounds} rounds (ABBA); medians over rounds"
    )
    print(f"{'':8s}{'wall ms':>10s}{'CPU ms':>10s}{'peak RSS MiB':>15s}")
    for kind, s in summary.items():
        print(f"{kind:8s}{s['step_ms']:10.1f}{s['cpu_ms']:10.1f}{s['peak_rss_mib']:15.1f}")
    print(
        f"hanlin vs plain: step wall {h['step_ms'] / p['step_ms'] - 1:+.1%}, "
        f"step CPU {h['cpu_ms'] / p['cpu_ms'] - 1:+.1%} (target within 5%), "
        f"peak RSS {h['peak_rss_mib'] / p['peak_rss_mib'] - 1:+.1%} (target within 10%)"
    )
    if a.json_out:
        Path(a.json_out).write_text(json.dumps({"summary": summary, "runs": results}, indent=2))


if __name__ == "__main__":
    main()
