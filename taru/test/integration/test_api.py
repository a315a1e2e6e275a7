"""
The HTTP API of a real Taru: real task processes and real HTTP on loopback,
checked against the documented contract of every route.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from signal import SIGHUP
from typing import Any
from urllib.parse import quote

from treq.client import HTTPClient
from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from twisted.web.http_headers import Headers

from taru.test.integration.harness import Taru, http_client, sleep

# How long any single request may take before the test gives up on it; far
# more than any of them needs, so that a busy machine does not fail the suite.
PATIENCE = 15.0

# Prints its arguments after the program name as a JSON list, so that a test
# sees exactly which argv elements a task received.
SHOW_ARGV = '[python3, -c, "import json, sys; print(json.dumps(sys.argv[1:]))"'

OPEN_CONFIG = f"""
    tasks:
      greet:
        command: [sh, -c, "echo hello; exit 7"]
        meta:
          description: Say hello
          download: false
          tags: [a, b]
      exit_three:
        command: [sh, -c, "exit 3"]
      exit_zero:
        command: [sh, -c, "exit 0"]
      slow_three:
        command: [sh, -c, "sleep 1.5; exit 3"]
      long:
        command: [sleep, 30]
      show:
        command: {SHOW_ARGV}, $value, $undefined, "$value suffix"]
        arguments:
          - {{name: value, datatype: String}}
      count:
        command: {SHOW_ARGV}, $number]
        arguments:
          - {{name: number, datatype: Int}}
      no_arguments:
        command: {SHOW_ARGV}]
      hosts:
        command: [printf, 'alpha\\r\\nbeta\\ngamma delta\\n']
      ping:
        command: {SHOW_ARGV}, $host]
        arguments:
          - {{name: host, datatype: Enum, enum_source: hosts}}
"""

USERS_CONFIG = """
    tasks:
      job:
        command: [sh, -c, "echo out; exit 5"]
      long:
        command: [sleep, 30]
      hidden:
        command: [sh, -c, "exit 1"]
      marker:
        command: [sh, -c, "exit 0"]
      hosts:
        command: [printf, 'alpha\\nbeta\\n']
      ping:
        command: [echo, $host]
        arguments:
          - {name: host, datatype: Enum, enum_source: hosts}
    users:
      admin:
        can_run: [job, long, hidden, marker, hosts, ping]
        can_view_status: [job, long, hidden, marker, hosts, ping]
        can_view_output: [job, long, hidden, marker, hosts, ping]
      viewer:
        can_run: []
        can_view_status: [job, long, marker, ping]
        can_view_output: []
      runner:
        can_run: [job, long]
        can_view_status: []
        can_view_output: []
      reader:
        can_run: []
        can_view_status: []
        can_view_output: [job, long]
      runner_viewer:
        can_run: [job]
        can_view_status: [job]
        can_view_output: []
      runner_reader:
        can_run: [job]
        can_view_status: []
        can_view_output: [job]
"""


NAMES_CONFIG = """
    tasks:
      "two words":
        command: [echo, spaced]
      "ünïcødé":
        command: [echo, unicode]
