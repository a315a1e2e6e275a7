"""
Tests for L{taru.tasks}: task state, runs, and what they publish.
"""

from __future__ import annotations

import os
import signal
import sqlite3

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from taru.config import Config, TaskSpec
from taru.events import IEventSink
from taru.history import History, HistoryError
from taru.output import Output, Spool
from taru.runners import (
    AlreadyRunningElsewhere,
    ExitStatus,
    IRunner,
    IRunningTask,
    RunnerError,
)
from taru.tasks import (
    ENUM_SOURCE_LIMIT,
    FINISHED,
    NEW,
    RUNNING,
    AlreadyRunning,
    NoSuchTask,
    Tasks,
)
from taru.test.fakes import (
    FakeRunner,
    FakeRunningTask,
    RecordingEventSink,
    result_now,
)

ARGV = ("echo", "hello")


def config_of(*specs: TaskSpec) -> Config:
    """
    A configuration with the given tasks and no users.
    """
    return Config(tasks={spec.name: spec for spec in specs})


def task_spec(name: str, buffered: bool = True) -> TaskSpec:
    """
    A task that echoes its name.
    """
    return TaskSpec(name=name, command=("echo", name), buffered=buffered)


def descriptors_open_on(path: str) -> int:
    """
    How many of this process's file descriptors are open on C{path}.
    """
    target = os.path.realpath(path)
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(os.path.join("/proc/self/fd", name)) == target:
                count += 1
        except OSError:
            continue
    return count


class TasksTestCase(SynchronousTestCase):
    """
    Tasks with a fake runner, a recording event sink, a spool in a temporary
    folder and a fake clock.
    """

    def setUp(self) -> None:
        self.runner = FakeRunner()
        self.events = RecordingEventSink()
        self.clock = Clock()
        self.spool = Spool(self.mktemp())
        self.history_directory = self.mktemp()
        self.history = History(self.history_directory)
        self.tasks = Tasks(
            config_of(task_spec("hosts"), task_spec("ping"), task_spec("dump", False)),
            self.runner,
            self.spool,
            self.events,
            self.clock,
            self.history,
        )
        self.addCleanup(self.assert_nothing_scheduled)
        self.addCleanup(self.discard_outputs)

    def discard_outputs(self) -> None:
        """
        Close and release the latest output of every task, so that no spool
        file stays open after the test.
        """
        for state in self.tasks.all().values():
            if state.last is not None:
                state.last.output.close()
                state.last.output.release()

    def assert_nothing_scheduled(self) -> None:
        """
        No test leaves a call on the clock.
        """
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def successor(self, history: History | None = None) -> Tasks:
        """
        The tasks of a Taru started after this one, on the same spool and, unless
        another is given, the same history.
        """
        tasks = Tasks(
            self.tasks.config,
            FakeRunner(),
            self.spool,
            self.events,
            self.clock,
            history or self.history,
        )
        result_now(tasks.recover())
        self.addCleanup(discard_all, tasks)
        return tasks

    def start(self, name: str = "ping") -> FakeRunningTask:
        """
        Start a task and return its fake process.
        """
        result_now(self.tasks.start(name, ARGV, "alice"))
        return self.runner.started[-1]


class FakesTests(SynchronousTestCase):
    """
    The fakes these tests use provide the interfaces they stand in for.
    """

    def test_fakes_provide_interfaces(self) -> None:
        """
        The fake runner, its running task and the recording sink provide
        L{IRunner}, L{IRunningTask} and L{IEventSink}.
        """
        runner = FakeRunner()
        running = result_now(runner.start("t", ARGV, {}, Output.unbuffered()))

        self.assertTrue(verifyObject(IRunner, runner))
        self.assertTrue(verifyObject(IRunningTask, running))
        self.assertTrue(verifyObject(IEventSink, RecordingEventSink()))


class StateTests(TasksTestCase):
    """
    A task is new until it first runs, running while a run is in progress, and
    finished after; its exit code shows only once it has finished.
    """

    def test_new(self) -> None:
        """
        A task that never ran is new, without exit code or last run.
        """
        state = self.tasks.get("ping")

        self.assertEqual((state.state, state.exit_code, state.last), (NEW, None, None))

    def test_running(self) -> None:
        """
        A started task is running, without exit code.
        """
        self.start()

        state = self.tasks.get("ping")
        self.assertEqual((state.state, state.exit_code), (RUNNING, None))

    def test_finished_with_exit_code(self) -> None:
        """
        A task whose process exited is finished, with its exit code.
        """
        self.start().end(3)

        state = self.tasks.get("ping")
        self.assertEqual((state.state, state.exit_code), (FINISHED, 3))

    def test_finished_with_zero(self) -> None:
        """
        An exit code of zero is reported as zero, not as missing.
        """
        self.start().end(0)

        self.assertEqual(self.tasks.get("ping").exit_code, 0)

    def test_killed_by_signal_has_no_exit_code(self) -> None:
        """
        A task whose process a signal killed is finished, without exit code.
        """
        self.start().end(None, signal.SIGKILL)

        state = self.tasks.get("ping")
        self.assertEqual((state.state, state.exit_code), (FINISHED, None))

    def test_running_again_hides_last_exit_code(self) -> None:
        """
        While a task runs again, it has no exit code, though an earlier run
        had one.
        """
        self.start().end(3)

        self.start()

        state = self.tasks.get("ping")
        self.assertEqual((state.state, state.exit_code), (RUNNING, None))

    def test_process_ended_during_start(self) -> None:
        """
        A process that has already ended when the runner returns it leaves the
        task finished, with Started published before its exit status.
        """

        async def start_ended(
            task: str, argv: object, environment: object, output: Output, *rest: object
        ) -> FakeRunningTask:
            running = FakeRunningTask(output)
            running.end(7)
            return running

        self.patch(self.runner, "start", start_ended)

        result_now(self.tasks.start("ping", ARGV, None))

        self.assertEqual(
            self.events.events, [("ping", "Started"), ("ping", {"ExitStatus": 7})]
        )
        self.assertEqual(self.tasks.get("ping").state, FINISHED)

    def test_all_in_configured_order(self) -> None:
        """
        Every configured task is listed, in configured order.
        """
        self.assertEqual(list(self.tasks.all()), ["hosts", "ping", "dump"])


