"""The IMAP session: state machine and command handlers (sans-IO)."""

from asimap.imap.session.session import Session
from asimap.imap.session.state import SessionState

__all__ = ["Session", "SessionState"]
