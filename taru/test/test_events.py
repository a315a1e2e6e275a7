"""
Tests for L{taru.events}: server-sent event framing and the broadcaster.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.interfaces import IPushProducer
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from taru.events import (
    HISTORY_LIMIT,
    SUBSCRIBER_BACKLOG_LIMIT,
    EventBroadcaster,
    IEventSink,
    Subscriber,
    SubscriberTooSlow,
    sse_message,
)

# Text that can be encoded: anything but lone surrogates.
texts = st.text(alphabet=st.characters(codec="utf-8"))


def may_view_any(task: str) -> bool:
    """
    A permission check that lets a subscriber see every task.
    """
    return True


def may_view_none(task: str) -> bool:
    """
    A permission check that lets a subscriber see no task.
    """
    return False


def event_of_size(task: str, size: int, event_id: str = "0-1") -> str:
    """
    An event whose message about C{task}, with C{event_id}, is exactly
    C{size} bytes long.
    """
    framing = len(sse_message(task, "", event_id))
    return "x" * (size - framing)


class SSEMessageTests(SynchronousTestCase):
    """
    L{sse_message} frames one event as one server-sent event message.
    """

    def test_task_event(self) -> None:
        """
        A task's event is a JSON array of the task and the event, on one
        C{data:} line ended by a blank line.
        """
        self.assertEqual(sse_message("t", "Started"), b'data: ["t","Started"]\n\n')

    def test_compact_json(self) -> None:
        """
        The JSON has no spaces between its items.
        """
        self.assertEqual(
            sse_message("t", {"ExitStatus": 3}), b'data: ["t",{"ExitStatus":3}]\n\n'
        )

    def test_null_task_and_exit_status(self) -> None:
        """
        A global event and an exit status ended by a signal are C{null}.
        """
        self.assertEqual(
            (sse_message(None, "UpdateConfig"), sse_message("t", {"ExitStatus": None})),
            (
                b'data: [null,"UpdateConfig"]\n\n',
                b'data: ["t",{"ExitStatus":null}]\n\n',
            ),
        )

    def test_unicode_kept(self) -> None:
        """
        Non-ASCII characters are sent as UTF-8, not as escapes.
        """
        self.assertEqual(
            sse_message("zażółć", "Started"),
            'data: ["zażółć","Started"]\n\n'.encode(),
        )

    @given(task=st.none() | texts, event=texts)
    def test_one_line_that_decodes_back(self, task: str | None, event: str) -> None:
        """
        Whatever the task and event, the message is a single C{data:} line
        whose JSON gives them back, followed by a blank line.
        """
        message = sse_message(task, event)

        self.assertTrue(message.startswith(b"data: "))
        self.assertTrue(message.endswith(b"\n\n"))
        body = message[len(b"data: ") : -len(b"\n\n")]
        self.assertNotIn(b"\n", body)
        self.assertNotIn(b"\r", body)
        self.assertEqual(json.loads(body), [task, event])


class BroadcasterTests(SynchronousTestCase):
    """
    L{EventBroadcaster} sends each event to every subscriber that may see it.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.broadcaster = EventBroadcaster(self.clock)
        self.addCleanup(self.assert_nothing_scheduled)
        self.addCleanup(self.broadcaster.stop)

    def assert_nothing_scheduled(self) -> None:
        """
        Once the broadcaster has stopped, no call is left on the clock.
        """
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def subscribe(
        self, may_view: Callable[[str], bool] = may_view_any
    ) -> tuple[Subscriber, StringTransport]:
        """
        Subscribe the way the web API does: register the subscriber as its
        consumer's producer.
        """
        consumer = StringTransport()
        subscriber = self.broadcaster.subscribe(consumer, may_view)
        consumer.registerProducer(subscriber, True)
        return subscriber, consumer

    def test_provides_interfaces(self) -> None:
        """
        The broadcaster is an event sink, and a subscriber a push producer.
        """
        subscriber, _ = self.subscribe()

        self.assertTrue(verifyObject(IEventSink, self.broadcaster))
        self.assertTrue(verifyObject(IPushProducer, subscriber))

    def test_publish_reaches_every_subscriber(self) -> None:
        """
        A published event reaches every subscriber that may see its task.
        """
        consumers = [self.subscribe()[1] for _ in range(3)]

        self.broadcaster.publish("t", "Started")

        self.assertEqual(
            [consumer.value() for consumer in consumers],
            [b'id: 0-1\ndata: ["t","Started"]\n\n'] * 3,
        )

    def test_publish_respects_permissions(self) -> None:
        """
        A subscriber gets only the events of tasks it may see.
        """
        _, ping_watcher = self.subscribe(lambda task: task == "ping")
        _, dump_watcher = self.subscribe(lambda task: task == "dump")

        self.broadcaster.publish("ping", "Started")
        self.broadcaster.publish("dump", "Started")

        self.assertEqual(
            (ping_watcher.value(), dump_watcher.value()),
            (
                b'id: 0-1\ndata: ["ping","Started"]\n\n',
                b'id: 0-2\ndata: ["dump","Started"]\n\n',
            ),
        )

    def test_permissions_asked_at_each_event(self) -> None:
        """
        A subscriber's permission is checked anew at each event, so that a
        change takes effect on an open stream.
        """
        visible = {"t"}
        _, consumer = self.subscribe(lambda task: task in visible)
        self.broadcaster.publish("t", "Started")

        visible.clear()
        self.broadcaster.publish("t", {"ExitStatus": 0})

        self.assertEqual(consumer.value(), b'id: 0-1\ndata: ["t","Started"]\n\n')

    def test_global_events_reach_everyone(self) -> None:
        """
        An event about no single task reaches every subscriber, even one that
        may see no task.
        """
        _, everything = self.subscribe(may_view_any)
        _, nothing = self.subscribe(may_view_none)

        self.broadcaster.publish(None, "UpdateConfig")

        expected = b'id: 0-1\ndata: [null,"UpdateConfig"]\n\n'
        self.assertEqual((everything.value(), nothing.value()), (expected, expected))

    def test_events_in_order(self) -> None:
        """
        A subscriber gets events in the order they were published.
        """
        _, consumer = self.subscribe()

        self.broadcaster.publish("t", "Started")
        self.broadcaster.publish("t", {"ExitStatus": 0})
        self.broadcaster.publish(None, "UpdateConfig")

        self.assertEqual(
            consumer.value(),
            b'id: 0-1\ndata: ["t","Started"]\n\n'
            b'id: 0-2\ndata: ["t",{"ExitStatus":0}]\n\n'
            b'id: 0-3\ndata: [null,"UpdateConfig"]\n\n',
        )

    def test_subscriber_count(self) -> None:
        """
        The subscriber count is how many streams are open.
        """
        first, _ = self.subscribe()
        self.subscribe()
        counts = [self.broadcaster.subscriber_count]

        first.stopProducing()
        counts.append(self.broadcaster.subscriber_count)

        self.assertEqual(counts, [2, 1])

    def test_paused_subscriber_gets_queue_on_resume(self) -> None:
        """
        A paused subscriber writes nothing; resumed, it writes what it missed
        in order, then live events as they come.
        """
        subscriber, consumer = self.subscribe()
        subscriber.pauseProducing()
        self.broadcaster.publish("t", "Started")
        self.broadcaster.publish("t", {"ExitStatus": 1})
        while_paused = consumer.value()

        subscriber.resumeProducing()
        self.broadcaster.publish(None, "UpdateConfig")

        self.assertEqual(while_paused, b"")
        self.assertEqual(
            consumer.value(),
            b'id: 0-1\ndata: ["t","Started"]\n\n'
            b'id: 0-2\ndata: ["t",{"ExitStatus":1}]\n\n'
            b'id: 0-3\ndata: [null,"UpdateConfig"]\n\n',
        )

    def test_paused_subscriber_does_not_hold_back_others(self) -> None:
        """
        While one subscriber is paused, the others get events at once.
        """
        paused, _ = self.subscribe()
        _, consumer = self.subscribe()
        paused.pauseProducing()

        self.broadcaster.publish("t", "Started")

        self.assertEqual(consumer.value(), b'id: 0-1\ndata: ["t","Started"]\n\n')

    def test_backlog_at_limit_is_kept(self) -> None:
        """
        A paused subscriber may have exactly the limit of bytes waiting.
        """
        subscriber, consumer = self.subscribe()
        subscriber.pauseProducing()
        event = event_of_size("t", SUBSCRIBER_BACKLOG_LIMIT)

        self.broadcaster.publish("t", event)
        subscriber.resumeProducing()

        self.assertNoResult(subscriber.done)
        self.assertEqual(consumer.value(), sse_message("t", event, "0-1"))

    def test_too_slow_subscriber_dropped(self) -> None:
        """
        A paused subscriber whose waiting events pass the limit ends with
        L{SubscriberTooSlow}, is unsubscribed, and writes nothing more, even
        if resumed.
        """
        slow, consumer = self.subscribe()
        slow.pauseProducing()
        self.broadcaster.publish("t", event_of_size("t", SUBSCRIBER_BACKLOG_LIMIT))

        self.broadcaster.publish("t", "Started")
        slow.resumeProducing()
        self.broadcaster.publish("t", "Started")

        self.failureResultOf(slow.done, SubscriberTooSlow)
        self.assertEqual(
            (self.broadcaster.subscriber_count, consumer.value()), (0, b"")
        )

    def test_too_slow_subscriber_does_not_affect_others(self) -> None:
        """
        Dropping a slow subscriber leaves the others subscribed and receiving.
        """
        slow, _ = self.subscribe()
        fast, consumer = self.subscribe()
        slow.pauseProducing()
        event = event_of_size("t", SUBSCRIBER_BACKLOG_LIMIT + 1)

        self.broadcaster.publish("t", event)

        self.failureResultOf(slow.done, SubscriberTooSlow)
        self.assertNoResult(fast.done)
        self.assertEqual(consumer.value(), sse_message("t", event, "0-1"))

    def test_hidden_events_do_not_count_against_paused_subscriber(self) -> None:
        """
        Events a paused subscriber may not see are not queued for it, so they
        never make it too slow.
        """
        subscriber, consumer = self.subscribe(lambda task: task == "public")
        subscriber.pauseProducing()

        for _ in range(3):
            self.broadcaster.publish("secret", event_of_size("secret", 200 * 1024))
        subscriber.resumeProducing()

        self.assertNoResult(subscriber.done)
        self.assertEqual(consumer.value(), b"")

    def test_stop_producing_ends_subscriber(self) -> None:
        """
        A subscriber whose consumer stops it ends cleanly and gets no more
        events.
        """
        subscriber, consumer = self.subscribe()

        subscriber.stopProducing()
        self.broadcaster.publish("t", "Started")

        self.successResultOf(subscriber.done)
        self.assertEqual(
            (consumer.value(), self.broadcaster.subscriber_count), (b"", 0)
        )

    def test_stop_ends_every_subscriber(self) -> None:
        """
        Stopping the broadcaster ends every stream cleanly, paused or not.
        """
        running, _ = self.subscribe()
        paused, _ = self.subscribe()
        paused.pauseProducing()

        self.broadcaster.stop()

        self.successResultOf(running.done)
        self.successResultOf(paused.done)
        self.assertEqual(self.broadcaster.subscriber_count, 0)


