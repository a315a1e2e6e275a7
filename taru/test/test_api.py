"""
Tests for L{taru.api}: every route, its status codes, headers and bodies,
driven in memory through treq's L{StubTreq}, with tasks run by a fake runner
and time kept by a L{Clock}.
"""

from __future__ import annotations

import json
import os
from typing import Any

import treq
from treq.testing import StubTreq
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.iweb import IResponse

from taru.api import CHECK_FAILED, TaruAPI, TaruRequest
from taru.config import parse_config
from taru.events import STREAM_PREAMBLE, EventBroadcaster
from taru.history import History
from taru.output import Spool
from taru.runners import RunnerError, task_environment
from taru.tasks import Tasks
from taru.test.fakes import FakeRunner, FakeRunningTask

BASE = "http://taru.example"

OPEN_CONFIG = """
tasks:
  hosts:
    command: [cat, hosts.list]
    meta:
      description: List the hosts
  ping:
    command: [ping, -c1, $host]
    meta:
      description: Ping a host
    arguments:
    - name: host
      datatype: Enum
      enum_source: hosts
  count:
    command: [seq, $n]
    arguments:
    - name: n
      datatype: Int
  dump:
    command: [pg_dump, db]
    buffered: false
    headers:
      content-type: application/sql
      content-disposition: "attachment; filename=dump.sql"
  say:
    command: [echo, $words]
    arguments:
    - name: words
      datatype: String
"""

USERS_CONFIG = """
tasks:
  echo:
    command: [echo, hi]
  pick:
    command: [echo, $item]
    arguments:
    - name: item
      datatype: Enum
      enum_source: echo
users:
  operator:
    can_run: [echo, pick]
    can_view_status: [echo, pick]
    can_view_output: [echo, pick]
  watcher:
    can_run: []
    can_view_status: [echo, pick]
    can_view_output: [echo]
  starter:
    can_run: [echo]
    can_view_status: []
    can_view_output: []
  starter_status:
    can_run: [echo]
    can_view_status: [echo]
    can_view_output: []
  starter_output:
    can_run: [echo]
    can_view_status: []
    can_view_output: [echo]
"""


class APITestCase(SynchronousTestCase):
    """
    A Taru API over a fake runner, and helpers to talk to it in memory.

    @ivar config_text: the configuration the API is built with.
    @ivar public: the folder served under C{/}, if any.
    """

    config_text = OPEN_CONFIG
    public: str | None = None

    def setUp(self) -> None:
        self.clock = Clock()
        self.runner = FakeRunner()
        self.events = EventBroadcaster(self.clock)
        self.tasks = Tasks(
            parse_config(self.config_text),
            self.runner,
            Spool(self.mktemp()),
            self.events,
            self.clock,
            History(self.mktemp()),
        )
        self.api = TaruAPI(self.tasks, self.events, self.public, self.clock)
        self.stub = StubTreq(self.api.app.resource())
        # StubTreq makes a Site of its own: give it the request class that
        # TaruAPI.site() gives the real one.
        self.stub._agent._serverFactory.requestFactory = TaruRequest
        self.addCleanup(self.assert_no_delayed_calls)
        self.addCleanup(self.close_outputs)
        self.addCleanup(self.events.stop)

    def assert_no_delayed_calls(self) -> None:
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def close_outputs(self) -> None:
        for state in self.tasks.all().values():
            if state.last is not None:
                state.last.output.close()
                state.last.output.release()
        self.stub.flush()

    def request(
        self, method: str, path: str, user: str | None = None, **kwargs: Any
    ) -> Deferred[IResponse]:
        """
        Send a request, and let everything happen that can happen before the
        run ends.
        """
        headers = dict(kwargs.pop("headers", {}))
        if user is not None:
            headers["X-User"] = [user]
        # StubTreq sets its request functions up at run time.
        answer: Deferred[IResponse] = self.stub.request(  # type: ignore[attr-defined]
            method, BASE + path, headers=headers, **kwargs
        )
        self.stub.flush()
        return answer

    def get(self, path: str, user: str | None = None, **kwargs: Any) -> IResponse:
        return self.successResultOf(self.request("GET", path, user, **kwargs))

    def post(self, path: str, user: str | None = None, **kwargs: Any) -> IResponse:
        return self.successResultOf(self.request("POST", path, user, **kwargs))

    def body(self, response: IResponse) -> bytes:
        """
        The whole body of a response that has ended.
        """
        reading = treq.content(response)
        self.stub.flush()
        return self.successResultOf(reading)

    def follow(self, response: IResponse) -> tuple[list[bytes], Deferred[None]]:
        """
        Start reading a streamed body.

        @return: the chunks read so far, growing as more arrive, and a
            Deferred that fires when the body ends.
        """
        chunks: list[bytes] = []
        ended = treq.collect(response, chunks.append)
        self.stub.flush()
        return chunks, ended

    def header(self, response: IResponse, name: str) -> str | None:
        """
        The last value of a response header, or L{None}.
        """
        values = response.headers.getRawHeaders(name)
        return None if values is None else values[-1]

    def error_text(self, response: IResponse, code: int) -> str:
        """
        Check that a response is an error with the given code and a short
        plain-text body, and return that body.
        """
        body = self.body(response)
        self.assertEqual(response.code, code, body)
        self.assertEqual(
            self.header(response, "content-type"), "text/plain; charset=utf-8"
        )
        self.assertNotIn(b"Traceback", body)
        self.assertNotIn(b"<html", body.lower())
        self.assertTrue(body.endswith(b"\n"))
        return body.decode("utf-8")

    def started(self) -> FakeRunningTask:
        """
        The one run the runner has started.
        """
        [running] = self.runner.started
        return running

    def run_to_end(self, path: str, output: bytes, exit_code: int | None = 0) -> None:
        """
        Run a task through the API to its end, writing C{output}.
        """
        self.assertEqual(self.post(path).code, 200)
        running = self.runner.started[-1]
        running.write(output)
        running.end(exit_code)
        self.stub.flush()


