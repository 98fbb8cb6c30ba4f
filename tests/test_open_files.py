"""asimapd raises its own open-file limit at start-up and says so.

Issue 11 target 4: 10,000 IDLE connections need far more descriptors than
the usual soft limit of 1024, so the server lifts its soft RLIMIT_NOFILE to
the hard limit before it forks the zygote (workers inherit it).  Checked
on a real ``asimapd`` started with a low soft limit, by reading
``/proc/PID/limits`` of the main process and of its zygote.
"""

from __future__ import annotations

import logging
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from asimap.ops.openfiles import raise_open_file_limit
from conftest import TlsFiles
from worker_harness import REPO, children_of, comm, mail_setup

LOW = 256


def _soft_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no open-file limit in /proc")


@pytest.fixture
def low_soft_limit() -> Iterator[int]:
    """Lower this process's soft limit for the test; the hard limit stays."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= LOW:
        pytest.fail(f"hard open-file limit {hard} leaves nothing to raise")
    resource.setrlimit(resource.RLIMIT_NOFILE, (LOW, hard))
    try:
        yield hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_raises_soft_to_hard_and_logs(
    low_soft_limit: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="asimap.ops.openfiles")
    new = raise_open_file_limit(max_connections=10)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft == new > LOW
    assert hard == low_soft_limit
    assert f"raised the open-file limit from {LOW} to {soft}" in caplog.text


def test_already_at_hard_limit_says_so(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="asimap.ops.openfiles")
    raise_open_file_limit(max_connections=10)
    caplog.clear()
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    raise_open_file_limit(max_connections=10)
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == before
    assert "already the hard limit" in caplog.text


def test_warns_when_the_hard_limit_is_too_low(
    caplog: pytest.LogCaptureFixture,
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    caplog.set_level(logging.INFO, logger="asimap.ops.openfiles")
    raise_open_file_limit(max_connections=10_000_000)
    assert "below the" in caplog.text and "--max-connections" in caplog.text
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _lower_soft_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (LOW, hard))


def test_real_server_raises_its_limit_before_forking(tls_files: TlsFiles) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    with mail_setup() as setup:
        log_path = setup.base / "asimapd.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "asimap.cli",
                    "--address=127.0.0.1",
                    "--port=0",
                    f"--cert={tls_files.cert}",
                    f"--key={tls_files.key}",
                    f"--pwfile={setup.pwfile}",
                    "--max-connections=20000",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=setup.base,
                env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO / "src")},
                preexec_fn=_lower_soft_limit,
            )
        try:
            deadline = time.monotonic() + 30
            while "listening on" not in log_path.read_text():
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.05)
            text = log_path.read_text()
            assert f"raised the open-file limit from {LOW} to" in text, text
            main_soft = _soft_limit(process.pid)
            assert main_soft > LOW
            if hard != resource.RLIM_INFINITY:
                assert main_soft == hard
            zygotes = [
                p for p in children_of(process.pid) if comm(p) == "asimap-zygote"
            ]
            assert zygotes, "no zygote"
            assert _soft_limit(zygotes[0]) == main_soft
        finally:
            process.terminate()
            process.wait(30)
