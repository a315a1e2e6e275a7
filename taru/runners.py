"""
Runners start a task's process, feed its output to an L{Output}, stop it, and
report how it ended.

Two runners exist. L{DirectRunner} starts each run as a child process in a
session of its own and stops it by signalling that whole process group.
L{SystemdRunner} starts each run as a transient unit of the user's systemd
manager with C{systemd-run --user}, so that systemd itself refuses a second
instance and stopping ends the unit's whole control group.

In both, standard output and standard error share one pipe, so their bytes
arrive in the order the task wrote them, and standard input is empty.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import cast

from attrs import define, frozen
from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessTerminated
from twisted.internet.interfaces import (
    IDelayedCall,
    IPushProducer,
    IReactorFDSet,
    IReactorProcess,
    IReactorTime,
    IReadDescriptor,
)
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Attribute, Interface, implementer

from taru.output import Output

# How much is read from a task's pipe at a time.
READ_SIZE = 64 * 1024

# After a task's process has exited, how long Taru keeps reading output that
# processes it left behind still write, before it calls the run ended.
DRAIN_SECONDS = 2.0

# At most how many reads a final drain makes, so that a process that keeps
# writing cannot hold Taru in one loop.
DRAIN_READS = 64

# How long a stopped task has between SIGTERM and SIGKILL.
STOP_GRACE_SECONDS = 5.0

# The PATH a task runs with.
TASK_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class RunnerError(Exception):
    """
    The runner could not start a task.
    """


class AlreadyRunningElsewhere(RunnerError):
    """
    The task is running already, though not started by this Taru: the system
    that runs it refused a second instance.
    """


@frozen
class ExitStatus:
    """
    How a run ended.

    @ivar exit_code: the exit code when the process exited, L{None} when a
        signal killed it.
    @ivar signal: the signal that killed it, if one did.
    """

    exit_code: int | None
    signal: int | None = None


class IRunningTask(Interface):
    """
    A task's process, started by a runner.
    """

    ended = Attribute(
        "A Deferred that fires with the ExitStatus once the process has ended"
        " and its output is closed."
    )

    def stop() -> None:
        """
        End the task and everything it started.
        """


class IRunner(Interface):
    """
    Starts tasks' processes.
    """

    name = Attribute("A short name for logs: 'direct' or 'systemd'.")

    def start(
        task: str,
        argv: Sequence[str],
        environment: Mapping[str, str],
        output: Output,
        working_directory: str | None = None,
        properties: Sequence[tuple[str, str]] = (),
    ) -> Awaitable[IRunningTask]:
        """
        Start one run of a task.

        @param task: the task's name.
        @param argv: the program and its arguments, already substituted.
        @param environment: the whole environment the task gets.
        @param output: where the task's bytes go; the runner closes it once
            the task is done writing.
        @param working_directory: where it runs; Taru's own working directory
            when L{None}.
        @param properties: systemd unit properties, for a runner that runs
            tasks as units; others ignore them.
        @return: the running task, once it has started.
        @raise AlreadyRunningElsewhere: the task runs already, started by
            someone else.
        @raise RunnerError: the process could not be started.
        """

    def running(tasks: Sequence[str]) -> Awaitable[list[str]]:
        """
        Which of these tasks are running now, started by an earlier Taru?
        """

    def ended_unseen(tasks: Sequence[str]) -> dict[str, ExitStatus]:
        """
        Which of these tasks ended, and how, while no Taru followed them?
        Each is told once.
        """

    def adopt(task: str, output: Output, read_output: bool) -> IRunningTask:
        """
        Follow a run of a task that this Taru did not start, until it ends.

        @param output: where what it writes from now on goes.
        @param read_output: whether to read its output at all; not when
            another Taru that reads it may be running.
        """


def task_environment(task: str) -> dict[str, str]:
    """
    The environment a task runs with: nothing of Taru's own, only what a
    program commonly needs.

    @param task: the task's name, given as C{TARU_TASK}.
    """
    account = pwd.getpwuid(os.getuid())
    return {
        "PATH": TASK_PATH,
        "HOME": account.pw_dir,
        "USER": account.pw_name,
        "LOGNAME": account.pw_name,
        "LANG": "C.UTF-8",
        "TARU_TASK": task,
    }


@implementer(IReadDescriptor, IPushProducer)
class PipeReader:
    """
    Reads a task's output pipe in large chunks into an L{Output}, and is that
    output's source: pausing it stops reading, and the task then blocks on a
    full pipe.
    """

    def __init__(self, reactor: IReactorFDSet, fd: int, output: Output) -> None:
        self._reactor = reactor
        self._fd = fd
        self._output = output
        self._paused = False
        self.closed: Deferred[None] = Deferred()
        os.set_blocking(fd, False)
        output.attach_source(self)
        reactor.addReader(self)

    def fileno(self) -> int:
        return self._fd

    _log = Logger()

    def logPrefix(self) -> str:
        return "task-output"

    def doRead(self) -> None:
        if self._read() is False:
            self.close()

    def _read(self) -> bool | None:
        """
        Read one chunk into the output.

        @return: whether anything was read; L{None} when nothing is there
            yet, L{False} at the end of the pipe.
        """
        try:
            data = os.read(self._fd, READ_SIZE)
        except BlockingIOError:
            return None
        except OSError:
            data = b""
        if not data:
            return False
        try:
            self._output.append(data)
        except OSError as error:
            # Such as a full disk under the spool: the rest of the output is
            # dropped, and the task ends as it would with its reader gone.
            self._log.error(
                "a task's output could not be kept, and the rest of it is"
                " dropped: {error}",
                error=str(error),
            )
            return False
        return True

    def connectionLost(self, reason: Failure) -> None:
        self.close()

    def pauseProducing(self) -> None:
        if self._fd >= 0 and not self._paused:
            self._paused = True
            self._reactor.removeReader(self)

    def resumeProducing(self) -> None:
        if self._fd >= 0 and self._paused:
            self._paused = False
            self._reactor.addReader(self)

    def stopProducing(self) -> None:
        self.close()

    def drain_and_close(self) -> bool:
        """
        Read what the pipe holds now, then close it; unless reading is paused
        because followers are behind, in which case nothing is dropped and
        nothing is closed.

        @return: whether the pipe is closed.
        """
        for _ in range(DRAIN_READS):
            if self._fd < 0 or self._paused or not self._read():
                break
        if self._paused:
            return False
        self.close()
        return True

    def close(self) -> None:
        """
        Stop reading and close the pipe; whatever is still in it is dropped.
        """
        if self._fd < 0:
            return
        self._reactor.removeReader(self)
        os.close(self._fd)
        self._fd = -1
        self.closed.callback(None)


class _ExitWatcher(ProcessProtocol):
    """
    Learns how a task's process ended.
    """

    def __init__(self) -> None:
        self.exited: Deferred[ExitStatus] = Deferred()
        self.pid = 0

    def connectionMade(self) -> None:
        # Read now: a process that has already exited is reaped, and its pid
        # forgotten, before spawnProcess returns.
        assert self.transport is not None
        self.pid = self.transport.pid

    def processEnded(self, reason: Failure) -> None:
        self.exited.callback(exit_status_of(reason))


def exit_status_of(reason: Failure) -> ExitStatus:
    """
    How a process ended, from the reason Twisted gives a process protocol.
    """
    value = reason.value
    if isinstance(value, ProcessTerminated):
        return ExitStatus(exit_code=value.exitCode, signal=value.signal)
    return ExitStatus(exit_code=0)


def _spawn(
    reactor: IReactorProcess,
    argv: Sequence[str],
    environment: Mapping[str, str],
    output_fd: int,
    working_directory: str | None = None,
) -> tuple[_ExitWatcher, int]:
    """
    Start a process whose stdout and stderr are C{output_fd} and whose stdin
    is empty.

    @param working_directory: where it runs, when not in Taru's own.
    @return: the watcher of its end, and its process id.
    """
    if working_directory is not None and not os.path.isdir(working_directory):
        raise RunnerError(f"the working directory {working_directory!r} is missing")
    watcher = _ExitWatcher()
    try:
        transport = reactor.spawnProcess(
            watcher,
            argv[0],
            list(argv),
            env=dict(environment),
            path=working_directory,
            childFDs={0: "w", 1: output_fd, 2: output_fd},
        )
    except OSError as error:
        raise RunnerError(f"cannot start {argv[0]!r}: {error.strerror}") from None
    transport.closeStdin()
    return watcher, watcher.pid


@implementer(IRunningTask)
class _Run:
    """
    One run's process and output pipe, ended when both are done.

    Once the process has exited, C{on_exit} deals with whatever it left
    running, and stopping the run only stops reading what those leftovers
    still write.
    """

    def __init__(
        self,
        clock: IReactorTime,
        watcher: _ExitWatcher,
        reader: PipeReader,
        output: Output,
        on_stop: Callable[[], None],
        on_exit: Callable[[], None] = lambda: None,
    ) -> None:
        self._clock = clock
        self._reader = reader
        self._output = output
        self._on_stop = on_stop
        self._on_exit = on_exit
        self._drain: IDelayedCall | None = None
        self._status: ExitStatus | None = None
        self.ended: Deferred[ExitStatus] = Deferred()
        watcher.exited.addCallback(self._exited)
        reader.closed.addCallback(self._output_closed)

    def stop(self) -> None:
        if self._status is None:
            self._on_stop()
        else:
            self._reader.close()

    def _exited(self, status: ExitStatus) -> None:
        self._status = status
        self._on_exit()
        if self._reader.closed.called:
            self._finish()
        else:
            self._drain = self._clock.callLater(DRAIN_SECONDS, self._drained)

    def _drained(self) -> None:
        """
        The process exited a while ago but something it left keeps the output
        pipe open: stop reading, once followers have taken what is there.
        """
        if not self._reader.drain_and_close():
            self._drain = self._clock.callLater(DRAIN_SECONDS, self._drained)

    def _output_closed(self, _: None) -> None:
        if self._drain is not None and self._drain.active():
            self._drain.cancel()
        if self._status is not None:
            self._finish()

    def _finish(self) -> None:
        assert self._status is not None
        self._output.close()
        self.ended.callback(self._status)


def process_tree(root: int) -> dict[int, int]:
    """
    Find every process descending from C{root}, from C{/proc}.

    @return: each descendant's pid, with its start time, which tells it apart
        from a later process that reuses the pid.
    """
    children: dict[int, list[int]] = {}
    start_times: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        start_time_and_parent = _stat(pid)
        if start_time_and_parent is None:
            continue
        start_times[pid], parent = start_time_and_parent
        children.setdefault(parent, []).append(pid)

    descendants: dict[int, int] = {}
    waiting = [root]
    while waiting:
        for child in children.get(waiting.pop(), []):
            if child not in descendants:
                descendants[child] = start_times[child]
                waiting.append(child)
    return descendants


def _stat(pid: int) -> tuple[int, int] | None:
    """
    A process's start time and parent, or L{None} if it is gone.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            stat = stat_file.read()
    except OSError:
        return None
    # The command name, in parentheses, may hold spaces and parentheses.
    fields = stat[stat.rfind(b")") + 2 :].split()
    return int(fields[19]), int(fields[1])


