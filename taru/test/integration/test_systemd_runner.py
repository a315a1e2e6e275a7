"""
The systemd runner against a real systemd: whole control groups stopped,
exact exit statuses, systemd refusing a second instance, Taru restarted
under a running unit, socket activation, and a sandbox that leaves the host
alone.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time

from twisted.trial.unittest import TestCase

from taru.systemd import unit_name
from taru.test.integration.harness import (
    Taru,
    command_lines,
    http_client,
    is_exit_status,
    open_events,
    sleep,
    systemd_sandbox,
    wait_for,
)
from taru.test.integration.sandbox import Sandbox, project_directory

CONFIG = """
tasks:
  tree:
    command:
    - sh
    - -c
    - sleep 300.{marker} & setsid sleep 300.{marker} & sleep 300.{marker}
  exit:
    command: [sh, -c, 'exit "$1"', exit, $code]
    arguments: [{{name: code, datatype: Int}}]
  killed:
    command: [sh, -c, 'kill -$1 $$', killed, $signal]
    arguments: [{{name: signal, datatype: String}}]
  long:
    command: [sleep, "30"]
  slow_exit:
    command: [sh, -c, 'echo before; sleep 1; exit 6']
  stubborn:
    command: [sh, -c, 'trap "" TERM; echo ready; while :; do sleep 0.2; done']
  echo:
    command: [printf, '%s', $text]
    arguments: [{{name: text, datatype: String}}]
  hungry:
    command: [python3, -c, 'b = bytearray(300 * 1024 * 1024); print("allocated")']
    systemd_properties: {{LimitAS: 150M, MemoryMax: 150M}}
  roomy:
    command: [python3, -c, 'b = bytearray(300 * 1024 * 1024); print("allocated")']
    systemd_properties: {{LimitAS: 2G, MemoryMax: 2G}}
  limited:
    command: [sleep, "30"]
    systemd_properties: {{MemoryMax: 50M, CPUQuota: 20%, LimitNOFILE: 64}}
  placed:
    command: [sh, -c, 'pwd; echo "$GREETING|$TARU_USER"']
    working_directory: /usr
    environment: {{GREETING: hi}}
  ticking:
    command:
    - sh
    - -c
    - i=0; while [ $i -lt 600 ]; do echo tick $i; i=$((i+1)); sleep 0.1; done
