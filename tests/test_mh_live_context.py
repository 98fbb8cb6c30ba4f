"""RFC 5267 contexts fed by real nmh tools: the file watcher's changes
reach an IDLE client as the usual EXISTS/FETCH/EXPUNGE, each with its
ADDTO or REMOVEFROM in the order section 4.3 requires (ADDTO after the
EXISTS/FETCH, REMOVEFROM before the EXPUNGE).

The four messages of the fixture are dated 4, 1, 3 and 2 January, so a
``SORT (DATE)`` context orders them 2, 4, 3, 1.
"""

from __future__ import annotations

import test_mh_live_imap as mh_live
from test_mh_live_imap import Live, expect_during_idle, inc, message

#: The fixture: a server on an MH root that nmh uses too.
live = mh_live.live


def test_nmh_changes_drive_context_updates(live: Live) -> None:
    client = live.client()
    untagged, _ = client.command("UID SORT RETURN (UPDATE ALL) (DATE) UTF-8 FLAGGED")
    assert untagged == [b'* ESEARCH (TAG "t3") UID']
    untagged, _ = client.command("SEARCH RETURN (UPDATE COUNT) ALL")
    assert untagged == [b'* ESEARCH (TAG "t4") COUNT 4']
    client.idle()
    live.nmh("mark", "+inbox", "3", "-sequence", "flagged", "-add")
    expect_during_idle(
        client,
        [b"* 3 FETCH (FLAGS (\\Flagged))", b'* ESEARCH (TAG "t3") UID ADDTO (1 3)'],
        quiet=0.5,
    )
    live.nmh("mark", "+inbox", "1", "-sequence", "flagged", "-add")
    expect_during_idle(
        client,
        [b"* 1 FETCH (FLAGS (\\Flagged))", b'* ESEARCH (TAG "t3") UID ADDTO (2 1)'],
        quiet=0.5,
    )
    inc(live.nmh, live.tmp, [message("new")])
    expect_during_idle(
        client,
        [b"* 5 EXISTS", b"* 1 RECENT", b'* ESEARCH (TAG "t4") ADDTO (0 5)'],
        quiet=0.5,
    )
    live.nmh("rmm", "+inbox", "3")
    expect_during_idle(
        client,
        [
            b'* ESEARCH (TAG "t3") UID REMOVEFROM (1 3)',
            b'* ESEARCH (TAG "t4") REMOVEFROM (0 3)',
            b"* 3 EXPUNGE",
        ],
    )
    assert client.done() == []
    untagged, _ = client.command("UID SORT RETURN (ALL) (DATE) UTF-8 FLAGGED")
    assert untagged == [b'* ESEARCH (TAG "t6") UID ALL 1']
