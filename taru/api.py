"""
The HTTP API under C{/api/v1}, the event stream at C{/events}, and the web
interface's files under C{/}.

Each request flows one way: who is asking (L{taru.permissions}), may they
(the task's permissions), what arguments (L{taru.arguments}), the run
(L{taru.tasks}), and its output or status as the response. Domain errors are
mapped to status codes and plain-text bodies in one place, L{TaruAPI.error}.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timezone
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes, urlsplit

from klein import Klein
from klein.interfaces import IKleinRequest
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import CancelledError
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import Request
from twisted.web.static import File
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from taru.arguments import ArgumentError, EnumNotReady, parse_arguments, substitute
from taru.channel import REQUEST_DEADLINE, TaruChannel
from taru.config import MAX_HISTORY, ArgumentSpec, TaskSpec
from taru.events import STREAM_PREAMBLE, EventBroadcaster, SubscriberTooSlow
from taru.history import HistoryError, RunRecord
from taru.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from taru.metrics import Metrics
from taru.openapi import openapi_document
from taru.output import STALL_SECONDS, Follower, FollowerStalled, Output
from taru.permissions import (
    Access,
    NotAuthenticated,
    UnknownUser,
    UntrustedPeer,
    access_for,
    check_peer,
    client_address,
)
from taru.ranges import RangeNotSatisfiable, byte_range
from taru.runners import ExitStatus, RunnerError
from taru.tasks import (
    FINISHED,
    RUNNING,
    AlreadyRunning,
    NoSuchTask,
    Run,
    Tasks,
    TaskState,
)

# How many runs GET .../runs gives unless the request asks for more.
RUNS_PAGE = 100

# Status code for ?check=true when a run did not exit with 0.
CHECK_FAILED = 520

# What a browser may load for the web interface: its own files, nothing inline,
# nothing from elsewhere.
INTERFACE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
    " connect-src 'self'; base-uri 'none'; form-action 'self';"
    " frame-ancestors 'none'"
)

# Everything else, output included, may load nothing at all, so that output a
# task labels as HTML cannot run scripts as Taru's page.
API_POLICY = "default-src 'none'; frame-ancestors 'none'"

# The most a request body may hold.
MAX_BODY_BYTES = 64 * 1024


class NoSuchRun(Exception):
    """
    The history holds no such run of the task.
    """

    def __init__(self, task: str, run_id: int | str) -> None:
        super().__init__(task, run_id)
        self.task = task
        self.run_id = run_id

    def __str__(self) -> str:
        return f"task {self.task!r} has no run {self.run_id} in its history"


class OutputNotKept(Exception):
    """
    A run's output is not kept: its task is unbuffered, or the output was
    lost.
    """

    def __init__(self, task: str, run_id: int) -> None:
        super().__init__(task, run_id)
        self.task = task
        self.run_id = run_id

    def __str__(self) -> str:
        return f"the output of run {self.run_id} of task {self.task!r} is not kept"


class BadRequest(Exception):
    """
    The request itself is malformed.
    """


class NoSuchPage(Exception):
    """
    Nothing is served at that address.
    """

    def __str__(self) -> str:
        return "not found"


class CrossSiteRequest(Exception):
    """
    A browser sent a request that changes state from another site's page.
    """

    def __str__(self) -> str:
        return (
            "a page of another site may not start or stop tasks; use Taru's own"
            " page, or a client that is not a browser"
        )


class UnsupportedBody(Exception):
    """
    The request body is of a type Taru does not read.
    """


_STATUS_FOR: list[tuple[type[Exception], int]] = [
    (NoSuchTask, 404),
    (NoSuchRun, 404),
    (OutputNotKept, 404),
    (AlreadyRunning, 405),
    (ArgumentError, 400),
    (BadRequest, 400),
    (UnsupportedBody, 415),
    (NoSuchPage, 404),
    (NotAuthenticated, 401),
    (UntrustedPeer, 401),
    (UnknownUser, 403),
    (CrossSiteRequest, 403),
    (RangeNotSatisfiable, 416),
    (RunnerError, 500),
    (HistoryError, 503),
]


def _from_another_site(request: Request) -> bool:
    """
    Whether a browser sent the request from a page that is not Taru's.

    Browsers say where a request comes from in C{Sec-Fetch-Site}; older ones
    only in C{Origin}, which must then name the host the request was sent to
    (as the proxy passed it on). Clients that are not browsers send neither.
    """
    site = request.getHeader(b"sec-fetch-site")
    if site is not None:
        return site.strip().lower() not in (b"same-origin", b"none")
    origin = request.getHeader(b"origin")
    if origin is None:
        return False
    host = request.getHeader(b"x-forwarded-host") or request.getHeader(b"host")
    netloc = urlsplit(origin.decode("latin-1").strip()).netloc
    return host is None or netloc.encode("latin-1").lower() != host.strip().lower()


# A run's number in an address: decimal, no sign, no leading zero, and no
# digits but ASCII ones.
_RUN_NUMBER = re.compile(r"[1-9][0-9]{0,18}")


def _byte_range_asked(request: Request) -> bytes | None:
    """
    The request's C{Range} header when it asks for bytes: a range in any
    other unit is ignored, as HTTP says.
    """
    asked = request.getHeader(b"range")
    if asked is None or not asked.lstrip().lower().startswith(b"bytes="):
        return None
    return asked


def _runs_limit(request: Request) -> int:
    """
    How many runs a request for a task's runs asks for: C{?limit=N}, from 1
    to L{MAX_HISTORY}; L{RUNS_PAGE} when not given.

    @raise BadRequest: for any other limit.
    """
    given = (request.args or {}).get(b"limit")
    if not given:
        return RUNS_PAGE
    text = given[-1].decode("latin-1")
    if not re.fullmatch(r"[1-9][0-9]{0,4}", text) or int(text) > MAX_HISTORY:
        raise BadRequest(
            f"limit must be a number of runs from 1 to {MAX_HISTORY}, not {text!r}"
        )
    return int(text)


def _iso(seconds: float) -> str:
    """
    A time as ISO 8601 in UTC, to the millisecond, such as
    C{2026-12-04T21:00:00.000Z}.
    """
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _run_tag(started_at: float) -> bytes:
    """
    An entity tag that tells a run's output from any other run's, across
    restarts too: a client resuming with C{Range} and C{If-Range} gets the
    whole output again, not a part of another run's, when the task ran
    again meanwhile.
    """
    return b'"%x"' % round(started_at * 1_000_000)


def _text(request: IRequest, code: int, message: str) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return message.encode("utf-8") + b"\n"


def _check_wanted(request: Request) -> bool:
    """
    Whether the request asks, with C{?check=true}, for status 520 when a run
    did not exit with 0.
    """
    return _query(request).get("check", [""])[-1] == "true"


def _status_body(request: Request, status: ExitStatus | None, check: bool) -> bytes:
    """
    Answer with a run's exit code, or C{null} when it has none.
    """
    failed = status is None or status.exit_code != 0
    request.setResponseCode(CHECK_FAILED if check and failed else 200)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    request.setHeader(b"cache-control", b"no-store")
    if status is None or status.exit_code is None:
        return b"null"
    return str(status.exit_code).encode("ascii")


def form_values(encoded: bytes) -> dict[str, list[str]]:
    """
    Decode a query string or a form-encoded body.

    @param encoded: C{name=value} pairs joined by C{&}, percent-encoded.
    @return: each name with every value given for it, in order.
    @raise ArgumentError: a name or value is not UTF-8 once decoded.
    """
    values: dict[str, list[str]] = {}
    # Latin-1 maps bytes to characters one to one, so that the UTF-8 check
    # below sees exactly the bytes the client sent.
    pairs = parse_qsl(encoded.decode("latin-1"), True, encoding="latin-1")
    try:
        for name, value in pairs:
            values.setdefault(_utf8(name), []).append(_utf8(value))
    except UnicodeDecodeError:
        raise ArgumentError("argument names and values must be UTF-8") from None
    return values


def _utf8(text: str) -> str:
    return text.encode("latin-1").decode("utf-8")


def _query(request: Request) -> dict[str, list[str]]:
    return form_values(urlsplit(request.uri).query)


def _json_values(body: bytes) -> dict[str, list[str]]:
    try:
        document = json.loads(body.decode("utf-8"), object_pairs_hook=_pairs)
    except (ValueError, RecursionError):
        raise BadRequest("the request body is not valid UTF-8 JSON") from None
    if not isinstance(document, _Pairs):
        raise BadRequest("a JSON request body must be an object of argument values")
    values: dict[str, list[str]] = {}
    for name, value in document:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ArgumentError(
                f"argument {name!r} must be given as a string or a whole number"
            )
        values.setdefault(name, []).append(str(value))
    return values


class _Pairs(list[tuple[str, Any]]):
    """
    A JSON object's members in order, repeated names included.
    """


def _pairs(members: list[tuple[str, Any]]) -> _Pairs:
    return _Pairs(members)


def given_arguments(request: Request, reserved: frozenset[str]) -> dict[str, list[str]]:
    """
    Collect the argument values a request gives, in its query string and in a
    form-encoded or JSON body.

    @param reserved: query parameters that belong to the endpoint, not to the
        task (C{check}).
    @return: each name with every value given for it.
    """
    given = _query(request)
    for name in reserved:
        given.pop(name, None)

    body = request.content.read(MAX_BODY_BYTES + 1) if request.content else b""
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(f"the request body is larger than {MAX_BODY_BYTES} bytes")
    if body.strip():
        content_type = (request.getHeader(b"content-type") or b"").split(b";")[0]
        content_type = content_type.strip().lower()
        if content_type in (b"", b"application/x-www-form-urlencoded"):
            from_body = form_values(body)
        elif content_type == b"application/json":
            from_body = _json_values(body)
        else:
            raise UnsupportedBody(
                "the request body must be application/x-www-form-urlencoded"
                " or application/json"
            )
        for name, values in from_body.items():
            given.setdefault(name, []).extend(values)
    return given


def _methods_elsewhere(request: Request) -> list[str]:
    """
    The methods that routes other than the web interface take at the
    request's address; the request reached the web interface because its own
    method is not among them.
    """
    mapper = IKleinRequest(request).mapper
    allowed = []
    for method in ("GET", "POST"):
        try:
            rule, _ = mapper.match(method=method, return_rule=True)
        except HTTPException:
            continue
        if not rule.endpoint.startswith("web_interface"):
            allowed.append(method)
    return allowed


def _peer(request: Request) -> str:
    """
    The client's address, for logs: C{host:port}, or the socket path.
    """
    address = request.getClientAddress()
    host = getattr(address, "host", None)
    if host is not None:
        return f"{host}:{getattr(address, 'port', '')}"
    return str(getattr(address, "name", None) or "unix")


def _abort(request: Request) -> None:
    """
    Drop a client's connection at once, with whatever it has not read.
    """
    abort = getattr(request.transport, "abortConnection", None)
    if abort is not None:
        abort()
    else:
        request.loseConnection()


class _PlainNotFound(Resource):
    """
    A plain-text 404 page.
    """

    isLeaf = True

    def render(self, request: Request) -> bytes:
        return _text(request, 404, "not found")


class _NoListingFile(File):
    """
    Static files, without directory listings, with a plain-text 404.
    """

    # File declares this as its own HTML page type, and Resource() is not
    # annotated.
    childNotFound = _PlainNotFound()  # type: ignore[no-untyped-call, assignment]

    def directoryListing(self) -> Resource:
        return self.childNotFound


class TaruRequest(server.Request):
    """
    A request whose every response tells browsers not to guess content types,
    and whose body may hold at most L{MAX_BODY_BYTES}: a larger one is refused
    with 413 as soon as its size is known, before it is stored anywhere.
    """

    _body_bytes = 0
    _body_refused = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        # Taru reads bodies itself; Twisted's own form parsing would answer
        # some bodies with a bare 400.
        self._parsePOSTFormSubmission = False

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > MAX_BODY_BYTES:
            self._refuse_body()
            return
        super().gotLength(length)  # type: ignore[no-untyped-call]  # not annotated

    def handleContentChunk(self, data: bytes) -> None:
        if self._body_refused:
            return
        self._body_bytes += len(data)
        if self._body_bytes > MAX_BODY_BYTES:
            self._refuse_body()
            return
        super().handleContentChunk(data)  # type: ignore[no-untyped-call]

    def _refuse_body(self) -> None:
        """
        Answer 413 at once and close the connection, without reading the rest
        of the body.
        """
        self._body_refused = True
        message = f"the request body is larger than {MAX_BODY_BYTES} bytes\n"
        body = message.encode("ascii")
        transport = self.channel.transport
        assert transport is not None
        transport.write(
            b"HTTP/1.1 413 Content Too Large\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"X-Content-Type-Options: nosniff\r\n"
            b"Connection: close\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        transport.loseConnection()

    def getRequestHostname(self) -> bytes:
        # Without a Host header Twisted names the socket's own address, and
        # a unix socket has no host name to give.
        if self.getHeader(b"host") is None:
            own_address = self.getHost()  # type: ignore[no-untyped-call]
            if not isinstance(own_address, (IPv4Address, IPv6Address)):
                return b"localhost"
        hostname: bytes = super().getRequestHostname()  # type: ignore[no-untyped-call]
        return hostname

    def process(self) -> None:
        # Request's own methods are not annotated.
        nosniff = (b"x-content-type-options", b"nosniff")
        self.setHeader(*nosniff)  # type: ignore[no-untyped-call]
        policy = (b"content-security-policy", API_POLICY.encode("ascii"))
        self.setHeader(*policy)  # type: ignore[no-untyped-call]
        try:
            unquote_to_bytes(self.path).decode("utf-8")
        except UnicodeDecodeError:
            # Klein would answer too, but log it as if it were a bug.
            answer = _text(self, 400, "the address is not valid UTF-8")
            self.write(answer)  # type: ignore[no-untyped-call]
            self.finish()  # type: ignore[no-untyped-call]
            return
        super().process()  # type: ignore[no-untyped-call]


class TaruAPI:
    """
    Taru's HTTP interface.
    """

    app = Klein()
    _log = Logger()

    def __init__(
        self,
        tasks: Tasks,
        events: EventBroadcaster,
        public: str | None,
        clock: IReactorTime,
        metrics: Metrics | None = None,
    ) -> None:
        """
        @param tasks: the tasks to expose.
        @param events: the broadcaster behind C{/events}.
        @param public: the folder served under C{/}, or L{None}.
        @param clock: times clients that stop reading output.
        @param metrics: told of the clients that follow output, and served
            at C{/metrics}; it should observe C{tasks}' runs. Without one the
            API keeps its own, which sees no runs and names no runner.
        """
        self.clock = clock
        self.tasks = tasks
        self.events = events
        self.public = public
        if metrics is None:
            metrics = Metrics(clock, events, runner="unknown")
        self.metrics = metrics
        self.openapi = openapi_document()
        # The task list as last answered to each user, while no task runs
        # and nothing changed (see L{Tasks.version}).
        self._listings: dict[tuple[bytes, ...] | None, bytes] = {}
        self._listings_version = -1

    def site(self, request_deadline: float = REQUEST_DEADLINE) -> server.Site:
        """
        A web site serving this API.

        @param request_deadline: the seconds a client has to send each
            request whole (see L{TaruChannel}).
        """
        site = server.Site(self.app.resource(), reactor=self.clock)
        # A plain HTTP/1.1 channel: Twisted's default wraps one in a proxy
        # that can switch to HTTP/2 over TLS, which Taru does not offer.
        site.protocol = partial(  # type: ignore[method-assign, assignment]
            TaruChannel, request_deadline
        )
        site.requestFactory = TaruRequest
        site.displayTracebacks = False
        return site

    def _access(self, request: Request) -> Access:
        """
        What the requester may do; nothing that changes state when the
        request comes from another site's page.

        @raise CrossSiteRequest: for a C{POST} from another site's page.
        @raise UntrustedPeer: users are configured and the peer may not name
            one.
        """
        if request.method == b"POST" and _from_another_site(request):
            raise CrossSiteRequest()
        check_peer(self.tasks.config, request.getClientAddress())
        return access_for(
            self.tasks.config, request.requestHeaders.getRawHeaders(b"x-user")
        )

    def _allowed(
        self, access: Access, name: str, *permissions: Callable[[Access, str], bool]
    ) -> TaskSpec:
        spec = self.tasks.get(name).spec
        if not all(permission(access, name) for permission in permissions):
            raise NoSuchTask(name)
        return spec

    async def _start(
        self,
        request: Request,
        access: Access,
        spec: TaskSpec,
        on_output: Callable[[Output], object] | None = None,
    ) -> Run:
        reserved = frozenset({"check"}) - {argument.name for argument in spec.arguments}
        given = given_arguments(request, reserved)
        try:
            values = parse_arguments(spec, given, self.tasks.enum_values)
        except EnumNotReady as not_ready:
            if access.can_view_status(not_ready.source):
                raise
            raise ArgumentError(
                f"argument {not_ready.argument!r} is not ready: the task its"
                " values come from has not run yet"
            ) from None
        argv = substitute(spec.command, values)
        run = await self.tasks.start(
            spec.name, argv, access.user, on_output, values, self._client(request)
        )
        request.setHeader(b"taru-run", b"%d" % run.run_id)
        return run

    def _client(self, request: Request) -> str:
        """
        The address of the client behind a request.
        """
        return client_address(
            self.tasks.config,
            request.getClientAddress(),
            request.requestHeaders.getRawHeaders(b"x-forwarded-for"),
        )

    @app.handle_errors(Exception)
    def error(self, request: IRequest, failure: Failure) -> bytes | None:
        """
        Turn an exception into a status code and a plain-text message.
        """
        if failure.check(CancelledError):
            return None
        if isinstance(failure.value, RangeNotSatisfiable):
            content_range = failure.value.content_range().encode("ascii")
            request.setHeader(b"content-range", content_range)
        for exception_type, code in _STATUS_FOR:
            if failure.check(exception_type):
                return _text(request, code, str(failure.value))
        if isinstance(failure.value, HTTPException):
            allowed = getattr(failure.value, "valid_methods", None)
            if allowed:
                request.setHeader(b"allow", ", ".join(allowed).encode("ascii"))
            code = failure.value.code or 500
            return _text(request, code, failure.value.name.lower())
        # The error's text as a field of its own: a JSON log keeps no more of
        # the failure than its frames.
        self._log.failure(
            "unexpected error answering {uri}: {error}",
            failure,
            uri=request.uri,
            error=repr(failure.value),
        )
        return _text(request, 500, "internal error; the details are in Taru's log")

    @app.route("/api/v1/tasks", methods=["GET"])
    def list_tasks(self, request: Request) -> bytes:
        """
        The tasks the requester may see, with their state and what the
        requester may do with them.
        """
        access = self._access(request)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        if self._listings_version != self.tasks.version:
            self._listings.clear()
            self._listings_version = self.tasks.version
        user = None
        if self.tasks.config.users is not None:
            user = tuple(request.requestHeaders.getRawHeaders(b"x-user", []))
        cached = self._listings.get(user)
        if cached is not None:
            return cached
        body = json.dumps(self._listing(access)).encode("utf-8")
        # A running task's duration changes from one moment to the next.
        if not any(state.current for state in self.tasks.all().values()):
            self._listings[user] = body
        return body

    def _listing(self, access: Access) -> dict[str, Any]:
        """
        The task list as C{access} may see it.
        """
        listing: dict[str, Any] = {}
        for name, state in self.tasks.all().items():
            if not access.can_view_status(name):
                continue
            can_run = access.can_run(name)
            listing[name] = {
                "name": name,
                "meta": state.spec.meta,
                "state": state.state,
                "exit_code": state.exit_code,
                **self._timing(state),
                "run_id": None if state.last is None else state.last.run_id,
                "timed_out": state.last is not None and state.last.timed_out,
                "buffered": state.spec.buffered,
                "can_run": can_run,
                "can_view_output": access.can_view_output(name),
                "arguments": [
                    self._describe_argument(argument, access, can_run)
                    for argument in state.spec.arguments
                ],
            }
        return listing

    def _timing(self, state: TaskState) -> dict[str, Any]:
        """
        When the latest run started, and how long it has run or ran.
        """
        run = state.last
        if run is None:
            return {"started_at": None, "duration": None}
        ended_at = self.clock.seconds() if run.ended_at is None else run.ended_at
        return {
            "started_at": _iso(run.started_at),
            "duration": round(max(ended_at - run.started_at, 0.0), 3),
        }

    def _describe_argument(
        self, argument: ArgumentSpec, access: Access, can_run: bool
    ) -> dict[str, Any]:
        """
        An argument's definition for a form: its name and type; for an Enum,
        its values for those who may run the task, and its source task for
        those who may see that task.
        """
        described: dict[str, Any] = {
            "name": argument.name,
            "datatype": argument.datatype,
        }
        if argument.enum_source is not None:
            if access.can_view_status(argument.enum_source):
                described["enum_source"] = argument.enum_source
            if can_run:
                described["values"] = self.tasks.enum_values(argument.enum_source)
        return described

    @app.route("/api/v1/task/<name>", methods=["POST"])
    async def start(self, request: Request, name: str) -> bytes:
        """
        Start a task.
        """
        access = self._access(request)
        spec = self._allowed(access, name, Access.can_run)
        run = await self._start(request, access, spec)
        return _text(request, 200, f"task {name!r} started (run {run.run_id})")

    @app.route("/api/v1/task/<name>/stop", methods=["POST"])
    def stop(self, request: Request, name: str) -> bytes:
        """
        Stop a task and everything it started.
        """
        access = self._access(request)
        self._allowed(access, name, Access.can_run)
        if self.tasks.stop(name, access.user, self._client(request)):
            return _text(request, 200, f"task {name!r} is stopping")
        return _text(request, 200, f"task {name!r} is not running")

    @app.route("/api/v1/task/<name>/output", methods=["GET"])
    async def output(self, request: Request, name: str) -> None:
        """
        Stream a task's output: for a buffered task everything so far and
        then what follows, for an unbuffered one what follows; the response
        ends with the run. A buffered task's output may be asked for from a
        given byte on, with C{Range}.
        """
        access = self._access(request)
        spec = self._allowed(access, name, Access.can_view_output)
        state = self.tasks.get(name)
        asked = _byte_range_asked(request)
        run = state.last
        if run is None or not run.output.kept:
            if spec.buffered:
                request.setHeader(b"accept-ranges", b"bytes")
                if asked is not None:
                    byte_range(asked.decode("latin-1"), 0, complete=True)
            if run is None:
                self._output_headers(request, spec)
                return None
            follower = run.output.follow(request, True, self.clock, paused=True)
            await self._stream(request, spec, follower)
            return None

        await self._send_output(request, spec, run.output, _run_tag(run.started_at))
        return None

    async def _send_output(
        self, request: Request, spec: TaskSpec, output: Output, tag: bytes
    ) -> None:
        """
        Stream a kept output, from the byte C{Range} asks for, to its end or
        the run's.

        @param tag: the run's entity tag, for C{If-Range}.
        """
        request.setHeader(b"accept-ranges", b"bytes")
        request.setHeader(b"etag", tag)
        asked = _byte_range_asked(request)
        condition = request.getHeader(b"if-range")
        offset, end = 0, None
        if asked is not None and condition in (None, tag):
            part = byte_range(asked.decode("latin-1"), output.size, output.closed)
            offset, end = part.first, part.end
            request.setResponseCode(206)
            request.setHeader(b"content-range", part.content_range.encode("ascii"))
        if output.closed:
            length = (output.size if end is None else end) - offset
            request.setHeader(b"content-length", b"%d" % length)
        follower = output.follow(
            request, True, self.clock, paused=True, offset=offset, end=end
        )
        await self._stream(request, spec, follower)

    @app.route("/api/v1/task/<name>/runs", methods=["GET"])
    def runs(self, request: Request, name: str) -> bytes:
        """
        A task's runs in the history, newest first.
        """
        access = self._access(request)
        self._allowed(access, name, Access.can_view_status)
        records = self.tasks.history.runs(name, _runs_limit(request))
        return self._json(request, [self._describe_run(r) for r in records])

    @app.route("/api/v1/task/<name>/runs/<run_id>", methods=["GET"])
    def run(self, request: Request, name: str, run_id: str) -> bytes:
        """
        One run of a task, from the history.
        """
        access = self._access(request)
        self._allowed(access, name, Access.can_view_status)
        return self._json(request, self._describe_run(self._record(name, run_id)))

    def _record(self, name: str, number: str) -> RunRecord:
        """
        A run of a task from the history, by its number as written in the
        address: plain decimal digits only.

        @raise NoSuchRun: when the history holds no such run.
        """
        record = None
        if _RUN_NUMBER.fullmatch(number):
            record = self.tasks.history.get(name, int(number))
        if record is None:
            raise NoSuchRun(name, number)
        return record

    @app.route("/api/v1/task/<name>/runs/<run_id>/output", methods=["GET"])
    async def run_output(self, request: Request, name: str, run_id: str) -> None:
        """
        Stream one run's output: live while it runs, as kept after.
        """
        access = self._access(request)
        spec = self._allowed(access, name, Access.can_view_output)
        record = self._record(name, run_id)
        last = self.tasks.get(name).last
        if last is not None and last.run_id == record.run_id and last.output.kept:
            await self._send_output(
                request, spec, last.output, _run_tag(last.started_at)
            )
            return
        output = None
        if record.output_kept:
            output = self.tasks.history.output(record.run_id)
        if output is None:
            raise OutputNotKept(name, record.run_id)
        try:
            await self._send_output(request, spec, output, _run_tag(record.started_at))
        finally:
            output.release()

    def _describe_run(self, record: RunRecord) -> dict[str, Any]:
        """
        A run's record as the API gives it.
        """
        output_size = record.output_size
        ended_at = record.ended_at
        last = self.tasks.get(record.task).last
        if ended_at is None and last is not None and last.run_id == record.run_id:
            output_size = last.output.size
        status = record.status
        duration = None if ended_at is None else max(ended_at - record.started_at, 0)
        return {
            "id": record.run_id,
            "task": record.task,
            "user": record.user,
            "address": record.address,
            "arguments": dict(record.arguments),
            "started_at": _iso(record.started_at),
            "ended_at": None if ended_at is None else _iso(ended_at),
            "duration": None if duration is None else round(duration, 3),
            "state": RUNNING if ended_at is None else FINISHED,
            "exit_code": None if status is None else status.exit_code,
            "signal": None if status is None else status.signal,
            "timed_out": record.timed_out,
            "stopped_by": record.stopped_by,
            "output_size": output_size,
            "output_kept": record.output_kept,
        }

    def _json(self, request: Request, value: object) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return json.dumps(value).encode("utf-8")

    @app.route("/api/v1/task/<name>/output", methods=["POST"])
    async def run_with_output(self, request: Request, name: str) -> None:
        """
        Start a task and stream all of its output.
        """
        access = self._access(request)
        spec = self._allowed(access, name, Access.can_run, Access.can_view_output)
        followers: list[Follower] = []

        def follow(output: Output) -> None:
            # From the start, held until the task has started and the
            # response's headers can be sent.
            followers.append(output.follow(request, True, self.clock, paused=True))

        try:
            await self._start(request, access, spec, follow)
        except BaseException:
            for follower in followers:
                follower.stop()
            raise
        await self._stream(request, spec, followers[0])
        return None

    def _output_headers(self, request: Request, spec: TaskSpec) -> None:
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"x-accel-buffering", b"no")
        for header, value in spec.headers:
            request.setHeader(header.encode("ascii"), value.encode("utf-8"))

    async def _stream(
        self, request: Request, spec: TaskSpec, follower: Follower
    ) -> None:
        """
        Send the response's headers at once, then let a held follower write
        the output as fast as the client takes it, until the run ends.
        """
        self._output_headers(request, spec)
        request.write(b"")
        request.registerProducer(follower, True)
        peer = _peer(request)
        self._log.info(
            "client {peer} follows the output of {task}", peer=peer, task=spec.name
        )
        self.metrics.follower_joined(follower)
        try:
            follower.resumeProducing()
            await follower.done
        except FollowerStalled:
            self._log.warn(
                "client {peer} dropped: it took no output of {task} for {seconds}s",
                peer=peer,
                task=spec.name,
                seconds=STALL_SECONDS,
            )
            _abort(request)
        finally:
            follower.stop()
            self.metrics.follower_left(follower)
            request.unregisterProducer()
            self._log.info(
                "client {peer} left the output of {task}", peer=peer, task=spec.name
            )

    @app.route("/api/v1/task/<name>/status", methods=["GET"])
    async def status(self, request: Request, name: str) -> bytes:
        """
        Wait for a task's run to end and give its exit code.
        """
        access = self._access(request)
        self._allowed(access, name, Access.can_view_status)
        check = _check_wanted(request)
        return _status_body(request, await self.tasks.wait(name), check)

    @app.route("/api/v1/task/<name>/status", methods=["POST"])
    async def run_with_status(self, request: Request, name: str) -> bytes:
        """
        Start a task, wait for it to end, and give its exit code.
        """
        access = self._access(request)
        spec = self._allowed(access, name, Access.can_run, Access.can_view_status)
        # An argument named "check" takes the value, and the flag is unset.
        takes_check = any(argument.name == "check" for argument in spec.arguments)
        check = not takes_check and _check_wanted(request)
        await self._start(request, access, spec)
        return _status_body(request, await self.tasks.wait(name), check)

    @app.route("/events", methods=["GET"])
    async def event_stream(self, request: Request) -> None:
        """
        Server-sent events: every state change of the tasks the requester may
        see, reloads, and the heartbeat.
        """
        user_headers = request.requestHeaders.getRawHeaders(b"x-user")
        self._access(request)

        def may_view(task: str) -> bool:
            try:
                access = access_for(self.tasks.config, user_headers)
            except (NotAuthenticated, UnknownUser):
                return False
            return access.can_view_status(task)

        request.setHeader(b"content-type", b"text/event-stream")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"x-accel-buffering", b"no")
        request.write(STREAM_PREAMBLE)
        last_event_id = request.getHeader(b"last-event-id")
        subscriber = self.events.subscribe(
            request,
            may_view,
            None if last_event_id is None else last_event_id.decode("latin-1"),
        )
        request.registerProducer(subscriber, True)
        peer = _peer(request)
        self._log.info("client {peer} subscribed to events", peer=peer)
        try:
            await subscriber.done
        except SubscriberTooSlow:
            self._log.warn(
                "client {peer} dropped: it stopped reading events", peer=peer
            )
            _abort(request)
        finally:
            subscriber.stopProducing()
            request.unregisterProducer()
            self._log.info("client {peer} unsubscribed from events", peer=peer)

    @app.route("/metrics", methods=["GET"])
    def metrics_page(self, request: Request) -> bytes:
        """
        Taru's metrics, for Prometheus. No user is asked for: scrapers send
        none, and the proxy in front of Taru keeps this page from the
        outside.
        """
        request.setHeader(b"content-type", METRICS_CONTENT_TYPE.encode("ascii"))
        request.setHeader(b"cache-control", b"no-store")
        return self.metrics.exposition()

    @app.route("/health", methods=["GET"])
    def health(self, request: Request) -> bytes:
        """
        Whether Taru answers, with its runner, how many tasks it has, how
        many run, and how long it has been up. No user is asked for: load
        balancers send none.
        """
        states = self.tasks.all().values()
        report = {
            "status": "ok",
            "runner": self.metrics.runner,
            "tasks": len(states),
            "running": sum(1 for state in states if state.current is not None),
            "uptime_seconds": round(self.metrics.uptime(), 3),
        }
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return json.dumps(report).encode("utf-8")

    @app.route("/api/v1/openapi.json", methods=["GET"])
    def openapi_json(self, request: Request) -> bytes:
        """
        The OpenAPI document that describes this API, as JSON. No user is
        asked for: it describes every Taru alike.
        """
        request.setHeader(b"content-type", b"application/json")
        return self.openapi.json

    @app.route("/api/v1/openapi.yaml", methods=["GET"])
    def openapi_yaml(self, request: Request) -> bytes:
        """
        The OpenAPI document that describes this API, as written, in YAML.
        """
        request.setHeader(b"content-type", b"application/yaml")
        return self.openapi.yaml

    @app.route("/", branch=True)
    def web_interface(self, request: Request) -> Resource:
        """
        The static web interface, when a public folder is configured. Every
        request no other route takes comes here: 405 where another route
        takes the address with other methods, or where the folder has a file
        at the address and the method is neither C{GET} nor C{HEAD}; 404
        elsewhere.
        """
        allowed = _methods_elsewhere(request)
        if allowed:
            raise MethodNotAllowed(valid_methods=allowed)
        if self.public is None or b"\0" in unquote_to_bytes(request.path):
            raise NoSuchPage()
        if request.method not in (b"GET", b"HEAD"):
            if self._in_public_folder(request):
                raise MethodNotAllowed(valid_methods=["GET", "HEAD"])
            raise NoSuchPage()
        request.setHeader(b"content-security-policy", INTERFACE_POLICY.encode("ascii"))
        return _NoListingFile(self.public)

    def _in_public_folder(self, request: Request) -> bool:
        """
        Whether the public folder has a file or folder at the request's
        address, as a C{GET} would look it up.
        """
        assert self.public is not None
        found: Resource = _NoListingFile(self.public)
        for segment in request.postpath or []:
            found = found.getChildWithDefault(segment, request)
            if not isinstance(found, File):
                return False
        return isinstance(found, File) and bool(found.exists())
