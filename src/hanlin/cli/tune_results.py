"""``hanlin tune eval|merge|export-gguf|deploy|undeploy|deployed``: what comes out of a run.

Registered onto the ``hanlin tune`` app by :func:`register`; every command is a thin layer over
:mod:`hanlin.tune.evaluate`, :mod:`hanlin.tune.export` and :mod:`hanlin.tune.deploy`.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

out = Console()
err = Console(stderr=True)

RunArg = Annotated[str, typer.Argument(help="run id, unique id prefix, or run folder")]


def eval_cmd(
    run: RunArg,
    n: Annotated[int | None, typer.Option("--n", help="examples (default: eval_examples)")] = None,
    generate: Annotated[
        bool | None,
        typer.Option("--generate/--no-generate", help="answer and score EM/F1/contains"),
    ] = None,
    max_new_tokens: Annotated[int, typer.Option(help="tokens per generated answer")] = 64,
) -> None:
    """Evaluate base vs tuned on the run's validation split again (eval.json, samples.md)."""
    from hanlin.tune.evaluate import comparison_markdown, evaluate_run
    from hanlin.tune.runs import get_run

    before, after = evaluate_run(run, n=n, generate=generate, max_new_tokens=max_new_tokens)
    out.print(comparison_markdown(before, after).split("\n## Samples")[0].strip())
    err.print(f"samples: {get_run(run).path / 'samples.md'}")


def merge_cmd(
    run: RunArg,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="folder (default: RUN/merged)")
    ] = None,
) -> None:
    """Merge the run's LoRA adapter into full safetensors weights (+ tokenizer)."""
    from pathlib import Path

    from hanlin.tune.export import merge_adapter
    from hanlin.tune.runs import get_run

    r = get_run(run)
    base = Path(r.info()["base"]["hf_dir"])
    target = Path(output).expanduser() if output else r.path / "merged"
    with err.status("merging the adapter into the base weights…"):
        merge_adapter(r.path / "adapter", base, target)
    out.print(f"merged model: {target}")


def export_gguf_cmd(
    run: RunArg,
    check: Annotated[
        bool, typer.Option("--check/--no-check", help="load it in llama.cpp and compare")
    ] = True,
) -> None:
    """Export the run's LoRA adapter to GGUF (RUN/adapter.gguf) for llama.cpp."""
    from hanlin.tune.deploy import check_gguf_adapter, ensure_gguf_adapter

    path, base = ensure_gguf_adapter(run, force=True)
    out.print(f"GGUF adapter: {path}  (base: {base})")
    if check:
        with err.status("loading it in llama.cpp…"):
            result = check_gguf_adapter(base, path)
        verdict = "changes" if result.changed else "[red]does not change[/]"
        out.print(
            f"llama.cpp loads it; it {verdict} the output (max logit change "
            f"{result.max_logit_change:.3g}; next token {result.base_top!r} → "
            f"{result.tuned_top!r})"
        )


def deploy_cmd(
    run: RunArg,
    name: Annotated[str, typer.Option("--name", "-n", help="serve as local/NAME")],
    scale: Annotated[float, typer.Option("--scale", help="LoRA scale")] = 1.0,
    replace: Annotated[
        bool, typer.Option("--replace", help="replace a model of that name")
    ] = False,
) -> None:
    """Serve the run's model through the gateway as local/NAME (chat and /v1/chat/completions)."""
    from hanlin.tune.deploy import deploy

    with err.status("exporting and checking the adapter in llama.cpp…"):
        d = deploy(run, name, lora_scale=scale, replace=replace)
    out.print(f"deployed [bold]{d.model}[/] (run {d.run})")
    out.print(f'try: hanlin chat -m {d.model} "…"', highlight=False)


def undeploy_cmd(name: Annotated[str, typer.Argument(help="the deployed model's name")]) -> None:
    """Remove a model that `hanlin tune deploy` added to the gateway."""
    from hanlin.tune.deploy import undeploy

    undeploy(name)
    out.print(f"removed local/{escape(name)}")


def deployed_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List the models deployed from tuning runs."""
    from hanlin.tune.deploy import list_deployed

    models = list_deployed()
    if as_json:
        print(json.dumps(models, ensure_ascii=False, indent=2))
        return
    if not models:
        out.print("no deployed models (deploy one with `hanlin tune deploy RUN --name NAME`)")
        return
    table = Table("model", "run", "method", "deployed")
    for name, entry in models.items():
        table.add_row(
            f"local/{name}",
            str(entry.get("run")),
            str(entry.get("method")),
            str(entry.get("deployed")),
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add the evaluation, export and deploy commands to the ``hanlin tune`` app."""
    app.command("eval")(eval_cmd)
    app.command("merge")(merge_cmd)
    app.command("export-gguf")(export_gguf_cmd)
    app.command("deploy")(deploy_cmd)
    app.command("undeploy")(undeploy_cmd)
    app.command("deployed")(deployed_cmd)
