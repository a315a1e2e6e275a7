"""
Tests for L{taru.metrics}: each metric, read back from the text Prometheus
scrapes, with runs made by a fake runner and time kept by a L{Clock}; and
the C{/metrics} and C{/health} routes that serve them.
"""

from __future__ import annotations

import json
import os
import signal

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from taru.api import TaruAPI, TaruRequest
from taru.config import parse_config
from taru.events import EventBroadcaster
from taru.history import History
from taru.metrics import (
    CONTENT_TYPE,
    DURATION_BUCKETS,
    FAILED,
    KILLED,
    SUCCEEDED,
    TIMED_OUT,
    Metrics,
    outcome_of,
)
from taru.output import Follower, Output, Spool
from taru.runners import ExitStatus
from taru.service import TaruService
from taru.tasks import IRunObserver, Run, Tasks
from taru.test.fakes import FakeRunner, FakeRunningTask, result_now
from taru.test.test_api import USERS_CONFIG, APITestCase

CONFIG = """
tasks:
  backup:
    command: [backup]
  report:
    command: [report]
  idle:
    command: [idle]
"""

Labels = tuple[tuple[str, str], ...]


def scrape(metrics: Metrics) -> dict[tuple[str, Labels], float]:
    """
    Every sample of a scrape, parsed back from the text format, by its name
    and labels.
    """
    return parse(metrics.exposition())


def parse(text: bytes) -> dict[tuple[str, Labels], float]:
    """
    Every sample of an exposition, by its name and labels.
    """
    samples = {}
    for family in text_string_to_metric_families(text.decode("utf-8")):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    """
    One sample of a scrape, or L{None} when the scrape has no such sample.
    """
    return scrape(metrics).get((name, tuple(sorted(labels.items()))))


def ended_run(
    exit_code: int | None, signal: int | None = None, timed_out: bool = False
) -> Run:
    """
    A run of a task that ended as given.
    """
    spec = parse_config(CONFIG).tasks["backup"]
    return Run(
        run_id=1,
        task=spec,
        argv=spec.command,
        user=None,
        started_at=0.0,
        output=Output.unbuffered(),
        status=ExitStatus(exit_code, signal),
        ended_at=1.0,
        timed_out=timed_out,
    )


class OutcomeTests(SynchronousTestCase):
    """
    Tests for L{outcome_of}.
    """

    def test_exit_zero(self) -> None:
        """
        A run that exits with 0 succeeded.
        """
        self.assertEqual(outcome_of(ended_run(0)), SUCCEEDED)

    def test_exit_other(self) -> None:
        """
        A run that exits with anything but 0 failed.
        """
        self.assertEqual(outcome_of(ended_run(3)), FAILED)
        self.assertEqual(outcome_of(ended_run(143)), FAILED)

    def test_signal(self) -> None:
        """
        A run that a signal ended was killed.
        """
        self.assertEqual(outcome_of(ended_run(None, signal.SIGTERM)), KILLED)
        self.assertEqual(outcome_of(ended_run(None, signal.SIGKILL)), KILLED)

    def test_timed_out(self) -> None:
        """
        A run stopped for running past its timeout timed out, whatever its
        exit status.
        """
        self.assertEqual(
            outcome_of(ended_run(None, signal.SIGTERM, timed_out=True)), TIMED_OUT
        )
        self.assertEqual(outcome_of(ended_run(0, timed_out=True)), TIMED_OUT)


