"""
Tests for L{taru.runners}: unit names, the task environment, the output pipe
reader, and both runners driven by a fake reactor that records the processes
it is asked to spawn and starts none.
"""

from __future__ import annotations

import errno
import os
import pwd
import shutil
import signal
from collections.abc import Mapping, Sequence

from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

import taru.runners
from taru.output import BACKLOG_LIMIT, BacklogStore, Output
from taru.runners import (
    DRAIN_SECONDS,
    STOP_GRACE_SECONDS,
    TASK_PATH,
    DirectRunner,
    ExitStatus,
    IRunner,
    IRunningTask,
    PipeReader,
    RunnerError,
    task_environment,
)
from taru.test.fakes import result_now
from taru.test.processes import GroupSignals, ProcessReactor, SpawnedProcess, pump_pipe

SETSID = "/opt/fake/bin/setsid"
SYSTEMD_RUN = "/opt/fake/bin/systemd-run"
SYSTEMCTL = "/opt/fake/bin/systemctl"


def kept_output() -> Output:
    """
    An output that keeps everything in memory, to read back in assertions.
    """
    return Output(BacklogStore(), kept=True)


class TaskEnvironmentTests(SynchronousTestCase):
    """
    Tests for L{task_environment}.
    """

    def test_exact_keys(self) -> None:
        """
        The environment holds only PATH, HOME, USER, LOGNAME, LANG and
        TARU_TASK.
        """
        environment = task_environment("ping")

        self.assertEqual(
            set(environment), {"PATH", "HOME", "USER", "LOGNAME", "LANG", "TARU_TASK"}
        )

    def test_values(self) -> None:
        """
        The values name the task, a fixed PATH and locale, and the account
        Taru runs as.
        """
        account = pwd.getpwuid(os.getuid())

        environment = task_environment("ping")

        self.assertEqual(
            environment,
            {
                "PATH": TASK_PATH,
                "HOME": account.pw_dir,
                "USER": account.pw_name,
                "LOGNAME": account.pw_name,
                "LANG": "C.UTF-8",
                "TARU_TASK": "ping",
            },
        )

    def test_nothing_from_taru_environment(self) -> None:
        """
        Nothing of Taru's own environment reaches a task, not even a PATH.
        """
        self.patch(
            os,
            "environ",
            {**os.environ, "TARU_SECRET": "hunter2", "PATH": "/untrusted/bin"},
        )

        environment = task_environment("ping")

        self.assertNotIn("TARU_SECRET", environment)
        self.assertEqual(environment["PATH"], TASK_PATH)


