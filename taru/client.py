"""
C{taru-cli}, Taru's command-line client: it lists tasks, runs them with
arguments while their output streams to standard output, stops them, shows
their runs and follows Taru's events, all through the HTTP API.

Exit statuses: a run's own exit code for C{run} and C{status}, 128 plus the
signal for a run that a signal ended, L{EXIT_FAILURE} when Taru refuses or
cannot be reached, 2 for a usage error, 128 plus the signal when
C{taru-cli} itself is interrupted, and 128 plus C{SIGPIPE} when its
standard output is closed before it is done.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import sys
import traceback
from base64 import b64encode
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import IO, Any, NoReturn, cast
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from attrs import define, field, frozen
from treq.client import HTTPClient
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import (
    ConnectError,
    ConnectionClosed,
    ConnectionRefusedError,
    DNSLookupError,
)
from twisted.internet.error import (
    TimeoutError as ConnectTimeout,
)
from twisted.internet.interfaces import IPushProducer, IReactorTime
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.task import react
from twisted.python.failure import Failure
from twisted.web.client import (
    Agent,
    HTTPConnectionPool,
    ResponseDone,
    ResponseFailed,
    ResponseNeverReceived,
)
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IResponse

PROGRAM = "taru-cli"

DEFAULT_URL = "http://127.0.0.1:3000"

# Exit status for every failure of Taru or of the connection to it. A task
# that itself exits with 125 cannot be told apart from such a failure.
EXIT_FAILURE = 125

# Exit statuses for a run, or taru-cli itself, ended by a signal are this plus
# the signal's number, as shells report them.
EXIT_SIGNAL_BASE = 128

# Standard output was closed, as by `| head`: what a shell reports for a
# command that SIGPIPE ended.
EXIT_STDOUT_CLOSED = EXIT_SIGNAL_BASE + signal.SIGPIPE

# Seconds to wait for a TCP connection to Taru.
CONNECT_TIMEOUT = 10.0

# Seconds that stopping a task after Ctrl-C may take before taru-cli gives up.
STOP_TIMEOUT = 10.0

# The longest error message from Taru that is shown whole.
MAX_MESSAGE = 500

# How much of an error's body is read, at most.
MAX_ERROR_BODY = 64 * 1024

# How many of an Enum's values the task list shows.
SHOWN_VALUES = 4

# Who Taru says stopped a run when the request named no user.
_NOBODY = "anonymous"

_ENVIRONMENT_URL = "TARU_URL"
_ENVIRONMENT_USER = "TARU_USER"


class ClientError(Exception):
    """
    Taru refused a request, or could not be reached: the message says which,
    for the user.

    @ivar code: the status code Taru refused the request with, if it did.
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class StdoutClosed(Exception):
    """
    Standard output was closed while there was more to write.
    """


@frozen
class Invocation:
    """
    One command, as given on the command line.

    @ivar url: Taru's base URL, without a trailing slash or credentials.
    @ivar user: the user to name in C{X-User}, or L{None} to name none.
    @ivar credentials: the name and password for HTTP basic authentication,
        as the URL gave them, for a proxy in front of Taru.
    @ivar command: C{list}, C{run}, C{stop}, C{status}, C{output}, C{runs} or
        C{events}.
    @ivar task: the task the command is about, when it is about one.
    @ivar arguments: the task's arguments for C{run}, by name.
    @ivar json: print Taru's JSON instead of a table or lines.
    @ivar mode: how C{run} waits: C{output} streams the output, C{status}
        only waits for the end, C{detach} does not wait.
    @ivar stop_on_interrupt: stop the task, too, when C{run} is interrupted.
    @ivar run_id: the run whose output C{output} shows; the latest when
        L{None}.
    """

    url: str
    user: str | None
    command: str
    credentials: tuple[str, str] | None = None
    task: str | None = None
    arguments: Mapping[str, str] = field(factory=dict)
    json: bool = False
    mode: str = "output"
    stop_on_interrupt: bool = False
    run_id: int | None = None


