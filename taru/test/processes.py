"""
A fake reactor that records the processes it is asked to spawn, with real
pipes for their output, and a stand-in for C{os.killpg}.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from attrs import define, field
from twisted.internet.interfaces import IReactorProcess
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from zope.interface import implementer

from taru.output import Output


class FakeProcessTransport:
    """
    The parent's side of a spawned process: its pid and its stdin.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.stdin_closed = False

    def closeStdin(self) -> None:
        self.stdin_closed = True


@define
class SpawnedProcess:
    """
    One call to L{ProcessReactor.spawnProcess}, and the child's own copy of
    the output pipe it was given, as a real child would hold it.
    """

    protocol: ProcessProtocol
    executable: str
    args: list[str]
    env: dict[str, str] | None
    child_fds: dict[int, object]
    transport: FakeProcessTransport
    ended: set[int]
    output_fd: int | None = None

    def write(self, data: bytes) -> None:
        """
        Write to standard output, as the child would.
        """
        assert self.output_fd is not None
        os.write(self.output_fd, data)

    def close_output(self) -> None:
        """
        Close the child's copy of the output pipe, as its exit would.
        """
        if self.output_fd is not None:
            os.close(self.output_fd)
            self.output_fd = None

    def end(self, reason: Exception) -> None:
        """
        Report the process's end to its protocol.
        """
        self.ended.add(self.transport.pid)
        self.protocol.processEnded(Failure(reason))


@implementer(IReactorProcess)
class ProcessReactor(MemoryReactorClock):
    """
    A reactor with fake time and file descriptor sets that records processes
    instead of spawning them.

    @ivar spawned: every process spawned, in order.
    @ivar every_reader: every reader ever added, for cleaning up.
    @ivar refusal: when set, spawning raises it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[SpawnedProcess] = []
        self.every_reader: list[Any] = []
        self.refusal: OSError | None = None
        self.ended: set[int] = set()
        self._next_pid = 4200

    def addReader(self, reader: Any) -> None:
        self.every_reader.append(reader)
        super().addReader(reader)

    def spawnProcess(
        self,
        processProtocol: Any,
        executable: Any,
        args: Any = (),
        env: Any = None,
        path: Any = None,
        uid: Any = None,
        gid: Any = None,
        usePTY: Any = False,
        childFDs: Any = None,
    ) -> Any:
        if self.refusal is not None:
            raise self.refusal
        self._next_pid += 1
        transport = FakeProcessTransport(self._next_pid)
        child_fds = dict(childFDs or {})
        output_fd = child_fds.get(1)
        spawned = SpawnedProcess(
            protocol=processProtocol,
            executable=executable,
            args=list(args),
            env=env,
            child_fds=child_fds,
            transport=transport,
            ended=self.ended,
            output_fd=os.dup(output_fd) if isinstance(output_fd, int) else None,
        )
        self.spawned.append(spawned)
        processProtocol.makeConnection(transport)
        return transport

    def close_everything(self) -> None:
        """
        Close every pipe end the fake children and the readers still hold.
        """
        for spawned in self.spawned:
            spawned.close_output()
        for reader in self.every_reader:
            reader.close()


@define
class GroupSignals:
    """
    Stands in for C{os.killpg}: records each signal, and fails for groups
    that are gone. A group whose first process has ended is gone, unless the
    test left processes in it.

    @ivar sent: C{(process group, signal)} pairs, in order.
    @ivar ended: processes that have ended.
    @ivar gone: groups that no longer exist.
    @ivar leftovers: groups that still have members after their first
        process ended.
    @ivar forbidden: groups signalling is not permitted for.
    """

    ended: set[int]
    sent: list[tuple[int, int]] = field(factory=list)
    gone: set[int] = field(factory=set)
    leftovers: set[int] = field(factory=set)
    forbidden: set[int] = field(factory=set)

    def killpg(self, pgid: int, signal_number: int) -> None:
        if pgid in self.gone or (pgid in self.ended and pgid not in self.leftovers):
            raise ProcessLookupError(errno.ESRCH, "No such process")
        if pgid in self.forbidden:
            raise PermissionError(errno.EPERM, "Operation not permitted")
        self.sent.append((pgid, signal_number))


def pump_pipe(reactor: ProcessReactor, output: Output) -> None:
    """
    Let every active reader read until its pipe is empty or at its end, as
    the reactor would when the pipes are readable.
    """
    for reader in list(reactor.readers):
        while reader in reactor.readers:
            size_before = output.size
            reader.doRead()
            if output.size == size_before:
                break
