"""``rag cost --stack NAME``: what the stack costs idle, per 1,000 questions and per
10,000 documents, from ``Pulumi.NAME.yaml`` alone (no Pulumi CLI, no AWS call).

Loaded only when the command runs (``cli.deploy.command`` has its options): the
model, the prices and the stack's config (pulumi) load here, not at ``rag --help``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cli.deploy.cost_model import Estimate, Section


def stack_values(stack: str, project_dir: Path) -> dict[str, Any]:
    from cli.deploy.stack_file import read_config

    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found (run it in the project folder, or --project-dir)"
        )
    return read_config(path)


def price_stack(stack: str, project_dir: Path, model_seconds: float | None = None) -> Estimate:
    from cli.deploy.cost_model import Usage, estimate, load_prices
    from cli.deploy.stack_file import project_on_path

    values = stack_values(stack, project_dir)
    # The Pulumi program (infra/) is read from the project folder, else from the
    # checkout this CLI runs from.
    for folder in (project_dir.resolve(), Path(__file__).resolve().parents[2]):
        if project_on_path(folder):
            break
    try:
        from infra.config import validate_stack_values
    except ImportError as exc:  # no infra/ here, or the infra extra (pulumi) is missing
        raise ValueError(
            f"reading a stack's config needs the project's infra/ and the infra extra ({exc}): "
            "run it in the project folder after `scripts/bootstrap --dev`"
        ) from exc
    config = validate_stack_values(values, check_eula=False, check_secrets=False).resolved_for(
        stack
    )
    usage = Usage(model_seconds=model_seconds)
    return estimate(config, stack, load_prices(), usage, alarm_count(config))


def alarm_count(config: Any) -> int:
    """The stack's own alarms (infra/components/observability.py), counted, not guessed."""
    from infra.components.observability import ObservabilityArgs, alarm_specs

    functions = {"indexer": "indexer", "query": "query"}
    if config.chat.auth != "none":
        functions["authorizer"] = "authorizer"
    args = ObservabilityArgs(
        config=config.observability,
        queue_name="queue",
        dlq_name="dlq",
        function_names=functions,
        reconcile_function="indexer" if config.indexer.reconcile_schedule else None,
        worker_function="query",
    )
    return len(alarm_specs(args))


def money(usd: float) -> str:
    return f"${usd:,.2f}" if usd >= 0.01 or usd == 0 else f"${usd:.4f}"


def render(est: Estimate) -> str:
    lines = [
        f"idle: {money(est.idle_per_day.total)}/day",
        f"(stack {est.stack}; {est.region} list prices of {est.prices_as_of}, free tiers "
        "ignored; assumptions in docs/cost.md)",
        "",
    ]

    def section(s: Section, suffix: str = "") -> None:
        lines.append(f"{s.title}: {money(s.total)}{suffix}")
        for line in s.lines:
            lines.append(f"  {line.part:<32} {money(line.usd):>10}  {line.detail}")
        lines.append("")

    section(est.idle_per_day, "/day")
    section(est.per_1000_questions)
    section(est.per_10000_documents)
    section(est.storage_per_month, "/month")
    section(est.awake, "/hour")
    if est.waking:
        lines.append("waking from zero:")
        lines.extend(f"  {part}: {text}" for part, text in est.waking.items())
        lines.append("")
    lines.extend(f"note: {note}" for note in est.notes)
    return "\n".join(lines).rstrip() + "\n"