class SlowStartTests(TasksTestCase):
    """
    A runner may take time to start a task, as systemd does; the task counts
    as running meanwhile.
    """

    def setUp(self) -> None:
        super().setUp()
        self.runner.pending = Deferred()

    def test_running_while_starting(self) -> None:
        """
        While a start is under way the task is running, and a second start
        is refused at once.
        """
        starting = Deferred.fromCoroutine(self.tasks.start("ping", ARGV, None))

        self.assertEqual(self.tasks.get("ping").state, RUNNING)
        self.assertRaises(
            AlreadyRunning, lambda: result_now(self.tasks.start("ping", ARGV, None))
        )
        self.assertNoResult(starting)
        self.assertEqual(self.events.events, [])

    def test_started_event_once_started(self) -> None:
        """
        C{Started} is published once the runner has started the task.
        """
        starting = Deferred.fromCoroutine(self.tasks.start("ping", ARGV, None))
        pending = self.runner.pending
        assert pending is not None
        self.runner.pending = None

        pending.callback(None)

        self.assertEqual(self.successResultOf(starting).process, self.runner.started[0])
        self.assertEqual(self.events.events, [("ping", "Started")])

    def test_stop_while_starting(self) -> None:
        """
        A stop asked for while the task starts stops it once it has started.
        """
        Deferred.fromCoroutine(self.tasks.start("ping", ARGV, None))
        pending = self.runner.pending
        assert pending is not None
        self.runner.pending = None

        stopping = self.tasks.stop("ping")
        pending.callback(None)

        self.assertTrue(stopping)
        self.assertEqual(self.runner.started[0].stop_count, 1)

    def test_cancelled_wait_keeps_the_run(self) -> None:
        """
        A caller that stops waiting for a start (its client went away) does
        not cancel it: the run starts and is followed to its end.
        """
        starting = Deferred.fromCoroutine(self.tasks.start("ping", ARGV, None))
        pending = self.runner.pending
        assert pending is not None
        self.runner.pending = None

        starting.cancel()
        pending.callback(None)

        self.failureResultOf(starting, CancelledError)
        self.assertEqual(self.tasks.get("ping").state, RUNNING)
        self.runner.started[0].end(0)
        self.assertEqual(self.tasks.get("ping").state, FINISHED)

    def test_output_given_before_start(self) -> None:
        """
        The caller gets the run's output before the runner is asked to start
        anything, so that it can follow all of it.
        """
        given: list[Output] = []

        Deferred.fromCoroutine(
            self.tasks.start("dump", ARGV, None, on_output=given.append)
        )

        [call] = self.runner.calls
        self.assertEqual(given, [call.output])

    def test_failed_start_releases_waiters(self) -> None:
        """
        Who waits for the end of a start that fails is answered with the
        previous run's status, here none.
        """
        starting = Deferred.fromCoroutine(self.tasks.start("ping", ARGV, None))
        waiting = self.tasks.wait("ping")
        pending = self.runner.pending
        assert pending is not None
        self.runner.pending = None
        self.runner.refusal = RunnerError("no")

        pending.callback(None)

        self.failureResultOf(starting, RunnerError)
        self.assertIsNone(self.successResultOf(waiting))
        self.assertEqual(self.tasks.get("ping").state, NEW)


class ElsewhereTests(TasksTestCase):
    """
    Runs that this Taru did not start: refused starts and runs found at
    start-up.
    """

    def test_refused_as_running_elsewhere(self) -> None:
        """
        When the runner finds the task running elsewhere, the start is
        refused as already running, and the task counts as running until that
        run ends, without reading its output.
        """
        self.runner.refusal = AlreadyRunningElsewhere("taru-ping.service")

        self.assertRaises(
            AlreadyRunning, lambda: result_now(self.tasks.start("ping", ARGV, None))
        )

        [(task, read_output, running)] = self.runner.adopted
        self.assertEqual((task, read_output), ("ping", False))
        self.assertEqual(self.tasks.get("ping").state, RUNNING)
        running.end(0)
        self.assertEqual(self.tasks.get("ping").state, FINISHED)
        self.assertEqual(
            self.events.events, [("ping", "Started"), ("ping", {"ExitStatus": 0})]
        )

    def test_recover_ended_unseen(self) -> None:
        """
        At start-up, a run that ended while no Taru followed it becomes the
        task's last, with its exit code and the output its spool kept.
        """
        with open(self.spool.path_for("hosts"), "wb") as spool_file:
            spool_file.write(b"alpha\n")
        self.runner.ended_meanwhile = {"hosts": ExitStatus(exit_code=4)}

        result_now(self.tasks.recover())

        state = self.tasks.get("hosts")
        self.assertEqual((state.state, state.exit_code), (FINISHED, 4))
        self.assertEqual(self.tasks.enum_values("hosts"), ["alpha"])

    def test_recover(self) -> None:
        """
        At start-up, tasks found running are followed to their end, reading
        their output; a buffered task's spool goes on from what it holds.
        """
        with open(self.spool.path_for("hosts"), "wb") as spool_file:
            spool_file.write(b"before the restart\n")
        self.runner.already_running = ["hosts", "nope"]

        result_now(self.tasks.recover())

        [(task, read_output, running)] = self.runner.adopted
        self.assertEqual((task, read_output), ("hosts", True))
        state = self.tasks.get("hosts")
        self.assertEqual(state.state, RUNNING)
        running.write(b"after\n")
        running.end(None, signal.SIGTERM)
        assert state.last is not None
        self.assertEqual(state.last.output.contents(), b"before the restart\nafter\n")
        self.assertIsNone(state.exit_code)


