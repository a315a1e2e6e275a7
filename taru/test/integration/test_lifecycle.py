"""
A real Taru's life around its tasks: starting up, reloading its
configuration, the environment tasks run in, and stopping tasks with
everything they started.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sys

from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from twisted.web.http_headers import Headers

import taru
from taru.test.integration.harness import (
    Taru,
    describe_processes_with,
    follow,
    http_client,
    is_exit_status,
    kill_processes_with,
    now,
    open_events,
    output_of,
    processes_with,
    sleep,
    sleep_marker,
    sleeping,
    start_and_follow,
    wait_for,
)

_LISTENING = re.compile(rb"Site starting on (\d+)")

# The folder holding setup.py, taru.tac and the twisted plugin.
PROJECT_DIRECTORY = os.path.dirname(os.path.dirname(os.path.abspath(taru.__file__)))


class Command(ProcessProtocol):
    """
    A program a test runs, with its output kept apart by stream.

    @ivar ended: fires with the exit code, or L{None} if a signal ended it.
    """

    def __init__(self) -> None:
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.ended: Deferred[int | None] = Deferred()
        self.pid = 0

    def outReceived(self, data: bytes) -> None:
        self.stdout += data

    def errReceived(self, data: bytes) -> None:
        self.stderr += data

    def processEnded(self, reason: Failure) -> None:
        if isinstance(reason.value, ProcessTerminated):
            self.ended.callback(reason.value.exitCode)
        elif isinstance(reason.value, ProcessDone):
            self.ended.callback(0)
        else:
            self.ended.callback(None)

    async def port(self, timeout: float = 20.0) -> int:
        """
        The port the program said it listens on.
        """

        def said() -> bool:
            return bool(_LISTENING.search(self.stdout + self.stderr))

        if not await wait_for(lambda: said() or self.ended.called, timeout):
            raise TimeoutError("the program did not start listening")
        found = _LISTENING.search(self.stdout + self.stderr)
        if found is None:
            raise RuntimeError(f"the program ended:\n{self.output()}")
        return int(found.group(1))

    def output(self) -> str:
        """
        Both streams, for failure messages.
        """
        return (self.stdout + self.stderr).decode("utf-8", "replace")

    async def stop(self) -> None:
        """
        End the program: SIGTERM, then SIGKILL if it lingers.
        """
        for signal_number in [signal.SIGTERM, signal.SIGKILL]:
            if self.ended.called:
                return
            try:
                os.kill(self.pid, signal_number)
            except ProcessLookupError:
                pass
            await wait_for(lambda: self.ended.called, 10.0)


def run_command(
    testcase: TestCase,
    argv: list[str],
    directory: str,
    environment: dict[str, str] | None = None,
) -> Command:
    """
    Start a program in C{directory}, stopped when the test ends.

    @param environment: variables added to this process's environment.
    """
    command = Command()
    full_environment = dict(os.environ)
    full_environment.update(environment or {})
    full_environment["PYTHONUNBUFFERED"] = "1"
    process = reactor.spawnProcess(
        command, argv[0], argv, env=full_environment, path=directory
    )
    command.pid = process.pid
    testcase.addCleanup(command.stop)
    return command


def new_directory(testcase: TestCase) -> str:
    """
    An empty folder of the test's own.
    """
    directory: str = os.path.abspath(testcase.mktemp())
    os.makedirs(directory)
    return directory


RELOAD_CONFIG = """
tasks:
  kept:
    command: [sh, -c, 'echo kept one; sleep 2; echo kept two']
  dropped:
    command: [sh, -c, 'echo dropped one; sleep 2; echo dropped two; exit 4']
  old:
    command: [echo, old]
"""

RELOADED_CONFIG = """
tasks:
  kept:
    command: [echo, changed]
  added:
    command: [echo, added]
"""


STORM_CONFIG = """
heartbeat: 1
tasks:
  counting:
    command: [sh, -c, 'for i in $(seq 1 30); do echo $i; sleep 0.1; done']
  other:
    command: [echo, other]
"""

STORM_RELOADED_CONFIG = """
tasks:
  counting:
    command: [echo, changed]
  added:
    command: [echo, added]