class ReplayTests(SynchronousTestCase):
    """
    A client that reconnects with the id of the last event it got is sent
    what it missed, or told to fetch the task list again.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.broadcaster = EventBroadcaster(self.clock)
        self.addCleanup(self.broadcaster.stop)

    def reconnect(
        self, last_event_id: str, may_view: Callable[[str], bool] = may_view_any
    ) -> bytes:
        consumer = StringTransport()
        subscriber = self.broadcaster.subscribe(consumer, may_view, last_event_id)
        consumer.registerProducer(subscriber, True)
        return bytes(consumer.value())

    def event_id(self, number: int) -> str:
        return f"{self.broadcaster.epoch}-{number}"

    def test_missed_events_replayed(self) -> None:
        """
        The events after the last one the client got are sent first, in
        order, with their ids.
        """
        self.broadcaster.publish("a", "Started")
        self.broadcaster.publish("a", {"ExitStatus": 0})
        self.broadcaster.publish("b", "Started")

        replayed = self.reconnect(self.event_id(1))

        self.assertEqual(
            replayed,
            sse_message("a", {"ExitStatus": 0}, self.event_id(2))
            + sse_message("b", "Started", self.event_id(3)),
        )

    def test_nothing_missed(self) -> None:
        """
        A client that got the latest event is sent nothing until the next.
        """
        self.broadcaster.publish("a", "Started")

        self.assertEqual(self.reconnect(self.event_id(1)), b"")

    def test_replay_respects_permissions(self) -> None:
        """
        Replayed events are only those of tasks the client may see now.
        """
        self.broadcaster.publish("secret", "Started")
        self.broadcaster.publish("public", "Started")

        replayed = self.reconnect(self.event_id(0), lambda task: task == "public")

        self.assertEqual(replayed, sse_message("public", "Started", self.event_id(2)))

    def test_pings_not_replayed(self) -> None:
        """
        Heartbeats carry no id and are not replayed.
        """
        self.broadcaster.set_heartbeat(1)
        self.broadcaster.publish("a", "Started")
        self.clock.advance(1)

        self.assertEqual(
            self.reconnect(self.event_id(0)),
            sse_message("a", "Started", self.event_id(1)),
        )

    def test_too_old(self) -> None:
        """
        A client whose missed events are no longer all kept gets C{Resync},
        with the latest id.
        """
        for _ in range(HISTORY_LIMIT + 2):
            self.broadcaster.publish("a", "Started")

        replayed = self.reconnect(self.event_id(1))

        self.assertEqual(
            replayed, sse_message(None, "Resync", self.event_id(HISTORY_LIMIT + 2))
        )

    def test_oldest_kept(self) -> None:
        """
        A client that missed exactly the kept events gets them all.
        """
        for _ in range(HISTORY_LIMIT + 2):
            self.broadcaster.publish("a", "Started")

        replayed = self.reconnect(self.event_id(2))

        self.assertEqual(replayed.count(b"data: "), HISTORY_LIMIT)

    def test_from_another_taru(self) -> None:
        """
        An id from an earlier Taru, or one that was never sent, or garbage,
        gets C{Resync}.
        """
        self.broadcaster.publish("a", "Started")
        resync = sse_message(None, "Resync", self.event_id(1))

        for last_event_id in ["0-1", self.event_id(2), "nonsense", "", "-1"]:
            self.assertEqual(self.reconnect(last_event_id), resync, last_event_id)


class HeartbeatTests(SynchronousTestCase):
    """
    With a heartbeat set, every subscriber gets C{[null,"Ping"]} at that
    interval.
    """

    ping = b'data: [null,"Ping"]\n\n'

    def setUp(self) -> None:
        self.clock = Clock()
        self.broadcaster = EventBroadcaster(self.clock)
        self.consumer = StringTransport()
        subscriber = self.broadcaster.subscribe(self.consumer, may_view_none)
        self.consumer.registerProducer(subscriber, True)
        self.addCleanup(self.assert_nothing_scheduled)
        self.addCleanup(self.broadcaster.stop)

    def assert_nothing_scheduled(self) -> None:
        """
        Once the broadcaster has stopped, no call is left on the clock.
        """
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def pings_at(self, *times: float) -> list[int]:
        """
        Advance the clock to each of C{times} and count the pings sent by
        then.
        """
        counts = []
        for when in times:
            self.clock.advance(when - self.clock.seconds())
            counts.append(self.consumer.value().count(self.ping))
        return counts

    def test_no_heartbeat_by_default(self) -> None:
        """
        Without a heartbeat, nothing is sent and nothing is scheduled.
        """
        self.assertEqual((self.pings_at(1000), self.clock.getDelayedCalls()), ([0], []))

    def test_pings_at_interval(self) -> None:
        """
        A ping goes out every interval, the first one interval after the
        heartbeat was set, to a subscriber that may see no task.
        """
        self.broadcaster.set_heartbeat(5)

        counts = self.pings_at(4.9, 5, 9.9, 10, 15)

        self.assertEqual(counts, [0, 1, 1, 2, 3])
        self.assertEqual(self.consumer.value(), self.ping * 3)

    def test_none_stops_heartbeat(self) -> None:
        """
        Setting the heartbeat to L{None} stops the pings and leaves nothing
        scheduled.
        """
        self.broadcaster.set_heartbeat(5)
        self.clock.advance(5)

        self.broadcaster.set_heartbeat(None)

        self.assertEqual((self.clock.getDelayedCalls(), self.pings_at(100)), ([], [1]))

    def test_new_interval_replaces_old(self) -> None:
        """
        Setting another interval replaces the old schedule: one timer, at the
        new pace.
        """
        self.broadcaster.set_heartbeat(5)

        self.broadcaster.set_heartbeat(2)

        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.assertEqual(self.pings_at(2, 4, 5), [1, 2, 2])

    def test_same_interval_keeps_schedule(self) -> None:
        """
        Setting the interval already in force does not delay the next ping.
        """
        self.broadcaster.set_heartbeat(5)
        self.clock.advance(3)

        self.broadcaster.set_heartbeat(5)

        self.assertEqual(self.pings_at(5), [1])

    def test_stop_stops_heartbeat(self) -> None:
        """
        Stopping the broadcaster stops the heartbeat.
        """
        self.broadcaster.set_heartbeat(1)

        self.broadcaster.stop()

        self.assertEqual(self.clock.getDelayedCalls(), [])