class TaskListTests(APITestCase):
    """
    Tests for C{GET /api/v1/tasks}.
    """

    def tasks_listed(self, user: str | None = None) -> Any:
        response = self.get("/api/v1/tasks", user)
        self.assertEqual(response.code, 200)
        return json.loads(self.body(response))

    def test_content_type(self) -> None:
        """
        The list is JSON, not to be cached.
        """
        response = self.get("/api/v1/tasks")

        self.assertEqual(self.header(response, "content-type"), "application/json")
        self.assertEqual(self.header(response, "cache-control"), "no-store")
        self.assertEqual(self.header(response, "x-content-type-options"), "nosniff")
        self.assertEqual(
            self.header(response, "content-security-policy"),
            "default-src 'none'; frame-ancestors 'none'",
        )

    def test_every_task_in_order(self) -> None:
        """
        Without users, every task is listed, in configured order.
        """
        listing = self.tasks_listed()

        self.assertEqual(list(listing), ["hosts", "ping", "count", "dump", "say"])

    def test_fields_of_new_task(self) -> None:
        """
        A task that never ran is C{new}, with no exit code, its meta, what the
        requester may do, and its arguments.
        """
        listing = self.tasks_listed()

        self.assertEqual(
            listing["ping"],
            {
                "name": "ping",
                "meta": {"description": "Ping a host"},
                "state": "new",
                "exit_code": None,
                "started_at": None,
                "duration": None,
                "run_id": None,
                "timed_out": False,
                "buffered": True,
                "can_run": True,
                "can_view_output": True,
                "arguments": [
                    {
                        "name": "host",
                        "datatype": "Enum",
                        "enum_source": "hosts",
                        "values": None,
                    }
                ],
            },
        )
        self.assertEqual(
            listing["count"]["arguments"], [{"name": "n", "datatype": "Int"}]
        )
        self.assertEqual(listing["dump"]["meta"], {})
        self.assertIs(listing["dump"]["buffered"], False)

    def test_running(self) -> None:
        """
        A task that runs is C{running}, with no exit code.
        """
        self.post("/api/v1/task/hosts")

        listing = self.tasks_listed()

        self.assertEqual(
            (listing["hosts"]["state"], listing["hosts"]["exit_code"]),
            ("running", None),
        )

    def test_running_time(self) -> None:
        """
        A running task tells when it started, in UTC, and how long it has
        run so far.
        """
        self.clock.advance(1_700_000_000.25)
        self.post("/api/v1/task/hosts")
        self.clock.advance(2.5)

        listing = self.tasks_listed()

        self.assertEqual(
            (listing["hosts"]["started_at"], listing["hosts"]["duration"]),
            ("2023-11-14T22:13:20.250Z", 2.5),
        )

    def test_finished_time(self) -> None:
        """
        An ended run's duration is how long it ran, however long ago it
        ended.
        """
        self.post("/api/v1/task/hosts")
        self.clock.advance(4)
        self.started().end(0)
        self.clock.advance(60)

        listing = self.tasks_listed()

        self.assertEqual(listing["hosts"]["duration"], 4.0)

    def test_finished(self) -> None:
        """
        A task that ended is C{finished}, with its exit code.
        """
        self.run_to_end("/api/v1/task/hosts", b"", exit_code=3)

        listing = self.tasks_listed()

        self.assertEqual(
            (listing["hosts"]["state"], listing["hosts"]["exit_code"]),
            ("finished", 3),
        )

    def test_killed(self) -> None:
        """
        A task a signal ended is C{finished} with a null exit code.
        """
        self.post("/api/v1/task/hosts")
        self.started().end(None, signal=15)

        listing = self.tasks_listed()

        self.assertEqual(
            (listing["hosts"]["state"], listing["hosts"]["exit_code"]),
            ("finished", None),
        )

    def test_list_follows_changes(self) -> None:
        """
        Asked again and again, the list always shows the latest state: each
        start, end and reload.
        """
        seen = [self.tasks_listed()["hosts"]["state"]]
        self.post("/api/v1/task/hosts")
        seen.append(self.tasks_listed()["hosts"]["state"])
        self.started().end(5)
        self.stub.flush()
        listing = self.tasks_listed()
        seen.append(listing["hosts"]["state"])
        self.tasks.reconfigure(parse_config(USERS_CONFIG.split("users:")[0]))
        names = list(self.tasks_listed())

        self.assertEqual(seen, ["new", "running", "finished"])
        self.assertEqual(listing["hosts"]["exit_code"], 5)
        self.assertEqual(listing["ping"]["arguments"][0]["values"], [])
        self.assertEqual(names, ["echo", "pick"])

    def test_enum_values(self) -> None:
        """
        An Enum argument lists the lines of its source's latest output.
        """
        self.run_to_end("/api/v1/task/hosts", b"alpha\nbeta\n")

        listing = self.tasks_listed()

        self.assertEqual(listing["ping"]["arguments"][0]["values"], ["alpha", "beta"])


class UserTaskListTests(APITestCase):
    """
    Tests for C{GET /api/v1/tasks} with users configured.
    """

    config_text = USERS_CONFIG

    def test_only_tasks_with_view_status(self) -> None:
        """
        A user sees only the tasks they may view the status of, with what
        they may do with each.
        """
        response = self.get("/api/v1/tasks", "watcher")

        listing = json.loads(self.body(response))
        self.assertEqual(list(listing), ["echo", "pick"])
        self.assertEqual(
            (listing["echo"]["can_run"], listing["echo"]["can_view_output"]),
            (False, True),
        )
        self.assertEqual(
            (listing["pick"]["can_run"], listing["pick"]["can_view_output"]),
            (False, False),
        )

    def test_nothing_to_view(self) -> None:
        """
        A user without any view_status permission gets an empty list.
        """
        response = self.get("/api/v1/tasks", "starter")

        self.assertEqual(json.loads(self.body(response)), {})

    def test_each_user_their_own_list(self) -> None:
        """
        Users asking one after the other each get the list they may see.
        """
        lists = [
            list(json.loads(self.body(self.get("/api/v1/tasks", user))))
            for user in ["operator", "starter", "operator", "watcher"]
        ]

        self.assertEqual(
            lists, [["echo", "pick"], [], ["echo", "pick"], ["echo", "pick"]]
        )

    def test_enum_values_only_for_runners(self) -> None:
        """
        The values of an Enum argument are listed only to users who may run
        the task.
        """
        operator = json.loads(self.body(self.get("/api/v1/tasks", "operator")))
        watcher = json.loads(self.body(self.get("/api/v1/tasks", "watcher")))

        self.assertIn("values", operator["pick"]["arguments"][0])
        self.assertNotIn("values", watcher["pick"]["arguments"][0])

    def test_no_user(self) -> None:
        """
        Without an X-User header the answer is 401.
        """
        response = self.get("/api/v1/tasks")

        self.assertIn("X-User", self.error_text(response, 401))

    def test_unknown_user(self) -> None:
        """
        An X-User the configuration does not know gets 403.
        """
        response = self.get("/api/v1/tasks", "mallory")

        self.assertIn("mallory", self.error_text(response, 403))


class StartTests(APITestCase):
    """
    Tests for C{POST /api/v1/task/NAME}.
    """

    def test_starts(self) -> None:
        """
        The task starts with its command and the task environment, and the
        answer is 200 with a plain-text message.
        """
        response = self.post("/api/v1/task/hosts")

        body = self.body(response)
        self.assertEqual(response.code, 200)
        self.assertEqual(
            self.header(response, "content-type"), "text/plain; charset=utf-8"
        )
        self.assertIn(b"hosts", body)
        [call] = self.runner.calls
        self.assertEqual(call.task, "hosts")
        self.assertEqual(call.argv, ("cat", "hosts.list"))
        self.assertEqual(
            call.environment, {**task_environment("hosts"), "TARU_RUN_ID": "1"}
        )

    def test_already_running(self) -> None:
        """
        Starting a running task gets 405 and starts nothing.
        """
        self.post("/api/v1/task/hosts")

        response = self.post("/api/v1/task/hosts")

        self.assertIn("already running", self.error_text(response, 405))
        self.assertEqual(len(self.runner.calls), 1)

    def test_again_after_end(self) -> None:
        """
        A task that ended can be started again.
        """
        self.run_to_end("/api/v1/task/hosts", b"")

        response = self.post("/api/v1/task/hosts")

        self.assertEqual(response.code, 200)
        self.assertEqual(len(self.runner.started), 2)

    def test_unknown_task(self) -> None:
        """
        Starting a task that does not exist gets 404 in plain text.
        """
        response = self.post("/api/v1/task/nope")

        self.assertEqual(self.error_text(response, 404), "no task named 'nope'\n")

    def test_runner_error(self) -> None:
        """
        When the runner cannot start the task, the answer is 500 with the
        runner's message, and the task can be started later.
        """
        self.runner.refusal = RunnerError("cannot start 'cat': No such file")

        response = self.post("/api/v1/task/hosts")

        self.assertEqual(
            self.error_text(response, 500), "cannot start 'cat': No such file\n"
        )
        self.assertEqual(self.tasks.get("hosts").state, "new")

    def test_unexpected_error(self) -> None:
        """
        An unexpected error gets 500 with a message that points to the log,
        and its traceback goes to the log only.
        """

        def broken_start(*args: object) -> None:
            raise ZeroDivisionError("the details of a bug")

        self.patch(self.runner, "start", broken_start)

        response = self.post("/api/v1/task/hosts")

        text = self.error_text(response, 500)
        self.assertIn("log", text)
        self.assertNotIn("details of a bug", text)
        self.assertNotIn("ZeroDivisionError", text)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)


