"""
A run's output: raw bytes in arrival order, handed to any number of
followers, each at its own pace.

Buffered tasks keep their output in a spool file, so that a follower may read
from the start and at any speed while the task writes at full speed, and so
that memory does not grow with the output. Unbuffered tasks keep only what
some follower has not read yet; once that backlog passes L{BACKLOG_LIMIT}
bytes Taru stops reading from the task until the slowest follower catches up,
so the task blocks on its pipe rather than Taru's memory growing.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Protocol
from urllib.parse import quote

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IConsumer,
    IDelayedCall,
    IPushProducer,
    IReactorTime,
)
from twisted.logger import Logger
from zope.interface import implementer

# How much one follower reads and writes at a time.
CHUNK_SIZE = 64 * 1024

# How many unread bytes an unbuffered run may hold before its task is paused.
BACKLOG_LIMIT = 1024 * 1024

# The size of a run's record (see L{Spool.write_record}).
RECORD_SIZE = 256

# How long a follower may take nothing at all before it is dropped.
STALL_SECONDS = 60.0


class FollowerStalled(Exception):
    """
    A follower's client took no output for too long and was dropped.
    """


class _Store(Protocol):
    """
    Where an output's bytes are kept between arrival and being read.
    """

    def append(self, data: bytes) -> None: ...

    def read(self, offset: int, limit: int) -> bytes: ...

    def trim(self, offset: int) -> None: ...

    def close(self) -> None: ...


class SpoolStore:
    """
    Keeps all of an output in a file, read back at any offset.
    """

    def __init__(self, fd: int, size: int = 0) -> None:
        """
        @param fd: a file descriptor open for reading and writing, which this
            store now owns.
        @param size: how many bytes the file holds already.
        """
        self._fd = fd
        self._size = size

    def append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, self._size)
            self._size += written
            view = view[written:]

    def read(self, offset: int, limit: int) -> bytes:
        return os.pread(self._fd, limit, offset)

    def trim(self, offset: int) -> None:
        """
        A spool keeps everything.
        """

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class BacklogStore:
    """
    Keeps only the bytes some follower has yet to read, in memory.
    """

    def __init__(self) -> None:
        self._data = bytearray()
        self._start = 0

    def append(self, data: bytes) -> None:
        self._data += data

    def read(self, offset: int, limit: int) -> bytes:
        begin = offset - self._start
        return bytes(self._data[begin : begin + limit])

    def trim(self, offset: int) -> None:
        drop = offset - self._start
        if drop > 0:
            del self._data[:drop]
            self._start = offset

    def close(self) -> None:
        self._data = bytearray()


def read_kept(path: str) -> Output | None:
    """
    The finished output a file keeps, read back from it, or L{None} when
    there is no such file.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    size = os.fstat(fd).st_size
    output = Output(SpoolStore(fd, size), kept=True, size=size)
    output.close()
    return output


