"""
Tests for L{taru.systemd}: unit names, the command that starts a unit, how
a unit's output and end are followed, and runs found running at start-up.

These use a fake reactor; the real systemd is in the integration tests.
"""

from __future__ import annotations

import os
import signal

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.interfaces import IConsumer
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from taru.output import Output
from taru.runners import (
    AlreadyRunningElsewhere,
    ExitStatus,
    IRunner,
    IRunningTask,
    RunnerError,
)
from taru.systemd import (
    POLL_SECONDS,
    UNIT_NAME_MAX,
    SystemdRunner,
    escape_dollars,
    escape_unit_name,
    exit_status_from,
    unit_name,
)
from taru.test.processes import ProcessReactor, SpawnedProcess

SYSTEMD_RUN = "/opt/fake/bin/systemd-run"
SYSTEMCTL = "/opt/fake/bin/systemctl"


def _unescape_unit_name(escaped: str) -> str:
    """
    Undo L{escape_unit_name}, as C{systemd-escape --unescape} does.
    """
    raw = bytearray()
    index = 0
    while index < len(escaped):
        if escaped[index] == "-":
            raw += b"/"
            index += 1
        elif escaped[index] == "\\":
            raw.append(int(escaped[index + 2 : index + 4], 16))
            index += 4
        else:
            raw += escaped[index].encode("ascii")
            index += 1
    return raw.decode("utf-8")


class EscapeUnitNameTests(SynchronousTestCase):
    """
    Tests for L{escape_unit_name} and L{unit_name}, which follow
    C{systemd-escape}.
    """

    def test_slash_becomes_dash(self) -> None:
        """
        Each C{/} becomes C{-}, wherever it is.
        """
        self.assertEqual(escape_unit_name("a/b"), "a-b")
        self.assertEqual(escape_unit_name("/a//b/"), "-a--b-")

    def test_space_is_escaped(self) -> None:
        """
        A space becomes C{\\x20}.
        """
        self.assertEqual(escape_unit_name("a b"), "a\\x20b")

    def test_dash_is_escaped(self) -> None:
        """
        A C{-} becomes C{\\x2d}, so that it is not read back as C{/}.
        """
        self.assertEqual(escape_unit_name("a-b"), "a\\x2db")

    def test_leading_dot_is_escaped(self) -> None:
        """
        A C{.} is escaped at the start of the name only.
        """
        self.assertEqual(escape_unit_name(".hidden"), "\\x2ehidden")
        self.assertEqual(escape_unit_name("a.b."), "a.b.")

    def test_safe_characters_are_kept(self) -> None:
        """
        ASCII letters, digits, C{:} and C{_} are kept as they are.
        """
        self.assertEqual(escape_unit_name("Az09:_x"), "Az09:_x")

    def test_backslash_is_escaped(self) -> None:
        """
        A backslash is itself escaped, so escapes cannot be forged.
        """
        self.assertEqual(escape_unit_name("a\\b"), "a\\x5cb")

    def test_non_ascii_is_escaped_byte_by_byte(self) -> None:
        """
        A non-ASCII character becomes one escape per byte of its UTF-8 form.
        """
        self.assertEqual(escape_unit_name("é"), "\\xc3\\xa9")

    def test_empty_name(self) -> None:
        """
        An empty name stays empty.
        """
        self.assertEqual(escape_unit_name(""), "")

    @given(st.text())
    def test_only_unit_name_characters(self, name: str) -> None:
        """
        The escaped name holds only characters allowed in a unit name.
        """
        escaped = escape_unit_name(name)

        self.assertRegex(escaped, r"^[A-Za-z0-9:_.\\-]*$")

    @given(st.text())
    def test_reversible(self, name: str) -> None:
        """
        Unescaping gives back the original name, so different tasks get
        different units.
        """
        escaped = escape_unit_name(name)

        self.assertEqual(_unescape_unit_name(escaped), name)

    def test_unit_name(self) -> None:
        """
        A task's unit is C{taru-} and its escaped name, as a service.
        """
        self.assertEqual(unit_name("ping"), "taru-ping.service")
        self.assertEqual(unit_name("db/dump-all"), "taru-db-dump\\x2dall.service")


class EscapeDollarsTests(SynchronousTestCase):
    """
    Tests for L{escape_dollars}.
    """

    def test_dollar_is_doubled(self) -> None:
        """
        C{$VAR} becomes C{$$VAR}, which systemd passes on as C{$VAR}.
        """
        self.assertEqual(escape_dollars("$HOME"), "$$HOME")

    def test_every_dollar_is_doubled(self) -> None:
        """
        Every C{$} is doubled, including ones already doubled.
        """
        self.assertEqual(escape_dollars("a$$b$"), "a$$$$b$$")

    def test_plain_word_unchanged(self) -> None:
        """
        A word without C{$} is unchanged.
        """
        self.assertEqual(escape_dollars("plain word"), "plain word")

    @given(st.text())
    def test_undoing(self, word: str) -> None:
        """
        Reading each C{$$} back as C{$} gives the original word.
        """
        escaped = escape_dollars(word)

        self.assertEqual(escaped.count("$"), 2 * word.count("$"))
        self.assertEqual(escaped.replace("$$", "$"), word)


