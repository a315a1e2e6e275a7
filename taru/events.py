"""
Status events for every client, as server-sent events.

Each message is one JSON value on one C{data:} line: C{["task", "Started"]},
C{["task", {"ExitStatus": 3}]} (C{null} when a signal ended the run), and,
concerning no single task, C{[null, "UpdateConfig"]} after a reload and
C{[null, "Ping"]} every C{heartbeat} seconds when one is configured.

Every event but C{Ping} has an C{id}: this Taru's epoch and the event's
number. A client that reconnects with C{Last-Event-ID} is sent the events it
missed, from a bounded history, or C{[null, "Resync"]} when they cannot all
be had (too old, or from an earlier Taru): it should fetch the task list
again.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IConsumer, IPushProducer, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import Interface, implementer

# How many bytes of events a subscriber that is not reading may have waiting
# before it is dropped.
SUBSCRIBER_BACKLOG_LIMIT = 256 * 1024

# How many of the latest events are kept for clients that reconnect.
HISTORY_LIMIT = 1000

# The event that tells a reconnecting client it missed events it cannot be
# sent: it should fetch the task list again.
RESYNC = "Resync"

_EVENT_ID = re.compile(r"([0-9a-z]{1,16})-([0-9]{1,18})")

# Sent first on every stream: tells the browser how soon to reconnect, and
# gets the response through any buffering proxy at once.
STREAM_PREAMBLE = b"retry: 2000\n\n"


class IEventSink(Interface):
    """
    Takes the events Taru publishes.
    """

    def publish(task: str | None, event: object) -> None:
        """
        Publish an event.

        @param task: the task it concerns, or L{None} for one about Taru as a
            whole.
        @param event: the event, a JSON-serialisable value.
        """


class SubscriberTooSlow(Exception):
    """
    A subscriber did not read its events and fell too far behind.
    """


def sse_message(task: str | None, event: object, event_id: str | None = None) -> bytes:
    """
    Frame one event as a server-sent event message, with an C{id} when
    given.
    """
    payload = json.dumps([task, event], separators=(",", ":"), ensure_ascii=False)
    data = b"data: " + payload.encode("utf-8") + b"\n\n"
    if event_id is None:
        return data
    return b"id: " + event_id.encode("ascii") + b"\n" + data


@implementer(IPushProducer)
class Subscriber:
    """
    One client's event stream.

    @ivar done: fires when the stream ends: with L{None} when the broadcaster
        stops or the client goes, with a L{SubscriberTooSlow} failure when the
        client fell behind.
    """

    def __init__(
        self,
        broadcaster: EventBroadcaster,
        consumer: IConsumer,
        may_view: Callable[[str], bool],
    ) -> None:
        self._broadcaster = broadcaster
        self._consumer = consumer
        self._may_view = may_view
        self._paused = False
        self._waiting: list[bytes] = []
        self._waiting_bytes = 0
        self.done: Deferred[None] = Deferred()

    def deliver(self, task: str | None, message: bytes) -> None:
        """
        Send a message, if this subscriber may see the task it concerns.
        """
        if task is not None and not self._may_view(task):
            return
        if not self._paused:
            self._consumer.write(message)
            return
        self._waiting.append(message)
        self._waiting_bytes += len(message)
        if self._waiting_bytes > SUBSCRIBER_BACKLOG_LIMIT:
            self._end(SubscriberTooSlow())

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        waiting, self._waiting, self._waiting_bytes = self._waiting, [], 0
        for message in waiting:
            self._consumer.write(message)

    def stopProducing(self) -> None:
        self._end(None)

    def _end(self, reason: Exception | None) -> None:
        if self.done.called:
            return
        self._broadcaster._unsubscribe(self)
        self._waiting = []
        if reason is None:
            self.done.callback(None)
        else:
            self.done.errback(reason)


@implementer(IEventSink)
class EventBroadcaster:
    """
    Sends every published event to every subscriber that may see it, and a
    heartbeat when configured.
    """

    _log = Logger()

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._subscribers: set[Subscriber] = set()
        self._heartbeat: LoopingCall | None = None
        self.heartbeat_seconds: float | None = None
        # Tells this Taru's event ids from an earlier one's.
        self.epoch = _base36(int(clock.seconds() * 1000))
        self._last_number = 0
        self._history: deque[tuple[int, str | None, bytes]] = deque(
            maxlen=HISTORY_LIMIT
        )

    @property
    def subscriber_count(self) -> int:
        """
        How many clients are subscribed now.
        """
        return len(self._subscribers)

    def subscribe(
        self,
        consumer: IConsumer,
        may_view: Callable[[str], bool],
        last_event_id: str | None = None,
    ) -> Subscriber:
        """
        Add a subscriber writing to C{consumer}.

        @param may_view: tells whether the subscriber may see a task's events;
            asked at each event, so that a reload's new permissions apply.
        @param last_event_id: the id of the last event a reconnecting client
            received: the events after it are sent first, or C{Resync} when
            some of them are no longer kept.
        @return: the subscriber; the caller registers it as C{consumer}'s
            producer and waits on its C{done}.
        """
        subscriber = Subscriber(self, consumer, may_view)
        if last_event_id is not None:
            for task, message in self._missed(last_event_id):
                subscriber.deliver(task, message)
        self._subscribers.add(subscriber)
        return subscriber

    def _missed(self, last_event_id: str) -> list[tuple[str | None, bytes]]:
        """
        The events after C{last_event_id}, or a C{Resync} event when they are
        not all kept.
        """
        found = _EVENT_ID.fullmatch(last_event_id.strip())
        if found is not None and found.group(1) == self.epoch:
            number = int(found.group(2))
            oldest = self._history[0][0] if self._history else self._last_number + 1
            if oldest - 1 <= number <= self._last_number:
                return [
                    (task, message)
                    for event_number, task, message in self._history
                    if event_number > number
                ]
        resync = sse_message(None, RESYNC, self._event_id(self._last_number))
        return [(None, resync)]

    def _event_id(self, number: int) -> str:
        return f"{self.epoch}-{number}"

    def _unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def publish(self, task: str | None, event: Any) -> None:
        self._last_number += 1
        message = sse_message(task, event, self._event_id(self._last_number))
        self._history.append((self._last_number, task, message))
        self._deliver(task, message)

    def _ping(self) -> None:
        """
        The heartbeat: it changes nothing, so it has no id and is not kept.
        """
        self._deliver(None, sse_message(None, "Ping"))

    def _deliver(self, task: str | None, message: bytes) -> None:
        for subscriber in list(self._subscribers):
            subscriber.deliver(task, message)

    def set_heartbeat(self, seconds: float | None) -> None:
        """
        Send C{Ping} every C{seconds}, or stop sending it when L{None}.
        """
        if seconds == self.heartbeat_seconds:
            return
        if self._heartbeat is not None and self._heartbeat.running:
            self._heartbeat.stop()
        self._heartbeat = None
        self.heartbeat_seconds = seconds
        if seconds is not None:
            self._heartbeat = LoopingCall(self._ping)
            self._heartbeat.clock = self._clock
            self._heartbeat.start(seconds, now=False)

    def stop(self) -> None:
        """
        Stop the heartbeat and end every stream.
        """
        self.set_heartbeat(None)
        for subscriber in list(self._subscribers):
            subscriber.stopProducing()


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = digits[digit] + text
        if number == 0:
            return text