class Spool:
    """
    The folder of spool files, one per buffered task, holding its latest run's
    output, each with a record of when that run started and how it ended.
    """

    _log = Logger()

    def __init__(self, directory: str) -> None:
        """
        @param directory: the folder; created when missing.
        """
        self.directory = directory
        os.makedirs(directory, mode=0o700, exist_ok=True)

    def path_for(self, task: str) -> str:
        """
        The spool file of a task: its name made safe for a file name.
        """
        name = quote(task, safe="")
        if len(name) > 200:
            name = hashlib.sha256(task.encode("utf-8")).hexdigest()
        return os.path.join(self.directory, f"{name}.out")

    def create(self, task: str) -> Output:
        """
        Start a new spool file for a run of C{task}, replacing the last one.

        Followers of the last run keep reading it: its file stays open until
        they are done.
        """
        output = self.prepare(task)
        self.keep(task)
        return output

    def prepare(self, task: str) -> Output:
        """
        Start a new spool file for a run of C{task} that may not happen: the
        last run's file stays in its place until L{keep}.
        """
        # Someone may have removed the folder since Taru started.
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        partial = f"{self.path_for(task)}.partial"
        fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        return Output(SpoolStore(fd), kept=True)

    def keep(self, task: str) -> None:
        """
        The run went ahead: its spool file replaces the last run's.
        """
        path = self.path_for(task)
        os.replace(f"{path}.partial", path)

    def discard(self, task: str) -> None:
        """
        The run did not happen: the last run's spool file stays.
        """
        try:
            os.unlink(f"{self.path_for(task)}.partial")
        except FileNotFoundError:
            pass

    def last(self, task: str) -> Output | None:
        """
        The output of a task's last run, kept from before Taru started, or
        L{None} when there is none.
        """
        return read_kept(self.path_for(task))

    def write_record(self, task: str, record: dict[str, Any]) -> None:
        """
        Keep what is known of a task's last run beside its spool file, so
        that a later Taru can tell when it ran and how it ended.
        """
        path = f"{self.path_for(task)}.run"
        # Written in place over a record of fixed size: truncating or
        # replacing a file costs far more on some file systems than the run
        # of a short task. JSON readers ignore the padding; a record is a few
        # numbers, far shorter than RECORD_SIZE.
        data = json.dumps(record).encode("utf-8").ljust(RECORD_SIZE)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.pwrite(fd, data, 0)
            finally:
                os.close(fd)
        except OSError as error:
            self._log.warn(
                "the record of {task}'s run could not be kept: {error}",
                task=task,
                error=str(error),
            )

    def read_record(self, task: str) -> dict[str, Any]:
        """
        What L{write_record} kept of a task's last run: empty when nothing
        usable was kept.
        """
        try:
            with open(f"{self.path_for(task)}.run", encoding="utf-8") as record_file:
                record = json.load(record_file)
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def resume(self, task: str) -> Output:
        """
        Go on with a task's spool file as it is, for a run that an earlier
        Taru started: what it wrote then is kept, and more is added to it.
        """
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        fd = os.open(self.path_for(task), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        size = os.fstat(fd).st_size
        return Output(SpoolStore(fd, size), kept=True, size=size)


@implementer(IPushProducer)
class Follower:
    """
    Copies an output to one consumer, from a given offset, as fast as that
    consumer takes it.

    A follower whose consumer stays paused for L{STALL_SECONDS} is dropped,
    so that a client that stopped reading can neither hold an unbuffered task
    nor keep an old spool file open for ever.

    @ivar done: fires when the follower has written the whole output, or
        stopped; with a L{FollowerStalled} failure when it was dropped.
    @ivar offset: the next byte to write.
    """

    def __init__(
        self,
        output: Output,
        consumer: IConsumer,
        offset: int,
        clock: IReactorTime | None = None,
        paused: bool = False,
        end: int | None = None,
    ) -> None:
        """
        @param offset: the first byte to write.
        @param end: where to stop, before this byte; the end of the output
            when L{None}.
        """
        self._output = output
        self._consumer = consumer
        self._clock = clock
        self.offset = offset
        self._first = offset
        self.end = end
        self.done: Deferred[None] = Deferred()
        self._paused = paused
        self._pumping = False
        self._stopped = False
        self._stall: IDelayedCall | None = None

    @property
    def written(self) -> int:
        """
        How many bytes this follower has written to its consumer: each write
        moves its offset on by as many, so counting costs nothing per chunk.
        """
        return self.offset - self._first

    def pauseProducing(self) -> None:
        self._paused = True
        if self._clock is not None and self._stall is None:
            self._stall = self._clock.callLater(STALL_SECONDS, self._stalled)

    def resumeProducing(self) -> None:
        self._paused = False
        self._cancel_stall()
        self.pump()

    def stopProducing(self) -> None:
        self.stop()

    def stop(self) -> None:
        """
        Write nothing more, and let the output forget this follower.
        """
        self._end(None)

    def _stalled(self) -> None:
        self._stall = None
        self._end(FollowerStalled())

    def _cancel_stall(self) -> None:
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None

    def _end(self, reason: Exception | None) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._cancel_stall()
        self._output._unfollow(self)
        if reason is None:
            self.done.callback(None)
        else:
            self.done.errback(reason)

    def pump(self, arrived: bytes = b"") -> None:
        """
        Write what the output has beyond this follower's offset, until the
        consumer asks for a pause.

        @param arrived: bytes that were just appended to the output; a
            follower that had everything before them writes them as they
            are, without reading them back.
        """
        if self._pumping or self._stopped:
            return
        self._pumping = True
        try:
            if (
                0 < len(arrived) <= CHUNK_SIZE
                and not self._paused
                and self.end is None
                and self.offset == self._output.size - len(arrived)
            ):
                self.offset += len(arrived)
                self._consumer.write(arrived)
            while not self._paused and not self._stopped:
                limit = CHUNK_SIZE
                if self.end is not None:
                    limit = min(limit, self.end - self.offset)
                data = self._output.read(self.offset, limit) if limit > 0 else b""
                if not data:
                    break
                self.offset += len(data)
                self._consumer.write(data)
        finally:
            self._pumping = False
        if self._stopped:
            return
        finished = self._output.closed and self.offset >= self._output.size
        if finished or (self.end is not None and self.offset >= self.end):
            self.stop()
        else:
            self._output._progressed()


class Output:
    """
    The output of one run.

    @ivar size: how many bytes the run has written so far.
    @ivar closed: whether the run has written its last byte.
    @ivar kept: whether all of the output is kept (buffered tasks).
    """

    _log = Logger()

    def __init__(self, store: _Store, kept: bool, size: int = 0) -> None:
        """
        @param store: where the bytes are kept.
        @param kept: whether all of them are (buffered tasks).
        @param size: how many bytes the store holds already.
        """
        self._store = store
        self.kept = kept
        self.size = size
        self.closed = False
        self._followers: set[Follower] = set()
        self._source: IPushProducer | None = None
        self._source_paused = False
        self._released = False

    @classmethod
    def unbuffered(cls) -> Output:
        """
        An output that keeps only what its followers have not read yet.
        """
        return cls(BacklogStore(), kept=False)

    def attach_source(self, source: IPushProducer) -> None:
        """
        Name the producer of this output, to be paused while followers of an
        unbuffered output fall behind.
        """
        self._source = source

    def append(self, data: bytes) -> None:
        """
        Add bytes the run wrote, and pass them on to every follower.
        """
        if not data:
            return
        self._store.append(data)
        self.size += len(data)
        for follower in list(self._followers):
            follower.pump(data)
        self._progressed()

    def close(self) -> None:
        """
        The run has written everything: followers end once they have it all.
        """
        self.closed = True
        for follower in list(self._followers):
            follower.pump()
        self._maybe_discard()

    def release(self) -> None:
        """
        Nothing but current followers needs this output any more; its store is
        freed when the last of them is done.
        """
        self._released = True
        self._maybe_discard()

    def read(self, offset: int, limit: int) -> bytes:
        """
        Read kept bytes.

        @param offset: where to start; at least the oldest kept byte.
        @param limit: how many bytes at most.
        """
        available = self.size - offset
        if available <= 0:
            return b""
        return self._store.read(offset, min(limit, available))

    def contents(self) -> bytes:
        """
        All of a kept output written so far.
        """
        assert self.kept, "an unbuffered output keeps nothing to read back"
        return self.read(0, self.size)

    def follow(
        self,
        consumer: IConsumer,
        from_start: bool,
        clock: IReactorTime | None = None,
        paused: bool = False,
        offset: int | None = None,
        end: int | None = None,
    ) -> Follower:
        """
        Add a follower that writes this output to C{consumer}.

        @param from_start: begin at the first byte (only for kept outputs);
            otherwise begin with what the run writes next.
        @param offset: begin at this byte instead (only for kept outputs).
        @param end: stop before this byte instead of at the output's end.
        @param clock: times how long the consumer takes nothing, to drop it
            after L{STALL_SECONDS}; without one it is never dropped.
        @param paused: hold the follower, writing nothing and keeping what it
            has not read, until it is resumed.
        @return: the follower; the caller registers it as C{consumer}'s
            producer and waits on its C{done}.
        """
        if offset is None or not self.kept:
            offset = 0 if from_start and self.kept else self.size
        follower = Follower(self, consumer, offset, clock, paused, end)
        self._followers.add(follower)
        return follower

    @property
    def follower_count(self) -> int:
        """
        How many followers are reading this output now.
        """
        return len(self._followers)

    def _unfollow(self, follower: Follower) -> None:
        self._followers.discard(follower)
        self._progressed()
        self._maybe_discard()

    def _progressed(self) -> None:
        """
        Followers have read further: drop what none of them needs and let the
        task go on when the slowest has caught up.
        """
        if self.kept:
            return
        oldest = min((f.offset for f in self._followers), default=self.size)
        self._store.trim(oldest)
        backlog = self.size - oldest
        if self._source is None or self.closed:
            return
        if not self._source_paused and backlog > BACKLOG_LIMIT:
            self._source_paused = True
            self._source.pauseProducing()
        elif self._source_paused and backlog <= BACKLOG_LIMIT // 2:
            self._source_paused = False
            self._source.resumeProducing()

    def _maybe_discard(self) -> None:
        if self._released and self.closed and not self._followers:
            self._store.close()