"""


def config(marker: str = "0") -> str:
    return CONFIG.format(marker=marker)


def sleeping(marker: str) -> list[int]:
    """
    Processes anywhere on the machine running C{sleep 300.MARKER}.
    """
    wanted = [b"sleep", b"300." + marker.encode()]
    return [pid for pid, arguments in command_lines() if arguments == wanted]


async def request(client, method: str, url: str) -> tuple[int, str]:
    response = await client.request(method, url)
    return response.code, (await response.text("utf-8"))


async def task_state(client, taru: Taru, task: str) -> tuple[str, int | None]:
    listing = json.loads((await request(client, "GET", taru.url("/api/v1/tasks")))[1])
    return listing[task]["state"], listing[task]["exit_code"]


class SystemdRunnerTests(TestCase):
    """
    Tasks run as units of the real user manager in the sandbox.
    """

    runner = "systemd"

    async def test_stop_ends_the_whole_control_group(self) -> None:
        """
        Stopping a task ends everything it started, even a child that left
        its process group with setsid.
        """
        marker = str(os.getpid())
        taru = await Taru(self, config(marker)).start()
        client = http_client(self)
        started = await request(client, "POST", taru.url("/api/v1/task/tree"))
        self.assertEqual(started[0], 200, started)
        self.assertTrue(await wait_for(lambda: len(sleeping(marker)) == 3, 10))

        stopped = await request(client, "POST", taru.url("/api/v1/task/tree/stop"))
        status = await request(client, "GET", taru.url("/api/v1/task/tree/status"))

        self.assertEqual((stopped[0], status), (200, (200, "null")))
        self.assertTrue(await wait_for(lambda: not sleeping(marker), 10))

    async def test_stop_kills_what_ignores_sigterm(self) -> None:
        """
        A task that ignores SIGTERM is killed once the five seconds of grace
        are over, as with the direct runner, not after systemd's own 90.
        """
        taru = await Taru(self, config()).start()
        client = http_client(self)
        await request(client, "POST", taru.url("/api/v1/task/stubborn"))
        await sleep(0.5)
        stopped_at = time.monotonic()

        await request(client, "POST", taru.url("/api/v1/task/stubborn/stop"))
        status = await request(client, "GET", taru.url("/api/v1/task/stubborn/status"))

        self.assertEqual(status, (200, "null"))
        self.assertLess(time.monotonic() - stopped_at, 15)

    async def test_exact_exit_statuses(self) -> None:
        """
        Exit codes 0, 1, 3 and 255 are reported as they are, and a run killed
        by TERM, by KILL or by a stop has no exit code, where systemd-run's
        own exit status would have said 0 or 255.
        """
        taru = await Taru(self, config()).start()
        client = http_client(self)
        _, events = await open_events(self, client, taru.url("/events"))
        results = {}

        for code in (0, 1, 3, 255):
            results[str(code)] = await request(
                client, "POST", taru.url(f"/api/v1/task/exit/status?code={code}")
            )
        for name in ("TERM", "KILL"):
            results[name] = await request(
                client, "POST", taru.url(f"/api/v1/task/killed/status?signal={name}")
            )
        await request(client, "POST", taru.url("/api/v1/task/long"))
        await request(client, "POST", taru.url("/api/v1/task/long/stop"))
        results["stop"] = await request(
            client, "GET", taru.url("/api/v1/task/long/status")
        )
        ends = await events.messages_until(
            lambda message: message == ["long", {"ExitStatus": None}]
        )

        self.assertEqual(
            results,
            {
                "0": (200, "0"),
                "1": (200, "1"),
                "3": (200, "3"),
                "255": (200, "255"),
                "TERM": (200, "null"),
                "KILL": (200, "null"),
                "stop": (200, "null"),
            },
        )
        self.assertEqual(
            [message[1]["ExitStatus"] for message in ends if is_exit_status(message)],
            [0, 1, 3, 255, None, None, None],
        )

    async def test_failed_run_then_a_good_one(self) -> None:
        """
        A run that failed does not keep its unit from running again.
        """
        taru = await Taru(self, config()).start()
        client = http_client(self)

        failed = await request(
            client, "POST", taru.url("/api/v1/task/exit/status?code=1")
        )
        good = await request(
            client, "POST", taru.url("/api/v1/task/exit/status?code=0")
        )

        self.assertEqual((failed, good), ((200, "1"), (200, "0")))

    async def test_dollars_reach_the_task(self) -> None:
        """
        A C{$} in an argument value reaches the task as it was sent, though
        systemd expands C{$VAR} in command lines.
        """
        taru = await Taru(self, config()).start()
        client = http_client(self)
        value = "$HOME $$ ${PATH} $1 %n \\x41"

        response = await client.post(
            taru.url("/api/v1/task/echo/output"), data={"text": value}
        )
        body = await response.content()

        self.assertEqual(body.decode("utf-8"), value)

    async def test_systemd_refuses_a_second_instance(self) -> None:
        """
        Two Tarus sharing one user manager: of simultaneous starts of the same
        task, exactly one succeeds, and the other Taru shows the task running
        until it ends.
        """
        first = await Taru(self, config()).start()
        second = await Taru(self, config()).start()
        client = http_client(self)

        answers = await _gather(
            request(client, "POST", first.url("/api/v1/task/long")),
            request(client, "POST", second.url("/api/v1/task/long")),
        )
        states = [
            await task_state(client, first, "long"),
            await task_state(client, second, "long"),
        ]

        self.assertEqual(sorted(code for code, _ in answers), [200, 405])
        self.assertEqual(states, [("running", None), ("running", None)])

    async def test_memory_limit_enforced(self) -> None:
        """
        A task whose memory limit (C{LimitAS}, which systemd sets for the
        unit's processes) is below what it takes fails to get the memory; the
        same program with room enough runs to its end.
        """
        taru = await Taru(self, config()).start()
        client = http_client(self)

        starved = await request(client, "POST", taru.url("/api/v1/task/hungry/output"))
        starved_state = await task_state(client, taru, "hungry")
        fed = await request(client, "POST", taru.url("/api/v1/task/roomy/output"))
        fed_state = await task_state(client, taru, "roomy")

        self.assertIn("MemoryError", starved[1])
        self.assertNotIn("allocated", starved[1])
        self.assertEqual(starved_state, ("finished", 1))
        self.assertEqual((fed, fed_state), ((200, "allocated\n"), ("finished", 0)))

    async def test_properties_reach_the_unit(self) -> None:
        """
        A task's unit properties are the unit's, as systemd reports them.
        """
        taru = await Taru(self, config()).start()
        client = http_client(self)
        await request(client, "POST", taru.url("/api/v1/task/limited"))
        self.addCleanup(client.post, taru.url("/api/v1/task/limited/stop"))

        shown = systemd_sandbox().run(
            "systemctl",
            "--user",
            "show",
            unit_name("limited"),
            "--property=MemoryMax,CPUQuotaPerSecUSec,LimitNOFILE",
        )

        self.assertEqual(
            sorted(shown.stdout.split()),
            ["CPUQuotaPerSecUSec=200ms", "LimitNOFILE=64", "MemoryMax=52428800"],
            shown.stderr,
        )

    async def test_working_directory_and_environment(self) -> None:
        """
        The unit runs in the task's working directory with its variables.
        """
        taru = await Taru(self, config()).start()
        client = http_client(self)

        output = await request(client, "POST", taru.url("/api/v1/task/placed/output"))

        self.assertEqual(output, (200, "/usr\nhi|\n"))

    async def test_restart_while_running(self) -> None:
        """
        Killed and started again while a task runs, Taru shows the task as
        running, refuses to start it again, reads its output on without
        losing what the task wrote meanwhile, can stop it, and reports its
        end.
        """
        first = await Taru(self, config()).start()
        client = http_client(self)
        await request(client, "POST", first.url("/api/v1/task/ticking"))
        await sleep(0.5)
        first.signal(signal.SIGKILL)
        await first.ended()

        second = await first.successor().start()
        _, events = await open_events(self, client, second.url("/events"))
        state = await task_state(client, second, "ticking")
        refused = await request(client, "POST", second.url("/api/v1/task/ticking"))
        await sleep(0.5)
        stopped = await request(client, "POST", second.url("/api/v1/task/ticking/stop"))
        ended = await events.messages_until(is_exit_status)
        response = await client.get(second.url("/api/v1/task/ticking/output"))
        output = await response.content()

        self.assertEqual(state, ("running", None))
        self.assertEqual(refused[0], 405)
        self.assertEqual(stopped[0], 200)
        self.assertEqual(ended[-1], ["ticking", {"ExitStatus": None}])
        self.assertEqual(
            await task_state(client, second, "ticking"), ("finished", None)
        )
        # Every line, those written while no Taru ran too, in order.
        lines = output.splitlines()
        self.assertEqual(lines, [b"tick %d" % i for i in range(len(lines))])
        self.assertGreaterEqual(len(lines), 10, output)

    async def test_run_that_ended_while_taru_was_down(self) -> None:
        """
        A unit that ends while no Taru runs is reported by the next Taru:
        finished, with its exit code and its output.
        """
        first = await Taru(self, config()).start()
        client = http_client(self)
        await request(client, "POST", first.url("/api/v1/task/slow_exit"))
        await sleep(0.5)  # what it writes while no Taru reads is lost
        first.signal(signal.SIGKILL)
        await first.ended()
        await sleep(2)

        second = await first.successor().start()
        state = await task_state(client, second, "slow_exit")
        output = await request(
            client, "GET", second.url("/api/v1/task/slow_exit/output")
        )

        self.assertEqual(state, ("finished", 6))
        self.assertEqual(output, (200, "before\n"))


async def _gather(*requests):
    from twisted.internet.defer import Deferred, gatherResults

    return await gatherResults([Deferred.fromCoroutine(each) for each in requests])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SocketActivationTests(TestCase):
    """
    The shipped C{taru.socket} and C{taru.service} start Taru on the first
    connection.
    """

    def setUp(self) -> None:
        self.sandbox = systemd_sandbox()
        units = os.path.join(project_directory(), "contrib", "systemd")
        self.socket_unit = os.path.join(units, "taru.socket")
        self.service_unit = os.path.join(units, "taru.service")
        self.addCleanup(self.stop_units)

    def inside(self, *argv: str) -> str:
        done = self.sandbox.run(*argv)
        self.assertEqual(done.returncode, 0, f"{argv}: {done.stdout}{done.stderr}")
        return done.stdout

    def stop_units(self) -> None:
        self.sandbox.run("systemctl", "stop", "taru.socket", "taru.service")

    def install_command(self) -> None:
        """
        Put the project's C{taru} where the shipped service expects it, on a
        tmpfs that hides the host's C{/usr/local/bin} inside the sandbox only.
        """
        if "taru" not in self.inside("ls", "/usr/local/bin"):
            self.inside("mount", "-t", "tmpfs", "taru-bin", "/usr/local/bin")
            taru = os.path.join(project_directory(), ".venv", "bin", "taru")
            self.inside("ln", "-s", taru, "/usr/local/bin/taru")

    def test_units_verify(self) -> None:
        """
        C{systemd-analyze verify} finds nothing wrong with the shipped units.
        """
        self.install_command()

        done = self.sandbox.run(
            "systemd-analyze", "verify", self.socket_unit, self.service_unit
        )

        self.assertEqual((done.returncode, done.stderr), (0, ""))

    async def test_activated_on_first_connection(self) -> None:
        """
        With the shipped units installed, Taru is not running until a client
        connects; then it starts on the socket systemd passes and answers.
        """
        self.install_command()
        port = _free_port()
        self.inside("mkdir", "-p", "/etc/taru", "/etc/systemd/system/taru.socket.d")
        self.inside("cp", self.socket_unit, self.service_unit, "/etc/systemd/system/")
        self.inside(
            "sh",
            "-c",
            "printf 'tasks:\\n  hello: {command: [echo, hello]}\\n'"
            " > /etc/taru/taru.yml",
        )
        self.inside(
            "sh",
            "-c",
            "printf '[Socket]\\nListenStream=\\nListenStream=127.0.0.1:%s\\n'"
            f" {port} > /etc/systemd/system/taru.socket.d/port.conf",
        )
        self.inside("systemctl", "daemon-reload")
        self.inside("systemctl", "start", "taru.socket")
        before = self.sandbox.run("systemctl", "is-active", "taru.service").stdout

        client = http_client(self)
        response = await client.post(
            f"http://127.0.0.1:{port}/api/v1/task/hello/output"
        )
        body = await response.content()

        self.assertEqual(before.strip(), "inactive")
        self.assertEqual((response.code, body), (200, b"hello\n"))
        self.assertEqual(
            self.inside("systemctl", "is-active", "taru.service").strip(), "active"
        )


class SandboxTests(TestCase):
    """
    The sandbox that the tests boot systemd in leaves the host alone.
    """

    def test_host_untouched(self) -> None:
        """
        What is written inside to C{/tmp}, C{/var/tmp}, C{/etc}, C{/var} and
        C{/root} never reaches the host, and the host's C{/tmp} is not
        emptied by the boot.
        """
        systemd_sandbox()  # skips where no sandbox can boot
        marker = f"taru-sandbox-check-{os.getpid()}-{time.monotonic_ns()}"
        host_marker = os.path.join("/tmp", marker)
        with open(host_marker, "w") as marker_file:
            marker_file.write("host")
        self.addCleanup(os.unlink, host_marker)
        etc_before = sorted(os.listdir("/etc"))
        var_before = sorted(os.listdir("/var"))
        probes = [
            os.path.join(folder, marker + "-inside")
            for folder in ("/tmp", "/var/tmp", "/etc", "/var", "/root")
        ]

        sandbox = Sandbox.boot([os.path.abspath(os.getcwd())])
        try:
            seen = sandbox.run("sh", "-c", f"ls /tmp; touch {' '.join(probes)}")
        finally:
            sandbox.shutdown()

        self.assertNotIn(marker, seen.stdout)
        self.assertEqual(seen.returncode, 0, seen.stderr)
        self.assertEqual([probe for probe in probes if os.path.exists(probe)], [])
        with open(host_marker) as marker_file:
            self.assertEqual(marker_file.read(), "host")
        self.assertEqual(sorted(os.listdir("/etc")), etc_before)
        self.assertEqual(sorted(os.listdir("/var")), var_before)
