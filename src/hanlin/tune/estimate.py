"""Memory and time of a run before it starts, from the compute planner (:mod:`hanlin.compute`).

Memory is the planner's training-memory model for the run's method, precision, sequence length
and micro-batch, plus what the Python process itself holds (torch, transformers); on CPU it is
compared with the machine's available RAM, on a GPU with its free memory. Time is the planner's
training FLOPs over a throughput measured here with a short matmul, at an assumed utilisation.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hanlin.compute import TrainMemoryOptions, from_hf_config, training_flops, training_memory
from hanlin.compute.units import fmt_bytes
from hanlin.errors import HanlinError
from hanlin.tune.config import TuneConfig

FRAMEWORK_BYTES = 0.8 * 2**30  # torch + transformers + peft imported, measured RSS ≈ 0.7-0.9 GiB
UTILISATION = {"cpu": 0.25, "cuda": 0.35}  # share of the measured matmul rate training reaches


class DoesNotFitError(HanlinError):
    """The run needs more memory than the machine has."""


@dataclass(frozen=True, slots=True)
class RunEstimate:
    """What the planner expects a run to need."""

    device: str
    params: int
    trainable: int
    memory_bytes: float
    available_bytes: float
    steps: int
    tokens: int
    flops: float
    flops_per_s: float
    seconds: float

    @property
    def fits(self) -> bool:
        return self.memory_bytes <= self.available_bytes

    def lines(self) -> list[str]:
        where = "RAM available" if self.device == "cpu" else "GPU memory free"
        return [
            f"model: {self.params / 1e6:,.1f}M parameters, {self.trainable / 1e6:,.2f}M trained",
            f"memory: ≈ {fmt_bytes(self.memory_bytes)} needed, {fmt_bytes(self.available_bytes)} "
            f"{where}",
            f"time: ≈ {_duration(self.seconds)} for {self.steps:,} steps, {self.tokens:,} tokens "
            f"({self.flops:.2e} FLOPs at {self.flops_per_s / 1e9:,.1f} GFLOP/s)",
        ]


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def measured_flops(device: str) -> float:
    """Matmul FLOP/s of this machine (about 0.1 s), times the assumed training utilisation."""
    import torch

    n = 1024 if device == "cpu" else 4096
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm-up
    reps = 3
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    rate = reps * 2 * n**3 / max(time.perf_counter() - t0, 1e-9)
    return rate * UTILISATION[device]


def available_bytes(device: str) -> float:
    if device == "cuda":
        import torch

        return float(torch.cuda.mem_get_info()[0])
    import psutil

    return float(psutil.virtual_memory().available)


def estimate_run(
    config: TuneConfig,
    hf_dir: Path,
    *,
    steps: int,
    tokens: int,
    device: str,
    precision: str,
) -> RunEstimate:
    """The planner's memory and time for a run of ``steps`` optimizer steps over ``tokens``."""
    spec = from_hf_config(json.loads((hf_dir / "config.json").read_text(encoding="utf-8")))
    method: Literal["full", "lora", "qlora"] = (
        "qlora" if config.qlora else "lora" if config.lora else "full"
    )
    targets: Literal["all-linear", "attention"] = (
        "all-linear" if config.lora_targets == "all-linear" else "attention"
    )
    pairs = 2 if config.method == "dpo" else 1  # chosen and rejected in one forward
    options = TrainMemoryOptions(
        method=method,
        precision="fp32" if precision == "fp32" else "bf16-mixed",
        seq_len=config.max_len,
        micro_batch=config.batch_size * pairs,
        grad_checkpointing=config.grad_checkpointing,
        attention="eager" if device == "cpu" else "flash",
        lora_rank=config.lora_r,
        lora_targets=targets,
        lora_dropout=config.lora_dropout > 0,
        cuda_context_gib=0.75 if device == "cuda" else 0.0,
    )
    mem = training_memory(spec, options)
    need = mem.total_bytes + (FRAMEWORK_BYTES if device == "cpu" else 0.0)
    if config.method == "dpo" and not config.uses_lora:
        need += spec.total_params * (4 if precision == "fp32" else 2)  # frozen reference model
    flops = training_flops(
        spec,
        max(tokens, 1),
        seq_len=config.max_len,
        attention=True,
        recompute=config.grad_checkpointing,
        method=method,
    ).flops * (1.5 if config.method == "dpo" else 1.0)  # + the reference forward
    rate = measured_flops(device)
    return RunEstimate(
        device=device,
        params=spec.total_params,
        trainable=mem.trainable_params,
        memory_bytes=need,
        available_bytes=available_bytes(device),
        steps=steps,
        tokens=tokens,
        flops=flops,
        flops_per_s=rate,
        seconds=flops / rate,
    )


def check_fits(est: RunEstimate, *, force: bool) -> None:
    """Raise DoesNotFitError when the run cannot fit, unless ``force``."""
    if est.fits or force:
        return
    where = "RAM available" if est.device == "cpu" else "free GPU memory"
    raise DoesNotFitError(
        f"this run needs ≈ {fmt_bytes(est.memory_bytes)}, but the machine has only "
        f"{fmt_bytes(est.available_bytes)} {where}",
        hint="lower batch_size or max_len, use lora: true (or qlora on a GPU), turn on "
        "grad_checkpointing — or pass --force to try anyway",
    )
