"""``rag doctor``, ``rag smoke`` and ``rag cost``: their options and output;
the work in ``doctor``, ``smoke`` and ``cost`` (the price model in ``cost_model``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.options import fail, run, settings_for, stack_outputs
from shared.errors import RagError


def doctor(
    stack: Annotated[str, typer.Option("--stack", help="The Pulumi stack to check (e.g. dev)")],
) -> None:
    """Check credentials, quotas, model access and config before `pulumi up`
    (exit 1: a check failed; 2: a check could not run, so the stack is unchecked)."""
    from rich.console import Console
    from rich.markup import escape

    from cli.deploy.doctor import diagnose, exit_code, verdict
    from shared.settings import load_settings

    endpoint = load_settings().aws.endpoint_url
    checks = run(diagnose(stack, Path.cwd(), {"*": endpoint}))
    console = Console(soft_wrap=True)
    marks = {
        "ok": "[green]ok  [/green]",
        "warn": "[yellow]warn[/yellow]",
        "fail": "[red]FAIL[/red]",
        "unchecked": "[yellow]????[/yellow]",
    }
    for check in checks:
        label = "unchecked: " if check.status == "unchecked" else ""
        console.print(f"{marks[check.status]} {check.name}: {label}{escape(check.detail)}")
        if check.fix:
            console.print(f"     fix: {escape(check.fix)}")
    code = exit_code(checks)
    colour = ("green", "red", "yellow")[code]
    console.print(f"[{colour}]{escape(verdict(stack, checks))}[/{colour}]")
    raise typer.Exit(code)


def smoke(
    stack: Annotated[str, typer.Option("--stack", help="The deployed Pulumi stack (e.g. dev)")],
    token: Annotated[
        str | None,
        typer.Option(
            envvar="RAG_TOKEN",
            help="$connect token (default: the stack's rag:staticToken; or a Cognito ID token)",
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each step")] = 600.0,
) -> None:
    """Send a document through the stack, ask about it, check its citation, delete it."""
    from rich.console import Console
    from rich.markup import escape

    from cli.deploy.smoke import SmokeTarget, exit_code, run_smoke, stack_token

    outputs = stack_outputs(stack)
    try:
        target = SmokeTarget.from_outputs(outputs)
    except RagError as exc:
        raise fail(str(exc)) from None
    token = token or stack_token(stack, Path.cwd())
    steps = run(run_smoke(settings_for(None, stack), target, token, timeout))
    console = Console(soft_wrap=True)
    for step in steps:
        mark = "[green]ok  [/green]" if step.ok else "[red]FAIL[/red]"
        console.print(f"{mark} {step.name} ({step.seconds:.1f} s): {escape(step.detail)}")
    raise typer.Exit(exit_code(steps))


def cost(
    stack: Annotated[
        str, typer.Option("--stack", help="The stack whose Pulumi.STACK.yaml to price")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (for scripts)")] = False,
    model_seconds: Annotated[
        float | None,
        typer.Option(
            "--model-seconds",
            min=0.1,
            help="Model seconds per answer (the mean of done.model_ms / 1000 from your "
            "stack); default: 256 tokens at 30 tokens/s",
        ),
    ] = None,
    project_dir: Annotated[
        Path, typer.Option("--project-dir", help="Folder holding Pulumi.STACK.yaml")
    ] = Path("."),
) -> None:
    """Idle cost per day (first line), then per 1,000 questions and per 10,000
    documents, with the list prices' date (docs/cost.md)."""
    import json

    from cli.deploy.cost import price_stack, render

    try:
        result = price_stack(stack, project_dir, model_seconds)
    except (FileNotFoundError, ValueError) as exc:
        typer.echo(f"rag cost: {exc}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        typer.echo(render(result))
