"""
Tests for L{taru.service}: the command-line options, the defaults taken from
the environment, choosing a runner, and reloading the configuration.
"""

from __future__ import annotations

import io
import os
import resource
import shutil
import sys
from collections.abc import Callable
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import fail
from twisted.internet.error import CannotListenError
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from taru import service
from taru.config import load_config
from taru.runners import DirectRunner
from taru.service import (
    Options,
    TaruService,
    choose_runner,
    default_endpoint,
    default_state_directory,
    make_service,
    raise_open_file_limit,
    reaches_beyond_loopback,
)
from taru.systemd import SystemdRunner
from taru.test.fakes import FakeRunner, result_now

CONFIG = """
tasks:
  hello:
    command: [echo, hi]
"""

NEW_CONFIG = """
heartbeat: 5
tasks:
  hello:
    command: [echo, hello]
  bye:
    command: [echo, bye]
"""

INVALID_CONFIG = """
tasks:
  hello:
    command: []
"""


def write_file(path: str, text: str) -> str:
    """
    Write C{text} to C{path}, and give back the path.
    """
    with open(path, "w", encoding="utf-8") as config_file:
        config_file.write(text)
    return path


class OptionsTests(SynchronousTestCase):
    """
    Tests for L{Options}.
    """

    def setUp(self) -> None:
        self.config_path = write_file(self.mktemp(), CONFIG)
        self.state_directory = self.mktemp()
        self.patch(os, "environ", {"HOME": "/home/taru"})
        self.stderr = io.StringIO()
        self.patch(sys, "stderr", self.stderr)

    def parse(self, *arguments: str) -> Options:
        options = Options()
        options.parseOptions(["--state-dir", self.state_directory, *arguments])
        return options

    def enter_folder(self) -> None:
        """
        Work in a new, empty folder for the rest of the test.
        """
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(folder)

    def test_positional_config(self) -> None:
        """
        The configuration file may be given as the one positional argument;
        it is loaded.
        """
        options = self.parse(self.config_path)

        self.assertEqual(options["config"], self.config_path)
        self.assertEqual(list(options["loaded"].tasks), ["hello"])

    def test_config_option(self) -> None:
        """
        The configuration file may be given with C{--config}.
        """
        options = self.parse("--config", self.config_path)

        self.assertEqual(options["config"], self.config_path)
        self.assertEqual(list(options["loaded"].tasks), ["hello"])

    def test_config_twice(self) -> None:
        """
        Giving the configuration file both ways is refused.
        """
        error = self.assertRaises(
            usage.UsageError,
            self.parse,
            "--config",
            self.config_path,
            self.config_path,
        )

        self.assertIn("only once", str(error))

    def test_default_config(self) -> None:
        """
        Without one given, the configuration file is C{taru.yml} in the
        working folder.
        """
        self.enter_folder()
        write_file("taru.yml", CONFIG)

        options = self.parse()

        self.assertEqual(options["config"], "taru.yml")
        self.assertEqual(list(options["loaded"].tasks), ["hello"])

    def test_listen_repeated(self) -> None:
        """
        C{--listen} and C{-l} may be repeated; every endpoint is kept, in
        order.
        """
        options = self.parse(
            "--listen", "tcp:8080", "-l", "unix:/run/taru.sock", self.config_path
        )

        self.assertEqual(options["listen"], ["tcp:8080", "unix:/run/taru.sock"])

    def test_listen_default(self) -> None:
        """
        Without C{--listen}, and without sockets from systemd, Taru listens
        on TCP port 3000.
        """
        options = self.parse(self.config_path)

        self.assertEqual(options["listen"], ["tcp:3000"])

    def test_runner_default(self) -> None:
        """
        The runner is chosen automatically unless one is named.
        """
        options = self.parse(self.config_path)

        self.assertEqual(options["runner"], "auto")

    def test_runner_named(self) -> None:
        """
        C{--runner} accepts C{systemd} and C{direct}.
        """
        self.assertEqual(
            self.parse("-r", "direct", self.config_path)["runner"], "direct"
        )
        self.assertEqual(
            self.parse("--runner", "systemd", self.config_path)["runner"], "systemd"
        )

    def test_bad_runner(self) -> None:
        """
        An unknown runner is refused, with the ones there are.
        """
        error = self.assertRaises(
            usage.UsageError, self.parse, "--runner", "docker", self.config_path
        )

        self.assertIn("--runner", str(error))
        self.assertIn("direct", str(error))
        self.assertIn("'docker'", str(error))

    def test_request_timeout(self) -> None:
        """
        C{--request-timeout} is 30 seconds unless given, fractions allowed.
        """
        self.assertEqual(self.parse(self.config_path)["request-timeout"], 30.0)
        self.assertEqual(
            self.parse("--request-timeout", "2.5", self.config_path)["request-timeout"],
            2.5,
        )

    def test_log_format(self) -> None:
        """
        C{--log-format} is text unless json is asked for; anything else is
        refused with the choices.
        """
        self.assertEqual(self.parse(self.config_path)["log-format"], "text")
        self.assertEqual(
            self.parse("--log-format", "json", self.config_path)["log-format"],
            "json",
        )
        error = self.assertRaises(
            usage.UsageError, self.parse, "--log-format", "xml", self.config_path
        )
        self.assertIn("text, json", str(error))

    def test_bad_request_timeout(self) -> None:
        """
        A request timeout that is not a positive, finite number is refused.
        """
        for value in ("0", "-1", "nan", "inf", "soon"):
            error = self.assertRaises(
                usage.UsageError,
                self.parse,
                "--request-timeout",
                value,
                self.config_path,
            )
            self.assertIn("request-timeout", str(error))

    def test_public_folder(self) -> None:
        """
        C{--public} names the folder served under C{/}.
        """
        public = self.mktemp()
        os.makedirs(public)

        options = self.parse("--public", public, self.config_path)

        self.assertEqual(options["public"], public)

    def test_missing_public_folder(self) -> None:
        """
        A C{--public} folder that does not exist is refused.
        """
        missing = self.mktemp()

        error = self.assertRaises(
            usage.UsageError, self.parse, "--public", missing, self.config_path
        )

        self.assertIn("--public", str(error))
        self.assertIn(missing, str(error))

    def test_public_default(self) -> None:
        """
        Without C{--public}, a C{public} folder in the working folder is
        served, and nothing when there is none.
        """
        config_path = os.path.abspath(self.config_path)
        self.enter_folder()
        without = self.parse(config_path)
        os.makedirs("public")

        with_folder = self.parse(config_path)

        self.assertIsNone(without["public"])
        self.assertEqual(with_folder["public"], "public")

    def test_state_directory_default(self) -> None:
        """
        Without C{--state-dir}, state goes where systemd says.
        """
        self.patch(os, "environ", {"STATE_DIRECTORY": "/var/lib/taru"})
        options = Options()

        options.parseOptions([self.config_path])

        self.assertEqual(options["state-dir"], "/var/lib/taru")

    def test_invalid_config(self) -> None:
        """
        An invalid configuration ends Taru with status 2 and a one-line
        message naming the place of the problem, without a traceback.
        """
        write_file(self.config_path, INVALID_CONFIG)

        error = self.assertRaises(SystemExit, self.parse, self.config_path)

        self.assertEqual(error.code, 2)
        self.assertEqual(
            self.stderr.getvalue(), "taru: tasks.hello.command: must not be empty\n"
        )

    def test_invalid_yaml(self) -> None:
        """
        A configuration that is not YAML is reported with its file and line.
        """
        write_file(self.config_path, "tasks:\n  hello: [\n")

        error = self.assertRaises(SystemExit, self.parse, self.config_path)

        self.assertEqual(error.code, 2)
        message = self.stderr.getvalue()
        self.assertTrue(message.startswith(f"taru: {self.config_path}, line "))
        self.assertNotIn("Traceback", message)
        self.assertEqual(message.count("\n"), 1)

    def test_missing_config(self) -> None:
        """
        A configuration file that cannot be read is reported by name.
        """
        missing = self.mktemp()

        error = self.assertRaises(SystemExit, self.parse, missing)

        self.assertEqual(error.code, 2)
        self.assertEqual(
            self.stderr.getvalue(),
            f"taru: {missing}: cannot read: No such file or directory\n",
        )


