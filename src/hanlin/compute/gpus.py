"""The accelerator catalog: published specs, each with the document it came from.

TFLOPS are *dense* tensor-core peaks (datasheets often print the 2:4-sparsity figure, twice as
large). Users add or override accelerators in ``HANLIN_HOME/gpus.toml`` (or ``gpus.json``)::

    [[gpu]]
    name = "MyCard-48G"
    memory_gib = 48
    bandwidth_gbs = 960
    bf16_tflops = 181
    source = "vendor datasheet, 2025"
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hanlin.errors import ConfigError, InvalidInputError, NotFoundError
from hanlin.paths import hanlin_home

Precision = Literal["bf16", "fp16", "fp8", "int8"]


class GPUSpec(BaseModel):
    """One accelerator. Memory in GiB (what "80 GB" cards hold), bandwidth in GB/s (10⁹ B/s)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    aliases: tuple[str, ...] = ()
    vendor: str = ""
    memory_gib: float = Field(gt=0)
    bandwidth_gbs: float = Field(gt=0)
    bf16_tflops: float = Field(gt=0)
    fp16_tflops: float | None = Field(default=None, gt=0)
    fp8_tflops: float | None = Field(default=None, gt=0)
    int8_tops: float | None = Field(default=None, gt=0)
    interconnect: str = ""
    interconnect_gbs: float | None = Field(default=None, gt=0)
    tdp_w: float | None = Field(default=None, gt=0)
    source: str
    source_url: str | None = None
    note: str = ""
    user_defined: bool = False

    @property
    def memory_bytes(self) -> float:
        return self.memory_gib * 2**30

    def peak_flops(self, precision: Precision = "bf16") -> float:
        """Dense peak in FLOP/s for a compute precision; an error if the chip lacks it."""
        tflops = {
            "bf16": self.bf16_tflops,
            "fp16": self.fp16_tflops or self.bf16_tflops,
            "fp8": self.fp8_tflops,
            "int8": self.int8_tops,
        }[precision]
        if tflops is None:
            raise InvalidInputError(
                f"{self.name} has no published dense {precision.upper()} tensor throughput",
                hint="use --precision bf16 (or add the figure to gpus.toml in HANLIN_HOME)",
            )
        return tflops * 1e12


_NV_A100 = (
    "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/"
    "nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf"
)
_NV_H100 = "https://resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet"

