"""Run the sessions against both servers and pair up their answers."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from .normalise import Exchange, label_of, normalise
from .servers import PASSWORD, USER, Endpoint
from .sessions import Session
from .wire import WireError

_VARIABLE = re.compile(rb"\$\{(\w+)\}")
_CAPTURES = {
    b"UIDVALIDITY": re.compile(rb"UIDVALIDITY (\d+)"),
    b"HIGHESTMODSEQ": re.compile(rb"HIGHESTMODSEQ (\d+)"),
}


@dataclass
class Transcript:
    """What one server answered to each command of one session."""

    session: str
    commands: list[bytes] = field(default_factory=list)
    answers: list[list[bytes]] = field(default_factory=list)


def tag_of(index: int) -> bytes:
    return b"d%d" % index


def run_session(endpoint: Endpoint, session: Session) -> Transcript:
    """One connection: LOGIN, every command (variables filled in), LOGOUT."""
    transcript = Transcript(session.name)
    for data in session.deliveries:
        endpoint.deliver(data)
    client = endpoint.connect()
    values: dict[bytes, bytes] = {}
    try:
        login = client.run(
            b"d0", b'LOGIN "%s" "%s"' % (USER.encode(), PASSWORD.encode())
        )
        if not login[-1].startswith(b"d0 OK"):
            raise AssertionError(f"{endpoint.name} refused the login: {login!r}")
        for index, command in enumerate(session.commands, start=1):
            # Only the command line: literal data (an APPENDed shell
            # script, say) may hold "${...}" too.
            line, crlf, data = command.partition(b"\r\n")
            sent = _VARIABLE.sub(lambda m: values.get(m[1], b"0"), line) + crlf + data
            try:
                answer = client.run(tag_of(index), sent)
            except WireError as exc:
                where = label_of(session.name, index, command)
                raise WireError(f"{endpoint.name}: {where}: {exc}") from exc
            for response in answer:
                for name, pattern in _CAPTURES.items():
                    match = pattern.search(response)
                    if match is not None:
                        values[name] = match[1]
            transcript.commands.append(command)
            transcript.answers.append(answer)
        client.run(b"d9999", b"LOGOUT")
    finally:
        client.close()
    return transcript


def pair(ours: Transcript, theirs: Transcript) -> Iterable[Exchange]:
    for index, command in enumerate(ours.commands, start=1):
        tag = tag_of(index)
        yield Exchange(
            ours.session,
            index,
            command,
            normalise(tag, ours.answers[index - 1], command),
            normalise(tag, theirs.answers[index - 1], command),
        )


def run_all(
    ours: Endpoint, theirs: Endpoint, sessions: Iterable[Session]
) -> list[Exchange]:
    """Each session on asimap, then on Dovecot; sessions run in order (the
    setup session first) on the same data."""
    exchanges: list[Exchange] = []
    for session in sessions:
        exchanges.extend(pair(run_session(ours, session), run_session(theirs, session)))
    return exchanges