def build_parser() -> argparse.ArgumentParser:
    """
    The parser of C{taru-cli}'s options and commands.
    """
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Run and watch the tasks of a Taru server.",
        epilog=(
            f"Exit status: a run's own exit code for run and status; 128 plus"
            f" the signal for a run a signal ended; {EXIT_FAILURE} when Taru"
            " refuses or cannot be reached; 2 for a usage error; 130 on Ctrl-C."
        ),
    )
    parser.add_argument(
        "--url",
        help=f"Taru's address (default: ${_ENVIRONMENT_URL}, else {DEFAULT_URL})",
    )
    parser.add_argument(
        "--user",
        metavar="NAME",
        help=f"the user to act as, sent as X-User (default: ${_ENVIRONMENT_USER})",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    listing = commands.add_parser("list", help="list the tasks you may see")
    listing.add_argument("--json", action="store_true", help="print Taru's JSON")

    run = commands.add_parser(
        "run",
        help="run a task, stream its output and exit with its exit code",
    )
    run.add_argument("task", metavar="TASK", help="the task to run")
    run.add_argument(
        "arguments", nargs="*", metavar="NAME=VALUE", help="the task's arguments"
    )
    waiting = run.add_mutually_exclusive_group()
    waiting.add_argument(
        "--no-output",
        dest="mode",
        action="store_const",
        const="status",
        default="output",
        help="wait for the run to end without printing its output",
    )
    waiting.add_argument(
        "--detach",
        dest="mode",
        action="store_const",
        const="detach",
        help="only start the run, and print its number",
    )
    run.add_argument(
        "--stop-on-interrupt",
        action="store_true",
        help="on Ctrl-C, stop the task as well as stop following it",
    )

    stop = commands.add_parser("stop", help="stop a task and all it started")
    stop.add_argument("task", metavar="TASK", help="the task to stop")

    status = commands.add_parser(
        "status", help="wait for a task's run to end; print and exit with its code"
    )
    status.add_argument("task", metavar="TASK", help="the task to wait for")

    output = commands.add_parser("output", help="follow the output of a task's run")
    output.add_argument("task", metavar="TASK", help="the task whose output to show")
    output.add_argument(
        "--run",
        dest="run_id",
        type=_run_number,
        metavar="ID",
        help="the run whose output to show (default: the latest)",
    )

    runs = commands.add_parser("runs", help="list a task's runs, newest first")
    runs.add_argument("task", metavar="TASK", help="the task whose runs to list")
    runs.add_argument("--json", action="store_true", help="print Taru's JSON")

    events = commands.add_parser("events", help="print Taru's events as they happen")
    events.add_argument("--json", action="store_true", help="print each event's JSON")
    return parser


def _run_number(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a run number: {text!r}")
    return int(text)


def parse_invocation(argv: Sequence[str], environment: Mapping[str, str]) -> Invocation:
    """
    Read the command line.

    @param argv: the arguments, without the program's name.
    @param environment: the environment, for C{TARU_URL} and C{TARU_USER}.
    @raise SystemExit: with status 2 and a usage message on standard error,
        for options or arguments that make no sense.
    """
    parser = build_parser()
    options = parser.parse_args(argv)

    url = options.url or environment.get(_ENVIRONMENT_URL) or DEFAULT_URL
    problem = url_problem(url)
    if problem is not None:
        source = "--url" if options.url else _ENVIRONMENT_URL
        parser.error(f"{source}: {problem}")
    url, credentials = split_credentials(url)
    user = options.user
    if user is None:
        user = environment.get(_ENVIRONMENT_USER)

    arguments: dict[str, str] = {}
    if options.command == "run":
        try:
            arguments = parse_task_arguments(options.arguments)
        except ValueError as malformed:
            parser.error(str(malformed))

    return Invocation(
        url=url.rstrip("/"),
        user=user or None,
        command=options.command,
        credentials=credentials,
        task=getattr(options, "task", None),
        arguments=arguments,
        json=getattr(options, "json", False),
        mode=getattr(options, "mode", "output"),
        stop_on_interrupt=getattr(options, "stop_on_interrupt", False),
        run_id=getattr(options, "run_id", None),
    )


def url_problem(url: str) -> str | None:
    """
    What is wrong with a base URL for Taru, if anything. The URL is not
    repeated: it may hold a password.
    """
    try:
        parts = urlsplit(url)
        # Reading the port checks it.
        _ = parts.port
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an http:// or https:// address"
    if parts.query or parts.fragment:
        return "a base address takes no query or fragment"
    return None


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """
    Take the name and password for basic authentication out of a URL such as
    C{https://alice:secret@taru.example/}.

    @return: the URL without them, and them if it had them.
    """
    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    host = parts.netloc.rpartition("@")[2]
    credentials = (unquote(parts.username), unquote(parts.password or ""))
    return urlunsplit(parts._replace(netloc=host)), credentials


def parse_task_arguments(given: Sequence[str]) -> dict[str, str]:
    """
    Read a task's arguments from C{NAME=VALUE} words. The value is everything
    after the first C{=}, spaces and further C{=} included.

    @raise ValueError: a word is not C{NAME=VALUE}, names an argument twice,
        or is not UTF-8.
    """
    arguments: dict[str, str] = {}
    for word in given:
        name, equals, value = word.partition("=")
        if not equals or not name:
            raise ValueError(
                f"arguments are given as NAME=VALUE, such as host=localhost;"
                f" not {word!r}"
            )
        try:
            word.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"argument {name!r} is not valid UTF-8") from None
        if name in arguments:
            raise ValueError(f"argument {name!r} is given twice")
        arguments[name] = value
    return arguments


@define
class Console:
    """
    Where C{taru-cli} writes: raw output and lines to standard output,
    messages to standard error, each flushed at once.

    @ivar out: standard output, as bytes.
    @ivar err: standard error, as bytes.
    @ivar encoding: how text is encoded for the terminal.
    """

    out: IO[bytes]
    err: IO[bytes]
    encoding: str = "utf-8"

    @classmethod
    def standard(cls) -> Console:
        """
        The process's own standard output and error.
        """
        return cls(sys.stdout.buffer, sys.stderr.buffer, sys.stdout.encoding)

    def output(self, chunk: bytes) -> None:
        """
        Write bytes as they are, and flush them.

        @raise StdoutClosed: standard output is closed.
        """
        try:
            self.out.write(chunk)
            self.out.flush()
        except (BrokenPipeError, ValueError):
            # ValueError: the file object itself was closed.
            raise StdoutClosed() from None

    def line(self, text: str) -> None:
        """
        Write a line of text.

        @raise StdoutClosed: standard output is closed.
        """
        self.output(text.encode(self.encoding, "replace") + b"\n")

    def error(self, message: str) -> None:
        """
        Tell the user something on standard error, naming the program.
        """
        text = f"{PROGRAM}: {message}\n"
        try:
            self.err.write(text.encode(self.encoding, "replace"))
            self.err.flush()
        except (BrokenPipeError, ValueError):
            pass

    def silence(self) -> None:
        """
        Send standard output to C{/dev/null} once it was found closed, so
        that the interpreter's last flush at exit does not complain.
        """
        try:
            descriptor = self.out.fileno()
        except (OSError, ValueError):
            return
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, descriptor)
        finally:
            os.close(null)


