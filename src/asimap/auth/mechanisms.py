"""Which SASL mechanisms a connection may offer, for IMAP and POP3 alike.

PLAIN and LOGIN need nothing but ``authenticate(username, password)``,
which every authenticator has.  SCRAM-SHA-256 needs the stored salted
password, which only an authenticator implementing
:class:`~asimap.auth.scram_exchange.ScramAuthenticator` can give (the
password-file one can; a worker's replay authenticator and simple test
doubles cannot), so it is offered only with such an authenticator --
advertising a mechanism that cannot succeed would break clients that
pick the strongest one listed.
"""

from __future__ import annotations

from asimap.auth import sasl, scram
from asimap.auth.scram_exchange import ScramAuthenticator


def offered(authenticator: object) -> tuple[str, ...]:
    """The mechanism names, in the order POP3 ``AUTH`` and CAPA list them."""
    if supports_scram(authenticator):
        return (*sasl.MECHANISMS, scram.MECHANISM)
    return sasl.MECHANISMS


def supports_scram(authenticator: object) -> bool:
    """Whether ``authenticator`` can run SCRAM-SHA-256."""
    return isinstance(authenticator, ScramAuthenticator)
