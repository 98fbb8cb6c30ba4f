"""bench.soak_plot draws a soak CSV as a well-formed SVG: one polyline per
series, each point inside its panel, the axis covering the highest value."""

from __future__ import annotations

import csv
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.soak_plot import PANELS, main, nice_top

COLUMNS = [
    "seconds",
    "worker_pss_kib",
    "worker_fds",
    "main_pss_kib",
    "main_fds",
    "commands",
    "p50_ms",
    "p95_ms",
]


def test_soak_csv_becomes_svg_with_one_line_per_series(tmp_path: Path) -> None:
    source, target = tmp_path / "soak.csv", tmp_path / "soak.svg"
    with source.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for i in range(1, 41):
            writer.writerow(
                [15 * i, 40_000 + 100 * i, 500, 25_000, 57, 900, 300, 1_700]
            )
    assert main([str(source), str(target), "--title", "a & b"]) == 0
    root = ET.parse(target).getroot()
    lines = root.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == sum(len(p.series) for p in PANELS) == 6
    for line in lines:
        points = [
            tuple(map(float, p.split(","))) for p in line.get("points", "").split()
        ]
        assert len(points) == 40
        assert all(
            0 <= x <= 720 and 0 <= y <= float(root.get("height", 0)) for x, y in points
        )
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "a & b" in texts
    assert "2,000" in texts  # the latency axis reaches above the 1,700 ms p95


def test_axis_tops_are_round() -> None:
    assert [nice_top(v) for v in (0, 0.3, 7, 12, 1_700, 50_991)] == [
        1.0,
        0.5,
        10.0,
        20.0,
        2_000.0,
        100_000.0,
    ]
