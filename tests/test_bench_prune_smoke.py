"""The pruning benchmark cannot rot: its smoke variant (`python bench/prune_at_scale.py
--smoke`, a few thousand events for a few seconds) fills a channel, prunes it in one statement
and in slices beside emitters, then emits and prunes in cycles, on real PostgreSQL.

The benchmark checks, and exits non-zero otherwise, that every emitted event was committed and
kept and that each prune deleted exactly the filled events; this test runs the command a person
types and checks what it reports, never a speed.
"""

import json
from pathlib import Path

import pytest

from tests.helpers import run_benchmark

pytestmark = pytest.mark.e2e


def test_the_smoke_benchmark_prunes_exactly_the_filled_events_and_reports_sizes(
    postgres_url: str, tmp_path: Path
) -> None:
    measurements = tmp_path / "prune.json"
    printed = run_benchmark(
        "bench/prune_at_scale.py", "--smoke", "--json", str(measurements), postgres_url=postgres_url
    )
    results = json.loads(measurements.read_text())["results"]

    modes = results["emitters"]
    assert list(modes) == ["no prune (baseline)", "one statement", "slices of 500"]
    for mode, [measurement] in modes.items():
        assert measurement["deleted"] == (0 if mode.startswith("no prune") else 2_000), mode
        assert measurement["emits"] > 0, mode
        assert 0 < measurement["p50_ms"] <= measurement["p99_ms"] <= measurement["max_ms"], mode
        assert measurement["wal_mb"] > 0, mode
    cycles = results["steady"]
    assert [cycle["cycle"] for cycle in cycles] == [1, 2, 3, 4]
    for cycle in cycles:
        assert cycle["total"] >= cycle["heap"] + cycle["indexes"] > 0, cycle
        assert cycle["deleted"] >= 0, cycle
    assert "| cycle | deleted | live |" in printed
