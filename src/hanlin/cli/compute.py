"""``hanlin compute …``: training FLOPs, GPU-days and cost; memory for fine-tuning and serving.

Every command prints the arithmetic as a table of named terms; ``--json`` prints the same result
for scripts. The logic lives in :mod:`hanlin.compute`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from hanlin.compute import (
    KNOWN_MODELS,
    ModelSpec,
    Term,
    kv_cache_bytes_per_token,
    list_gpus,
    load_model,
)
from hanlin.compute.plans import plan_finetune, plan_serving, plan_training
from hanlin.compute.training import DEFAULT_USD_CNY
from hanlin.compute.units import fmt_bytes, fmt_value, parse_count

app = typer.Typer(
    help="Compute planner: training FLOPs, GPU-days and cost; memory for fine-tuning and serving.",
    no_args_is_help=True,
)
out = Console()
# option fields whose command-line flag is spelled differently
FLAGS = {
    "seq_len": "--seq",
    "lora_rank": "--rank",
    "lora_targets": "--targets",
    "grad_checkpointing": "--grad-ckpt",
    "bandwidth_efficiency": "--bw-eff",
    "compute_efficiency": "--mfu",
    "memory_utilization": "--mem-util",
}

ModelOpt = Annotated[
    str, typer.Option("--model", "-m", help="known name, config.json (or its folder) or .gguf")
]
GpuOpt = Annotated[str, typer.Option("--gpu", help="accelerator, e.g. A100-80G, H20 (see `gpus`)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON output for scripts")]


def _emit_json(payload: Any) -> None:
    if isinstance(payload, BaseModel):
        payload = payload.model_dump(mode="json")
    print(json.dumps(payload, ensure_ascii=False, indent=2))


def _table(title: str, terms: list[Term]) -> Table:
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("term")
    table.add_column("value", justify="right")
    table.add_column("formula", overflow="fold")
    for t in terms:
        style = "bold" if t.total else None
        table.add_row(Text(t.name), fmt_value(t.value, t.unit), Text(t.formula), style=style)
    return table


def _notes(assumptions: list[str]) -> None:
    for line in assumptions:
        out.print(Text(f"  · {line}", style="dim"))


def _fit_line(fits: bool | None, need: float, have: float | None, what: str) -> None:
    if fits is None or have is None:
        return
    if fits:
        out.print(f"[green]✓ fits[/]: {fmt_bytes(need)} of {fmt_bytes(have)} {what}")
    else:
        out.print(f"[bold red]✗ does not fit[/]: {fmt_bytes(need)} > {fmt_bytes(have)} {what}")


@app.command("gpus")
def gpus_cmd(as_json: JsonOpt = False) -> None:
    """List the accelerator catalog (dense peaks) with each entry's source."""
    gpus = list_gpus()
    if as_json:
        _emit_json([g.model_dump(mode="json") for g in gpus])
        return
    table = Table(title="accelerators (dense tensor-core peaks)", title_justify="left")
    for col in ("name", "memory", "GB/s", "BF16 TFLOPS", "FP8 TFLOPS", "interconnect", "source"):
        table.add_column(col, overflow="fold")
    for g in gpus:
        link = f"{g.interconnect} {g.interconnect_gbs:g} GB/s" if g.interconnect_gbs else ""
        source = g.source + (f"\n{g.source_url}" if g.source_url else "")
        table.add_row(
            Text(g.name + (" (user)" if g.user_defined else "")),
            f"{g.memory_gib:g} GiB",
            f"{g.bandwidth_gbs:,.0f}",
            f"{g.bf16_tflops:,.1f}",
            f"{g.fp8_tflops:,.1f}" if g.fp8_tflops else "—",
            Text(link),
            Text(source),
        )
    out.print(table)


def _model_payload(spec: ModelSpec) -> dict[str, Any]:
    kv, _ = kv_cache_bytes_per_token(spec)
    return {
        "spec": spec.model_dump(mode="json", exclude_none=True),
        "total_params": spec.total_params,
        "active_params": spec.active_params,
        "flops_params": spec.flops_params,
        "kv_cache_bytes_per_token_bf16": kv,
        "stored_params": spec.stored_params,
    }