class LastRunTests(TasksTestCase):
    """
    A buffered task's last run is kept on disk, output and record, and taken
    up again by the next Taru.
    """

    def test_taken_up_after_restart(self) -> None:
        """
        After a restart, the last run of a buffered task is finished, with
        its exit code, its start and end, and all its output, which Enum
        arguments read.
        """
        self.clock.advance(1000)
        running = self.start("hosts")
        running.write(b"alpha\nbeta\n")
        self.clock.advance(7)
        running.end(3)

        state = self.successor().get("hosts")

        assert state.last is not None
        self.assertEqual((state.state, state.exit_code), (FINISHED, 3))
        self.assertEqual(state.last.output.contents(), b"alpha\nbeta\n")
        self.assertEqual((state.last.started_at, state.last.ended_at), (1000, 1007))

    def test_killed_run_taken_up(self) -> None:
        """
        A run a signal ended is taken up with no exit code.
        """
        running = self.start("hosts")
        running.end(None, signal.SIGKILL)

        state = self.successor().get("hosts")

        self.assertEqual((state.state, state.exit_code), (FINISHED, None))
        assert state.last is not None and state.last.status is not None
        self.assertEqual(state.last.status.signal, signal.SIGKILL)

    def test_run_cut_short(self) -> None:
        """
        A run whose end was never recorded (Taru was killed while it ran) is
        taken up as finished, how it ended unknown, with the output it wrote.
        """
        running = self.start("hosts")
        running.write(b"partial")

        state = self.successor().get("hosts")

        assert state.last is not None
        self.assertEqual((state.state, state.last.status), (FINISHED, None))
        self.assertEqual(state.last.output.contents(), b"partial")
        running.end(0)

    def test_damaged_record(self) -> None:
        """
        A record that cannot be read, without a history to tell more, leaves
        the output taken up, with its start and end unknown beyond the spool
        file's time; the run is then in the new history.
        """
        running = self.start("hosts")
        running.write(b"kept\n")
        running.end(0)
        with open(self.spool.path_for("hosts") + ".run", "w") as record:
            record.write('{"exit_code": "zero", "started_at": "yesterday"')
        history = History(self.mktemp())
        self.addCleanup(history.close)

        state = self.successor(history).get("hosts")

        assert state.last is not None
        self.assertEqual((state.state, state.last.status), (FINISHED, None))
        self.assertEqual(state.last.output.contents(), b"kept\n")
        self.assertEqual(
            [(record.run_id, record.output_size) for record in history.runs("hosts")],
            [(state.last.run_id, 5)],
        )

    def test_history_tells_more_than_a_damaged_record(self) -> None:
        """
        With a damaged record, the history still tells how the last run ended
        and who started it.
        """
        running = self.start("hosts")
        running.end(0)
        with open(self.spool.path_for("hosts") + ".run", "w") as record:
            record.write("{")

        state = self.successor().get("hosts")

        assert state.last is not None
        self.assertEqual(
            (state.last.status, state.last.user),
            (ExitStatus(exit_code=0, signal=None), "alice"),
        )

    def test_unbuffered_not_taken_up(self) -> None:
        """
        An unbuffered task keeps no output: after a restart it is new.
        """
        self.start("dump").end(0)

        self.assertEqual(self.successor().get("dump").state, NEW)

    def test_never_run(self) -> None:
        """
        A task that never ran is new after a restart too.
        """
        self.assertEqual(self.successor().get("ping").state, NEW)


def discard_all(tasks: Tasks) -> None:
    """
    Close and release the latest output of every task.
    """
    for state in tasks.all().values():
        if state.last is not None:
            state.last.output.close()
            state.last.output.release()