class DefaultStateDirectoryTests(SynchronousTestCase):
    """
    Tests for L{default_state_directory}.
    """

    def test_from_systemd(self) -> None:
        """
        The first folder in C{STATE_DIRECTORY} is used.
        """
        self.patch(
            os,
            "environ",
            {
                "STATE_DIRECTORY": "/var/lib/taru:/var/lib/other",
                "XDG_STATE_HOME": "/home/taru/state",
            },
        )

        self.assertEqual(default_state_directory(), "/var/lib/taru")

    def test_from_xdg(self) -> None:
        """
        Without C{STATE_DIRECTORY}, it is C{taru} in C{XDG_STATE_HOME}.
        """
        self.patch(
            os, "environ", {"XDG_STATE_HOME": "/home/taru/state", "HOME": "/home/t"}
        )

        self.assertEqual(default_state_directory(), "/home/taru/state/taru")

    def test_fallback(self) -> None:
        """
        Without either, it is C{~/.local/state/taru}.
        """
        self.patch(os, "environ", {"HOME": "/home/taru"})

        self.assertEqual(default_state_directory(), "/home/taru/.local/state/taru")

    def test_empty_values_ignored(self) -> None:
        """
        Empty variables count as unset.
        """
        self.patch(
            os,
            "environ",
            {"STATE_DIRECTORY": "", "XDG_STATE_HOME": "", "HOME": "/home/taru"},
        )

        self.assertEqual(default_state_directory(), "/home/taru/.local/state/taru")


