"""
The tasks and their state: which are running, how each last ended, and the
one place where runs are started and stopped.

A task runs at most once at a time: L{Tasks.start} marks it running before it
returns, so of any number of simultaneous starts exactly one succeeds.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from attrs import define, field
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from zope.interface import Interface

from taru.arguments import enum_lines
from taru.config import Config, TaskSpec
from taru.events import IEventSink
from taru.history import History, HistoryError, RunRecord
from taru.output import Output, Spool
from taru.runners import (
    AlreadyRunningElsewhere,
    ExitStatus,
    IRunner,
    IRunningTask,
    task_environment,
)


class NoSuchTask(Exception):
    """
    No such task, or none that the requester may see: the two look the same.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"no task named {self.name!r}"


class AlreadyRunning(Exception):
    """
    The task is running already; it runs at most once at a time.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"task {self.name!r} is already running"


# How much of an Enum source's output is read for values.
ENUM_SOURCE_LIMIT = 1024 * 1024

T = TypeVar("T")

NEW = "new"
RUNNING = "running"
FINISHED = "finished"


@define
class Run:
    """
    One run of a task.

    @ivar run_id: the run's number in the history, never given to another
        run.
    @ivar output: what the run writes.
    @ivar process: the runner's handle on its process, once started.
    @ivar status: how it ended, once it has.
    @ivar started_at: when it started, in the clock's seconds.
    @ivar ended_at: when it ended, once it has.
    @ivar arguments: the argument values it was started with, by name.
    @ivar address: the address of the client that started it, if known.
    @ivar stopped_by: who asked for it to be stopped, if anyone did: a user's
        name, or C{"timeout"}, C{"shutdown"}.
    @ivar timed_out: whether it was stopped for running past its timeout.
    """

    run_id: int
    task: TaskSpec
    argv: tuple[str, ...]
    user: str | None
    started_at: float
    output: Output
    process: IRunningTask | None = None
    status: ExitStatus | None = None
    stop_requested: bool = False
    ended_at: float | None = None
    arguments: dict[str, str] = field(factory=dict)
    address: str | None = None
    stopped_by: str | None = None
    timed_out: bool = False
    _timer: IDelayedCall | None = None


class IRunObserver(Interface):
    """
    Told of every run that starts and ends, to count or record it.
    """

    def run_started(run: Run) -> None:
        """
        A run has started: its process runs.
        """

    def run_ended(run: Run) -> None:
        """
        A run has ended: its C{status} and C{ended_at} are set.
        """


@define
class TaskState:
    """
    A task's configuration and what it has done.

    @ivar spec: the task as currently configured.
    @ivar current: the run in progress, if any.
    @ivar last: the latest run, running or ended.
    """

    spec: TaskSpec
    current: Run | None = None
    last: Run | None = None
    _waiters: list[Deferred[ExitStatus | None]] = field(factory=list)

    @property
    def state(self) -> str:
        """
        C{new} before the first run, then C{running} or C{finished}.
        """
        if self.current is not None:
            return RUNNING
        if self.last is not None:
            return FINISHED
        return NEW

    @property
    def exit_code(self) -> int | None:
        """
        The exit code of the latest ended run, unless a signal ended it.
        """
        if self.current is None and self.last is not None and self.last.status:
            return self.last.status.exit_code
        return None


def run_environment(run: Run) -> dict[str, str]:
    """
    The environment a run gets: the common one (see L{task_environment}), the
    task's own variables, the run's number as C{TARU_RUN_ID} and, when known,
    the user who started it as C{TARU_USER}.
    """
    environment = task_environment(run.task.name)
    environment.update(run.task.environment)
    environment["TARU_RUN_ID"] = str(run.run_id)
    if run.user is not None:
        environment["TARU_USER"] = run.user
    return environment


def _cancel_timeout(run: Run) -> None:
    """
    The run's timeout no longer applies.
    """
    if run._timer is not None:
        if run._timer.active():
            run._timer.cancel()
        run._timer = None


def _run_of(record: RunRecord, spec: TaskSpec, output: Output) -> Run:
    """
    A run as the history recorded it, with its output.
    """
    return Run(
        run_id=record.run_id,
        task=spec,
        argv=record.argv,
        user=record.user,
        started_at=record.started_at,
        output=output,
        status=record.status,
        ended_at=record.ended_at,
        arguments=dict(record.arguments),
        address=record.address,
        stopped_by=record.stopped_by,
        timed_out=record.timed_out,
    )


def _whole_or_none(value: object) -> bool:
    """
    Whether a value read back from a record is a whole number or null.
    """
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


def _time_or(value: object, default: float) -> float:
    """
    A time read back from a record, or C{default} when it holds none.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if math.isfinite(value) and value >= 0:
            return float(value)
    return default


