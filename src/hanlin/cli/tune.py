"""``hanlin tune …``: check datasets, run and resume fine-tuning, list and show runs.

The logic lives in :mod:`hanlin.tune`; these commands parse flags and print.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hanlin.cli import tune_results
from hanlin.tune.config import load_config
from hanlin.tune.runs import effective_status, get_run, list_runs

app = typer.Typer(
    help="Fine-tuning: check data; run CPT / SFT / LoRA / DPO; evaluate, export, deploy.",
    no_args_is_help=True,
)
data_app = typer.Typer(help="Training datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
out = Console()
err = Console(stderr=True)


@data_app.command("check")
def data_check(
    file: Annotated[Path, typer.Argument(help="a .jsonl or .txt dataset file")],
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="base model: count lengths in its tokens")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="auto | chat | instruction | text | preference")
    ] = "auto",
    template: Annotated[str, typer.Option(help="chat template (with --model)")] = "transcript",
    max_len: Annotated[int, typer.Option("--max-len", help="training length limit")] = 512,
    val_ratio: Annotated[float, typer.Option("--val-ratio")] = 0.1,
    seed: Annotated[int, typer.Option()] = 42,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output for scripts")] = False,
) -> None:
    """Validate a dataset: every bad line, duplicates, split and length statistics.

    Exits with status 1 when any line is bad (the good lines are still usable).
    """
    from hanlin.tune.check import check_dataset

    report = check_dataset(
        file,
        fmt=fmt,
        model=model,
        template=template,
        max_len=max_len,
        val_ratio=val_ratio,
        seed=seed,
    )
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
        raise typer.Exit(0 if report.ok else 1)
    out.print(f"[bold]{escape(str(report.path))}[/] — format [cyan]{report.format}[/]")
    out.print(
        f"{report.total} records read, {report.good} usable, {len(report.problems)} bad, "
        f"{report.duplicates} duplicates dropped"
    )
    if report.problems:
        table = Table("line", "problem", title="bad lines", title_justify="left")
        for p in report.problems:
            table.add_row(str(p.line), escape(p.message))
        out.print(table)
    out.print(f"split (seed {seed}): {report.train} train, {report.validation} validation")
    s = report.lengths
    out.print(
        f"length ({s.unit}): min {s.min}, p50 {s.p50}, p95 {s.p95}, max {s.max}; "
        f"{s.over} over max_len {s.limit}"
    )
    if report.context:
        out.print(f"{report.over_context} over the model's context of {report.context} tokens")
    elif model is None:
        out.print("[dim]lengths in characters; pass --model BASE for token counts[/]")
    raise typer.Exit(0 if report.ok else 1)


def _quiet_libraries() -> None:
    """Our progress bar replaces the libraries' own bars and deprecation chatter."""
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        import datasets

        datasets.disable_progress_bars()
    except ImportError:
        pass
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")


@app.command("run")
def run(
    config: Annotated[Path | None, typer.Argument(help="YAML config file")] = None,
    data: Annotated[str | None, typer.Option(help="dataset file")] = None,
    base: Annotated[str | None, typer.Option(help="bundled | x.gguf | HF folder")] = None,
    method: Annotated[str | None, typer.Option(help="cpt | sft | dpo")] = None,
    lora: Annotated[bool | None, typer.Option("--lora/--full", help="LoRA or full")] = None,
    qlora: Annotated[bool | None, typer.Option("--qlora", help="4-bit QLoRA (GPU)")] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps")] = None,
    epochs: Annotated[float | None, typer.Option()] = None,
    lr: Annotated[float | None, typer.Option()] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size")] = None,
    max_len: Annotated[int | None, typer.Option("--max-len")] = None,
    save_steps: Annotated[int | None, typer.Option("--save-steps")] = None,
    run_id: Annotated[str | None, typer.Option("--run-id", help="name of the run")] = None,
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="any config key: --set lora_r=8")
    ] = None,
    force: Annotated[bool, typer.Option(help="start even if the estimate does not fit")] = False,
) -> None:
    """Start a tuning run (config file and/or flags); prints the estimate first."""
    from hanlin.tune.train import start_run

    overrides: dict[str, Any] = {
        "data": data,
        "base": base,
        "method": method,
        "lora": lora,
        "qlora": qlora,
        "max_steps": max_steps,
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "max_len": max_len,
        "save_steps": save_steps,
        "run_id": run_id,
    }
    cfg = load_config(config, overrides, sets)
    _quiet_libraries()
    result = start_run(cfg, force=force, console=err)
    from hanlin.tune.distributed import rank

    if rank() == 0:
        _summary(result.id)


@app.command("resume")
def resume(run_ref: Annotated[str, typer.Argument(metavar="RUN", help="run id or prefix")]) -> None:
    """Continue an interrupted run from its last checkpoint."""
    from hanlin.tune.train import resume_run

    _quiet_libraries()
    result = resume_run(run_ref, console=err)
    _summary(result.id)


