"""Start and resume tuning runs on ``transformers``' Trainer and ``trl``'s DPOTrainer.

``cpt`` and ``sft`` train with :class:`transformers.Trainer` on features from
:mod:`hanlin.tune.prepare` (packed blocks; template-rendered conversations with loss only on the
replies), with PEFT LoRA when ``lora``; ``dpo`` trains with :class:`trl.DPOTrainer` (a LoRA
adapter, or a full copy as the reference model). Checkpoints go to the run's ``checkpoints/``
every ``save_steps``; :func:`resume_run` continues from the newest one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from hanlin.config import load_settings
from hanlin.errors import InvalidInputError
from hanlin.tracing import setup as tracing
from hanlin.tracing import spans
from hanlin.tracing.records import REQUEST_MODEL
from hanlin.tune import evaluate as ev
from hanlin.tune import prepare as prep
from hanlin.tune.config import TuneConfig, dump_config, load_config
from hanlin.tune.distributed import rank, world_size
from hanlin.tune.estimate import RunEstimate, check_fits, estimate_run
from hanlin.tune.loading import (
    device_kind,
    load_model,
    lora_config,
    precision_for,
)
from hanlin.tune.prepare import Prepared, prepare
from hanlin.tune.runs import (
    Run,
    effective_status,
    get_run,
    new_run,
    now_iso,
    plot_loss,
    runs_root,
)
from hanlin.tune.templates import FormatTemplate


def _training_args(p: Prepared, run: Run, precision: str) -> dict[str, Any]:
    c = p.config
    has_val = bool(p.val_features)
    return {
        "output_dir": str(run.checkpoints),
        "per_device_train_batch_size": c.batch_size,
        "per_device_eval_batch_size": c.batch_size,
        "gradient_accumulation_steps": c.grad_accum,
        "learning_rate": c.lr,
        "num_train_epochs": c.epochs,
        "max_steps": c.max_steps,
        "lr_scheduler_type": c.scheduler,
        "warmup_steps": c.warmup_ratio,  # < 1: a fraction of the steps
        "weight_decay": c.weight_decay,
        "logging_steps": c.logging_steps,
        "save_strategy": "steps",
        "save_steps": c.save_steps,
        "save_total_limit": c.save_total_limit,
        "eval_strategy": "steps" if has_val else "no",
        "eval_steps": c.eval_steps or c.save_steps,
        "seed": c.seed,
        "data_seed": c.seed,
        "report_to": "none",
        "disable_tqdm": True,
        "use_cpu": device_kind() == "cpu",
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        "activation_checkpointing": c.grad_checkpointing,
        "include_num_input_tokens_seen": "non_padding",
        "dataloader_num_workers": 0,
        "remove_unused_columns": False,
    }


def _build_trainer(p: Prepared, run: Run, model: Any, callbacks: list[Any]) -> Any:
    from transformers.trainer_callback import PrinterCallback

    c = p.config
    kwargs = _training_args(p, run, precision_for(c))
    trainer: Any
    if c.method == "dpo":
        from datasets import Dataset
        from trl import DPOConfig, DPOTrainer

        kwargs.pop("remove_unused_columns")
        args = DPOConfig(**kwargs, beta=c.dpo_beta, max_length=c.max_len)
        trainer = DPOTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(p.train_features),
            eval_dataset=Dataset.from_list(p.val_features) if p.val_features else None,
            processing_class=p.tokenizer,
            peft_config=lora_config(c) if c.uses_lora else None,
            callbacks=callbacks,
        )
    else:
        from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

        trainer = Trainer(
            model=model,
            args=TrainingArguments(**kwargs),
            train_dataset=p.train_features,
            eval_dataset=p.val_features or None,
            data_collator=DataCollatorForSeq2Seq(
                p.tokenizer, padding=True, label_pad_token_id=-100
            ),
            processing_class=p.tokenizer,
            callbacks=callbacks,
        )
    trainer.remove_callback(PrinterCallback)  # our bar replaces the printed log dicts
    return trainer


def _evaluates(p: Prepared, console: Console) -> bool:
    """Whether this run evaluates before and after training (said when it does not)."""
    if not p.config.evaluate:
        return False
    if world_size() > 1:
        console.print("evaluation skipped: it runs in single-process runs only")
        return False
    return True


def _eval_report(p: Prepared, model: Any) -> ev.EvalReport | None:
    pairs = prep.eval_pairs(p.val, p.template, p.config.eval_examples)
    if not pairs:
        return None
    examples = [ev.EvalExample(prompt=x.prompt, completion=x.completion) for x in pairs]
    generate = p.config.eval_generate and p.config.method != "cpt"
    return ev.evaluate(model, p.tokenizer, examples, generate=generate)


def _execute(
    run: Run,
    p: Prepared,
    resume_from: Path | None,
    console: Console,
    show: bool,
    callbacks: Sequence[Any] = (),
) -> Run:
    """Train (from ``resume_from`` if given) and write the artifacts; the run's status follows.
    The run is one ``fine_tune`` span (rank 0 only): base model, method, data, steps, loss."""
    c = p.config
    attrs = {
        REQUEST_MODEL: c.base,
        "hanlin.tune.run_id": run.id,
        "hanlin.tune.method": c.method,
        "hanlin.tune.lora": c.uses_lora,
        "hanlin.tune.train_examples": len(p.train),
        "hanlin.tune.resumed": resume_from is not None,
    }
    if rank() == 0:
        with contextlib.suppress(Exception):  # tracing never stops a run
            tracing.configure(load_settings())
    sp = spans.start(f"fine_tune {c.base}", operation="fine_tune", attrs=attrs)
    try:
        done = _train_and_save(run, p, resume_from, console, show, callbacks)
    except KeyboardInterrupt as exc:
        run.update(status="interrupted", pid=None)
        spans.finish(sp, exc)
        raise
    except Exception as exc:
        run.update(status="failed", pid=None, error=f"{type(exc).__name__}: {exc}")
        spans.finish(sp, exc)
        raise
    info = done.info()
    losses = [m["loss"] for m in done.metrics() if m.get("loss") is not None]
    sp.set_attribute("hanlin.tune.steps", int(info.get("steps") or 0))
    if losses:
        sp.set_attribute("hanlin.tune.first_loss", float(losses[0]))
        sp.set_attribute("hanlin.tune.final_loss", float(losses[-1]))
    spans.finish(sp)
    return done


def _train_and_save(
    run: Run,
    p: Prepared,
    resume_from: Path | None,
    console: Console,
    show: bool,
    callbacks: Sequence[Any],
) -> Run:
    from transformers import set_seed

    from hanlin.tune.callbacks import RunCallback

    c = p.config
    set_seed(c.seed)
    model = load_model(p.base.hf_dir, c)
    if c.uses_lora and c.method != "dpo":
        from peft import get_peft_model

        model = get_peft_model(model, lora_config(c))
    evaluates = _evaluates(p, console)
    if evaluates:
        console.print(f"evaluating the base model on {min(len(p.val), c.eval_examples)} examples")
    before = _eval_report(p, model) if evaluates else None
    trainer = _build_trainer(p, run, model, [RunCallback(run, console, show), *callbacks])
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    if not trainer.is_world_process_zero():
        return run
    final = trainer.model
    if c.uses_lora:
        final.save_pretrained(str(run.path / "adapter"))
        p.tokenizer.save_pretrained(str(run.path / "adapter"))
    else:
        trainer.save_model(str(run.path / "model"))
        p.tokenizer.save_pretrained(str(run.path / "model"))
    if before is not None:
        console.print("evaluating the tuned model")
        after = _eval_report(p, final)
        if after is not None:  # always, with the same validation pairs as before
            ev.write_comparison(run.path, before, after)
    plot_loss(run)
    run.update(status="done", pid=None, finished=now_iso(), steps=trainer.state.global_step)
    return run


def estimate(p: Prepared) -> RunEstimate:
    """The planner's memory/time estimate for a prepared run."""
    return estimate_run(
        p.config,
        p.base.hf_dir,
        steps=p.steps,
        tokens=p.tokens,
        device=device_kind(),
        precision=precision_for(p.config),
    )


