"""The results as Markdown, and their place in ``docs/benchmarks.md``.

The document keeps its prose; only the part between the two markers below
is rewritten by each run, so a reader always sees the latest figures with
the machine, date, commit and load they were measured under.
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path

from bench.suite.model import Metric, Scale, ServerRun, WorkloadResult
from bench.suite.servers import python_version, server_python

BEGIN = "<!-- bench.suite results: begin (rewritten by python -m bench.suite) -->"
END = "<!-- bench.suite results: end -->"


def machine() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        memory = 0.0
    return (
        f"{os.cpu_count()} cores ({model}), {memory:.0f} GiB, Linux "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def _value(metric: Metric, value: float | None) -> str:
    if value is None:
        return "-"
    if metric.unit == "ms" and value >= 10_000:
        return f"{value / 1000:,.1f} s"
    if metric.unit in ("", "KiB", "cmd/s") or abs(value) >= 100:
        text = f"{value:,.0f}"
    else:
        text = f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"
    if metric.unit and metric.unit != "cmd/s":
        unit = "s" if metric.unit == "ms" and value >= 10_000 else metric.unit
        if not text.endswith(" s"):
            text += f" {unit}"
    return text


def _ratio(metric: Metric, a: float | None, d: float | None) -> str:
    """asimap/Dovecot; marked when it misses or meets parity."""
    if not metric.better or a is None or d is None or a <= 0 or d <= 0:
        return ""
    return f"{a / d:.2f}"


def workload_table(result: WorkloadResult, servers: Sequence[str]) -> str:
    measured = [r for r in result.runs if not r.problem]
    names = [s for s in servers if result.run(s) is not None]
    lines = [f"### {result.title}", "", result.setup, ""]
    header = "| figure | " + " | ".join(names)
    rule = "|---|" + "---:|" * len(names)
    has_ratio = "asimap" in names and "dovecot" in names
    if has_ratio:
        header += " | asimap/Dovecot"
        rule += "---:|"
    lines += [header + " |", rule]
    for metric in result.metrics:
        cells = []
        for name in names:
            run = result.run(name)
            value = None if run is None or run.problem else run.values.get(metric.key)
            cells.append(_value(metric, value))
        row = f"| {metric.label} | " + " | ".join(cells)
        if has_ratio:
            a, d = result.run("asimap"), result.run("dovecot")
            av = None if a is None or a.problem else a.values.get(metric.key)
            dv = None if d is None or d.problem else d.values.get(metric.key)
            row += f" | {_ratio(metric, av, dv)}"
        lines.append(row + " |")
    lines.append("")
    loads = ", ".join(
        f"{r.server} {r.load[0]:.1f}" for r in result.runs if r.load != (0.0, 0.0, 0.0)
    )
    if loads:
        lines.append(f"Load average (1 min) when each server started: {loads}.")
    for run in result.runs:
        if run.problem:
            lines.append(f"- **{run.server} not measured**: `{run.problem[:300]}`")
        for note in run.notes:
            lines.append(f"- {run.server}: {note}")
    del measured
    return "\n".join(lines).rstrip() + "\n"


def document_block(
    results: Sequence[WorkloadResult],
    servers: Sequence[str],
    scale: Scale,
    started: str,
    commit: str,
    dovecot: str,
) -> str:
    """The results block of one run; see :func:`merge_block` for keeping
    the workloads a run did not measure."""
    parts = [
        BEGIN,
        "",
        f"{dovecot}; {machine()}; asimapd runs on {server_python()}"
        f" ({python_version(server_python())}).  Ratios are asimap/Dovecot:"
        " above 1 is better for commands/s and MB/s, below 1 for times and"
        " memory.",
        "",
    ]
    stamp = f"Measured {started} UTC, asimap commit `{commit}`, scale `{scale.name}`."
    for result in results:
        table = workload_table(result, servers)
        title, _, rest = table.partition("\n")
        parts.append(f"{title}\n\n{stamp}\n{rest}")
    parts.append(END)
    return "\n".join(parts)


def _sections(block: str) -> dict[str, str]:
    """``### title`` -> that section's text, from a results block."""
    inner = block.partition(BEGIN)[2].partition(END)[0]
    sections: dict[str, str] = {}
    for chunk in inner.split("\n### ")[1:]:
        title = chunk.split("\n", 1)[0]
        sections[title] = "### " + chunk.rstrip() + "\n"
    return sections


def merge_block(old: str, new: str) -> str:
    """``new``, plus the workload sections of ``old`` that ``new`` lacks,
    in workload order (titles start with their number)."""
    sections = _sections(old)
    sections.update(_sections(new))
    inner = new.partition(BEGIN)[2].partition(END)[0]
    head = ("\n" + inner).partition("\n### ")[0].strip()

    def order(title: str) -> tuple[int, str]:
        number = title.split(".", 1)[0]
        return (int(number) if number.isdigit() else 99, title)

    body = "\n".join(sections[title] for title in sorted(sections, key=order))
    return f"{BEGIN}\n\n{head}\n\n{body}{END}" if body else f"{BEGIN}\n\n{head}\n{END}"


def rewrite_document(path: Path, block: str) -> None:
    """Put ``block`` in place of the marked one (keeping the sections of
    workloads this run did not measure), or append it; atomically."""
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        old, _, tail = rest.partition(END)
        text = head + merge_block(BEGIN + old + END, block) + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    temp = path.with_suffix(".md.new")
    temp.write_text(text)
    os.replace(temp, path)


def dovecot_version() -> str:
    try:
        out = subprocess.run(
            ["dovecot", "--version"], capture_output=True, text=True, timeout=10
        )
        return f"Dovecot {out.stdout.split()[0]}"
    except (OSError, IndexError, subprocess.SubprocessError):
        return "Dovecot (not installed)"


def run_summary(run: ServerRun) -> str:
    shown = ", ".join(
        f"{k}={v:.1f}" for k, v in run.values.items() if isinstance(v, int | float)
    )
    return f"{run.server}: {shown or run.problem}"