CATALOG: tuple[GPUSpec, ...] = (
    GPUSpec(
        name="A100-40G",
        aliases=("A100-40GB", "A100-SXM4-40GB", "A100 40G"),
        vendor="NVIDIA",
        memory_gib=40,
        bandwidth_gbs=1555,
        bf16_tflops=312,
        fp16_tflops=312,
        int8_tops=624,
        interconnect="NVLink 3",
        interconnect_gbs=600,
        tdp_w=400,
        source="NVIDIA A100 Tensor Core GPU datasheet (SXM4 40GB column)",
        source_url=_NV_A100,
    ),
    GPUSpec(
        name="A100-80G",
        aliases=("A100", "A100-80GB", "A100-SXM4-80GB", "A100 80G"),
        vendor="NVIDIA",
        memory_gib=80,
        bandwidth_gbs=2039,
        bf16_tflops=312,
        fp16_tflops=312,
        int8_tops=624,
        interconnect="NVLink 3",
        interconnect_gbs=600,
        tdp_w=400,
        source="NVIDIA A100 Tensor Core GPU datasheet (SXM4 80GB column)",
        source_url=_NV_A100,
    ),
    GPUSpec(
        name="A800-80G",
        aliases=("A800", "A800-80GB", "A800-SXM4-80GB"),
        vendor="NVIDIA",
        memory_gib=80,
        bandwidth_gbs=2039,
        bf16_tflops=312,
        fp16_tflops=312,
        int8_tops=624,
        interconnect="NVLink 3 (export-limited)",
        interconnect_gbs=400,
        tdp_w=400,
        source="NVIDIA A800 Tensor Core GPU datasheet (China market, SXM 80GB)",
        note="an A100 with NVLink cut from 600 to 400 GB/s",
    ),
    GPUSpec(
        name="H100-SXM",
        aliases=("H100", "H100-80G", "H100-SXM5", "H100-SXM-80GB"),
        vendor="NVIDIA",
        memory_gib=80,
        bandwidth_gbs=3350,
        bf16_tflops=989.4,
        fp16_tflops=989.4,
        fp8_tflops=1978.9,
        int8_tops=1978.9,
        interconnect="NVLink 4",
        interconnect_gbs=900,
        tdp_w=700,
        source="NVIDIA H100 Tensor Core GPU datasheet (H100 SXM column; sparsity figures halved)",
        source_url=_NV_H100,
    ),
    GPUSpec(
        name="H100-PCIe",
        aliases=("H100-PCIE-80GB", "H100 PCIe"),
        vendor="NVIDIA",
        memory_gib=80,
        bandwidth_gbs=2000,
        bf16_tflops=756.5,
        fp16_tflops=756.5,
        fp8_tflops=1513,
        int8_tops=1513,
        interconnect="NVLink bridge / PCIe Gen5",
        interconnect_gbs=600,
        tdp_w=350,
        source="NVIDIA H100 Tensor Core GPU datasheet (H100 PCIe column; sparsity figures halved)",
        source_url=_NV_H100,
    ),
    GPUSpec(
        name="H800",
        aliases=("H800-SXM", "H800-80G", "H800-80GB"),
        vendor="NVIDIA",
        memory_gib=80,
        bandwidth_gbs=3350,
        bf16_tflops=989.4,
        fp16_tflops=989.4,
        fp8_tflops=1978.9,
        int8_tops=1978.9,
        interconnect="NVLink 4 (export-limited)",
        interconnect_gbs=400,
        tdp_w=700,
        source="NVIDIA H800 Tensor Core GPU datasheet (China market, SXM)",
        note="an H100 SXM with NVLink cut from 900 to 400 GB/s (DeepSeek-V3 was trained on it)",
    ),
    GPUSpec(
        name="H20",
        aliases=("H20-96G", "H20-96GB", "HGX-H20"),
        vendor="NVIDIA",
        memory_gib=96,
        bandwidth_gbs=4000,
        bf16_tflops=148,
        fp16_tflops=148,
        fp8_tflops=296,
        int8_tops=296,
        interconnect="NVLink 4",
        interconnect_gbs=900,
        tdp_w=400,
        source="NVIDIA HGX H20 specifications as distributed to OEMs (Nov 2023), reported by "
        "SemiAnalysis, 'Nvidia's New China AI Chips Circumvent US Restrictions'",
        note="no public NVIDIA datasheet; compute capped for export (≈15% of H100), memory "
        "bandwidth above H100's: strong for decode, weak for training and prefill",
    ),
    GPUSpec(
        name="H200",
        aliases=("H200-SXM", "H200-141G", "H200-141GB"),
        vendor="NVIDIA",
        memory_gib=141,
        bandwidth_gbs=4800,
        bf16_tflops=989.4,
        fp16_tflops=989.4,
        fp8_tflops=1978.9,
        int8_tops=1978.9,
        interconnect="NVLink 4",
        interconnect_gbs=900,
        tdp_w=700,
        source="NVIDIA H200 product page and datasheet (H200 SXM; sparsity figures halved)",
        source_url="https://www.nvidia.com/en-us/data-center/h200/",
    ),
    GPUSpec(
        name="B200",
        aliases=("B200-180G", "HGX-B200", "DGX-B200"),
        vendor="NVIDIA",
        memory_gib=180,
        bandwidth_gbs=7700,
        bf16_tflops=2250,
        fp16_tflops=2250,
        fp8_tflops=4500,
        int8_tops=4500,
        interconnect="NVLink 5",
        interconnect_gbs=1800,
        tdp_w=1000,
        source="NVIDIA HGX B200 specifications (8-GPU board totals divided by 8; sparsity "
        "figures halved)",
        source_url="https://www.nvidia.com/en-us/data-center/hgx/",
        note="the GB200 NVL72 part runs faster (up to 2.5 PFLOPS dense BF16 at 1.2 kW)",
    ),
    GPUSpec(
        name="L40S",
        aliases=("L40S-48G", "L40S-48GB"),
        vendor="NVIDIA",
        memory_gib=48,
        bandwidth_gbs=864,
        bf16_tflops=362.05,
        fp16_tflops=362.05,
        fp8_tflops=733,
        int8_tops=733,
        interconnect="PCIe Gen4 x16 (no NVLink)",
        interconnect_gbs=64,
        tdp_w=350,
        source="NVIDIA L40S datasheet (sparsity figures halved)",
        source_url="https://www.nvidia.com/en-us/data-center/l40s/",
    ),
    GPUSpec(
        name="RTX-4090",
        aliases=("4090", "RTX4090", "GeForce-RTX-4090"),
        vendor="NVIDIA",
        memory_gib=24,
        bandwidth_gbs=1008,
        bf16_tflops=165.2,
        fp16_tflops=165.2,
        fp8_tflops=330.3,
        int8_tops=660.6,
        interconnect="PCIe Gen4 x16 (no NVLink)",
        interconnect_gbs=64,
        tdp_w=450,
        source="NVIDIA Ada Lovelace GPU Architecture whitepaper, appendix A (dense, FP32 "
        "accumulate)",
        source_url="https://images.nvidia.com/aem-dam/Solutions/geforce/ada/"
        "nvidia-ada-gpu-architecture.pdf",
        note="GeForce tensor cores run FP32-accumulate at half rate; with FP16 accumulate "
        "FP16 is 330 TFLOPS",
    ),
    GPUSpec(
        name="MI300X",
        aliases=("MI300X-192G", "Instinct-MI300X"),
        vendor="AMD",
        memory_gib=192,
        bandwidth_gbs=5300,
        bf16_tflops=1307.4,
        fp16_tflops=1307.4,
        fp8_tflops=2614.9,
        int8_tops=2614.9,
        interconnect="Infinity Fabric",
        interconnect_gbs=896,
        tdp_w=750,
        source="AMD Instinct MI300X product page and data sheet (dense figures)",
        source_url="https://www.amd.com/en/products/accelerators/instinct/mi300/mi300x.html",
    ),
    GPUSpec(
        name="Ascend-910B",
        aliases=("910B", "Ascend910B", "昇腾910B", "Atlas-800T-A2"),
        vendor="Huawei",
        memory_gib=64,
        bandwidth_gbs=1600,
        bf16_tflops=313,
        fp16_tflops=313,
        int8_tops=640,
        interconnect="HCCS",
        interconnect_gbs=392,
        tdp_w=400,
        source="Huawei Atlas 800T A2 training server materials (Ascend 910B3 bin), as "
        "summarised in public benchmark reports",
        note="Huawei publishes no per-chip datasheet; bins 910B1–B4 range ≈280–414 TFLOPS FP16; "
        "no FP8; HCCS is 7 links × 56 GB/s within a node",
    ),
)


