"""
Tests for L{taru.channel}: each request must arrive whole within a deadline,
and once it has, its answer may take as long as it needs.
"""

from __future__ import annotations

from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from taru.api import TaruAPI
from taru.channel import TaruChannel
from taru.config import parse_config
from taru.events import EventBroadcaster
from taru.history import History
from taru.output import Spool
from taru.tasks import Tasks
from taru.test.fakes import FakeRunner

CONFIG = """
tasks:
  hosts:
    command: [cat, hosts.list]
"""

DEADLINE = 10.0
IDLE = 60.0

STATUS = b"GET /api/v1/task/hosts/status HTTP/1.1\r\nHost: taru\r\n\r\n"


class DeadlineTests(SynchronousTestCase):
    """
    A connection of Taru's site answers 408 and closes when a request takes
    longer than the deadline to arrive.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.runner = FakeRunner()
        events = EventBroadcaster(self.clock)
        tasks = Tasks(
            parse_config(CONFIG),
            self.runner,
            Spool(self.mktemp()),
            events,
            self.clock,
            History(self.mktemp()),
        )
        site = TaruAPI(tasks, events, None, self.clock).site(DEADLINE)
        self.transport = StringTransport()
        self.channel = site.buildProtocol(None)
        self.channel.makeConnection(self.transport)
        self.addCleanup(self.channel.connectionLost, Failure(ConnectionDone()))

    def trickle(self, data: bytes, seconds: float) -> None:
        """
        Send C{data} a byte at a time, C{seconds} apart: never idle long enough
        for the idle timeout.
        """
        for byte in data:
            self.channel.dataReceived(bytes([byte]))
            self.clock.advance(seconds)

    def assertTimedOut(self) -> None:
        response = self.transport.value()
        self.assertTrue(response.startswith(b"HTTP/1.1 408 "), response)
        self.assertTrue(
            response.endswith(b"did not arrive whole within 10 seconds\n"), response
        )
        self.assertTrue(self.transport.disconnecting)

    def test_site_uses_the_channel(self) -> None:
        """
        L{TaruAPI.site} builds L{TaruChannel}s with the deadline it is given.
        """
        self.assertIsInstance(self.channel, TaruChannel)
        self.assertEqual(self.channel.deadline, DEADLINE)

    def test_trickled_head(self) -> None:
        """
        A request head sent a byte per second, never idle for long, is cut off
        at the deadline counted from its first byte.
        """
        self.trickle(b"GET /api/v1/tasks HTTP/1.1\r\nHost: ta", 1.0)

        self.assertTimedOut()

    def test_head_just_in_time(self) -> None:
        """
        A request whose last byte arrives before the deadline is answered.
        """
        self.channel.dataReceived(b"GET /api/v1/tasks HTTP/1.1\r\n")
        self.clock.advance(DEADLINE - 0.5)
        self.channel.dataReceived(b"Host: taru\r\n\r\n")

        self.assertTrue(self.transport.value().startswith(b"HTTP/1.1 200 "))
        self.assertFalse(self.transport.disconnecting)

    def test_half_sent_body(self) -> None:
        """
        A body that stops half way gets 408 at the deadline, and the task is
        not started.
        """
        self.channel.dataReceived(
            b"POST /api/v1/task/hosts HTTP/1.1\r\nHost: taru\r\n"
            b"Content-Length: 10\r\n\r\nabc"
        )
        self.clock.advance(DEADLINE - 0.1)
        self.assertEqual(self.transport.value(), b"")

        self.clock.advance(0.1)

        self.assertTimedOut()
        self.assertEqual(self.runner.calls, [])

    def test_long_answer_is_not_cut(self) -> None:
        """
        An answer that takes longer than the deadline, such as a status that
        waits for its run to end, is given whole.
        """
        self.channel.dataReceived(
            b"POST /api/v1/task/hosts HTTP/1.1\r\nHost: taru\r\n\r\n"
        )
        self.transport.clear()
        self.channel.dataReceived(STATUS)

        self.clock.advance(DEADLINE * 5)
        self.runner.started[0].end(0)

        response = self.transport.value()
        self.assertTrue(response.startswith(b"HTTP/1.1 200 "), response)
        # The exit code, 0, as the one chunk of the body.
        self.assertTrue(response.endswith(b"\r\n1\r\n0\r\n0\r\n\r\n"), response)
        self.assertFalse(self.transport.disconnecting)

    def test_next_request_has_its_own_deadline(self) -> None:
        """
        The part of the next request that arrives while a long answer is given
        is timed from the end of that answer, and times out in its turn.
        """
        self.channel.dataReceived(
            b"POST /api/v1/task/hosts HTTP/1.1\r\nHost: taru\r\n\r\n"
        )
        self.channel.dataReceived(STATUS + b"GET /api/v1/tasks HTTP/1.1\r\n")
        self.clock.advance(DEADLINE * 5)
        self.runner.started[0].end(0)
        self.transport.clear()

        self.clock.advance(DEADLINE - 0.1)
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(0.1)

        self.assertTimedOut()

    def test_partial_request_after_a_quick_one(self) -> None:
        """
        The start of a request sent together with one answered at once has
        its deadline too.
        """
        self.channel.dataReceived(
            b"GET /api/v1/tasks HTTP/1.1\r\nHost: taru\r\n\r\nGET /api/v1/ta"
        )
        self.transport.clear()

        self.clock.advance(DEADLINE)

        self.assertTimedOut()

    def test_idle_between_requests(self) -> None:
        """
        A connection that waits between requests is closed by the idle timeout,
        not the deadline, and without an answer.
        """
        self.channel.dataReceived(b"GET /api/v1/tasks HTTP/1.1\r\nHost: taru\r\n\r\n")
        self.transport.clear()

        self.clock.advance(IDLE - 1)
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(1)

        self.assertEqual(self.transport.value(), b"")
        self.assertTrue(self.transport.disconnecting)
