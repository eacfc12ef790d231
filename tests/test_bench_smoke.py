"""The fan-out benchmark cannot rot: its smoke variant (`python -m bench.fanout --smoke`, a few
hundred streams for a few seconds) runs the generated app (in both read modes, by NOTIFY and by
poll) and the floor on real PostgreSQL and uvicorn, and every event reaches each of its user's
streams once, and no other user's; so does its streams mode (`--streams N`, the capacity run),
which reports each server's memory.

The run is the command a person types, in a process of its own; it waits on frame counts, never
on time, so a loaded machine makes it slower, not wrong.
"""

import json
import math
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_benchmark

pytestmark = pytest.mark.e2e


def bench(postgres_url: str, folder: Path, *arguments: str) -> dict[str, Any]:
    """Run `python -m bench.fanout --smoke ...`; return its JSON, and check its table."""
    table, measurements = folder / "fanout.md", folder / "fanout.json"
    printed = run_benchmark(
        *("-m", "bench.fanout", "--smoke", *arguments),
        *("--output", str(table), "--json", str(measurements)),
        postgres_url=postgres_url,
    )
    assert table.read_text() in printed  # what it prints is what it writes
    results: dict[str, Any] = json.loads(measurements.read_text())["results"]
    return results


def test_the_smoke_benchmark_delivers_every_frame_once_to_its_user_only(
    postgres_url: str, tmp_path: Path
) -> None:
    results = bench(postgres_url, tmp_path, "--servers", "generated,generated-poll,floor")

    assert set(results) == {"generated", "generated-poll", "floor"}
    for name, [measurement] in results.items():
        assert measurement["delivered_percent"] == 100, name
        assert measurement["misdelivered"] == 0, name
        assert measurement["duplicates"] == 0, name
        assert 0 < measurement["cpu_us_per_frame"] < math.inf, name
        assert 0 < measurement["cpu_us_per_frame_at_rate"] < math.inf, name
        assert measurement["frames_per_second"] > 0, name
        assert 0 < measurement["p50_ms"] <= measurement["p99_ms"], name
        assert measurement["rss_mb"] > 0, name
        assert measurement["gc_percent"] is not None, name  # Python servers report their GC
    table = (tmp_path / "fanout.md").read_text()
    assert "| generated runtime (fastapi-pg-sse) |" in table
    assert "| generated runtime, poll mode (every 20 ms) |" in table
    assert "| floor: minimal FastAPI route, pre-encoded frames |" in table


def test_two_app_processes_deliver_every_event_once_per_connection(
    postgres_url: str, tmp_path: Path
) -> None:
    results = bench(postgres_url, tmp_path, "--processes", "2", "--connections", "100")

    rows = results["scale_out"]
    assert [(row["mode"], row["count"]) for row in rows] == [("processes", 1), ("processes", 2)]
    for row in rows:
        assert row["delivered_percent"] == 100, row
        assert row["duplicates"] == 0, row
        assert row["misdelivered"] == 0, row
        assert row["frames_per_second"] > 0, row


def test_the_streams_mode_delivers_every_frame_once_and_reports_memory(
    postgres_url: str, tmp_path: Path
) -> None:
    results = bench(postgres_url, tmp_path, "--streams", "600", "--servers", "generated,floor")

    assert set(results) == {"generated", "floor"}
    for name, [measurement] in results.items():
        assert measurement["delivered_percent"] == 100, name
        assert measurement["misdelivered"] == 0, name
        assert measurement["duplicates"] == 0, name
        assert measurement["idle_kb_per_connection"] > 0, name
        assert measurement["rss_mb"] > 0, name
        assert measurement["cpu_us_per_frame"] is None, name  # no maximum-rate phase
    assert "600 connections, 60 users" in (tmp_path / "fanout.md").read_text()