def _is_running(pid: int, start_time: int) -> bool:
    """
    Is the process that started at C{start_time} with this pid still there?
    """
    found = _stat(pid)
    return found is not None and found[0] == start_time


def signal_processes(processes: dict[int, int], signal_number: int) -> None:
    """
    Signal processes that still are the ones that were found.
    """
    for pid, start_time in processes.items():
        if not _is_running(pid, start_time):
            continue
        try:
            os.kill(pid, signal_number)
        except (ProcessLookupError, PermissionError):
            continue


@implementer(IRunner)
class DirectRunner:
    """
    Runs each task as a child process, in a session and process group of its
    own.

    Stop signals that whole group, and also every descendant of the task's
    process found in C{/proc} at that moment, so that children which left
    the group are not missed: SIGTERM, then SIGKILL after a grace period.
    Only a process that has both left the group and lost its parent before
    the stop escapes; the systemd runner has no such gap.
    """

    name = "direct"
    _log = Logger()

    def __init__(
        self,
        reactor: IReactorProcess,
        setsid: str | None = None,
        stop_grace: float = STOP_GRACE_SECONDS,
        find_descendants: Callable[[int], dict[int, int]] = process_tree,
    ) -> None:
        """
        @param reactor: the reactor, for processes, pipes and time.
        @param setsid: the path of C{setsid(1)}, which puts each task in a
            session of its own; looked up on C{PATH} when not given.
        @param stop_grace: seconds between SIGTERM and SIGKILL on stop.
        @param find_descendants: finds the processes descending from a pid,
            with their start times (see L{process_tree}).
        """
        self._find_descendants = find_descendants
        self._reactor = reactor
        # One reactor gives processes, file descriptors and time.
        self._fds = cast(IReactorFDSet, reactor)
        self._clock = cast(IReactorTime, reactor)
        found = setsid or shutil.which("setsid")
        if found is None:
            raise RunnerError("setsid (from util-linux) is needed to run tasks")
        self._setsid = found
        self._stop_grace = stop_grace
        self._stopping: dict[int, _Stopping] = {}

    async def start(
        self,
        task: str,
        argv: Sequence[str],
        environment: Mapping[str, str],
        output: Output,
        working_directory: str | None = None,
        properties: Sequence[tuple[str, str]] = (),
    ) -> IRunningTask:
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        try:
            watcher, pid = _spawn(
                self._reactor,
                [self._setsid, "--", *argv],
                environment,
                write_fd,
                working_directory,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        reader = PipeReader(self._fds, read_fd, output)
        run = _Run(
            self._clock,
            watcher,
            reader,
            output,
            on_stop=lambda: self._stop_group(pid, self._find_descendants(pid)),
            on_exit=lambda: self._stop_group(pid, {}),
        )
        run.ended.addCallback(self._forget_group, pid)
        return run

    async def running(self, tasks: Sequence[str]) -> list[str]:
        """
        None: the direct runner's tasks do not outlive the Taru that started
        them.
        """
        return []

    def ended_unseen(self, tasks: Sequence[str]) -> dict[str, ExitStatus]:
        """
        None: the direct runner's tasks end with the Taru that started them.
        """
        return {}

    def adopt(self, task: str, output: Output, read_output: bool) -> IRunningTask:
        raise RunnerError("the direct runner cannot follow runs it did not start")

    def _stop_group(self, pgid: int, descendants: dict[int, int]) -> None:
        """
        Send SIGTERM to a run's process group and to the given descendants of
        its first process, and SIGKILL after the grace period to whatever is
        left of them.

        This happens on stop, and when the first process exits, for what it
        left running in its group, as systemd does for a service. While a
        group has members the kernel does not reuse its number, so the
        group is only signalled by number while the run is known to hold it.
        """
        group_alive = _signal_group(pgid, signal.SIGTERM)
        if descendants:
            signal_processes(descendants, signal.SIGTERM)
        if not (group_alive or descendants) or pgid in self._stopping:
            return
        timer = self._clock.callLater(self._stop_grace, self._kill_group, pgid)
        self._stopping[pgid] = _Stopping(timer, descendants)

    def _kill_group(self, pgid: int) -> None:
        stopping = self._stopping.pop(pgid)
        if not stopping.group_gone:
            _signal_group(pgid, signal.SIGKILL)
        if stopping.descendants:
            signal_processes(stopping.descendants, signal.SIGKILL)

    def _forget_group(self, status: ExitStatus, pgid: int) -> ExitStatus:
        """
        A run ended. Once nothing of its process group is left, no SIGKILL
        must reach a later group that reuses its number; and with no
        descendants outside the group to kill either, none is due at all.
        (Descendants are only signalled while they are still the processes
        found at the stop.)
        """
        stopping = self._stopping.get(pgid)
        if stopping is None or _signal_group(pgid, 0):
            return status
        stopping.group_gone = True
        if not stopping.descendants:
            stopping.timer.cancel()
            del self._stopping[pgid]
        return status


@define
class _Stopping:
    """
    A run being stopped: what the SIGKILL after the grace period is for.
    """

    timer: IDelayedCall
    descendants: dict[int, int]
    group_gone: bool = False


def _signal_group(pgid: int, signal_number: int) -> bool:
    """
    Signal a process group.

    @return: whether the group still existed.
    """
    try:
        os.killpg(pgid, signal_number)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def manager_environment() -> dict[str, str]:
    """
    What C{systemd-run} and C{systemctl} need to find the user manager.
    """
    keys = ("PATH", "HOME", "USER", "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS")
    environment = {key: os.environ[key] for key in keys if key in os.environ}
    if "XDG_RUNTIME_DIR" not in environment:
        runtime = f"/run/user/{os.getuid()}"
        if os.path.isdir(runtime):
            environment["XDG_RUNTIME_DIR"] = runtime
    return environment
