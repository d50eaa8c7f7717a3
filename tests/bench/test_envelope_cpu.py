"""bench.envelope_cpu measures each reader of this tree and the Kafka consumer's loop."""

from __future__ import annotations

import re

import pytest

from bench import envelope_cpu


def test_readers_and_the_kafka_loop_print_a_figure_each(capsys: pytest.CaptureFixture[str]) -> None:
    envelope_cpu.main(["--rounds", "1", "--only", "readers,kafka"])
    lines = capsys.readouterr().out.splitlines()
    names = [line.split("  ")[0] for line in lines]
    assert names == [
        "unpack_wire (ours)",
        "unpack_wire (Celery's)",
        "kafka unpack_record",
        "unpack_consumed (ours)",
        "kafka unpack_consumed",
        "kafka consumer, per record",
    ]
    for line in lines:
        low = float(re.search(r"min +([0-9.]+) us", line).group(1))  # type: ignore[union-attr]
        assert 0 < low < 1000, line
