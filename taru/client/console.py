"""
Where C{taru-cli} writes: a run's output and lines of text to standard
output, messages to standard error.
"""

from __future__ import annotations

import os
import sys
from typing import IO

from attrs import define

from taru.client.exits import StdoutClosed
from taru.client.options import PROGRAM


@define
class Console:
    """
    Where C{taru-cli} writes: raw output and lines to standard output,
    messages to standard error, each flushed at once.

    @ivar out: standard output, as bytes.
    @ivar err: standard error, as bytes.
    @ivar encoding: how text is encoded for the terminal.
    """

    out: IO[bytes]
    err: IO[bytes]
    encoding: str = "utf-8"

    @classmethod
    def standard(cls) -> Console:
        """
        The process's own standard output and error.
        """
        return cls(sys.stdout.buffer, sys.stderr.buffer, sys.stdout.encoding)

    def output(self, chunk: bytes) -> None:
        """
        Write bytes as they are, and flush them.

        @raise StdoutClosed: standard output is closed.
        """
        try:
            self.out.write(chunk)
            self.out.flush()
        except (BrokenPipeError, ValueError):
            # ValueError: the file object itself was closed.
            raise StdoutClosed() from None

    def line(self, text: str) -> None:
        """
        Write a line of text.

        @raise StdoutClosed: standard output is closed.
        """
        self.output(text.encode(self.encoding, "replace") + b"\n")

    def error(self, message: str) -> None:
        """
        Tell the user something on standard error, naming the program.
        """
        text = f"{PROGRAM}: {message}\n"
        try:
            self.err.write(text.encode(self.encoding, "replace"))
            self.err.flush()
        except (BrokenPipeError, ValueError):
            pass

    def silence(self) -> None:
        """
        Send standard output to C{/dev/null} once it was found closed, so
        that the interpreter's last flush at exit does not complain.
        """
        try:
            descriptor = self.out.fileno()
        except (OSError, ValueError):
            return
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, descriptor)
        finally:
            os.close(null)
