"""asimap: an IMAP and POP3 server for MH mail stores."""

__version__ = "3.0.0.dev0"
