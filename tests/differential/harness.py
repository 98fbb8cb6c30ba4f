"""One whole differential run: load, run every session, judge every answer.

Used by the fast test (100 corpus messages) and by ``scripts/differential``
(the whole corpus), so both compare in exactly the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .compare import Verdict, judge
from .known import KNOWN
from .messages import corpus_messages, edge_messages
from .normalise import Exchange
from .run import Transcript, pair, run_session
from .servers import Endpoint, asimap_server, dovecot_server
from .sessions import Session, all_sessions


def build_sessions(corpus_limit: int | None) -> list[Session]:
    return list(all_sessions(corpus_messages(corpus_limit), edge_messages()))


@dataclass
class Run:
    sessions: list[Session]
    ours: dict[str, Transcript] = field(default_factory=dict)
    theirs: dict[str, Transcript] = field(default_factory=dict)
    exchanges: list[Exchange] = field(default_factory=list)
    verdicts: dict[str, Verdict] = field(default_factory=dict)

    def used_keys(self) -> set[str]:
        return {key for verdict in self.verdicts.values() for key in verdict.used}


def execute(sessions: list[Session], *, workers: bool = True) -> Run:
    """Start both servers, run every session on each, judge every answer."""
    run = Run(sessions)
    with asimap_server(workers=workers) as ours, dovecot_server() as theirs:
        _run_on(run, ours, theirs)
    return run


def _run_on(run: Run, ours: Endpoint, theirs: Endpoint) -> None:
    for session in run.sessions:
        mine = run_session(ours, session)
        other = run_session(theirs, session)
        run.ours[session.name] = mine
        run.theirs[session.name] = other
        for exchange in pair(mine, other):
            run.exchanges.append(exchange)
            run.verdicts[exchange.label] = judge(exchange, KNOWN)
