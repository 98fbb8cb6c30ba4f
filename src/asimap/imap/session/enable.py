"""ENABLE (RFC 5161): turning on extensions that change what the server says.

Only capabilities advertised on this connection *and* listed in
:data:`extensions.ENABLEABLE` can be enabled; anything else is ignored
silently, as RFC 5161 section 3.1 requires ("the server MUST ignore
capabilities it does not support").  The ``* ENABLED`` response lists
what this command newly turned on, spelled as advertised.

Side effects at the moment of enabling:

* UTF8=ACCEPT and IMAP4rev2 switch the encoder to UTF-8 quoted strings
  (RFC 6855 section 3; RFC 9051 appendix A: "MUST NOT generate
  UTF-8-quoted strings unless the client has issued ENABLE IMAP4rev2");
* QRESYNC implies CONDSTORE (RFC 7162 section 3.2.3), which
  :func:`extensions.condstore` already reads from the set.
"""

from __future__ import annotations

from asimap.imap import commands as c
from asimap.imap.responses import Atom, Status, Tagged, Untagged, Value
from asimap.imap.session import extensions
from asimap.imap.session.capabilities import capabilities
from asimap.imap.session.context import Context


def enableable(ctx: Context) -> dict[str, str]:
    """Upper-cased name -> advertised spelling, for what ENABLE may turn on."""
    return {
        name.upper(): name
        for name in capabilities(ctx)
        if name.upper() in extensions.ENABLEABLE
    }


async def handle_enable(ctx: Context, cmd: c.Enable) -> Tagged:
    """RFC 5161 3.1: enable what we can, ignore the rest, list what changed."""
    offered = enableable(ctx)
    newly: list[str] = []
    for cap in cmd.capabilities:
        name = cap.upper()
        if name in offered and name not in ctx.enabled and offered[name] not in newly:
            newly.append(offered[name])
            ctx.enabled.add(name)
    if extensions.utf8(ctx.enabled):
        ctx.io.set_utf8(True)
    values: list[Value] = [Atom("ENABLED")]
    values.extend(Atom(cap) for cap in newly)
    await ctx.io.send(Untagged(tuple(values)))
    return Tagged(cmd.tag, Status.OK, "Enable completed")