class _BodyStream(Protocol):
    """
    Hands each chunk of a response body to a receiver as it arrives.

    @ivar done: fires when the body is complete; fails with what the
        receiver raised, or with why the connection was lost. Cancelling it
        drops the connection.
    """

    def __init__(self, receive: Callable[[bytes], None]) -> None:
        self._receive = receive
        self._finished = False
        self.done: Deferred[None] = Deferred(self._cancel)

    def dataReceived(self, data: bytes) -> None:
        if self._finished:
            return
        try:
            self._receive(data)
        except BaseException:
            failure = Failure()
            self._finished = True
            self._drop()
            self.done.errback(failure)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._finished:
            return
        self._finished = True
        if reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(None)
        else:
            self.done.errback(reason)

    def _cancel(self, done: Deferred[None]) -> None:
        self._finished = True
        self._drop()

    def _drop(self) -> None:
        # A response body's transport stands for the connection; stopping it
        # drops the connection.
        if self.transport is not None:
            cast(IPushProducer, self.transport).stopProducing()


class _Enough(Exception):
    """
    As much of a body was read as is wanted.
    """


def _segment(text: str) -> str:
    return quote(text, safe="")


@frozen
class TaruClient:
    """
    Taru's HTTP API, as the requests C{taru-cli} makes.

    @ivar http: the HTTP client to send them with.
    @ivar base: Taru's base URL, without a trailing slash.
    @ivar user: the user named in C{X-User}, or L{None}.
    @ivar credentials: the name and password sent with basic authentication,
        if any.
    """

    http: HTTPClient
    base: str
    user: str | None
    credentials: tuple[str, str] | None = None

    def task_url(self, task: str, *path: str) -> str:
        """
        The URL of a task's endpoint, such as C{task_url("greet", "output")}.
        """
        segments = [_segment(task), *(_segment(part) for part in path)]
        return f"{self.base}/api/v1/task/" + "/".join(segments)

    async def request(
        self,
        method: str,
        url: str,
        arguments: Mapping[str, str] | None = None,
    ) -> IResponse:
        """
        Send a request, and check its answer.

        @param arguments: a task's arguments, sent as a JSON object.
        @return: the response, its body not read yet, when its status is
            2xx.
        @raise ClientError: Taru answered with another status (the message is
            Taru's), or could not be reached.
        """
        headers = Headers({b"accept": [b"application/json, text/plain"]})
        if self.user is not None:
            headers.setRawHeaders(b"x-user", [self.user.encode("utf-8")])
        if self.credentials is not None:
            pair = ":".join(self.credentials).encode("utf-8")
            headers.setRawHeaders(b"authorization", [b"Basic " + b64encode(pair)])
        body: dict[str, Any] = {}
        if arguments is not None:
            body["json"] = dict(arguments)
        try:
            response = await self.http.request(
                method, url, headers=headers, unbuffered=True, **body
            )
        except CancelledError:
            raise
        except Exception as error:
            raise ClientError(self._unreachable(error)) from None
        if not 200 <= response.code < 300:
            raise ClientError(await self._refusal(response), response.code)
        return response

    def _unreachable(self, error: Exception) -> str:
        """
        Say why a request got no answer.
        """
        if isinstance(error, ConnectionRefusedError):
            return f"cannot connect to Taru at {self.base}: connection refused"
        if isinstance(error, DNSLookupError):
            return f"cannot connect to Taru at {self.base}: unknown host"
        if isinstance(error, ConnectTimeout):
            return f"cannot connect to Taru at {self.base}: no answer in time"
        if isinstance(error, ConnectError):
            reason = error.osError or error.__class__.__name__
            return f"cannot connect to Taru at {self.base}: {reason}"
        if isinstance(error, (ResponseNeverReceived, ResponseFailed)):
            return f"the connection to Taru at {self.base} was lost"
        return f"cannot talk to Taru at {self.base}: {error}"

    async def _refusal(self, response: IResponse) -> str:
        """
        Taru's message for a response that is not a success.
        """
        try:
            body = await self._read(response, limit=MAX_ERROR_BODY)
        except ClientError:
            body = b""
        content_type = response.headers.getRawHeaders(b"content-type", [b""])[0]
        message = body.decode("utf-8", "replace").strip()
        if content_type.startswith(b"text/plain") and message:
            if len(message) > MAX_MESSAGE:
                message = message[:MAX_MESSAGE] + "..."
            if response.code == 401 and self.user is None:
                message += f" (name a user with --user or ${_ENVIRONMENT_USER})"
            return message

        # Not Taru's own message: a proxy's page, most likely.
        phrase = response.phrase.decode("latin-1")
        message = f"{self.base} answered {response.code} {phrase}"
        if response.code == 401 and self.credentials is None:
            message += (
                "; give the name and password a proxy asks for in the URL,"
                " as in https://NAME:PASSWORD@HOST/"
            )
        elif response.code == 401:
            message += ": the name and password in the URL were refused"
        return message

    async def text(self, method: str, url: str) -> str:
        """
        Send a request and read its answer as text.
        """
        response = await self.request(method, url)
        return (await self._read(response)).decode("utf-8", "replace")

    async def document(self, url: str) -> tuple[bytes, Any]:
        """
        C{GET} a JSON document.

        @return: its bytes as sent, and its value.
        @raise ClientError: also when the answer is not JSON.
        """
        response = await self.request("GET", url)
        body = await self._read(response)
        try:
            return body, json.loads(body)
        except ValueError:
            raise ClientError(f"Taru's answer from {url} is not JSON") from None

    async def _read(self, response: IResponse, limit: int | None = None) -> bytes:
        """
        Read a response's body.

        @param limit: how many bytes of it to read at most, dropping the
            connection when there are more; all when L{None}.
        """
        chunks: list[bytes] = []
        size = 0

        def take(chunk: bytes) -> None:
            nonlocal size
            chunks.append(chunk)
            size += len(chunk)
            if limit is not None and size >= limit:
                raise _Enough()

        try:
            await self.stream(response, take)
        except _Enough:
            pass
        return b"".join(chunks)[:limit]

    async def stream(
        self, response: IResponse, receive: Callable[[bytes], None]
    ) -> None:
        """
        Hand each chunk of a response's body to C{receive} as it arrives.

        @raise ClientError: the connection was lost before the body ended.
        @raise StdoutClosed: as C{receive} does.
        """
        body = _BodyStream(receive)
        response.deliverBody(body)
        try:
            await body.done
        except (ResponseFailed, ConnectionClosed, ConnectError):
            raise ClientError(
                f"the connection to Taru at {self.base} was lost"
            ) from None

    async def tasks(self) -> tuple[bytes, dict[str, Any]]:
        """
        The task list, as sent and as read.
        """
        body, listing = await self.document(f"{self.base}/api/v1/tasks")
        if not isinstance(listing, dict):
            raise ClientError("Taru's task list is not a JSON object")
        return body, listing

    async def runs(self, task: str) -> tuple[bytes, list[RunRecord]]:
        """
        A task's runs, newest first, as sent and as read.
        """
        body, records = await self.document(self.task_url(task, "runs"))
        if not isinstance(records, list):
            raise ClientError(f"Taru's runs of {task!r} are not a JSON list")
        return body, [RunRecord.from_json(record) for record in records]

    async def run(self, task: str, run_id: int) -> RunRecord:
        """
        One run's record.
        """
        _, record = await self.document(self.task_url(task, "runs", str(run_id)))
        return RunRecord.from_json(record)

    async def stop(self, task: str) -> str:
        """
        Stop a task.

        @return: Taru's answer, such as C{task 'x' is stopping}.
        """
        return (await self.text("POST", self.task_url(task, "stop"))).strip()