class StartTests(TasksTestCase):
    """
    L{Tasks.start} starts at most one run of a task at a time.
    """

    def test_runner_gets_task_and_argv(self) -> None:
        """
        The runner is asked to run the task with the given command.
        """
        self.start("ping")

        call = self.runner.calls[0]
        self.assertEqual((call.task, call.argv), ("ping", ARGV))

    def test_run_records_who_and_when(self) -> None:
        """
        The run returned tells which task, command and user it is, when it
        started, and which process runs it.
        """
        self.clock.advance(1234)

        run = result_now(self.tasks.start("ping", ARGV, "alice"))

        self.assertEqual(
            (run.task.name, run.argv, run.user, run.started_at, run.process),
            ("ping", ARGV, "alice", 1234, self.runner.started[0]),
        )

    def test_run_ids_count_up(self) -> None:
        """
        Each run gets the next number, across tasks.
        """
        first = result_now(self.tasks.start("ping", ARGV, None))
        second = result_now(self.tasks.start("hosts", ARGV, None))

        self.assertEqual((first.run_id, second.run_id), (1, 2))

    def test_second_start_while_running(self) -> None:
        """
        Starting a task that is running raises L{AlreadyRunning} and starts no
        second process.
        """
        self.start()

        error = self.assertRaises(
            AlreadyRunning, lambda: result_now(self.tasks.start("ping", ARGV, "bob"))
        )

        self.assertEqual((error.name, len(self.runner.calls)), ("ping", 1))

    def test_start_after_end(self) -> None:
        """
        A task that has finished may be started again.
        """
        self.start().end(0)

        self.start()

        self.assertEqual(
            (self.tasks.get("ping").state, len(self.runner.started)), (RUNNING, 2)
        )

    def test_unknown_task(self) -> None:
        """
        Starting, stopping, waiting for or getting an unknown task raises
        L{NoSuchTask}.
        """
        for action in [
            lambda: result_now(self.tasks.start("nope", ARGV, None)),
            lambda: self.tasks.stop("nope"),
            lambda: self.tasks.wait("nope"),
            lambda: self.tasks.get("nope"),
        ]:
            error = self.assertRaises(NoSuchTask, action)
            self.assertEqual(error.name, "nope")
        self.assertEqual(self.runner.calls, [])

    def test_runner_error_leaves_task_not_running(self) -> None:
        """
        When the runner cannot start a task, the error reaches the caller, the
        task is not running, keeps its previous run, and nothing is
        published.
        """
        self.start().end(2)
        previous = self.tasks.get("ping").last
        self.events.events.clear()
        self.runner.refusal = RunnerError("cannot start 'echo'")

        self.assertRaises(
            RunnerError, lambda: result_now(self.tasks.start("ping", ARGV, None))
        )

        state = self.tasks.get("ping")
        self.assertEqual(
            (state.state, state.exit_code, state.last, self.events.events),
            (FINISHED, 2, previous, []),
        )

    def test_runner_error_then_start(self) -> None:
        """
        A task the runner could not start may be started once it can.
        """
        self.runner.refusal = RunnerError("cannot start 'echo'")
        self.assertRaises(
            RunnerError, lambda: result_now(self.tasks.start("ping", ARGV, None))
        )
        self.runner.refusal = None

        self.start()

        self.assertEqual(self.tasks.get("ping").state, RUNNING)

    def test_buffered_task_output_is_kept(self) -> None:
        """
        A buffered task's run writes to a kept output, an unbuffered task's to
        one that is not.
        """
        buffered = result_now(self.tasks.start("ping", ARGV, None))
        unbuffered = result_now(self.tasks.start("dump", ARGV, None))

        self.assertEqual((buffered.output.kept, unbuffered.output.kept), (True, False))

    def test_previous_run_output_readable_by_its_followers(self) -> None:
        """
        A follower of the previous run's output still gets all of it after a
        new run has started.
        """
        first = self.start()
        consumer = StringTransport()
        follower = first.output.follow(consumer, from_start=True)
        consumer.registerProducer(follower, True)
        follower.pauseProducing()
        first.write(b"first run\n")
        first.end(0)

        self.start().write(b"second run\n")
        follower.resumeProducing()

        self.successResultOf(follower.done)
        self.assertEqual(consumer.value(), b"first run\n")


class EnvironmentTests(TasksTestCase):
    """
    A task runs with an environment of its own, not Taru's.
    """

    def test_no_variables_from_taru(self) -> None:
        """
        No variable of Taru's own environment reaches the task.
        """
        os.environ["TARU_TEST_SECRET"] = "do not leak"
        self.addCleanup(os.environ.pop, "TARU_TEST_SECRET")

        self.start()

        self.assertNotIn("TARU_TEST_SECRET", self.runner.calls[0].environment)

    def test_task_name_given(self) -> None:
        """
        The task's name is in C{TARU_TASK}.
        """
        self.start("hosts")

        self.assertEqual(self.runner.calls[0].environment["TARU_TASK"], "hosts")

    def test_path_fixed(self) -> None:
        """
        The task's C{PATH} is Taru's fixed one, not the caller's.
        """
        self.patch(os, "environ", {**os.environ, "PATH": "/tmp/evil"})

        self.start()

        self.assertNotIn("/tmp/evil", self.runner.calls[0].environment["PATH"])


class EventTests(TasksTestCase):
    """
    Every start and end of a run is published.
    """

    def test_started_then_exit_status(self) -> None:
        """
        A run publishes C{Started}, then its exit status when it ends.
        """
        running = self.start()
        after_start = list(self.events.events)

        running.end(4)

        self.assertEqual(after_start, [("ping", "Started")])
        self.assertEqual(
            self.events.events, [("ping", "Started"), ("ping", {"ExitStatus": 4})]
        )

    def test_signal_publishes_null_status(self) -> None:
        """
        A run a signal ended publishes an exit status of L{None}.
        """
        self.start().end(None, signal.SIGTERM)

        self.assertEqual(self.events.events[-1], ("ping", {"ExitStatus": None}))

    def test_events_of_each_task(self) -> None:
        """
        Events name the task they concern, in the order they happened.
        """
        ping = self.start("ping")
        hosts = self.start("hosts")

        hosts.end(0)
        ping.end(1)

        self.assertEqual(
            self.events.events,
            [
                ("ping", "Started"),
                ("hosts", "Started"),
                ("hosts", {"ExitStatus": 0}),
                ("ping", {"ExitStatus": 1}),
            ],
        )