class CrossSiteTests(APITestCase):
    """
    A page of another site cannot start or stop tasks through the browser of
    someone who may; Taru's own page, curl and scripts can.
    """

    def test_cross_site_refused(self) -> None:
        """
        A POST a browser marks as coming from another site gets 403 and
        starts nothing.
        """
        for site in ["cross-site", "same-site"]:
            response = self.post(
                "/api/v1/task/hosts", headers={"Sec-Fetch-Site": [site]}
            )

            self.assertIn("another site", self.error_text(response, 403))
        self.assertEqual(self.runner.calls, [])

    def test_stop_refused(self) -> None:
        """
        Stopping from another site's page is refused too.
        """
        self.post("/api/v1/task/hosts")

        response = self.post(
            "/api/v1/task/hosts/stop", headers={"Sec-Fetch-Site": ["cross-site"]}
        )

        self.error_text(response, 403)
        self.assertEqual(self.tasks.get("hosts").state, "running")

    def test_same_origin(self) -> None:
        """
        Taru's own page, or a request typed in the address bar, may start a
        task.
        """
        codes = []
        for site in ["same-origin", "none"]:
            response = self.post(
                "/api/v1/task/hosts", headers={"Sec-Fetch-Site": [site]}
            )
            codes.append(response.code)
            self.runner.started[-1].end(0)
            self.stub.flush()

        self.assertEqual(codes, [200, 200])

    def test_origin_of_another_host(self) -> None:
        """
        A browser that sends only C{Origin} is refused when it names another
        host than the request went to.
        """
        response = self.post(
            "/api/v1/task/hosts", headers={"Origin": ["http://evil.example"]}
        )

        self.error_text(response, 403)

    def test_origin_of_this_host(self) -> None:
        """
        C{Origin} naming the host the request went to, directly or as the
        proxy says with C{X-Forwarded-Host}, is Taru's own page.
        """
        direct = self.post(
            "/api/v1/task/hosts", headers={"Origin": ["http://taru.example"]}
        )
        self.started().end(0)
        proxied = self.post(
            "/api/v1/task/hosts",
            headers={
                "Origin": ["https://taru.company.example"],
                "X-Forwarded-Host": ["taru.company.example"],
            },
        )

        self.assertEqual((direct.code, proxied.code), (200, 200))

    def test_scripts(self) -> None:
        """
        A client that is not a browser sends neither header and may start
        tasks.
        """
        self.assertEqual(self.post("/api/v1/task/hosts").code, 200)

    def test_reading_allowed(self) -> None:
        """
        Reading is not refused: another site's page cannot read the answer
        anyway.
        """
        response = self.get("/api/v1/tasks", headers={"Sec-Fetch-Site": ["cross-site"]})

        self.assertEqual(response.code, 200)