class LongNameTests(SynchronousTestCase):
    """
    Task names of any length give unit names and files systemd and the file
    system take.
    """

    @given(st.text(min_size=1, max_size=400))
    def test_unit_names_fit(self, task: str) -> None:
        """
        Every unit name is at most L{UNIT_NAME_MAX} characters, ends as a
        service, and holds no cut escape sequence.
        """
        name = unit_name(task)

        self.assertLessEqual(len(name), UNIT_NAME_MAX)
        self.assertTrue(name.startswith("taru-") and name.endswith(".service"))
        body = name[len("taru-") : -len(".service")]
        for index, character in enumerate(body):
            if character == "\\":
                self.assertRegex(body[index : index + 4], r"^\\x[0-9a-f]{2}$")

    def test_long_names_stay_apart(self) -> None:
        """
        Long task names that share their beginning get different units.
        """
        first, second = unit_name("m" * 300 + "a"), unit_name("m" * 300 + "b")

        self.assertNotEqual(first, second)

    def test_short_names_unchanged(self) -> None:
        """
        A name that fits is only escaped.
        """
        self.assertEqual(unit_name("é" * 30), "taru-" + "\\xc3\\xa9" * 30 + ".service")


class ExitStatusFromTests(SynchronousTestCase):
    """
    L{exit_status_from} reads the record C{ExecStopPost=} writes.
    """

    def test_exited(self) -> None:
        """
        An exit gives its code, 1 and 255 included.
        """
        for code in (0, 1, 3, 255):
            self.assertEqual(
                exit_status_from(f"exit-code exited {code}\n".encode()),
                ExitStatus(exit_code=code),
            )

    def test_killed(self) -> None:
        """
        A signal gives no exit code, and the signal.
        """
        self.assertEqual(
            exit_status_from(b"success killed TERM\n"),
            ExitStatus(exit_code=None, signal=signal.SIGTERM),
        )
        self.assertEqual(
            exit_status_from(b"signal dumped SEGV\n"),
            ExitStatus(exit_code=None, signal=signal.SIGSEGV),
        )

    def test_unreadable(self) -> None:
        """
        A record that says neither gives an unknown status.
        """
        for record in (b"", b"garbage", b"signal killed NOSUCHSIG", b"a exited x"):
            self.assertEqual(exit_status_from(record), ExitStatus(exit_code=None))


