"""asimap and Dovecot side by side: the fast subset of the differential run.

100 corpus messages, every hand-made edge case and every command family
(FETCH of every item and section, SEARCH with every key, SORT and THREAD
on every key, LIST/LSUB/STATUS, CONDSTORE/QRESYNC/ESEARCH) go to asimap
(MH store, worker mode, real sockets) and to a private Dovecot; each
command is one test.  Known differences are in ``known.py``: those that
are defects are strict expected failures here, so a fix shows up as a
failure until its entry is removed.  ``scripts/differential`` runs the
whole corpus and writes docs/compliance.md.
"""

from __future__ import annotations

import dataclasses

import pytest

from conftest import require_tool

from .compare import judge, render_diff
from .harness import Run, build_sessions, execute
from .known import KNOWN
from .normalise import label_of, normalise
from .run import tag_of

FAST_CORPUS = 100
SESSIONS = build_sessions(FAST_CORPUS)
LABELS = [
    label_of(session.name, index, command)
    for session in SESSIONS
    for index, command in enumerate(session.commands, start=1)
]


def _params() -> list[object]:
    params: list[object] = []
    for label in LABELS:
        expected = [e for e in KNOWN if e.expected_failure and e.applies_to(label)]
        marks = (
            [
                pytest.mark.xfail(
                    strict=True,
                    reason="; ".join(
                        (f"issue 10 point {e.point}: " if e.point else "open: ")
                        + e.summary
                        for e in expected
                    ),
                )
            ]
            if expected
            else []
        )
        params.append(pytest.param(label, marks=marks, id=label[:100]))
    return params


@pytest.fixture(scope="module")
def run() -> Run:
    require_tool("dovecot")
    return execute(SESSIONS)


@pytest.mark.parametrize("label", _params())
def test_same_answer_as_dovecot(run: Run, label: str) -> None:
    """The normalised answers are equal, or every difference is a known
    one that is not a defect of ours."""
    verdict = run.verdicts[label]
    assert verdict.clean, render_diff(verdict)
    defects = [e.key for e in KNOWN if e.key in verdict.used and e.expected_failure]
    assert not defects, f"known defect still present: {defects}\n" + render_diff(
        verdict
    )


def test_every_known_difference_still_occurs(run: Run) -> None:
    """An entry for commands this run has must explain something here;
    otherwise it is stale (the difference is gone) and must go."""
    used = run.used_keys()
    stale = [
        entry.key
        for entry in KNOWN
        if not entry.expected_failure
        and any(entry.applies_to(label) for label in run.verdicts)
        and entry.key not in used
    ]
    assert not stale


def test_the_comparison_catches_a_changed_answer(run: Run) -> None:
    """A test that cannot fail is a defect: change asimap's real answers
    a little, one way at a time, and every change must be reported."""
    session = "fetch-edge"
    transcript = run.ours[session]
    theirs = run.theirs[session]
    mutations = {
        "size": (b"RFC822.SIZE 3", b"RFC822.SIZE 4"),
        "flag": (b"\\Seen", b"\\Flagged"),
        "subject": (b'"groups"', b'"Groups"'),
        "structure": (b'"7BIT" 9 ', b'"7BIT" 8 '),
        "line count": (b'"7BIT" 10 1 ', b'"7BIT" 10 3 '),
        "body octet": (b"see attached", b"see attachee"),
        "tagged status": (b"OK Fetch completed", b"NO Fetch completed"),
    }
    for name, (old, new) in mutations.items():
        caught = False
        for index, answer in enumerate(transcript.answers, start=1):
            if not any(old in response for response in answer):
                continue
            changed = [response.replace(old, new) for response in answer]
            command = transcript.commands[index - 1]
            tag = tag_of(index)
            original = run.verdicts[label_of(session, index, command)]
            mutated = dataclasses.replace(
                original.exchange, ours=normalise(tag, changed, command)
            )
            assert mutated.theirs == normalise(tag, theirs.answers[index - 1], command)
            if not judge(mutated, KNOWN).clean:
                caught = True
                break
        assert caught, f"a changed {name} went unnoticed"


def test_the_compliance_page_lists_every_normalisation() -> None:
    """docs/compliance.md tells users what is removed before comparing;
    a rule added to normalise.py without a line there fails here."""
    from pathlib import Path

    from .normalise import RULES

    page = (Path(__file__).resolve().parents[2] / "docs" / "compliance.md").read_text()
    missing = [what for what, why in RULES if f"| {what} | {why} |" not in page]
    assert not missing
