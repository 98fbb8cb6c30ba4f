"""The MH mail store: nmh folders on disk, UIDs and caches in SQLite.

Works alongside nmh's tools (``inc``, ``scan``, ``rmm``, ``refile``,
``mark``, ``folder -pack``, ``sortm``) on the same folders; see
:mod:`asimap.store.mh.core` for how their changes are reconciled.
"""

from asimap.store.mh.mailbox import MHMailbox
from asimap.store.mh.store import MHStore

__all__ = ["MHMailbox", "MHStore"]