"""


def within(waiting: Deferred[Any], seconds: float = PATIENCE) -> Deferred[Any]:
    """
    Fail C{waiting} with a timeout unless it fires within C{seconds}.
    """
    return waiting.addTimeout(seconds, reactor)


async def start_taru(testcase: TestCase, config: str) -> Taru:
    """
    Start a real Taru that runs its tasks as plain child processes.
    """
    return await Taru(testcase, config).start()


async def until(
    condition: Callable[[], Awaitable[bool]], seconds: float = PATIENCE
) -> None:
    """
    Wait until C{condition} holds, checking every tenth of a second.

    @raise AssertionError: if it still does not hold after C{seconds}.
    """
    for _ in range(int(seconds * 10)):
        if await condition():
            return
        await sleep(0.1)
    raise AssertionError(f"still not so after {seconds} seconds")


def as_user(user: str | None) -> Headers:
    """
    The request headers naming C{user}, or none for L{None}.
    """
    return Headers() if user is None else Headers({"X-User": [user]})


async def request(
    client: HTTPClient,
    method: str,
    url: str,
    user: str | None = None,
    **keywords: Any,
) -> tuple[int, str]:
    """
    Make a request and read all of its response.

    @return: the status code and the body as text.
    """
    response = await within(
        client.request(method, url, headers=as_user(user), **keywords)
    )
    body = await within(response.content())
    return response.code, body.decode("utf-8")


async def request_with_type(
    client: HTTPClient, method: str, url: str, user: str | None = None
) -> tuple[int, str, str]:
    """
    Make a request and read all of its response.

    @return: the status code, the content type and the body as text.
    """
    response = await within(client.request(method, url, headers=as_user(user)))
    body = await within(response.content())
    content_type = (response.headers.getRawHeaders("content-type") or [""])[0]
    return response.code, content_type, body.decode("utf-8")


async def task_list(
    client: HTTPClient, taru: Taru, user: str | None = None
) -> dict[str, Any]:
    """
    The task list as C{user} sees it.
    """
    code, body = await request(client, "GET", taru.url("/api/v1/tasks"), user)
    assert code == 200, (code, body)
    listing: dict[str, Any] = json.loads(body)
    return listing


async def task_state(
    client: HTTPClient, taru: Taru, task: str, user: str | None = None
) -> tuple[str, int | None]:
    """
    A task's state and exit code, from the task list.
    """
    entry = (await task_list(client, taru, user))[task]
    return entry["state"], entry["exit_code"]


def query(**values: str) -> str:
    """
    A query string, every value percent-encoded.
    """
    return "?" + "&".join(
        f"{name}={quote(value, safe='')}" for name, value in values.items()
    )


class _EventReader(Protocol):
    """
    Reads a server-sent event stream until an awaited event arrives, then
    hangs up.

    @ivar events: every event read, as decoded JSON values.
    @ivar found: fires with the events once the awaited one arrived.
    """

    def __init__(self, awaited: Callable[[Any], bool]) -> None:
        self._awaited = awaited
        self._buffer = b""
        self.events: list[Any] = []
        self.found: Deferred[list[Any]] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        while b"\n\n" in self._buffer:
            message, self._buffer = self._buffer.split(b"\n\n", 1)
            for line in message.split(b"\n"):
                if line.startswith(b"data:"):
                    self._read(json.loads(line[len(b"data:") :]))

    def _read(self, event: Any) -> None:
        self.events.append(event)
        if self._awaited(event) and not self.found.called:
            self.found.callback(self.events)
            self.hang_up()

    def hang_up(self) -> None:
        """
        Close the stream.
        """
        if self.transport is not None:
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if not self.found.called:
            self.found.errback(reason)


def assert_plain_error(
    testcase: TestCase, response: tuple[int, str, str], code: int
) -> None:
    """
    Check that a response is an error with a plain-text body and no Python
    traceback in it.
    """
    actual_code, content_type, body = response
    testcase.assertEqual(actual_code, code, body)
    testcase.assertTrue(content_type.startswith("text/plain"), content_type)
    testcase.assertTrue(body.strip(), "the error body is empty")
    testcase.assertNotIn("Traceback", body)
    testcase.assertNotIn('File "', body)


class TaskListTests(TestCase):
    """
    C{GET /api/v1/tasks} lists tasks with their state and what the requester
    may do.
    """

    async def test_new_tasks_are_described(self) -> None:
        """
        Before anything ran, every task is listed under its name as new, with
        no exit code, its meta, both permissions, and its argument
        definitions.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)

        response = await within(client.get(taru.url("/api/v1/tasks")))
        listing = await within(response.json())

        self.assertEqual(response.code, 200)
        self.assertIn(
            "application/json", response.headers.getRawHeaders("content-type")[0]
        )
        self.assertEqual(
            set(listing),
            {
                "greet",
                "exit_three",
                "exit_zero",
                "slow_three",
                "long",
                "show",
                "count",
                "no_arguments",
                "hosts",
                "ping",
            },
        )
        for name, entry in listing.items():
            self.assertEqual(entry["name"], name)
            self.assertEqual(entry["state"], "new")
            self.assertIsNone(entry["exit_code"])
            self.assertIs(entry["can_run"], True)
            self.assertIs(entry["can_view_output"], True)
        self.assertEqual(
            listing["greet"]["meta"],
            {"description": "Say hello", "download": False, "tags": ["a", "b"]},
        )
        self.assertEqual(listing["greet"]["arguments"], [])
        self.assertEqual(
            listing["show"]["arguments"], [{"name": "value", "datatype": "String"}]
        )
        self.assertEqual(
            listing["count"]["arguments"], [{"name": "number", "datatype": "Int"}]
        )
        [host] = listing["ping"]["arguments"]
        self.assertEqual(
            (host["name"], host["datatype"], host["enum_source"]),
            ("host", "Enum", "hosts"),
        )

    async def test_state_follows_runs(self) -> None:
        """
        A task is listed as running, without an exit code, while it runs, also
        when an earlier run has finished; and as finished with its exit code
        once it has exited.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)
        url = taru.url("/api/v1/task/slow_three")

        await request(client, "POST", url)
        first_running = await task_state(client, taru, "slow_three")
        await request(client, "GET", url + "/status")
        finished = await task_state(client, taru, "slow_three")
        await request(client, "POST", url)
        second_running = await task_state(client, taru, "slow_three")

        self.assertEqual(first_running, ("running", None))
        self.assertEqual(finished, ("finished", 3))
        self.assertEqual(second_running, ("running", None))

    async def test_enum_values_listed_after_source_ran(self) -> None:
        """
        Once an Enum argument's source task has run, the list gives the values
        it permits: the source's output lines, without a trailing carriage
        return.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)

        await request(client, "POST", taru.url("/api/v1/task/hosts/status"))
        listing = await task_list(client, taru)

        [host] = listing["ping"]["arguments"]
        self.assertEqual(host["values"], ["alpha", "beta", "gamma delta"])

    async def test_users_see_only_tasks_they_may_view(self) -> None:
        """
        With users configured, each sees only the tasks they may view, with
        their own run and output permissions; Enum values are given only to
        users who may run the task.
        """
        taru = await start_taru(self, USERS_CONFIG)
        client = http_client(self)
        await request(client, "POST", taru.url("/api/v1/task/hosts/status"), "admin")

        as_viewer = await task_list(client, taru, "viewer")
        as_runner = await task_list(client, taru, "runner")
        as_runner_reader = await task_list(client, taru, "runner_reader")
        as_admin = await task_list(client, taru, "admin")

        self.assertEqual(sorted(as_viewer), ["job", "long", "marker", "ping"])
        self.assertEqual(
            [(e["can_run"], e["can_view_output"]) for e in as_viewer.values()],
            [(False, False)] * 4,
        )
        self.assertNotIn("values", as_viewer["ping"]["arguments"][0])
        self.assertEqual(as_runner, {})
        self.assertEqual(as_runner_reader, {})
        self.assertEqual(as_admin["ping"]["arguments"][0]["values"], ["alpha", "beta"])
        self.assertEqual(
            (as_admin["job"]["can_run"], as_admin["job"]["can_view_output"]),
            (True, True),
        )


