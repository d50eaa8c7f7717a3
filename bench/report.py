"""The results of ``python -m bench all`` as a rich table, JSON, a PNG chart and RESULTS.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from . import issue23

PEERS = ("celery", "dramatiq", "taskiq")
LABELS = {
    "celeriac": "Celeriac",
    "celery": "Celery 5.7",
    "dramatiq": "Dramatiq",
    "taskiq": "Taskiq",
}
BROKER_NAMES = {"redis": "Redis", "amqp": "RabbitMQ", "sqs": "SQS (ElasticMQ)"}
MB = 1024 * 1024


def _ok(section: Any) -> dict[str, Any]:
    """A section's figures, or nothing when it failed (its error is listed apart)."""
    return section if isinstance(section, dict) and "error" not in section else {}


def errors(results: dict[str, Any]) -> list[str]:
    """Every measurement that failed after its retries, as 'where: error'."""
    found = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if "error" in node and isinstance(node["error"], str):
                found.append(f"{where}: {node['error']}")
                return
            for k, v in node.items():
                if k != "runs":
                    walk(v, f"{where}/{k}" if where else k)

    walk({k: v for k, v in results.items() if k != "runs"}, "")
    return found


def _rate(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}/s"


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.2f} ms"


def _mb(v: float | None) -> str:
    return "-" if v is None else f"{v / MB:.0f} MB"


ROWS: tuple[tuple[str, str, Any, bool], ...] = (
    # key, label, formatter, higher is better
    ("publish", "publish (delay loop)", _rate, True),
    ("publish_window", "publish (delay loop, publish_window=1000)", _rate, True),
    ("publish_batch", "publish, batch API (encode + publish_many x500)", _rate, True),
    ("drain", "drain, best pool", _rate, True),
    ("p50", "round trip p50", _ms, False),
    ("p90", "round trip p90", _ms, False),
    ("p99", "round trip p99", _ms, False),
    ("rss_idle", "worker RSS idle (all processes)", _mb, False),
    ("rss_loaded", "worker RSS loaded (all processes)", _mb, False),
    ("rss_loaded_per_process", "loaded RSS per process", _mb, False),
)


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def best_peer(systems: dict[str, dict[str, Any]], key: str, higher: bool) -> tuple[str, float]:
    found = [(n, systems[n][key]) for n in PEERS if n in systems and _number(systems[n].get(key))]
    if not found:
        return "", float("nan")
    return max(found, key=lambda x: x[1]) if higher else min(found, key=lambda x: x[1])


def _cell(fmt: Any, v: Any) -> str:
    """A figure, or 'failed' where its measurement failed (listed under the tables)."""
    if isinstance(v, dict) and "error" in v:
        return "failed"
    return fmt(v) if _number(v) else "-"


def figure_rows(
    systems: dict[str, dict[str, Any]], spec: tuple[tuple[str, str, Any, bool], ...]
) -> list[list[str]]:
    """One row per (key, label, formatter, higher is better) of ``spec``: each system's
    figure, then Celeriac against the best peer."""
    names = [n for n in ("celeriac", *PEERS) if n in systems]
    rows = []
    for key, label, fmt, higher in spec:
        if not any(key in systems[n] for n in names):
            continue
        cells = [label] + [_cell(fmt, systems[n].get(key)) for n in names]
        ours = systems.get("celeriac", {}).get(key)
        peer, value = best_peer(systems, key, higher)
        ratio = "-"
        if _number(ours) and ours and peer and value:
            ratio = f"{ours / value:.2f}x vs {LABELS[peer]}"
        rows.append([*cells, ratio])
    return rows


def comparison_rows(systems: dict[str, dict[str, Any]]) -> list[list[str]]:
    names = [n for n in ("celeriac", *PEERS) if n in systems]
    rows = figure_rows(systems, ROWS)
    pools = ["best pool: "] + [str(systems[n].get("drain_pool", "")) for n in names] + [""]
    rows.append(pools)
    return rows


def _size(n: int) -> str:
    return f"{n // MB} MiB" if n >= MB else f"{n // 1024} KiB" if n >= 1024 else f"{n} B"


