"""Transport plumbing shared by the IMAP and POP3 connection drivers."""