class MetricsTestCase(SynchronousTestCase):
    """
    Metrics observing the tasks of L{CONFIG}, run by a fake runner.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_000_000)
        self.events = EventBroadcaster(self.clock)
        self.addCleanup(self.events.stop)
        self.metrics = Metrics(self.clock, self.events, runner="fake")
        self.runner = FakeRunner()
        self.tasks = Tasks(
            parse_config(CONFIG),
            self.runner,
            Spool(self.mktemp()),
            self.events,
            self.clock,
            History(self.mktemp()),
            observers=[self.metrics],
        )
        self.addCleanup(self.assert_no_delayed_calls)

    def assert_no_delayed_calls(self) -> None:
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def start(self, task: str) -> FakeRunningTask:
        """
        Start a run of a task.
        """
        result_now(self.tasks.start(task, (task,), None))
        return self.runner.started[-1]


class RunTests(MetricsTestCase):
    """
    Runs, by outcome, and their durations.
    """

    def test_observer(self) -> None:
        """
        L{Metrics} is a run observer.
        """
        self.assertTrue(verifyObject(IRunObserver, self.metrics))

    def test_counted_by_outcome(self) -> None:
        """
        Each run that ends is counted once, under its task and outcome.
        """
        self.start("backup").end(0)
        self.start("backup").end(0)
        self.start("backup").end(3)
        self.start("report").end(None, signal.SIGTERM)
        running = self.start("report")
        run = self.tasks.get("report").current
        assert run is not None
        run.timed_out = True
        running.end(None, signal.SIGTERM)

        samples = scrape(self.metrics)

        counts = {
            labels: count
            for (name, labels), count in samples.items()
            if name == "taru_runs_total"
        }
        self.assertEqual(
            counts,
            {
                (("outcome", "succeeded"), ("task", "backup")): 2.0,
                (("outcome", "failed"), ("task", "backup")): 1.0,
                (("outcome", "killed"), ("task", "backup")): 0.0,
                (("outcome", "timed_out"), ("task", "backup")): 0.0,
                (("outcome", "succeeded"), ("task", "report")): 0.0,
                (("outcome", "failed"), ("task", "report")): 0.0,
                (("outcome", "killed"), ("task", "report")): 1.0,
                (("outcome", "timed_out"), ("task", "report")): 1.0,
            },
        )

    def test_every_outcome_from_the_first_run(self) -> None:
        """
        Once a task has started, every outcome of it has a series, at zero
        until a run ends that way; a task that never ran has none.
        """
        self.start("backup")

        samples = scrape(self.metrics)

        for outcome in (SUCCEEDED, FAILED, KILLED, TIMED_OUT):
            labels = (("outcome", outcome), ("task", "backup"))
            self.assertEqual(samples[("taru_runs_total", labels)], 0.0)
        self.assertFalse(
            [
                labels
                for (name, labels), _ in samples.items()
                if name == "taru_runs_total" and ("task", "idle") in labels
            ]
        )

    def test_duration(self) -> None:
        """
        Each ended run's duration, in the clock's seconds, goes into the
        histogram of its task.
        """
        running = self.start("backup")
        self.clock.advance(2.0)
        running.end(0)
        running = self.start("backup")
        self.clock.advance(90.0)
        running.end(1)

        samples = scrape(self.metrics)

        task = ("task", "backup")
        self.assertEqual(samples[("taru_run_duration_seconds_count", (task,))], 2.0)
        self.assertEqual(samples[("taru_run_duration_seconds_sum", (task,))], 92.0)
        buckets = {
            float(dict(labels)["le"]): count
            for (name, labels), count in samples.items()
            if name == "taru_run_duration_seconds_bucket"
        }
        self.assertEqual(buckets[1.0], 0.0)
        self.assertEqual(buckets[2.5], 1.0)
        self.assertEqual(buckets[60.0], 1.0)
        self.assertEqual(buckets[120.0], 2.0)
        self.assertEqual(buckets[float("inf")], 2.0)

    def test_buckets(self) -> None:
        """
        The duration buckets run from a tenth of a second to an hour.
        """
        self.assertEqual((DURATION_BUCKETS[0], DURATION_BUCKETS[-1]), (0.1, 3600.0))
        self.assertEqual(list(DURATION_BUCKETS), sorted(set(DURATION_BUCKETS)))

    def test_running(self) -> None:
        """
        The tasks running gauge counts the runs that have started and not
        ended, as of the scrape.
        """
        before = value(self.metrics, "taru_tasks_running")
        backup = self.start("backup")
        report = self.start("report")
        both = value(self.metrics, "taru_tasks_running")
        backup.end(0)
        one = value(self.metrics, "taru_tasks_running")
        report.end(None, signal.SIGKILL)

        after = value(self.metrics, "taru_tasks_running")

        self.assertEqual((before, both, one, after), (0.0, 2.0, 1.0, 0.0))

    def test_running_task_removed_by_reload(self) -> None:
        """
        A run goes on counting as running when a reload removes its task,
        until it ends.
        """
        running = self.start("backup")
        self.tasks.reconfigure(parse_config("tasks: {report: {command: [r]}}"))
        during = value(self.metrics, "taru_tasks_running")

        running.end(0)

        self.assertEqual(during, 1.0)
        self.assertEqual(value(self.metrics, "taru_tasks_running"), 0.0)
        self.assertEqual(
            value(self.metrics, "taru_runs_total", task="backup", outcome="succeeded"),
            1.0,
        )


class FollowerTests(SynchronousTestCase):
    """
    Clients following output, and the bytes sent to them.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.events = EventBroadcaster(self.clock)
        self.metrics = Metrics(self.clock, self.events, runner="fake")
        self.output = Output.unbuffered()

    def follow(self) -> tuple[Follower, StringTransport]:
        """
        Follow the output as the API does, and tell the metrics.
        """
        consumer = StringTransport()
        follower = self.output.follow(consumer, False)
        consumer.registerProducer(follower, True)
        self.metrics.follower_joined(follower)
        follower.pump()
        return follower, consumer

    def test_followers(self) -> None:
        """
        The followers gauge counts the clients following output now.
        """
        first, _ = self.follow()
        second, _ = self.follow()
        both = value(self.metrics, "taru_output_followers")
        first.stop()
        self.metrics.follower_left(first)
        one = value(self.metrics, "taru_output_followers")
        second.stop()
        self.metrics.follower_left(second)

        none = value(self.metrics, "taru_output_followers")

        self.assertEqual((both, one, none), (2.0, 1.0, 0.0))

    def test_bytes_streamed(self) -> None:
        """
        The bytes streamed counter is the sum of what every follower wrote to
        its client, while it follows and after it left.
        """
        first, first_client = self.follow()
        self.output.append(b"one\n")
        second, second_client = self.follow()
        self.output.append(b"\x00two\n")
        while_following = value(self.metrics, "taru_output_bytes_streamed_total")
        first.stop()
        self.metrics.follower_left(first)
        self.output.append(b"three\n")
        self.output.close()
        self.metrics.follower_left(second)

        after = value(self.metrics, "taru_output_bytes_streamed_total")

        self.assertEqual(while_following, len(b"one\n\x00two\n\x00two\n"))
        received = first_client.value() + second_client.value()
        self.assertEqual(received, b"one\n\x00two\n\x00two\nthree\n")
        self.assertEqual(after, len(received))

    def test_left_twice(self) -> None:
        """
        A follower that is said to have left twice is counted once.
        """
        follower, _ = self.follow()
        self.output.append(b"once\n")
        follower.stop()

        self.metrics.follower_left(follower)
        self.metrics.follower_left(follower)

        self.assertEqual(value(self.metrics, "taru_output_followers"), 0.0)
        self.assertEqual(
            value(self.metrics, "taru_output_bytes_streamed_total"), len(b"once\n")
        )