class StartTests(TestCase):
    """
    C{POST /api/v1/task/NAME} starts a task, once at a time.
    """

    async def test_start_runs_the_task(self) -> None:
        """
        Starting a task answers 200 with a plain-text message, and the task
        runs: its output and exit code become available.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)

        started = await request_with_type(
            client, "POST", taru.url("/api/v1/task/greet")
        )
        status = await request(client, "GET", taru.url("/api/v1/task/greet/status"))
        output = await request(client, "GET", taru.url("/api/v1/task/greet/output"))

        self.assertEqual(started[0], 200)
        self.assertTrue(started[1].startswith("text/plain"), started[1])
        self.assertEqual(status, (200, "7"))
        self.assertEqual(output, (200, "hello\n"))

    async def test_start_while_running_is_refused(self) -> None:
        """
        Starting a task that is running answers 405 with a plain-text message
        and leaves the run alone; once it has ended it may start again.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)
        await request(client, "POST", taru.url("/api/v1/task/slow_three"))

        refused = await request_with_type(
            client, "POST", taru.url("/api/v1/task/slow_three")
        )
        still = await task_state(client, taru, "slow_three")
        await request(client, "GET", taru.url("/api/v1/task/slow_three/status"))
        again = await request(client, "POST", taru.url("/api/v1/task/slow_three"))

        assert_plain_error(self, refused, 405)
        self.assertEqual(still, ("running", None))
        self.assertEqual(again[0], 200)

    async def test_simultaneous_starts_run_once(self) -> None:
        """
        Of twenty simultaneous starts of one task, exactly one starts it and
        every other is refused with 405.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)
        url = taru.url("/api/v1/task/long")

        responses = await within(
            gatherResults([client.post(url) for _ in range(20)], consumeErrors=True)
        )
        await within(gatherResults([r.content() for r in responses]))

        codes = sorted(response.code for response in responses)
        self.assertEqual(codes, [200] + [405] * 19)

    async def test_names_are_percent_decoded(self) -> None:
        """
        A task whose name holds spaces or non-ASCII letters is started by its
        percent-encoded name.
        """
        taru = await start_taru(self, NAMES_CONFIG)
        client = http_client(self)

        listed = sorted(await task_list(client, taru))
        outputs = [
            await request(
                client,
                "POST",
                taru.url("/api/v1/task/" + quote(name, safe="") + "/output"),
            )
            for name in ("two words", "ünïcødé")
        ]

        self.assertEqual(listed, ["two words", "ünïcødé"])
        self.assertEqual(outputs, [(200, "spaced\n"), (200, "unicode\n")])

    async def test_forbidden_and_unknown_look_the_same(self) -> None:
        """
        A task the user may not run answers 404 exactly like a task that does
        not exist, whether or not the user may see it: same status, same
        content type, the same message but for the name.
        """
        taru = await start_taru(self, USERS_CONFIG)
        client = http_client(self)

        def normalized(response: tuple[int, str, str], name: str) -> tuple[Any, ...]:
            code, content_type, body = response
            return code, content_type, body.replace(name, "NAME")

        unknown = await request_with_type(
            client, "POST", taru.url("/api/v1/task/zzzzzz"), "viewer"
        )
        visible = await request_with_type(
            client, "POST", taru.url("/api/v1/task/job"), "viewer"
        )
        invisible = await request_with_type(
            client, "POST", taru.url("/api/v1/task/hidden"), "viewer"
        )

        assert_plain_error(self, unknown, 404)
        self.assertEqual(normalized(visible, "job"), normalized(unknown, "zzzzzz"))
        self.assertEqual(normalized(invisible, "hidden"), normalized(unknown, "zzzzzz"))
        self.assertEqual(await task_state(client, taru, "job", "admin"), ("new", None))


STDIN_CONFIG = """
    tasks:
      reader:
        command: [sh, -c, 'cat; if read line; then echo got "$line"; else echo eof; fi']
