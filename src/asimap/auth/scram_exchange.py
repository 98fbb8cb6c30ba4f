"""Run a SCRAM-SHA-256 exchange over IMAP AUTHENTICATE or POP3 AUTH.

Like :func:`asimap.auth.sasl.exchange`, this is protocol-neutral: the
caller passes a ``challenge`` function (send one base64 challenge, return
the client's raw answer line) and maps the neutral exceptions to its own
words.  The steps (RFC 5802 section 3 and 5, RFC 7677 section 3):

1. client-first-message (the SASL-IR initial response, RFC 4959 / RFC
   5034, or the answer to an empty challenge);
2. server-first-message: the user's salt and iteration count (fake ones
   for a user who cannot use SCRAM, see :mod:`asimap.auth.scram`) and the
   combined nonce;
3. client-final-message: channel binding, nonce and proof checked;
4. success: the server-final-message ``v=`` goes out as one more
   challenge, answered by an empty line, which is how RFC 4422 section
   3.6 sends "additional data with success" where the outcome message
   cannot carry it (IMAP4rev1's tagged OK cannot); POP3 does the same, as
   the clients we tested expect; only then does the caller say OK.

A failure ends the exchange at once with the neutral ``SaslFailed``
(``NO [AUTHENTICATIONFAILED]`` / ``-ERR [AUTH]``), *without* sending the
RFC 5802 section 7 ``e=<error>`` server-final-message: section 5.1 ("e")
lets a server "conclude the SASL exchange with a failure without sending
the server-final-message", and sending it as a challenge (neither
protocol can carry data with a failure) leaves real clients hanging --
Cyrus SASL 2.1.28's SCRAM client, used by mbsync, rejects an ``e=``
challenge and then neither answers nor disconnects, so both sides wait
for the idle timeout.  Dovecot 2.3.19 ends failed SCRAM exchanges the
same way (a tagged NO right after the client-final-message, or after the
client-first-message for ``p=``).  The error code is not lost: the failure text
names it (``Authentication failed: channel-binding-not-supported``)
except for ``invalid-proof``, whose text is exactly a wrong password's.

The login penalty and logging belong to the authenticator
(:class:`ScramAuthenticator`), as for PLAIN: it delays an attempt from an
address with recent failures before answering, counts failures and waits
``failure_delay`` after one.  Its lookup (the password file, a
blocking read) runs in its thread pool; the SCRAM arithmetic here is a
handful of HMACs, cheap enough for the event loop -- the PBKDF2
iterations are the client's work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from asimap.auth import sasl, scram
from asimap.auth.account import Account


@dataclass(frozen=True, slots=True)
class ScramLookup:
    """The result of looking a user up for SCRAM.

    ``account`` is None when the credentials are fake (unknown user,
    unusable or non-``pbkdf2_sha256`` hash): then no proof can succeed.
    """

    username: str
    credentials: scram.ScramCredentials
    account: Account | None


@runtime_checkable
class ScramAuthenticator(Protocol):
    """What an authenticator offers to support SCRAM-SHA-256.

    Implemented by :class:`asimap.auth.authenticator.PasswordFileAuthenticator`;
    the protocols advertise SCRAM-SHA-256 only when the session's
    authenticator has these methods (the worker's replay authenticator,
    for one, does not).
    """

    async def scram_lookup(self, username: str) -> ScramLookup:
        """Real or fake credentials for ``username``; never fails."""
        ...

    async def scram_outcome(
        self, lookup: ScramLookup, proof_valid: bool, peer_host: str
    ) -> Account | None:
        """The account if the proof was valid (after any login penalty);
        otherwise count the failure, wait, and return None."""
        ...


#: Returns the server's part of the nonce; a module attribute so that
#: tests can reproduce RFC 7677's example with its fixed nonce.
server_nonce = scram.new_server_nonce


async def exchange(
    initial_response: bytes | None,
    challenge: sasl.Challenge,
    authenticator: ScramAuthenticator,
    peer_host: str,
) -> Account:
    """Run the exchange and return the authenticated account.

    Raises :class:`asimap.auth.scram.ScramError` (a ``SaslFailed``) on any
    failure, ``SaslCancelled`` / ``SaslMalformed`` for a cancel or bad
    base64 where the exchange is still in progress.
    """
    if initial_response is not None:
        first_bytes = sasl.decode_response(initial_response)
    else:
        first_bytes = sasl.decode_response(await challenge(b""))
    first = scram.parse_client_first(first_bytes)
    lookup = await authenticator.scram_lookup(first.username)
    nonce = first.client_nonce + server_nonce()
    server_first = scram.server_first_message(nonce, lookup.credentials)
    final_bytes = sasl.decode_response(await challenge(server_first))
    final = scram.parse_client_final(final_bytes)
    # RFC 5802 section 5.1 "c": for "n" and "y" the channel binding is the
    # gs2-header alone, base64-encoded.
    if final.channel_binding != first.gs2_header:
        raise scram.ScramError(scram.CHANNEL_BINDINGS_DONT_MATCH)
    # RFC 5802 section 5.1 "r": the client must echo our whole nonce, which
    # starts with its own.
    if final.nonce != nonce:
        raise scram.ScramError(scram.OTHER_ERROR)

    auth_message = b",".join((first.bare, server_first, final.without_proof))
    valid = scram.verify_proof(lookup.credentials, auth_message, final.proof)
    account = await authenticator.scram_outcome(lookup, valid, peer_host)
    if account is None:
        raise scram.ScramError(scram.INVALID_PROOF)
    signature = scram.server_signature(lookup.credentials, auth_message)
    acknowledgement = sasl.decode_response(
        await challenge(scram.server_final_message(signature))
    )
    # RFC 4422 section 3.6 (additional data with success sent as a
    # challenge): the client's answer must be empty.
    if acknowledgement:
        raise scram.ScramError(scram.OTHER_ERROR)
    return account