class ArgumentTests(APITestCase):
    """
    Tests for the arguments routes that start tasks take.
    """

    def test_from_query(self) -> None:
        """
        Arguments may be given in the query string.
        """
        response = self.post("/api/v1/task/count?n=3")

        self.assertEqual(response.code, 200)
        self.assertEqual(self.runner.calls[0].argv, ("seq", "3"))

    def test_very_long_int(self) -> None:
        """
        An Int of thousands of digits is refused as out of range, not a
        server error.
        """
        response = self.post("/api/v1/task/count?n=1" + "0" * 5000)

        self.assertIn("must be between", self.error_text(response, 400))
        self.assertEqual(self.runner.calls, [])

    def test_json_lone_surrogate(self) -> None:
        """
        A JSON string holding a lone surrogate is not text: refused.
        """
        response = self.post(
            "/api/v1/task/say",
            data=b'{"words": "\\udcff"}',
            headers={"content-type": "application/json"},
        )

        self.assertIn("lone surrogate", self.error_text(response, 400))
        self.assertEqual(self.runner.calls, [])

    def test_json_repeated_argument(self) -> None:
        """
        An argument named twice in a JSON object is refused, as in a query.
        """
        response = self.post(
            "/api/v1/task/count",
            data=b'{"n": "1", "n": "2"}',
            headers={"content-type": "application/json"},
        )

        self.assertIn("more than once", self.error_text(response, 400))
        self.assertEqual(self.runner.calls, [])

    def test_json_not_utf8(self) -> None:
        """
        A JSON body in another encoding than UTF-8 is refused.
        """
        response = self.post(
            "/api/v1/task/count",
            data='{"n": "1"}'.encode("utf-16"),
            headers={"content-type": "application/json"},
        )

        self.assertIn("UTF-8 JSON", self.error_text(response, 400))

    def test_json_too_deep(self) -> None:
        """
        JSON nested deeper than the parser goes is refused, not a server error.
        """
        response = self.post(
            "/api/v1/task/count",
            data=b"[" * 30000,
            headers={"content-type": "application/json"},
        )

        self.error_text(response, 400)

    def test_multipart_body(self) -> None:
        """
        A multipart body gets 415 in plain text, like any other unread type.
        """
        response = self.post(
            "/api/v1/task/count",
            data=b"--x\r\nContent-Disposition: form-data; name=n\r\n\r\n1\r\n--x--\r\n",
            headers={"content-type": "multipart/form-data; boundary=x"},
        )

        self.error_text(response, 415)

    def test_from_form_body(self) -> None:
        """
        Arguments may be given in a form-encoded body.
        """
        response = self.post("/api/v1/task/count", data={"n": "4"})

        self.assertEqual(response.code, 200)
        self.assertEqual(self.runner.calls[0].argv, ("seq", "4"))

    def test_from_body_without_content_type(self) -> None:
        """
        A body without a content type is read as form-encoded.
        """
        response = self.post("/api/v1/task/count", data=b"n=8")

        self.assertEqual(response.code, 200)
        self.assertEqual(self.runner.calls[0].argv, ("seq", "8"))

    def test_from_json_body(self) -> None:
        """
        Arguments may be given in a JSON object, as numbers or strings.
        """
        self.post("/api/v1/task/count", json={"n": 5})
        self.runner.started[0].end(0)
        self.post("/api/v1/task/count", json={"n": "6"})

        self.assertEqual(
            [call.argv for call in self.runner.calls], [("seq", "5"), ("seq", "6")]
        )

    def test_given_twice(self) -> None:
        """
        An argument given in both the query and the body is refused.
        """
        response = self.post("/api/v1/task/count?n=1", data={"n": "2"})

        self.assertIn("more than once", self.error_text(response, 400))
        self.assertEqual(self.runner.calls, [])

    def test_invalid(self) -> None:
        """
        A value that does not fit the argument's type gets 400 and the task
        does not start.
        """
        response = self.post("/api/v1/task/count?n=three")

        self.assertIn("'n'", self.error_text(response, 400))
        self.assertEqual(self.runner.calls, [])
        self.assertEqual(self.tasks.get("count").state, "new")

    def test_missing(self) -> None:
        """
        A missing argument gets 400 and the task does not start.
        """
        response = self.post("/api/v1/task/count")

        self.assertIn("required", self.error_text(response, 400))
        self.assertEqual(self.runner.calls, [])

    def test_unknown(self) -> None:
        """
        An argument the task does not take gets 400.
        """
        response = self.post("/api/v1/task/count?n=1&m=2")

        self.assertIn("'m'", self.error_text(response, 400))
        self.assertEqual(self.runner.calls, [])

    def test_non_ascii_from_query(self) -> None:
        """
        A value with non-ASCII characters, percent-encoded as UTF-8 in the
        query string, reaches the command as those characters.
        """
        response = self.post("/api/v1/task/say?words=caf%C3%A9")

        self.assertEqual(response.code, 200)
        self.assertEqual(self.runner.calls[0].argv, ("echo", "café"))

    def test_non_ascii_from_form_body(self) -> None:
        """
        A value with non-ASCII characters in a form-encoded body reaches the
        command as those characters.
        """
        response = self.post("/api/v1/task/say", data={"words": "café"})

        self.assertEqual(response.code, 200)
        self.assertEqual(self.runner.calls[0].argv, ("echo", "café"))

    def test_non_ascii_from_json_body(self) -> None:
        """
        A value with non-ASCII characters in a JSON body reaches the command
        as those characters.
        """
        response = self.post("/api/v1/task/say", json={"words": "café"})

        self.assertEqual(response.code, 200)
        self.assertEqual(self.runner.calls[0].argv, ("echo", "café"))

    def test_not_utf8(self) -> None:
        """
        A value that is not UTF-8 gets 400.
        """
        response = self.post("/api/v1/task/count?n=%ff")

        self.assertIn("UTF-8", self.error_text(response, 400))
        self.assertEqual(self.runner.calls, [])

    def test_unsupported_body(self) -> None:
        """
        A body of a type Taru does not read gets 415.
        """
        response = self.post(
            "/api/v1/task/count", data=b"n,4", headers={"Content-Type": ["text/csv"]}
        )

        self.assertIn("application/json", self.error_text(response, 415))
        self.assertEqual(self.runner.calls, [])

    def test_invalid_json(self) -> None:
        """
        A JSON body that does not parse gets 400.
        """
        response = self.post(
            "/api/v1/task/count",
            data=b"{n: 4",
            headers={"Content-Type": ["application/json"]},
        )

        self.assertIn("JSON", self.error_text(response, 400))
        self.assertEqual(self.runner.calls, [])

    def test_json_not_an_object(self) -> None:
        """
        A JSON body that is not an object gets 400.
        """
        response = self.post("/api/v1/task/count", json=[4])

        self.assertIn("object", self.error_text(response, 400))
        self.assertEqual(self.runner.calls, [])

    def test_json_value_of_wrong_kind(self) -> None:
        """
        A JSON value that is neither a string nor a whole number gets 400.
        """
        response = self.post("/api/v1/task/count", json={"n": True})

        self.assertIn("'n'", self.error_text(response, 400))
        self.assertEqual(self.runner.calls, [])

    def test_enum_not_ready(self) -> None:
        """
        An Enum argument whose source never ran gets 400 saying to run it.
        """
        response = self.post("/api/v1/task/ping?host=alpha")

        self.assertIn("run 'hosts' first", self.error_text(response, 400))
        self.assertEqual(self.runner.calls, [])

    def test_enum_value_listed(self) -> None:
        """
        An Enum value listed by its source's output is accepted and
        substituted.
        """
        self.run_to_end("/api/v1/task/hosts", b"alpha\nbeta\n")

        response = self.post("/api/v1/task/ping?host=beta")

        self.assertEqual(response.code, 200)
        self.assertEqual(self.runner.calls[-1].argv, ("ping", "-c1", "beta"))

    def test_enum_value_not_listed(self) -> None:
        """
        An Enum value its source did not list gets 400.
        """
        self.run_to_end("/api/v1/task/hosts", b"alpha\nbeta\n")

        response = self.post("/api/v1/task/ping?host=gamma")

        self.assertIn("'gamma'", self.error_text(response, 400))
        self.assertEqual(len(self.runner.calls), 1)

    def test_with_output(self) -> None:
        """
        POST output takes arguments, and refuses invalid ones before
        starting.
        """
        refused = self.post("/api/v1/task/count/output?n=x")
        self.error_text(refused, 400)
        accepted = self.post("/api/v1/task/count/output?n=2")

        self.assertEqual(accepted.code, 200)
        self.assertEqual([call.argv for call in self.runner.calls], [("seq", "2")])

    def test_with_status(self) -> None:
        """
        POST status takes arguments; C{check} belongs to the endpoint.
        """
        refused = self.request("POST", "/api/v1/task/count/status?n=x")
        self.error_text(self.successResultOf(refused), 400)
        answer = self.request("POST", "/api/v1/task/count/status?n=2&check=true")
        self.started().end(0)
        self.stub.flush()

        self.assertEqual(self.successResultOf(answer).code, 200)
        self.assertEqual([call.argv for call in self.runner.calls], [("seq", "2")])