"""


class InputTests(TestCase):
    """
    Tasks get an empty standard input.
    """

    async def test_reading_stdin_ends_at_once(self) -> None:
        """
        A task that reads its standard input finds it empty and at its end,
        rather than waiting for input that never comes.
        """
        taru = await start_taru(self, STDIN_CONFIG)
        client = http_client(self)

        output = await request(client, "POST", taru.url("/api/v1/task/reader/output"))
        state = await task_state(client, taru, "reader")

        self.assertEqual(output, (200, "eof\n"))
        self.assertEqual(state, ("finished", 0))


class StatusTests(TestCase):
    """
    C{/api/v1/task/NAME/status} waits for a run to end and gives its exit code.
    """

    async def test_get_waits_for_the_end(self) -> None:
        """
        GET status of a running task answers only once the run has ended,
        with the exit code as the body.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)
        await request(client, "POST", taru.url("/api/v1/task/slow_three"))

        waiting = Deferred.fromCoroutine(
            request(client, "GET", taru.url("/api/v1/task/slow_three/status"))
        )
        await sleep(0.3)
        answered_early = waiting.called
        status = await within(waiting)
        after = await task_state(client, taru, "slow_three")

        self.assertFalse(answered_early)
        self.assertEqual(status, (200, "3"))
        self.assertEqual(after, ("finished", 3))

    async def test_post_starts_and_waits(self) -> None:
        """
        POST status starts the task and answers with its exit code once it
        has ended.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)

        status = await request(
            client, "POST", taru.url("/api/v1/task/slow_three/status")
        )
        after = await task_state(client, taru, "slow_three")

        self.assertEqual(status, (200, "3"))
        self.assertEqual(after, ("finished", 3))

    async def test_post_while_running_is_refused(self) -> None:
        """
        POST status of a running task answers 405, as a plain start does.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)
        await request(client, "POST", taru.url("/api/v1/task/long"))

        refused = await request_with_type(
            client, "POST", taru.url("/api/v1/task/long/status")
        )

        assert_plain_error(self, refused, 405)

    async def test_check_fails_for_non_zero_exit(self) -> None:
        """
        With C{check=true}, a non-zero exit code answers 520 and zero answers
        200; the body is the exit code either way.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)

        three = await request(
            client, "POST", taru.url("/api/v1/task/exit_three/status?check=true")
        )
        zero = await request(
            client, "POST", taru.url("/api/v1/task/exit_zero/status?check=true")
        )
        unchecked = await request(
            client, "GET", taru.url("/api/v1/task/exit_three/status")
        )

        self.assertEqual(three, (520, "3"))
        self.assertEqual(zero, (200, "0"))
        self.assertEqual(unchecked, (200, "3"))

    async def test_check_fails_for_a_killed_run(self) -> None:
        """
        A run ended by a signal has no exit code: its status is C{null}, 520
        with C{check=true} and 200 without.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)
        await request(client, "POST", taru.url("/api/v1/task/long"))
        checked = Deferred.fromCoroutine(
            request(client, "GET", taru.url("/api/v1/task/long/status?check=true"))
        )
        unchecked = Deferred.fromCoroutine(
            request(client, "GET", taru.url("/api/v1/task/long/status"))
        )
        await sleep(0.2)

        await request(client, "POST", taru.url("/api/v1/task/long/stop"))

        self.assertEqual(await within(checked), (520, "null"))
        self.assertEqual(await within(unchecked), (200, "null"))

    async def test_finished_task_answers_at_once(self) -> None:
        """
        GET status of a task whose run has ended answers at once with that
        run's exit code, with C{check=true} too.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)
        await request(client, "POST", taru.url("/api/v1/task/exit_three/status"))

        plain = await request(client, "GET", taru.url("/api/v1/task/exit_three/status"))
        checked = await request(
            client, "GET", taru.url("/api/v1/task/exit_three/status?check=true")
        )

        self.assertEqual(plain, (200, "3"))
        self.assertEqual(checked, (520, "3"))


class StopTests(TestCase):
    """
    C{POST /api/v1/task/NAME/stop} stops a running task.
    """

    async def test_stop_kills_the_run(self) -> None:
        """
        Stopping a running task ends its run promptly; the run counts as
        killed by a signal: finished, with a null exit code.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)
        await request(client, "POST", taru.url("/api/v1/task/long"))

        stopped = await request(client, "POST", taru.url("/api/v1/task/long/stop"))
        status = await request(client, "GET", taru.url("/api/v1/task/long/status"))
        after = await task_state(client, taru, "long")

        self.assertEqual(stopped[0], 200)
        self.assertEqual(status, (200, "null"))
        self.assertEqual(after, ("finished", None))


