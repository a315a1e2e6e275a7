"""
Stand-ins for the seams Taru's units talk to: a runner, its running tasks, an
event sink, an output's source and a consumer that takes bytes at a set pace.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from attrs import define, field
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from zope.interface import implementer

from taru.events import IEventSink
from taru.output import Output
from taru.runners import ExitStatus, IRunner, IRunningTask, RunnerError

T = TypeVar("T")


@implementer(IPushProducer)
class RecordingProducer:
    """
    An output's source that records how it is paused and resumed.

    @ivar calls: C{"pause"}, C{"resume"} and C{"stop"}, in the order they were
        asked for.
    """

    def __init__(self) -> None:
        self.calls: list[str] = []

    @property
    def paused(self) -> bool:
        """
        Whether the last request was to pause.
        """
        return bool(self.calls) and self.calls[-1] == "pause"

    def pauseProducing(self) -> None:
        self.calls.append("pause")

    def resumeProducing(self) -> None:
        self.calls.append("resume")

    def stopProducing(self) -> None:
        self.calls.append("stop")


class ThrottledConsumer(StringTransport):
    """
    A transport that pauses its producer once it has taken a set number of
    bytes, as a real one does when its send buffer fills.

    @ivar allowance: how many more bytes it takes before pausing its producer,
        or L{None} for no limit.
    """

    def __init__(self) -> None:
        super().__init__()
        self.allowance: int | None = None

    def allow(self, count: int) -> None:
        """
        Take C{count} more bytes, then pause the producer again.
        """
        self.allowance = count

    def write(self, data: bytes) -> None:
        super().write(data)
        if self.allowance is None:
            return
        self.allowance -= len(data)
        if self.allowance <= 0 and self.producer is not None:
            self.producer.pauseProducing()


@implementer(IEventSink)
class RecordingEventSink:
    """
    An event sink that keeps every event published to it.

    @ivar events: C{(task, event)} pairs, in order.
    """

    def __init__(self) -> None:
        self.events: list[tuple[str | None, object]] = []

    def publish(self, task: str | None, event: object) -> None:
        self.events.append((task, event))


@implementer(IRunningTask)
@define
class FakeRunningTask:
    """
    A task's process that ends only when a test says so.

    @ivar output: where the task writes.
    @ivar stop_count: how many times it was asked to stop.
    """

    output: Output
    ended: Deferred[ExitStatus] = field(factory=Deferred)
    stop_count: int = 0

    def stop(self) -> None:
        self.stop_count += 1

    def write(self, data: bytes) -> None:
        """
        Write to the task's output, as the process would.
        """
        self.output.append(data)

    def end(self, exit_code: int | None, signal: int | None = None) -> None:
        """
        End the process: close its output, then report how it ended, in the
        order a real runner does.
        """
        self.output.close()
        self.ended.callback(ExitStatus(exit_code=exit_code, signal=signal))


@define
class RunnerCall:
    """
    The arguments of one call to L{FakeRunner.start}.
    """

    task: str
    argv: tuple[str, ...]
    environment: dict[str, str]
    output: Output
    working_directory: str | None = None
    properties: tuple[tuple[str, str], ...] = ()


@implementer(IRunner)
class FakeRunner:
    """
    A runner that starts no process: each start gives a L{FakeRunningTask}.

    @ivar calls: every start, in order.
    @ivar started: the running task each successful start returned, in order.
    @ivar refusal: when set, the next starts raise this error instead.
    @ivar pending: when set, starts wait for this Deferred before they start.
    @ivar already_running: the tasks L{running} reports.
    @ivar ended_meanwhile: the runs L{ended_unseen} reports.
    @ivar adopted: C{(task, read_output)} for each run adopted, with the
        running task it gave, in order.
    """

    name = "fake"

    def __init__(self) -> None:
        self.calls: list[RunnerCall] = []
        self.started: list[FakeRunningTask] = []
        self.refusal: RunnerError | None = None
        self.pending: Deferred[None] | None = None
        self.already_running: list[str] = []
        self.ended_meanwhile: dict[str, ExitStatus] = {}
        self.adopted: list[tuple[str, bool, FakeRunningTask]] = []

    async def start(
        self,
        task: str,
        argv: Sequence[str],
        environment: Mapping[str, str],
        output: Output,
        working_directory: str | None = None,
        properties: Sequence[tuple[str, str]] = (),
    ) -> IRunningTask:
        self.calls.append(
            RunnerCall(
                task,
                tuple(argv),
                dict(environment),
                output,
                working_directory,
                tuple(properties),
            )
        )
        if self.pending is not None:
            await self.pending
        if self.refusal is not None:
            raise self.refusal
        running = FakeRunningTask(output)
        self.started.append(running)
        return running

    async def running(self, tasks: Sequence[str]) -> list[str]:
        return [task for task in self.already_running if task in tasks]

    def ended_unseen(self, tasks: Sequence[str]) -> dict[str, ExitStatus]:
        return {
            task: status
            for task, status in self.ended_meanwhile.items()
            if task in tasks
        }

    def adopt(self, task: str, output: Output, read_output: bool) -> IRunningTask:
        running = FakeRunningTask(output)
        self.adopted.append((task, read_output, running))
        return running


def result_now(awaitable: Coroutine[Any, Any, T]) -> T:
    """
    Run a coroutine that does not wait on anything, and give its result, or
    raise its exception, at once.
    """
    outcome: list[object] = []
    Deferred.fromCoroutine(awaitable).addBoth(outcome.append)
    assert outcome, "the coroutine is waiting on something"
    result = outcome[0]
    if isinstance(result, Failure):
        result.raiseException()
    return result  # type: ignore[return-value]  # not a Failure, so a T
