"""
Running tasks as transient units of the user's systemd manager.

Every run of a task is the unit C{taru-NAME.service}, so systemd itself
refuses a second instance, even one started by another Taru. Stopping a run
stops the unit, which ends its whole control group.

How a run is wired:

  - the task's output goes to a FIFO in Taru's state folder (standard error
    joined to it), so a Taru that restarts while the unit runs can open the
    FIFO again and keep reading;
  - C{ExecStopPost=} writes the run's result (C{$SERVICE_RESULT},
    C{$EXIT_CODE}, C{$EXIT_STATUS}) to a status file beside the FIFO, the one
    exact record of how it ended, whoever was watching;
  - C{systemd-run --wait} says when the unit has started (or that it could
    not) and exits when the unit is gone.

systemd expands C{$VAR} and C{$$} in command lines, so every C{$} of the
command is passed doubled.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IDelayedCall,
    IReactorFDSet,
    IReactorProcess,
    IReactorTime,
)
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from taru.output import Output
from taru.runners import (
    STOP_GRACE_SECONDS,
    AlreadyRunningElsewhere,
    ExitStatus,
    IRunner,
    IRunningTask,
    PipeReader,
    RunnerError,
    exit_status_of,
    manager_environment,
)

# How often a run that this Taru did not start is checked for its end.
POLL_SECONDS = 1.0

# The longest unit name systemd takes.
UNIT_NAME_MAX = 255

# How systemd-run says the unit started, and how systemctl names unit states
# that are over.
_STARTED = re.compile(rb"^Running as unit: ", re.MULTILINE)
_OVER = frozenset({b"inactive", b"failed", b""})

_UNIT_SAFE = re.compile(rb"[A-Za-z0-9:_.]")


def escape_unit_name(name: str) -> str:
    """
    Escape a string for use in a systemd unit name, as C{systemd-escape} does.
    """
    escaped = []
    for index, byte in enumerate(name.encode("utf-8")):
        character = bytes([byte])
        if character == b"/":
            escaped.append("-")
        elif (index == 0 and character == b".") or not _UNIT_SAFE.match(character):
            escaped.append(f"\\x{byte:02x}")
        else:
            escaped.append(character.decode("ascii"))
    return "".join(escaped)


def unit_name(task: str) -> str:
    """
    The fixed unit name every run of C{task} uses.

    systemd takes names of at most L{UNIT_NAME_MAX} characters: a longer
    escaped name is cut, and ends with a digest of the whole task name so
    that it stays its task's alone.
    """
    escaped = escape_unit_name(task)
    longest = UNIT_NAME_MAX - len("taru-.service")
    if len(escaped) > longest:
        digest = hashlib.sha256(task.encode("utf-8")).hexdigest()[:16]
        escaped = escaped[: longest - len(digest) - 1]
        # Do not cut an escape sequence in two.
        cut = escaped.rfind("\\", len(escaped) - 3)
        if cut != -1:
            escaped = escaped[:cut]
        escaped = f"{escaped}_{digest}"
    return f"taru-{escaped}.service"


def escape_dollars(word: str) -> str:
    """
    Protect a command-line word from systemd's own C{$VAR} expansion.
    """
    return word.replace("$", "$$")


def _into_fifo(fifo: str) -> list[str]:
    """
    The start of a unit's command line that sends the task's standard output
    and standard error to its FIFO, then becomes the task.

    Only the task writes to the FIFO: were it the unit's C{StandardOutput=},
    C{ExecStopPost=} would open it too, and wait for ever for a reader when
    no Taru is running.

    The task also holds the FIFO open for reading (descriptor 3, never read),
    so that the FIFO keeps a reader while no Taru runs: what the task writes
    then waits in the pipe (the task blocks once it is full) for the next
    Taru, instead of failing for want of a reader and being lost.
    """
    return ["/bin/sh", "-c", 'exec "$@" > "$0" 2>&1 3< "$0"', fifo]


def _quoted(word: str) -> str:
    """
    Quote a word for systemd's command-line parser, which also expands
    C{$VAR} and unescapes backslashes.
    """
    escaped = word.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$")
    return f'"{escaped}"'


def exit_status_from(record: bytes) -> ExitStatus:
    """
    Read the status file C{ExecStopPost=} wrote: C{SERVICE_RESULT EXIT_CODE
    EXIT_STATUS}, such as C{exit-code exited 3} or C{signal killed KILL}.

    @return: the exit code when the process exited, else the signal that
        killed it; an unknown status when the record says neither.
    """
    fields = record.split()
    if len(fields) != 3:
        return ExitStatus(exit_code=None)
    how, status = fields[1], fields[2].decode("ascii", "replace")
    if how == b"exited" and status.isdigit():
        return ExitStatus(exit_code=int(status))
    if how in (b"killed", b"dumped"):
        try:
            return ExitStatus(exit_code=None, signal=signal.Signals[f"SIG{status}"])
        except KeyError:
            return ExitStatus(exit_code=None)
    return ExitStatus(exit_code=None)


class _Reporter(ProcessProtocol):
    """
    Watches one C{systemd-run} or C{systemctl} process: what it says, and how
    it ends.

    @ivar said: everything it wrote, standard output and error together.
    @ivar started: fires once it says the unit is running.
    @ivar ended: fires with its exit code when it has ended.
    """

    def __init__(self) -> None:
        self.said = bytearray()
        self.started: Deferred[None] = Deferred()
        self.ended: Deferred[int | None] = Deferred()

    def outReceived(self, data: bytes) -> None:
        self.said += data
        if not self.started.called and _STARTED.search(self.said):
            self.started.callback(None)

    errReceived = outReceived

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback(exit_status_of(reason).exit_code)


@implementer(IRunningTask)
class _UnitRun:
    """
    One run as a unit: its output FIFO, and the signal that the unit is gone,
    after which the status file says how it ended.
    """

    def __init__(
        self,
        runner: SystemdRunner,
        unit: str,
        output: Output,
        gone: Deferred[Any],
        reader: PipeReader | None,
        keeper: int | None,
    ) -> None:
        self._runner = runner
        self._unit = unit
        self._output = output
        self._reader = reader
        self._keeper = keeper
        self.ended: Deferred[ExitStatus] = Deferred()
        gone.addBoth(self._gone)

    def stop(self) -> None:
        self._runner.stop_unit(self._unit)

    def _gone(self, _: object) -> None:
        """
        The unit is over: take what is left in the FIFO, once followers that
        are behind have caught up, then report the status file's record.
        """
        status = self._runner.read_status(self._unit)
        if self._keeper is not None:
            os.close(self._keeper)
        if self._reader is None or self._reader.drain_and_close():
            self._finish(status)
        else:
            self._reader.closed.addCallback(lambda _: self._finish(status))

    def _finish(self, status: ExitStatus) -> None:
        self._output.close()
        self.ended.callback(status)


@implementer(IRunner)
class SystemdRunner:
    """
    Runs each task as a transient service of the user's systemd manager.
    """

    name = "systemd"
    _log = Logger()

    def __init__(
        self,
        reactor: IReactorProcess,
        state_directory: str,
        systemd_run: str = "systemd-run",
        systemctl: str = "systemctl",
    ) -> None:
        """
        @param reactor: the reactor, for processes, the FIFOs and time.
        @param state_directory: where the FIFOs and status files go, in a
            folder C{units}.
        @param systemd_run: the C{systemd-run} command.
        @param systemctl: the C{systemctl} command.
        """
        self._reactor = reactor
        # One reactor gives processes, file descriptors and time.
        self.clock = cast(IReactorTime, reactor)
        self._fds = cast(IReactorFDSet, reactor)
        self._directory = os.path.join(state_directory, "units")
        self._systemd_run = shutil.which(systemd_run) or systemd_run
        self._systemctl = shutil.which(systemctl) or systemctl

    def _path(self, unit: str, suffix: str) -> str:
        """
        The FIFO or status file of a unit. Escaped unit names hold
        backslashes, which systemd's parsers would read as escapes; C{~}
        never occurs in them, so it takes their place. A name too long for
        a file is replaced by its digest.
        """
        name = unit.replace("\\", "~")
        if len(name) + len(suffix) > 200:
            name = hashlib.sha256(unit.encode("utf-8")).hexdigest()
        return os.path.join(self._directory, name + suffix)

    def read_status(self, unit: str) -> ExitStatus:
        """
        How a unit's last run ended, from its status file, which is then
        removed: a status file that remains tells of a run no Taru saw end.
        """
        path = self._path(unit, ".status")
        try:
            with open(path, "rb") as status_file:
                record = status_file.read()
        except OSError:
            return ExitStatus(exit_code=None)
        os.unlink(path)
        return exit_status_from(record)

    def ended_unseen(self, tasks: Sequence[str]) -> dict[str, ExitStatus]:
        ended = {}
        for task in tasks:
            unit = unit_name(task)
            if os.path.exists(self._path(unit, ".status")):
                ended[task] = self.read_status(unit)
        return ended

    def _open_fifo(self, unit: str, fresh: bool) -> tuple[int, int] | None:
        """
        Open a unit's FIFO twice for reading: once to read, once to hold it
        open so that C{ExecStopPost=} can open it after the task closed it.

        @param fresh: make a new FIFO and forget the last run's status.
        @return: the two descriptors, or L{None} when there is no FIFO.
        """
        fifo = self._path(unit, ".fifo")
        if fresh:
            os.makedirs(self._directory, mode=0o700, exist_ok=True)
            for old in (fifo, self._path(unit, ".status")):
                try:
                    os.unlink(old)
                except FileNotFoundError:
                    pass
            os.mkfifo(fifo, 0o600)
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            return os.open(fifo, flags), os.open(fifo, flags)
        except OSError as error:
            if error.errno == errno.ENOENT and not fresh:
                return None
            raise

    def _command(
        self,
        unit: str,
        argv: Sequence[str],
        environment: Mapping[str, str],
        working_directory: str | None = None,
        properties: Sequence[tuple[str, str]] = (),
    ) -> list[str]:
        status = self._path(unit, ".status")
        record = 'echo "$$SERVICE_RESULT $$EXIT_CODE $$EXIT_STATUS" > "$$1"'
        return [
            self._systemd_run,
            "--user",
            "--wait",
            "--collect",
            f"--unit={unit}",
            f"--property=TimeoutStopSec={STOP_GRACE_SECONDS:g}",
            f"--working-directory={working_directory or os.getcwd()}",
            f"--property=ExecStopPost=/bin/sh -c '{record}' sh {_quoted(status)}",
            *(f"--property={name}={value}" for name, value in properties),
            *(f"--setenv={key}={value}" for key, value in environment.items()),
            "--",
            *(escape_dollars(word) for word in _into_fifo(self._path(unit, ".fifo"))),
            *(escape_dollars(word) for word in argv),
        ]

    async def start(
        self,
        task: str,
        argv: Sequence[str],
        environment: Mapping[str, str],
        output: Output,
        working_directory: str | None = None,
        properties: Sequence[tuple[str, str]] = (),
    ) -> IRunningTask:
        unit = unit_name(task)
        # The unit's FIFO and status file are made anew below: not while a
        # run of it goes on, started by a Taru that forgot it or by another.
        if await self.active_state(unit) not in _OVER:
            raise AlreadyRunningElsewhere(unit)
        try:
            fifos = self._open_fifo(unit, fresh=True)
        except OSError as error:
            raise RunnerError(f"cannot make the output FIFO: {error}") from None
        assert fifos is not None
        reader_fd, keeper = fifos

        reporter = _Reporter()
        try:
            self._reactor.spawnProcess(
                reporter,
                self._systemd_run,
                self._command(unit, argv, environment, working_directory, properties),
                env=manager_environment(),
                childFDs={0: "w", 1: "r", 2: "r"},
            )
        except OSError as error:
            os.close(reader_fd)
            os.close(keeper)
            raise RunnerError(f"cannot run systemd-run: {error.strerror}") from None

        first = await _first(reporter.started, reporter.ended)
        if first is not reporter.started:
            os.close(reader_fd)
            os.close(keeper)
            said = reporter.said.decode("utf-8", "replace").strip()
            if "already" in said:
                raise AlreadyRunningElsewhere(unit)
            raise RunnerError(f"systemd-run failed: {said}")

        reader = PipeReader(self._fds, reader_fd, output)
        return _UnitRun(self, unit, output, reporter.ended, reader, keeper)

    async def running(self, tasks: Sequence[str]) -> list[str]:
        units = {unit_name(task): task for task in tasks}
        if not units:
            return []
        reporter = self._systemctl_says(["show", "--property=Id,ActiveState"], units)
        await reporter.ended
        found = []
        for block in bytes(reporter.said).split(b"\n\n"):
            fields = dict(
                line.split(b"=", 1) for line in block.splitlines() if b"=" in line
            )
            unit = fields.get(b"Id", b"").decode("utf-8", "replace")
            if unit in units and fields.get(b"ActiveState", b"") not in _OVER:
                found.append(units[unit])
        return found

    def adopt(self, task: str, output: Output, read_output: bool) -> IRunningTask:
        unit = unit_name(task)
        fifos = self._open_fifo(unit, fresh=False) if read_output else None
        reader: PipeReader | None = None
        keeper: int | None = None
        if fifos is not None:
            reader_fd, keeper = fifos
            reader = PipeReader(self._fds, reader_fd, output)
        gone: Deferred[object] = Deferred()
        _UnitWatch(self, unit, gone).check()
        return _UnitRun(self, unit, output, gone, reader, keeper)

    def active_state(self, unit: str) -> Deferred[bytes]:
        """
        Ask systemd for a unit's C{ActiveState}; empty when it is unknown.
        """
        reporter = self._systemctl_says(
            ["show", "--property=ActiveState", "--value"], [unit]
        )
        return reporter.ended.addCallback(lambda _: bytes(reporter.said).strip())

    def stop_unit(self, unit: str) -> None:
        """
        Stop a unit: systemd ends its whole control group.
        """
        reporter = self._systemctl_says(["stop"], [unit])
        reporter.ended.addCallback(self._stopped, unit, reporter)

    def _systemctl_says(
        self, command: Sequence[str], units: Iterable[str]
    ) -> _Reporter:
        """
        Run C{systemctl --user COMMAND -- UNITS}, and watch what it says.
        """
        reporter = _Reporter()
        self._reactor.spawnProcess(
            reporter,
            self._systemctl,
            [self._systemctl, "--user", *command, "--", *units],
            env=manager_environment(),
            childFDs={0: "w", 1: "r", 2: "r"},
        )
        return reporter

    def _stopped(self, code: int | None, unit: str, reporter: _Reporter) -> None:
        if code != 0:
            self._log.warn(
                "systemctl could not stop {unit}: {said}",
                unit=unit,
                said=reporter.said.decode("utf-8", "replace").strip(),
            )


class _UnitWatch:
    """
    Asks systemd every L{POLL_SECONDS} whether a unit this Taru did not start
    is over, and fires C{gone} when it is.
    """

    def __init__(self, runner: SystemdRunner, unit: str, gone: Deferred[object]):
        self._runner = runner
        self._unit = unit
        self._gone = gone
        self._next: IDelayedCall | None = None

    def check(self) -> None:
        self._runner.active_state(self._unit).addCallback(self._answered)

    def _answered(self, state: bytes) -> None:
        if state in _OVER:
            self._gone.callback(None)
            return
        self._next = self._runner.clock.callLater(POLL_SECONDS, self.check)


async def _first(*waiting: Deferred[Any]) -> Deferred[Any]:
    """
    Wait for the first of several Deferreds to fire, and say which it was.
    """
    chosen: Deferred[Deferred[Any]] = Deferred()
    for each in waiting:
        each.addBoth(_pick, chosen, each)
    return await chosen


def _pick(
    result: object, chosen: Deferred[Deferred[Any]], each: Deferred[Any]
) -> object:
    if not chosen.called:
        chosen.callback(each)
    return result


def user_manager_answers(timeout: float = 5.0) -> bool:
    """
    Is there a systemd user manager that would run tasks?

    Called once at start-up, before the reactor runs.
    """
    systemctl = shutil.which("systemctl")
    if systemctl is None or shutil.which("systemd-run") is None:
        return False
    try:
        completed = subprocess.run(
            [systemctl, "--user", "show-environment"],
            env=manager_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return completed.returncode == 0