class DefaultEndpointTests(SynchronousTestCase):
    """
    Tests for L{default_endpoint}.
    """

    def test_without_systemd(self) -> None:
        """
        Without sockets from systemd, the endpoint is TCP port 3000.
        """
        self.assertEqual(default_endpoint({}), "tcp:3000")

    def test_sockets_for_another_process(self) -> None:
        """
        Sockets systemd passed to another process are not used.
        """
        environ = {"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "1"}

        self.assertEqual(default_endpoint(environ), "tcp:3000")

    def test_no_sockets(self) -> None:
        """
        A C{LISTEN_PID} for this process with no sockets is not used.
        """
        environ = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "0"}

        self.assertEqual(default_endpoint(environ), "tcp:3000")

    def test_from_process_environment(self) -> None:
        """
        Without an environment given, the process's own is read.
        """
        self.patch(os, "environ", {"LISTEN_PID": "1", "LISTEN_FDS": "1"})

        self.assertEqual(default_endpoint(), "tcp:3000")


class ChooseRunnerTests(SynchronousTestCase):
    """
    Tests for L{choose_runner}.
    """

    def setUp(self) -> None:
        self.patch(shutil, "which", lambda name: f"/usr/bin/{name}")
        self.reactor = Clock()

    def test_named(self) -> None:
        """
        A named runner is made as named.
        """
        with capturedLogs() as events:
            direct = choose_runner(
                "direct", self.reactor, "state", service.TaruService._log
            )
            systemd = choose_runner(
                "systemd", self.reactor, "state", service.TaruService._log
            )

        self.assertIsInstance(direct, DirectRunner)
        self.assertIsInstance(systemd, SystemdRunner)
        self.assertEqual(
            [formatEvent(event) for event in events],
            ["runner: direct", "runner: systemd"],
        )

    def test_auto_with_user_manager(self) -> None:
        """
        C{auto} chooses systemd when a user manager answers, and says so.
        """
        self.patch(service, "user_manager_answers", lambda: True)

        with capturedLogs() as events:
            runner = choose_runner(
                "auto", self.reactor, "state", service.TaruService._log
            )

        self.assertIsInstance(runner, SystemdRunner)
        self.assertEqual(
            [formatEvent(event) for event in events],
            ["runner: systemd (chosen automatically)"],
        )

    def test_auto_without_user_manager(self) -> None:
        """
        C{auto} runs tasks directly when no user manager answers.
        """
        self.patch(service, "user_manager_answers", lambda: False)

        runner = choose_runner("auto", self.reactor, "state", service.TaruService._log)

        self.assertIsInstance(runner, DirectRunner)