class PermissionTests(TestCase):
    """
    With a C{users} section, every route checks the requester's permissions
    for the task, and a denial looks like an unknown task.
    """

    async def test_start_needs_can_run(self) -> None:
        """
        Only a user who may run a task can start it; others get 404 and the
        task does not start.
        """
        taru = await start_taru(self, USERS_CONFIG)
        client = http_client(self)
        url = taru.url("/api/v1/task/job")

        denied = [
            await request_with_type(client, "POST", url, user)
            for user in ("viewer", "reader")
        ]
        before = await task_state(client, taru, "job", "admin")
        allowed = await request(client, "POST", url, "runner")

        for response in denied:
            assert_plain_error(self, response, 404)
        self.assertEqual(before, ("new", None))
        self.assertEqual(allowed[0], 200)

    async def test_get_status_needs_can_view_status(self) -> None:
        """
        Only a user who may view a task's status can wait for its exit code.
        """
        taru = await start_taru(self, USERS_CONFIG)
        client = http_client(self)
        await request(client, "POST", taru.url("/api/v1/task/job/status"), "admin")
        url = taru.url("/api/v1/task/job/status")

        denied = [
            await request_with_type(client, "GET", url, user)
            for user in ("runner", "reader", "runner_reader")
        ]
        allowed = await request(client, "GET", url, "viewer")

        for response in denied:
            assert_plain_error(self, response, 404)
        self.assertEqual(allowed, (200, "5"))

    async def test_post_status_needs_can_run_and_can_view_status(self) -> None:
        """
        Only a user who may both run a task and view its status can start it
        and wait for it; others get 404 and the task does not start.
        """
        taru = await start_taru(self, USERS_CONFIG)
        client = http_client(self)
        url = taru.url("/api/v1/task/job/status")

        denied = [
            await request_with_type(client, "POST", url, user)
            for user in ("runner", "viewer", "reader", "runner_reader")
        ]
        before = await task_state(client, taru, "job", "admin")
        allowed = await request(client, "POST", url, "runner_viewer")

        for response in denied:
            assert_plain_error(self, response, 404)
        self.assertEqual(before, ("new", None))
        self.assertEqual(allowed, (200, "5"))

    async def test_get_output_needs_can_view_output(self) -> None:
        """
        Only a user who may view a task's output can read it.
        """
        taru = await start_taru(self, USERS_CONFIG)
        client = http_client(self)
        await request(client, "POST", taru.url("/api/v1/task/job/status"), "admin")
        url = taru.url("/api/v1/task/job/output")

        denied = [
            await request_with_type(client, "GET", url, user)
            for user in ("viewer", "runner", "runner_viewer")
        ]
        allowed = await request(client, "GET", url, "reader")

        for response in denied:
            assert_plain_error(self, response, 404)
        self.assertEqual(allowed, (200, "out\n"))

    async def test_post_output_needs_can_run_and_can_view_output(self) -> None:
        """
        Only a user who may both run a task and view its output can start it
        and read its output; others get 404 and the task does not start.
        """
        taru = await start_taru(self, USERS_CONFIG)
        client = http_client(self)
        url = taru.url("/api/v1/task/job/output")

        denied = [
            await request_with_type(client, "POST", url, user)
            for user in ("runner", "reader", "viewer", "runner_viewer")
        ]
        before = await task_state(client, taru, "job", "admin")
        allowed = await request(client, "POST", url, "runner_reader")

        for response in denied:
            assert_plain_error(self, response, 404)
        self.assertEqual(before, ("new", None))
        self.assertEqual(allowed, (200, "out\n"))

    async def test_stop_needs_can_run(self) -> None:
        """
        Only a user who may run a task can stop it; for others it answers 404
        and the task keeps running.
        """
        taru = await start_taru(self, USERS_CONFIG)
        client = http_client(self)
        await request(client, "POST", taru.url("/api/v1/task/long"), "admin")
        url = taru.url("/api/v1/task/long/stop")

        denied = [
            await request_with_type(client, "POST", url, user)
            for user in ("viewer", "reader")
        ]
        still = await task_state(client, taru, "long", "admin")
        allowed = await request(client, "POST", url, "runner")
        status = await request(
            client, "GET", taru.url("/api/v1/task/long/status"), "admin"
        )

        for response in denied:
            assert_plain_error(self, response, 404)
        self.assertEqual(still, ("running", None))
        self.assertEqual(allowed[0], 200)
        self.assertEqual(status, (200, "null"))

    async def test_permissions_follow_a_reload(self) -> None:
        """
        Once the configuration is reloaded, requests are judged by the new
        permissions.
        """
        taru = await start_taru(self, USERS_CONFIG)
        client = http_client(self)
        url = taru.url("/api/v1/task/job")
        before = await request(client, "POST", url, "viewer")

        taru.write_config(
            USERS_CONFIG.replace(
                "viewer:\n        can_run: []", "viewer:\n        can_run: [job]"
            )
        )
        taru.signal(SIGHUP)

        async def viewer_may_run() -> bool:
            listing = await task_list(client, taru, "viewer")
            return bool(listing["job"]["can_run"])

        await until(viewer_may_run)
        after = await request(client, "POST", url, "viewer")

        self.assertEqual(before[0], 404)
        self.assertEqual(after[0], 200)

    async def test_events_carry_only_viewable_tasks(self) -> None:
        """
        The event stream of a user carries the events of the tasks that user
        may view, and none of the others.
        """
        taru = await start_taru(self, USERS_CONFIG)
        client = http_client(self)
        response = await within(
            client.get(taru.url("/events"), headers=as_user("viewer"), unbuffered=True)
        )
        reader = _EventReader(lambda event: event == ["marker", {"ExitStatus": 0}])
        response.deliverBody(reader)
        self.addCleanup(reader.hang_up)

        for task in ("hidden", "job", "marker"):
            await request(
                client, "POST", taru.url(f"/api/v1/task/{task}/status"), "admin"
            )
        events = await within(reader.found)

        task_events = [event for event in events if event[0] is not None]
        self.assertEqual(
            task_events,
            [
                ["job", "Started"],
                ["job", {"ExitStatus": 5}],
                ["marker", "Started"],
                ["marker", {"ExitStatus": 0}],
            ],
        )