def _summary(run_id: str) -> None:
    r = get_run(run_id)
    info = r.info()
    out.print(f"run [bold]{r.id}[/]: {effective_status(info)} after {info.get('steps')} steps")
    for name, path in r.artifacts().items():
        out.print(f"  {name}: {escape(path)}")


@app.command("ls")
def ls() -> None:
    """List tuning runs, newest first."""
    table = Table(box=None, header_style="bold")
    for name in ("run", "status", "method", "base", "steps", "loss", "created"):
        squeeze = name in ("base", "created")
        table.add_column(
            name,
            no_wrap=True,
            overflow="ellipsis",
            min_width=None if squeeze else 4,
            max_width=14 if squeeze else None,
        )
    for r in list_runs():
        info = r.info()
        metrics = r.metrics()
        losses = [m["loss"] for m in metrics if m.get("loss") is not None]
        step = max([int(info.get("steps") or 0)] + [int(m.get("step", 0)) for m in metrics])
        kind = str(info.get("method", "?")) + (
            " qlora" if info.get("qlora") else " lora" if info.get("lora") else ""
        )
        base = str((info.get("base") or {}).get("spec", "?"))
        table.add_row(
            r.id,
            effective_status(info),
            kind,
            escape(Path(base).name if "/" in base else base),
            f"{step}/{info.get('total_steps', '?')}",
            f"{losses[-1]:.4f}" if losses else "-",
            str(info.get("created", ""))[5:16].replace("T", " "),
        )
    out.print(table)


@app.command("show")
def show(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="run id or prefix")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A run's status, config, last metrics and artifact paths."""
    r = get_run(run_ref)
    info = r.info()
    info["status"] = effective_status(info)
    metrics = r.metrics()
    config = (
        (r.path / "config.yaml").read_text(encoding="utf-8")
        if (r.path / "config.yaml").exists()
        else ""
    )
    if as_json:
        doc = {"run": info, "last_metrics": metrics[-5:], "artifacts": r.artifacts()}
        print(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    out.print(f"[bold]{r.id}[/]  {info['status']}  ({escape(str(r.path))})")
    for key in ("method", "lora", "qlora", "template", "created", "finished", "dataset"):
        out.print(f"  {key}: {escape(str(info.get(key)))}")
    out.print(f"  steps: {info.get('steps')}/{info.get('total_steps', '?')}")
    if info.get("error"):
        out.print(f"  [red]error: {escape(str(info['error']))}[/]")
    out.print("[bold]config[/]")
    out.print(escape(config.rstrip()), highlight=False)
    if metrics:
        table = Table("step", "epoch", "loss", "eval loss", "lr", "tok/s", title="last metrics")
        for m in metrics[-5:]:
            table.add_row(
                *(_cell(m.get(k)) for k in ("step", "epoch", "loss", "eval_loss")),
                _cell(m.get("lr")),
                "-" if m.get("tokens_per_s") is None else f"{m['tokens_per_s']:,.1f}",
            )
        out.print(table)
    out.print("[bold]artifacts[/]")
    for name, path in r.artifacts().items():
        out.print(f"  {name}: {escape(path)}")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-2 else f"{value:.4f}"
    return str(value)


@app.command("accelerate-config")
def accelerate_config(
    strategy: Annotated[str, typer.Argument(help="ddp | fsdp | zero2 | zero3")] = "ddp",
    gpus: Annotated[int, typer.Option(help="GPUs (processes) per machine")] = 8,
    machines: Annotated[int, typer.Option()] = 1,
    machine_rank: Annotated[int, typer.Option("--machine-rank")] = 0,
    main_ip: Annotated[str | None, typer.Option("--main-ip")] = None,
    main_port: Annotated[int, typer.Option("--main-port")] = 29500,
    precision: Annotated[str, typer.Option(help="bf16 | fp16 | no")] = "bf16",
    offload: Annotated[bool, typer.Option(help="optimizer/params to CPU RAM")] = False,
    output: Annotated[Path | None, typer.Option("--out", "-o", help="write to a file")] = None,
) -> None:
    """Write an accelerate config for DDP, FSDP or DeepSpeed ZeRO-2/3."""
    from hanlin.tune.distributed import accelerate_config_yaml

    text = accelerate_config_yaml(
        strategy,
        gpus=gpus,
        machines=machines,
        machine_rank=machine_rank,
        main_ip=main_ip,
        main_port=main_port,
        mixed_precision=precision,
        offload=offload,
    )
    if output is None:
        print(text, end="")
        return
    output.write_text(text, encoding="utf-8")
    err.print(
        f"wrote {output}; run: accelerate launch --config_file {output} "
        "-m hanlin tune run CONFIG.yaml --run-id NAME"
    )


# eval, merge, export-gguf, deploy, undeploy, deployed: the output half, in its own module
tune_results.register(app)