class WaitTests(TasksTestCase):
    """
    L{Tasks.wait} tells how the current or latest run ended.
    """

    def test_running_task(self) -> None:
        """
        Waiting for a running task fires when it ends, with its status.
        """
        running = self.start()
        waiting = self.tasks.wait("ping")
        self.assertNoResult(waiting)

        running.end(5)

        self.assertEqual(self.successResultOf(waiting), ExitStatus(exit_code=5))

    def test_state_finished_when_wait_fires(self) -> None:
        """
        When a wait fires, the task already shows as finished.
        """
        running = self.start()
        seen = []
        self.tasks.wait("ping").addCallback(
            lambda _: seen.append(self.tasks.get("ping").state)
        )

        running.end(0)

        self.assertEqual(seen, [FINISHED])

    def test_finished_task(self) -> None:
        """
        Waiting for a finished task fires at once with its last status.
        """
        self.start().end(None, signal.SIGKILL)

        waiting = self.tasks.wait("ping")

        self.assertEqual(
            self.successResultOf(waiting),
            ExitStatus(exit_code=None, signal=signal.SIGKILL),
        )

    def test_never_run_task(self) -> None:
        """
        Waiting for a task that never ran fires at once with L{None}.
        """
        self.assertIsNone(self.successResultOf(self.tasks.wait("ping")))

    def test_many_waiters(self) -> None:
        """
        Every waiter of a run gets its status.
        """
        running = self.start()
        waiters = [self.tasks.wait("ping") for _ in range(3)]

        running.end(1)

        self.assertEqual(
            [self.successResultOf(waiting) for waiting in waiters],
            [ExitStatus(exit_code=1)] * 3,
        )

    def test_cancel_one_waiter(self) -> None:
        """
        Cancelling one waiter ends only that wait: the others still get the
        status, and the run goes on.
        """
        running = self.start()
        cancelled = self.tasks.wait("ping")
        kept = self.tasks.wait("ping")

        cancelled.cancel()

        self.failureResultOf(cancelled, CancelledError)
        self.assertNoResult(kept)
        self.assertEqual(
            (self.tasks.get("ping").state, running.stop_count), (RUNNING, 0)
        )
        running.end(0)
        self.assertEqual(self.successResultOf(kept), ExitStatus(exit_code=0))

    def test_waiter_of_earlier_run_not_fired_again(self) -> None:
        """
        A waiter is for the run in progress: it fires once, and a later run
        fires only its own waiters.
        """
        self.start().end(1)
        second = self.start()
        waiting = self.tasks.wait("ping")

        second.end(2)

        self.assertEqual(self.successResultOf(waiting), ExitStatus(exit_code=2))


class StopTests(TasksTestCase):
    """
    L{Tasks.stop} asks a running task's process to stop.
    """

    def test_stop_running(self) -> None:
        """
        Stopping a running task stops its process and reports that it was
        running; the task stays running until the process ends.
        """
        running = self.start()

        was_running = self.tasks.stop("ping")

        self.assertEqual(
            (was_running, running.stop_count, self.tasks.get("ping").state),
            (True, 1, RUNNING),
        )

    def test_stop_not_running(self) -> None:
        """
        Stopping a task that is not running reports so and stops nothing.
        """
        running = self.start()
        running.end(0)

        self.assertEqual(
            (self.tasks.stop("ping"), self.tasks.stop("hosts"), running.stop_count),
            (False, False, 0),
        )

    def test_stop_all(self) -> None:
        """
        Stopping all tasks stops every running process and fires once all
        have ended.
        """
        ping = self.start("ping")
        hosts = self.start("hosts")

        stopping = self.tasks.stop_all()
        self.assertNoResult(stopping)
        ping.end(None, signal.SIGTERM)
        self.assertNoResult(stopping)
        hosts.end(None, signal.SIGTERM)

        self.successResultOf(stopping)
        self.assertEqual((ping.stop_count, hosts.stop_count), (1, 1))


