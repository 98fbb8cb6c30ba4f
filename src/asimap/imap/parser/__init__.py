"""The IMAP command parser: complete command bytes -> typed command.

Sans-IO and total (design.md section 3): :func:`parse_command` turns the lines
and literals of one complete command (as framed by the connection reader)
into a :class:`~asimap.imap.commands.Command` or a
:class:`~asimap.imap.commands.ParseError`; it never raises.
:func:`describe_pending` says what is known about a command whose literal
has been announced but not read yet, so the session can refuse an APPEND
(``NO [TRYCREATE]``) or an oversized literal before reading it.

Module map: ``tokens`` (lexer), ``sequence``, ``dates``, ``flags`` (values),
``fetch``, ``search``, ``store``, ``mailbox``, ``listing``, ``append``,
``basic`` (argument parsers per command family), ``commands_table`` (name ->
parser), ``command`` (tag and name, dispatch, error wrapping).
"""

from asimap.imap.parser.command import PendingCommand, describe_pending, parse_command

__all__ = ["PendingCommand", "describe_pending", "parse_command"]
