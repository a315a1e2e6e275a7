"""
The real C{taru-cli}, run as a separate process against a real Taru on
loopback: what it prints, how fast output reaches it, and how it exits.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Mapping
from signal import SIGHUP, SIGINT

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessExitedAlready
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from taru.runners import exit_status_of
from taru.test.integration.harness import (
    Taru,
    free_port,
    kill_processes_with,
    now,
    sleep_marker,
    sleeping,
    wait_for,
)
from taru.test.integration.test_proxy import start_nginx

# The longest any one taru-cli may take before the test gives up on it.
PATIENCE = 20.0

MARKER = sleep_marker()

CONFIG = f"""
    tasks:
      greet:
        command: [echo, hello, $host]
        arguments:
          - {{name: host, datatype: String}}
      repeat:
        command: [sh, -c, 'i=0; while [ $i -lt "$1" ]; do echo "$i"; i=$((i+1)); done',
                  repeat, $times]
        arguments:
          - {{name: times, datatype: Int}}
      slow:
        command: [sh, -c, 'echo first; sleep 3; echo last']
      failing:
        command: [sh, -c, 'echo failing; exit 3']
      killed:
        command: [sh, -c, 'echo dying; kill -9 $$']
      sleeper:
        command: [sh, -c, 'echo sleeping; exec sleep {MARKER}']
      hanging:
        command: [sh, -c, 'echo waiting; exec sleep {MARKER}']
        timeout: 1
      secret:
        command: [echo, secret]
    users:
      alice:
        can_run: [greet, repeat, slow, failing, killed, sleeper, hanging]
        can_view_status: [greet, repeat, slow, failing, killed, sleeper, hanging]
        can_view_output: [greet, repeat, slow, failing, killed, sleeper, hanging]
      bob:
        can_run: []
        can_view_status: [greet]
        can_view_output: []
      carol:
        can_run: [greet]
        can_view_status: [greet]
        can_view_output: []
