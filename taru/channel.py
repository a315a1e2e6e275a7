# Copyright Taru's authors. See LICENSE for details.

"""
The HTTP connection: how long a client may take to send a request.

Twisted closes a connection that sends nothing for a while, but a client that
sends one byte now and then never falls silent. L{TaruChannel} gives each
request a deadline instead, from its first byte until its body has arrived
whole; a client that misses it gets 408 and the connection is closed. Once
the request has arrived the deadline no longer applies: output and events
stream for as long as they last.
"""

from __future__ import annotations

from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel

REQUEST_DEADLINE = 30.0
"""
Seconds a client has, by default, to send a whole request, head and body.
"""


class TaruChannel(HTTPChannel):
    """
    An HTTP connection whose requests must each arrive within a deadline.

    @ivar deadline: the seconds from a request's first byte to its last.
    """

    _log = Logger()
    _timer: IDelayedCall | None = None
    _answering = False

    def __init__(self, deadline: float = REQUEST_DEADLINE) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # not annotated
        self.deadline = deadline

    def dataReceived(self, data: bytes) -> None:
        # Bytes that arrive while a request is answered belong to the next
        # one and wait unread, so its deadline starts when they are read.
        self._start_timer()
        super().dataReceived(data)  # type: ignore[no-untyped-call]
        # A request answered at once leaves the start of the next one, sent
        # with it, waiting unparsed: its deadline starts now.
        if self._buffer:
            self._start_timer()

    def _start_timer(self) -> None:
        if self._timer is None and not self._answering:
            # TimeoutMixin's callLater, which tests replace with a fake clock.
            call_later = self.callLater
            self._timer = call_later(  # type: ignore[no-untyped-call]
                self.deadline, self._too_slow
            )

    def allContentReceived(self) -> None:
        self._stop_timer()
        self._answering = True
        super().allContentReceived()  # type: ignore[no-untyped-call]

    def requestDone(self, request: object) -> None:
        self._answering = False
        super().requestDone(request)  # type: ignore[no-untyped-call]

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._stop_timer()
        super().connectionLost(reason)  # type: ignore[no-untyped-call]

    def _stop_timer(self) -> None:
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None

    def _too_slow(self) -> None:
        """
        Answer 408 and close the connection: the request did not arrive in
        time.
        """
        self._timer = None
        transport = self.transport
        if transport is None:
            return
        self._log.info(
            "closing a connection whose request did not arrive within"
            " {deadline} seconds: {peer}",
            deadline=self.deadline,
            peer=str(transport.getPeer()),
        )
        message = f"the request did not arrive whole within {self.deadline:g} seconds\n"
        body = message.encode("ascii")
        transport.write(
            b"HTTP/1.1 408 Request Timeout\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"X-Content-Type-Options: nosniff\r\n"
            b"Connection: close\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        transport.loseConnection()
