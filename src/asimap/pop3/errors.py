"""The one exception handlers raise to answer ``-ERR``."""

from __future__ import annotations

from asimap.pop3.responses import Code


class Pop3Error(Exception):
    """Answer ``-ERR [code] text``; the session carries on."""

    def __init__(self, text: str, code: Code | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.code = code
