"""The full differential run: ``scripts/differential [--corpus N] [--no-write]``.

Every corpus message (or the first N), every edge case and every session
against asimap and Dovecot; prints each unexplained difference as a diff,
writes the result section of docs/compliance.md, and exits non-zero when
some difference is not explained by ``known.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.dovecot import dovecot_version

from .compare import render_diff
from .harness import build_sessions, execute
from .known import KNOWN
from .report import result_section, write

REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/differential")
    parser.add_argument("--corpus", type=int, default=None, help="first N messages")
    parser.add_argument(
        "--no-write", action="store_true", help="do not update docs/compliance.md"
    )
    parser.add_argument(
        "--workers", choices=("on", "off"), default="on", help="asimap worker mode"
    )
    args = parser.parse_args(argv)
    sessions = build_sessions(args.corpus)
    run = execute(sessions, workers=args.workers == "on")
    unexplained = [v for v in run.verdicts.values() if not v.clean]
    for verdict in unexplained:
        print(render_diff(verdict)[:4000], end="\n\n")
    used = run.used_keys()
    flipped = [e.key for e in KNOWN if e.expected_failure and e.key not in used]
    corpus = sum(1 for c in sessions[0].commands if c.startswith(b"APPEND corpus "))
    print(
        f"{len(run.exchanges)} commands compared in {len(sessions)} sessions "
        f"({corpus} corpus messages): "
        f"{sum(e.same for e in run.exchanges)} identical, "
        f"{len(unexplained)} with unexplained differences"
    )
    if flipped:
        print(f"known defects no longer seen (fixed?): {', '.join(flipped)}")
    if not args.no_write:
        path = REPO / "docs" / "compliance.md"
        write(path, result_section(run, REPO, dovecot_version(), corpus))
        print(f"wrote {path}")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