"""


class ReloadTests(TestCase):
    """
    SIGHUP reloads the configuration file without disturbing running tasks,
    and an invalid file changes nothing.
    """

    timeout = 30

    async def test_reload_while_tasks_run(self) -> None:
        """
        After a reload the task list is the new one, while runs of tasks that
        were changed or removed go on and their followers get all of their
        output; the changed task then runs with its new command.
        """
        taru = await Taru(self, RELOAD_CONFIG).start()
        client = http_client(self)
        _, events = await open_events(self, client, taru.url("/events"))
        kept = await start_and_follow(client, taru, "kept")
        dropped = await start_and_follow(client, taru, "dropped")
        self.assertTrue(
            await wait_for(lambda: bool(kept.body and dropped.body), timeout=5.0)
        )
        dropped_joiner = await follow(client, taru, "dropped")

        taru.write_config(RELOADED_CONFIG)
        taru.signal(signal.SIGHUP)
        await events.messages_until(lambda m: m == [None, "UpdateConfig"])
        listing = await (await client.get(taru.url("/api/v1/tasks"))).json()
        await DeferredList(
            [kept.done, dropped.done, dropped_joiner.done], fireOnOneErrback=True
        )
        rerun = await output_of(client, taru, "kept")

        self.assertEqual(sorted(listing), ["added", "kept"])
        self.assertEqual(listing["kept"]["state"], "running")
        self.assertEqual(
            (kept.body, dropped.body, dropped_joiner.body),
            (
                b"kept one\nkept two\n",
                b"dropped one\ndropped two\n",
                b"dropped one\ndropped two\n",
            ),
        )
        self.assertEqual(rerun, b"changed\n")

    async def test_reload_storm(self) -> None:
        """
        Fifty reloads in quick succession, alternating between two
        configurations, while a task runs and clients follow it and others
        try to start it: every follower gets all of its output, the task
        is never started a second time while it runs, and the reloads are
        announced.
        """
        taru = await Taru(self, STORM_CONFIG).start()
        client = http_client(self)
        _, events = await open_events(self, client, taru.url("/events"))
        starter = await start_and_follow(client, taru, "counting")
        self.assertTrue(await wait_for(lambda: bool(starter.body), timeout=5.0))
        followers = [await follow(client, taru, "counting") for _ in range(3)]

        refused = []
        for reload in range(50):
            taru.write_config(STORM_CONFIG if reload % 2 else STORM_RELOADED_CONFIG)
            taru.signal(signal.SIGHUP)
            response = await client.post(taru.url("/api/v1/task/counting"))
            await response.content()
            refused.append(response.code)
            await sleep(0.02)
        await DeferredList(
            [chunks.done for chunks in [starter, *followers]], fireOnOneErrback=True
        )
        messages = await events.messages_until(
            lambda message: message == ["counting", {"ExitStatus": 0}], timeout=10
        )

        expected = b"".join(b"%d\n" % number for number in range(1, 31))
        self.assertEqual(
            [chunks.body for chunks in [starter, *followers]], [expected] * 4
        )
        self.assertEqual(set(refused), {405})
        self.assertEqual(messages.count(["counting", "Started"]), 1)
        self.assertGreaterEqual(messages.count([None, "UpdateConfig"]), 1)
        self.assertNotIn("Traceback", taru.log)

    async def test_invalid_reload_keeps_the_old_configuration(self) -> None:
        """
        A reload from an invalid file logs what is wrong and where, announces
        nothing, and leaves the old configuration in force.
        """
        taru = await Taru(self, "tasks:\n  hello: {command: [echo, hello]}\n").start()
        client = http_client(self)
        _, events = await open_events(self, client, taru.url("/events"))

        taru.write_config(
            "tasks:\n  hello: {command: [echo, hi]}\n  x: {command: []}\n"
        )
        taru.signal(signal.SIGHUP)
        logged = await wait_for(
            lambda: "tasks.x.command: must not be empty" in taru.log, timeout=10.0
        )
        listing = await (await client.get(taru.url("/api/v1/tasks"))).json()
        output = await output_of(client, taru, "hello")
        first_event = await events.next_message()

        self.assertTrue(logged, taru.log)
        self.assertEqual(list(listing), ["hello"])
        self.assertEqual(output, b"hello\n")
        self.assertEqual(first_event, ["hello", "Started"])


class EnvironmentTests(TestCase):
    """
    Tasks run in an environment of their own, with nothing to read on
    standard input.
    """

    timeout = 30

    async def test_taru_environment_is_not_passed_on(self) -> None:
        """
        A task sees none of Taru's own environment variables, only a minimal
        environment with C{PATH}, C{HOME} and its name in C{TARU_TASK}.
        """
        secret = f"secret-{random.randrange(10**8, 10**9)}"
        taru = await Taru(
            self,
            "tasks:\n  environment: {command: [env]}\n",
            environment={"TARU_TEST_SECRET": secret},
        ).start()

        output = await output_of(http_client(self), taru, "environment")

        variables = dict(
            line.split("=", 1) for line in output.decode("utf-8").splitlines()
        )
        self.assertNotIn(secret, output.decode("utf-8"))
        self.assertNotIn("TARU_TEST_SECRET", variables)
        self.assertNotIn("PYTHONUNBUFFERED", variables)
        self.assertIn("PATH", variables)
        self.assertIn("HOME", variables)
        self.assertEqual(variables.get("TARU_TASK"), "environment")

    async def test_standard_input_is_empty(self) -> None:
        """
        A task reading standard input reads nothing and ends at once.
        """
        taru = await Taru(self, "tasks:\n  reader: {command: [cat]}\n").start()
        client = http_client(self)
        started_at = now()

        output = await output_of(client, taru, "reader")
        status = await (await client.get(taru.url("/api/v1/task/reader/status"))).text()

        self.assertEqual((output, status), (b"", "0"))
        self.assertLess(now() - started_at, 5.0)


class QuickTaskTests(TestCase):
    """
    Tasks that end the moment they start are run like any other.
    """

    timeout = 60

    async def test_task_ending_at_once_starts_every_time(self) -> None:
        """
        A task that exits immediately, run a hundred times in a row, is
        started and reported successfully every time.
        """
        taru = await Taru(self, 'tasks:\n  instant: {command: ["true"]}\n').start()
        client = http_client(self)

        results = []
        for _ in range(100):
            response = await client.post(taru.url("/api/v1/task/instant/status"))
            results.append((response.code, await response.content()))

        failed = [result for result in results if result != (200, b"0")]
        self.assertEqual(failed, [], taru.log[-3000:])


RESTART_CONFIG = """
    tasks:
      report:
        command: [sh, -c, 'head -c 300000 /dev/zero | tr "\\0" x; echo; exit 3']