class OutputTests(APITestCase):
    """
    Tests for C{GET} and C{POST /api/v1/task/NAME/output}.
    """

    def test_default_headers(self) -> None:
        """
        Output is plain text by default, not to be cached, buffered by a
        proxy or sniffed by a browser.
        """
        self.run_to_end("/api/v1/task/hosts", b"alpha\n")

        response = self.get("/api/v1/task/hosts/output")

        self.assertEqual(response.code, 200)
        self.assertEqual(
            self.header(response, "content-type"), "text/plain; charset=utf-8"
        )
        self.assertEqual(self.header(response, "cache-control"), "no-store")
        self.assertEqual(self.header(response, "x-accel-buffering"), "no")
        self.assertEqual(self.header(response, "x-content-type-options"), "nosniff")

    def test_configured_headers(self) -> None:
        """
        A task's configured headers are sent with its output, replacing the
        default content type.
        """
        response = self.post("/api/v1/task/dump/output")

        self.assertEqual(self.header(response, "content-type"), "application/sql")
        self.assertEqual(
            self.header(response, "content-disposition"),
            "attachment; filename=dump.sql",
        )
        self.assertEqual(self.header(response, "x-content-type-options"), "nosniff")

    def test_post_streams_run(self) -> None:
        """
        POST output starts the task and streams its bytes exactly as written,
        as they are written, ending with the run.
        """
        response = self.post("/api/v1/task/hosts/output")
        chunks, ended = self.follow(response)
        running = self.started()

        running.write(b"one\r\n\x00")
        self.stub.flush()
        self.assertEqual(b"".join(chunks), b"one\r\n\x00")
        self.assertNoResult(ended)
        running.write(b"\xfftwo")
        running.end(0)
        self.stub.flush()

        self.successResultOf(ended)
        self.assertEqual(b"".join(chunks), b"one\r\n\x00\xfftwo")

    def test_post_unbuffered_streams_everything(self) -> None:
        """
        POST output of an unbuffered task gets its output from the first
        byte.
        """
        response = self.post("/api/v1/task/dump/output")
        chunks, ended = self.follow(response)

        self.started().write(b"-- dump\n")
        self.started().end(0)
        self.stub.flush()

        self.successResultOf(ended)
        self.assertEqual(b"".join(chunks), b"-- dump\n")

    def test_post_already_running(self) -> None:
        """
        POST output of a running task gets 405 and starts nothing.
        """
        self.post("/api/v1/task/hosts")

        response = self.post("/api/v1/task/hosts/output")

        self.error_text(response, 405)
        self.assertEqual(len(self.runner.calls), 1)

    def test_get_buffered_running(self) -> None:
        """
        GET output of a running buffered task gets what was written so far,
        then what follows, until the run ends.
        """
        self.post("/api/v1/task/hosts")
        running = self.started()
        running.write(b"early\n")

        chunks, ended = self.follow(self.get("/api/v1/task/hosts/output"))
        running.write(b"late\n")
        self.stub.flush()
        self.assertNoResult(ended)
        running.end(0)
        self.stub.flush()

        self.successResultOf(ended)
        self.assertEqual(b"".join(chunks), b"early\nlate\n")

    def test_get_finished(self) -> None:
        """
        GET output of a finished buffered task gets its whole output at once.
        """
        self.run_to_end("/api/v1/task/hosts", b"alpha\nbeta\n")

        response = self.get("/api/v1/task/hosts/output")

        self.assertEqual(self.body(response), b"alpha\nbeta\n")

    def test_get_finished_has_length(self) -> None:
        """
        GET output of a finished buffered task states its length, and that
        ranges of it may be asked for.
        """
        self.run_to_end("/api/v1/task/hosts", b"alpha\nbeta\n")

        response = self.get("/api/v1/task/hosts/output")

        # Twisted's client keeps Content-Length as the response's length.
        self.assertEqual(response.length, 11)
        self.assertEqual(self.header(response, "accept-ranges"), "bytes")

    def test_range_of_finished(self) -> None:
        """
        GET output with C{Range: bytes=N-} of a finished run gets the rest of
        its output from byte N, as 206 with its place stated.
        """
        self.run_to_end("/api/v1/task/hosts", b"alpha\nbeta\n")

        response = self.get(
            "/api/v1/task/hosts/output", headers={"Range": ["bytes=6-"]}
        )

        self.assertEqual(response.code, 206)
        self.assertEqual(self.header(response, "content-range"), "bytes 6-10/11")
        self.assertEqual(self.body(response), b"beta\n")

    def test_range_in_another_unit(self) -> None:
        """
        A range in a unit other than bytes is ignored: the whole output, 200.
        """
        self.run_to_end("/api/v1/task/hosts", b"alpha\nbeta\n")

        response = self.get(
            "/api/v1/task/hosts/output", headers={"Range": ["items=0-1"]}
        )

        self.assertEqual(response.code, 200)
        self.assertEqual(self.body(response), b"alpha\nbeta\n")

    def test_range_of_running(self) -> None:
        """
        A client that lost a running task's output continues with
        C{Range: bytes=N-}: it gets exactly what it missed and what follows,
        without a byte twice.
        """
        self.post("/api/v1/task/hosts")
        running = self.started()
        running.write(b"0123456789")

        response = self.get(
            "/api/v1/task/hosts/output", headers={"Range": ["bytes=4-"]}
        )
        chunks, ended = self.follow(response)
        running.write(b"abc")
        running.end(0)
        self.stub.flush()

        self.successResultOf(ended)
        self.assertEqual(response.code, 206)
        self.assertEqual(
            self.header(response, "content-range"), "bytes 4-9007199254740991/*"
        )
        self.assertEqual(b"".join(chunks), b"456789abc")

    def test_range_from_another_run(self) -> None:
        """
        A range asked for with C{If-Range} naming an earlier run gets the
        whole output of the latest run instead of a part of it.
        """
        self.run_to_end("/api/v1/task/hosts", b"first run\n")
        earlier = self.header(self.get("/api/v1/task/hosts/output"), "etag")
        self.clock.advance(1)
        self.run_to_end("/api/v1/task/hosts", b"second run\n")

        response = self.get(
            "/api/v1/task/hosts/output",
            headers={"Range": ["bytes=6-"], "If-Range": [earlier or ""]},
        )

        self.assertEqual(response.code, 200)
        self.assertEqual(self.body(response), b"second run\n")
        self.assertNotEqual(self.header(response, "etag"), earlier)

    def test_range_beyond_end(self) -> None:
        """
        A range that starts past a finished output's end gets 416, stating
        the output's length.
        """
        self.run_to_end("/api/v1/task/hosts", b"alpha\n")

        response = self.get(
            "/api/v1/task/hosts/output", headers={"Range": ["bytes=6-"]}
        )

        self.error_text(response, 416)
        self.assertEqual(self.header(response, "content-range"), "bytes */6")

    def test_range_malformed(self) -> None:
        """
        A C{Range} Taru does not serve gets 416 saying which it serves.
        """
        self.run_to_end("/api/v1/task/hosts", b"alpha\n")

        response = self.get(
            "/api/v1/task/hosts/output", headers={"Range": ["bytes=0-1,3-4"]}
        )

        self.assertIn("bytes=N-", self.error_text(response, 416))

    def test_range_of_unbuffered_ignored(self) -> None:
        """
        An unbuffered task keeps no output to take a range of: C{Range} is
        ignored, and the response is the live output as without it.
        """
        self.post("/api/v1/task/dump")
        running = self.started()

        response = self.get(
            "/api/v1/task/dump/output", headers={"Range": ["bytes=100-"]}
        )
        chunks, ended = self.follow(response)
        running.write(b"live\n")
        running.end(0)
        self.stub.flush()

        self.successResultOf(ended)
        self.assertEqual((response.code, b"".join(chunks)), (200, b"live\n"))
        self.assertIsNone(self.header(response, "accept-ranges"))

    def test_get_unbuffered_gets_only_later_bytes(self) -> None:
        """
        GET output of a running unbuffered task gets only what is written
        after the request.
        """
        self.post("/api/v1/task/dump")
        running = self.started()
        running.write(b"early\n")

        chunks, ended = self.follow(self.get("/api/v1/task/dump/output"))
        running.write(b"late\n")
        running.end(0)
        self.stub.flush()

        self.successResultOf(ended)
        self.assertEqual(b"".join(chunks), b"late\n")

    def test_get_never_run(self) -> None:
        """
        GET output of a task that never ran is empty, with the task's headers.
        """
        response = self.get("/api/v1/task/dump/output")

        self.assertEqual(response.code, 200)
        self.assertEqual(self.header(response, "content-type"), "application/sql")
        self.assertEqual(self.body(response), b"")

    def test_get_unknown(self) -> None:
        """
        GET output of a task that does not exist gets 404.
        """
        response = self.get("/api/v1/task/nope/output")

        self.assertEqual(self.error_text(response, 404), "no task named 'nope'\n")

    def test_post_unknown(self) -> None:
        """
        POST output of a task that does not exist gets 404.
        """
        response = self.post("/api/v1/task/nope/output")

        self.error_text(response, 404)