def run_id_of(response: IResponse) -> int:
    """
    The number of the run a response started, from its C{Taru-Run} header.

    @raise ClientError: it has none.
    """
    values = response.headers.getRawHeaders(b"taru-run", [])
    if len(values) != 1 or not values[0].strip().isdigit():
        raise ClientError(
            "Taru did not say which run it started (no Taru-Run header);"
            " it may be older than this client"
        )
    return int(values[0])


def _whole(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


@frozen
class RunRecord:
    """
    What Taru tells of one run of a task.

    @ivar ended: whether the run has ended.
    @ivar exit_code: its exit code, once it exited by itself.
    @ivar signal: the signal that ended it, if one did.
    @ivar duration: the seconds it ran or has run, when known.
    """

    run_id: int
    task: str
    user: str | None
    started_at: str | None
    ended: bool
    duration: float | None
    exit_code: int | None
    signal: int | None
    timed_out: bool
    stopped_by: str | None
    arguments: Mapping[str, str]
    output_size: int | None
    output_kept: bool

    @classmethod
    def from_json(cls, record: object) -> RunRecord:
        """
        Read a run's record as Taru sends it.

        @raise ClientError: it is not a record of a run.
        """
        if not isinstance(record, dict) or _whole(record.get("id")) is None:
            raise ClientError("Taru sent something that is not a run's record")
        arguments = record.get("arguments")
        duration = record.get("duration")
        return cls(
            run_id=record["id"],
            task=str(record.get("task", "")),
            user=_text_or_none(record.get("user")),
            started_at=_text_or_none(record.get("started_at")),
            ended=record.get("state") != "running",
            duration=(
                float(duration)
                if isinstance(duration, (int, float)) and not isinstance(duration, bool)
                else None
            ),
            exit_code=_whole(record.get("exit_code")),
            signal=_whole(record.get("signal")),
            timed_out=record.get("timed_out") is True,
            stopped_by=_text_or_none(record.get("stopped_by")),
            arguments=(
                {str(name): str(value) for name, value in arguments.items()}
                if isinstance(arguments, dict)
                else {}
            ),
            output_size=_whole(record.get("output_size")),
            output_kept=record.get("output_kept") is True,
        )


def exit_status_of(record: RunRecord) -> tuple[int, str | None]:
    """
    The exit status C{taru-cli} ends with for a run that ended, and a note
    for standard error when the run did not exit by itself.

    @return: the run's exit code; 128 plus the signal when a signal ended
        it; L{EXIT_FAILURE} when Taru does not know how it ended.
    """
    name = f"run {record.run_id} of {record.task!r}"
    stop = _why_stopped(record)
    cause = None if stop is None else f"{name} {stop}"
    if record.exit_code is not None:
        note = None if cause is None else f"{cause}; it exited with {record.exit_code}"
        return record.exit_code, note
    if record.signal is not None:
        how = f"ended by signal {record.signal}"
        note = f"{name} {how}" if cause is None else f"{cause}: {how}"
        return EXIT_SIGNAL_BASE + record.signal, note
    return EXIT_FAILURE, f"Taru does not know how {name} ended"


def _why_stopped(record: RunRecord) -> str | None:
    """
    Why a run was stopped, as the end of a sentence that names the run; or
    L{None} when nobody stopped it.
    """
    if record.timed_out or record.stopped_by == "timeout":
        return "timed out"
    if record.stopped_by == "shutdown":
        return "was stopped as Taru shut down"
    if record.stopped_by == _NOBODY:
        return "was stopped"
    if record.stopped_by is not None:
        return f"was stopped by {record.stopped_by}"
    return None


def describe_result(record: RunRecord) -> str:
    """
    How a run ended, in a few words: C{exit 0}, C{signal 9},
    C{timed out (signal 15)}, C{stopped by alice (signal 15)}, C{running}.
    """
    if not record.ended:
        return "running"
    if record.exit_code is not None:
        result = f"exit {record.exit_code}"
    elif record.signal is not None:
        result = f"signal {record.signal}"
    else:
        result = "unknown"
    if record.timed_out or record.stopped_by == "timeout":
        return f"timed out ({result})"
    if record.stopped_by == "shutdown":
        return f"stopped at shutdown ({result})"
    if record.stopped_by == _NOBODY:
        return f"stopped ({result})"
    if record.stopped_by is not None:
        return f"stopped by {record.stopped_by} ({result})"
    return result


def format_table(headings: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """
    Columns aligned with two spaces between them, headings first, without
    trailing spaces.
    """
    widths = [
        max(len(row[column]) for row in [headings, *rows])
        for column in range(len(headings))
    ]
    lines = []
    for row in [headings, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def describe_argument(argument: Mapping[str, Any]) -> str:
    """
    An argument as the task list shows it: C{times:Int},
    C{host:Enum(localhost|::1)}.
    """
    described = f"{argument.get('name')}:{argument.get('datatype')}"
    if argument.get("datatype") != "Enum":
        return described
    values = argument.get("values")
    source = argument.get("enum_source")
    if isinstance(values, list):
        shown = [str(value) for value in values[:SHOWN_VALUES]]
        if len(values) > SHOWN_VALUES:
            shown.append(f"+{len(values) - SHOWN_VALUES} more")
        return f"{described}({'|'.join(shown) or 'no values'})"
    if "values" in argument and source is not None:
        return f"{described}(from {source}, which has not run yet)"
    if "values" in argument:
        return f"{described}(not ready)"
    if source is not None:
        return f"{described}(from {source})"
    return described


def _permissions(task: Mapping[str, Any]) -> str:
    can_run = task.get("can_run") is True
    can_read = task.get("can_view_output") is True
    if can_run and can_read:
        return "run, read output"
    if can_run:
        return "run"
    if can_read:
        return "read output"
    return "see status"


def _last_exit(task: Mapping[str, Any]) -> str:
    exit_code = task.get("exit_code")
    if task.get("state") != "finished":
        return "-"
    return "signal" if exit_code is None else str(exit_code)


def format_tasks(listing: Mapping[str, Any]) -> str:
    """
    The task list as a table: name, state, the last run's exit code, the
    arguments with their types, and what the user may do.
    """
    if not listing:
        return "no tasks"
    rows = []
    for name, task in listing.items():
        arguments = task.get("arguments") or []
        rows.append(
            [
                str(name),
                str(task.get("state", "")),
                _last_exit(task),
                " ".join(describe_argument(argument) for argument in arguments) or "-",
                _permissions(task),
            ]
        )
    return format_table(["TASK", "STATE", "EXIT", "ARGUMENTS", "YOU MAY"], rows)


def format_duration(seconds: float | None) -> str:
    """
    A duration for people: C{0.012s}, C{12.3s}, C{3m05s}, C{2h01m}.
    """
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.3f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def format_size(size: int | None) -> str:
    """
    A number of bytes for people: C{512 B}, C{1.5 KiB}, C{3.0 MiB}.
    """
    if size is None:
        return "-"
    amount, unit = float(size), "B"
    for larger in ("KiB", "MiB", "GiB"):
        if amount < 1024:
            break
        amount, unit = amount / 1024, larger
    return f"{size} B" if unit == "B" else f"{amount:.1f} {unit}"


_FRACTION = re.compile(r"\.\d+(?=Z$|[+-]\d\d:\d\d$)")


def format_time(timestamp: str | None) -> str:
    """
    An ISO 8601 time from Taru, without its fraction of a second.
    """
    if timestamp is None:
        return "-"
    return _FRACTION.sub("", timestamp)


def format_runs(records: Sequence[RunRecord]) -> str:
    """
    A task's runs as a table: number, start, duration, user, how it ended,
    its output's size, and its arguments.
    """
    if not records:
        return "no runs"
    rows = [
        [
            str(record.run_id),
            format_time(record.started_at),
            format_duration(record.duration),
            record.user or "-",
            describe_result(record),
            format_size(record.output_size) if record.output_kept else "not kept",
            " ".join(
                f"{name}={shlex.quote(value)}"
                for name, value in record.arguments.items()
            )
            or "-",
        ]
        for record in records
    ]
    headings = ["RUN", "STARTED", "DURATION", "USER", "RESULT", "OUTPUT", "ARGUMENTS"]
    return format_table(headings, rows)


def describe_event(message: object) -> str | None:
    """
    An event as a line for people, without its time; L{None} for heartbeats.
    """
    if not isinstance(message, list) or len(message) != 2:
        return json.dumps(message, ensure_ascii=False)
    task, event = message
    if task is None:
        if event == "Ping":
            return None
        if event == "UpdateConfig":
            return "configuration reloaded"
        if event == "Resync":
            return "events were missed: the task list may have changed"
        return json.dumps(event, ensure_ascii=False)
    if event == "Started":
        return f"{task} started"
    if isinstance(event, dict) and "ExitStatus" in event:
        code = event["ExitStatus"]
        if code is None:
            return f"{task} ended: killed by a signal"
        return f"{task} ended: exit code {code}"
    return f"{task} {json.dumps(event, ensure_ascii=False)}"


def is_heartbeat(message: object) -> bool:
    """
    Whether an event is only Taru's heartbeat.
    """
    return message == [None, "Ping"]


class EventParser:
    """
    Splits a server-sent event stream, fed in chunks of any size, into its
    messages' C{data}.

    @ivar last_event_id: the last C{id} received.
    """

    def __init__(self, receive: Callable[[str], None]) -> None:
        """
        @param receive: called with each message's data, its lines joined by
            newlines.
        """
        self._receive = receive
        self._pending = b""
        self._after_cr = False
        self._data: list[str] = []
        self.last_event_id: str | None = None

    def feed(self, chunk: bytes) -> None:
        """
        Take the next chunk of the stream.
        """
        if self._after_cr and chunk.startswith(b"\n"):
            # The second half of a CRLF split between chunks.
            chunk = chunk[1:]
        if chunk:
            self._after_cr = chunk.endswith(b"\r")
        lines = re.split(rb"\r\n|\r|\n", self._pending + chunk)
        self._pending = lines.pop()
        for line in lines:
            self._line(line.decode("utf-8", "replace"))

    def _line(self, line: str) -> None:
        if not line:
            self._dispatch()
            return
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "id":
            self.last_event_id = value

    def _dispatch(self) -> None:
        if not self._data:
            return
        text = "\n".join(self._data)
        self._data = []
        self._receive(text)


def utc_time(seconds: float) -> str:
    """
    A moment as C{2026-12-04T21:00:00Z}.
    """
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@define
class Session:
    """
    What one command works with.

    @ivar run_started: whether C{run} may have started a run that has not
        ended yet, so that an interrupt should stop it.
    @ivar interrupted: whether a signal asked to give up the command, so
        that the failures giving up causes go unreported.
    """

    client: TaruClient
    console: Console
    clock: IReactorTime
    run_started: bool = False
    interrupted: bool = False


async def list_tasks(invocation: Invocation, session: Session) -> int:
    """
    C{taru-cli list}: the tasks the user may see.
    """
    body, listing = await session.client.tasks()
    if invocation.json:
        session.console.output(body if body.endswith(b"\n") else body + b"\n")
    else:
        session.console.line(format_tasks(listing))
    return 0


async def run_task(invocation: Invocation, session: Session) -> int:
    """
    C{taru-cli run}: start a run, stream its output, and end with its exit
    status.
    """
    client, console = session.client, session.console
    task = _task(invocation)
    arguments = invocation.arguments

    if invocation.mode == "detach":
        response = await client.request("POST", client.task_url(task), arguments)
        run_id = run_id_of(response)
        await client.stream(response, lambda chunk: None)
        console.line(str(run_id))
        return 0

    endpoint = "output" if invocation.mode == "output" else "status"
    session.run_started = True
    try:
        response = await client.request(
            "POST", client.task_url(task, endpoint), arguments
        )
    except ClientError as refused:
        if refused.code == 404 and invocation.mode == "output":
            await _explain_unreadable(client, task)
        raise
    if invocation.mode == "output":
        await client.stream(response, console.output)
    else:
        await client.stream(response, lambda chunk: None)
    # Its output or status is complete: the run has ended, or is ending.
    session.run_started = False

    # Read once the output is out, which is worth having even from a Taru too
    # old to name its runs.
    run_id = run_id_of(response)
    record = await client.run(task, run_id)
    if not record.ended:
        # The output can end a moment before Taru has noted the run's end.
        await client.text("GET", client.task_url(task, "status"))
        record = await client.run(task, run_id)
    if not record.ended:
        raise ClientError(f"run {run_id} of {task!r} has not ended")
    code, note = exit_status_of(record)
    if note is not None:
        console.error(note)
    return code


async def _explain_unreadable(client: TaruClient, task: str) -> None:
    """
    Taru hides a task from a user who may run it but not read its output,
    when asked to run it and stream the output: say what they may do
    instead.

    @raise ClientError: saying so, when that is why.
    """
    try:
        _, listing = await client.tasks()
    except ClientError:
        return
    permissions = listing.get(task)
    if not isinstance(permissions, dict) or permissions.get("can_run") is not True:
        return
    if permissions.get("can_view_output") is not True:
        raise ClientError(
            f"you may run {task!r} but not read its output:"
            " use run --no-output, or run --detach"
        )


async def stop_task(invocation: Invocation, session: Session) -> int:
    """
    C{taru-cli stop}: stop a task and everything it started.
    """
    session.console.line(await session.client.stop(_task(invocation)))
    return 0


async def task_status(invocation: Invocation, session: Session) -> int:
    """
    C{taru-cli status}: wait for the task's run to end, print its exit code
    and end with it.
    """
    client, console = session.client, session.console
    task = _task(invocation)
    answer = (await client.text("GET", client.task_url(task, "status"))).strip()
    if answer.isdigit():
        console.line(answer)
        return int(answer)

    # No exit code: a signal ended the run, or there was none.
    _, records = await client.runs(task)
    ended = [record for record in records if record.ended]
    if not ended:
        raise ClientError(f"task {task!r} has not run yet")
    code, note = exit_status_of(ended[0])
    console.line(describe_result(ended[0]))
    if note is not None:
        console.error(note)
    return code


async def task_output(invocation: Invocation, session: Session) -> int:
    """
    C{taru-cli output}: follow the output of the latest run, or of a given
    one, until it ends.
    """
    client = session.client
    task = _task(invocation)
    if invocation.run_id is None:
        url = client.task_url(task, "output")
    else:
        url = client.task_url(task, "runs", str(invocation.run_id), "output")
    response = await client.request("GET", url)
    await client.stream(response, session.console.output)
    return 0


async def task_runs(invocation: Invocation, session: Session) -> int:
    """
    C{taru-cli runs}: a task's runs, newest first.
    """
    body, records = await session.client.runs(_task(invocation))
    if invocation.json:
        session.console.output(body if body.endswith(b"\n") else body + b"\n")
    else:
        session.console.line(format_runs(records))
    return 0


async def follow_events(invocation: Invocation, session: Session) -> int:
    """
    C{taru-cli events}: one line per event until the connection ends, which
    is a failure: Taru never ends the stream by itself.
    """
    client, console = session.client, session.console

    def show(data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            message = data
        if is_heartbeat(message):
            return
        if invocation.json:
            console.line(data)
            return
        described = describe_event(message)
        if described is not None:
            console.line(f"{utc_time(session.clock.seconds())} {described}")

    response = await client.request("GET", f"{client.base}/events")
    try:
        await client.stream(response, EventParser(show).feed)
    except ClientError:
        # Lost or ended: either way, events stopped coming.
        pass
    raise ClientError(f"the event stream from Taru at {client.base} ended")


_COMMANDS: dict[str, Callable[[Invocation, Session], Awaitable[int]]] = {
    "list": list_tasks,
    "run": run_task,
    "stop": stop_task,
    "status": task_status,
    "output": task_output,
    "runs": task_runs,
    "events": follow_events,
}


def _task(invocation: Invocation) -> str:
    assert invocation.task is not None, "every command but list and events has one"
    return invocation.task


async def execute(invocation: Invocation, session: Session) -> int:
    """
    Carry out a command, and tell the user of failures.

    @return: the exit status.
    """
    try:
        return await _COMMANDS[invocation.command](invocation, session)
    except ClientError as failure:
        if not session.interrupted:
            session.console.error(str(failure))
        return EXIT_FAILURE
    except StdoutClosed:
        session.console.silence()
        return EXIT_STDOUT_CLOSED


@define
class Interruptions:
    """
    The signals that ask C{taru-cli} to give up what it is doing, handed to
    whoever listens for them now.
    """

    _listener: Callable[[int], None] | None = None

    def listen(self, listener: Callable[[int], None] | None) -> None:
        """
        Have C{listener} called with the number of each signal from now on;
        with L{None}, ignore them.
        """
        self._listener = listener

    def interrupt(self, number: int) -> None:
        """
        A signal arrived.
        """
        if self._listener is not None:
            self._listener(number)


async def supervise(
    invocation: Invocation, session: Session, interruptions: Interruptions
) -> int:
    """
    Carry out a command until it ends or a signal interrupts it. Once
    interrupted, C{run --stop-on-interrupt} stops the task, unless a second
    signal or L{STOP_TIMEOUT} cuts that short too.

    @return: the exit status: 128 plus the signal when interrupted.
    """
    work = Deferred.fromCoroutine(execute(invocation, session))
    signals: list[int] = []

    def give_up(number: int) -> None:
        signals.append(number)
        session.interrupted = True
        work.cancel()

    interruptions.listen(give_up)
    try:
        code = await work
    except CancelledError:
        if not signals:
            raise
    finally:
        interruptions.listen(None)
    if not signals:
        return code

    if invocation.stop_on_interrupt and session.run_started:
        await _stop_after_interrupt(invocation, session, interruptions)
    return EXIT_SIGNAL_BASE + signals[0]


async def _stop_after_interrupt(
    invocation: Invocation, session: Session, interruptions: Interruptions
) -> None:
    stopping = Deferred.fromCoroutine(session.client.stop(_task(invocation)))
    interruptions.listen(lambda number: stopping.cancel())
    timeout = session.clock.callLater(STOP_TIMEOUT, stopping.cancel)
    try:
        session.console.error(await stopping)
    except CancelledError:
        session.console.error(f"gave up stopping {_task(invocation)!r}")
    except ClientError as failure:
        session.console.error(f"could not stop {_task(invocation)!r}: {failure}")
    finally:
        interruptions.listen(None)
        if timeout.active():
            timeout.cancel()


def _install_signal_handlers(reactor: Any, interruptions: Interruptions) -> None:
    """
    Route SIGINT and SIGTERM to C{interruptions}, in place of the reactor's
    own handlers that would stop it in mid-command.
    """

    def handle(number: int, frame: object) -> None:
        reactor.callFromThread(interruptions.interrupt, number)

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


async def _react_main(reactor: Any, invocation: Invocation) -> NoReturn:
    """
    Carry out a command with the real reactor, standard output and error,
    and end with its exit status.
    """
    console = Console.standard()
    pool = HTTPConnectionPool(reactor, persistent=False)
    agent = Agent(reactor, connectTimeout=CONNECT_TIMEOUT, pool=pool)
    client = TaruClient(
        HTTPClient(agent), invocation.url, invocation.user, invocation.credentials
    )
    session = Session(client, console, reactor)
    interruptions = Interruptions()
    reactor.callWhenRunning(_install_signal_handlers, reactor, interruptions)
    try:
        code = await supervise(invocation, session, interruptions)
    except Exception:
        console.error("unexpected error:\n" + traceback.format_exc().rstrip())
        code = EXIT_FAILURE
    await pool.closeCachedConnections()
    raise SystemExit(code)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """
    Run C{taru-cli} and exit with its status.

    @param argv: the arguments, without the program's name.
    """
    invocation = parse_invocation(sys.argv[1:] if argv is None else argv, os.environ)
    try:
        react(_react_main, [invocation])
    except KeyboardInterrupt:
        # Ctrl-C before the reactor took over the signal.
        raise SystemExit(EXIT_SIGNAL_BASE + signal.SIGINT) from None


if __name__ == "__main__":
    main()