class MakeServiceTests(SynchronousTestCase):
    """
    Tests for L{make_service}.
    """

    def test_from_options(self) -> None:
        """
        The service uses the options' configuration, runner and folder, and
        listens on each endpoint.
        """
        self.patch(os, "environ", {"HOME": "/home/taru"})
        public = self.mktemp()
        os.makedirs(public)
        config_path = write_file(self.mktemp(), CONFIG)
        options = Options()
        options.parseOptions(
            [
                "--runner",
                "direct",
                "--public",
                public,
                "--state-dir",
                self.mktemp(),
                "-l",
                "tcp:8080:interface=127.0.0.1",
                "-l",
                "unix:/run/taru/taru.sock",
                config_path,
            ]
        )

        taru = make_service(options, Clock())

        self.assertEqual(taru.config_path, config_path)
        self.assertEqual(list(taru.tasks.all()), ["hello"])
        self.assertEqual(taru.api.public, public)
        self.assertEqual(
            taru.endpoints,
            ["tcp:8080:interface=127.0.0.1", "unix:/run/taru/taru.sock"],
        )
        self.assertFalse(taru.running)

    def options(self, *listen: str, config: str = CONFIG) -> Options:
        options = Options()
        arguments = ["--runner", "direct", "--state-dir", self.mktemp()]
        for endpoint in listen:
            arguments += ["--listen", endpoint]
        options.parseOptions([*arguments, write_file(self.mktemp(), config)])
        return options

    def warnings_listening_on(self, endpoint: str, config: str) -> list[str]:
        """
        What starting the service on C{endpoint} warns about.
        """
        taru = make_service(self.options(endpoint, config=config), MemoryReactorClock())
        with capturedLogs() as events:
            taru.startService()
        self.addCleanup(taru.stopService)
        return [
            formatEvent(event)
            for event in events
            if event["log_level"] == LogLevel.warn
        ]

    def test_users_reaching_beyond_loopback_warned(self) -> None:
        """
        With users configured, listening beyond this machine without a
        trusted proxy configured is warned about: nobody from elsewhere
        could name a user.
        """
        users = CONFIG + USERS_SECTION

        warned = self.warnings_listening_on("tcp:8080", users)
        proxied = self.warnings_listening_on(
            "tcp:8080", users + "trusted_proxies: [192.0.2.1]\n"
        )
        no_users = self.warnings_listening_on("tcp:8080", CONFIG)

        self.assertEqual(len(warned), 1)
        self.assertIn("trusted_proxies", warned[0])
        self.assertEqual((proxied, no_users), ([], []))

    def test_ignored_properties_warned(self) -> None:
        """
        The direct runner says at start-up which tasks' systemd properties it
        ignores.
        """
        config = CONFIG + (
            "  limited:\n"
            "    command: ['true']\n"
            "    systemd_properties: {MemoryMax: 1G}\n"
        )

        with capturedLogs() as events:
            make_service(self.options("tcp:0", config=config), MemoryReactorClock())

        warned = [
            formatEvent(event)
            for event in events
            if event["log_level"] == LogLevel.warn
        ]
        self.assertEqual(
            warned,
            [
                "the direct runner ignores the systemd_properties of limited:"
                " they apply with --runner systemd only"
            ],
        )

    def test_reaches_beyond_loopback(self) -> None:
        """
        Wildcard and other addresses reach beyond this machine; loopback
        addresses and unix sockets do not.
        """
        beyond = [
            reaches_beyond_loopback(address)
            for address in [
                IPv4Address("TCP", "0.0.0.0", 80),
                IPv6Address("TCP", "::", 80),
                IPv4Address("TCP", "192.0.2.1", 80),
                IPv4Address("TCP", "127.0.0.1", 80),
                IPv6Address("TCP", "::1", 80),
                UNIXAddress(b"/run/taru.sock"),
            ]
        ]

        self.assertEqual(beyond, [True, True, True, False, False, False])

    def test_invalid_endpoint(self) -> None:
        """
        An endpoint Twisted cannot parse stops start-up with status 2 and one
        line naming it.
        """
        stderr = io.StringIO()
        self.patch(sys, "stderr", stderr)

        exit = self.assertRaises(
            SystemExit, make_service, self.options("nonsense:1"), MemoryReactorClock()
        )

        self.assertEqual(exit.code, 2)
        self.assertTrue(stderr.getvalue().startswith("taru: --listen 'nonsense:1': "))
        self.assertNotIn("Traceback", stderr.getvalue())

    def test_listening_logged(self) -> None:
        """
        Starting the service listens on every endpoint and logs each address.
        """
        reactor = MemoryReactorClock()
        taru = make_service(
            self.options("tcp:8080:interface=127.0.0.1", "unix:/tmp/taru.sock"), reactor
        )

        with capturedLogs() as events:
            taru.startService()
        self.addCleanup(taru.stopService)

        self.assertEqual(
            [(port, interface) for port, _, _, interface in reactor.tcpServers],
            [(8080, "127.0.0.1")],
        )
        self.assertEqual(
            [server[0] for server in reactor.unixServers], ["/tmp/taru.sock"]
        )
        self.successResultOf(taru.listening)
        logged = [
            formatEvent(event)
            for event in events
            if formatEvent(event).startswith("listening")
        ]
        # The memory reactor's ports report the wildcard address.
        self.assertEqual(
            logged,
            [
                "listening on tcp:8080:interface=127.0.0.1 (0.0.0.0:8080)",
                "listening on unix:/tmp/taru.sock (/tmp/taru.sock)",
            ],
        )

    def test_cannot_listen(self) -> None:
        """
        When an endpoint cannot be listened on, the error is logged and Taru
        stops rather than run half reachable.
        """
        reactor = MemoryReactorClock()
        reactor.running = True
        taru = make_service(self.options("tcp:8080"), reactor)
        self.patch(
            taru._endpoints[0][1],
            "listen",
            lambda factory: fail(CannotListenError("", 8080, OSError("in use"))),
        )

        with capturedLogs() as events:
            taru.startService()
        self.addCleanup(taru.stopService)

        self.assertTrue(taru.listen_failed)
        self.assertTrue(reactor.hasStopped)
        self.assertTrue(
            any(
                formatEvent(event).startswith("cannot listen on tcp:8080: ")
                for event in events
            )
        )


