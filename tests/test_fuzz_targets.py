"""The fuzz targets (tests/fuzz/targets.py) in the default test suite.

Three bounded passes over each target, a few seconds each:

* every input of its seed corpus, in process (crashes found earlier were
  added there, so they stay fixed);
* a hypothesis property over random bytes (modest ``max_examples``);
* a short coverage-guided run under atheris in a subprocess, from the seed
  corpus, its new inputs and any crash written to a temporary directory.
  Under ``CI`` a missing atheris fails this test instead of skipping it.

The long runs and their figures are in docs/reliability.md ("Fuzzing").
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz import targets

RUNNER = Path(__file__).parent / "fuzz" / "run.py"
NAMES = sorted(targets.TARGETS)

#: Seconds of atheris per target in the default suite.
SHORT_RUN_S = 2


@pytest.mark.parametrize("name", NAMES)
def test_seed_corpus_replays(name: str) -> None:
    files = targets.corpus_files(name)
    assert len(files) >= 3, f"seed corpus of {name} is missing"
    for path in files:
        targets.TARGETS[name](path.read_bytes())


@pytest.mark.parametrize("name", NAMES)
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.binary(max_size=600))
def test_random_bytes(name: str, data: bytes) -> None:
    targets.TARGETS[name](data)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_seeds(name: str, data: st.DataObject) -> None:
    """Random bytes rarely get past a parser's first checks; edits of real
    inputs (the seed corpus) do."""
    seeds = [path.read_bytes() for path in targets.corpus_files(name)]
    seed = bytearray(data.draw(st.sampled_from(seeds)))
    edits = data.draw(
        st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6)
    )
    for position, byte in edits:
        at = position % (len(seed) + 1)
        if byte % 3 == 0:
            seed.insert(at, byte)
        elif byte % 3 == 1:
            del seed[at : at + 1 + byte % 7]
        elif at < len(seed):
            seed[at] = byte
    targets.TARGETS[name](bytes(seed))


def _atheris_available() -> None:
    if importlib.util.find_spec("atheris") is not None:
        return
    if os.environ.get("CI"):
        pytest.fail("atheris is required under CI (requirements-test.txt)")
    pytest.skip("atheris is not installed")


@dataclass
class ShortRun:
    returncode: int
    crashes: list[str]
    log: str


@pytest.fixture(scope="module")
def short_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ShortRun]:
    """Every target under atheris for SHORT_RUN_S seconds, all at once (the
    time limit is wall-clock, so running them side by side keeps the whole
    pass to a few seconds plus the start-up of the slowest)."""
    _atheris_available()
    started = {}
    for name in NAMES:
        out = tmp_path_factory.mktemp(f"fuzz-{name}")
        (out / "corpus").mkdir()
        (out / "crashes").mkdir()
        command = [
            sys.executable,
            str(RUNNER),
            name,
            str(out / "corpus"),
            str(targets.CORPUS_ROOT / name),
            f"-max_total_time={SHORT_RUN_S}",
            "-timeout=10",
            "-rss_limit_mb=1536",
            "-max_len=8192",
            f"-artifact_prefix={out / 'crashes'}/",
            "-print_final_stats=1",
        ]
        log = (out / "log").open("w")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        started[name] = (process, out, log)
    runs = {}
    for name, (process, out, log) in started.items():
        try:
            returncode = process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            returncode = process.wait()
        log.close()
        runs[name] = ShortRun(
            returncode,
            sorted(p.name for p in (out / "crashes").iterdir()),
            (out / "log").read_text(errors="replace"),
        )
    return runs


@pytest.mark.parametrize("name", NAMES)
def test_short_atheris_run(name: str, short_runs: dict[str, ShortRun]) -> None:
    run = short_runs[name]
    assert run.returncode == 0 and not run.crashes, (run.crashes, run.log[-3000:])
    assert "stat::number_of_executed_units" in run.log
