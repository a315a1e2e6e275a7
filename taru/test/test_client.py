"""
Tests for L{taru.client}: reading the command line, the tables and lines it
prints, how runs map to exit statuses, and every command against a fake Taru
in memory, driven through treq's L{RequestTraversalAgent}.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import signal
import sys
from collections.abc import Mapping
from typing import Any

from attrs import define, field
from treq.client import HTTPClient
from treq.testing import RequestTraversalAgent
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IBodyProducer
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request
from zope.interface import implementer

from taru.client.commands import Session
from taru.client.console import Console
from taru.client.events import EventParser, describe_event
from taru.client.exits import (
    EXIT_FAILURE,
    EXIT_STDOUT_CLOSED,
    ClientError,
    OutputFailed,
    StdoutClosed,
)
from taru.client.formatting import (
    format_duration,
    format_runs,
    format_size,
    format_table,
    format_tasks,
)
from taru.client.http import TaruClient
from taru.client.interruptions import Interruptions, supervise
from taru.client.options import Invocation, parse_invocation
from taru.client.records import RunRecord, describe_result, exit_status_of

BASE = "http://taru.example"

LISTING: dict[str, Any] = {
    "hosts": {
        "name": "hosts",
        "meta": {},
        "state": "finished",
        "exit_code": 0,
        "started_at": "2026-12-04T21:00:00.000Z",
        "duration": 0.01,
        "buffered": True,
        "can_run": True,
        "can_view_output": True,
        "arguments": [],
    },
    "greet": {
        "name": "greet",
        "meta": {"description": "Greets a host"},
        "state": "new",
        "exit_code": None,
        "started_at": None,
        "duration": None,
        "buffered": True,
        "can_run": True,
        "can_view_output": False,
        "arguments": [
            {
                "name": "host",
                "datatype": "Enum",
                "enum_source": "hosts",
                "values": ["localhost", "127.0.0.1"],
            }
        ],
    },
    "repeat": {
        "name": "repeat",
        "meta": {},
        "state": "running",
        "exit_code": None,
        "started_at": "2026-12-04T21:00:01.000Z",
        "duration": 3.5,
        "buffered": True,
        "can_run": False,
        "can_view_output": True,
        "arguments": [
            {"name": "times", "datatype": "Int"},
            {"name": "text", "datatype": "String"},
        ],
    },
    "reboot": {
        "name": "reboot",
        "meta": {},
        "state": "finished",
        "exit_code": None,
        "started_at": "2026-12-04T20:00:00.000Z",
        "duration": 1.0,
        "buffered": True,
        "can_run": False,
        "can_view_output": False,
        "arguments": [],
    },
}


def record(**fields: Any) -> dict[str, Any]:
    """
    A run's record as Taru sends it, with C{fields} changed.
    """
    sent: dict[str, Any] = {
        "id": 12,
        "task": "greet",
        "user": "alice",
        "address": "127.0.0.1",
        "arguments": {"host": "localhost"},
        "started_at": "2026-12-04T21:00:00.481Z",
        "ended_at": "2026-12-04T21:00:00.493Z",
        "duration": 0.012,
        "state": "finished",
        "exit_code": 0,
        "signal": None,
        "timed_out": False,
        "stopped_by": None,
        "output_size": 16,
        "output_kept": True,
    }
    sent.update(fields)
    return sent


def cells(table: str) -> list[list[str]]:
    """
    The cells of a table's lines, which are two or more spaces apart.
    """
    return [re.split(r" {2,}", line) for line in table.split("\n")]


def invocation(*argv: str, environment: Mapping[str, str] | None = None) -> Invocation:
    return parse_invocation(list(argv), environment or {})


class InvocationTests(SynchronousTestCase):
    """
    L{parse_invocation} reads options, commands and task arguments.
    """

    def usage_error(self, *argv: str) -> str:
        """
        Parse a command line that must be refused, and return the message.
        """
        stderr = io.StringIO()
        self.patch(sys, "stderr", stderr)
        with self.assertRaises(SystemExit) as refused:
            invocation(*argv)
        self.assertEqual(refused.exception.code, 2)
        return stderr.getvalue()

    def test_defaults(self) -> None:
        """
        Without options or environment, the URL is Taru's default on loopback
        and no user is named.
        """
        parsed = invocation("list")

        self.assertEqual(parsed.url, "http://127.0.0.1:3000")
        self.assertIsNone(parsed.user)
        self.assertEqual(parsed.command, "list")
        self.assertFalse(parsed.json)

    def test_environment(self) -> None:
        """
        C{TARU_URL} and C{TARU_USER} give the URL and the user.
        """
        environment = {"TARU_URL": "https://taru.example/ops/", "TARU_USER": "bob"}

        parsed = invocation("list", environment=environment)

        self.assertEqual(parsed.url, "https://taru.example/ops")
        self.assertEqual(parsed.user, "bob")

    def test_options_over_environment(self) -> None:
        """
        C{--url} and C{--user} take precedence over the environment.
        """
        environment = {"TARU_URL": "http://elsewhere:1", "TARU_USER": "bob"}

        parsed = invocation(
            "--url", BASE, "--user", "alice", "list", environment=environment
        )

        self.assertEqual((parsed.url, parsed.user), (BASE, "alice"))

    def test_credentials(self) -> None:
        """
        A name and password in the URL are taken out of it, for basic
        authentication with a proxy.
        """
        parsed = invocation("--url", "https://al%40ice:p%3Ass@[::1]:8443/taru/", "list")

        self.assertEqual(parsed.url, "https://[::1]:8443/taru")
        self.assertEqual(parsed.credentials, ("al@ice", "p:ss"))
        self.assertIsNone(invocation("list").credentials)

    def test_empty_user(self) -> None:
        """
        An empty user name means none.
        """
        self.assertIsNone(invocation("list", environment={"TARU_USER": ""}).user)

    def test_bad_url(self) -> None:
        """
        A URL that is not http or https is a usage error naming where it came
        from.
        """
        self.assertIn("--url", self.usage_error("--url", "taru.example", "list"))
        message = self.usage_error("--url", "ftp://alice:secret@taru", "list")
        self.assertNotIn("secret", message)
        invalid = self.usage_error("--url", "http://t:x", "list")
        self.assertIn("not a valid URL", invalid)
        stderr = io.StringIO()
        self.patch(sys, "stderr", stderr)
        with self.assertRaises(SystemExit):
            invocation("list", environment={"TARU_URL": "ftp://taru"})
        self.assertIn("TARU_URL", stderr.getvalue())

    def test_run_arguments(self) -> None:
        """
        Task arguments are NAME=VALUE words; a value keeps its spaces and any
        further C{=}, and may be empty.
        """
        parsed = invocation("run", "repeat", "times=3", "text=a = b  c", "empty=")

        self.assertEqual(parsed.task, "repeat")
        self.assertEqual(
            dict(parsed.arguments), {"times": "3", "text": "a = b  c", "empty": ""}
        )
        self.assertEqual(parsed.mode, "output")
        self.assertFalse(parsed.stop_on_interrupt)

    def test_malformed_argument(self) -> None:
        """
        A word without C{=}, or without a name, is refused with a message
        showing the form arguments take.
        """
        self.assertIn("NAME=VALUE", self.usage_error("run", "greet", "localhost"))
        self.assertIn("'=x'", self.usage_error("run", "greet", "=x"))

    def test_repeated_argument(self) -> None:
        """
        An argument given twice is refused rather than one value dropped.
        """
        message = self.usage_error("run", "greet", "host=a", "host=b")

        self.assertIn("'host' is given twice", message)

    def test_not_utf8(self) -> None:
        """
        An argument whose bytes are not UTF-8 is refused.
        """
        undecodable = b"host=\xff".decode("utf-8", "surrogateescape")

        self.assertIn("UTF-8", self.usage_error("run", "greet", undecodable))

    def test_run_modes(self) -> None:
        """
        C{--no-output} waits for the status only, C{--detach} only starts;
        the two exclude each other.
        """
        self.assertEqual(invocation("run", "--no-output", "x").mode, "status")
        self.assertEqual(invocation("run", "x", "--detach").mode, "detach")
        self.assertTrue(invocation("run", "--stop-on-interrupt", "x").stop_on_interrupt)
        self.assertIn(
            "not allowed", self.usage_error("run", "--detach", "--no-output", "x")
        )

    def test_output_run(self) -> None:
        """
        C{output --run} takes a run's number.
        """
        self.assertEqual(invocation("output", "x", "--run", "7").run_id, 7)
        self.assertIsNone(invocation("output", "x").run_id)
        self.assertIn("not a run number", self.usage_error("output", "x", "--run", "a"))

    def test_no_command(self) -> None:
        """
        A command is required, and an unknown one is refused.
        """
        self.usage_error()
        self.usage_error("launch")


class FormatTests(SynchronousTestCase):
    """
    The tables and lines C{taru-cli} prints.
    """

    def test_table(self) -> None:
        """
        Tables align their columns two spaces apart, headings first, without
        trailing spaces.
        """
        table = format_table(["A", "LONGER"], [["wide cell", "x"], ["b", ""]])

        self.assertEqual(table, "A          LONGER\nwide cell  x\nb")

    def test_task_table(self) -> None:
        """
        The task list shows each task's state, last exit code, arguments with
        their types (and an Enum's values) and what the user may do.
        """
        self.assertEqual(
            cells(format_tasks(LISTING)),
            [
                ["TASK", "STATE", "EXIT", "ARGUMENTS", "YOU MAY"],
                ["hosts", "finished", "0", "-", "run, read output"],
                ["greet", "new", "-", "host:Enum(localhost|127.0.0.1)", "run"],
                ["repeat", "running", "-", "times:Int text:String", "read output"],
                ["reboot", "finished", "signal", "-", "see status"],
            ],
        )

    def test_enum_arguments(self) -> None:
        """
        An Enum argument shows at most four values, says when its source has
        not run, and names its source when its values are not given.
        """
        many = {"name": "x", "datatype": "Enum", "values": list("abcdef")}
        unready = {"name": "x", "datatype": "Enum", "values": None, "enum_source": "s"}
        hidden = {"name": "x", "datatype": "Enum", "enum_source": "s"}
        listing = {
            name: dict(LISTING["hosts"], arguments=[argument])
            for name, argument in [("a", many), ("b", unready), ("c", hidden)]
        }

        table = format_tasks(listing)

        self.assertIn("x:Enum(a|b|c|d|+2 more)", table)
        self.assertIn("x:Enum(from s, which has not run yet)", table)
        self.assertIn("x:Enum(from s)", table)

    def test_no_tasks(self) -> None:
        """
        An empty task list says so.
        """
        self.assertEqual(format_tasks({}), "no tasks")

    def test_runs_table(self) -> None:
        """
        The runs table shows each run's number, start without fractions of a
        second, duration, user, result, output size and arguments quoted for
        a shell.
        """
        records = [
            RunRecord.from_json(
                record(
                    id=13,
                    user=None,
                    state="running",
                    exit_code=None,
                    duration=75.2,
                    arguments={"text": "a b"},
                    output_kept=False,
                )
            ),
            RunRecord.from_json(record(exit_code=None, signal=15, timed_out=True)),
            RunRecord.from_json(record(id=11, output_size=3000, arguments={})),
        ]

        self.assertEqual(
            cells(format_runs(records)),
            [
                ["RUN", "STARTED", "DURATION", "USER", "RESULT", "OUTPUT", "ARGUMENTS"],
                ["13", "2026-12-04T21:00:00Z", "1m15s", "-", "running", "not kept"]
                + ["text='a b'"],
                ["12", "2026-12-04T21:00:00Z", "0.012s", "alice"]
                + ["timed out (signal 15)", "16 B", "host=localhost"],
                ["11", "2026-12-04T21:00:00Z", "0.012s", "alice", "exit 0"]
                + ["2.9 KiB", "-"],
            ],
        )
        self.assertEqual(format_runs([]), "no runs")

    def test_durations_and_sizes(self) -> None:
        """
        Durations and sizes read easily at every scale.
        """
        self.assertEqual(
            [format_duration(s) for s in (None, 0.5, 12.34, 185, 7260)],
            ["-", "0.500s", "12.3s", "3m05s", "2h01m"],
        )
        self.assertEqual(
            [format_size(n) for n in (None, 0, 1023, 1024, 5 * 2**20, 2**40)],
            ["-", "0 B", "1023 B", "1.0 KiB", "5.0 MiB", "1024.0 GiB"],
        )

    def test_events(self) -> None:
        """
        Each kind of event reads as a short sentence; heartbeats not at all.
        """
        self.assertEqual(
            [
                describe_event(message)
                for message in (
                    ["greet", "Started"],
                    ["greet", {"ExitStatus": 0}],
                    ["greet", {"ExitStatus": None}],
                    [None, "UpdateConfig"],
                    [None, "Resync"],
                    [None, "Ping"],
                    ["greet", "Paused"],
                )
            ],
            [
                "greet started",
                "greet ended: exit code 0",
                "greet ended: killed by a signal",
                "configuration reloaded",
                "events were missed: the task list may have changed",
                None,
                'greet "Paused"',
            ],
        )


class ExitStatusTests(SynchronousTestCase):
    """
    L{exit_status_of} maps a run's end to C{taru-cli}'s exit status, with a
    note when the run did not exit by itself.
    """

    def status(self, **fields: Any) -> tuple[int, str | None]:
        return exit_status_of(RunRecord.from_json(record(**fields)))

    def test_exit_code(self) -> None:
        """
        A run that exited gives its exit code, without a note.
        """
        self.assertEqual(self.status(exit_code=0), (0, None))
        self.assertEqual(self.status(exit_code=3), (3, None))

    def test_signal(self) -> None:
        """
        A run a signal ended gives 128 plus the signal, and a note naming it.
        """
        self.assertEqual(
            self.status(exit_code=None, signal=9),
            (137, "run 12 of 'greet' ended by signal 9"),
        )

    def test_timed_out(self) -> None:
        """
        A run stopped for running too long says so.
        """
        self.assertEqual(
            self.status(exit_code=None, signal=15, timed_out=True),
            (143, "run 12 of 'greet' timed out: ended by signal 15"),
        )

    def test_stopped(self) -> None:
        """
        A run stopped by a user names them, also when it then exited by
        itself.
        """
        self.assertEqual(
            self.status(exit_code=None, signal=15, stopped_by="bob"),
            (143, "run 12 of 'greet' was stopped by bob: ended by signal 15"),
        )
        self.assertEqual(
            self.status(exit_code=1, stopped_by="bob"),
            (1, "run 12 of 'greet' was stopped by bob; it exited with 1"),
        )

    def test_stopped_by_nobody_named(self) -> None:
        """
        A run stopped by a request that named no user does not pretend a
        user named it.
        """
        self.assertEqual(
            self.status(exit_code=None, signal=15, stopped_by="anonymous"),
            (143, "run 12 of 'greet' was stopped: ended by signal 15"),
        )
        stopped = RunRecord.from_json(
            record(exit_code=None, signal=15, stopped_by="anonymous")
        )
        self.assertEqual(describe_result(stopped), "stopped (signal 15)")

    def test_stopped_by_taru(self) -> None:
        """
        A run Taru itself stopped, for running too long or as it shut down,
        says so rather than naming a user.
        """
        self.assertEqual(
            self.status(exit_code=None, signal=15, stopped_by="timeout"),
            (143, "run 12 of 'greet' timed out: ended by signal 15"),
        )
        self.assertEqual(
            self.status(exit_code=None, signal=15, stopped_by="shutdown"),
            (
                143,
                "run 12 of 'greet' was stopped as Taru shut down: ended by signal 15",
            ),
        )

    def test_unknown(self) -> None:
        """
        A run without exit code or signal is a failure to report.
        """
        self.assertEqual(
            self.status(exit_code=None),
            (EXIT_FAILURE, "Taru does not know how run 12 of 'greet' ended"),
        )

    def test_not_a_record(self) -> None:
        """
        Something that is not a run's record is refused.
        """
        self.assertRaises(ClientError, RunRecord.from_json, ["id", 1])
        self.assertRaises(ClientError, RunRecord.from_json, {"id": "1"})


class EventParserTests(SynchronousTestCase):
    """
    L{EventParser} finds the messages of a server-sent event stream however
    it is split into chunks.
    """

    STREAM = (
        b"retry: 2000\n\n"
        b'id: e-1\r\ndata: ["greet","Started"]\r\n\r\n'
        b": a comment\n"
        b'data: [null,"Ping"]\n\n'
        b'id: e-2\rdata:["greet",\rdata: {"ExitStatus":0}]\r\r'
    )

    def test_any_split(self) -> None:
        """
        The same messages come out whatever chunk sizes the stream arrives
        in, with CR, LF and CRLF line ends, and data over several lines.
        """
        for size in (1, 2, 3, 7, len(self.STREAM)):
            received: list[str] = []
            parser = EventParser(received.append)
            for start in range(0, len(self.STREAM), size):
                parser.feed(self.STREAM[start : start + size])

            self.assertEqual(
                received,
                [
                    '["greet","Started"]',
                    '[null,"Ping"]',
                    '["greet",\n{"ExitStatus":0}]',
                ],
                f"chunks of {size}",
            )
            self.assertEqual(parser.last_event_id, "e-2")


class ConsoleTests(SynchronousTestCase):
    """
    L{Console} on the process's streams, whichever of them are open.
    """

    def test_standard(self) -> None:
        """
        The standard console writes to the process's standard output and
        error, in standard output's encoding.
        """
        out = io.TextIOWrapper(io.BytesIO(), encoding="latin-1")
        err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
        self.patch(sys, "stdout", out)
        self.patch(sys, "stderr", err)

        console = Console.standard()

        self.assertEqual(
            (console.out, console.err, console.encoding),
            (out.buffer, err.buffer, "latin-1"),
        )

    def test_standard_not_open(self) -> None:
        """
        A stream the process started without is missing from the standard
        console, which writes messages in standard error's encoding.
        """
        err = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
        self.patch(sys, "stdout", None)
        self.patch(sys, "stderr", err)
        without_output = Console.standard()
        self.patch(sys, "stderr", None)
        without_either = Console.standard()

        self.assertEqual(
            (without_output.out, without_output.err, without_output.encoding),
            (None, err.buffer, "ascii"),
        )
        self.assertEqual(
            (without_either.out, without_either.err, without_either.encoding),
            (None, None, "utf-8"),
        )

    def test_not_open(self) -> None:
        """
        Writing output without a standard output fails with why; a message
        without a standard error is dropped; silencing a missing standard
        output does nothing.
        """
        console = Console(None, None)

        failure = self.assertRaises(OutputFailed, console.line, "hello")
        console.error("dropped")
        console.silence()

        self.assertEqual(str(failure), "standard output is not open")

    def test_write_failures(self) -> None:
        """
        The reader of standard output going away, and any other failure to
        write it, are told apart; a message standard error cannot take is
        dropped.
        """
        gone = Console(BrokenPipe(), FullDevice())
        full = Console(FullDevice(), FullDevice())

        self.assertRaises(StdoutClosed, gone.output, b"x")
        failure = self.assertRaises(OutputFailed, full.output, b"x")
        full.error("dropped")

        self.assertEqual(str(failure), "No space left on device")


@implementer(IBodyProducer)
class SynchronousBody:
    """
    A request body written whole at once, without a cooperator's real time.
    """

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.length = len(body)

    def startProducing(self, consumer: Any) -> Deferred[None]:
        consumer.write(self.body)
        return succeed(None)

    def stopProducing(self) -> None:
        pass

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass


@define
class Seen:
    """
    A request the fake Taru received.
    """

    method: str
    path: str
    headers: Headers
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name)
        return None if values is None else values[-1]


@define
class Answer:
    """
    How the fake Taru answers a request: C{hold} leaves the response open
    after its first bytes.
    """

    code: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(factory=dict)
    hold: bool = False


class FakeTaru(Resource):
    """
    A Taru that answers each method and path as told, records every request,
    and keeps held responses open for a test to write to.

    @ivar held: the requests whose responses are still open, in order.
    @ivar gone: the held requests whose clients went away.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.answers: dict[tuple[str, str], Answer] = {}
        self.seen: list[Seen] = []
        self.held: list[Request] = []
        self.gone: list[Request] = []

    def answer(self, method: str, path: str, **how: Any) -> None:
        self.answers[method, path] = Answer(**how)

    def answer_json(self, method: str, path: str, value: Any) -> None:
        body = json.dumps(value).encode("utf-8")
        headers = {"content-type": "application/json"}
        self.answer(method, path, body=body, headers=headers)

    def render(self, request: Request) -> Any:
        method = request.method.decode("ascii")
        path = request.uri.decode("ascii")
        body = request.content.read() if request.content is not None else b""
        self.seen.append(Seen(method, path, request.requestHeaders.copy(), body))
        answer = self.answers.get(
            (method, path),
            Answer(404, b"not found\n", {"content-type": "text/plain; charset=utf-8"}),
        )
        request.setResponseCode(answer.code)
        for name, value in answer.headers.items():
            request.setHeader(name, value)
        if not answer.hold:
            return answer.body
        request.write(answer.body)
        self.held.append(request)
        request.notifyFinish().addErrback(lambda _: self.gone.append(request))
        return NOT_DONE_YET


class BrokenPipe(io.BytesIO):
    """
    A standard output whose reader has gone away.
    """

    def write(self, data: Any) -> int:
        raise BrokenPipeError()


class FullDevice(io.BytesIO):
    """
    A stream on a device with no space left, as C{/dev/full}: its writes are
    taken into a buffer, and flushing them fails.
    """

    def flush(self) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@implementer(IAgent)
class RefusingAgent:
    """
    An agent whose every connection is refused.
    """

    def request(self, *args: Any, **kwargs: Any) -> Deferred[Any]:
        return fail(ConnectionRefusedError("Connection refused"))


PLAIN = {"content-type": "text/plain; charset=utf-8"}


class CommandTests(SynchronousTestCase):
    """
    Each command against a fake Taru in memory.
    """

    def setUp(self) -> None:
        self.taru = FakeTaru()
        self.agent = RequestTraversalAgent(self.taru)
        self.out = io.BytesIO()
        self.err = io.BytesIO()
        self.clock = Clock()
        self.interruptions = Interruptions()
        self.addCleanup(self.assert_no_delayed_calls)

    def assert_no_delayed_calls(self) -> None:
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def start(
        self,
        *argv: str,
        environment: Mapping[str, str] | None = None,
        agent: Any = None,
        out: io.BytesIO | None = None,
        console: Console | None = None,
    ) -> Deferred[int]:
        """
        Start a command, and let it go as far as it can.

        @param out: its standard output, in place of the test's.
        @param console: where it writes, in place of the test's streams.
        @return: fires with its exit status.
        """
        parsed = parse_invocation(["--url", BASE, *argv], environment or {})
        http = HTTPClient(agent or self.agent, data_to_body_producer=SynchronousBody)
        client = TaruClient(http, parsed.url, parsed.user, parsed.credentials)
        if console is None:
            console = Console(out or self.out, self.err)
        session = Session(client, console, self.clock)
        running = Deferred.fromCoroutine(supervise(parsed, session, self.interruptions))
        self.flush()
        return running

    def command(self, *argv: str, **kwargs: Any) -> int:
        """
        Run a command that finishes without further help.
        """
        return self.successResultOf(self.start(*argv, **kwargs))

    def flush(self) -> None:
        # Each request may lead to another: pump until all is said.
        for _ in range(10):
            self.agent.flush()

    def written(self) -> bytes:
        return self.out.getvalue()

    def errors(self) -> str:
        return self.err.getvalue().decode("utf-8")

    def test_list(self) -> None:
        """
        C{list} asks for the task list as the user and prints it as a table.
        """
        self.taru.answer_json("GET", "/api/v1/tasks", LISTING)

        code = self.command("list", environment={"TARU_USER": "alice"})

        self.assertEqual(code, 0)
        self.assertEqual(self.written().decode(), format_tasks(LISTING) + "\n")
        [request] = self.taru.seen
        self.assertEqual(request.header("x-user"), "alice")

    def test_list_json(self) -> None:
        """
        C{list --json} prints Taru's JSON as it came; without a user, no
        C{X-User} is sent.
        """
        self.taru.answer("GET", "/api/v1/tasks", body=b'{"a": {}}')

        code = self.command("list", "--json")

        self.assertEqual((code, self.written()), (0, b'{"a": {}}\n'))
        self.assertIsNone(self.taru.seen[0].header("x-user"))

    def test_basic_authentication(self) -> None:
        """
        A name and password in the URL are sent with basic authentication,
        and left out of messages.
        """
        url = "http://alice:secret@taru.example"

        code = self.command("--url", url, "list")

        self.assertEqual(code, EXIT_FAILURE)
        self.assertEqual(
            self.taru.seen[0].header("authorization"), "Basic YWxpY2U6c2VjcmV0"
        )
        self.assertNotIn("secret", self.errors())

    def test_refused(self) -> None:
        """
        A request Taru refuses prints Taru's message and exits with 125.
        """
        self.taru.answer(
            "POST",
            "/api/v1/task/greet/output",
            code=400,
            body=b"argument 'host': 'x' is not one of the values\n",
            headers=PLAIN,
        )

        code = self.command("run", "greet", "host=x")

        self.assertEqual(code, EXIT_FAILURE)
        self.assertEqual(
            self.errors(),
            "taru-cli: argument 'host': 'x' is not one of the values\n",
        )
        self.assertEqual(self.written(), b"")

    def test_unauthenticated(self) -> None:
        """
        When Taru wants a user and none was named, the message says how to
        name one.
        """
        self.taru.answer(
            "GET",
            "/api/v1/tasks",
            code=401,
            body=b"authentication required: this Taru expects the X-User header\n",
            headers=PLAIN,
        )

        self.assertEqual(self.command("list"), EXIT_FAILURE)
        self.assertEqual(
            self.errors(),
            "taru-cli: authentication required: this Taru expects the X-User"
            " header (name a user with --user or $TARU_USER)\n",
        )

    def test_not_plain_text(self) -> None:
        """
        An error page that is not Taru's plain text, such as a proxy's, is
        reported by its status alone.
        """
        self.taru.answer(
            "GET",
            "/api/v1/tasks",
            code=502,
            body=b"<html>Bad Gateway</html>",
            headers={"content-type": "text/html"},
        )

        self.assertEqual(self.command("list"), EXIT_FAILURE)
        self.assertEqual(self.errors(), f"taru-cli: {BASE} answered 502 Bad Gateway\n")

    def test_long_error(self) -> None:
        """
        Of a long error message, the start is shown; of a huge error body,
        only the start is read.
        """
        self.taru.answer(
            "GET",
            "/api/v1/tasks",
            code=400,
            body=b"x" * 2000,
            headers=PLAIN,
        )
        self.taru.answer(
            "GET",
            "/api/v1/task/t/output",
            code=500,
            body=b"y" * 100_000,
            headers=PLAIN,
            hold=True,
        )

        self.assertEqual(self.command("list"), EXIT_FAILURE)
        self.assertEqual(self.command("output", "t"), EXIT_FAILURE)
        self.assertEqual(
            self.errors(),
            "taru-cli: " + "x" * 500 + "...\n" + "taru-cli: " + "y" * 500 + "...\n",
        )
        self.flush()
        self.assertEqual(self.taru.gone, self.taru.held)

    def test_proxy_authentication(self) -> None:
        """
        A proxy's own 401 page is met with advice on giving a name and
        password, or with the news that those given were refused.
        """
        self.taru.answer(
            "GET",
            "/api/v1/tasks",
            code=401,
            body=b"<html>401 Authorization Required</html>",
            headers={"content-type": "text/html"},
        )

        self.assertEqual(self.command("list"), EXIT_FAILURE)
        self.assertEqual(
            self.command("--url", "http://alice:guess@taru.example", "list"),
            EXIT_FAILURE,
        )
        self.assertEqual(
            self.errors(),
            f"taru-cli: {BASE} answered 401 Unauthorized; give the name and"
            " password a proxy asks for in the URL, as in"
            " https://NAME:PASSWORD@HOST/\n"
            f"taru-cli: {BASE} answered 401 Unauthorized: the name and password"
            " in the URL were refused\n",
        )

    def test_connection_refused(self) -> None:
        """
        When nothing listens, the message names the URL.
        """
        code = self.command("list", agent=RefusingAgent())

        self.assertEqual(code, EXIT_FAILURE)
        self.assertEqual(
            self.errors(),
            f"taru-cli: cannot connect to Taru at {BASE}: connection refused\n",
        )

    def test_run_streams(self) -> None:
        """
        C{run} sends the arguments as a JSON object, writes each chunk of
        output as it arrives, and exits with the exit code of the run named
        in C{Taru-Run}.
        """
        self.taru.answer(
            "POST",
            "/api/v1/task/repeat/output",
            body=b"first\n",
            headers={"taru-run": "12"},
            hold=True,
        )
        self.taru.answer_json(
            "GET", "/api/v1/task/repeat/runs/12", record(task="repeat", exit_code=3)
        )

        running = self.start("run", "repeat", "times=2", "text=a b")

        self.assertNoResult(running)
        self.assertEqual(self.written(), b"first\n")
        [request] = self.taru.held
        request.write(b"\xffsecond")
        self.flush()
        self.assertEqual(self.written(), b"first\n\xffsecond")
        request.finish()
        self.flush()
        self.assertEqual(self.successResultOf(running), 3)
        self.assertEqual(self.errors(), "")
        started = self.taru.seen[0]
        self.assertEqual(json.loads(started.body), {"times": "2", "text": "a b"})
        self.assertEqual(
            started.header("content-type"), "application/json; charset=UTF-8"
        )

    def test_run_killed(self) -> None:
        """
        A run a signal ended makes C{run} exit with 128 plus the signal, and
        say so on standard error.
        """
        self.taru.answer(
            "POST", "/api/v1/task/greet/output", body=b"hi\n", headers={"taru-run": "4"}
        )
        self.taru.answer_json(
            "GET",
            "/api/v1/task/greet/runs/4",
            record(id=4, exit_code=None, signal=9),
        )

        code = self.command("run", "greet")

        self.assertEqual(code, 137)
        self.assertEqual(
            self.errors(), "taru-cli: run 4 of 'greet' ended by signal 9\n"
        )

    def test_run_record_late(self) -> None:
        """
        When the run's record still says it runs after the output ended,
        C{run} waits for the run's end before reading the record again.
        """
        self.taru.answer("POST", "/api/v1/task/greet/output", headers={"taru-run": "4"})
        self.taru.answer_json(
            "GET", "/api/v1/task/greet/runs/4", record(id=4, state="running")
        )
        self.taru.answer("GET", "/api/v1/task/greet/status", body=b"0", hold=True)

        running = self.start("run", "greet")

        self.assertNoResult(running)
        self.taru.answer_json(
            "GET", "/api/v1/task/greet/runs/4", record(id=4, exit_code=5)
        )
        self.taru.held[0].finish()
        self.flush()
        self.assertEqual(self.successResultOf(running), 5)

    def test_run_no_output(self) -> None:
        """
        C{run --no-output} starts through C{status}, prints nothing, and exits
        as C{run} does.
        """
        self.taru.answer(
            "POST", "/api/v1/task/greet/status", body=b"null", headers={"taru-run": "8"}
        )
        self.taru.answer_json(
            "GET",
            "/api/v1/task/greet/runs/8",
            record(id=8, exit_code=None, signal=15, timed_out=True),
        )

        code = self.command("run", "--no-output", "greet", "host=localhost")

        self.assertEqual(code, 143)
        self.assertEqual(self.written(), b"")
        self.assertEqual(
            self.errors(), "taru-cli: run 8 of 'greet' timed out: ended by signal 15\n"
        )
        self.assertEqual(json.loads(self.taru.seen[0].body), {"host": "localhost"})

    def test_run_detach(self) -> None:
        """
        C{run --detach} only starts the run, and prints its number.
        """
        self.taru.answer(
            "POST",
            "/api/v1/task/greet",
            body=b"task 'greet' started (run 21)\n",
            headers={"taru-run": "21"},
        )

        self.assertEqual(self.command("run", "--detach", "greet"), 0)
        self.assertEqual(self.written(), b"21\n")
        self.assertEqual(len(self.taru.seen), 1)

    def test_run_without_reading(self) -> None:
        """
        A user who may run a task but not read its output learns how they
        may run it, rather than that there is no such task.
        """
        self.taru.answer(
            "POST",
            "/api/v1/task/greet/output",
            code=404,
            body=b"no task named 'greet'\n",
            headers=PLAIN,
        )
        listing = {"greet": dict(LISTING["greet"], can_view_output=False)}
        self.taru.answer_json("GET", "/api/v1/tasks", listing)

        self.assertEqual(self.command("run", "greet"), EXIT_FAILURE)
        self.assertEqual(
            self.errors(),
            "taru-cli: you may run 'greet' but not read its output:"
            " use run --no-output, or run --detach\n",
        )

    def test_run_unknown(self) -> None:
        """
        A task that the user may not run, or that does not exist, is
        reported as Taru reports it.
        """
        self.taru.answer(
            "POST",
            "/api/v1/task/hosts/output",
            code=404,
            body=b"no task named 'hosts'\n",
            headers=PLAIN,
        )
        listing = {"hosts": dict(LISTING["hosts"], can_run=False)}
        self.taru.answer_json("GET", "/api/v1/tasks", listing)

        self.assertEqual(self.command("run", "hosts"), EXIT_FAILURE)
        self.assertEqual(self.errors(), "taru-cli: no task named 'hosts'\n")

    def test_run_without_run_header(self) -> None:
        """
        A Taru that does not name the run it started is reported.
        """
        self.taru.answer("POST", "/api/v1/task/greet", body=b"started\n")

        self.assertEqual(self.command("run", "--detach", "greet"), EXIT_FAILURE)
        self.assertIn("Taru-Run", self.errors())

    def test_task_names_escaped(self) -> None:
        """
        A task's name is one segment of the path, whatever it holds.
        """
        self.command("stop", "a/b c")

        self.assertEqual(self.taru.seen[0].path, "/api/v1/task/a%2Fb%20c/stop")

    def test_interrupted(self) -> None:
        """
        Ctrl-C while following a run's output drops the connection and exits
        with 130, without a message and without stopping the task.
        """
        self.taru.answer(
            "POST",
            "/api/v1/task/greet/output",
            body=b"hi\n",
            headers={"taru-run": "4"},
            hold=True,
        )
        running = self.start("run", "greet")

        self.interruptions.interrupt(signal.SIGINT)
        self.flush()

        self.assertEqual(self.successResultOf(running), 130)
        self.assertEqual(self.taru.gone, self.taru.held)
        self.assertEqual(self.errors(), "")
        self.assertEqual(
            [seen.path for seen in self.taru.seen], ["/api/v1/task/greet/output"]
        )

    def test_interrupted_while_connecting(self) -> None:
        """
        Ctrl-C before Taru answered gives up the request, quietly too.
        """
        waiting: Deferred[Any] = Deferred()

        @implementer(IAgent)
        class SlowAgent:
            def request(self, *args: Any, **kwargs: Any) -> Deferred[Any]:
                return waiting

        running = self.start("list", agent=SlowAgent())
        self.interruptions.interrupt(signal.SIGTERM)

        self.assertEqual(self.successResultOf(running), 143)
        self.assertEqual(self.errors(), "")

    def test_stop_on_interrupt(self) -> None:
        """
        With C{--stop-on-interrupt}, Ctrl-C also stops the task, and says
        what Taru answered.
        """
        self.taru.answer(
            "POST",
            "/api/v1/task/greet/output",
            headers={"taru-run": "4"},
            hold=True,
        )
        self.taru.answer(
            "POST", "/api/v1/task/greet/stop", body=b"task 'greet' is stopping\n"
        )
        running = self.start("run", "--stop-on-interrupt", "greet")

        self.interruptions.interrupt(signal.SIGINT)
        self.flush()

        self.assertEqual(self.successResultOf(running), 130)
        self.assertEqual(self.taru.seen[-1].path, "/api/v1/task/greet/stop")
        self.assertEqual(self.errors(), "taru-cli: task 'greet' is stopping\n")

    def test_stop_on_interrupt_gives_up(self) -> None:
        """
        Stopping after Ctrl-C gives up after a while, or at a second Ctrl-C.
        """
        self.taru.answer(
            "POST", "/api/v1/task/greet/output", headers={"taru-run": "4"}, hold=True
        )
        self.taru.answer("POST", "/api/v1/task/greet/stop", hold=True)
        first = self.start("run", "--stop-on-interrupt", "greet")
        self.interruptions.interrupt(signal.SIGINT)
        self.flush()
        self.assertNoResult(first)

        self.clock.advance(10)

        self.assertEqual(self.successResultOf(first), 130)
        self.assertIn("gave up stopping 'greet'", self.errors())

        second = self.start("run", "--stop-on-interrupt", "greet")
        self.interruptions.interrupt(signal.SIGINT)
        self.flush()
        self.interruptions.interrupt(signal.SIGINT)
        self.assertEqual(self.successResultOf(second), 130)

    def test_stdout_closed(self) -> None:
        """
        When standard output is closed, as by C{| head}, C{run} drops the
        connection and ends quietly.
        """
        self.taru.answer(
            "POST",
            "/api/v1/task/greet/output",
            body=b"hi\n",
            headers={"taru-run": "4"},
            hold=True,
        )

        code = self.command("run", "greet", out=BrokenPipe())

        self.assertEqual(code, EXIT_STDOUT_CLOSED)
        self.flush()
        self.assertEqual(self.taru.gone, self.taru.held)
        self.assertEqual(self.errors(), "")

    def test_stdout_full(self) -> None:
        """
        When standard output cannot be written, as on a full disk, C{run}
        drops the connection, says why in one line, without a traceback,
        and exits with 125.
        """
        self.taru.answer(
            "POST",
            "/api/v1/task/greet/output",
            body=b"hi\n",
            headers={"taru-run": "4"},
            hold=True,
        )

        code = self.command("run", "greet", out=FullDevice())

        self.assertEqual(code, EXIT_FAILURE)
        self.flush()
        self.assertEqual(self.taru.gone, self.taru.held)
        self.assertEqual(
            self.errors(),
            "taru-cli: cannot write the output: No space left on device\n",
        )

    def test_stdout_full_table(self) -> None:
        """
        A table that cannot be written is the same failure as a run's
        output that cannot.
        """
        self.taru.answer_json("GET", "/api/v1/tasks", LISTING)

        code = self.command("list", out=FullDevice())

        self.assertEqual(code, EXIT_FAILURE)
        self.assertEqual(
            self.errors(),
            "taru-cli: cannot write the output: No space left on device\n",
        )

    def test_stdout_not_open(self) -> None:
        """
        Without a standard output, a command that has something to print
        says so and exits with 125; one that prints nothing does without.
        """
        self.taru.answer(
            "POST", "/api/v1/task/greet/output", body=b"hi\n", headers={"taru-run": "4"}
        )
        self.taru.answer(
            "POST", "/api/v1/task/greet/status", body=b"0", headers={"taru-run": "4"}
        )
        self.taru.answer_json("GET", "/api/v1/task/greet/runs/4", record(id=4))
        console = Console(None, self.err)

        printing = self.command("run", "greet", console=console)
        quiet = self.command("run", "--no-output", "greet", console=console)

        self.assertEqual(printing, EXIT_FAILURE)
        self.assertEqual(
            self.errors(),
            "taru-cli: cannot write the output: standard output is not open\n",
        )
        self.assertEqual(quiet, 0)

    def test_stderr_not_open(self) -> None:
        """
        Without a standard error, the output is printed as usual, messages
        are dropped, and the exit status is the usual one.
        """
        self.taru.answer_json("GET", "/api/v1/tasks", LISTING)
        console = Console(self.out, None)

        listed = self.command("list", console=console)
        refused = self.command("run", "nope", console=console)

        self.assertEqual(listed, 0)
        self.assertEqual(self.written().decode(), format_tasks(LISTING) + "\n")
        self.assertEqual(refused, EXIT_FAILURE)

    def test_stderr_full(self) -> None:
        """
        A message that cannot be written to standard error is dropped, and
        the exit status is the usual one, even when standard output failed
        too.
        """
        self.taru.answer_json("GET", "/api/v1/tasks", LISTING)

        refused = self.command("run", "nope", console=Console(self.out, FullDevice()))
        both = self.command("list", console=Console(FullDevice(), FullDevice()))

        self.assertEqual((refused, both), (EXIT_FAILURE, EXIT_FAILURE))
        self.assertEqual(self.written(), b"")

    def test_connection_lost(self) -> None:
        """
        When the connection breaks before the output ended, C{run} says so
        and exits with 125.
        """
        self.taru.answer(
            "POST",
            "/api/v1/task/greet/output",
            body=b"hi\n",
            headers={"taru-run": "4"},
            hold=True,
        )
        running = self.start("run", "greet")

        transport = self.taru.held[0].channel.transport
        assert transport is not None
        transport.loseConnection()
        self.flush()

        self.assertEqual(self.successResultOf(running), EXIT_FAILURE)
        self.assertEqual(self.written(), b"hi\n")
        self.assertEqual(
            self.errors(), f"taru-cli: the connection to Taru at {BASE} was lost\n"
        )

    def test_stop(self) -> None:
        """
        C{stop} prints Taru's answer.
        """
        self.taru.answer(
            "POST", "/api/v1/task/greet/stop", body=b"task 'greet' is not running\n"
        )

        self.assertEqual(self.command("stop", "greet"), 0)
        self.assertEqual(self.written(), b"task 'greet' is not running\n")

    def test_status(self) -> None:
        """
        C{status} waits for the run's end, prints its exit code and exits
        with it.
        """
        self.taru.answer("GET", "/api/v1/task/greet/status", body=b"", hold=True)
        waiting = self.start("status", "greet")
        self.assertNoResult(waiting)

        self.taru.held[0].write(b"3")
        self.taru.held[0].finish()
        self.flush()

        self.assertEqual(self.successResultOf(waiting), 3)
        self.assertEqual(self.written(), b"3\n")

    def test_status_signal(self) -> None:
        """
        For a run a signal ended, C{status} finds the signal in the latest
        ended run and exits with 128 plus it.
        """
        self.taru.answer("GET", "/api/v1/task/greet/status", body=b"null")
        self.taru.answer_json(
            "GET",
            "/api/v1/task/greet/runs",
            [
                record(id=5, state="running", exit_code=None),
                record(id=4, exit_code=None, signal=15, stopped_by="bob"),
            ],
        )

        self.assertEqual(self.command("status", "greet"), 143)
        self.assertEqual(self.written(), b"stopped by bob (signal 15)\n")
        self.assertEqual(
            self.errors(),
            "taru-cli: run 4 of 'greet' was stopped by bob: ended by signal 15\n",
        )

    def test_status_never_run(self) -> None:
        """
        C{status} of a task that never ran is a failure that says so.
        """
        self.taru.answer("GET", "/api/v1/task/greet/status", body=b"null")
        self.taru.answer_json("GET", "/api/v1/task/greet/runs", [])

        self.assertEqual(self.command("status", "greet"), EXIT_FAILURE)
        self.assertEqual(self.errors(), "taru-cli: task 'greet' has not run yet\n")

    def test_output(self) -> None:
        """
        C{output} follows the latest run's output, or a given run's.
        """
        self.taru.answer("GET", "/api/v1/task/greet/output", body=b"latest\n")
        self.taru.answer("GET", "/api/v1/task/greet/runs/3/output", body=b"third\n")

        self.assertEqual(self.command("output", "greet"), 0)
        self.assertEqual(self.command("output", "greet", "--run", "3"), 0)
        self.assertEqual(self.written(), b"latest\nthird\n")

    def test_runs(self) -> None:
        """
        C{runs} prints a task's runs as a table, or with C{--json} as Taru
        sent them.
        """
        records = [record(id=2), record(id=1, exit_code=1)]
        self.taru.answer_json("GET", "/api/v1/task/greet/runs", records)

        self.assertEqual(self.command("runs", "greet"), 0)
        table = format_runs([RunRecord.from_json(sent) for sent in records])
        self.assertEqual(self.written().decode(), table + "\n")

        self.out.truncate(0)
        self.out.seek(0)
        self.assertEqual(self.command("runs", "greet", "--json"), 0)
        self.assertEqual(json.loads(self.written()), records)

    def test_events(self) -> None:
        """
        C{events} prints a line per event with the time it arrived, leaves
        heartbeats out, and fails with a message once the stream ends.
        """
        self.clock.advance(1796418000)  # 2026-12-04T21:00:00Z
        self.taru.answer("GET", "/events", body=b"retry: 2000\n\n", hold=True)
        following = self.start("events")
        stream = self.taru.held[0]

        stream.write(b'id: x-1\ndata: ["greet","Started"]\n\ndata: [null,"Ping"]\n\n')
        self.flush()
        self.clock.advance(2)
        stream.write(b'id: x-2\ndata: ["greet",{"ExitStatus":0}]\n\nid: x-3\n')
        stream.write(b'data: [null,"UpdateConfig"]\n\n')
        self.flush()
        self.assertNoResult(following)
        stream.finish()
        self.flush()

        self.assertEqual(self.successResultOf(following), EXIT_FAILURE)
        self.assertEqual(
            self.written().decode(),
            "2026-12-04T21:00:00Z greet started\n"
            "2026-12-04T21:00:02Z greet ended: exit code 0\n"
            "2026-12-04T21:00:02Z configuration reloaded\n",
        )
        self.assertEqual(
            self.errors(), f"taru-cli: the event stream from Taru at {BASE} ended\n"
        )

    def test_events_json(self) -> None:
        """
        C{events --json} prints each event's JSON as Taru sent it, one per
        line, heartbeats left out.
        """
        self.taru.answer(
            "GET",
            "/events",
            body=b'data: ["a","Started"]\n\ndata: [null,"Ping"]\n\n'
            b'data: ["a",{"ExitStatus":null}]\n\n',
        )

        self.assertEqual(self.command("events", "--json"), EXIT_FAILURE)
        self.assertEqual(
            self.written(), b'["a","Started"]\n["a",{"ExitStatus":null}]\n'
        )

    def test_other_connection_failure(self) -> None:
        """
        Any other failure to get an answer is reported with what went wrong.
        """

        @implementer(IAgent)
        class FailingAgent:
            def request(self, *args: Any, **kwargs: Any) -> Deferred[Any]:
                return fail(OSError("no route to host"))

        self.assertEqual(self.command("list", agent=FailingAgent()), EXIT_FAILURE)
        self.assertEqual(
            self.errors(),
            f"taru-cli: cannot talk to Taru at {BASE}: no route to host\n",
        )
