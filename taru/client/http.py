"""
Taru's HTTP API, as C{taru-cli} uses it: L{TaruClient} sends the requests,
turns refusals and lost connections into messages for the user, and hands
response bodies on as they arrive.
"""

from __future__ import annotations

import json
from base64 import b64encode
from collections.abc import Callable, Mapping
from typing import Any, cast
from urllib.parse import quote

from attrs import frozen
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
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web.client import (
    ResponseDone,
    ResponseFailed,
    ResponseNeverReceived,
)
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IResponse

from taru.client.exits import ClientError
from taru.client.options import ENVIRONMENT_USER
from taru.client.records import RunRecord

# The longest error message from Taru that is shown whole.
MAX_MESSAGE = 500

# How much of an error's body is read, at most.
MAX_ERROR_BODY = 64 * 1024


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
                message += f" (name a user with --user or ${ENVIRONMENT_USER})"
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