class EnumValuesTests(TasksTestCase):
    """
    L{Tasks.enum_values} gives the lines of a source task's latest output.
    """

    def test_never_run(self) -> None:
        """
        A source that never ran gives L{None}.
        """
        self.assertIsNone(self.tasks.enum_values("hosts"))

    def test_unknown_source(self) -> None:
        """
        A source that is not a task gives L{None}.
        """
        self.assertIsNone(self.tasks.enum_values("nope"))

    def test_lines_after_run(self) -> None:
        """
        A finished source gives the lines of its output, the last one even
        without a newline.
        """
        running = self.start("hosts")
        running.write(b"alpha\nbeta\r\n\ngamma")

        running.end(0)

        self.assertEqual(self.tasks.enum_values("hosts"), ["alpha", "beta", "gamma"])

    def test_only_the_start_of_a_long_output(self) -> None:
        """
        Only the first L{ENUM_SOURCE_LIMIT} bytes give values, and a line cut
        there is not one.
        """
        running = self.start("hosts")
        line = b"x" * 99 + b"\n"
        running.write(line * (ENUM_SOURCE_LIMIT // len(line) + 1) + b"late\n")
        running.end(0)

        values = self.tasks.enum_values("hosts")

        assert values is not None
        self.assertEqual(len(values), ENUM_SOURCE_LIMIT // len(line))
        self.assertNotIn("late", values)

    def test_read_once_per_size(self) -> None:
        """
        The output is read once for each size it has: asking again without
        new output reads nothing.
        """
        running = self.start("hosts")
        running.write(b"alpha\n")
        running.end(0)
        last = self.tasks.get("hosts").last
        assert last is not None
        output = last.output
        reads: list[tuple[int, int]] = []
        original = output.read

        def read(offset: int, limit: int) -> bytes:
            reads.append((offset, limit))
            return original(offset, limit)

        self.patch(output, "read", read)

        first = self.tasks.enum_values("hosts")
        second = self.tasks.enum_values("hosts")

        self.assertEqual((first, second), (["alpha"], ["alpha"]))
        self.assertEqual(len(reads), 1)

    def test_unfinished_line_ignored_while_running(self) -> None:
        """
        While the source runs, a last line without its newline is not yet a
        value.
        """
        running = self.start("hosts")
        running.write(b"alpha\nbe")
        partial = self.tasks.enum_values("hosts")

        running.write(b"ta\n")

        self.assertEqual(
            (partial, self.tasks.enum_values("hosts")), (["alpha"], ["alpha", "beta"])
        )

    def test_nothing_yet_while_running(self) -> None:
        """
        A source that is running and has written no whole line gives no
        values.
        """
        self.start("hosts").write(b"alp")

        self.assertEqual(self.tasks.enum_values("hosts"), [])

    def test_latest_run(self) -> None:
        """
        Values come from the latest run that finished.
        """
        first = self.start("hosts")
        first.write(b"old\n")
        first.end(0)
        second = self.start("hosts")
        second.write(b"new\n")

        second.end(0)

        self.assertEqual(self.tasks.enum_values("hosts"), ["new"])


class ReconfigureTests(TasksTestCase):
    """
    L{Tasks.reconfigure} puts a new configuration in force without losing
    what tasks have done.
    """

    def test_unchanged_task_keeps_state(self) -> None:
        """
        A task still configured keeps its last run and exit code.
        """
        self.start("ping").end(3)
        last = self.tasks.get("ping").last

        self.tasks.reconfigure(config_of(task_spec("ping")))

        state = self.tasks.get("ping")
        self.assertEqual(
            (state.state, state.exit_code, state.last), (FINISHED, 3, last)
        )

    def test_changed_task_gets_new_spec(self) -> None:
        """
        A task whose configuration changed keeps its state and takes the new
        configuration.
        """
        self.start("ping").end(0)
        changed = TaskSpec(name="ping", command=("ping", "-c1", "localhost"))

        self.tasks.reconfigure(config_of(changed))

        state = self.tasks.get("ping")
        self.assertEqual((state.spec, state.exit_code), (changed, 0))

    def test_running_task_keeps_running(self) -> None:
        """
        A running task still configured stays running, and its end is
        recorded and published as usual.
        """
        running = self.start("ping")

        self.tasks.reconfigure(config_of(task_spec("ping")))
        running_after = self.tasks.get("ping").state
        running.end(1)

        self.assertEqual(
            (running_after, self.tasks.get("ping").exit_code), (RUNNING, 1)
        )
        self.assertEqual(self.events.events[-1], ("ping", {"ExitStatus": 1}))

    def test_added_task_is_new(self) -> None:
        """
        A task the new configuration adds is new.
        """
        self.tasks.reconfigure(config_of(task_spec("ping"), task_spec("fresh")))

        self.assertEqual(
            (self.tasks.get("fresh").state, list(self.tasks.all())),
            (NEW, ["ping", "fresh"]),
        )

    def test_removed_task_gone(self) -> None:
        """
        A task the new configuration removes is no longer known.
        """
        self.tasks.reconfigure(config_of(task_spec("ping")))

        self.assertRaises(NoSuchTask, self.tasks.get, "hosts")
        self.assertIsNone(self.tasks.enum_values("hosts"))

    def test_removed_running_task_runs_to_its_end(self) -> None:
        """
        A running task the new configuration removes is not stopped; its end
        is still published and wakes its waiters, and then it is gone.
        """
        running = self.start("hosts")
        waiting = self.tasks.wait("hosts")

        self.tasks.reconfigure(config_of(task_spec("ping")))
        self.assertNoResult(waiting)
        running.end(0)

        self.assertEqual(running.stop_count, 0)
        self.assertEqual(self.successResultOf(waiting), ExitStatus(exit_code=0))
        self.assertEqual(self.events.events[-1], ("hosts", {"ExitStatus": 0}))
        self.assertRaises(NoSuchTask, self.tasks.get, "hosts")

    def test_removed_running_task_frees_its_spool_file(self) -> None:
        """
        Once a removed task's last run has ended, its spool file is no longer
        held open.
        """
        running = self.start("hosts")
        running.write(b"alpha\n")
        self.tasks.reconfigure(config_of(task_spec("ping")))

        running.end(0)

        self.assertEqual(descriptors_open_on(self.spool.path_for("hosts")), 0)

    def test_removed_finished_task_frees_its_spool_file(self) -> None:
        """
        Removing a finished task lets go of its last run's spool file, which
        nothing can read any more.
        """
        running = self.start("hosts")
        running.write(b"alpha\n")
        running.end(0)
        held_before = descriptors_open_on(self.spool.path_for("hosts"))

        self.tasks.reconfigure(config_of(task_spec("ping")))

        self.assertEqual(
            (held_before, descriptors_open_on(self.spool.path_for("hosts"))), (1, 0)
        )

    def test_removed_running_task_stopped_by_stop_all(self) -> None:
        """
        Stopping all tasks also stops a running task that was removed from
        the configuration.
        """
        running = self.start("hosts")
        self.tasks.reconfigure(config_of(task_spec("ping")))

        stopping = self.tasks.stop_all()
        running.end(None, signal.SIGTERM)

        self.successResultOf(stopping)
        self.assertEqual(running.stop_count, 1)

    def test_removed_then_restored_while_running(self) -> None:
        """
        A running task removed and then configured again is the same task,
        still running, and finishes as usual.
        """
        running = self.start("hosts")
        self.tasks.reconfigure(config_of(task_spec("ping")))
        self.tasks.reconfigure(config_of(task_spec("ping"), task_spec("hosts")))
        restored = self.tasks.get("hosts").state

        running.end(0)

        self.assertEqual(
            (
                restored,
                self.tasks.get("hosts").state,
                self.tasks.get("hosts").exit_code,
            ),
            (RUNNING, FINISHED, 0),
        )

    def test_config_in_force(self) -> None:
        """
        After a reload, the tasks object holds the new configuration.
        """
        config = config_of(task_spec("ping"))

        self.tasks.reconfigure(config)

        self.assertIs(self.tasks.config, config)


class RunHistoryTests(TasksTestCase):
    """
    Every run is recorded in the history: who started it, from where, with
    which arguments, and how it ended.
    """

    def test_recorded(self) -> None:
        """
        A run's record holds its user, address, arguments and command, and
        once it ended its status and output size; its number is the run's.
        """
        run = result_now(
            self.tasks.start("ping", ARGV, "alice", None, {"host": "h"}, "192.0.2.1")
        )
        self.clock.advance(2)
        self.runner.started[-1].write(b"out\n")
        self.runner.started[-1].end(4)

        [record] = self.history.runs("ping")

        self.assertEqual(record.run_id, run.run_id)
        self.assertEqual(
            (record.user, record.address, record.arguments, record.argv),
            ("alice", "192.0.2.1", {"host": "h"}, ARGV),
        )
        self.assertEqual(
            (record.ended_at, record.status, record.output_size, record.output_kept),
            (2.0, ExitStatus(4, None), 4, True),
        )

    def test_failed_start_not_recorded(self) -> None:
        """
        A run the runner could not start leaves no record.
        """
        self.runner.refusal = RunnerError("no such program")

        self.assertRaises(
            RunnerError, result_now, self.tasks.start("ping", ARGV, "alice")
        )

        self.assertEqual(self.history.runs("ping"), [])

    def test_stopped_by(self) -> None:
        """
        Who asked for the stop is recorded.
        """
        running = self.start()
        self.tasks.stop("ping", "bob", "192.0.2.2")
        running.end(None, signal.SIGTERM)

        [record] = self.history.runs("ping")

        self.assertEqual(
            (record.stopped_by, record.status), ("bob", ExitStatus(None, 15))
        )

    def test_last_runs_kept(self) -> None:
        """
        Only the task's configured number of latest runs stay in the history.
        """
        spec = TaskSpec(name="ping", command=ARGV, history=2)
        self.tasks.reconfigure(config_of(spec))
        run_ids = []
        for _ in range(4):
            running = self.start()
            running.end(0)
            last = self.tasks.get("ping").last
            assert last is not None
            run_ids.append(last.run_id)

        self.assertEqual(
            [record.run_id for record in self.history.runs("ping")],
            [run_ids[3], run_ids[2]],
        )

    def test_numbers_go_on_after_restart(self) -> None:
        """
        A later Taru on the same history numbers its runs after the earlier
        one's.
        """
        self.start().end(0)
        earlier = self.tasks.get("ping").last
        assert earlier is not None

        later = self.successor()
        result_now(later.start("hosts", ARGV, "alice"))

        later_run = later.get("hosts").current
        assert later_run is not None
        self.assertGreater(later_run.run_id, earlier.run_id)
        later_run.process.end(0)  # type: ignore[union-attr]

    def test_lost_run_closed_at_restart(self) -> None:
        """
        A run an earlier Taru saw start but not end, and that runs no more, is
        closed at start-up with its end unknown.
        """
        self.start("dump")
        lost = self.history.unfinished()

        self.successor()

        [record] = self.history.runs("dump")
        self.assertEqual(len(lost), 1)
        self.assertIsNotNone(record.ended_at)
        self.assertIsNone(record.status)
        self.runner.started[-1].end(0)

    def test_adopted_run_keeps_its_record(self) -> None:
        """
        A run found still running after a restart goes on under its record:
        the same number, user and arguments, ended when it ends.
        """
        result_now(self.tasks.start("ping", ARGV, "alice", None, {"host": "h"}))
        run_id = self.runner.started[-1]
        started = self.tasks.get("ping").current
        assert started is not None
        runner = FakeRunner()
        runner.already_running = ["ping"]
        later = Tasks(
            self.tasks.config,
            runner,
            self.spool,
            self.events,
            self.clock,
            self.history,
        )

        result_now(later.recover())
        adopted = later.get("ping").current
        assert adopted is not None
        runner.adopted[0][2].end(0)
        run_id.end(0)

        self.assertEqual(
            (adopted.run_id, adopted.user, adopted.arguments),
            (started.run_id, "alice", {"host": "h"}),
        )
        [record] = self.history.runs("ping")
        self.assertEqual(record.status, ExitStatus(0, None))
        later_last = later.get("ping").last
        assert later_last is not None
        later_last.output.release()


class TaskSettingsTests(TasksTestCase):
    """
    A task's timeout, working directory, environment and unit properties.
    """

    def configure(self, **settings: object) -> None:
        spec = TaskSpec(name="ping", command=ARGV, **settings)  # type: ignore[arg-type]
        self.tasks.reconfigure(config_of(spec))

    def test_timeout_stops_the_run(self) -> None:
        """
        A run still going when its timeout passes is stopped, and is marked
        as timed out in its state and record.
        """
        self.configure(timeout=5.0)
        running = self.start()

        self.clock.advance(4.9)
        self.assertEqual(running.stop_count, 0)
        self.clock.advance(0.1)
        self.assertEqual(running.stop_count, 1)
        running.end(None, signal.SIGTERM)

        last = self.tasks.get("ping").last
        assert last is not None
        [record] = self.history.runs("ping")
        self.assertEqual((last.timed_out, last.stopped_by), (True, "timeout"))
        self.assertEqual((record.timed_out, record.stopped_by), (True, "timeout"))

    def test_timeout_cancelled_by_the_end(self) -> None:
        """
        A run that ends in time leaves nothing on the clock, and is not timed
        out.
        """
        self.configure(timeout=5.0)
        running = self.start()
        self.clock.advance(1)
        running.end(0)

        last = self.tasks.get("ping").last
        assert last is not None
        self.assertFalse(last.timed_out)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_environment(self) -> None:
        """
        The run's environment holds the task's variables, the run's number and
        the user who started it.
        """
        self.configure(environment=(("GREETING", "hi"), ("PATH", "/opt/bin")))

        self.start()

        environment = self.runner.calls[-1].environment
        run = self.tasks.get("ping").current
        assert run is not None
        self.assertEqual(
            {key: environment[key] for key in ("GREETING", "PATH", "TARU_USER")},
            {"GREETING": "hi", "PATH": "/opt/bin", "TARU_USER": "alice"},
        )
        self.assertEqual(environment["TARU_RUN_ID"], str(run.run_id))
        self.runner.started[-1].end(0)

    def test_no_user_no_variable(self) -> None:
        """
        Without a user, C{TARU_USER} is not set.
        """
        result_now(self.tasks.start("ping", ARGV, None))

        self.assertNotIn("TARU_USER", self.runner.calls[-1].environment)
        self.runner.started[-1].end(0)

    def test_working_directory_and_properties(self) -> None:
        """
        The working directory and unit properties go to the runner.
        """
        self.configure(
            working_directory="/tmp", systemd_properties=(("MemoryMax", "64M"),)
        )

        self.start()

        call = self.runner.calls[-1]
        self.assertEqual(
            (call.working_directory, call.properties), ("/tmp", (("MemoryMax", "64M"),))
        )
        self.runner.started[-1].end(0)


class HistoryFailureTests(TasksTestCase):
    """
    A history that cannot be written never leaves a task stuck.
    """

    def lock_history(self) -> None:
        """
        Hold the history's database locked from another connection, as
        another process might, until the test ends.
        """
        path = os.path.join(self.history_directory, "history.sqlite3")
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        self.addCleanup(other.close)
        self.addCleanup(other.execute, "ROLLBACK")

    def test_run_ends_all_the_same(self) -> None:
        """
        When the end of a run cannot be recorded, the run still ends: the
        task is finished, waiters get the status, and it can run again.
        """
        running = self.start()
        waiting = self.tasks.wait("ping")
        self.lock_history()

        running.end(0)

        self.assertEqual(self.tasks.get("ping").state, FINISHED)
        self.assertEqual(self.successResultOf(waiting), ExitStatus(0, None))

    def test_start_refused(self) -> None:
        """
        When a run cannot be recorded, it is not started, and the task stays
        as it was.
        """
        self.lock_history()

        self.assertRaises(
            HistoryError, result_now, self.tasks.start("ping", ARGV, "alice")
        )

        self.assertEqual(self.runner.calls, [])
        self.assertEqual(self.tasks.get("ping").state, NEW)
        self.assertEqual(
            [name for name in os.listdir(self.spool.directory) if "ping" in name], []
        )


class TimeoutAndStopTests(TasksTestCase):
    """
    A run stopped by someone is not also timed out.
    """

    def test_stop_cancels_the_timeout(self) -> None:
        """
        After a stop, the timeout no longer applies: the run ends as stopped
        by its user, not as timed out, however long it takes to end.
        """
        spec = TaskSpec(name="ping", command=ARGV, timeout=1.0)
        self.tasks.reconfigure(config_of(spec))
        running = self.start()
        self.tasks.stop("ping", "bob")

        self.clock.advance(5)
        running.end(None, signal.SIGKILL)

        last = self.tasks.get("ping").last
        assert last is not None
        self.assertEqual((last.timed_out, last.stopped_by), (False, "bob"))
        self.assertEqual(running.stop_count, 1)
