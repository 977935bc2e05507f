"""The one exception type that carries a user-facing message to the CLI."""


class ObliviateError(Exception):
    """A problem the user can fix: the message says what is wrong and what to do.

    The CLI prints the message on one line and exits with status 2; the Python API
    lets it propagate so callers can catch a single type.
    """
