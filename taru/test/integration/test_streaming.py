"""
A real Taru streams task output live and byte for byte to any number of
clients, and pushes status changes over server-sent events.
"""

from __future__ import annotations

import os
import signal

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from twisted.web.http_headers import Headers

from taru.test.integration.harness import (
    Taru,
    follow,
    http_client,
    is_exit_status,
    now,
    open_events,
    output_of,
    start_and_follow,
    wait_for,
)


def numbered_lines(first: int, last: int) -> bytes:
    """
    What C{seq first last} writes.
    """
    return b"".join(b"%d\n" % number for number in range(first, last + 1))


class Disconnecting(Protocol):
    """
    Reads a response body until it has seen C{wanted}, then drops the
    connection.

    @ivar lost: fires once the connection is closed.
    """

    def __init__(self, wanted: bytes) -> None:
        self._wanted = wanted
        self.received = b""
        self.lost: Deferred[None] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        if self._wanted in self.received and self.transport is not None:
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.lost.callback(None)


LIVE_CONFIG = """
tasks:
  quiet_start:
    command: [sh, -c, 'sleep 3; echo late']
  ticking:
    command: [sh, -c, 'for i in 1 2 3; do echo $i; sleep 1; done']
"""


class LiveStreamingTests(TestCase):
    """
    Output reaches clients while the task is still running.
    """

    timeout = 30

    async def test_headers_arrive_before_any_output(self) -> None:
        """
        The response status and headers of a followed task are sent at once,
        before the task has written anything.
        """
        taru = await Taru(self, LIVE_CONFIG).start()
        client = http_client(self)
        sent_at = now()

        chunks = await start_and_follow(client, taru, "quiet_start")
        headers_at = now()
        await chunks.done

        first_chunk_at = chunks.arrivals[0][0]
        self.assertEqual(chunks.body, b"late\n")
        self.assertLess(headers_at - sent_at, 2.5)
        self.assertGreater(first_chunk_at - headers_at, 1.0)

    async def test_first_line_arrives_long_before_the_task_ends(self) -> None:
        """
        A line a task writes reaches the client as soon as it is written, not
        when the task ends.
        """
        taru = await Taru(self, LIVE_CONFIG).start()
        client = http_client(self)

        chunks = await start_and_follow(client, taru, "ticking")
        await chunks.done
        ended_at = now()

        first_chunk_at, first_chunk = chunks.arrivals[0]
        self.assertEqual(chunks.body, b"1\n2\n3\n")
        self.assertEqual(first_chunk, b"1\n")
        self.assertGreater(ended_at - first_chunk_at, 1.5)


RAW_CONFIG = """
tasks:
  every_byte:
    command: [cat, {directory}/every_byte]
  invalid_utf8:
    command: [cat, {directory}/invalid_utf8]
  no_final_newline:
    command: [printf, 'one\\ntwo']
  long_line:
    command: [cat, {directory}/long_line]
  interleaved:
    command: [sh, -c, 'echo a; echo b >&2; echo c']
"""

EVERY_BYTE = bytes(range(256)) * 4 + b"\x00\x00end"
INVALID_UTF8 = b"ok \xff\xfe \xc3\x28 \xed\xa0\x80 \xf0\x28\x8c\xbc\n\xc3"
LONG_LINE = b"x" * (1024 * 1024) + b"\n"