class PipeReaderTests(SynchronousTestCase):
    """
    Tests for L{PipeReader}, on a real pipe and a fake reactor.
    """

    def setUp(self) -> None:
        self.reactor = ProcessReactor()
        self.read_fd, write_fd = os.pipe()
        self.write_end: int | None = write_fd
        self.addCleanup(self.close_write_end)
        self.output = kept_output()
        self.reader = PipeReader(self.reactor, self.read_fd, self.output)
        self.addCleanup(self.reader.close)

    def close_write_end(self) -> None:
        if self.write_end is not None:
            os.close(self.write_end)
            self.write_end = None

    def write(self, data: bytes) -> None:
        assert self.write_end is not None
        os.write(self.write_end, data)

    def test_starts_reading(self) -> None:
        """
        A new reader is added to the reactor's readers, on a non-blocking
        pipe.
        """
        self.assertIn(self.reader, self.reactor.readers)
        self.assertEqual(self.reader.fileno(), self.read_fd)
        self.assertFalse(os.get_blocking(self.read_fd))

    def test_output_that_cannot_be_written(self) -> None:
        """
        When the output cannot take what was read (a full disk), the reader
        says so in the log and closes, as at the end of the pipe.
        """

        def full(data: bytes) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        self.patch(self.output, "append", full)
        self.write(b"more\n")

        with capturedLogs() as events:
            self.reader.doRead()

        self.assertTrue(self.reader.closed.called)
        self.assertNotIn(self.reader, self.reactor.readers)
        self.assertEqual(
            [formatEvent(event) for event in events],
            [
                "a task's output could not be kept, and the rest of it is"
                " dropped: [Errno 28] No space left on device"
            ],
        )

    def test_reads_into_output(self) -> None:
        """
        What arrives on the pipe is appended to the output, byte for byte.
        """
        self.write(b"one\n\x00\xff two")

        self.reader.doRead()

        self.assertEqual(self.output.contents(), b"one\n\x00\xff two")
        self.assertFalse(self.output.closed)

    def test_nothing_to_read(self) -> None:
        """
        Reading an empty pipe that is still open appends nothing and goes on
        reading.
        """
        self.reader.doRead()

        self.assertEqual(self.output.size, 0)
        self.assertIn(self.reader, self.reactor.readers)
        self.assertNoResult(self.reader.closed)

    def test_end_of_file_closes(self) -> None:
        """
        At the end of the pipe the reader stops reading, closes its end and
        fires C{closed}.
        """
        self.write(b"last")
        self.close_write_end()

        self.reader.doRead()
        self.reader.doRead()

        self.assertEqual(self.output.contents(), b"last")
        self.assertIsNone(self.successResultOf(self.reader.closed))
        self.assertNotIn(self.reader, self.reactor.readers)

    def test_close_closes_read_end(self) -> None:
        """
        Closing the reader closes its end of the pipe: the writer gets a
        broken pipe.
        """
        self.reader.close()

        self.assertRaises(BrokenPipeError, self.write, b"x")

    def test_close_drops_unread(self) -> None:
        """
        Closing the reader drops what is still in the pipe.
        """
        self.write(b"unread")

        self.reader.close()

        self.assertEqual(self.output.size, 0)
        self.assertIsNone(self.successResultOf(self.reader.closed))
        self.assertNotIn(self.reader, self.reactor.readers)

    def test_close_twice(self) -> None:
        """
        Closing a closed reader does nothing.
        """
        self.reader.close()

        self.reader.close()

        self.assertIsNone(self.successResultOf(self.reader.closed))

    def test_connection_lost_closes(self) -> None:
        """
        When the reactor reports the descriptor lost, the reader closes.
        """
        self.reader.connectionLost(Failure(ConnectionError()))

        self.assertIsNone(self.successResultOf(self.reader.closed))
        self.assertNotIn(self.reader, self.reactor.readers)

    def test_stop_producing_closes(self) -> None:
        """
        Stopping the reader as a producer closes it.
        """
        self.reader.stopProducing()

        self.assertIsNone(self.successResultOf(self.reader.closed))

    def test_pause_and_resume(self) -> None:
        """
        Pausing removes the reader from the reactor, and resuming adds it back.
        """
        self.reader.pauseProducing()
        self.assertNotIn(self.reader, self.reactor.readers)

        self.reader.resumeProducing()
        self.assertIn(self.reader, self.reactor.readers)

    def test_resume_after_close(self) -> None:
        """
        Resuming a reader that was closed while paused does not read again.
        """
        self.reader.pauseProducing()
        self.reader.close()

        self.reader.resumeProducing()

        self.assertNotIn(self.reader, self.reactor.readers)

    def test_is_the_output_source(self) -> None:
        """
        The reader is its output's source: an unbuffered output whose
        follower falls behind pauses it, and resumes it once caught up.
        """
        output = Output.unbuffered()
        reader = PipeReader(self.reactor, os.dup(self.read_fd), output)
        self.addCleanup(reader.close)
        consumer = StringTransport()
        follower = output.follow(consumer, from_start=False)
        follower.pauseProducing()

        output.append(b"x" * (BACKLOG_LIMIT + 1))
        self.assertNotIn(reader, self.reactor.readers)

        follower.resumeProducing()
        self.assertIn(reader, self.reactor.readers)


class RunnerTestMixin:
    """
    A fake reactor and a stand-in for C{os.killpg}, cleaned up after each
    test.
    """

    reactor: ProcessReactor
    signals: GroupSignals

    def set_up_reactor(self, testcase: SynchronousTestCase) -> None:
        self.reactor = ProcessReactor()
        testcase.addCleanup(self.reactor.close_everything)
        testcase.addCleanup(self.assert_no_delayed_calls, testcase)
        self.signals = GroupSignals(ended=self.reactor.ended)
        testcase.patch(os, "killpg", self.signals.killpg)

    def assert_no_delayed_calls(self, testcase: SynchronousTestCase) -> None:
        testcase.assertEqual(self.reactor.getDelayedCalls(), [])


