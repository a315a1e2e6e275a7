"""
What Taru has done and is doing, in Prometheus's text format: runs by task
and outcome, how long they took, clients following output and events now,
output bytes sent to them, and configuration reloads.

Counters are kept as runs end; what is true only now (tasks running,
followers, subscribers, bytes streamed) is read from its source when the
metrics are scraped, so that keeping it costs nothing between scrapes.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, Info
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

import taru
from taru.events import EventBroadcaster
from taru.output import Follower
from taru.tasks import IRunObserver, Run

# The content type of L{Metrics.exposition}.
CONTENT_TYPE = CONTENT_TYPE_LATEST

# How a run ended, as the C{outcome} label says.
SUCCEEDED = "succeeded"
FAILED = "failed"
KILLED = "killed"
TIMED_OUT = "timed_out"
OUTCOMES = (SUCCEEDED, FAILED, KILLED, TIMED_OUT)

# How a reload went, as the C{result} label says.
LOADED = "loaded"
RELOAD_FAILED = "failed"

# Upper bounds of the run duration histogram's buckets, in seconds: from a
# tenth of a second to an hour.
DURATION_BUCKETS = (
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1200.0,
    1800.0,
    3600.0,
)


def outcome_of(run: Run) -> str:
    """
    How an ended run ended: C{timed_out} when it was stopped for running
    past its timeout, C{killed} when a signal ended it otherwise,
    C{succeeded} when it exited with 0, C{failed} when it exited with
    anything else.
    """
    if run.timed_out:
        return TIMED_OUT
    status = run.status
    # A run that ends has a status; without an exit code, a signal ended it.
    if status is None or status.exit_code is None:
        return KILLED
    return SUCCEEDED if status.exit_code == 0 else FAILED


@implementer(IRunObserver)
class Metrics:
    """
    Taru's metrics, in a registry of their own, so that several Taru
    services in one process (as in tests) each count their own.

    Told of runs as an L{IRunObserver}, of output followers by the API, and
    of reloads by the service.

    @ivar registry: the registry the metrics are collected from.
    @ivar runner: the name of the runner that runs the tasks.
    @ivar started_at: when Taru started, in the clock's seconds.
    """

    def __init__(
        self, clock: IReactorTime, events: EventBroadcaster, runner: str
    ) -> None:
        """
        @param clock: gives the time Taru started, for its uptime.
        @param events: the broadcaster whose subscribers are counted.
        @param runner: the name of the runner that runs the tasks.
        """
        self._clock = clock
        self._events = events
        self.runner = runner
        self.started_at = clock.seconds()
        self._running: set[int] = set()
        self._seen_tasks: set[str] = set()
        self._followers: set[Follower] = set()
        self._bytes_of_past_followers = 0

        self.registry = CollectorRegistry()
        info = Info("taru", "The Taru serving, and its runner.", registry=self.registry)
        info.info({"version": taru.__version__, "runner": runner})
        self._runs = Counter(
            "taru_runs",
            "Runs that ended, by task and outcome.",
            ["task", "outcome"],
            registry=self.registry,
        )
        self._durations = Histogram(
            "taru_run_duration_seconds",
            "How long runs ran, from start to end, by task.",
            ["task"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self._reloads = Counter(
            "taru_config_reloads",
            "Configuration reloads, by result: loaded, or failed and the"
            " configuration in force kept.",
            ["result"],
            registry=self.registry,
        )
        for result in (LOADED, RELOAD_FAILED):
            self._reloads.labels(result=result)
        self.registry.register(self)
        ProcessCollector(registry=self.registry)

    def run_started(self, run: Run) -> None:
        """
        Count a run as running; a task's first run makes every outcome's
        series exist, at zero, so that rates start from there.
        """
        self._running.add(run.run_id)
        task = run.task.name
        if task not in self._seen_tasks:
            self._seen_tasks.add(task)
            for outcome in OUTCOMES:
                self._runs.labels(task=task, outcome=outcome)

    def run_ended(self, run: Run) -> None:
        """
        Count a run's outcome and duration.
        """
        self._running.discard(run.run_id)
        task = run.task.name
        self._runs.labels(task=task, outcome=outcome_of(run)).inc()
        ended_at = self._clock.seconds() if run.ended_at is None else run.ended_at
        self._durations.labels(task=task).observe(max(ended_at - run.started_at, 0.0))

    @property
    def running(self) -> int:
        """
        How many runs have started and not ended yet.
        """
        return len(self._running)

    def follower_joined(self, follower: Follower) -> None:
        """
        A client has begun to follow an output through C{follower}.
        """
        self._followers.add(follower)

    def follower_left(self, follower: Follower) -> None:
        """
        A client is done following an output: what it was sent stays
        counted.
        """
        if follower in self._followers:
            self._followers.remove(follower)
            self._bytes_of_past_followers += follower.written

    @property
    def follower_count(self) -> int:
        """
        How many clients follow an output now.
        """
        return len(self._followers)

    @property
    def bytes_streamed(self) -> int:
        """
        How many bytes of output followers have written to clients so far.
        """
        now = sum(follower.written for follower in self._followers)
        return self._bytes_of_past_followers + now

    def config_reloaded(self, loaded: bool) -> None:
        """
        Count a reload of the configuration.

        @param loaded: whether the new configuration is in force.
        """
        self._reloads.labels(result=LOADED if loaded else RELOAD_FAILED).inc()

    def uptime(self) -> float:
        """
        How many seconds have passed since Taru started.
        """
        return max(self._clock.seconds() - self.started_at, 0.0)

    def exposition(self) -> bytes:
        """
        Every metric, in the text format of L{CONTENT_TYPE}.
        """
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        """
        The metrics that are read from their sources at each scrape; the
        registry asks for them.
        """
        yield GaugeMetricFamily(
            "taru_tasks_running", "Runs in progress now.", value=self.running
        )
        yield GaugeMetricFamily(
            "taru_output_followers",
            "Clients following a task's output now.",
            value=self.follower_count,
        )
        yield GaugeMetricFamily(
            "taru_event_subscribers",
            "Clients subscribed to /events now.",
            value=self._events.subscriber_count,
        )
        yield CounterMetricFamily(
            "taru_output_bytes_streamed",
            "Bytes of task output written to clients following it.",
            value=self.bytes_streamed,
        )
