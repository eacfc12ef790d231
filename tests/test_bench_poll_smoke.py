"""The poll mode's benchmarks cannot rot: their smoke variants (a second or so each, on the test
server) run as a person types them, in a process of their own. `bench/poll_delivery.py` fails
unless every event arrives once, in order; here its figures must be there and positive, as must
`bench/emit_throughput.py --only delivery`'s, for both delivery modes. Never a speed."""

import json
import re
from pathlib import Path

import pytest

from tests.helpers import run_benchmark

pytestmark = pytest.mark.e2e


def test_poll_delivery_delivers_every_event_once_in_order_in_both_modes(
    postgres_url: str, tmp_path: Path
) -> None:
    figures = tmp_path / "poll_delivery.json"
    printed = run_benchmark(
        "bench/poll_delivery.py",
        *("--seconds", "0.5", "--rate", "40", "--repeats", "1", "--json", str(figures)),
        postgres_url=postgres_url,
    )
    assert "every event delivered once, in order" in printed
    results = json.loads(figures.read_text())
    assert set(results) == {"notify", "poll"}
    for mode, [measured] in results.items():
        assert measured["events"] == 20, mode
        assert 0 < measured["p50_ms"] <= measured["p99_ms"], mode


def test_emit_throughput_compares_poll_delivery_with_notify_delivery(postgres_url: str) -> None:
    printed = run_benchmark(
        "bench/emit_throughput.py",
        *("--only", "delivery", "--seconds", "0.3", "--repeats", "1"),
        postgres_url=postgres_url,
    )
    rows = re.findall(r"^ +(\d+) +(\d+) \(.*?\) +(\d+) \(.*?\) +([\d.]+)x", printed, re.MULTILINE)
    assert [int(connections) for connections, *_ in rows] == [1, 4, 16], printed
    for _, notify, poll, ratio in rows:
        assert int(notify) > 0 and int(poll) > 0 and float(ratio) > 0, printed