class StatusTests(APITestCase):
    """
    Tests for C{GET} and C{POST /api/v1/task/NAME/status}.
    """

    def status_after(self, answer: Deferred[IResponse]) -> tuple[int, bytes]:
        response = self.successResultOf(answer)
        return response.code, self.body(response)

    def test_get_waits_for_end(self) -> None:
        """
        GET status of a running task answers only once the run ends, with its
        exit code as plain text.
        """
        self.post("/api/v1/task/hosts")

        answer = self.request("GET", "/api/v1/task/hosts/status")
        self.assertNoResult(answer)
        self.started().end(0)
        self.stub.flush()

        response = self.successResultOf(answer)
        self.assertEqual(
            self.header(response, "content-type"), "text/plain; charset=utf-8"
        )
        self.assertEqual((response.code, self.body(response)), (200, b"0"))

    def test_get_after_end(self) -> None:
        """
        GET status of a finished task answers at once with its exit code.
        """
        self.run_to_end("/api/v1/task/hosts", b"", exit_code=3)

        answer = self.request("GET", "/api/v1/task/hosts/status")

        self.assertEqual(self.status_after(answer), (200, b"3"))

    def test_get_killed(self) -> None:
        """
        The status of a run a signal ended is C{null}.
        """
        self.post("/api/v1/task/hosts")
        self.started().end(None, signal=9)

        answer = self.request("GET", "/api/v1/task/hosts/status")

        self.assertEqual(self.status_after(answer), (200, b"null"))

    def test_get_never_run(self) -> None:
        """
        The status of a task that never ran is C{null}.
        """
        answer = self.request("GET", "/api/v1/task/hosts/status")

        self.assertEqual(self.status_after(answer), (200, b"null"))

    def test_check_nonzero(self) -> None:
        """
        With C{check=true}, a non-zero exit code gets 520.
        """
        self.run_to_end("/api/v1/task/hosts", b"", exit_code=3)

        answer = self.request("GET", "/api/v1/task/hosts/status?check=true")

        self.assertEqual(self.status_after(answer), (CHECK_FAILED, b"3"))

    def test_check_zero(self) -> None:
        """
        With C{check=true}, exit code 0 gets 200.
        """
        self.run_to_end("/api/v1/task/hosts", b"", exit_code=0)

        answer = self.request("GET", "/api/v1/task/hosts/status?check=true")

        self.assertEqual(self.status_after(answer), (200, b"0"))

    def test_check_killed(self) -> None:
        """
        With C{check=true}, a run a signal ended gets 520.
        """
        self.post("/api/v1/task/hosts")
        self.started().end(None, signal=9)

        answer = self.request("GET", "/api/v1/task/hosts/status?check=true")

        self.assertEqual(self.status_after(answer), (CHECK_FAILED, b"null"))

    def test_post_starts_and_waits(self) -> None:
        """
        POST status starts the task and answers with its exit code once it
        ends.
        """
        answer = self.request("POST", "/api/v1/task/hosts/status")
        self.assertNoResult(answer)
        self.assertEqual(len(self.runner.started), 1)

        self.started().end(7)
        self.stub.flush()

        self.assertEqual(self.status_after(answer), (200, b"7"))

    def test_post_check(self) -> None:
        """
        POST status with C{check=true} gets 520 when the run fails.
        """
        answer = self.request("POST", "/api/v1/task/hosts/status?check=true")
        self.started().end(1)
        self.stub.flush()

        self.assertEqual(self.status_after(answer), (CHECK_FAILED, b"1"))

    def test_post_already_running(self) -> None:
        """
        POST status of a running task gets 405.
        """
        self.post("/api/v1/task/hosts")

        response = self.post("/api/v1/task/hosts/status")

        self.error_text(response, 405)

    def test_unknown(self) -> None:
        """
        The status of a task that does not exist gets 404.
        """
        self.error_text(self.get("/api/v1/task/nope/status"), 404)
        self.error_text(self.post("/api/v1/task/nope/status"), 404)


class StopTests(APITestCase):
    """
    Tests for C{POST /api/v1/task/NAME/stop}.
    """

    def test_stops_running(self) -> None:
        """
        Stopping a running task stops its run and answers 200.
        """
        self.post("/api/v1/task/hosts")

        response = self.post("/api/v1/task/hosts/stop")

        self.assertEqual(response.code, 200)
        self.assertIn(b"stopping", self.body(response))
        self.assertEqual(self.started().stop_count, 1)

    def test_not_running(self) -> None:
        """
        Stopping a task that is not running answers 200 and stops nothing.
        """
        self.run_to_end("/api/v1/task/hosts", b"")

        response = self.post("/api/v1/task/hosts/stop")

        self.assertEqual(response.code, 200)
        self.assertIn(b"not running", self.body(response))
        self.assertEqual(self.started().stop_count, 0)

    def test_unknown(self) -> None:
        """
        Stopping a task that does not exist gets 404.
        """
        self.error_text(self.post("/api/v1/task/nope/stop"), 404)


class EventTests(APITestCase):
    """
    Tests for C{GET /events}.
    """

    def subscribe(self, user: str | None = None) -> tuple[list[bytes], Deferred[None]]:
        response = self.get("/events", user)
        self.assertEqual(response.code, 200)
        return self.follow(response)

    def test_headers(self) -> None:
        """
        The stream is server-sent events, not to be cached or buffered, and
        starts with the reconnection delay.
        """
        response = self.get("/events")

        chunks, _ = self.follow(response)

        self.assertEqual(self.header(response, "content-type"), "text/event-stream")
        self.assertEqual(self.header(response, "cache-control"), "no-store")
        self.assertEqual(self.header(response, "x-accel-buffering"), "no")
        self.assertEqual(b"".join(chunks), STREAM_PREAMBLE)

    def test_started_and_ended(self) -> None:
        """
        A run's start and end are sent as they happen.
        """
        chunks, _ = self.subscribe()

        self.post("/api/v1/task/hosts")
        self.started().end(3)
        self.stub.flush()

        self.assertEqual(
            b"".join(chunks),
            STREAM_PREAMBLE
            + b'id: 0-1\ndata: ["hosts","Started"]\n\n'
            + b'id: 0-2\ndata: ["hosts",{"ExitStatus":3}]\n\n',
        )

    def test_killed(self) -> None:
        """
        The end of a run a signal ended carries a null exit status.
        """
        chunks, _ = self.subscribe()

        self.post("/api/v1/task/hosts")
        self.started().end(None, signal=9)
        self.stub.flush()

        self.assertTrue(
            b"".join(chunks).endswith(b'data: ["hosts",{"ExitStatus":null}]\n\n')
        )

    def test_last_event_id(self) -> None:
        """
        A client that reconnects with C{Last-Event-ID} gets the events it
        missed first.
        """
        self.post("/api/v1/task/hosts")
        self.started().end(0)
        self.stub.flush()

        response = self.get("/events", headers={"Last-Event-ID": ["0-1"]})
        chunks, _ = self.follow(response)

        self.assertEqual(
            b"".join(chunks),
            STREAM_PREAMBLE + b'id: 0-2\ndata: ["hosts",{"ExitStatus":0}]\n\n',
        )

    def test_ends_when_broadcaster_stops(self) -> None:
        """
        The stream ends when the broadcaster stops.
        """
        _, ended = self.subscribe()

        self.events.stop()
        self.stub.flush()

        self.successResultOf(ended)
        self.assertEqual(self.events.subscriber_count, 0)