@app.command("model")
def model_cmd(
    model: Annotated[str | None, typer.Argument(help="name, config.json or .gguf")] = None,
    list_: Annotated[bool, typer.Option("--list", help="list the known model names")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show a model's parameters (computed from its architecture) and KV cache per token."""
    if list_ or model is None:
        if as_json:
            _emit_json({n: m.source for n, m in KNOWN_MODELS.items()})
            return
        for name, spec in KNOWN_MODELS.items():
            out.print(f"[bold]{name}[/]  [dim]{escape(spec.source)}[/]", highlight=False)
        return
    spec = load_model(model)
    if as_json:
        _emit_json(_model_payload(spec))
        return
    out.print(_table(f"{spec.name} — total parameters", spec.param_terms()))
    if spec.is_moe:
        out.print(_table(f"{spec.name} — active parameters per token", spec.param_terms(True)))
    kv, formula = kv_cache_bytes_per_token(spec)
    out.print(f"matmul parameters (N in 6·N·D): {spec.flops_params:,}")
    out.print(Text(f"KV cache per token (bf16): {fmt_bytes(kv)} = {formula}"))
    if spec.stored_params is not None:
        same = "matches" if spec.stored_params == spec.total_params else "differs from"
        out.print(f"the file holds {spec.stored_params:,} parameters: {same} the computed count")
    out.print(f"[dim]source: {escape(spec.source)}[/]", highlight=False)


@app.command("train")
def train_cmd(
    model: ModelOpt,
    tokens: Annotated[str, typer.Option(help="training tokens, e.g. 300B, 1.4T, 2e12")],
    gpu: GpuOpt,
    gpus: Annotated[int, typer.Option(help="number of GPUs")] = 1,
    mfu: Annotated[float | None, typer.Option(help="model-FLOPs utilisation (0–1)")] = None,
    tflops: Annotated[
        float | None, typer.Option(help="measured TFLOP/s per GPU instead of --mfu")
    ] = None,
    precision: Annotated[str, typer.Option(help="compute precision: bf16, fp16, fp8")] = "bf16",
    recompute: Annotated[bool, typer.Option(help="activation recomputation: 8·N·D")] = False,
    attention: Annotated[bool, typer.Option(help="add the attention FLOPs term")] = False,
    seq: Annotated[str | None, typer.Option(help="sequence length (default: model's)")] = None,
    price_usd: Annotated[float | None, typer.Option(help="rent, USD per GPU-hour")] = None,
    price_cny: Annotated[float | None, typer.Option(help="rent, CNY per GPU-hour")] = None,
    usd_cny: Annotated[float, typer.Option(help="CNY per USD")] = DEFAULT_USD_CNY,
    tp: Annotated[int, typer.Option(help="tensor-parallel degree (memory check)")] = 1,
    pp: Annotated[int, typer.Option(help="pipeline-parallel degree (memory check)")] = 1,
    zero: Annotated[int, typer.Option(help="ZeRO stage 0–3 (memory check)")] = 1,
    micro_batch: Annotated[int, typer.Option(help="micro-batch size (memory check)")] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Pre-training compute: FLOPs, days, GPU-days, cost — and whether it fits in memory."""
    spec = load_model(model)
    plan = plan_training(
        spec,
        tokens,
        gpu,
        gpus=gpus,
        mfu=mfu,
        tflops=tflops,
        precision=precision,
        recompute=recompute,
        attention=attention,
        seq=seq,
        price_usd=price_usd,
        price_cny=price_cny,
        usd_cny=usd_cny,
        tp=tp,
        pp=pp,
        zero=zero,
        micro_batch=micro_batch,
        flags=FLAGS,
    )
    est, mem = plan.training, plan.memory
    assert est is not None
    if as_json:
        _emit_json(plan.to_dict())
        return
    n_tokens = parse_count(tokens, what="token count")
    out.print(
        _table(f"training {spec.name} on {n_tokens:,} tokens, {gpus:,} × {est.gpu}", est.terms)
    )
    _notes(est.assumptions)
    out.print(_table(f"memory per GPU (tp {tp}, pp {pp}, ZeRO-{zero}, checkpointing)", mem.terms))
    _fit_line(mem.fits, mem.total_bytes, mem.gpu_memory_bytes, f"on one {est.gpu}")
    if mem.fits is False:
        out.print("  → shard it: raise --tp (≤ 8, within a node) and --pp, or --zero 3")


@app.command("finetune")
def finetune_cmd(
    model: ModelOpt,
    gpu: GpuOpt,
    method: Annotated[str, typer.Option(help="full, lora or qlora")] = "lora",
    seq: Annotated[str, typer.Option(help="sequence length, e.g. 2048 or 4k")] = "2048",
    micro_batch: Annotated[int, typer.Option(help="sequences per GPU per step")] = 1,
    gpus: Annotated[int, typer.Option(help="number of GPUs")] = 1,
    rank: Annotated[int, typer.Option(help="LoRA rank")] = 16,
    targets: Annotated[str, typer.Option(help="LoRA targets: all-linear, attention, qv")] = (
        "all-linear"
    ),
    optimizer: Annotated[str, typer.Option(help="adamw, adamw-8bit or sgd")] = "adamw",
    precision: Annotated[str, typer.Option(help="bf16-mixed, bf16 or fp32")] = "bf16-mixed",
    grad_ckpt: Annotated[bool, typer.Option(help="gradient checkpointing")] = True,
    attention: Annotated[str, typer.Option(help="flash or eager attention")] = "flash",
    zero: Annotated[int, typer.Option(help="ZeRO stage 0–3 (3 = FSDP full shard)")] = 0,
    tp: Annotated[int, typer.Option(help="tensor-parallel degree")] = 1,
    pp: Annotated[int, typer.Option(help="pipeline-parallel degree")] = 1,
    tokens: Annotated[str | None, typer.Option(help="training tokens, for a time estimate")] = None,
    mfu: Annotated[float, typer.Option(help="model-FLOPs utilisation for the time")] = 0.35,
    as_json: JsonOpt = False,
) -> None:
    """Memory per GPU for full fine-tuning, LoRA or QLoRA (and time, given --tokens)."""
    spec = load_model(model)
    plan, opts = plan_finetune(
        spec,
        gpu,
        method=method,
        seq=seq,
        micro_batch=micro_batch,
        gpus=gpus,
        rank=rank,
        targets=targets,
        optimizer=optimizer,
        precision=precision,
        grad_ckpt=grad_ckpt,
        attention=attention,
        zero=zero,
        tp=tp,
        pp=pp,
        tokens=tokens,
        mfu=mfu,
        flags=FLAGS,
    )
    mem, est = plan.memory, plan.training
    if as_json:
        _emit_json(plan.to_dict())
        return
    title = f"{opts.method} fine-tuning {spec.name}: {opts.micro_batch} × {opts.seq_len:,} tokens"
    out.print(_table(f"{title}, memory per GPU", mem.terms))
    _notes(mem.assumptions)
    _fit_line(mem.fits, mem.total_bytes, mem.gpu_memory_bytes, f"on one {mem.gpu}")
    if est is not None:
        out.print(_table("time", est.terms))


@app.command("serve")
def serve_cmd(
    model: ModelOpt,
    gpu: GpuOpt,
    context: Annotated[str, typer.Option(help="tokens per sequence, e.g. 32k")] = "4k",
    concurrency: Annotated[int, typer.Option(help="sequences served at once")] = 1,
    gpus: Annotated[int, typer.Option(help="GPUs (tensor parallel)")] = 1,
    quant: Annotated[
        str | None, typer.Option(help="weights: bf16, fp8, int8, int4, q4_k_m, … or file")
    ] = None,
    kv_dtype: Annotated[str, typer.Option(help="KV cache: bf16, fp8, int8, q8_0, q4_0")] = "bf16",
    bw_eff: Annotated[float, typer.Option(help="fraction of peak bandwidth reached")] = 0.75,
    mfu: Annotated[float, typer.Option(help="fraction of peak FLOP/s reached")] = 0.5,
    mem_util: Annotated[float, typer.Option(help="fraction of GPU memory usable")] = 0.9,
    as_json: JsonOpt = False,
) -> None:
    """Serving: weights, KV cache, max concurrency, decode and prefill speed bounds."""
    spec = load_model(model)
    est, opts = plan_serving(
        spec,
        gpu,
        context=context,
        concurrency=concurrency,
        gpus=gpus,
        quant=quant,
        kv_dtype=kv_dtype,
        bw_eff=bw_eff,
        mfu=mfu,
        mem_util=mem_util,
        flags=FLAGS,
    )
    if as_json:
        _emit_json(est)
        return
    quant = opts.quant
    title = f"serving {spec.name} ({quant}) on {gpus} × {est.gpu}: {concurrency} × {opts.context:,}"
    out.print(_table(title, est.terms))
    _notes(est.assumptions)
    _fit_line(est.fits, est.memory_needed_bytes, est.memory_available_bytes, "usable")
    if not est.fits:
        out.print(
            f"  → at most {est.max_concurrency} sequences of {opts.context:,} tokens fit; "
            "use more GPUs, a smaller --quant, --kv-dtype fp8 or a shorter --context"
        )
