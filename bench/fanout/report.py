"""The markdown tables: per server, the median over the repeats with its range, and its ratio to
the floor measured in the same run; and the scale-out rows."""

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bench.fanout.measure import Measurement

FLOOR = "floor"
COLUMNS = (
    ("CPU/frame us", "cpu_us_per_frame", ".1f"),
    ("frames/s", "frames_per_second", ",.0f"),
    ("CPU/frame at rate us", "cpu_us_per_frame_at_rate", ".1f"),
    ("delivered %", "delivered_percent", ".1f"),
    ("misdelivered", "misdelivered", "d"),
    ("p50 ms", "p50_ms", ".2f"),
    ("p99 ms", "p99_ms", ".2f"),
    ("RSS MB", "rss_mb", ".0f"),
    ("idle KB/conn", "idle_kb_per_connection", ".1f"),
    ("GC %", "gc_percent", ".1f"),
    ("max GC pause ms", "gc_max_pause_ms", ".1f"),
)


def servers_table(results: Mapping[str, Sequence[Measurement]], labels: Mapping[str, str]) -> str:
    """One row per server; each cell `median (min-max) xratio-to-the-floor`."""
    lines = [
        "| server | " + " | ".join(title for title, _, _ in COLUMNS) + " |",
        "| --- |" + " --- |" * len(COLUMNS),
    ]
    floor = results.get(FLOOR)
    for name, measurements in results.items():
        cells = []
        for _, attribute, spec in COLUMNS:
            values = [getattr(m, attribute) for m in measurements]
            reference = [getattr(m, attribute) for m in floor] if floor and name != FLOOR else []
            cells.append(_cell(values, reference, spec))
        lines.append(f"| {labels[name]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(values: list[float | None], reference: list[float | None], spec: str) -> str:
    known = [value for value in values if value is not None]
    if not known:
        return "—"
    median = statistics.median(known)
    text = _number(median, spec)
    if len(known) > 1:
        text += f" ({_number(min(known), spec)}-{_number(max(known), spec)})"
    base = [value for value in reference if value is not None]
    if base and (floor := statistics.median(base)) and math.isfinite(median / floor):
        text += f" x{median / floor:.2f}"
    return text


def _number(value: float, spec: str) -> str:
    if spec == "d":
        return f"{value:.0f}" if value == int(value) else f"{value:.1f}"
    return format(value, spec)


@dataclass(frozen=True)
class ScaleOutRow:
    mode: str
    """`workers` (one port, the kernel spreads) or `processes` (one port each)."""
    count: int
    connections: int
    frames_per_second: float
    cpu_us_per_frame: float
    delivered_percent: float
    duplicates: int
    misdelivered: int


def scale_out_table(rows: Sequence[ScaleOutRow]) -> str:
    lines = [
        "| mode | count | connections | frames/s | CPU/frame us | delivered % | duplicates"
        " | misdelivered |",
        "| --- |" + " --- |" * 7,
    ]
    for row in rows:
        lines.append(
            f"| {row.mode} | {row.count} | {row.connections} | {row.frames_per_second:,.0f}"
            f" | {row.cpu_us_per_frame:.1f} | {row.delivered_percent:.1f} | {row.duplicates}"
            f" | {row.misdelivered} |"
        )
    return "\n".join(lines)
