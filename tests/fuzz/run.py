"""Run one fuzz target under atheris (libFuzzer): ``run.py TARGET [ARGS]``.

ARGS are libFuzzer's (corpus directories, ``-max_total_time=N``,
``-artifact_prefix=DIR/``, ``-runs=N``, a crash file to reproduce ...);
``scripts/fuzz`` builds them.  asimap's modules are instrumented for
coverage as they are imported; the test helpers the targets reuse are not.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

# Only asimap is instrumented; the test helpers the targets import (the
# reference decoder, the grammar checker) are imported here but not traced.
with atheris.instrument_imports(include=["asimap"]):
    import targets


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in targets.TARGETS:
        names = ", ".join(targets.TARGETS)
        sys.exit(f"usage: run.py TARGET [libFuzzer args]; targets: {names}")
    target = targets.TARGETS[sys.argv[1]]
    # libFuzzer runs argv[0] again through the shell for -merge (and
    # -fork): give it this interpreter and script, the target after.
    command = f"{sys.executable} {Path(__file__).resolve()} {sys.argv[1]}"
    atheris.Setup([command, *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