def _absolute_paths(config: TuneConfig) -> TuneConfig:
    """Paths made absolute, so ``resume`` works from any working directory."""
    changes = {}
    for key in ("data", "validation", "base"):
        value = getattr(config, key)
        if value and Path(value).expanduser().exists():
            changes[key] = str(Path(value).expanduser().resolve())
    return config.model_copy(update=changes)


def start_run(
    config: TuneConfig,
    *,
    force: bool = False,
    console: Console | None = None,
    show: bool = True,
    callbacks: Sequence[Any] = (),
) -> Run:
    """Prepare, estimate (refusing a run that cannot fit unless ``force``), then train.

    ``callbacks`` are extra ``transformers.TrainerCallback`` objects (e.g. timers).
    """
    console = console or Console(stderr=True)
    config = _absolute_paths(config)
    if world_size() > 1 and config.run_id is None:
        raise InvalidInputError(
            "a distributed run needs a run id every process agrees on",
            hint="pass --run-id NAME (or set run_id: in the config)",
        )
    p = prepare(config)
    if rank() > 0:  # rank 0 writes the run directory; the others train into it
        run = _wait_for_run(str(config.run_id))
        return _execute(run, p, None, console, False, callbacks)
    est = estimate(p)
    for line in est.lines():
        console.print(f"[cyan]estimate[/] {line}")
    check_fits(est, force=force)
    run = new_run(config.run_id, config.method)
    (run.path / "config.yaml").write_text(dump_config(config), encoding="utf-8")
    serving = p.template.serving_format() if isinstance(p.template, FormatTemplate) else None
    run.update(
        id=run.id,
        status="running",
        method=config.method,
        lora=config.uses_lora,
        qlora=config.qlora,
        base={
            "spec": config.base,
            "hf_dir": str(p.base.hf_dir),
            "gguf": str(p.base.gguf) if p.base.gguf else None,
        },
        template=p.template.name,
        prompt_format=serving,
        created=now_iso(),
        finished=None,
        steps=0,
        total_steps=p.steps,
        dataset=str(Path(config.data).resolve()),
        data_format=p.data_format,
        split={"train": len(p.train), "validation": len(p.val)},
        pid=os.getpid(),
    )
    console.print(f"run [bold]{run.id}[/] → {run.path}")
    return _execute(run, p, None, console, show, callbacks)