def scaling_rows(scale: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Each system's drain with 1, 2, 4 worker processes and three payloads (header, rows);
    results of older runs held Celeriac's figures alone, at the top level."""
    if any(_number(v) for v in scale.values()):
        scale = {"celeriac": scale}
    systems = {n: v for n, v in scale.items() if isinstance(v, dict) and "error" not in v}
    names = [n for n in ("celeriac", *PEERS) if n in systems]
    keys = sorted(
        {k for n in names for k in systems[n] if k != "pools"},
        key=lambda k: (not k.startswith("processes"), int(k.split("=")[1])),
    )
    spec = tuple(
        (k, f"processes = {k.split('=')[1]}" if k.startswith("processes")
         else f"payload = {_size(int(k.split('=')[1]))}", _rate, True)
        for k in keys
    )  # fmt: skip
    rows = figure_rows(systems, spec)
    for key, label in (
        ("processes=2", "pool at 2 processes"),
        ("payload", "pool of the payload runs"),
    ):
        if any(key in systems[n].get("pools", {}) for n in names):
            rows.append([label] + [systems[n].get("pools", {}).get(key, "") for n in names] + [""])
    return ["drain", *[LABELS[n] for n in names], "Celeriac / best peer"], rows


def _versus_ours(rows: dict[str, Any], ours_key: Any) -> dict[str, str]:
    """For each row of a per-system table (dicts with "system" and "rate"), Celeriac's rate
    over the row's, Celeriac's row found by ``ours_key(row)``."""
    out = {}
    for key, row in rows.items():
        ours = rows.get(ours_key(row), {})
        if row.get("system", "celeriac") != "celeriac" and _number(ours.get("rate")):
            out[key] = f"{ours['rate'] / row['rate']:.2f}x"
    return out


def io_rows(io: dict[str, Any]) -> list[list[str]]:
    """The 100 ms sleep tasks: Celeriac's rows (with tasks in flight) and the peers'."""
    ok = {k: r for k, r in io.items() if isinstance(r, dict) and "error" not in r}
    ratios = _versus_ours(ok, lambda r: f"{r['pool']} x{r['concurrency']:.0f}")
    rows = []
    for key, r in ok.items():
        name = r.get("system", "celeriac")
        peak = f"{r['peak']:,.0f}" if "peak" in r else "not measured"
        rows.append([LABELS[name], r.get("config", f"{r['pool']} x{r['concurrency']:.0f}"),
                     f"{r['tasks']:,.0f}", _rate(r["rate"]), _rate(r["ceiling"]),
                     f"{r['fraction']:.0%}", peak, ratios.get(key, "-")])  # fmt: skip
    return rows


def io_drain_rows(drains: dict[str, Any]) -> list[list[str]]:
    """The 10 ms sleep-task drain: each system's I/O pools, Celeriac's best against each."""
    ok = {k: r for k, r in drains.items() if isinstance(r, dict) and "error" not in r}
    ours = [k for k, r in ok.items() if r["system"] == "celeriac"]
    best = max(ours, key=lambda k: ok[k]["rate"]) if ours else ""
    ratios = _versus_ours(ok, lambda r: best)
    return [[LABELS[r["system"]], r["config"], f"{r['tasks']:,.0f}", _rate(r["rate"]),
             f"{r['fraction']:.0%}", ratios.get(k, "-")] for k, r in ok.items()]  # fmt: skip


def _broker_targets(broker: str, data: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    out: list[tuple[str, str, str, bool]] = []
    b = BROKER_NAMES.get(broker, broker)
    systems = {k: v for k, v in _ok(data.get("compare")).items() if "error" not in v}
    ours = systems.get("celeriac")
    if not ours:
        return out
    peer, value = best_peer(systems, "drain", True)
    if peer and broker != "sqs" and "dramatiq" in systems:
        ratio = ours["drain"] / value
        out.append(
            (
                f"{b}: drain >= 2x best of Celery/Dramatiq/Taskiq",
                f"{ratio:.2f}x ({LABELS[peer]} {value:,.0f}/s)",
                ">= 2.00x",
                ratio >= 2,
            )
        )
    if broker == "redis" and "dramatiq" in systems:
        peer, value = best_peer(systems, "publish", True)
        ratio = ours["publish"] / value
        out.append(
            (
                f"{b}: publish >= 1.5x best peer",
                f"{ratio:.2f}x ({LABELS[peer]})",
                ">= 1.50x",
                ratio >= 1.5,
            )
        )
    ceiling = _ok(data.get("ceiling"))
    if broker == "amqp" and "raw_publish_headers" in ceiling:
        ratio = ours["publish"] / ceiling["raw_publish_headers"]
        out.append(
            (
                f"{b}: publish >= 80% of bare pika with Celery's headers",
                f"{ratio:.0%} ({ceiling['raw_publish_headers']:,.0f}/s bare)",
                ">= 80%",
                ratio >= 0.8,
            )
        )
    if "practical_drain" in ceiling:
        ratio = ours["drain"] / ceiling["practical_drain"]
        out.append(
            (
                f"{b}: drain >= 40% of the practical Python ceiling",
                f"{ratio:.0%} ({ceiling['practical_drain']:,.0f}/s)",
                ">= 40%",
                ratio >= 0.4,
            )
        )
    if "p99" in ours and "celery" in systems and "p99" in systems["celery"]:
        ratio = ours["p99"] / systems["celery"]["p99"]
        out.append(
            (
                f"{b}: p99 round trip <= 1/3 of Celery's",
                f"{ratio:.2f} of Celery's",
                "<= 0.33",
                ratio <= 1 / 3,
            )
        )
        others = [systems[n]["p99"] for n in PEERS if n in systems and "p99" in systems[n]]
        out.append(
            (
                f"{b}: p99 round trip below every peer's",
                _ms(ours["p99"]),
                f"< {_ms(min(others))}",
                ours["p99"] < min(others),
            )
        )
    if "rss_loaded_per_process" in ours:
        per = ours["rss_loaded_per_process"]
        out.append(
            (
                f"{b}: loaded RSS <= 50 MB per worker process",
                _mb(per),
                "<= 50 MB",
                per <= 50 * MB,
            )
        )
        if "celery" in systems:
            theirs = systems["celery"]["rss_loaded_per_process"]
            out.append(
                (
                    f"{b}: loaded RSS per process below Celery's",
                    _mb(per),
                    f"< {_mb(theirs)}",
                    per < theirs,
                )
            )
    if broker == "sqs" and "celery" in systems:
        for key in ("publish", "drain"):
            theirs = systems["celery"][key]
            out.append(
                (
                    f"{b}: {key} faster than Celery",
                    _rate(ours[key]),
                    f"> {_rate(theirs)}",
                    ours[key] > theirs,
                )
            )
    far = _ok(data.get("distance")).get("celeriac")
    if far:
        out.append(
            (
                f"{b}: drain at 2 ms RTT >= 50% of local",
                f"{far['fraction']:.0%}",
                ">= 50%",
                far["fraction"] >= 0.5,
            )
        )
    io = _ok(data.get("io"))
    for pool, row in io.items():
        if (
            not isinstance(row, dict)
            or "error" in row
            or row.get("system", "celeriac") != "celeriac"
        ):
            continue
        out.append(
            (
                f"{b}: sleep(0.1) tasks on {pool} within 10% of the ceiling",
                f"{row['fraction']:.0%} of {row['ceiling']:,.0f}/s",
                ">= 90%",
                row["fraction"] >= 0.9,
            )
        )
        if row.get("pool") == "asyncio" and row["concurrency"] >= 1000:
            out.append(
                (
                    f"{b}: asyncio tasks in flight in one process",
                    f"{row['peak']:,.0f}",
                    ">= 1,000",
                    row["peak"] >= 1000,
                )
            )
    return out


def targets(results: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(target, measured, required, holds) for each of issue 12's targets in these results."""
    out: list[tuple[str, str, str, bool]] = []
    for broker, data in results.get("brokers", {}).items():
        try:
            out += _broker_targets(broker, data)
        except (KeyError, TypeError, ZeroDivisionError) as exc:
            out.append((f"{broker}: targets", f"not computed ({exc!r})", "-", False))
    for name, row in _ok(results.get("transports")).items():
        if "raw_label" not in row:
            continue
        for key, raw in (("publish_many", "raw_publish"), ("consume", "raw_consume")):
            ratio = row[key] / row[raw]
            out.append((f"{name}: transport {key} >= 50% of {row['raw_label']}",
                        f"{ratio:.0%} ({row[key]:,.0f} vs {row[raw]:,.0f}/s)", ">= 50%",
                        ratio >= 0.5))  # fmt: skip
    return out


def _tables(results: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """Every table as (title, header, rows), shared by the console and Markdown."""
    tables = []
    for broker, data in results.get("brokers", {}).items():
        b = BROKER_NAMES.get(broker, broker)
        systems = {k: v for k, v in _ok(data.get("compare")).items() if "error" not in v}
        if systems:
            names = [n for n in ("celeriac", *PEERS) if n in systems]
            header = ["figure", *[LABELS[n] for n in names], "Celeriac / best peer"]
            tables.append((f"{b}: side by side", header, comparison_rows(systems)))
        ceiling = _ok(data.get("ceiling"))
        ours = systems.get("celeriac", {})
        if ceiling:
            rows = []
            labels = {
                "raw_publish": "raw publish (redis-benchmark LPUSH -P 100 / bare pika, body only, "
                "no confirms)",
                "raw_publish_headers": "bare pika publish with Celery's headers",
                "raw_publish_one_by_one": "redis-py LPUSH one at a time (a round trip each)",
                "raw_publish_confirmed": "bare pika publish with Celery's headers, each "
                "confirmed (persistent)",
                "raw_consume": "raw consume (redis-benchmark RPOP -P 100 / bare pika)",
                "practical_drain": "practical Python ceiling (same client, orjson, empty "
                "function, batched acks)",
            }
            for key, label in labels.items():
                if key in ceiling:
                    mine = ours.get("drain" if "consume" in key or "drain" in key else "publish")
                    share = f"{mine / ceiling[key]:.1%}" if mine else "-"
                    rows.append([label, _rate(ceiling[key]), share])
            tables.append((f"{b}: broker and Python ceilings (same run)",
                           ["ceiling", "rate", "Celeriac as a share"], rows))  # fmt: skip
        scale = _ok(data.get("scaling"))
        if scale:
            header, rows = scaling_rows(scale)
            tables.append((f"{b}: drain scaling with worker processes and payload sizes "
                           "(payloads on each system's best pool)", header, rows))  # fmt: skip
        far = _ok(data.get("distance"))
        if far:
            near = {n: v for n, v in far.items() if isinstance(v, dict) and "error" not in v}
            ours = near.get("celeriac", {}).get("rtt2ms")
            rows = [[LABELS[n], _rate(v["local"]), _rate(v["rtt2ms"]), f"{v['fraction']:.0%}",
                     f"{ours / v['rtt2ms']:.2f}x" if ours and n != "celeriac" else "-"]
                    for n, v in near.items()]  # fmt: skip
            title = f"{b}: drain with 2 ms round trip added (delaying proxy)"
            if "measured_rtt_ms" in far:
                title += f", measured PING {far['measured_rtt_ms']:.2f} ms"
            header = ["system", "local", "2 ms away", "kept", "Celeriac / this, 2 ms away"]
            tables.append((title, header, rows))
        io = _ok(data.get("io"))
        if io:
            tables.append(
                (
                    f"{b}: I/O concurrency, tasks sleeping 100 ms, one worker process "
                    "(peers: tasks in flight not measured)",
                    ["system", "pool", "tasks", "rate", "ceiling", "share", "peak in flight",
                     "Celeriac / this"],
                    io_rows(io),
                )
            )  # fmt: skip
        drains = _ok(data.get("io_drain"))
        if drains:
            tables.append(
                (
                    f"{b}: drain of tasks sleeping 10 ms, 2 processes x 100 tasks each "
                    "(ceiling 20,000/s)",
                    ["system", "pool", "tasks", "rate", "share of ceiling",
                     "Celeriac best / this"],
                    io_drain_rows(drains),
                )
            )  # fmt: skip
    tr = _ok(results.get("transports"))
    if tr:
        rows = [[n, _rate(r["publish"]), _rate(r["publish_many"]), _rate(r["consume"]),
                 _rate(r["raw_publish"]), _rate(r["raw_consume"]),
                 f"{r['publish_many'] / r['raw_publish']:.0%}",
                 f"{r['consume'] / r['raw_consume']:.0%}", r["raw_label"]]
                for n, r in tr.items() if "raw_label" in r]  # fmt: skip
        rows += [
            [
                n,
                _rate(r["publish"]),
                _rate(r["publish_many"]),
                _rate(r["consume"]),
                "-",
                "-",
                "-",
                "-",
                "no server",
            ]
            for n, r in tr.items()
            if "raw_label" not in r
        ]
        header = ["transport", "publish", "publish_many", "consume", "raw publish",
                  "raw consume", "batch / raw", "consume / raw", "raw is"]  # fmt: skip
        tables.append(
            ("Other transports: Celeriac's transport vs the bare client loop", header, rows)
        )
    return tables


def console(results: dict[str, Any]) -> None:
    out = Console(width=160)
    for title, header, rows in _tables(results):
        table = Table(title=title)
        for i, h in enumerate(header):
            table.add_column(h, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*row)
        out.print(table)
    for title, rows in (("Targets (issue 23)", issue23.targets(results)),
                        ("Targets (issue 12)", targets(results))):  # fmt: skip
        t = Table(title=title)
        for h in ("target", "measured", "required", "holds"):
            t.add_column(h)
        for name, measured, required, ok in rows:
            t.add_row(name, measured, required, "yes" if ok else "[red]no[/red]")
        out.print(t)
    for e in errors(results):
        out.print(f"[red]failed:[/red] {e}")


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    brokers = [b for b, d in results.get("brokers", {}).items() if d.get("compare")]
    if not brokers:
        return
    fig, axes = plt.subplots(len(brokers), 4, figsize=(19, 3.8 * len(brokers)), squeeze=False)
    colours = {"celeriac": "#2e7d32", "celery": "#9e9e9e", "dramatiq": "#1565c0",
               "taskiq": "#ef6c00"}  # fmt: skip
    for row, broker in enumerate(brokers):
        data = results["brokers"][broker]
        systems = {n: dict(v) for n, v in data["compare"].items() if "error" not in v}
        for r in _ok(data.get("io_drain")).values():
            if "error" not in r and r["system"] in systems:  # each system's best I/O pool
                mine = systems[r["system"]]
                mine["io_drain"] = max(mine.get("io_drain", 0), r["rate"])
        names = [n for n in ("celeriac", *PEERS) if n in systems]
        for col, (key, title, scale) in enumerate(
            (
                ("publish", "publish /s", 1),
                ("drain", "drain /s", 1),
                ("p99", "p99 round trip ms", 1000),
                ("io_drain", "drain of 10 ms tasks /s (2 x 100)", 1),
            )
        ):
            ax = axes[row][col]
            values = [systems[n].get(key, 0) * scale for n in names]
            if not any(values):  # not measured on this broker (SQS: no 10 ms drain)
                ax.axis("off")
                continue
            bars = ax.bar([LABELS[n] for n in names], values, color=[colours[n] for n in names])
            ax.bar_label(bars, fmt="%.0f" if scale == 1 else "%.1f", fontsize=8)
            ceiling = _ok(data.get("ceiling")).get("practical_drain")
            if key == "drain" and ceiling:
                ax.axhline(ceiling, color="red", linestyle="--", linewidth=1)
                ax.text(0, ceiling, f" Python ceiling {ceiling:,.0f}", color="red", fontsize=7,
                        va="bottom")  # fmt: skip
                ax.set_ylim(0, max(max(values), ceiling) * 1.15)
            ax.set_title(f"{BROKER_NAMES.get(broker, broker)}: {title}", fontsize=10)
            ax.tick_params(labelsize=8)
    fig.suptitle(f"Celeriac vs Celery 5.7, Dramatiq, Taskiq ({results['meta']['date']}, "
                 f"{results['meta']['machine']})", fontsize=11)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def markdown(results: dict[str, Any], chart_name: str, notes: str = "") -> str:
    meta = results["meta"]
    lines = [
        "# Celeriac benchmark results",
        "",
        f"Written by `{meta['command']}` on {meta['date']} (UTC), in {meta['seconds']:.0f} s.",
        "",
        f"- Machine: {meta['machine']}",
        f"- Python {meta['python']}; Celeriac {meta['versions'].get('celeriac', '')}; "
        f"Celery {meta['versions'].get('celery', '')}; {meta['versions'].get('dramatiq', '')}; "
        f"{meta['versions'].get('taskiq', '')}",
        f"- Brokers: {meta.get('brokers', '')}",
        f"- Figures are medians of {meta['runs']} run(s)"
        + (" (stopped by hand; the last run may be incomplete)" if meta.get("interrupted") else "")
        + f"; sizes: {meta['sizes']}",
        "",
    ]
    if notes:
        lines += [notes.strip(), ""]
    lines += [f"![chart]({chart_name})", ""]
    for title, header, rows in _tables(results):
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |",
                  "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]  # fmt: skip
        lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows]
        lines.append("")
    for title, rows in (("Targets (issue 23)", issue23.targets(results)),
                        ("Targets (issue 12)", targets(results))):  # fmt: skip
        lines += [f"## {title}", "", "| target | measured | required | holds |",
                  "|---|---:|---:|:---:|"]  # fmt: skip
        for name, measured, required, ok in rows:
            lines.append(f"| {name} | {measured} | {required} | {'yes' if ok else '**no**'} |")
        lines.append("")
    failed = errors(results)
    if failed:
        lines += ["## Measurements that failed (after retries)", ""]
        lines += [f"- {e}" for e in failed]
        lines.append("")
    return "\n".join(lines)


def write(results: dict[str, Any], out: Path, notes: str = "") -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "results.json", "png": out / "results.png", "md": out / "RESULTS.md"}
    paths["json"].write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    has_chart = any(d.get("compare") for d in results.get("brokers", {}).values())
    if has_chart:
        chart(results, paths["png"])
    paths["md"].write_text(markdown(results, paths["png"].name if has_chart else "", notes))
    return paths
