"""
The metrics and health endpoints of a real Taru: counters exact after real
runs, gauges that follow real clients, and bytes streamed equal to the bytes
clients received.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from signal import SIGHUP

from prometheus_client.parser import text_string_to_metric_families
from treq.client import HTTPClient
from twisted.trial.unittest import TestCase
from twisted.web.http_headers import Headers

from taru.test.integration.harness import (
    Chunks,
    Taru,
    follow,
    http_client,
    kill_processes_with,
    now,
    open_events,
    sleep_marker,
    start_and_follow,
)
from taru.test.integration.test_api import request, until, within

Labels = tuple[tuple[str, str], ...]

RUNS_CONFIG = """
    tasks:
      succeed:
        command: [sh, -c, "echo fine"]
      fail:
        command: [sh, -c, "echo bad; exit 3"]
      long:
        command: [sleep, "{marker}"]
"""

# The task writes a line, waits (at most 20 seconds) until the test creates
# the gate file, then writes 200,000 bytes and a last line.
GATED_CONFIG = """
    tasks:
      gated:
        command:
          - sh
          - -c
          - >-
            echo start;
            for i in $(seq 400); do [ -e {gate} ] && break; sleep 0.05; done;
            head -c 200000 /dev/zero | tr '\\0' x; echo; echo end
"""

USERS_CONFIG = """
    tasks:
      private:
        command: [sh, -c, "exit 0"]
      other:
        command: [sh, -c, "exit 0"]
    users:
      admin:
        can_run: [private]
        can_view_status: [private]
        can_view_output: [private]