def _wait_for_run(run_id: str, timeout: float = 600.0) -> Run:
    import time

    path = runs_root() / run_id / "run.json"
    deadline = time.monotonic() + timeout
    while not path.is_file():
        if time.monotonic() > deadline:
            raise InvalidInputError(f"rank 0 did not create run {run_id} within {timeout:.0f} s")
        time.sleep(0.2)
    return Run(path.parent)


def resume_run(ref: str, *, console: Console | None = None, show: bool = True) -> Run:
    """Continue an interrupted or failed run from its newest checkpoint."""
    console = console or Console(stderr=True)
    run = get_run(ref)
    info = run.info()
    status = effective_status(info)
    if status == "done":
        raise InvalidInputError(f"run {run.id} already finished", hint="start a new run instead")
    if status == "running":
        raise InvalidInputError(
            f"run {run.id} is still running (pid {info.get('pid')})",
            hint="wait for it, or stop that process first",
        )
    config = load_config(run.path / "config.yaml")
    p = prepare(config)
    ckpt = run.last_checkpoint()
    step = int(ckpt.name.split("-")[-1]) if ckpt else 0
    if ckpt is None:
        console.print("[yellow]no checkpoint yet: training restarts from step 0[/]")
    else:
        console.print(f"resuming {run.id} from step {step} ({ckpt})")
    run.truncate_metrics(step)
    run.update(status="running", pid=os.getpid(), error=None, finished=None)
    return _execute(run, p, ckpt, console, show)