class SystemdRunnerTests(SynchronousTestCase):
    """
    Tests for L{SystemdRunner}, on a fake reactor.
    """

    def setUp(self) -> None:
        self.reactor = ProcessReactor()
        self.addCleanup(self.reactor.close_everything)
        self.state = os.path.abspath(self.mktemp())
        self.runner = SystemdRunner(
            self.reactor, self.state, systemd_run=SYSTEMD_RUN, systemctl=SYSTEMCTL
        )
        self.output = Output.unbuffered()
        self.received: list[bytes] = []
        self.unit = "taru-db-dump\\x2dall.service"
        files = os.path.join(self.state, "units", "taru-db-dump~x2dall.service")
        self.fifo = files + ".fifo"
        self.status = files + ".status"

    def start(
        self,
        state: bytes = b"inactive\n",
        working_directory: str | None = None,
        properties: tuple[tuple[str, str], ...] = (),
    ) -> tuple[Deferred[IRunningTask], SpawnedProcess]:
        """
        Start the task; systemd first says the unit is in C{state}.
        """
        starting = Deferred.fromCoroutine(
            self.runner.start(
                "db/dump-all",
                ("sh", "-c", "echo $HOME"),
                {"PATH": "/bin", "TARU_TASK": "db/dump-all"},
                self.output,
                working_directory,
                properties,
            )
        )
        self.answer_state(state)
        return starting, self.reactor.spawned[-1]

    def started(self) -> tuple[IRunningTask, SpawnedProcess]:
        starting, systemd_run = self.start()
        systemd_run.protocol.childDataReceived(
            2, f"Running as unit: {self.unit}; invocation ID: 1\n".encode()
        )
        return self.successResultOf(starting), systemd_run

    def write_fifo(self, data: bytes) -> None:
        """
        Write to the unit's FIFO as the task would, and let Taru read it.
        """
        fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.write(fd, data)
        os.close(fd)
        for reader in list(self.reactor.readers):
            reader.doRead()

    def test_provides_interface(self) -> None:
        """
        The runner is an L{IRunner} named C{systemd}; its runs are
        L{IRunningTask}s.
        """
        run, _ = self.started()

        self.assertTrue(verifyObject(IRunner, self.runner))
        self.assertTrue(verifyObject(IRunningTask, run))
        self.assertEqual(self.runner.name, "systemd")

    def test_working_directory_and_properties(self) -> None:
        """
        A task's working directory and unit properties are given to
        C{systemd-run}, the properties after Taru's own, in order.
        """
        self.start(
            working_directory="/srv/app",
            properties=(("MemoryMax", "64M"), ("CPUQuota", "50%")),
        )

        [_, spawned] = self.reactor.spawned
        self.assertIn("--working-directory=/srv/app", spawned.args)
        stop_post = next(
            index
            for index, word in enumerate(spawned.args)
            if word.startswith("--property=ExecStopPost=")
        )
        self.assertEqual(
            spawned.args[stop_post + 1 : stop_post + 3],
            ["--property=MemoryMax=64M", "--property=CPUQuota=50%"],
        )

    def test_command(self) -> None:
        """
        The task runs as C{systemd-run --user --wait} in its fixed unit, with
        the same stop grace period as the direct runner, its
        output sent to a FIFO in the state folder by a shell that then becomes
        the task, its result recorded after it stops, its environment set
        through C{--setenv}, and every C{$} of the command line doubled.
        """
        self.start()

        [_, spawned] = self.reactor.spawned
        self.assertEqual(spawned.executable, SYSTEMD_RUN)
        self.assertEqual(
            spawned.args[:7],
            [
                SYSTEMD_RUN,
                "--user",
                "--wait",
                "--collect",
                f"--unit={self.unit}",
                "--property=TimeoutStopSec=5",
                f"--working-directory={os.getcwd()}",
            ],
        )
        self.assertIn(
            "--property=ExecStopPost=/bin/sh -c"
            ' \'echo "$$SERVICE_RESULT $$EXIT_CODE $$EXIT_STATUS" > "$$1"\''
            f' sh "{self.status}"',
            spawned.args,
        )
        self.assertEqual(
            spawned.args[-10:],
            [
                "--setenv=PATH=/bin",
                "--setenv=TARU_TASK=db/dump-all",
                "--",
                "/bin/sh",
                "-c",
                'exec "$$@" > "$$0" 2>&1 3< "$$0"',
                self.fifo,
                "sh",
                "-c",
                "echo $$HOME",
            ],
        )
        self.assertTrue(os.path.exists(self.fifo))

    def test_waits_for_the_unit_to_start(self) -> None:
        """
        The start completes once systemd-run says the unit runs, not before.
        """
        starting, systemd_run = self.start()
        self.assertNoResult(starting)

        systemd_run.protocol.childDataReceived(2, b"Running as unit: x\n")

        self.successResultOf(starting)

    def test_refused_as_running(self) -> None:
        """
        When systemd refuses the unit because it exists already, the start
        fails with L{AlreadyRunningElsewhere}.
        """
        starting, systemd_run = self.start()

        systemd_run.protocol.childDataReceived(
            2,
            b"Failed to start transient service unit: Unit "
            + self.unit.encode()
            + b" was already loaded or has a fragment file.\n",
        )
        systemd_run.end(ProcessTerminated(exitCode=1))

        self.failureResultOf(starting, AlreadyRunningElsewhere)
        self.assertEqual(self.reactor.readers, set())

    def test_running_unit_left_alone(self) -> None:
        """
        When the unit is active already, the start is refused before the
        running unit's FIFO or status file is touched.
        """
        os.makedirs(os.path.dirname(self.fifo))
        os.mkfifo(self.fifo)
        before = os.stat(self.fifo).st_ino

        starting, _ = self.start(state=b"active\n")

        self.failureResultOf(starting, AlreadyRunningElsewhere)
        self.assertEqual(os.stat(self.fifo).st_ino, before)
        self.assertEqual(len(self.reactor.spawned), 1)

    def test_other_failure(self) -> None:
        """
        Any other failure of systemd-run fails the start with what it said.
        """
        starting, systemd_run = self.start()

        systemd_run.protocol.childDataReceived(2, b"Failed to connect to bus\n")
        systemd_run.end(ProcessTerminated(exitCode=1))

        failure = self.failureResultOf(starting, RunnerError)
        self.assertIn("Failed to connect to bus", str(failure.value))

    def test_output_from_the_fifo(self) -> None:
        """
        What the unit writes to its FIFO reaches the run's output.
        """
        follower_output: list[bytes] = []
        self.output = Output.unbuffered()
        self.started()
        self.output.follow(_Collector(follower_output), False)

        self.write_fifo(b"hello\n")

        self.assertEqual(b"".join(follower_output), b"hello\n")

    def test_ended_with_recorded_status(self) -> None:
        """
        When systemd-run exits, the unit is gone: the run ends with the status
        its C{ExecStopPost=} recorded, and the output is closed.
        """
        run, systemd_run = self.started()
        with open(self.status, "w") as status_file:
            status_file.write("exit-code exited 255\n")

        systemd_run.end(ProcessTerminated(exitCode=255))

        self.assertEqual(self.successResultOf(run.ended), ExitStatus(exit_code=255))
        self.assertTrue(self.output.closed)

    def test_ended_without_record(self) -> None:
        """
        Without a record, the status is unknown rather than guessed from
        systemd-run's own, ambiguous exit code.
        """
        run, systemd_run = self.started()

        systemd_run.end(ProcessDone(0))

        self.assertEqual(self.successResultOf(run.ended), ExitStatus(exit_code=None))

    def test_stop(self) -> None:
        """
        Stopping a run stops its unit with C{systemctl --user stop}.
        """
        run, _ = self.started()

        run.stop()

        stopper = self.reactor.spawned[-1]
        self.assertEqual(stopper.args, [SYSTEMCTL, "--user", "stop", "--", self.unit])

    def test_running(self) -> None:
        """
        L{SystemdRunner.running} names the tasks whose units are active.
        """
        asking = Deferred.fromCoroutine(self.runner.running(["a", "b", "c"]))
        systemctl = self.reactor.spawned[-1]

        systemctl.protocol.childDataReceived(
            1,
            b"Id=taru-a.service\nActiveState=active\n\n"
            b"Id=taru-b.service\nActiveState=inactive\n\n"
            b"Id=taru-c.service\nActiveState=deactivating\n",
        )
        systemctl.end(ProcessDone(0))

        self.assertEqual(self.successResultOf(asking), ["a", "c"])
        self.assertEqual(
            systemctl.args[:5],
            [SYSTEMCTL, "--user", "show", "--property=Id,ActiveState", "--"],
        )

    def test_adopt(self) -> None:
        """
        An adopted run reads its unit's FIFO from now on, and ends, with the
        recorded status, once systemd says the unit is over.
        """
        self.started()  # makes the FIFO, as the first Taru did
        for first_taru_reader in list(self.reactor.readers):
            first_taru_reader.close()  # and then that Taru went away
        collected: list[bytes] = []
        output = Output.unbuffered()
        output.follow(_Collector(collected), False)

        run = self.runner.adopt("db/dump-all", output, read_output=True)
        self.write_fifo(b"still here\n")
        self.answer_state(b"active\n")
        self.reactor.advance(POLL_SECONDS)
        with open(self.status, "w") as status_file:
            status_file.write("success killed TERM\n")
        self.answer_state(b"inactive\n")

        self.assertIn(b"still here\n", b"".join(collected))
        self.assertEqual(
            self.successResultOf(run.ended),
            ExitStatus(exit_code=None, signal=signal.SIGTERM),
        )
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_ended_unseen(self) -> None:
        """
        A status file left from a run that no Taru saw end is told once, for
        the task it belongs to.
        """
        os.makedirs(os.path.dirname(self.status))
        with open(self.status, "w") as status_file:
            status_file.write("exit-code exited 9\n")

        first = self.runner.ended_unseen(["db/dump-all", "other"])
        second = self.runner.ended_unseen(["db/dump-all", "other"])

        self.assertEqual((first, second), ({"db/dump-all": ExitStatus(9)}, {}))

    def test_adopt_without_output(self) -> None:
        """
        Adopted without reading output, a run opens no FIFO and still ends
        when its unit is over.
        """
        run = self.runner.adopt("db/dump-all", Output.unbuffered(), read_output=False)

        self.answer_state(b"failed\n")

        self.assertEqual(self.reactor.readers, set())
        self.assertEqual(self.successResultOf(run.ended), ExitStatus(exit_code=None))

    def answer_state(self, state: bytes) -> None:
        """
        Answer the latest C{systemctl show --property=ActiveState} asked.
        """
        systemctl = self.reactor.spawned[-1]
        self.assertIn("--property=ActiveState", systemctl.args)
        systemctl.protocol.childDataReceived(1, state)
        systemctl.end(ProcessDone(0))


@implementer(IConsumer)
class _Collector:
    """
    A consumer that keeps what it is given.
    """

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def write(self, data: bytes) -> None:
        self.chunks.append(data)

    def registerProducer(self, producer: object, streaming: bool) -> None:
        pass

    def unregisterProducer(self) -> None:
        pass