class Tasks:
    """
    All configured tasks, their runs, and their state.
    """

    _log = Logger()

    def __init__(
        self,
        config: Config,
        runner: IRunner,
        spool: Spool,
        events: IEventSink,
        clock: IReactorTime,
        history: History,
        observers: Sequence[IRunObserver] = (),
    ) -> None:
        """
        @param history: where every run is recorded, and gets its number.
        @param observers: told of each run's start and end, in order.
        """
        self._runner = runner
        self.history = history
        self._observers = list(observers)
        self._spool = spool
        self._events = events
        self._clock = clock
        self._states: dict[str, TaskState] = {}
        self._retiring: dict[str, TaskState] = {}
        self._enum_cache: dict[str, tuple[tuple[int, int, bool], list[str]]] = {}
        # Counts changes to what the task list shows, so that it can be
        # cached while nothing changes.
        self.version = 0
        self.config = config
        self.reconfigure(config)

    def reconfigure(self, config: Config) -> None:
        """
        Put a new configuration in force.

        Running tasks keep running to their end, even when the new
        configuration changes or removes them; a removed task's runs are then
        forgotten.
        """
        self._enum_cache.clear()
        old = {**self._retiring, **self._states}
        self._states = {}
        self._retiring = {}
        for name, spec in config.tasks.items():
            state = old.pop(name, None) or TaskState(spec=spec)
            state.spec = spec
            self._states[name] = state
        for name, state in old.items():
            if state.current is not None:
                self._retiring[name] = state
            elif state.last is not None:
                state.last.output.release()
        self.config = config
        self.version += 1

    def get(self, name: str) -> TaskState:
        """
        A configured task's state.

        @raise NoSuchTask: if no task has that name.
        """
        state = self._states.get(name)
        if state is None:
            raise NoSuchTask(name)
        return state

    def all(self) -> Mapping[str, TaskState]:
        """
        Every configured task's state, in configured order.
        """
        return self._states

    def enum_values(self, source: str) -> list[str] | None:
        """
        The values an Enum argument fed by C{source} permits now.

        Only the first L{ENUM_SOURCE_LIMIT} bytes of the output count, and the
        values are worked out once for each size of the output.

        @return: the lines of the source's latest output (without a last,
            unfinished line while it is still running), or L{None} if it has
            not run yet.
        """
        state = self._states.get(source)
        if state is None or state.last is None or not state.last.output.kept:
            return None
        output = state.last.output
        size = min(output.size, ENUM_SOURCE_LIMIT)
        complete = state.current is None and size == output.size
        key = (state.last.run_id, size, complete)
        cached = self._enum_cache.get(source)
        if cached is not None and cached[0] == key:
            return cached[1]

        contents = output.read(0, size)
        if not complete and not contents.endswith(b"\n"):
            contents = contents[: contents.rfind(b"\n") + 1]
        values = enum_lines(contents)
        self._enum_cache[source] = (key, values)
        return values

    async def start(
        self,
        name: str,
        argv: tuple[str, ...],
        user: str | None,
        on_output: Callable[[Output], object] | None = None,
        arguments: Mapping[str, str] | None = None,
        address: str | None = None,
    ) -> Run:
        """
        Start a run of a task.

        The task counts as running from the moment this is called, so that
        of simultaneous starts exactly one goes ahead. Cancelling the wait
        (a client that goes away) does not cancel the start: a run that the
        runner starts is followed to its end in any case.

        @param argv: the substituted command.
        @param user: who started it.
        @param arguments: the argument values it is started with, by name.
        @param address: the address of the client that starts it.
        @param on_output: given the run's output before the task can write
            anything to it, to follow all of it.
        @raise NoSuchTask: if there is no such task.
        @raise AlreadyRunning: if it is running, here or, as the runner
            found, elsewhere.
        @raise RunnerError: if the runner could not start it.
        """
        state = self.get(name)
        if state.current is not None:
            raise AlreadyRunning(name)
        spec = state.spec
        started_at = self._clock.seconds()
        arguments = dict(arguments or {})
        run_id = self.history.begin(name, user, address, arguments, argv, started_at)
        try:
            output = self._spool.prepare(name) if spec.buffered else Output.unbuffered()
        except BaseException:
            self._forget(run_id)
            raise
        run = Run(
            run_id=run_id,
            task=spec,
            argv=argv,
            user=user,
            started_at=started_at,
            output=output,
            arguments=arguments,
            address=address,
        )
        state.current = run
        self.version += 1
        if on_output is not None:
            on_output(output)
        return await _shielded(Deferred.fromCoroutine(self._launch(state, run)))

    async def _launch(self, state: TaskState, run: Run) -> Run:
        """
        Have the runner start a run, and account for how that went.
        """
        name, argv, output = run.task.name, run.argv, run.output
        try:
            process = await self._runner.start(
                name,
                argv,
                run_environment(run),
                output,
                run.task.working_directory,
                run.task.systemd_properties,
            )
        except BaseException as error:
            self._forget(run.run_id)
            state.current = None
            self.version += 1
            output.close()
            output.release()
            if run.task.buffered:
                self._spool.discard(name)
            self._release_waiters(state, state.last.status if state.last else None)
            if isinstance(error, AlreadyRunningElsewhere):
                self._log.warn(
                    "task {task} was not started: it runs already, started elsewhere",
                    task=name,
                )
                self._follow_elsewhere(state, read_output=False)
                raise AlreadyRunning(name) from None
            self._log.warn(
                "task {task} could not start: {error}", task=name, error=str(error)
            )
            raise

        if run.task.buffered:
            self._spool.keep(name)
            self.history.keep_output(run.run_id, self._spool.path_for(name))
        self._log.info(
            "task {task} started as run {run_id} by {user} from {address}: {argv}",
            task=name,
            run_id=run.run_id,
            user=run.user,
            address=run.address,
            arguments=run.arguments,
            argv=list(argv),
            audit="started",
        )
        self._begin(state, run, process)
        return run

    def _begin(self, state: TaskState, run: Run, process: IRunningTask) -> None:
        """
        A run has started: it is the task's latest, its end will be reported,
        and a stop asked for while it was starting takes effect.
        """
        run.process = process
        if state.last is not None:
            state.last.output.release()
        state.current = state.last = run
        self.version += 1
        self._keep_record(run)
        self._events.publish(run.task.name, "Started")
        for observer in self._observers:
            observer.run_started(run)
        process.ended.addCallback(self._ended, state, run)
        timeout = run.task.timeout
        if timeout is not None:
            left = max(timeout - (self._clock.seconds() - run.started_at), 0.0)
            run._timer = self._clock.callLater(left, self._time_out, run)
        if run.stop_requested:
            process.stop()

    def _time_out(self, run: Run) -> None:
        """
        A run has passed its task's timeout: stop it, and say so.
        """
        run._timer = None
        run.timed_out = True
        run.stopped_by = run.stopped_by or "timeout"
        self._log.warn(
            "task {task} run {run_id} ran past its timeout of {timeout}s: stopping it",
            task=run.task.name,
            run_id=run.run_id,
            timeout=run.task.timeout,
            audit="timed out",
        )
        if run.process is not None:
            run.process.stop()

    async def recover(self) -> None:
        """
        Find the tasks that are running though this Taru did not start them,
        as after a restart with the systemd runner, and follow each to its
        end, reading its output from where it is now.
        """
        running = await self._runner.running(list(self._states))
        for name in running:
            state = self._states.get(name)
            if state is not None and state.current is None:
                self._log.info("task {task} found running", task=name)
                self._follow_elsewhere(state, read_output=True)
        quiet = [name for name in self._states if name not in running]
        for name, status in self._runner.ended_unseen(quiet).items():
            self._log.info(
                "task {task} ended while no Taru ran: exit code {exit_code},"
                " signal {signal}",
                task=name,
                exit_code=status.exit_code,
                signal=status.signal,
            )
            self._record_ended_unseen(self._states[name], status)
        self._close_lost_runs()
        for state in self._states.values():
            if state.last is None and state.spec.buffered:
                self._restore_last(state)

    def _close_lost_runs(self) -> None:
        """
        End the history's records of runs that an earlier Taru saw start but
        not end, and that run no more: how they ended is unknown.
        """
        current = {
            state.current.run_id for state in self._states.values() if state.current
        }
        for record in self.history.unfinished():
            if record.run_id in current:
                continue
            path = self.history.output_path(record.run_id)
            ended_at, size = record.started_at, record.output_size
            if record.output_kept and os.path.exists(path):
                ended_at = max(os.stat(path).st_mtime, record.started_at)
                size = os.stat(path).st_size
            self._log.warn(
                "task {task} run {run_id} ended while no Taru followed it;"
                " how it ended is unknown",
                task=record.task,
                run_id=record.run_id,
            )
            self.history.end(record.run_id, ended_at, None, False, None, size)

    def _restore_last(self, state: TaskState) -> None:
        """
        Take up the last run of a buffered task from before Taru started: its
        output as its spool file kept it, when it ran and how it ended as its
        record says (unknown when the record does not say).
        """
        name = state.spec.name
        output = self._spool.last(name)
        if output is None:
            return
        record = self._spool.read_record(name)
        exit_code, signal = record.get("exit_code"), record.get("signal")
        status = None
        if _whole_or_none(exit_code) and _whole_or_none(signal):
            if exit_code is not None or signal is not None:
                status = ExitStatus(exit_code, signal)
        written_at = os.stat(self._spool.path_for(name)).st_mtime
        started_at = _time_or(record.get("started_at"), written_at)
        ended_at = max(_time_or(record.get("ended_at"), written_at), started_at)
        recorded = self.history.runs(name, 1)
        if recorded:
            run = _run_of(recorded[0], state.spec, output)
            run.status = run.status or status
            run.ended_at = run.ended_at or ended_at
        else:
            # Kept by a Taru that had no history: recorded now, as far as
            # known.
            run = Run(
                run_id=self.history.begin(
                    name, None, None, {}, state.spec.command, started_at
                ),
                task=state.spec,
                argv=state.spec.command,
                user=None,
                started_at=started_at,
                output=output,
                status=status,
                ended_at=ended_at,
            )
            self.history.end(run.run_id, ended_at, status, False, None, output.size)
        self.version += 1
        state.last = run
        self._log.info(
            "task {task}: the output of its last run, {size} bytes, is kept"
            " from before",
            task=name,
            size=output.size,
        )

    def _forget(self, run_id: int) -> None:
        """
        Drop the record of a run that did not start, as far as the history
        lets.
        """
        try:
            self.history.forget(run_id)
        except HistoryError as error:
            self._log.error(
                "run {run_id} did not start, but stays in the history: {error}",
                run_id=run_id,
                error=str(error),
            )

    def _record_end(self, run: Run) -> None:
        """
        Note in the history how a run ended, and forget the task's runs
        beyond those it keeps. When the history cannot be written, the log
        says so and the run ends all the same.
        """
        try:
            self.history.end(
                run.run_id,
                run.ended_at if run.ended_at is not None else self._clock.seconds(),
                run.status,
                run.timed_out,
                run.stopped_by,
                run.output.size,
            )
            self.history.prune(run.task.name, run.task.history)
        except HistoryError as error:
            self._log.error(
                "the end of task {task} run {run_id} is not in the history: {error}",
                task=run.task.name,
                run_id=run.run_id,
                error=str(error),
            )

    def _keep_record(self, run: Run) -> None:
        """
        Note when a buffered task's run started and how it ended beside its
        spool file, for a later Taru.
        """
        if not (run.task.buffered and run.output.kept):
            return
        status = run.status
        self._spool.write_record(
            run.task.name,
            {
                "run_id": run.run_id,
                "started_at": run.started_at,
                "ended_at": run.ended_at,
                "exit_code": None if status is None else status.exit_code,
                "signal": None if status is None else status.signal,
            },
        )

    def _record_ended_unseen(self, state: TaskState, status: ExitStatus) -> None:
        """
        Count a run that ended while no Taru followed it as the task's last,
        with its output as its spool file kept it.
        """
        run = self._run_from_before(state.spec, read_output=True)
        run.output.close()
        run.status = status
        run.ended_at = run.started_at
        self._keep_record(run)
        self._record_end(run)
        if state.last is not None:
            state.last.output.release()
        state.last = run
        self.version += 1

    def _follow_elsewhere(self, state: TaskState, read_output: bool) -> None:
        """
        Count a task as running in a run this Taru did not start, until it
        ends.
        """
        run = self._run_from_before(state.spec, read_output)
        process = self._runner.adopt(state.spec.name, run.output, read_output)
        self._begin(state, run, process)

    def _run_from_before(self, spec: TaskSpec, read_output: bool) -> Run:
        """
        A run this Taru did not start: who started it, from where and with
        which arguments as the history says, when it holds the run; a
        buffered one's output goes on in its spool.
        """
        if read_output and spec.buffered:
            output = self._spool.resume(spec.name)
        else:
            output = Output.unbuffered()
        now = self._clock.seconds()
        started_at = now
        if spec.buffered:
            # The earlier Taru noted when it started the run.
            started_at = min(
                _time_or(self._spool.read_record(spec.name).get("started_at"), now), now
            )
        unfinished = [
            record for record in self.history.unfinished() if record.task == spec.name
        ]
        if unfinished:
            run = _run_of(unfinished[-1], spec, output)
            run.started_at = min(run.started_at, now)
            return run
        return Run(
            run_id=self.history.begin(
                spec.name, None, None, {}, spec.command, started_at
            ),
            task=spec,
            argv=spec.command,
            user=None,
            started_at=started_at,
            output=output,
        )

    def _release_waiters(self, state: TaskState, status: ExitStatus | None) -> None:
        waiters, state._waiters = state._waiters, []
        for waiter in waiters:
            waiter.callback(status)

    def _ended(self, status: ExitStatus, state: TaskState, run: Run) -> None:
        run.status = status
        run.ended_at = self._clock.seconds()
        _cancel_timeout(run)
        self._keep_record(run)
        self._record_end(run)
        state.current = None
        self.version += 1
        name = run.task.name
        if self._retiring.get(name) is state:
            del self._retiring[name]
            run.output.release()
        self._log.info(
            "task {task} run {run_id} ended: exit code {exit_code},"
            " signal {signal}, after {duration:.3f}s",
            task=name,
            run_id=run.run_id,
            exit_code=status.exit_code,
            signal=status.signal,
            duration=self._clock.seconds() - run.started_at,
            user=run.user,
            timed_out=run.timed_out,
            stopped_by=run.stopped_by,
            audit="ended",
        )
        self._events.publish(name, {"ExitStatus": status.exit_code})
        for observer in self._observers:
            observer.run_ended(run)
        self._release_waiters(state, status)

    def stop(
        self, name: str, user: str | None = None, address: str | None = None
    ) -> bool:
        """
        Stop a task's run, with everything it started.

        A run that is still starting is stopped as soon as it has started.

        @param user: who asks, for the history and the log.
        @param address: the address of the client that asks, for the log.
        @return: whether it was running.
        @raise NoSuchTask: if there is no such task.
        """
        state = self.get(name)
        run = state.current
        if run is None:
            return False
        if run.stopped_by is None:
            run.stopped_by = user or "anonymous"
        # Stopped by someone: no longer a run that may time out.
        _cancel_timeout(run)
        self._log.info(
            "task {task} run {run_id} stopping, asked by {user} from {address}",
            task=name,
            run_id=run.run_id,
            user=user,
            address=address,
            audit="stopped",
        )
        if run.process is None:
            run.stop_requested = True
        else:
            run.process.stop()
        return True

    def wait(self, name: str) -> Deferred[ExitStatus | None]:
        """
        Wait for a task's current run to end.

        @return: a Deferred firing with the run's exit status; at once with the
            latest run's if none is running, or with L{None} if it never ran.
            Cancelling it stops only the waiting.
        @raise NoSuchTask: if there is no such task.
        """
        state = self.get(name)
        if state.current is None:
            return succeed(state.last.status if state.last else None)

        def forget(waiter: Deferred[ExitStatus | None]) -> None:
            if waiter in state._waiters:
                state._waiters.remove(waiter)

        waiter: Deferred[ExitStatus | None] = Deferred(forget)
        state._waiters.append(waiter)
        return waiter

    def stop_all(self) -> Deferred[Any]:
        """
        Stop every running task and wait for each to end.
        """
        ending = []
        for state in [*self._states.values(), *self._retiring.values()]:
            if state.current is not None and state.current.process is not None:
                if state.current.stopped_by is None:
                    state.current.stopped_by = "shutdown"
                state.current.process.stop()
                ending.append(state.current.process.ended)
        return DeferredList(ending)


def _shielded(work: Deferred[T]) -> Deferred[T]:
    """
    Wait for C{work} in a way that can be cancelled without cancelling it.
    """
    waiting: Deferred[T] = Deferred()

    def relay(result: object) -> None:
        if not waiting.called:
            waiting.callback(result)  # type: ignore[arg-type]  # T, or a Failure

    work.addBoth(relay)
    return waiting