"""


class CLIProcess(ProcessProtocol):
    """
    One C{taru-cli} process: what it writes, when, and how it ends.

    @ivar arrivals: each chunk of its standard output with the time it
        arrived.
    @ivar started: when it was started.
    @ivar exit_code: its exit code once it has exited, or L{None} if a signal
        ended it.
    """

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, bytes]] = []
        self.errors = b""
        self.started = now()
        self.ended_at: float | None = None
        self.exit_code: int | None = None
        self._ended: Deferred[None] = Deferred()

    def outReceived(self, data: bytes) -> None:
        self.arrivals.append((now(), data))

    def errReceived(self, data: bytes) -> None:
        self.errors += data

    def processEnded(self, reason: Failure) -> None:
        self.ended_at = now()
        self.exit_code = exit_status_of(reason).exit_code
        self._ended.callback(None)

    @property
    def output(self) -> bytes:
        """
        Its standard output so far.
        """
        return b"".join(data for _, data in self.arrivals)

    @property
    def text(self) -> str:
        """
        Its standard output so far, as text.
        """
        return self.output.decode("utf-8")

    @property
    def error_text(self) -> str:
        """
        Its standard error so far, as text.
        """
        return self.errors.decode("utf-8")

    async def wait(self) -> CLIProcess:
        """
        Wait for it to exit, or kill it after L{PATIENCE} seconds.
        """
        if not self._ended.called:
            timer = reactor.callLater(PATIENCE, self.signal, signal.SIGKILL)
            await self._ended
            if timer.active():
                timer.cancel()
        return self

    def signal(self, number: int) -> None:
        """
        Send it a signal, unless it has exited.
        """
        if self.transport is not None and self.ended_at is None:
            try:
                self.transport.signalProcess(number)
            except ProcessExitedAlready:
                pass


def start_cli(
    testcase: TestCase,
    *argv: str,
    taru: Taru | None = None,
    user: str | None = None,
    environment: Mapping[str, str] | None = None,
    descriptors: Mapping[int, str | int] | None = None,
) -> CLIProcess:
    """
    Start C{taru-cli} with the given arguments, killed if the test leaves it
    running.

    @param taru: the Taru to name with C{--url}; none when not given.
    @param user: the user to name with C{--user}.
    @param environment: variables added to a copy of the test's environment
        without C{TARU_URL} and C{TARU_USER}.
    @param descriptors: its file descriptors, as C{spawnProcess} takes them;
        without them, its standard streams are pipes to the test. A standard
        stream left out is not open.
    """
    options = []
    if taru is not None:
        options += ["--url", taru.base]
    if user is not None:
        options += ["--user", user]
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("TARU_URL", "TARU_USER")
    }
    env.update(environment or {})
    process = CLIProcess()
    command = [sys.executable, "-m", "taru.client", *options, *argv]
    reactor.spawnProcess(
        process,
        command[0],
        command,
        env=env,
        childFDs=dict(descriptors or {0: "w", 1: "r", 2: "r"}),
    )

    async def end() -> None:
        process.signal(signal.SIGKILL)
        await process.wait()

    testcase.addCleanup(end)
    return process


async def run_cli(
    testcase: TestCase,
    *argv: str,
    taru: Taru | None = None,
    user: str | None = None,
    environment: Mapping[str, str] | None = None,
    descriptors: Mapping[int, str | int] | None = None,
) -> CLIProcess:
    """
    Run C{taru-cli} to its end, as L{start_cli} starts it.
    """
    process = start_cli(
        testcase,
        *argv,
        taru=taru,
        user=user,
        environment=environment,
        descriptors=descriptors,
    )
    return await process.wait()


class ClientTests(TestCase):
    """
    C{taru-cli} against a real Taru with users.
    """

    async def start_taru(self) -> Taru:
        """
        Start Taru on the tests' configuration.
        """
        self.addCleanup(kill_processes_with, MARKER)
        return await Taru(self, CONFIG).start()

    def assert_clean(self, process: CLIProcess) -> None:
        """
        Check that a process wrote no traceback.
        """
        self.assertNotIn("Traceback", process.error_text)

    async def test_list_as_user(self) -> None:
        """
        C{list} shows the tasks the user may see, with what they may do;
        another user sees fewer; C{--json} gives Taru's own list.
        """
        taru = await self.start_taru()
        alice = await run_cli(self, "list", taru=taru, user="alice")
        bob = await run_cli(self, "list", taru=taru, user="bob")
        as_json = await run_cli(self, "list", "--json", taru=taru, user="bob")

        self.assertEqual(alice.exit_code, 0, alice.error_text)
        lines = alice.text.splitlines()
        self.assertEqual(
            lines[0].split(), ["TASK", "STATE", "EXIT", "ARGUMENTS", "YOU", "MAY"]
        )
        names = [line.split()[0] for line in lines[1:]]
        self.assertEqual(
            names,
            ["greet", "repeat", "slow", "failing", "killed", "sleeper", "hanging"],
        )
        self.assertRegex(lines[1], r"^greet +new +- +host:String +run, read output$")
        self.assertRegex(lines[2], r"^repeat .* times:Int ")
        self.assertEqual(bob.exit_code, 0, bob.error_text)
        [heading, greet] = bob.text.splitlines()
        self.assertRegex(greet, r"^greet +new +- +host:String +see status$")
        self.assertEqual(as_json.exit_code, 0)
        self.assertEqual(list(json.loads(as_json.output)), ["greet"])

    async def test_environment(self) -> None:
        """
        C{TARU_URL} and C{TARU_USER} stand for C{--url} and C{--user}.
        """
        taru = await self.start_taru()
        environment = {"TARU_URL": taru.base, "TARU_USER": "bob"}

        bob = await run_cli(self, "list", environment=environment)

        self.assertEqual(bob.exit_code, 0, bob.error_text)
        self.assertEqual(len(bob.text.splitlines()), 2)
        self.assertIn("greet", bob.text)

    async def test_run_streams(self) -> None:
        """
        C{run} prints a run's first line as soon as the task writes it, long
        before a three-second task ends, and exits with 0.
        """
        taru = await self.start_taru()
        process = await run_cli(self, "run", "slow", taru=taru, user="alice")

        self.assertEqual(process.exit_code, 0, process.error_text)
        self.assertEqual(process.output, b"first\nlast\n")
        assert process.ended_at is not None
        first_arrival = process.arrivals[0][0]
        self.assertGreater(process.ended_at - first_arrival, 2.0)
        self.assertEqual(process.error_text, "")

    async def test_run_arguments(self) -> None:
        """
        C{run} gives a task its arguments whole, spaces and all.
        """
        taru = await self.start_taru()
        greet = await run_cli(
            self, "run", "greet", "host=two  words", taru=taru, user="alice"
        )
        repeat = await run_cli(
            self, "run", "repeat", "times=3", taru=taru, user="alice"
        )

        self.assertEqual(greet.exit_code, 0, greet.error_text)
        self.assertEqual(greet.output, b"hello two  words\n")
        self.assertEqual(repeat.exit_code, 0, repeat.error_text)
        self.assertEqual(repeat.output, b"0\n1\n2\n")

    async def test_exit_codes(self) -> None:
        """
        C{run} exits with the run's exit code, or with 128 plus the signal
        that ended it and a note saying so; C{--no-output} the same, quietly.
        """
        taru = await self.start_taru()
        failing = await run_cli(self, "run", "failing", taru=taru, user="alice")
        killed = await run_cli(self, "run", "killed", taru=taru, user="alice")
        quiet = await run_cli(
            self, "run", "--no-output", "failing", taru=taru, user="alice"
        )

        self.assertEqual((failing.exit_code, failing.output), (3, b"failing\n"))
        self.assertEqual(failing.error_text, "")
        self.assertEqual((killed.exit_code, killed.output), (137, b"dying\n"))
        self.assertRegex(
            killed.error_text, r"^taru-cli: run \d+ of 'killed' ended by signal 9\n$"
        )
        self.assertEqual((quiet.exit_code, quiet.output), (3, b""))

    async def test_timed_out(self) -> None:
        """
        A run Taru stops for running past its timeout makes C{run} exit with
        128 plus SIGTERM, and say that it timed out.
        """
        taru = await self.start_taru()

        process = await run_cli(self, "run", "hanging", taru=taru, user="alice")

        self.assertEqual(process.exit_code, 128 + signal.SIGTERM, process.error_text)
        self.assertEqual(process.output, b"waiting\n")
        self.assertRegex(
            process.error_text,
            r"^taru-cli: run \d+ of 'hanging' timed out: ended by signal 15\n$",
        )

    async def test_stop_from_another(self) -> None:
        """
        C{stop} from a second C{taru-cli} ends the run the first follows,
        which exits with 128 plus SIGTERM and names who stopped it.
        """
        taru = await self.start_taru()
        running = start_cli(self, "run", "sleeper", taru=taru, user="alice")
        self.assertTrue(await wait_for(lambda: b"sleeping" in running.output))

        stop = await run_cli(self, "stop", "sleeper", taru=taru, user="alice")
        await running.wait()

        self.assertEqual(stop.exit_code, 0, stop.error_text)
        self.assertEqual(stop.text, "task 'sleeper' is stopping\n")
        self.assertEqual(running.exit_code, 128 + signal.SIGTERM, running.error_text)
        self.assertRegex(
            running.error_text,
            r"^taru-cli: run \d+ of 'sleeper' was stopped by alice:"
            r" ended by signal 15\n$",
        )
        self.assertEqual(sleeping(MARKER), [])

    async def test_detached_run(self) -> None:
        """
        C{run --detach} prints the run's number; C{status} waits for it and
        exits with its code; C{output} shows its output and C{runs} lists it.
        """
        taru = await self.start_taru()
        detached = await run_cli(
            self, "run", "--detach", "failing", taru=taru, user="alice"
        )
        status = await run_cli(self, "status", "failing", taru=taru, user="alice")
        output = await run_cli(self, "output", "failing", taru=taru, user="alice")
        runs = await run_cli(self, "runs", "failing", taru=taru, user="alice")
        as_json = await run_cli(
            self, "runs", "--json", "failing", taru=taru, user="alice"
        )

        self.assertEqual(detached.exit_code, 0, detached.error_text)
        run_id = int(detached.text)
        self.assertEqual((status.exit_code, status.text), (3, "3\n"))
        self.assertEqual((output.exit_code, output.output), (0, b"failing\n"))
        self.assertEqual(runs.exit_code, 0, runs.error_text)
        [heading, row] = runs.text.splitlines()
        self.assertEqual(heading.split()[:3], ["RUN", "STARTED", "DURATION"])
        self.assertRegex(
            row,
            rf"^{run_id} +\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ +[\d.]+s +alice +exit 3",
        )
        [record] = json.loads(as_json.output)
        self.assertEqual((record["id"], record["exit_code"]), (run_id, 3))

    async def test_events(self) -> None:
        """
        C{events} prints a line per event as it happens, with the time; a
        reload too; and when Taru goes away it says so and exits with 125.
        """
        taru = await self.start_taru()
        events = start_cli(self, "events", taru=taru, user="alice")
        as_json = start_cli(self, "events", "--json", taru=taru, user="alice")
        # Wait until both are subscribed, which Taru logs.
        self.assertTrue(
            await wait_for(lambda: taru.log.count("subscribed to events") >= 2)
        )

        await run_cli(self, "run", "failing", taru=taru, user="alice")
        taru.signal(SIGHUP)
        self.assertTrue(await wait_for(lambda: "configuration reloaded" in events.text))
        self.assertTrue(await wait_for(lambda: "UpdateConfig" in as_json.text))
        await taru.stop()
        await events.wait()
        await as_json.wait()

        stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
        self.assertRegex(
            events.text,
            rf"^{stamp} failing started\n{stamp} failing ended: exit code 3\n"
            rf"{stamp} configuration reloaded\n$",
        )
        self.assertEqual(
            as_json.text,
            '["failing","Started"]\n["failing",{"ExitStatus":3}]\n'
            '[null,"UpdateConfig"]\n',
        )
        self.assertEqual(events.exit_code, 125)
        self.assertEqual(
            events.error_text,
            f"taru-cli: the event stream from Taru at {taru.base} ended\n",
        )

    async def test_errors(self) -> None:
        """
        Taru's refusals and a refused connection are one line on standard
        error, without a traceback, and exit status 125; a usage error
        exits with 2.
        """
        taru = await self.start_taru()
        unknown = await run_cli(self, "run", "nope", taru=taru, user="alice")
        hidden = await run_cli(self, "run", "secret", taru=taru, user="alice")
        refused = await run_cli(
            self, "run", "repeat", "times=many", taru=taru, user="alice"
        )
        unreadable = await run_cli(
            self, "run", "greet", "host=x", taru=taru, user="carol"
        )
        unread = await run_cli(
            self, "run", "--no-output", "greet", "host=x", taru=taru, user="carol"
        )
        anonymous = await run_cli(self, "list", taru=taru)
        url = f"http://127.0.0.1:{free_port()}"
        nobody = await run_cli(self, "list", environment={"TARU_URL": url})
        usage = await run_cli(self, "run", "greet", "host", taru=taru)

        self.assertEqual(unknown.exit_code, 125)
        self.assertEqual(unknown.error_text, "taru-cli: no task named 'nope'\n")
        self.assertEqual(hidden.error_text, "taru-cli: no task named 'secret'\n")
        self.assertEqual(refused.exit_code, 125)
        self.assertRegex(refused.error_text, r"^taru-cli: argument 'times'.*\n$")
        self.assertEqual(unreadable.exit_code, 125)
        self.assertEqual(
            unreadable.error_text,
            "taru-cli: you may run 'greet' but not read its output:"
            " use run --no-output, or run --detach\n",
        )
        self.assertEqual((unread.exit_code, unread.error_text), (0, ""))
        self.assertEqual(anonymous.exit_code, 125)
        self.assertIn("--user", anonymous.error_text)
        self.assertEqual(nobody.exit_code, 125)
        self.assertEqual(
            nobody.error_text,
            f"taru-cli: cannot connect to Taru at {url}: connection refused\n",
        )
        self.assertEqual(usage.exit_code, 2)
        self.assertIn("NAME=VALUE", usage.error_text)
        everyone = [unknown, hidden, refused, unreadable, unread, anonymous, nobody]
        for process in [*everyone, usage]:
            self.assert_clean(process)
            self.assertEqual(process.output, b"")

    async def test_interrupt(self) -> None:
        """
        Ctrl-C while following a run ends C{taru-cli} with 130 without a
        traceback, leaving the task running; with C{--stop-on-interrupt} it
        stops the task too.
        """
        taru = await self.start_taru()
        leaving = start_cli(self, "run", "sleeper", taru=taru, user="alice")
        self.assertTrue(await wait_for(lambda: b"sleeping" in leaving.output))
        leaving.signal(SIGINT)
        await leaving.wait()
        still_running = sleeping(MARKER)
        await run_cli(self, "stop", "sleeper", taru=taru, user="alice")
        self.assertTrue(await wait_for(lambda: not sleeping(MARKER)))

        stopping = start_cli(
            self,
            "run",
            "--stop-on-interrupt",
            "sleeper",
            taru=taru,
            user="alice",
        )
        self.assertTrue(await wait_for(lambda: b"sleeping" in stopping.output))
        stopping.signal(SIGINT)
        await stopping.wait()

        self.assertEqual(leaving.exit_code, 130)
        self.assertEqual(leaving.error_text, "")
        self.assertEqual(len(still_running), 1)
        self.assertEqual(stopping.exit_code, 130)
        self.assertEqual(stopping.error_text, "taru-cli: task 'sleeper' is stopping\n")
        self.assertTrue(await wait_for(lambda: not sleeping(MARKER)))

    async def test_stdout_closed(self) -> None:
        """
        When its standard output is closed, as by C{| head}, C{run} ends
        quietly at its next write, with the status of a command SIGPIPE
        ended.
        """
        taru = await self.start_taru()
        process = start_cli(self, "run", "slow", taru=taru, user="alice")
        self.assertTrue(await wait_for(lambda: bool(process.arrivals)))
        assert process.transport is not None
        process.transport.closeStdout()
        await process.wait()

        self.assertEqual(process.exit_code, 128 + signal.SIGPIPE)
        self.assertEqual(process.error_text, "")

    async def test_stdout_full(self) -> None:
        """
        When its standard output cannot be written, as on a full disk,
        C{taru-cli} says so in one line, without a traceback, and exits with
        125.
        """
        taru = await self.start_taru()
        full = os.open("/dev/full", os.O_WRONLY)
        self.addCleanup(os.close, full)
        descriptors: dict[int, str | int] = {0: "w", 1: full, 2: "r"}

        run = await run_cli(
            self,
            "run",
            "greet",
            "host=x",
            taru=taru,
            user="alice",
            descriptors=descriptors,
        )
        listing = await run_cli(
            self, "list", taru=taru, user="alice", descriptors=descriptors
        )

        for process in [run, listing]:
            self.assertEqual(process.exit_code, 125)
            self.assertEqual(
                process.error_text,
                "taru-cli: cannot write the output: No space left on device\n",
            )

    async def test_stdout_not_open(self) -> None:
        """
        Started without a standard output, C{taru-cli} says so in one line
        and exits with 125 when it has something to print, and carries on
        when it has nothing to print.
        """
        taru = await self.start_taru()
        descriptors = {0: "w", 2: "r"}

        run = await run_cli(
            self,
            "run",
            "greet",
            "host=x",
            taru=taru,
            user="alice",
            descriptors=descriptors,
        )
        quiet = await run_cli(
            self,
            "run",
            "--no-output",
            "failing",
            taru=taru,
            user="alice",
            descriptors=descriptors,
        )

        self.assertEqual(run.exit_code, 125)
        self.assertEqual(
            run.error_text,
            "taru-cli: cannot write the output: standard output is not open\n",
        )
        self.assertEqual((quiet.exit_code, quiet.error_text), (3, ""))

    async def test_stderr_not_open(self) -> None:
        """
        Started without a standard error, C{taru-cli} prints its output as
        usual, drops its messages, and exits with the usual status.
        """
        taru = await self.start_taru()
        descriptors = {0: "w", 1: "r"}

        listing = await run_cli(
            self, "list", taru=taru, user="bob", descriptors=descriptors
        )
        killed = await run_cli(
            self, "run", "killed", taru=taru, user="alice", descriptors=descriptors
        )
        refused = await run_cli(
            self, "run", "nope", taru=taru, user="alice", descriptors=descriptors
        )

        self.assertEqual(listing.exit_code, 0)
        [heading, greet] = listing.text.splitlines()
        self.assertRegex(greet, r"^greet +new +- +host:String +see status$")
        self.assertEqual((killed.exit_code, killed.output), (137, b"dying\n"))
        self.assertEqual((refused.exit_code, refused.output), (125, b""))
        for process in [listing, killed, refused]:
            self.assertNotIn(b"Traceback", process.output)


class ProxiedClientTests(TestCase):
    """
    C{taru-cli} through a real nginx that authenticates users as
    C{doc/nginx.conf} recommends.
    """

    async def test_basic_authentication(self) -> None:
        """
        A name and password in the URL log in with nginx, which names the
        user to Taru; a wrong password is reported without showing it.
        """
        self.addCleanup(kill_processes_with, MARKER)
        taru = await Taru(self, CONFIG).start()
        nginx = await start_nginx(self, taru.port)

        greet = await run_cli(
            self,
            "--url",
            f"http://alice:wonderland@127.0.0.1:{nginx}/",
            "run",
            "greet",
            "host=proxy",
        )
        runs = await run_cli(
            self,
            "runs",
            "--json",
            "greet",
            environment={"TARU_URL": f"http://alice:wonderland@127.0.0.1:{nginx}"},
        )
        wrong = await run_cli(
            self, "--url", f"http://alice:guess@127.0.0.1:{nginx}", "list"
        )

        self.assertEqual((greet.exit_code, greet.output), (0, b"hello proxy\n"))
        self.assertEqual(greet.error_text, "")
        [record] = json.loads(runs.output)
        self.assertEqual(record["user"], "alice")
        self.assertEqual(wrong.exit_code, 125)
        self.assertEqual(
            wrong.error_text,
            f"taru-cli: http://127.0.0.1:{nginx} answered 401 Unauthorized: the"
            " name and password in the URL were refused\n",
        )
