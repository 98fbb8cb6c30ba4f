"""The result section of docs/compliance.md, written by the full run.

Only the text between the two markers is replaced, so the rest of the
page (and sections other engineers add) stays as written.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from .harness import Run
from .known import KNOWN

BEGIN = "<!-- differential-result:begin (written by scripts/differential) -->"
END = "<!-- differential-result:end -->"

_VERDICTS = {
    "defect": "defect of ours, being fixed",
    "open": "defect of ours, open",
    "ours-right": "the RFC decides for asimap",
    "both-allowed": "the RFC allows both",
}


def _commit(repo: Path) -> str:
    try:
        out = subprocess.run(
            # The newest commit of main that the tested tree contains:
            # a local commit's hash would mean nothing once rebased.
            ["git", "-C", str(repo), "merge-base", "HEAD", "main"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip()[:7]


def result_section(run: Run, repo: Path, dovecot: str, corpus: int) -> str:
    exchanges = run.exchanges
    identical = sum(1 for e in exchanges if e.same)
    per_entry: Counter[str] = Counter()
    for verdict in run.verdicts.values():
        per_entry.update(verdict.used)
    unexplained = [v for v in run.verdicts.values() if not v.clean]
    known_only = len(exchanges) - identical - len(unexplained)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        BEGIN,
        "",
        f"Run of {when} on main at commit `{_commit(repo)}` against Dovecot {dovecot}, "
        f"{corpus} corpus messages and {len(run.sessions)} sessions:",
        "",
        f"- commands compared: **{len(exchanges)}**",
        f"- identical after normalisation: **{identical}**",
        f"- different, every difference known: **{known_only}**",
        f"- different and not yet explained: **{len(unexplained)}**",
        "",
        "| known difference | verdict | commands | reason |",
        "|---|---|---|---|",
    ]
    for entry in KNOWN:
        verdict = _VERDICTS[entry.verdict]
        if entry.point is not None:
            verdict += f" (issue 10 point {entry.point})"
        reason = entry.reason.replace("|", "\\|")
        count = per_entry.get(entry.key, 0)
        lines.append(f"| {entry.summary} | {verdict} | {count} | {reason} |")
    if unexplained:
        lines += ["", "Not yet explained (first lines of each difference):", ""]
        for verdict in unexplained[:40]:
            side, text = verdict.unexplained[0]
            lines.append(f"- `{verdict.exchange.label}` ({side}): `{text[:160]}`")
        if len(unexplained) > 40:
            lines.append(f"- ... and {len(unexplained) - 40} more")
    lines += ["", END]
    return "\n".join(lines)


def write(path: Path, section: str) -> None:
    """Replace the marked section, or append it when there is none."""
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
