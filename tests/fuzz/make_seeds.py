"""Write the seed corpus of every fuzz target (``tests/fuzz/corpus/``).

Seeds are real inputs: client lines taken from the test transcripts,
messages from the demo mailboxes and the real corpus (trimmed small),
SASL exchanges from the RFC examples, an ``.mh_sequences`` as nmh writes
it.  Each seed starts with the parameter bytes its target reads first
(see ``targets.py``).  Re-run after changing a target's input layout:
``.venv/bin/python tests/fuzz/make_seeds.py``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
sys.path.insert(0, str(TESTS))
ROOT = TESTS.parent

_CLIENT_LINE = re.compile(r"^\s*C\d+ (.*)$", re.MULTILINE)


def transcript_commands(limit: int) -> list[bytes]:
    """Distinct client lines of the transcript tests, as sent."""
    seen: dict[bytes, None] = {}
    for path in sorted(TESTS.glob("test_*.py")):
        for line in _CLIENT_LINE.findall(path.read_text()):
            if "%{" in line or "\\x" in line:
                continue
            seen.setdefault(line.encode() + b"\r\n", None)
    return list(seen)[:limit]


def imap_seeds() -> list[bytes]:
    commands = transcript_commands(400)
    seeds = []
    # Groups of 12 pipelined commands, whole limits, literal+ on, no rejects.
    for start in range(0, len(commands), 12):
        seeds.append(b"\x00\x00\x00" + b"".join(commands[start : start + 12]))
    seeds += [
        b"\x00\x00\x03a APPEND INBOX (\\Seen) {11}\r\nSubject: x\r\n\r\n",
        b"\x00\xff\x00a APPEND INBOX {5+}\r\nhello\r\nb NOOP\r\n",
        b"\x01\x00\x01a LOGIN {3}\r\nbob {6}\r\nsecret\r\n",
        b"\x00\x00\x00a APPEND INBOX ~{4}\r\n\x00\x01\x02\x03\r\n",
        b"\x00\x00\x00a AUTHENTICATE PLAIN\r\nAGJvYgBwdw==\r\n",
    ]
    return seeds


def pop3_seeds() -> list[bytes]:
    session = (
        b"CAPA\r\nUSER bob\r\nPASS s e c r e t\r\nSTAT\r\nLIST\r\nLIST 1\r\n"
        b"UIDL 2\r\nRETR 1\r\nTOP 1 10\r\nDELE 3\r\nRSET\r\nNOOP\r\nQUIT\r\n"
    )
    return [
        b"\x10\x40" + session,
        b"\x00\xff" + b"AUTH PLAIN AGJvYgBwdw==\r\nAUTH\r\nSTLS\r\n",
        b"\x03\x01" + b"STAT \r\nLIST  1\r\nTOP 1\r\nRETR 0\r\nRETR 99999999999\n",
    ]


def encoder_seeds() -> list[bytes]:
    return [
        b"\x00\x07\x03\x02\x05hello\x03\x05caf\xc3\xa9\x04\x04Seen",
        b"\x01\x07\x04\x02\x03a\r\n\x05\x02\x00\x01\x06\x01\x00\x00\x01\x09\x02",
        b"\x00\x82\x10" + b"x" * 40 + b"text \xe2\x9c\x93\r\n",
    ]


def message_seeds() -> list[bytes]:
    from test_message_corpus import load_corpus

    demo = sorted((ROOT / "src/asimap/demo/messages").rglob("*.eml"))
    seeds = [path.read_bytes()[:6000] for path in demo[:6]]
    messages = load_corpus()[:400]
    multipart = [m for m in messages if b"multipart/" in m.lower()]
    plain = [m for m in messages if b"multipart/" not in m.lower()]
    for raw in sorted(multipart, key=len)[:8] + sorted(plain, key=len)[:4]:
        seeds.append(raw[:6000])
    seeds.append(
        b"From: a@b\r\nContent-Type: message/rfc822\r\n\r\n"
        b"Subject: inner\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
        b"--x\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--x--\r\n"
    )
    return seeds


def mutf7_seeds() -> list[bytes]:
    return [
        b"~peter/mail/&U,BTFw-/&ZeVnLIqe-",
        b"Entw&APw-rfe",
        b"&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-",
        b"A&-B",
        b"&2D3eAA-",
    ]


def sasl_seeds() -> list[bytes]:
    b64 = base64.b64encode
    first = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    final = (
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    )
    return [
        b"\x00" + b64(b"\x00bob\x00secret"),
        b"\x00!\n" + b64(b"bob\x00bob\x00pw"),
        b"\x01" + b64(b"bob") + b"\n" + b64(b"secret"),
        b"\x01!\n" + b64(b"bob") + b"\n*",
        b"\x02" + b64(first) + b"\n" + b64(final) + b"\n",
        b"\x03user",
        b"\x03user\n\x10xyz",
    ]


def mh_sequences_seeds() -> list[bytes]:
    return [
        b"cur: 7\nunseen: 3-5 9\nSeen: 1-2 6-8\nflagged: 2\nreplied: 1 4\n",
        b"unseen: 1-100 102\n 104-110\n\tDeleted: 5\nDraft: 6\nRecent: 110\n",
        b"$Junk: 1\nmy-keyword: 2-3\nwith space: 4\nx:\n",
    ]


SEEDS = {
    "imap_command": imap_seeds,
    "pop3_command": pop3_seeds,
    "encoder": encoder_seeds,
    "message": message_seeds,
    "mutf7": mutf7_seeds,
    "sasl": sasl_seeds,
    "mh_sequences": mh_sequences_seeds,
}


def main() -> None:
    for name, make in SEEDS.items():
        directory = HERE / "corpus" / name
        directory.mkdir(parents=True, exist_ok=True)
        for seed in make():
            digest = hashlib.sha1(seed).hexdigest()[:16]
            (directory / f"seed-{digest}").write_bytes(seed)
        print(name, len(list(directory.iterdir())), file=sys.stderr)


if __name__ == "__main__":
    main()
