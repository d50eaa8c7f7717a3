"""``celeriac interop``: the conformance suite for foreign clients and workers (CONFORMANCE.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..interop.capabilities import Capabilities, load_capabilities, parse_supports
from ..interop.cases import cases_for
from ..interop.checks import DEVIATION, FAIL, NA, PASS, SEVERITIES, WARN, Outcome
from ..interop.verify import STATUS_STYLE, Report, capture_vector, verify_client, verify_worker

__all__ = ["interop"]


@click.group()
def interop() -> None:
    """Check a Celery-protocol client or worker in any language against SPEC.md."""


@interop.command("cases")
@click.option(
    "--role", type=click.Choice(["client", "worker"]), default="client", show_default=True
)
def cases_command(role: str) -> None:
    """Print the conformance set as JSON (what a harness sends, or is sent)."""
    click.echo(json.dumps(cases_for(role), indent=2, ensure_ascii=False))


def _line(console: Console, o: Outcome) -> None:
    label = {PASS: "PASS", FAIL: "FAIL", NA: "N/A ", DEVIATION: "DEV ", WARN: "WARN"}[o.status]
    style = STATUS_STYLE[o.status]
    text = f"[{style}]{label}[/] {o.section:<6} {escape(o.case):<12} {o.check:<26} {escape(o.path)}"
    if o.reason and o.status != PASS:
        text += f" [dim]- {escape(o.reason)}[/]"
    if o.deviation:
        text += f" [yellow]({escape(o.deviation)})[/]"
    console.print(text, highlight=False, soft_wrap=True)


def rollup_table(report: Report) -> Table | None:
    """One row per check that failed, deviated or warned: how often, where, one example."""
    rows = report.rollup()
    if not rows:
        return None
    table = Table(title="by check (worst first; --verbose lists every message)")
    for col in ("status", "severity", "check", "SPEC", "outcomes", "messages", "example"):
        table.add_column(col, justify="right" if col in ("outcomes", "messages") else "left")
    for r in rows:
        style = STATUS_STYLE[r.status]
        ex = r.example
        example = f"{ex.case} {ex.path}: {ex.reason}" + (
            f" ({ex.deviation})" if ex.deviation else ""
        )
        table.add_row(
            f"[{style}]{r.status}[/]",
            r.severity,
            r.check,
            r.section,
            str(r.count),
            str(r.messages),
            escape(example[:160]),
        )
    return table


def summary_table(report: Report) -> Table:
    title = f"interop verify --role {report.role}" + (
        f" ({report.client})" if report.client else ""
    )
    table = Table(title=f"{title} on {report.broker}")
    for col in ("case", "pass", "fail", "deviation", "warn", "n/a"):
        table.add_column(col, justify="left" if col == "case" else "right")
    for case, counts in report.by_case().items():
        fails = counts[FAIL]
        table.add_row(
            case,
            str(counts[PASS]),
            f"[bold red]{fails}[/]" if fails else "0",
            f"[yellow]{counts[DEVIATION]}[/]" if counts[DEVIATION] else "0",
            f"[yellow]{counts[WARN]}[/]" if counts[WARN] else "0",
            str(counts[NA]),
        )
    total = report.counts()
    table.add_row(
        "[b]total[/]",
        *(str(total[s]) for s in (PASS, FAIL, DEVIATION, WARN, NA)),
    )
    return table


@interop.command("verify")
@click.option(
    "--role",
    type=click.Choice(["client", "worker"]),
    required=True,
    help="client: check what a client sends; worker: check what a worker writes",
)
@click.option("--broker", "-b", required=True, help="broker URL (redis://, amqp://, sqs://, ...)")
@click.option(
    "--backend",
    default=None,
    help="role worker: the redis:// result backend it writes; role client with --execute: "
    "where the verifying worker stores results (redis:// or rpc://)",
)
@click.option("--queue", "-Q", default="celery", show_default=True)
@click.option(
    "--client",
    "client_name",
    default=None,
    help="name of the client under test (celery, celery-node, rusty-celery): its "
    "known deviations (SPEC Appendix B) are reported as deviations, not failures",
)
@click.option("--cases", default=None, help="comma-separated case names (default: the whole set)")
@click.option(
    "--supports",
    default=None,
    help="role client: comma-separated cases the client can send; the others are n/a at once",
)
@click.option(
    "--capabilities",
    "capabilities_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="role client: a capability file (TOML or JSON: supports, not_supported, client)",
)
@click.option(
    "--execute",
    is_flag=True,
    help="role client: also run each message on a Celeriac worker and store its result in "
    "--backend, so a client waiting for results completes",
)
@click.option(
    "--timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="seconds to wait in all for the messages or results",
)
@click.option("--report-json", type=click.Path(dir_okay=False), default=None)
@click.option("--junit", type=click.Path(dir_okay=False), default=None)
@click.option(
    "--capture",
    type=click.Path(file_okay=False),
    default=None,
    help="role client: write each message as a vector file into this folder",
)
@click.option("--strict", is_flag=True, help="count known deviations as failures")
@click.option(
    "--fail-on",
    type=click.Choice([*SEVERITIES, "never"]),
    default="cosmetic",
    show_default=True,
    help="exit 1 when a check of this severity or worse failed",
)
@click.option("--verbose", "-v", is_flag=True, help="also one line per check and message")
@click.option("--quiet", "-q", is_flag=True, help="only the summary table")
def verify(
    role: str,
    broker: str,
    backend: str | None,
    queue: str,
    client_name: str | None,
    cases: str | None,
    timeout: float,
    report_json: str | None,
    junit: str | None,
    capture: str | None,
    supports: str | None,
    capabilities_file: str | None,
    execute: bool,
    strict: bool,
    fail_on: str,
    verbose: bool,
    quiet: bool,
) -> None:
    """Run the conformance suite against a foreign client or worker.

    \b
    --role client: start this, then make the client send the set to QUEUE
                   (celeriac interop cases --role client lists it).
    --role worker: start the worker (with the conformance tasks) on QUEUE first.
    Prints a roll-up by check (worst first) and a summary by case; --verbose adds one line per
    check and message. Exit status 1 when a check of --fail-on severity or worse failed (known
    deviations of --client, warnings and n/a do not fail).
    """
    console = Console()
    names = [n.strip() for n in cases.split(",") if n.strip()] if cases else None

    def show(o: Outcome) -> None:
        if verbose and not quiet:
            _line(console, o)

    try:
        declared: Capabilities | None = None
        if supports and capabilities_file:
            raise click.UsageError("give --supports or --capabilities, not both")
        if supports:
            declared = parse_supports(supports, client_name)
        elif capabilities_file:
            declared = load_capabilities(capabilities_file)
        if execute and role != "client":
            raise click.UsageError("--execute is for --role client")
        if execute and not backend:
            raise click.UsageError("--execute needs --backend redis://... or rpc://")
        if role == "client":
            report = verify_client(
                broker,
                queue,
                client=client_name,
                capabilities=declared,
                cases=names,
                timeout=timeout,
                execute=backend if execute else None,
                on_outcome=show,
                on_ready=lambda: print(f"listening on {queue}", file=sys.stderr, flush=True),
            )
        else:
            if not backend:
                raise click.UsageError("--role worker needs --backend redis://...")
            report = verify_worker(
                broker,
                backend,
                queue,
                client=client_name,
                cases=names,
                timeout=timeout,
                on_outcome=show,
            )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if strict:
        for o in report.outcomes:
            if o.status == DEVIATION:
                o.status = FAIL
    rollup = rollup_table(report)
    if rollup is not None and not quiet:
        console.print(rollup)
    console.print(summary_table(report))
    report.write(report_json, junit)
    if capture and role == "client":
        folder = Path(capture)
        folder.mkdir(parents=True, exist_ok=True)
        seen: dict[str, int] = {}
        for raw in report.captured:
            case = _case_of(report, raw)
            n = seen.get(case, 0)
            seen[case] = n + 1
            name = case if n == 0 else f"{case}_{n}"
            vector = capture_vector(raw, client_name or "client", name)
            (folder / f"{name}.json").write_text(
                json.dumps(vector, indent=2, ensure_ascii=False) + "\n"
            )
    sys.exit(1 if fail_on != "never" and report.fails_at(fail_on) else 0)


def _case_of(report: Report, raw: object) -> str:
    from ..interop.cases import CLIENT_CASES
    from ..interop.checks import check_message

    _outcomes, which = check_message(raw, CLIENT_CASES)  # type: ignore[arg-type]
    return which[0] if which else "unidentified"
