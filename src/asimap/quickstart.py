"""``python -m asimap.quickstart``: a working IMAP server in one command.

Creates (once; later runs reuse them) ``./demo/`` with a password file
holding the account ``demo`` / ``demo`` and a self-signed certificate for
localhost, 127.0.0.1 and ::1, then serves the demo account from the MH
store in ``./demo/mail/demo/`` -- seeded once with real messages
(:mod:`asimap.demo`), so nmh's ``scan +inbox`` lists them too -- on
127.0.0.1: IMAPS on 9993 and IMAP with STARTTLS on 9143 (``PORT`` /
``IMAP_PORT`` override them).  Nothing is written outside ``./demo/`` and no privileges
are needed.  Like ``asimapd`` it serves each user from a worker process
that runs as the owner of the mail; the demo mail belongs to whoever runs
the quickstart, so it sets ``allow_root_mail`` -- run as root, the demo
worker stays root rather than refusing the root-owned demo mail.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from asimap.auth.account import Account
from asimap.auth.hashers import make_password
from asimap.config import Config
from asimap.demo import seed_store
from asimap.imap.server import run
from asimap.store.base import Store
from asimap.tls import generate_self_signed

DEMO_USER = "demo"
DEMO_PASSWORD = "demo"
DEFAULT_PORT = 9993
DEFAULT_IMAP_PORT = 9143
HOST = "127.0.0.1"


def prepare(directory: Path) -> tuple[Path, Path, Path]:
    """Create the demo files that are missing; return (pwfile, cert, key).

    Idempotent: an existing password file or certificate is kept, so a
    client that was told to trust the certificate keeps working.
    """
    directory.mkdir(parents=True, exist_ok=True)
    pwfile = directory / "pwfile"
    cert = directory / "cert.pem"
    key = directory / "key.pem"
    if not pwfile.exists():
        hashed = make_password(DEMO_PASSWORD)
        pwfile.write_text(
            "# asimap quickstart accounts: username:hash:maildir\n"
            f"{DEMO_USER}:{hashed}:mail/{DEMO_USER}\n"
        )
        pwfile.chmod(0o600)
    if not (cert.exists() and key.exists()):
        generate_self_signed(cert, key, ["localhost", "127.0.0.1", "::1"])
    return pwfile, cert, key


#: Left in the demo MH root once the demo mail is in, so that a restart
#: (the mail persists) does not add it twice.  Hidden: not a folder.
SEEDED_MARK = ".asimap-demo-seeded"


async def _seed(account: Account, store: Store) -> None:
    mark = account.maildir / SEEDED_MARK
    if account.username == DEMO_USER and not mark.exists():
        await seed_store(store)
        mark.touch()


def instructions(config: Config, cert: Path) -> str:
    """How to connect, with the real ports and paths."""
    imaps = config.port
    imap = config.imap_port
    ca = cert
    return f"""\
asimap quickstart is running (stop it with Ctrl-C).

  IMAPS (implicit TLS):  {HOST}:{imaps}
  IMAP with STARTTLS:    {HOST}:{imap}
  account:               {DEMO_USER}   password: {DEMO_PASSWORD}
  certificate:           {ca}  (self-signed: trust it explicitly)

Mail lives in MH folders under {config.pwfile.parent / "mail" / DEMO_USER}
(INBOX is inbox/), so nmh works on it too, e.g.:
  echo 'Path: {config.pwfile.parent / "mail" / DEMO_USER}' > /tmp/demo_mh_profile
  MH=/tmp/demo_mh_profile scan +inbox

Try it:

  # list INBOX, fetch message UID 1, search
  curl --cacert {ca} -u {DEMO_USER}:{DEMO_PASSWORD} 'imaps://{HOST}:{imaps}/INBOX'
  curl --cacert {ca} -u {DEMO_USER}:{DEMO_PASSWORD} 'imaps://{HOST}:{imaps}/INBOX;UID=1'
  curl --cacert {ca} -u {DEMO_USER}:{DEMO_PASSWORD} 'imaps://{HOST}:{imaps}/INBOX' \\
       -X 'UID SEARCH ALL'

  # talk IMAP by hand (type: a LOGIN demo demo / b SELECT INBOX /
  #                  c FETCH 1:3 (FLAGS ENVELOPE) / d LOGOUT)
  openssl s_client -quiet -crlf -CAfile {ca} -connect {HOST}:{imaps}
  openssl s_client -quiet -crlf -CAfile {ca} -starttls imap -connect {HOST}:{imap}

  # mutt
  mutt -e 'set ssl_ca_certificates_file={ca}' -f 'imaps://{DEMO_USER}@{HOST}:{imaps}/INBOX'

  # a desktop client (Thunderbird, ...): server {HOST}, port {imaps},
  # SSL/TLS, normal password, user {DEMO_USER}; accept the self-signed certificate.
"""


def _port(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m asimap.quickstart",
        description="Run a demo asimap server on 127.0.0.1 with a demo account.",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path.cwd() / "demo",
        help="where the password file and certificate live (default: ./demo)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    directory: Path = args.dir.absolute()
    pwfile, cert, key = prepare(directory)
    try:
        port = _port("PORT", DEFAULT_PORT)
        imap_port = _port("IMAP_PORT", DEFAULT_IMAP_PORT)
    except ValueError as exc:
        print(f"quickstart: bad PORT/IMAP_PORT: {exc}", file=sys.stderr)
        return 2
    config = Config(
        address=HOST,
        port=port,
        imap_port=imap_port,
        cert=cert,
        key=key,
        pwfile=pwfile,
        store="mh",
        allow_root_mail=True,
    )
    return run(
        config,
        seed=_seed,
        on_ready=lambda: print(instructions(config, cert), flush=True),
    )


if __name__ == "__main__":
    sys.exit(main())