class RawOutputTests(TestCase):
    """
    Output reaches clients exactly as the task wrote it.
    """

    timeout = 30

    async def start_taru(self) -> Taru:
        """
        Start Taru with tasks that write prepared files of awkward bytes.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        for name, contents in [
            ("every_byte", EVERY_BYTE),
            ("invalid_utf8", INVALID_UTF8),
            ("long_line", LONG_LINE),
        ]:
            with open(os.path.join(directory, name), "wb") as task_input:
                task_input.write(contents)
        return await Taru(self, RAW_CONFIG.format(directory=directory)).start()

    async def test_every_byte_value(self) -> None:
        """
        Output holding every byte value, NUL included, arrives unchanged.
        """
        taru = await self.start_taru()

        body = await output_of(http_client(self), taru, "every_byte")

        self.assertEqual(body, EVERY_BYTE)

    async def test_invalid_utf8(self) -> None:
        """
        Output that is not valid UTF-8 arrives unchanged.
        """
        taru = await self.start_taru()

        body = await output_of(http_client(self), taru, "invalid_utf8")

        self.assertEqual(body, INVALID_UTF8)

    async def test_final_line_without_newline(self) -> None:
        """
        A last line without a newline arrives, and nothing is added to it.
        """
        taru = await self.start_taru()

        body = await output_of(http_client(self), taru, "no_final_newline")

        self.assertEqual(body, b"one\ntwo")

    async def test_one_mebibyte_line(self) -> None:
        """
        A single line of a mebibyte arrives whole.
        """
        taru = await self.start_taru()

        body = await output_of(http_client(self), taru, "long_line")

        self.assertEqual(body, LONG_LINE)

    async def test_stdout_and_stderr_in_arrival_order(self) -> None:
        """
        Standard output and standard error arrive in one stream, in the order
        the task wrote them.
        """
        taru = await self.start_taru()

        body = await output_of(http_client(self), taru, "interleaved")

        self.assertEqual(body, b"a\nb\nc\n")

    async def test_raw_output_after_the_run(self) -> None:
        """
        Reading a finished buffered task's output gives back the same raw
        bytes.
        """
        taru = await self.start_taru()
        client = http_client(self)
        await output_of(client, taru, "every_byte")

        chunks = await follow(client, taru, "every_byte")
        await chunks.done

        self.assertEqual(chunks.body, EVERY_BYTE)


FOLLOW_CONFIG = """
tasks:
  short:
    command: [sh, -c, 'echo one; echo two']
  pausing:
    command: [sh, -c, 'echo first; sleep 2; echo second']
  unbuffered_pausing:
    command: [sh, -c, 'echo early; sleep 2; echo late']
    buffered: false
  unbuffered_short:
    command: [sh, -c, 'echo one; echo two']
    buffered: false
  counting:
    command: [sh, -c, 'seq 1 50000; sleep 1; seq 50001 300000']
  unbuffered_counting:
    command: [sh, -c, 'sleep 2; seq 1 300000']
    buffered: false
"""


class FollowingTests(TestCase):
    """
    What a client following a run gets depends on whether the task is
    buffered and on when the client joins.
    """

    timeout = 30

    async def test_buffered_output_after_the_run(self) -> None:
        """
        Once a buffered task has finished, its output is there to read in
        full.
        """
        taru = await Taru(self, FOLLOW_CONFIG).start()
        client = http_client(self)
        started = await client.post(taru.url("/api/v1/task/short"))
        await started.content()
        status = await client.get(taru.url("/api/v1/task/short/status"))
        exit_code = await status.content()

        chunks = await follow(client, taru, "short")
        await chunks.done

        self.assertEqual((started.code, exit_code), (200, b"0"), taru.log)
        self.assertEqual(chunks.body, b"one\ntwo\n")

    async def test_buffered_output_joined_mid_run(self) -> None:
        """
        A client joining a buffered task's run gets everything written so far
        at once, then follows the output to the end of the run.
        """
        taru = await Taru(self, FOLLOW_CONFIG).start()
        client = http_client(self)
        first = await start_and_follow(client, taru, "pausing")
        self.assertTrue(await wait_for(lambda: first.body == b"first\n"))
        joined_at = now()

        chunks = await follow(client, taru, "pausing")
        await chunks.done

        self.assertEqual(chunks.body, b"first\nsecond\n")
        first_chunk_at, first_chunk = chunks.arrivals[0]
        self.assertEqual(first_chunk, b"first\n")
        self.assertLess(first_chunk_at - joined_at, 1.0)

    async def test_unbuffered_output_joined_mid_run(self) -> None:
        """
        A client joining an unbuffered task's run gets only what the task
        writes after it joined, while the client that started the run with
        C{POST output} gets everything.
        """
        taru = await Taru(self, FOLLOW_CONFIG).start()
        client = http_client(self)
        starter = await start_and_follow(client, taru, "unbuffered_pausing")
        self.assertTrue(await wait_for(lambda: starter.body == b"early\n"))

        joiner = await follow(client, taru, "unbuffered_pausing")
        await DeferredList([starter.done, joiner.done], fireOnOneErrback=True)

        self.assertEqual((starter.body, joiner.body), (b"early\nlate\n", b"late\n"))

    async def test_unbuffered_output_from_the_first_byte(self) -> None:
        """
        C{POST output} on an unbuffered task that writes at once loses none of
        its output.
        """
        taru = await Taru(self, FOLLOW_CONFIG).start()

        body = await output_of(http_client(self), taru, "unbuffered_short")

        self.assertEqual(body, b"one\ntwo\n")

    async def test_many_followers_of_a_buffered_task(self) -> None:
        """
        Ten clients following one buffered run all get the same, complete
        output.
        """
        taru = await Taru(self, FOLLOW_CONFIG).start()
        client = http_client(self)
        starter = await start_and_follow(client, taru, "counting")

        followers = [await follow(client, taru, "counting") for _ in range(9)]
        await DeferredList(
            [chunks.done for chunks in [starter, *followers]], fireOnOneErrback=True
        )

        expected = numbered_lines(1, 300000)
        bodies = [chunks.body for chunks in [starter, *followers]]
        self.assertEqual(bodies, [expected] * 10)

    async def test_many_followers_of_an_unbuffered_task(self) -> None:
        """
        Ten clients following one unbuffered run from before its first byte
        all get the same, complete output, even when it is larger than what
        Taru holds back for slow readers.
        """
        taru = await Taru(self, FOLLOW_CONFIG).start()
        client = http_client(self)
        starter = await start_and_follow(client, taru, "unbuffered_counting")

        followers = [
            await follow(client, taru, "unbuffered_counting") for _ in range(9)
        ]
        await DeferredList(
            [chunks.done for chunks in [starter, *followers]], fireOnOneErrback=True
        )

        expected = numbered_lines(1, 300000)
        bodies = [chunks.body for chunks in [starter, *followers]]
        self.assertEqual(bodies, [expected] * 10)


HEADERS_CONFIG = """
tasks:
  plain:
    command: [echo, hi]
  download:
    command: [echo, data]
    headers:
      content-disposition: "attachment; filename=dump.sql"
      content-type: application/sql
