"""
Where C{taru-cli} writes: a run's output and lines of text to standard
output, messages to standard error.
"""

from __future__ import annotations

import os
import sys
from typing import IO, TextIO

from attrs import define

from taru.client.exits import OutputFailed, StdoutClosed
from taru.client.options import PROGRAM


@define
class Console:
    """
    Where C{taru-cli} writes: raw output and lines to standard output,
    messages to standard error, each flushed at once.

    @ivar out: standard output, as bytes; L{None} when it is not open.
    @ivar err: standard error, as bytes; L{None} when it is not open.
    @ivar encoding: how text is encoded for the terminal.
    """

    out: IO[bytes] | None
    err: IO[bytes] | None
    encoding: str = "utf-8"

    @classmethod
    def standard(cls) -> Console:
        """
        The process's own standard output and error; either is missing when
        the process started without it, as after C{>&-} in a shell.
        """
        # Python sets them to None when their descriptors were not open.
        stdout: TextIO | None = sys.stdout
        stderr: TextIO | None = sys.stderr
        terminal = stdout if stdout is not None else stderr
        return cls(
            None if stdout is None else stdout.buffer,
            None if stderr is None else stderr.buffer,
            "utf-8" if terminal is None else terminal.encoding,
        )

    def output(self, chunk: bytes) -> None:
        """
        Write bytes as they are, and flush them.

        @raise StdoutClosed: the reader of standard output went away.
        @raise OutputFailed: standard output cannot be written for another
            reason.
        """
        if self.out is None:
            raise OutputFailed("standard output is not open")
        try:
            self.out.write(chunk)
            self.out.flush()
        except (BrokenPipeError, ValueError):
            # ValueError: the file object itself was closed.
            raise StdoutClosed() from None
        except OSError as failure:
            raise OutputFailed(failure.strerror or str(failure)) from None

    def line(self, text: str) -> None:
        """
        Write a line of text.

        @raise StdoutClosed: the reader of standard output went away.
        @raise OutputFailed: standard output cannot be written for another
            reason.
        """
        self.output(text.encode(self.encoding, "replace") + b"\n")

    def error(self, message: str) -> None:
        """
        Tell the user something on standard error, naming the program; when
        standard error cannot be written, there is no one left to tell, and
        the message is dropped.
        """
        if self.err is None:
            return
        text = f"{PROGRAM}: {message}\n"
        try:
            self.err.write(text.encode(self.encoding, "replace"))
            self.err.flush()
        except (OSError, ValueError):
            pass

    def silence(self) -> None:
        """
        Send standard output to C{/dev/null} once it failed, so that the
        interpreter's last flush at exit does not fail again and complain.
        """
        if self.out is None:
            return
        try:
            descriptor = self.out.fileno()
        except (OSError, ValueError):
            return
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, descriptor)
        finally:
            os.close(null)