"""


class RestartTests(TestCase):
    """
    What a buffered task wrote outlives Taru.
    """

    async def test_output_survives_restart(self) -> None:
        """
        After Taru restarts, a buffered task's last run is there as it was:
        finished with its exit code and its whole output, which can also be
        asked for in part.
        """
        taru = await Taru(self, RESTART_CONFIG).start()
        client = http_client(self)
        response = await client.post(taru.url("/api/v1/task/report/output"))
        before = await response.content()
        self.assertEqual(len(before), 300_001)
        await client.get(taru.url("/api/v1/task/report/status"))
        await taru.stop()

        successor = await taru.successor().start()
        listing = await (await client.get(successor.url("/api/v1/tasks"))).json()
        after = await (
            await client.get(successor.url("/api/v1/task/report/output"))
        ).content()
        part = await client.get(
            successor.url("/api/v1/task/report/output"),
            headers=Headers({"Range": ["bytes=299990-"]}),
        )

        report = listing["report"]
        self.assertEqual((report["state"], report["exit_code"]), ("finished", 3))
        self.assertEqual(after, before)
        self.assertEqual(part.code, 206)
        self.assertEqual(await part.content(), before[299_990:])


class ShutdownTests(TestCase):
    """
    What becomes of tasks when Taru stops, with the direct runner.
    """

    timeout = 40

    async def test_sigterm_stops_direct_tasks(self) -> None:
        """
        Taru stopped with SIGTERM stops the tasks it runs directly, so that
        none is left without a Taru to follow it; the output written until
        then is kept, and the next Taru shows the run as ended by a signal.
        """
        marker = sleep_marker()
        self.addCleanup(kill_processes_with, marker)
        taru = await Taru(
            self,
            f"""
            tasks:
              long:
                command: [sh, -c, 'echo started; sleep {marker}']
            """,
        ).start()
        client = http_client(self)
        await (await client.post(taru.url("/api/v1/task/long"))).content()
        self.assertTrue(await wait_for(lambda: bool(sleeping(marker)), timeout=10.0))

        exit_code = await taru.stop()
        gone = await wait_for(lambda: not processes_with(marker), timeout=10.0)
        successor = await taru.successor().start()
        listing = await (await client.get(successor.url("/api/v1/tasks"))).json()
        kept = await (
            await client.get(successor.url("/api/v1/task/long/output"))
        ).content()

        self.assertEqual(exit_code, 0)
        self.assertTrue(gone, describe_processes_with(marker))
        self.assertEqual(
            (listing["long"]["state"], listing["long"]["exit_code"]),
            ("finished", None),
        )
        self.assertEqual(kept, b"started\n")

    async def test_task_that_leaves_a_daemon(self) -> None:
        """
        A task that starts a daemon in a session of its own and exits is
        reported as ended soon after it exits, though the daemon still holds
        its output open; the daemon, detached before the task exited, is
        left running, as documented.
        """
        marker = sleep_marker()
        self.addCleanup(kill_processes_with, marker)
        taru = await Taru(
            self,
            f"""
            tasks:
              daemonize:
                command:
                - sh
                - -c
                - 'setsid sleep {marker} & sleep 0.5; echo daemon started'
            """,
        ).start()
        client = http_client(self)
        started = now()

        response = await client.post(taru.url("/api/v1/task/daemonize/status"))
        exit_code = await response.content()

        self.assertEqual(exit_code, b"0")
        self.assertLess(now() - started, 8)
        self.assertTrue(processes_with(marker), "the daemon was expected to live on")


class StopTests(TestCase):
    """
    Stopping a task ends every process of its run.
    """

    timeout = 40

    async def test_stop_ends_the_whole_process_tree(self) -> None:
        """
        Stopping a task ends it and every process it started, including those
        in the background and in sessions of their own, and its end is
        reported as caused by a signal.
        """
        marker = sleep_marker()
        self.addCleanup(kill_processes_with, marker)
        taru = await Taru(
            self,
            f"""
            tasks:
              tree:
                command:
                - sh
                - -c
                - 'sleep {marker} & setsid sleep {marker} & sleep {marker}'
            """,
        ).start()
        client = http_client(self)
        _, events = await open_events(self, client, taru.url("/events"))
        await (await client.post(taru.url("/api/v1/task/tree"))).content()
        self.assertTrue(
            await wait_for(lambda: len(sleeping(marker)) == 3, timeout=10.0)
        )

        await (await client.post(taru.url("/api/v1/task/tree/stop"))).content()
        messages = await events.messages_until(is_exit_status, timeout=15.0)
        gone = await wait_for(lambda: not processes_with(marker), timeout=5.0)
        listing = await (await client.get(taru.url("/api/v1/tasks"))).json()

        self.assertEqual(messages[-1], ["tree", {"ExitStatus": None}])
        self.assertTrue(
            gone,
            f"processes of the stopped run remain: {describe_processes_with(marker)}",
        )
        self.assertEqual(
            (listing["tree"]["state"], listing["tree"]["exit_code"]),
            ("finished", None),
        )

    async def test_stop_kills_a_task_ignoring_sigterm(self) -> None:
        """
        A task that ignores SIGTERM is killed once the grace period after the
        stop request is over.
        """
        marker = sleep_marker()
        self.addCleanup(kill_processes_with, marker)
        taru = await Taru(
            self,
            f"""
            tasks:
              stubborn:
                command: [sh, -c, 'trap "" TERM; sleep {marker}; echo survived']
            """,
        ).start()
        client = http_client(self)
        _, events = await open_events(self, client, taru.url("/events"))
        await (await client.post(taru.url("/api/v1/task/stubborn"))).content()
        self.assertTrue(await wait_for(lambda: bool(sleeping(marker)), timeout=10.0))

        stop_at = now()
        await (await client.post(taru.url("/api/v1/task/stubborn/stop"))).content()
        messages = await events.messages_until(is_exit_status, timeout=20.0)
        stopped_after = now() - stop_at
        gone = await wait_for(lambda: not processes_with(marker), timeout=5.0)

        self.assertEqual(messages[-1], ["stubborn", {"ExitStatus": None}])
        self.assertGreater(stopped_after, 4.0)
        self.assertLess(stopped_after, 15.0)
        self.assertTrue(
            gone,
            f"processes of the stopped run remain: {describe_processes_with(marker)}",
        )


GOOD_CONFIG = """\
tasks:
  hello:
    command: [echo, hello]