class SubscriberTests(SynchronousTestCase):
    """
    Clients subscribed to events.
    """

    def test_subscribers(self) -> None:
        """
        The subscribers gauge counts the clients subscribed now.
        """
        clock = Clock()
        events = EventBroadcaster(clock)
        self.addCleanup(events.stop)
        metrics = Metrics(clock, events, runner="fake")
        before = value(metrics, "taru_event_subscribers")
        first = events.subscribe(StringTransport(), lambda task: True)
        events.subscribe(StringTransport(), lambda task: True)
        both = value(metrics, "taru_event_subscribers")

        first.stopProducing()

        self.assertEqual(
            (before, both, value(metrics, "taru_event_subscribers")), (0.0, 2.0, 1.0)
        )


class OtherMetricTests(SynchronousTestCase):
    """
    Reloads, what Taru is, its process, and the registry.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.events = EventBroadcaster(self.clock)
        self.metrics = Metrics(self.clock, self.events, runner="systemd")

    def test_reloads(self) -> None:
        """
        Reloads are counted by result, both from zero.
        """
        before = scrape(self.metrics)
        self.metrics.config_reloaded(True)
        self.metrics.config_reloaded(True)
        self.metrics.config_reloaded(False)

        after = scrape(self.metrics)

        loaded = ("taru_config_reloads_total", (("result", "loaded"),))
        failed = ("taru_config_reloads_total", (("result", "failed"),))
        self.assertEqual((before[loaded], before[failed]), (0.0, 0.0))
        self.assertEqual((after[loaded], after[failed]), (2.0, 1.0))

    def test_info(self) -> None:
        """
        An info metric names Taru's version and runner.
        """
        import taru

        labels = (("runner", "systemd"), ("version", taru.__version__))

        self.assertEqual(scrape(self.metrics)[("taru_info", labels)], 1.0)

    def test_process(self) -> None:
        """
        The process's own metrics are there, such as its open files.
        """
        self.assertGreater(value(self.metrics, "process_open_fds") or 0, 0)

    def test_own_registry(self) -> None:
        """
        Each L{Metrics} counts in a registry of its own, not the library's
        global one, so that two never mix.
        """
        other = Metrics(self.clock, self.events, runner="direct")

        self.metrics.config_reloaded(True)

        self.assertEqual(
            value(other, "taru_config_reloads_total", result="loaded"), 0.0
        )
        self.assertIsNone(
            REGISTRY.get_sample_value("taru_config_reloads_total", {"result": "loaded"})
        )

    def test_uptime(self) -> None:
        """
        Uptime is the clock's seconds since the metrics were made.
        """
        self.clock.advance(12.5)

        self.assertEqual(self.metrics.uptime(), 12.5)


class RouteTests(APITestCase):
    """
    Tests for C{GET /metrics} and C{GET /health}, with the API's tasks
    observed by its metrics.
    """

    config_text = USERS_CONFIG

    def setUp(self) -> None:
        super().setUp()
        self.clock.advance(1_000_000)
        self.metrics = Metrics(self.clock, self.events, runner="fake")
        self.tasks = Tasks(
            parse_config(self.config_text),
            self.runner,
            Spool(self.mktemp()),
            self.events,
            self.clock,
            History(self.mktemp()),
            observers=[self.metrics],
        )
        self.api = TaruAPI(self.tasks, self.events, None, self.clock, self.metrics)
        self.stub = StubTreq(self.api.app.resource())
        self.stub._agent._serverFactory.requestFactory = TaruRequest

    def test_metrics(self) -> None:
        """
        C{/metrics} answers with the text format, without a user though
        users are configured, and is not cached.
        """
        self.assertEqual(self.post("/api/v1/task/echo", "operator").code, 200)
        self.started().end(0)

        response = self.get("/metrics")
        body = self.body(response)

        self.assertEqual(response.code, 200)
        self.assertEqual(self.header(response, "content-type"), CONTENT_TYPE)
        self.assertEqual(self.header(response, "cache-control"), "no-store")
        self.assertEqual(
            parse(body)[
                ("taru_runs_total", (("outcome", "succeeded"), ("task", "echo")))
            ],
            1.0,
        )

    def test_head(self) -> None:
        """
        C{HEAD} works on both, without a body.
        """
        for path in ("/metrics", "/health"):
            response = self.successResultOf(self.request("HEAD", path))
            self.assertEqual((path, response.code), (path, 200))
            self.assertEqual(self.body(response), b"")

    def test_other_methods(self) -> None:
        """
        Both take only C{GET} (and C{HEAD}): a C{POST} gets 405 saying so.
        """
        for path in ("/metrics", "/health"):
            response = self.post(path)
            self.error_text(response, 405)
            self.assertEqual(self.header(response, "allow"), "GET")

    def test_health(self) -> None:
        """
        C{/health} answers, without a user, with Taru's runner, how many tasks
        it has and how many run, and its uptime.
        """
        self.clock.advance(42.25)
        self.assertEqual(self.post("/api/v1/task/echo", "operator").code, 200)

        response = self.get("/health")
        report = json.loads(self.body(response))

        self.assertEqual(response.code, 200)
        self.assertEqual(self.header(response, "content-type"), "application/json")
        self.assertEqual(self.header(response, "cache-control"), "no-store")
        self.assertEqual(
            report,
            {
                "status": "ok",
                "runner": "fake",
                "tasks": 2,
                "running": 1,
                "uptime_seconds": 42.25,
            },
        )
        self.started().end(0)

    def test_followers_through_the_api(self) -> None:
        """
        A client following output counts as a follower while it follows,
        and the bytes it received count as streamed.
        """
        response = self.post("/api/v1/task/echo/output", "operator")
        chunks, ended = self.follow(response)
        running = self.started()
        running.write(b"some output\n")
        self.stub.flush()
        following = value(self.metrics, "taru_output_followers")
        running.write(b"\xffmore")
        running.end(0)
        self.stub.flush()
        self.successResultOf(ended)

        samples = scrape(self.metrics)

        self.assertEqual(following, 1.0)
        self.assertEqual(samples[("taru_output_followers", ())], 0.0)
        self.assertEqual(b"".join(chunks), b"some output\n\xffmore")
        self.assertEqual(
            samples[("taru_output_bytes_streamed_total", ())],
            len(b"some output\n\xffmore"),
        )

    def test_own_metrics_by_default(self) -> None:
        """
        An API given no metrics serves metrics of its own.
        """
        api = TaruAPI(self.tasks, self.events, None, self.clock)

        self.assertIn(b"taru_output_followers", api.metrics.exposition())
        self.assertEqual(api.metrics.runner, "unknown")


class ServiceTests(SynchronousTestCase):
    """
    The service's metrics observe its tasks, are served by its API, and
    count its reloads.
    """

    def setUp(self) -> None:
        self.config_path = self.mktemp()
        with open(self.config_path, "w") as config_file:
            config_file.write(CONFIG)
        self.clock = Clock()
        self.runner = FakeRunner()
        self.taru = TaruService(
            config_path=self.config_path,
            config=parse_config(CONFIG),
            runner=self.runner,
            state_directory=self.mktemp(),
            public=None,
            endpoints=[],
            reactor=self.clock,
        )
        self.addCleanup(self.taru.events.stop)

    def test_wired(self) -> None:
        """
        Runs of the service's tasks are counted in the metrics its API
        serves, which name its runner.
        """
        result_now(self.taru.tasks.start("backup", ("backup",), None))
        self.runner.started[0].end(3)

        self.assertIs(self.taru.api.metrics, self.taru.metrics)
        self.assertEqual(self.taru.metrics.runner, "fake")
        self.assertEqual(
            value(
                self.taru.metrics, "taru_runs_total", task="backup", outcome="failed"
            ),
            1.0,
        )

    def test_reloads(self) -> None:
        """
        A reload that puts a configuration in force counts as loaded, one
        that keeps the old one as failed.
        """
        self.taru.reload()
        os.remove(self.config_path)
        self.taru.reload()
        self.taru.reload()

        self.assertEqual(
            value(self.taru.metrics, "taru_config_reloads_total", result="loaded"), 1.0
        )
        self.assertEqual(
            value(self.taru.metrics, "taru_config_reloads_total", result="failed"), 2.0
        )