"""


async def scrape(client: HTTPClient, taru: Taru) -> dict[tuple[str, Labels], float]:
    """
    Every sample of a scrape of C{/metrics}, by its name and labels.
    """
    code, body = await request(client, "GET", taru.url("/metrics"))
    assert code == 200, (code, body)
    samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


async def sample(client: HTTPClient, taru: Taru, name: str, **labels: str) -> float:
    """
    One sample of a scrape of C{/metrics}.
    """
    return (await scrape(client, taru))[(name, tuple(sorted(labels.items())))]


class RunTests(TestCase):
    """
    Runs are counted by task and outcome, exactly, and health counts those
    running; with tasks run as child processes.
    """

    timeout = 60
    runner = "direct"

    async def test_counted_by_outcome(self) -> None:
        """
        After runs that exit with 0, exit with 3, and are stopped, each is
        counted once under its outcome and no other, and its duration is
        in the histogram of its task.
        """
        marker = sleep_marker()
        self.addCleanup(kill_processes_with, marker)
        taru = await Taru(self, RUNS_CONFIG.format(marker=marker)).start()
        client = http_client(self)

        statuses = [
            await request(client, "POST", taru.url(f"/api/v1/task/{task}/status"))
            for task in ("succeed", "succeed", "fail")
        ]
        await request(client, "POST", taru.url("/api/v1/task/long"))
        while_long_runs = await sample(client, taru, "taru_tasks_running")
        await request(client, "POST", taru.url("/api/v1/task/long/stop"))
        statuses.append(
            await request(client, "GET", taru.url("/api/v1/task/long/status"))
        )
        samples = await scrape(client, taru)

        runs = {
            dict(labels)["task"] + " " + dict(labels)["outcome"]: count
            for (name, labels), count in samples.items()
            if name == "taru_runs_total" and count
        }
        self.assertEqual(statuses, [(200, "0"), (200, "0"), (200, "3"), (200, "null")])
        self.assertEqual(
            runs, {"succeed succeeded": 2.0, "fail failed": 1.0, "long killed": 1.0}
        )
        outcomes = {"succeeded", "failed", "killed", "timed_out"}
        for task in ("succeed", "fail", "long"):
            series = {
                dict(labels)["outcome"]
                for (name, labels), _ in samples.items()
                if name == "taru_runs_total" and ("task", task) in labels
            }
            self.assertEqual(series, outcomes)
        durations = {
            dict(labels)["task"]: count
            for (name, labels), count in samples.items()
            if name == "taru_run_duration_seconds_count"
        }
        self.assertEqual(durations, {"succeed": 2.0, "fail": 1.0, "long": 1.0})
        self.assertEqual(while_long_runs, 1.0)
        self.assertEqual(samples[("taru_tasks_running", ())], 0.0)

    async def test_health(self) -> None:
        """
        Health names the runner, counts the tasks and those running, and
        gives the seconds since Taru started.
        """
        marker = sleep_marker()
        self.addCleanup(kill_processes_with, marker)
        before_start = now()
        taru = await Taru(self, RUNS_CONFIG.format(marker=marker)).start()
        client = http_client(self)
        await request(client, "POST", taru.url("/api/v1/task/long"))

        code, body = await request(client, "GET", taru.url("/health"))
        since_start = now() - before_start
        await request(client, "POST", taru.url("/api/v1/task/long/stop"))
        await request(client, "GET", taru.url("/api/v1/task/long/status"))

        self.assertEqual(code, 200)
        report = json.loads(body)
        uptime = report.pop("uptime_seconds")
        self.assertEqual(
            report,
            {"status": "ok", "runner": self.runner, "tasks": 3, "running": 1},
        )
        self.assertTrue(0 < uptime <= since_start, (uptime, since_start))


class SystemdRunTests(RunTests):
    """
    The same, with tasks run as units of a real systemd.
    """

    runner = "systemd"


class ClientTests(TestCase):
    """
    Followers and subscribers are counted while they are connected, and the
    bytes clients receive are counted as streamed.
    """

    timeout = 60

    async def test_followers_subscribers_and_bytes(self) -> None:
        """
        While clients follow a run's output and others are subscribed to
        events, each is counted; once they are gone none is, and the bytes
        streamed are the bytes the followers received, whether they followed
        from the first byte or from a later one, to the end or not.
        """
        gate = os.path.abspath(self.mktemp())
        taru = await Taru(self, GATED_CONFIG.format(gate=gate)).start()
        client = http_client(self)
        _, first_stream = await open_events(self, client, taru.url("/events"))
        _, second_stream = await open_events(self, client, taru.url("/events"))
        starter = await start_and_follow(client, taru, "gated")
        await until(self.received(starter, b"start\n"))
        readers = [await follow(client, taru, "gated") for _ in range(2)]
        late = Chunks(
            await client.get(
                taru.url("/api/v1/task/gated/output"),
                headers=Headers({"Range": ["bytes=3-"]}),
                unbuffered=True,
            )
        )
        for chunks in readers:
            await until(self.received(chunks, b"start\n"))
        await until(self.received(late, b"rt\n"))

        all_following = await scrape(client, taru)
        await within(readers[-1].stop())
        await until(self.counts(client, taru, "taru_output_followers", 3.0))
        with open(gate, "w"):
            pass
        for chunks in [starter, readers[0], late]:
            await within(chunks.done)
        await until(self.counts(client, taru, "taru_output_followers", 0.0))
        streamed = await sample(client, taru, "taru_output_bytes_streamed_total")
        await within(first_stream.close())
        await until(self.counts(client, taru, "taru_event_subscribers", 1.0))
        await within(second_stream.close())
        await until(self.counts(client, taru, "taru_event_subscribers", 0.0))

        self.assertEqual(all_following[("taru_output_followers", ())], 4.0)
        self.assertEqual(all_following[("taru_event_subscribers", ())], 2.0)
        whole = b"start\n" + b"x" * 200_000 + b"\nend\n"
        self.assertEqual(
            [starter.body, readers[0].body, readers[1].body, late.body],
            [whole, whole, b"start\n", whole[3:]],
        )
        received = starter.body + readers[0].body + readers[1].body + late.body
        self.assertEqual(streamed, len(received))

    def received(
        self, chunks: Chunks, expected: bytes
    ) -> Callable[[], Awaitable[bool]]:
        """
        A condition: a follower has received exactly the given bytes.
        """

        async def condition() -> bool:
            return chunks.body == expected

        return condition

    def counts(
        self, client: HTTPClient, taru: Taru, name: str, expected: float
    ) -> Callable[[], Awaitable[bool]]:
        """
        A condition: a scrape gives a metric the expected value.
        """

        async def condition() -> bool:
            return await sample(client, taru, name) == expected

        return condition


class HealthTests(TestCase):
    """
    Neither C{/metrics} nor C{/health} asks for a user.
    """

    timeout = 60

    async def test_no_user_needed(self) -> None:
        """
        With users configured, C{/metrics} and C{/health} answer a request
        that names no user, with C{HEAD} too, while the API refuses it.
        """
        taru = await Taru(self, USERS_CONFIG).start()
        client = http_client(self)

        tasks = await request(client, "GET", taru.url("/api/v1/tasks"))
        metrics = await request(client, "GET", taru.url("/metrics"))
        health = await request(client, "GET", taru.url("/health"))
        heads = [
            await request(client, "HEAD", taru.url(path))
            for path in ("/metrics", "/health")
        ]

        self.assertEqual(tasks[0], 401)
        self.assertEqual(metrics[0], 200)
        self.assertIn("\ntaru_tasks_running 0.0\n", metrics[1])
        self.assertEqual((health[0], json.loads(health[1])["tasks"]), (200, 2))
        self.assertEqual(heads, [(200, ""), (200, "")])


class ReloadTests(TestCase):
    """
    Reloads on SIGHUP are counted.
    """

    timeout = 60

    async def test_reloads(self) -> None:
        """
        A reload that loads counts as loaded, one of a broken file as failed.
        """
        taru = await Taru(self, USERS_CONFIG).start()
        client = http_client(self)

        taru.signal(SIGHUP)
        await until(self.reloads(client, taru, loaded=1.0, failed=0.0))
        taru.write_config("tasks: {broken: {command: []}}\n")
        taru.signal(SIGHUP)

        await until(self.reloads(client, taru, loaded=1.0, failed=1.0))

    def reloads(
        self, client: HTTPClient, taru: Taru, loaded: float, failed: float
    ) -> Callable[[], Awaitable[bool]]:
        """
        A condition: the reloads counted so far are as given.
        """

        async def condition() -> bool:
            samples = await scrape(client, taru)
            name = "taru_config_reloads_total"
            return (
                samples[(name, (("result", "loaded"),))],
                samples[(name, (("result", "failed"),))],
            ) == (loaded, failed)

        return condition