class ReloadTests(SynchronousTestCase):
    """
    Tests for L{TaruService.reload}.
    """

    def setUp(self) -> None:
        self.config_path = write_file(self.mktemp(), CONFIG)
        self.clock = Clock()
        self.addCleanup(self.assert_no_delayed_calls)
        self.runner = FakeRunner()
        self.taru = TaruService(
            config_path=self.config_path,
            config=load_config(self.config_path),
            runner=self.runner,
            state_directory=self.mktemp(),
            public=None,
            endpoints=[],
            reactor=self.clock,
        )
        self.addCleanup(self.taru.events.stop)
        self.client = StringTransport()
        self.taru.events.subscribe(self.client, lambda task: True)

    def assert_no_delayed_calls(self) -> None:
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_valid(self) -> None:
        """
        A valid new file is put in force and every client is told to refresh.
        """
        write_file(self.config_path, NEW_CONFIG)

        reloaded = self.taru.reload()

        self.assertTrue(reloaded)
        self.assertEqual(list(self.taru.tasks.all()), ["hello", "bye"])
        self.assertEqual(self.taru.tasks.get("hello").spec.command, ("echo", "hello"))
        self.assertEqual(
            self.client.value(), b'id: 0-1\ndata: [null,"UpdateConfig"]\n\n'
        )

    def test_heartbeat(self) -> None:
        """
        A reload puts the new heartbeat in force.
        """
        write_file(self.config_path, NEW_CONFIG)

        self.taru.reload()
        self.client.clear()
        self.clock.advance(5)

        self.assertEqual(self.client.value(), b'data: [null,"Ping"]\n\n')

    def test_logged(self) -> None:
        """
        A reload is logged with what was loaded.
        """
        write_file(self.config_path, NEW_CONFIG)

        with capturedLogs() as events:
            self.taru.reload()

        self.assertEqual(
            [formatEvent(event) for event in events],
            [
                f"configuration {self.config_path} loaded: 2 tasks,"
                " no users (open to all)"
            ],
        )

    def test_invalid(self) -> None:
        """
        An invalid file is not put in force: the configuration in force stays,
        clients are told nothing, and a warning names the place of the
        problem.
        """
        config_before = self.taru.tasks.config
        write_file(self.config_path, INVALID_CONFIG)

        with capturedLogs() as events:
            reloaded = self.taru.reload()

        self.assertFalse(reloaded)
        self.assertIs(self.taru.tasks.config, config_before)
        self.assertEqual(self.taru.tasks.get("hello").spec.command, ("echo", "hi"))
        self.assertEqual(self.client.value(), b"")
        [event] = events
        self.assertEqual(event["log_level"], LogLevel.warn)
        self.assertIn("tasks.hello.command: must not be empty", formatEvent(event))
        self.assertIn("old one stays in force", formatEvent(event))

    def test_missing_file(self) -> None:
        """
        A file that cannot be read is not an error: the configuration in
        force stays and a warning names the file.
        """
        os.remove(self.config_path)

        with capturedLogs() as events:
            reloaded = self.taru.reload()

        self.assertFalse(reloaded)
        self.assertEqual(list(self.taru.tasks.all()), ["hello"])
        [event] = events
        self.assertEqual(event["log_level"], LogLevel.warn)
        self.assertIn(f"{self.config_path}: cannot read", formatEvent(event))

    def test_running_task_survives(self) -> None:
        """
        A task running when the configuration changes keeps running.
        """
        result_now(self.taru.tasks.start("hello", ("echo", "hi"), None))
        write_file(self.config_path, NEW_CONFIG)

        self.taru.reload()

        self.assertEqual(self.taru.tasks.get("hello").state, "running")
        self.runner.started[0].end(0)
        self.assertEqual(self.taru.tasks.get("hello").state, "finished")