class AuthenticationTests(TestCase):
    """
    The C{X-User} header names the requester when users are configured, and
    is ignored when they are not.
    """

    def routes(self, taru: Taru) -> list[tuple[str, str]]:
        """
        Every route, as method and full URL, for the task C{job}.
        """
        return [
            ("GET", taru.url("/api/v1/tasks")),
            ("POST", taru.url("/api/v1/task/job")),
            ("GET", taru.url("/api/v1/task/job/status")),
            ("POST", taru.url("/api/v1/task/job/status")),
            ("GET", taru.url("/api/v1/task/job/output")),
            ("POST", taru.url("/api/v1/task/job/output")),
            ("POST", taru.url("/api/v1/task/job/stop")),
            ("GET", taru.url("/events")),
        ]

    async def test_no_user_is_unauthorized(self) -> None:
        """
        With users configured, a request without X-User answers 401 in plain
        text on every route, and runs nothing.
        """
        taru = await start_taru(self, USERS_CONFIG)
        client = http_client(self)

        responses = [
            await request_with_type(client, method, url)
            for method, url in self.routes(taru)
        ]
        after = await task_state(client, taru, "job", "admin")

        for response in responses:
            assert_plain_error(self, response, 401)
        self.assertEqual(after, ("new", None))

    async def test_unknown_user_is_forbidden(self) -> None:
        """
        With users configured, a request naming a user the configuration does
        not know answers 403 in plain text on every route, and runs nothing.
        """
        taru = await start_taru(self, USERS_CONFIG)
        client = http_client(self)

        responses = [
            await request_with_type(client, method, url, "mallory")
            for method, url in self.routes(taru)
        ]
        after = await task_state(client, taru, "job", "admin")

        for response in responses:
            assert_plain_error(self, response, 403)
        self.assertEqual(after, ("new", None))

    async def test_without_users_everything_is_open(self) -> None:
        """
        Without a users section, any request, with or without X-User, sees
        every task with every permission and may run it.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)

        anonymous = await task_list(client, taru)
        named = await task_list(client, taru, "mallory")
        ran = await request(
            client, "POST", taru.url("/api/v1/task/greet/output"), "mallory"
        )

        self.assertEqual(named, anonymous)
        self.assertEqual(len(named), 10)
        self.assertTrue(all(entry["can_run"] for entry in named.values()))
        self.assertTrue(all(entry["can_view_output"] for entry in named.values()))
        self.assertEqual(ran, (200, "hello\n"))


# Values that a shell would split, expand or otherwise change.
TRICKY_STRINGS = [
    "two words",
    "  leading and trailing  ",
    'it\'s "quoted"',
    "$HOME",
    "${HOME}",
    "`id`",
    "$(id)",
    "a; echo injected",
    "a && b || c",
    "line one\nline two",
    "tab\there",
    "*",
    "-n",
    "ünïcødé ✓ 日本",
    "back\\slash",
    "a=b&c=d",
    "%41",
    "+plus+",
    "$value",
    "$undefined",
]


class StringArgumentTests(TestCase):
    """
    A String argument reaches the task as one argv element, byte for byte,
    from any of the three places a request may give it.
    """

    async def assert_reaches_task(
        self, send: Callable[[str], Awaitable[tuple[int, str]]]
    ) -> None:
        """
        Check that every tricky value sent with C{send} reaches the task as
        exactly one element, that an undefined C{$undefined} stays literal,
        and that a word merely containing C{$value} is left as written.
        """
        received = []
        for value in TRICKY_STRINGS:
            code, body = await send(value)
            received.append((value, code, json.loads(body) if code == 200 else body))

        expected = [
            (value, 200, [value, "$undefined", "$value suffix"])
            for value in TRICKY_STRINGS
        ]
        self.assertEqual(received, expected)

    async def test_from_query_string(self) -> None:
        """
        Values given in the query string reach the task unchanged.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)

        async def send(value: str) -> tuple[int, str]:
            url = taru.url("/api/v1/task/show/output" + query(value=value))
            return await request(client, "POST", url)

        await self.assert_reaches_task(send)

    async def test_from_form_body(self) -> None:
        """
        Values given in a form-encoded body reach the task unchanged.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)

        async def send(value: str) -> tuple[int, str]:
            url = taru.url("/api/v1/task/show/output")
            return await request(client, "POST", url, data={"value": value})

        await self.assert_reaches_task(send)

    async def test_from_json_body(self) -> None:
        """
        Values given in a JSON object body reach the task unchanged.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)

        async def send(value: str) -> tuple[int, str]:
            url = taru.url("/api/v1/task/show/output")
            return await request(client, "POST", url, json={"value": value})

        await self.assert_reaches_task(send)

    async def test_arguments_work_with_status(self) -> None:
        """
        POST status takes arguments too; C{check} belongs to the endpoint,
        not to the task.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)

        status = await request(
            client,
            "POST",
            taru.url("/api/v1/task/count/status?check=true&number=12"),
        )
        output = await request(client, "GET", taru.url("/api/v1/task/count/output"))

        self.assertEqual(status, (200, "0"))
        self.assertEqual(json.loads(output[1]), ["12"])


class IntArgumentTests(TestCase):
    """
    An Int argument takes a 32-bit signed whole number written the one
    canonical decimal way.
    """

    async def test_canonical_numbers_are_accepted(self) -> None:
        """
        Canonical decimals from the minimum to the maximum 32-bit value reach
        the task as written.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)

        for number in ["12", "0", "-7", "2147483647", "-2147483648"]:
            url = taru.url("/api/v1/task/count/output" + query(number=number))
            code, body = await request(client, "POST", url)

            self.assertEqual((code, json.loads(body)), (200, [number]))

    async def test_json_whole_number_is_accepted(self) -> None:
        """
        In a JSON body, an Int may be given as a JSON number.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)

        code, body = await request(
            client, "POST", taru.url("/api/v1/task/count/output"), json={"number": 12}
        )

        self.assertEqual((code, json.loads(body)), (200, ["12"]))

    async def test_other_spellings_are_rejected(self) -> None:
        """
        Leading zeros, exponents, signs, spaces, fractions, hexadecimal and
        values outside 32 bits answer 400 in plain text, and the task does not
        start.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)
        rejected = [
            "012",
            "00",
            "1e3",
            "2147483648",
            "-2147483649",
            "99999999999999999999",
            "+1",
            " 12",
            "12 ",
            "1.0",
            "0x10",
            "",
            "twelve",
            "1_000",
            "١٢",
        ]

        responses = {}
        for number in rejected:
            url = taru.url("/api/v1/task/count" + query(number=number))
            responses[number] = await request_with_type(client, "POST", url)

        self.assertEqual(
            {number: response[0] for number, response in responses.items()},
            {number: 400 for number in rejected},
        )
        for response in responses.values():
            assert_plain_error(self, response, 400)
        self.assertEqual(await task_state(client, taru, "count"), ("new", None))

    async def test_json_non_integers_are_rejected(self) -> None:
        """
        In a JSON body, fractions, booleans, nulls, lists and numbers outside
        32 bits answer 400, and the task does not start.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)

        for number in [1e3, 12.5, True, None, [12], 2**31]:
            response = await within(
                client.post(taru.url("/api/v1/task/count"), json={"number": number})
            )
            body = (await within(response.content())).decode("utf-8")

            self.assertEqual(response.code, 400, (number, body))
            self.assertNotIn("Traceback", body)
        self.assertEqual(await task_state(client, taru, "count"), ("new", None))


class EnumArgumentTests(TestCase):
    """
    An Enum argument permits only the lines its source task last printed.
    """

    async def test_not_ready_before_source_ran(self) -> None:
        """
        Before the source task has run, an Enum argument answers 400 saying
        it is not ready and naming the source, and the task does not start.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)

        response = await request_with_type(
            client, "POST", taru.url("/api/v1/task/ping?host=alpha")
        )

        assert_plain_error(self, response, 400)
        self.assertIn("not ready", response[2])
        self.assertIn("hosts", response[2])
        self.assertEqual(await task_state(client, taru, "ping"), ("new", None))

    async def test_only_source_lines_are_accepted(self) -> None:
        """
        After the source task has run, each of its output lines is accepted,
        without the carriage return of a CRLF line end, and nothing else is.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)
        await request(client, "POST", taru.url("/api/v1/task/hosts/status"))

        accepted = [
            await request(
                client, "POST", taru.url("/api/v1/task/ping/output" + query(host=host))
            )
            for host in ["alpha", "beta", "gamma delta"]
        ]
        rejected = [
            await request_with_type(
                client, "POST", taru.url("/api/v1/task/ping" + query(host=host))
            )
            for host in ["alpha\r", "gamma", "delta", "", "ALPHA", "alpha\nbeta"]
        ]

        self.assertEqual(
            [(code, json.loads(body)) for code, body in accepted],
            [(200, ["alpha"]), (200, ["beta"]), (200, ["gamma delta"])],
        )
        for response in rejected:
            assert_plain_error(self, response, 400)


class ArgumentErrorTests(TestCase):
    """
    Requests whose arguments do not fit the task answer 400 in plain text and
    start nothing.
    """

    async def assert_rejected(
        self, taru: Taru, client: HTTPClient, task: str, **keywords: Any
    ) -> None:
        """
        Check that starting C{task} with these request parts answers 400 in
        plain text and leaves the task new.
        """
        response = await within(
            client.post(taru.url(f"/api/v1/task/{task}"), **keywords)
        )
        body = (await within(response.content())).decode("utf-8")
        content_type = response.headers.getRawHeaders("content-type")[0]

        assert_plain_error(self, (response.code, content_type, body), 400)
        self.assertEqual(await task_state(client, taru, task), ("new", None))

    async def test_missing_argument(self) -> None:
        """
        A task started without one of its arguments does not start.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)

        await self.assert_rejected(taru, client, "show")
        await self.assert_rejected(taru, client, "show", data={"other": "x"})

    async def test_unknown_argument(self) -> None:
        """
        An argument the task does not define is refused, whether the task
        takes other arguments or none.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)

        await self.assert_rejected(
            taru, client, "show", params={"value": "x", "other": "y"}
        )
        await self.assert_rejected(taru, client, "no_arguments", params={"x": "1"})
        await self.assert_rejected(taru, client, "no_arguments", json={"x": "1"})

    async def test_repeated_argument(self) -> None:
        """
        An argument given twice, in one place or in two, is refused.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)

        await self.assert_rejected(
            taru, client, "show", params=[("value", "a"), ("value", "b")]
        )
        await self.assert_rejected(
            taru, client, "show", params={"value": "a"}, data={"value": "b"}
        )
        await self.assert_rejected(
            taru, client, "show", data=[("value", "a"), ("value", "a")]
        )

    async def test_invalid_argument(self) -> None:
        """
        An invalid value or an unreadable body is refused.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)

        await self.assert_rejected(taru, client, "count", params={"number": "1e3"})
        await self.assert_rejected(taru, client, "show", params={"value": "nul\0"})
        await self.assert_rejected(
            taru,
            client,
            "show",
            data=b"{not json",
            headers={"Content-Type": ["application/json"]},
        )
        await self.assert_rejected(
            taru,
            client,
            "show",
            data=b'["a list"]',
            headers={"Content-Type": ["application/json"]},
        )

    async def test_rejected_run_with_output_starts_nothing(self) -> None:
        """
        POST output and POST status with bad arguments answer 400 and start
        nothing, like a plain start.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)

        output = await request_with_type(
            client, "POST", taru.url("/api/v1/task/count/output?number=012")
        )
        status = await request_with_type(
            client, "POST", taru.url("/api/v1/task/count/status?number=012")
        )

        assert_plain_error(self, output, 400)
        assert_plain_error(self, status, 400)
        self.assertEqual(await task_state(client, taru, "count"), ("new", None))


