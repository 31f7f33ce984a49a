"""Errors a user can act on. The CLI prints them as one line and exits with status 2."""


class UserError(Exception):
    """Bad input (a file, a field, a flag): the message names what and where, and what was expected."""