USERS_SECTION = """
users:
  alice:
    can_run: []
    can_view_status: []
    can_view_output: []
"""


class OpenFileLimitTests(SynchronousTestCase):
    """
    L{raise_open_file_limit} lets Taru open as many files as allowed.
    """

    def limits(
        self, soft: int, hard: int
    ) -> tuple[list[tuple[int, int]], Callable[[int], tuple[int, int]], Any]:
        set_to: list[tuple[int, int]] = []

        def getrlimit(kind: int) -> tuple[int, int]:
            self.assertEqual(kind, resource.RLIMIT_NOFILE)
            return soft, hard

        def setrlimit(kind: int, limits: tuple[int, int]) -> None:
            self.assertEqual(kind, resource.RLIMIT_NOFILE)
            set_to.append(limits)

        return set_to, getrlimit, setrlimit

    def test_raised_to_hard_limit(self) -> None:
        """
        The soft limit is raised to the hard one.
        """
        set_to, getrlimit, setrlimit = self.limits(1024, 524288)

        self.assertEqual(raise_open_file_limit(getrlimit, setrlimit), (1024, 524288))
        self.assertEqual(set_to, [(524288, 524288)])

    def test_unlimited_hard_limit(self) -> None:
        """
        An unlimited hard limit raises the soft one to the kernel's ceiling,
        and stays unlimited.
        """
        set_to, getrlimit, setrlimit = self.limits(1024, resource.RLIM_INFINITY)
        with open("/proc/sys/fs/nr_open") as ceiling:
            most = int(ceiling.read())

        raise_open_file_limit(getrlimit, setrlimit)

        self.assertEqual(set_to, [(most, resource.RLIM_INFINITY)])

    def test_already_at_hard_limit(self) -> None:
        """
        Nothing is changed when the soft limit is the hard one.
        """
        set_to, getrlimit, setrlimit = self.limits(4096, 4096)

        self.assertEqual(raise_open_file_limit(getrlimit, setrlimit), (4096, 4096))
        self.assertEqual(set_to, [])

    def test_refused(self) -> None:
        """
        When the system refuses, the limit stays as it was.
        """

        def getrlimit(kind: int) -> tuple[int, int]:
            return 1024, 4096

        def setrlimit(kind: int, limits: tuple[int, int]) -> None:
            raise ValueError("not allowed")

        self.assertEqual(raise_open_file_limit(getrlimit, setrlimit), (1024, 1024))