"""


class OutputHeadersTests(TestCase):
    """
    Output responses carry the headers a task configures and safe defaults.
    """

    timeout = 30

    async def test_default_headers(self) -> None:
        """
        Output is sent as plain text by default, and never to be sniffed.
        """
        taru = await Taru(self, HEADERS_CONFIG).start()

        response = await http_client(self).post(taru.url("/api/v1/task/plain/output"))
        await response.content()

        content_type = response.headers.getRawHeaders("content-type")
        self.assertEqual(len(content_type), 1)
        self.assertTrue(content_type[0].startswith("text/plain"), content_type)
        self.assertEqual(
            response.headers.getRawHeaders("x-content-type-options"), ["nosniff"]
        )

    async def test_configured_headers(self) -> None:
        """
        The headers configured for a task are sent with its output, replacing
        the default content type, both when the run starts and when its
        output is read later.
        """
        taru = await Taru(self, HEADERS_CONFIG).start()
        client = http_client(self)

        responses = []
        for method in ["POST", "GET"]:
            response = await client.request(
                method, taru.url("/api/v1/task/download/output")
            )
            await response.content()
            responses.append(response)

        for response in responses:
            self.assertEqual(
                (
                    response.headers.getRawHeaders("content-disposition"),
                    response.headers.getRawHeaders("content-type"),
                    response.headers.getRawHeaders("x-content-type-options"),
                ),
                (["attachment; filename=dump.sql"], ["application/sql"], ["nosniff"]),
            )


DISCONNECT_CONFIG = """
tasks:
  chatty:
    command: [sh, -c, 'echo started; sleep 1; seq 1 500000; exit 7']
    buffered: false
"""


class DisconnectTests(TestCase):
    """
    Clients may go away without affecting the task.
    """

    timeout = 30

    async def test_client_leaving_does_not_stop_the_task(self) -> None:
        """
        When the only client following a task drops its connection, the task
        runs on, writes all its output, and ends with its own exit code.
        """
        taru = await Taru(self, DISCONNECT_CONFIG).start()
        client = http_client(self)
        response = await client.post(
            taru.url("/api/v1/task/chatty/output"), unbuffered=True
        )
        leaving = Disconnecting(b"started\n")
        response.deliverBody(leaving)
        await leaving.lost

        status = await client.get(taru.url("/api/v1/task/chatty/status"))
        exit_code = await status.content()

        self.assertEqual(exit_code, b"7")


EVENTS_CONFIG = """
tasks:
  three:
    command: [sh, -c, 'exit 3']
  killed:
    command: [sh, -c, 'kill -KILL $$']
"""


USERS_CONFIG = """
tasks:
  for_alice: {command: ["true"]}
  for_bob: {command: ["true"]}
  for_both: {command: ["true"]}
users:
  root:
    can_run: [for_alice, for_bob, for_both]
    can_view_status: [for_alice, for_bob, for_both]
    can_view_output: []
  alice:
    can_run: []
    can_view_status: [for_alice, for_both]
    can_view_output: [for_alice, for_bob]
  bob:
    can_run: [for_alice]
    can_view_status: [for_bob, for_both]
    can_view_output: []