def _key(name: str) -> str:
    key = re.sub(r"[^0-9a-z\u4e00-\u9fff]", "", name.lower())
    return re.sub(r"(\d)gb$", r"\1g", key)


def user_gpu_file(home: Path | None = None) -> Path | None:
    """``gpus.toml`` (or ``gpus.json``) in ``HANLIN_HOME``, if the user made one."""
    base = home or hanlin_home()
    for name in ("gpus.toml", "gpus.json"):
        if (base / name).is_file():
            return base / name
    return None


def load_user_gpus(home: Path | None = None) -> list[GPUSpec]:
    """The user's accelerators; a malformed file is a :class:`ConfigError` naming the file."""
    path = user_gpu_file(home)
    if path is None:
        return []
    try:
        raw: Any
        if path.suffix == ".toml":
            raw = tomllib.loads(path.read_text("utf-8"))
        else:
            raw = json.loads(path.read_text("utf-8"))
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot parse {path}: {exc}", hint="fix the file's syntax") from exc
    entries = raw.get("gpu", raw.get("gpus", [])) if isinstance(raw, dict) else raw
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: expected a list of [[gpu]] tables", hint=__doc__)
    out = []
    for i, entry in enumerate(entries):
        try:
            out.append(GPUSpec.model_validate({"source": str(path), **entry, "user_defined": True}))
        except (ValidationError, TypeError) as exc:
            label = entry.get("name", f"#{i + 1}") if isinstance(entry, dict) else f"#{i + 1}"
            raise ConfigError(
                f"{path}: GPU {label} is invalid: {exc}",
                hint="each [[gpu]] needs name, memory_gib, bandwidth_gbs, bf16_tflops",
            ) from exc
    return out


def list_gpus(home: Path | None = None) -> list[GPUSpec]:
    """The built-in catalog followed by the user's entries; a user entry replaces a namesake."""
    user = load_user_gpus(home)
    replaced = {_key(g.name) for g in user}
    return [g for g in CATALOG if _key(g.name) not in replaced] + user


def get_gpu(name: str | GPUSpec, home: Path | None = None) -> GPUSpec:
    """Look an accelerator up by name or alias (case, spaces and dashes do not matter)."""
    if isinstance(name, GPUSpec):
        return name
    gpus = list_gpus(home)
    index: dict[str, GPUSpec] = {}
    for gpu in gpus:
        for label in (gpu.name, *gpu.aliases):
            index.setdefault(_key(label), gpu)
    found = index.get(_key(name))
    if found is not None:
        return found
    close = difflib.get_close_matches(_key(name), list(index), n=3, cutoff=0.5)
    names = list(dict.fromkeys(index[c].name for c in close))
    hint = f"did you mean {' or '.join(names)}? " if names else ""
    raise NotFoundError(
        f"unknown GPU {name!r}",
        hint=f"{hint}`hanlin compute gpus` lists them; add your own in "
        f"{(home or hanlin_home()) / 'gpus.toml'}",
    )
