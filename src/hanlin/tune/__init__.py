"""Fine-tuning: datasets, continued pretraining, SFT (full, LoRA, QLoRA), DPO, tuning runs.

The heavy libraries (torch, transformers, peft, trl) are imported only when a run starts; see
``docs/tune.md``.
"""

from __future__ import annotations

from hanlin.tune.config import TuneConfig, load_config, parse_config
from hanlin.tune.data import Dataset, load_dataset, split
from hanlin.tune.runs import Run, get_run, list_runs

__all__ = [
    "Dataset",
    "Run",
    "TuneConfig",
    "get_run",
    "list_runs",
    "load_config",
    "load_dataset",
    "parse_config",
    "split",
]
