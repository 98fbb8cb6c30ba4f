"""Draw a soak CSV (``scripts/soak --csv``) as one SVG the docs can carry.

Three panels over the run's minutes, one polyline per series: memory
(worker and main process PSS, MiB), open descriptors (worker, main) and
command latency (median and 95th percentile, ms). Plain SVG written by
hand so that the plot needs nothing beyond the standard library: it is
there to show whether a line climbs (a leak), not to be precise.

    python -m bench.soak_plot soak.csv docs/soak-30min.svg [--title TEXT]
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

WIDTH = 720
PANEL_HEIGHT = 170
LEFT, RIGHT, TOP, BOTTOM = 64, 150, 36, 34
COLOURS = ("#1f77b4", "#d62728")


@dataclass(frozen=True)
class Series:
    """One line: its legend label and the CSV column, scaled."""

    label: str
    column: str
    scale: float = 1.0


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    series: tuple[Series, ...]


PANELS = (
    Panel(
        "Memory (PSS)",
        "MiB",
        (
            Series("worker", "worker_pss_kib", 1 / 1024),
            Series("main process", "main_pss_kib", 1 / 1024),
        ),
    ),
    Panel(
        "Open descriptors",
        "count",
        (Series("worker", "worker_fds"), Series("main process", "main_fds")),
    ),
    Panel(
        "Command latency",
        "ms",
        (Series("median", "p50_ms"), Series("95th percentile", "p95_ms")),
    ),
)


def nice_top(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above ``value``:
    round axis ends, so that two plots are easy to compare by eye."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)


def label(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == 0 else f"{value:g}"


def panel_svg(
    panel: Panel, rows: Sequence[dict[str, float]], top: float, x_end: float
) -> list[str]:
    """One panel's frame, ticks, polylines and legend, ``top`` px down."""
    inner_w = WIDTH - LEFT - RIGHT
    inner_h = PANEL_HEIGHT - TOP - BOTTOM
    y0 = top + TOP
    y_max = nice_top(max(row[s.column] * s.scale for s in panel.series for row in rows))
    out = [
        f'<text x="{LEFT}" y="{y0 - 10:.0f}" font-weight="bold">'
        f"{escape(panel.title)} ({escape(panel.unit)})</text>",
        f'<rect x="{LEFT}" y="{y0:.0f}" width="{inner_w}" height="{inner_h}"'
        ' fill="none" stroke="#999"/>',
    ]
    for i in range(6):
        value = y_max * i / 5
        y = y0 + inner_h - inner_h * i / 5
        out.append(
            f'<line x1="{LEFT}" x2="{LEFT + inner_w}" y1="{y:.1f}" y2="{y:.1f}"'
            ' stroke="#eee"/>'
        )
        out.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{label(value)}</text>"
        )
    minutes = max(1, math.ceil(x_end / 60))
    tick_every = max(1, minutes // 6)
    for minute in range(0, minutes + 1, tick_every):
        x = LEFT + inner_w * minute * 60 / x_end
        if x > LEFT + inner_w + 0.5:
            break
        out.append(
            f'<text x="{x:.1f}" y="{y0 + inner_h + 16:.0f}" text-anchor="middle">'
            f"{minute}</text>"
        )
    out.append(
        f'<text x="{LEFT + inner_w / 2:.0f}" y="{y0 + inner_h + 30:.0f}"'
        ' text-anchor="middle" fill="#555">minutes</text>'
    )
    for colour, series in zip(COLOURS, panel.series, strict=False):
        points = " ".join(
            f"{LEFT + inner_w * row['seconds'] / x_end:.1f},"
            f"{y0 + inner_h - inner_h * row[series.column] * series.scale / y_max:.1f}"
            for row in rows
        )
        out.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}"'
            ' stroke-width="1.5"/>'
        )
    for i, (colour, series) in enumerate(zip(COLOURS, panel.series, strict=False)):
        y = y0 + 12 + 18 * i
        x = LEFT + inner_w + 12
        out.append(
            f'<line x1="{x}" x2="{x + 20}" y1="{y}" y2="{y}" stroke="{colour}"'
            ' stroke-width="2"/>'
        )
        out.append(f'<text x="{x + 26}" y="{y + 4}">{escape(series.label)}</text>')
    return out


def render(rows: Sequence[dict[str, float]], title: str) -> str:
    """The whole SVG document for ``rows`` (the CSV's rows, as numbers)."""
    if not rows:
        raise ValueError("no samples to plot")
    x_end = max(row["seconds"] for row in rows)
    height = 30 + PANEL_HEIGHT * len(PANELS)
    body = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}"'
        f' viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="{WIDTH / 2:.0f}" y="20" text-anchor="middle" font-size="13"'
        f' font-weight="bold">{escape(title)}</text>',
    ]
    for i, panel in enumerate(PANELS):
        body += panel_svg(panel, rows, 30 + PANEL_HEIGHT * i, x_end)
    body.append("</svg>")
    return "\n".join(body) + "\n"


def read_rows(path: Path) -> list[dict[str, float]]:
    with path.open(newline="") as source:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(source)]


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", type=Path)
    parser.add_argument("svg", type=Path)
    parser.add_argument("--title", default="Soak")
    args = parser.parse_args(argv)
    args.svg.write_text(render(read_rows(args.csv), args.title))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
