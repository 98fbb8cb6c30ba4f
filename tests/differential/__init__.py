"""A differential test: the same IMAP sessions against asimap and Dovecot.

Modules: :mod:`.servers` starts both (real processes, loopback),
:mod:`.messages` and :mod:`.sessions` are the data (mail and scripted
commands), :mod:`.wire` talks raw IMAP, :mod:`.tokens` and :mod:`.normalise`
remove what may legitimately differ, :mod:`.known` lists the differences
that remain with their reasons, :mod:`.compare` judges each answer, and
:mod:`.report` writes docs/compliance.md.  ``test_differential`` is the
fast subset in the default suite; ``scripts/differential`` the full run.
"""

import sys
from pathlib import Path

# bench.dovecot starts the private Dovecot; bench lives at the repository root.
_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)