class ErrorTests(TestCase):
    """
    Errors are plain text and never show Python internals.
    """

    async def test_unknown_task_is_not_found_on_every_route(self) -> None:
        """
        Every route of a task that does not exist answers 404 in plain text.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)
        routes = [
            ("POST", "/api/v1/task/no_such_task"),
            ("GET", "/api/v1/task/no_such_task/status"),
            ("POST", "/api/v1/task/no_such_task/status"),
            ("GET", "/api/v1/task/no_such_task/output"),
            ("POST", "/api/v1/task/no_such_task/output"),
            ("POST", "/api/v1/task/no_such_task/stop"),
        ]

        responses = [
            await request_with_type(client, method, taru.url(path))
            for method, path in routes
        ]

        for response in responses:
            assert_plain_error(self, response, 404)

    async def test_unknown_paths_are_not_found(self) -> None:
        """
        Paths Taru does not serve answer 404 in plain text.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)
        paths = [
            "/",
            "/index.html",
            "/api",
            "/api/v1",
            "/api/v1/nothing",
            "/api/v2/tasks",
            "/api/v1/task/greet/nothing",
            "/api/v1/task/greet/status/more",
            "/api/v1/task",
            "/../../etc/passwd",
        ]

        responses = [
            await request_with_type(client, "GET", taru.url(path)) for path in paths
        ]

        for path, response in zip(paths, responses, strict=True):
            self.assertEqual(response[0], 404, path)
            assert_plain_error(self, response, 404)

    async def test_unknown_paths_are_not_found_for_post(self) -> None:
        """
        POST to a path Taru does not serve answers 404 too, never 405, which
        on the API means that a task is already running.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)
        paths = [
            "/api/v1/nothing",
            "/api/v1/tasks/greet",
            "/api/v1/task",
            "/api/v1/task/greet/nothing",
            "/api/v1/task/greet/status/more",
            "/api/v1/task/no%2Fsuch",
        ]

        responses = {
            path: await request_with_type(client, "POST", taru.url(path))
            for path in paths
        }

        self.assertEqual(
            {path: response[0] for path, response in responses.items()},
            {path: 404 for path in paths},
        )
        for response in responses.values():
            assert_plain_error(self, response, 404)

    async def test_malformed_requests_show_no_traceback(self) -> None:
        """
        Malformed requests are refused with a client error in plain text,
        never a Python traceback.
        """
        taru = await start_taru(self, OPEN_CONFIG)
        client = http_client(self)
        url = taru.url("/api/v1/task/show")
        attempts: list[Mapping[str, Any]] = [
            {"data": b"\xff\xfe=\xff", "headers": {}},
            {"data": b"value=%ff", "headers": {}},
            {"data": b"{", "headers": {"Content-Type": ["application/json"]}},
            {"data": b"null", "headers": {"Content-Type": ["application/json"]}},
            {"data": b"<x/>", "headers": {"Content-Type": ["application/xml"]}},
            {"data": b"v" * (128 * 1024), "headers": {}},
        ]

        misfits = []
        for attempt in attempts:
            response = await within(client.post(url, **attempt))
            body = (await within(response.content())).decode("utf-8", "replace")
            if not 400 <= response.code < 500 or "Traceback" in body:
                misfits.append((attempt["data"][:20], response.code, body))

        self.assertEqual(misfits, [])
        self.assertEqual(await task_state(client, taru, "show"), ("new", None))
        self.assertNotIn("Traceback", taru.log)
