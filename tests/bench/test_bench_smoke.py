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