class UserEventTests(APITestCase):
    """
    Tests for C{GET /events} with users configured.
    """

    config_text = USERS_CONFIG

    def test_filtered_per_user(self) -> None:
        """
        Each user gets the events of only the tasks they may view the status
        of; events about Taru as a whole reach everyone.
        """
        watcher, _ = self.follow(self.get("/events", "watcher"))
        starter, _ = self.follow(self.get("/events", "starter"))

        self.post("/api/v1/task/echo", "operator")
        self.events.publish(None, "UpdateConfig")
        self.stub.flush()

        self.assertEqual(
            b"".join(watcher),
            STREAM_PREAMBLE
            + b'id: 0-1\ndata: ["echo","Started"]\n\n'
            + b'id: 0-2\ndata: [null,"UpdateConfig"]\n\n',
        )
        self.assertEqual(
            b"".join(starter),
            STREAM_PREAMBLE + b'id: 0-2\ndata: [null,"UpdateConfig"]\n\n',
        )

    def test_no_user(self) -> None:
        """
        Without an X-User header the answer is 401 and nothing is subscribed.
        """
        self.error_text(self.get("/events"), 401)

        self.assertEqual(self.events.subscriber_count, 0)

    def test_unknown_user(self) -> None:
        """
        An unknown user gets 403 and nothing is subscribed.
        """
        self.error_text(self.get("/events", "mallory"), 403)

        self.assertEqual(self.events.subscriber_count, 0)


class PermissionTests(APITestCase):
    """
    Each route asks for the permissions the API documents, and a task the
    requester may not use looks exactly like one that does not exist.
    """

    config_text = USERS_CONFIG

    def answer_code(self, method: str, path: str, user: str | None) -> int:
        answer = self.request(method, path, user)
        for running in self.runner.started:
            if not running.ended.called:
                running.end(0)
        self.stub.flush()
        response = self.successResultOf(answer)
        self.body(response)
        return int(response.code)

    def codes_for(self, method: str, path: str) -> dict[str, int]:
        """
        The status code each user gets for one request.
        """
        users = ["operator", "watcher", "starter", "starter_status", "starter_output"]
        return {user: self.answer_code(method, path, user) for user in users}

    def test_start_needs_can_run(self) -> None:
        """
        Starting a task needs can_run.
        """
        self.assertEqual(
            self.codes_for("POST", "/api/v1/task/echo"),
            {
                "operator": 200,
                "watcher": 404,
                "starter": 200,
                "starter_status": 200,
                "starter_output": 200,
            },
        )

    def test_get_output_needs_can_view_output(self) -> None:
        """
        Reading the output needs can_view_output.
        """
        self.assertEqual(
            self.codes_for("GET", "/api/v1/task/echo/output"),
            {
                "operator": 200,
                "watcher": 200,
                "starter": 404,
                "starter_status": 404,
                "starter_output": 200,
            },
        )

    def test_post_output_needs_run_and_view_output(self) -> None:
        """
        Running with output needs both can_run and can_view_output.
        """
        self.assertEqual(
            self.codes_for("POST", "/api/v1/task/echo/output"),
            {
                "operator": 200,
                "watcher": 404,
                "starter": 404,
                "starter_status": 404,
                "starter_output": 200,
            },
        )

    def test_get_status_needs_can_view_status(self) -> None:
        """
        Reading the status needs can_view_status.
        """
        self.assertEqual(
            self.codes_for("GET", "/api/v1/task/echo/status"),
            {
                "operator": 200,
                "watcher": 200,
                "starter": 404,
                "starter_status": 200,
                "starter_output": 404,
            },
        )

    def test_post_status_needs_run_and_view_status(self) -> None:
        """
        Running with status needs both can_run and can_view_status.
        """
        self.assertEqual(
            self.codes_for("POST", "/api/v1/task/echo/status"),
            {
                "operator": 200,
                "watcher": 404,
                "starter": 404,
                "starter_status": 200,
                "starter_output": 404,
            },
        )

    def test_stop_needs_can_run(self) -> None:
        """
        Stopping needs can_run.
        """
        self.assertEqual(
            self.codes_for("POST", "/api/v1/task/echo/stop"),
            {
                "operator": 200,
                "watcher": 404,
                "starter": 200,
                "starter_status": 200,
                "starter_output": 200,
            },
        )

    def test_forbidden_is_not_started_or_stopped(self) -> None:
        """
        A refused start starts nothing and a refused stop stops nothing.
        """
        self.post("/api/v1/task/echo", "watcher")
        self.assertEqual(self.runner.calls, [])
        self.post("/api/v1/task/echo", "operator")

        self.post("/api/v1/task/echo/stop", "watcher")

        self.assertEqual(self.started().stop_count, 0)

    def test_forbidden_looks_unknown(self) -> None:
        """
        A task the user may not use gets the same answer as a task that does
        not exist.
        """
        forbidden = self.post("/api/v1/task/echo", "watcher")
        unknown = self.post("/api/v1/task/absent", "watcher")

        forbidden_text = self.error_text(forbidden, 404)
        unknown_text = self.error_text(unknown, 404)

        self.assertEqual(
            forbidden_text.replace("echo", "NAME"),
            unknown_text.replace("absent", "NAME"),
        )

    def test_every_route_needs_a_user(self) -> None:
        """
        Every API route answers 401 without X-User and 403 for an unknown
        user, and starts nothing.
        """
        routes = [
            ("GET", "/api/v1/tasks"),
            ("POST", "/api/v1/task/echo"),
            ("GET", "/api/v1/task/echo/output"),
            ("POST", "/api/v1/task/echo/output"),
            ("GET", "/api/v1/task/echo/status"),
            ("POST", "/api/v1/task/echo/status"),
            ("POST", "/api/v1/task/echo/stop"),
            ("GET", "/events"),
        ]

        codes = [
            (
                method,
                path,
                self.answer_code(method, path, None),
                self.answer_code(method, path, "mallory"),
            )
            for method, path in routes
        ]

        self.assertEqual(codes, [(method, path, 401, 403) for method, path in routes])
        self.assertEqual(self.runner.calls, [])


class PageTests(APITestCase):
    """
    Tests for addresses outside the API.
    """

    def test_unknown_path(self) -> None:
        """
        An address nothing is served at gets 404 in plain text.
        """
        self.assertEqual(self.error_text(self.get("/nope"), 404), "not found\n")
        self.assertEqual(
            self.error_text(self.get("/api/v1/nothing/here"), 404), "not found\n"
        )

    def test_wrong_method(self) -> None:
        """
        A method a route does not take gets 405 in plain text, with the
        methods it does take, as HTTP requires.
        """
        response = self.post("/api/v1/tasks")

        self.error_text(response, 405)
        self.assertIn("GET", (self.header(response, "allow") or "").split(", "))

    def test_unknown_path_any_method(self) -> None:
        """
        An address no route takes is 404 for every method, never 405, which
        would read as "already running".
        """
        response = self.post("/api/v1/task/greet/nothing")

        self.error_text(response, 404)

    def test_any_method_without_folder(self) -> None:
        """
        Without a public folder, C{/} is an address like any unknown one:
        404 whatever the method.
        """
        for method in ["GET", "POST", "TRACE"]:
            self.error_text(self.successResultOf(self.request(method, "/")), 404)

    def test_site(self) -> None:
        """
        The site sends no tracebacks and marks every response nosniff.
        """
        site = self.api.site()

        self.assertIs(site.requestFactory, TaruRequest)
        self.assertFalse(site.displayTracebacks)


