"""``python -m bench all`` runs end to end in its smallest mode and writes what it promises.

No figure is asserted: the benchmark's numbers depend on the machine (bench/RESULTS.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_all_quick_memory_writes_json_and_markdown(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "all",
            "--quick",
            "--only",
            "memory",
            "--out",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    memory = results["transports"]["memory"]
    assert {"publish", "publish_many", "consume"} <= set(memory)
    assert all(memory[k] > 0 for k in ("publish", "publish_many", "consume"))
    assert results["meta"]["runs"] == 1
    markdown = (tmp_path / "RESULTS.md").read_text()
    assert markdown.startswith("# Celeriac benchmark results")
    assert "memory" in markdown
    assert not (tmp_path / "partial.json").exists()


def _sleep_row(system: str, pool: str, config: str, rate: float, conc: int = 100) -> dict:
    ceiling = 2 * conc / 0.01
    return {"system": system, "pool": pool, "config": config, "processes": 2,
            "concurrency": conc, "tasks": 5000, "rate": rate, "ceiling": ceiling,
            "fraction": rate / ceiling}  # fmt: skip


def test_report_shows_each_system_in_the_new_figures() -> None:
    """Scaling, 2 ms away, I/O concurrency and the 10 ms drain: a row or column per system,
    Celeriac's ratio against the peers, failed peers listed, not fatal; no broker needed."""
    from bench import report

    scale = {"processes=1": 5000.0, "processes=2": 9000.0, "payload=1048576": 40.0,
             "pools": {"processes=2": "x2", "payload": "best"}}  # fmt: skip
    results = {
        "meta": {"command": "python -m bench all", "date": "2026-01-01 00:00", "seconds": 1,
                 "machine": "m", "python": "3.11", "versions": {}, "runs": 1, "sizes": {}},
        "brokers": {"redis": {
            "scaling": {"celeriac": scale, "celery": {**scale, "processes=1": 2500.0},
                        "taskiq": {**scale, "processes=1": 2000.0,
                                   "processes=4": {"error": "RuntimeError: boom"}}},
            "distance": {"measured_rtt_ms": 2.4,
                         "celeriac": {"local": 8000.0, "rtt2ms": 4000.0, "fraction": 0.5},
                         "dramatiq": {"local": 4000.0, "rtt2ms": 1000.0, "fraction": 0.25}},
            "io": {"asyncio x1000": {"rate": 5000.0, "ceiling": 10000.0, "fraction": 0.5,
                                     "peak": 1000, "pool": "asyncio", "concurrency": 1000,
                                     "tasks": 10000},
                   "taskiq asyncio x1000": {"system": "taskiq", "pool": "asyncio", "config": "w1",
                                            "concurrency": 1000, "tasks": 10000, "rate": 2500.0,
                                            "ceiling": 10000.0, "fraction": 0.25}},
            "io_drain": {"celeriac asyncio": _sleep_row("celeriac", "asyncio", "a", 6000.0),
                         "celery threads": _sleep_row("celery", "threads", "t", 1500.0),
                         "dramatiq threads": {"error": "RuntimeError: no"}},
        }},
    }  # fmt: skip
    md = report.markdown(results, "results.png")
    assert "| processes = 1 | 5,000/s | 2,500/s | 2,000/s | 2.00x vs Celery 5.7 |" in md
    assert "| payload = 1 MiB |" in md and "failed" in md
    assert "| Dramatiq | 4,000/s | 1,000/s | 25% | 4.00x |" in md
    assert "| Taskiq | w1 | 10,000 | 2,500/s | 10,000/s | 25% | not measured | 2.00x |" in md
    assert "| Celery 5.7 | t | 5,000 | 1,500/s | 8% | 4.00x |" in md
    assert "redis/io_drain/dramatiq threads: RuntimeError: no" in md
    assert not any("taskiq" in t[0].lower() for t in report.targets(results))
    # results.json of earlier runs: Celeriac's scaling alone, at the top level
    results["brokers"]["redis"]["scaling"] = {"processes=1": 5000.0}
    assert "| processes = 1 | 5,000/s | - |" in report.markdown(results, "results.png")


def test_issue23_targets_compare_each_figure_with_the_peers_of_the_same_run() -> None:
    """Each of issue 23's targets is a row that holds or not by the figures given; a peer that
    failed is left out, and a broker whose figures are malformed says so instead of raising."""
    from bench import issue23

    def system(publish: float, drain: float, p50: float, p99: float) -> dict:
        return {"publish": publish, "drain": drain, "p50": p50, "p99": p99,
                "rss_loaded_per_process": 40 * issue23.MB}  # fmt: skip

    results = {
        "brokers": {
            "amqp": {"compare": {"celeriac": system(3000, 9000, 0.0010, 0.0020),
                                 "celery": system(2500, 2000, 0.0020, 0.0080),
                                 "dramatiq": system(8000, 4000, 0.0010, 0.0010),
                                 "taskiq": {"error": "RuntimeError: boom"}},
                     "scaling": {"celeriac": {issue23.MIB: 50.0, issue23.KIB10: 3000.0},
                                 "dramatiq": {issue23.MIB: 100.0, issue23.KIB10: 1000.0}}},
            "redis": {"compare": {"celeriac": system(6000, 20000, 0.0009, 0.0020),
                                  "celery": system(2000, 1000, 0.0020, 0.0050)},
                      "ceiling": {"practical_drain": 100000.0}},
            "sqs": {"compare": {"celeriac": {"rss_loaded_per_process": "40 MB"}}},
        },
        "transports": {"kafka": {"consume": 7000.0, "raw_consume": 10000.0}},
    }  # fmt: skip
    rows = {name: (measured, ok) for name, measured, _, ok in issue23.targets(results)}
    assert rows["RabbitMQ: default delay() loop >= Celery's default"][1] is True
    assert rows["RabbitMQ: default delay() loop >= 50% of Dramatiq's"] == ("38% (8,000/s)", False)
    assert rows["RabbitMQ: round trip p99 within 1.5x of Dramatiq's"][1] is False
    assert rows["RabbitMQ: drain >= 2x the best peer"][1] is True
    assert rows["RabbitMQ: 1 MiB drain >= 1x the best peer"][1] is False
    assert rows["RabbitMQ: 10 KiB drain >= 1.5x the best peer"][1] is True
    assert rows["Redis: round trip p50 <= 1/2 of Celery's"][1] is True
    assert rows["Redis: drain >= 25% of the practical Python ceiling"][1] is False
    assert rows["Kafka: consume >= 60% of the bare kafka-python loop"][1] is True
    assert not any("Taskiq" in measured for measured, _ in rows.values())
    assert "not computed" in rows["sqs: issue 23 targets"][0]