"""


class EventsTests(TestCase):
    """
    C{/events} tells clients when tasks start and end, when the configuration
    changed, and that the stream is alive.
    """

    timeout = 30

    async def test_started_and_exit_status(self) -> None:
        """
        A run is announced when it starts and when it ends, with its exit
        code, on a text/event-stream.
        """
        taru = await Taru(self, EVENTS_CONFIG).start()
        client = http_client(self)
        response, events = await open_events(self, client, taru.url("/events"))

        started = await client.post(taru.url("/api/v1/task/three"))
        await started.content()
        messages = await events.messages_until(is_exit_status)

        self.assertEqual(
            response.headers.getRawHeaders("content-type"), ["text/event-stream"]
        )
        self.assertEqual(messages, [["three", "Started"], ["three", {"ExitStatus": 3}]])

    async def test_exit_status_null_when_killed_by_a_signal(self) -> None:
        """
        A run ended by a signal is announced with a null exit status.
        """
        taru = await Taru(self, EVENTS_CONFIG).start()
        client = http_client(self)
        _, events = await open_events(self, client, taru.url("/events"))

        started = await client.post(taru.url("/api/v1/task/killed"))
        await started.content()
        messages = await events.messages_until(is_exit_status)

        self.assertEqual(
            messages, [["killed", "Started"], ["killed", {"ExitStatus": None}]]
        )

    async def test_heartbeat(self) -> None:
        """
        With a heartbeat configured, a C{Ping} concerning no task is sent at
        that interval.
        """
        taru = await Taru(self, "heartbeat: 0.5\n" + EVENTS_CONFIG).start()
        client = http_client(self)
        _, events = await open_events(self, client, taru.url("/events"))
        subscribed_at = now()

        pings = [await events.next_message(timeout=5.0) for _ in range(3)]
        elapsed = now() - subscribed_at

        self.assertEqual(pings, [[None, "Ping"]] * 3)
        self.assertGreater(elapsed, 1.0)
        self.assertLess(elapsed, 4.0)

    async def test_no_heartbeat_unless_configured(self) -> None:
        """
        Without a heartbeat configured, no C{Ping} is sent.
        """
        taru = await Taru(self, EVENTS_CONFIG).start()
        client = http_client(self)
        _, events = await open_events(self, client, taru.url("/events"))

        with self.assertRaises(TimeoutError):
            await events.next_message(timeout=1.5)

    async def test_update_config_after_reload(self) -> None:
        """
        Reloading a valid configuration on SIGHUP is announced with
        C{UpdateConfig}, concerning no task.
        """
        taru = await Taru(self, EVENTS_CONFIG).start()
        client = http_client(self)
        _, events = await open_events(self, client, taru.url("/events"))

        taru.write_config("tasks:\n  other: {command: [echo, other]}\n")
        taru.signal(signal.SIGHUP)
        message = await events.next_message()

        self.assertEqual(message, [None, "UpdateConfig"])

    async def test_users_get_events_of_tasks_they_may_view(self) -> None:
        """
        With users configured, each subscriber gets the events of only the
        tasks it may see the status of.
        """
        taru = await Taru(self, USERS_CONFIG).start()
        client = http_client(self)
        streams = {}
        for user in ["alice", "bob"]:
            _, streams[user] = await open_events(
                self, client, taru.url("/events"), headers=Headers({"X-User": [user]})
            )

        statuses = []
        for task in ["for_alice", "for_bob", "for_both"]:
            ran = await client.post(
                taru.url(f"/api/v1/task/{task}/status"),
                headers=Headers({"X-User": ["root"]}),
            )
            statuses.append((ran.code, await ran.content()))
        received = {
            user: await stream.messages_until(
                lambda m: m == ["for_both", {"ExitStatus": 0}]
            )
            for user, stream in streams.items()
        }

        self.assertEqual(statuses, [(200, b"0")] * 3, taru.log)
        self.assertEqual(
            received,
            {
                "alice": [
                    ["for_alice", "Started"],
                    ["for_alice", {"ExitStatus": 0}],
                    ["for_both", "Started"],
                    ["for_both", {"ExitStatus": 0}],
                ],
                "bob": [
                    ["for_bob", "Started"],
                    ["for_bob", {"ExitStatus": 0}],
                    ["for_both", "Started"],
                    ["for_both", {"ExitStatus": 0}],
                ],
            },
        )