class DirectRunnerTests(RunnerTestMixin, SynchronousTestCase):
    """
    Tests for L{DirectRunner}.
    """

    def setUp(self) -> None:
        self.set_up_reactor(self)
        self.descendants: dict[int, int] = {}
        self.runner = DirectRunner(
            self.reactor, setsid=SETSID, find_descendants=self.find_descendants
        )

    def start(
        self,
        argv: Sequence[str] = ("echo", "hello"),
        environment: Mapping[str, str] | None = None,
        output: Output | None = None,
    ) -> tuple[IRunningTask, SpawnedProcess, Output]:
        output = kept_output() if output is None else output
        run = result_now(
            self.runner.start(
                "greet",
                argv,
                {"PATH": TASK_PATH} if environment is None else environment,
                output,
            )
        )
        return run, self.reactor.spawned[-1], output

    def find_descendants(self, pid: int) -> dict[int, int]:
        """
        Stand in for L{process_tree}: the descendants this test set up.
        """
        return dict(self.descendants)

    def test_provides_interfaces(self) -> None:
        """
        The runner is an L{IRunner} and its runs are L{IRunningTask}s.
        """
        run, _, _ = self.start()

        self.assertTrue(verifyObject(IRunner, self.runner))
        self.assertTrue(verifyObject(IRunningTask, run))
        self.assertEqual(self.runner.name, "direct")

    def test_spawns_setsid_with_argv(self) -> None:
        """
        The task's command runs under C{setsid}, in a session of its own.
        """
        self.start(argv=("ping", "-c1", "example.org"))

        [spawned] = self.reactor.spawned
        self.assertEqual(spawned.executable, SETSID)
        self.assertEqual(spawned.args, [SETSID, "--", "ping", "-c1", "example.org"])

    def test_output_and_errors_share_one_pipe(self) -> None:
        """
        Standard output and standard error are the same pipe, whose bytes
        reach the run's output; standard input is a pipe Taru closes at once.
        """
        _, spawned, output = self.start()

        spawned.write(b"out and err\n")
        pump_pipe(self.reactor, output)

        self.assertEqual(spawned.child_fds[0], "w")
        self.assertIsInstance(spawned.child_fds[1], int)
        self.assertEqual(spawned.child_fds[1], spawned.child_fds[2])
        self.assertTrue(spawned.transport.stdin_closed)
        self.assertEqual(output.contents(), b"out and err\n")

    def test_exact_environment(self) -> None:
        """
        The process gets exactly the environment it is given.
        """
        environment = {"PATH": "/bin", "TARU_TASK": "greet"}

        self.start(environment=environment)

        self.assertEqual(self.reactor.spawned[0].env, environment)

    def test_spawn_failure(self) -> None:
        """
        When the process cannot be spawned, L{RunnerError} names the program
        and no pipe is left open.
        """
        self.reactor.refusal = OSError(errno.ENOENT, "No such file or directory")
        open_before = len(os.listdir("/proc/self/fd"))

        error = self.assertRaises(RunnerError, self.start)

        self.assertIn(repr(SETSID), str(error))
        self.assertIn("No such file or directory", str(error))
        self.assertEqual(len(os.listdir("/proc/self/fd")), open_before)

    def test_no_setsid(self) -> None:
        """
        Without C{setsid} on the PATH, the runner cannot be made.
        """
        self.patch(shutil, "which", lambda name: None)

        error = self.assertRaises(RunnerError, DirectRunner, self.reactor)

        self.assertIn("setsid", str(error))

    def test_ended_waits_for_end_of_output(self) -> None:
        """
        A run that exited has not ended while its output pipe is still open.
        """
        run, spawned, output = self.start()

        spawned.end(ProcessDone(0))

        self.assertNoResult(run.ended)
        self.assertFalse(output.closed)
        self.reactor.advance(DRAIN_SECONDS)

    def test_ended_waits_for_exit(self) -> None:
        """
        A run whose output pipe reached its end has not ended while the
        process still runs.
        """
        run, spawned, output = self.start()

        spawned.close_output()
        pump_pipe(self.reactor, output)

        self.assertNoResult(run.ended)

    def test_ended_after_exit_then_end_of_output(self) -> None:
        """
        Once the process exited and the output reached its end, the run has
        ended, its output is closed, and no timer is left.
        """
        run, spawned, output = self.start()
        spawned.write(b"bye\n")

        spawned.end(ProcessDone(0))
        spawned.close_output()
        pump_pipe(self.reactor, output)

        self.assertEqual(self.successResultOf(run.ended), ExitStatus(exit_code=0))
        self.assertTrue(output.closed)
        self.assertEqual(output.contents(), b"bye\n")
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_ended_after_end_of_output_then_exit(self) -> None:
        """
        The run ends as well when the output ends before the process exits.
        """
        run, spawned, output = self.start()

        spawned.close_output()
        pump_pipe(self.reactor, output)
        spawned.end(ProcessDone(0))

        self.assertEqual(self.successResultOf(run.ended), ExitStatus(exit_code=0))
        self.assertTrue(output.closed)

    def test_drain_period(self) -> None:
        """
        When processes left behind keep the output pipe open, the run ends
        L{DRAIN_SECONDS} after the process exited, with what was read so far.
        """
        run, spawned, output = self.start()
        spawned.write(b"left behind\n")
        pump_pipe(self.reactor, output)
        spawned.end(ProcessDone(0))

        self.reactor.advance(DRAIN_SECONDS - 0.1)
        self.assertNoResult(run.ended)
        self.reactor.advance(0.1)

        self.assertEqual(self.successResultOf(run.ended), ExitStatus(exit_code=0))
        self.assertEqual(output.contents(), b"left behind\n")
        self.assertTrue(output.closed)
        self.assertEqual(self.reactor.readers, set())

    def test_end_of_output_cancels_drain(self) -> None:
        """
        When the output ends within the drain period, the run ends at once
        and no timer is left.
        """
        run, spawned, output = self.start()
        spawned.end(ProcessDone(0))

        spawned.close_output()
        pump_pipe(self.reactor, output)

        self.assertEqual(self.successResultOf(run.ended), ExitStatus(exit_code=0))
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_exit_code(self) -> None:
        """
        A process that exited with a code ends with that code and no signal.
        """
        run, spawned, output = self.start()
        spawned.close_output()
        pump_pipe(self.reactor, output)

        spawned.end(ProcessTerminated(exitCode=3))

        self.assertEqual(
            self.successResultOf(run.ended), ExitStatus(exit_code=3, signal=None)
        )

    def test_killed_by_signal(self) -> None:
        """
        A process a signal killed ends with no exit code and that signal.
        """
        run, spawned, output = self.start()
        spawned.close_output()
        pump_pipe(self.reactor, output)

        spawned.end(ProcessTerminated(signal=signal.SIGKILL))

        self.assertEqual(
            self.successResultOf(run.ended),
            ExitStatus(exit_code=None, signal=signal.SIGKILL),
        )

    def test_stop_kills_after_grace(self) -> None:
        """
        Stopping sends SIGTERM to the run's whole process group, and SIGKILL
        to what is left of it once the grace period is over; no timer is left
        after that.
        """
        run, spawned, _ = self.start()
        pid = spawned.transport.pid

        run.stop()
        self.reactor.advance(STOP_GRACE_SECONDS - 0.1)
        self.assertEqual(self.signals.sent, [(pid, signal.SIGTERM)])
        self.reactor.advance(0.1)

        self.assertEqual(
            self.signals.sent, [(pid, signal.SIGTERM), (pid, signal.SIGKILL)]
        )
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_stop_grace_is_configurable(self) -> None:
        """
        The grace period is the one the runner was made with.
        """
        self.runner = DirectRunner(
            self.reactor,
            setsid=SETSID,
            stop_grace=1.5,
            find_descendants=self.find_descendants,
        )
        run, spawned, _ = self.start()

        run.stop()
        self.reactor.advance(1.5)

        self.assertEqual(
            self.signals.sent,
            [
                (spawned.transport.pid, signal.SIGTERM),
                (spawned.transport.pid, signal.SIGKILL),
            ],
        )

    def test_stop_when_group_gone(self) -> None:
        """
        Stopping a run whose process group is gone does nothing, and sets no
        timer.
        """
        run, spawned, _ = self.start()
        self.signals.gone.add(spawned.transport.pid)

        run.stop()

        self.assertEqual(self.signals.sent, [])
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_stop_when_group_not_permitted(self) -> None:
        """
        A group Taru may not signal any more counts as gone.
        """
        run, spawned, _ = self.start()
        self.signals.forbidden.add(spawned.transport.pid)

        run.stop()

        self.assertEqual(self.signals.sent, [])
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_group_gone_before_kill(self) -> None:
        """
        A group that ended within the grace period is not an error when the
        SIGKILL finds it gone.
        """
        run, spawned, _ = self.start()
        pid = spawned.transport.pid
        run.stop()

        self.signals.gone.add(pid)
        self.reactor.advance(STOP_GRACE_SECONDS)

        self.assertEqual(self.signals.sent, [(pid, signal.SIGTERM)])
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_no_kill_after_group_ended(self) -> None:
        """
        When a stopped run ends and nothing of its process group is left, the
        pending SIGKILL is cancelled, so that it cannot reach a later group
        that reuses the number.
        """
        run, spawned, output = self.start()
        pid = spawned.transport.pid
        run.stop()

        self.signals.gone.add(pid)
        spawned.close_output()
        pump_pipe(self.reactor, output)
        spawned.end(ProcessTerminated(signal=signal.SIGTERM))

        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.assertEqual(self.signals.sent, [(pid, signal.SIGTERM)])

    def test_kill_stays_due_for_leftovers(self) -> None:
        """
        When a stopped run ends but processes of its group are left, they
        still get SIGKILL once the grace period is over.
        """
        run, spawned, output = self.start()
        pid = spawned.transport.pid
        self.signals.leftovers.add(pid)
        run.stop()

        spawned.close_output()
        pump_pipe(self.reactor, output)
        spawned.end(ProcessTerminated(signal=signal.SIGTERM))
        self.reactor.advance(STOP_GRACE_SECONDS)

        self.assertEqual(self.signals.sent[0], (pid, signal.SIGTERM))
        self.assertEqual(self.signals.sent[-1], (pid, signal.SIGKILL))

    def test_leftovers_stopped_when_the_task_exits(self) -> None:
        """
        When the task's first process exits, what it left running in its
        process group gets SIGTERM, and SIGKILL after the grace period, as
        systemd does for a service; the run ends once they are gone.
        """
        run, spawned, output = self.start()
        pid = spawned.transport.pid
        self.signals.leftovers.add(pid)

        spawned.end(ProcessDone(0))
        self.assertEqual(self.signals.sent, [(pid, signal.SIGTERM)])
        spawned.close_output()
        pump_pipe(self.reactor, output)
        self.reactor.advance(STOP_GRACE_SECONDS)

        self.assertEqual(self.signals.sent[-1], (pid, signal.SIGKILL))
        self.assertEqual(self.successResultOf(run.ended), ExitStatus(exit_code=0))

    def test_stop_after_exit_ends_the_run(self) -> None:
        """
        Stopping a run whose process has exited but whose output is still
        held open ends it at once, and signals nothing by number again.
        """
        run, spawned, _ = self.start()
        pid = spawned.transport.pid
        spawned.end(ProcessDone(0))
        sent_before = list(self.signals.sent)

        run.stop()

        self.assertEqual(self.successResultOf(run.ended), ExitStatus(exit_code=0))
        self.assertEqual(self.signals.sent, sent_before)
        self.assertNotIn((pid, signal.SIGTERM), self.signals.sent)

    def test_stop_reaches_descendants_outside_the_group(self) -> None:
        """
        Stopping also signals the task's descendants found at that moment,
        even those that left its process group: SIGTERM, then SIGKILL after
        the grace period, even when the group itself is gone by then.
        """
        signalled: list[tuple[dict[int, int], int]] = []
        self.patch(
            taru.runners,
            "signal_processes",
            lambda processes, number: signalled.append((processes, number)),
        )
        run, spawned, output = self.start()
        self.descendants = {7001: 11, 7002: 12}

        run.stop()
        self.signals.gone.add(spawned.transport.pid)
        spawned.close_output()
        pump_pipe(self.reactor, output)
        spawned.end(ProcessTerminated(signal=signal.SIGTERM))
        self.reactor.advance(STOP_GRACE_SECONDS)

        self.assertEqual(
            signalled,
            [
                ({7001: 11, 7002: 12}, signal.SIGTERM),
                ({7001: 11, 7002: 12}, signal.SIGKILL),
            ],
        )
        self.assertEqual(self.signals.sent, [(spawned.transport.pid, signal.SIGTERM)])

    def test_tail_kept_while_paused(self) -> None:
        """
        When an unbuffered run exits while Taru is not reading its pipe
        because a follower fell behind, what is still in the pipe reaches the
        follower once it catches up, however slowly: the drain period is for
        processes left behind, not for Taru's own pause.
        """
        output = Output.unbuffered()
        run, spawned, _ = self.start(output=output)
        consumer = StringTransport()
        follower = output.follow(consumer, from_start=True)
        follower.pauseProducing()
        [reader] = self.reactor.readers
        chunk = b"x" * 32768
        written = 0
        while reader in self.reactor.readers:
            spawned.write(chunk)
            written += len(chunk)
            pump_pipe(self.reactor, output)
        spawned.write(b"tail")
        spawned.close_output()
        spawned.end(ProcessDone(0))

        self.reactor.advance(DRAIN_SECONDS)
        follower.resumeProducing()
        pump_pipe(self.reactor, output)

        delivered = consumer.value()
        self.assertEqual((len(delivered), delivered[-4:]), (written + 4, b"tail"))
        self.assertEqual(self.successResultOf(run.ended), ExitStatus(exit_code=0))


class ExitStatusTests(SynchronousTestCase):
    """
    Tests for L{ExitStatus}.
    """

    def test_no_signal_by_default(self) -> None:
        """
        An exit status without a signal has C{signal} L{None}.
        """
        self.assertIsNone(ExitStatus(exit_code=0).signal)