class PublicFolderTests(APITestCase):
    """
    Tests for the web interface's folder served under C{/}.
    """

    def setUp(self) -> None:
        self.public = self.mktemp()
        os.makedirs(os.path.join(self.public, "js"))
        with open(os.path.join(self.public, "index.html"), "w") as index:
            index.write("<p>Taru</p>")
        super().setUp()

    def test_api_still_served(self) -> None:
        """
        The API is served alongside the folder.
        """
        response = self.get("/api/v1/tasks")

        self.assertEqual(response.code, 200)

    def test_page_policy(self) -> None:
        """
        The page may load scripts, styles and images from Taru only, and
        nothing inline: its policy says so.
        """
        # HEAD: Twisted's file producer needs a real transport to pull it.
        response = self.successResultOf(self.request("HEAD", "/index.html"))

        policy = self.header(response, "content-security-policy") or ""
        directives = {}
        for directive in policy.split(";"):
            name, value = directive.strip().split(" ", 1)
            directives[name] = value
        self.assertEqual(directives["default-src"], "'none'")
        for kind in ["script-src", "style-src", "img-src", "connect-src"]:
            self.assertEqual(directives[kind], "'self'")
        self.assertEqual(directives["frame-ancestors"], "'none'")

    def test_missing_file(self) -> None:
        """
        A file missing from the folder gets 404 in plain text, not an HTML
        page.
        """
        self.error_text(self.get("/missing.js"), 404)

    def test_path_not_utf8(self) -> None:
        """
        An address whose bytes are not UTF-8 gets 400 in plain text.
        """
        body = self.error_text(self.get("/api/v1/task/%ff%fe/status"), 400)

        self.assertIn("UTF-8", body)

    def test_nul_in_path(self) -> None:
        """
        A path holding an encoded NUL gets 404, not a server error.
        """
        self.error_text(self.get("/index.html%00"), 404)

    def test_unknown_api_path(self) -> None:
        """
        An unknown API address gets 404 in plain text even with a folder
        served under C{/}.
        """
        self.error_text(self.get("/api/v1/nothing"), 404)

    def test_other_method_on_file(self) -> None:
        """
        A method other than GET and HEAD on a file of the folder, or on the
        page at C{/}, gets 405 naming the two it takes.
        """
        for method, path in [("POST", "/index.html"), ("TRACE", "/"), ("PUT", "/js")]:
            response = self.successResultOf(self.request(method, path))

            self.error_text(response, 405)
            self.assertEqual(self.header(response, "allow"), "GET, HEAD")

    def test_other_method_on_missing_file(self) -> None:
        """
        Any method on an address the folder has no file at gets 404.
        """
        for method, path in [("POST", "/missing.js"), ("DELETE", "/js/nothing")]:
            response = self.successResultOf(self.request(method, path))

            self.error_text(response, 404)

    def test_no_listing(self) -> None:
        """
        A folder's contents are not listed.
        """
        response = self.get("/js/")

        self.assertEqual(response.code, 404)
        self.assertNotIn(b"index.html", self.body(response))


class BodyLimitTests(SynchronousTestCase):
    """
    L{TaruRequest} refuses a body larger than L{MAX_BODY_BYTES} as soon as it
    knows, without storing it.
    """

    def setUp(self) -> None:
        self.runner = FakeRunner()
        clock = Clock()
        events = EventBroadcaster(clock)
        tasks = Tasks(
            parse_config(OPEN_CONFIG),
            self.runner,
            Spool(self.mktemp()),
            events,
            clock,
            History(self.mktemp()),
        )
        self.site = TaruAPI(tasks, events, None, clock).site()
        self.transport = StringTransport()
        self.channel = self.site.buildProtocol(None)
        self.channel.makeConnection(self.transport)
        self.addCleanup(self.channel.connectionLost, Failure(ConnectionDone()))

    def test_declared_length(self) -> None:
        """
        A C{Content-Length} over the limit gets 413 and the connection closes
        before any of the body is read.
        """
        self.channel.dataReceived(
            b"POST /api/v1/task/greet HTTP/1.1\r\nHost: taru\r\n"
            b"Content-Length: 4000000000\r\n\r\n"
        )

        response = self.transport.value()
        self.assertTrue(response.startswith(b"HTTP/1.1 413 "), response)
        self.assertTrue(response.endswith(b"larger than 65536 bytes\n"), response)
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(self.runner.started, [])

    def test_chunked_body(self) -> None:
        """
        A chunked body gets 413 once it passes the limit, and what follows is
        not kept.
        """
        self.channel.dataReceived(
            b"POST /api/v1/task/greet HTTP/1.1\r\nHost: taru\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"8000\r\n" + b"a" * 0x8000 + b"\r\n"

        for _ in range(4):
            self.channel.dataReceived(chunk)

        self.assertTrue(self.transport.value().startswith(b"HTTP/1.1 413 "))
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(self.runner.started, [])


HIDDEN_SOURCE_CONFIG = """
tasks:
  hosts:
    command: [cat, hosts]
  ping:
    command: [ping, $host]
    arguments:
    - name: host
      datatype: Enum
      enum_source: hosts
  checked:
    command: [test, $check]
    arguments:
    - name: check
      datatype: String
users:
  root:
    can_run: [ping, checked]
    can_view_status: [ping, checked]
    can_view_output: [ping]
"""


class HiddenSourceTests(APITestCase):
    """
    A task a user may not see is not named to them, even as an Enum source.
    """

    config_text = HIDDEN_SOURCE_CONFIG

    def test_listing_omits_hidden_source(self) -> None:
        """
        The listing gives the Enum's values but not the name of a source task
        the user may not see.
        """
        listing = json.loads(self.body(self.get("/api/v1/tasks", "root")))

        self.assertEqual(
            listing["ping"]["arguments"],
            [{"name": "host", "datatype": "Enum", "values": None}],
        )

    def test_not_ready_without_naming_hidden_source(self) -> None:
        """
        Before a hidden source has run, the error says so without naming it.
        """
        response = self.post("/api/v1/task/ping?host=a", "root")

        message = self.error_text(response, 400)
        self.assertIn("not ready", message)
        self.assertNotIn("hosts", message)

    def test_check_argument_takes_the_value(self) -> None:
        """
        For a task with an argument named C{check}, C{?check=true} is that
        argument's value, and the status flag stays unset.
        """
        answer = self.request("POST", "/api/v1/task/checked/status?check=true", "root")
        self.started().end(1)
        self.stub.flush()

        response = self.successResultOf(answer)
        self.assertEqual((response.code, self.body(response)), (200, b"1"))
        self.assertEqual(self.runner.calls[0].argv, ("test", "true"))


class MethodTests(APITestCase):
    """
    A method an address does not take gets 405 naming the ones it does.
    """

    def test_get_on_start(self) -> None:
        """
        GET on the address that starts a task gets 405 with Allow: POST.
        """
        response = self.get("/api/v1/task/greet")

        self.error_text(response, 405)
        self.assertEqual(self.header(response, "allow"), "POST")
