"""The listener-read benchmark cannot rot: its smoke variant (`python bench/fanout_verification.py
--smoke`, 20 streams, a burst of 2,000 events and 20 one by one) runs both listeners, the
runtime's and 0.2's trusting one, on real PostgreSQL, and every event reaches its user's stream
once, in id order (the benchmark checks each stream and fails otherwise).

The run is the command a person types, in a process of its own; it waits on event counts,
never on time, so a loaded machine makes it slower, not wrong.
"""

import json
from pathlib import Path

import pytest

from tests.helpers import run_benchmark

pytestmark = pytest.mark.e2e


def test_the_smoke_read_benchmark_delivers_every_event_once_in_order_by_both_listeners(
    postgres_url: str, tmp_path: Path
) -> None:
    figures = tmp_path / "fanout_verification.json"
    printed = run_benchmark(
        "bench/fanout_verification.py", "--smoke", "--json", str(figures), postgres_url=postgres_url
    )
    assert "every event delivered once, in id order" in printed
    measured = json.loads(figures.read_text())
    assert measured["load"] == {"users": 20, "burst_events": 2000, "one_by_one": 20}
    assert set(measured["results"]) == {"trusting", "verifying"}
    for name, [measurement] in measured["results"].items():
        assert measurement["burst_events_per_second"] > 0, name
        assert measurement["median_ms"] >= 0, name  # 0.2's may deliver before the commit returns
