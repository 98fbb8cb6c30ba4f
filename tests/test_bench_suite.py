"""The benchmark suite's own plumbing: report placement and process memory.

The workloads themselves are benchmarks, never run by pytest; these check
the parts a wrong figure would come from without anyone noticing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.suite.model import Metric, ServerRun, WorkloadResult
from bench.suite.report import BEGIN, END, rewrite_document, workload_table
from bench.suite.servers import descendants, pss_kib


def test_rewrite_replaces_only_the_marked_block(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Title\n\nprose\n\n{BEGIN}\nold figures\n{END}\n\nmore prose\n")
    rewrite_document(doc, f"{BEGIN}\nnew figures\n{END}")
    text = doc.read_text()
    assert "old figures" not in text and "new figures" in text
    assert text.startswith("# Title\n\nprose\n\n") and text.endswith("more prose\n")
    assert text.count(BEGIN) == 1 and text.count(END) == 1


def test_rewrite_appends_when_there_is_no_block(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Title\n")
    rewrite_document(doc, f"{BEGIN}\nfigures\n{END}")
    assert doc.read_text() == f"# Title\n\n{BEGIN}\nfigures\n{END}\n"


def test_table_ratio_is_asimap_over_dovecot_and_skips_counts() -> None:
    result = WorkloadResult(
        "w",
        "W",
        "setup",
        (
            Metric("cmd_s", "commands/s", "cmd/s", "higher"),
            Metric("errors", "errors", "", ""),
            Metric("p99_ms", "p99", "ms"),
        ),
    )
    result.runs = [
        ServerRun("asimap", values={"cmd_s": 500, "errors": 2, "p99_ms": 30}),
        ServerRun("dovecot", values={"cmd_s": 1000, "errors": 0, "p99_ms": 20}),
    ]
    table = workload_table(result, ["asimap", "dovecot"])
    assert "| commands/s | 500 | 1,000 | 0.50 |" in table
    assert "| errors | 2 | 0 |  |" in table
    assert "| p99 | 30.0 ms | 20.0 ms | 1.50 |" in table


def test_pss_counts_a_process_tree() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        tree = descendants(os.getpid())
        assert child.pid in tree
        alone = pss_kib([os.getpid()])
        assert alone > 1000  # a Python interpreter is megabytes
        assert pss_kib([os.getpid(), child.pid]) > alone
    finally:
        child.kill()
        child.wait()


def test_a_partial_run_keeps_the_other_workloads(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(
        f"intro\n\n{BEGIN}\n\nold machine\n\n### 1. One\n\nold one\n\n"
        f"### 3. Three\n\nold three\n{END}\n\noutro\n"
    )
    rewrite_document(doc, f"{BEGIN}\n\nnew machine\n\n### 2. Two\n\nnew two\n{END}")
    text = doc.read_text()
    assert "old machine" not in text and "new machine" in text
    assert text.index("old one") < text.index("new two") < text.index("old three")
    rewrite_document(doc, f"{BEGIN}\n\nnewer\n\n### 1. One\n\nnew one\n{END}")
    text = doc.read_text()
    assert "old one" not in text and text.count("### 1. One") == 1
    assert "new two" in text and "old three" in text
    assert text.startswith("intro\n\n") and text.endswith("\n\noutro\n")
