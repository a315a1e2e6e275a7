"""
How C{taru-cli} ends: the exit statuses it ends with, and the failures that
end a command before it is done.

Exit statuses: a run's own exit code for C{run} and C{status}, 128 plus the
signal for a run that a signal ended, L{EXIT_FAILURE} when Taru refuses or
cannot be reached or the output cannot be written, 2 for a usage error, 128
plus the signal when C{taru-cli} itself is interrupted, and 128 plus
C{SIGPIPE} when the reader of its standard output goes away before it is
done.
"""

from __future__ import annotations

import signal

# Exit status for every failure of Taru or of the connection to it, and for
# output that cannot be written. A task that itself exits with 125 cannot be
# told apart from such a failure.
EXIT_FAILURE = 125

# Exit statuses for a run, or taru-cli itself, ended by a signal are this plus
# the signal's number, as shells report them.
EXIT_SIGNAL_BASE = 128

# The reader of standard output went away, as `| head` does: what a shell
# reports for a command that SIGPIPE ended.
EXIT_STDOUT_CLOSED = EXIT_SIGNAL_BASE + signal.SIGPIPE


class ClientError(Exception):
    """
    Taru refused a request, or could not be reached: the message says which,
    for the user.

    @ivar code: the status code Taru refused the request with, if it did.
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class StdoutClosed(Exception):
    """
    The reader of standard output went away while there was more to write.
    """


class OutputFailed(Exception):
    """
    Standard output cannot be written for another reason than that its
    reader went away: the disk is full, or it is not open at all. The
    message says why, for the user.
    """
