"""Scale-out: accelerate configs for DDP, FSDP and DeepSpeed ZeRO-2/3, and the process rank.

The same ``hanlin tune run CONFIG.yaml --run-id NAME`` runs under ``accelerate launch`` or
``torchrun``; every process trains, rank 0 alone writes the run directory. The configs written
here are the files ``accelerate launch --config_file`` reads (see ``docs/tune.md``).
"""

from __future__ import annotations

import os
from typing import Any, Literal

import yaml

from hanlin.errors import InvalidInputError

Strategy = Literal["ddp", "fsdp", "zero2", "zero3"]
STRATEGIES: tuple[str, ...] = ("ddp", "fsdp", "zero2", "zero3")


def rank() -> int:
    """This process's global rank (0 outside a distributed launch)."""
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    """How many processes train together (1 outside a distributed launch)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def accelerate_config(
    strategy: str,
    *,
    gpus: int = 8,
    machines: int = 1,
    machine_rank: int = 0,
    main_ip: str | None = None,
    main_port: int = 29500,
    mixed_precision: str = "bf16",
    offload: bool = False,
) -> dict[str, Any]:
    """An ``accelerate`` config: ``gpus`` processes per machine on ``machines`` machines.

    ``offload`` moves optimizer states (and ZeRO-3/FSDP parameters) to CPU memory.
    Raises InvalidInputError for an unknown strategy or counts below 1.
    """
    if strategy not in STRATEGIES:
        raise InvalidInputError(
            f"unknown strategy '{strategy}'", hint=f"use one of {', '.join(STRATEGIES)}"
        )
    if gpus < 1 or machines < 1 or not 0 <= machine_rank < machines:
        raise InvalidInputError(
            f"need gpus >= 1, machines >= 1 and 0 <= machine_rank < machines "
            f"(got {gpus}, {machines}, {machine_rank})"
        )
    if machines > 1 and not main_ip:
        raise InvalidInputError(
            "a multi-machine config needs the main machine's address",
            hint="pass --main-ip (the IP of machine rank 0)",
        )
    cfg: dict[str, Any] = {
        "compute_environment": "LOCAL_MACHINE",
        "debug": False,
        "distributed_type": "MULTI_GPU",
        "downcast_bf16": "no",
        "machine_rank": machine_rank,
        "main_training_function": "main",
        "mixed_precision": mixed_precision,
        "num_machines": machines,
        "num_processes": gpus * machines,
        "rdzv_backend": "static" if machines == 1 else "c10d",
        "same_network": True,
        "use_cpu": False,
    }
    if machines > 1:
        cfg["main_process_ip"] = main_ip
        cfg["main_process_port"] = main_port
    if strategy == "fsdp":
        cfg["distributed_type"] = "FSDP"
        cfg["fsdp_config"] = {
            "fsdp_version": 2,
            "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            "fsdp_cpu_ram_efficient_loading": True,
            "fsdp_offload_params": offload,
            "fsdp_reshard_after_forward": True,
            "fsdp_state_dict_type": "SHARDED_STATE_DICT",
            "fsdp_activation_checkpointing": False,
        }
    elif strategy in ("zero2", "zero3"):
        stage = int(strategy[-1])
        cfg["distributed_type"] = "DEEPSPEED"
        ds: dict[str, Any] = {
            "zero_stage": stage,
            "offload_optimizer_device": "cpu" if offload else "none",
            "offload_param_device": "cpu" if offload and stage == 3 else "none",
            "deepspeed_multinode_launcher": "standard",
        }
        if stage == 3:
            ds["zero3_init_flag"] = True
            ds["zero3_save_16bit_model"] = True
        cfg["deepspeed_config"] = ds
    return cfg


def accelerate_config_yaml(strategy: str, **kwargs: Any) -> str:
    """:func:`accelerate_config` as the YAML text ``accelerate launch --config_file`` reads."""
    return yaml.safe_dump(accelerate_config(strategy, **kwargs), sort_keys=False)