"""

BAD_CONFIG = """\
tasks:
  ping:
    command: [ping, -c1, $host]
    arguments:
    - name: host
      datatype: Enum
      enum_source: hostz
  hosts:
    command: [echo, localhost]
"""


class StartupTests(TestCase):
    """
    Taru starts from its own command, from the twistd plugin and from
    C{taru.tac}, and refuses a bad configuration clearly.
    """

    timeout = 40

    def write_file(self, directory: str, name: str, contents: str) -> str:
        """
        Write a text file and return its path.
        """
        path = os.path.join(directory, name)
        with open(path, "w", encoding="utf-8") as written:
            written.write(contents)
        return path

    async def assert_serves_tasks(self, command: Command) -> None:
        """
        The program listens on loopback and lists the configured task.
        """
        port = await command.port()
        response = await http_client(self).get(f"http://127.0.0.1:{port}/api/v1/tasks")
        listing = json.loads(await response.content())

        self.assertEqual((response.code, list(listing)), (200, ["hello"]))

    async def test_bad_configuration(self) -> None:
        """
        Started with an invalid configuration, C{taru} prints one line saying
        what is wrong and where, without a traceback, and exits with status 2.
        """
        directory = new_directory(self)
        config = self.write_file(directory, "bad.yml", BAD_CONFIG)
        command = run_command(
            self,
            [
                sys.executable,
                "-m",
                "taru",
                "--listen",
                "tcp:0:interface=127.0.0.1",
                "--state-dir",
                os.path.join(directory, "state"),
                config,
            ],
            directory,
        )

        exited = await wait_for(lambda: command.ended.called, timeout=20.0)

        self.assertTrue(exited, command.output())
        self.assertEqual(await command.ended, 2)
        printed = command.output()
        self.assertEqual(len(printed.strip().splitlines()), 1, printed)
        self.assertIn(
            "tasks.ping.arguments[0].enum_source: no task named 'hostz'", printed
        )
        self.assertNotIn("Traceback", printed)

    async def test_twistd_plugin(self) -> None:
        """
        C{twistd -n taru} with a configuration and an endpoint serves the API.
        """
        directory = new_directory(self)
        config = self.write_file(directory, "taru.yml", GOOD_CONFIG)
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")

        command = run_command(
            self,
            [
                twistd,
                "-n",
                "--pidfile",
                os.path.join(directory, "twistd.pid"),
                "taru",
                "--config",
                config,
                "--listen",
                "tcp:0:interface=127.0.0.1",
                "--runner",
                "direct",
                "--state-dir",
                os.path.join(directory, "state"),
            ],
            directory,
        )

        await self.assert_serves_tasks(command)

    async def test_twistd_json_log(self) -> None:
        """
        Under twistd, C{--logger taru.cli.json_log_observer} gives the JSON
        log; C{--log-format}, the taru command's option, is refused with a
        pointer to it.
        """
        directory = new_directory(self)
        config = self.write_file(directory, "taru.yml", GOOD_CONFIG)
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
        common = [
            "--config",
            config,
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--runner",
            "direct",
            "--state-dir",
            os.path.join(directory, "state"),
        ]

        command = run_command(
            self,
            [
                twistd,
                "-n",
                "--pidfile",
                os.path.join(directory, "twistd.pid"),
                "--logger",
                "taru.cli.json_log_observer",
                "taru",
                *common,
            ],
            directory,
        )
        await self.assert_serves_tasks(command)
        refused = run_command(
            self, [twistd, "-n", "taru", "--log-format", "json", *common], directory
        )
        code = await refused.ended

        events = [json.loads(line) for line in command.stdout.splitlines()]
        self.assertIn("runner: {runner}", [event.get("log_format") for event in events])
        self.assertEqual(code, 1)
        self.assertIn("--logger taru.cli.json_log_observer", refused.output())

    async def test_tac_file(self) -> None:
        """
        C{twistd -ny taru.tac} configured through C{TARU_*} environment
        variables serves the API.
        """
        directory = new_directory(self)
        config = self.write_file(directory, "taru.yml", GOOD_CONFIG)
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")

        command = run_command(
            self,
            [
                twistd,
                "-ny",
                os.path.join(PROJECT_DIRECTORY, "taru.tac"),
                "--pidfile",
                os.path.join(directory, "twistd.pid"),
            ],
            directory,
            environment={
                "TARU_CONFIG": config,
                "TARU_LISTEN": "tcp:0:interface=127.0.0.1",
                "TARU_RUNNER": "direct",
                "TARU_STATE_DIR": os.path.join(directory, "state"),
            },
        )

        await self.assert_serves_tasks(command)
