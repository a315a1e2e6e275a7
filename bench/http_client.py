"""
The client side of HTTP/1.1, written by hand so that the client costs as
little as possible: requests are built as bytes, and responses are parsed
incrementally from large receive buffers with C{bytes.find}, chunked
transfer encoding included, comparing the body with the expected bytes as it
passes.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

# How much one receive call may take at once.
RECEIVE_BUFFER_SIZE = 1 << 18

# One line of the benchmark's big outputs, which repeat it (C{yes | head -c}).
LINE = b"0123456789abcdefghijklmnopqrstuvwxyz some text\n"

HOST = "127.0.0.1"

_HEAD, _SIZE, _DATA, _DATA_END, _TRAILER, _LENGTH, _UNTIL_CLOSE, _DONE = range(8)


class ProtocolError(Exception):
    """
    The server sent something that is not a valid HTTP/1.1 response.
    """


def request_bytes(
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> bytes:
    """
    One HTTP/1.1 request, ready to send.

    @param headers: extra headers; C{Host} and, for requests that may carry a
        body, C{Content-Length} are always sent.
    """
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def pattern(length: int, offset: int = 0) -> bytes:
    """
    C{length} bytes of the benchmark's output, from byte C{offset} on.
    """
    phase = offset % len(LINE)
    repeats = (phase + length) // len(LINE) + 1
    return (LINE * repeats)[phase : phase + length]


# The benchmark's output from any phase of its line on, for as much as one
# receive call can take: a body piece is compared with a slice of it.
_EXPECTED = memoryview(LINE * (RECEIVE_BUFFER_SIZE // len(LINE) + 2))


class ResponseParser:
    """
    Parses one HTTP/1.1 response fed to it in pieces of any size.

    The body is counted; when asked, it is compared with the benchmark's
    output (L{LINE} over and over) as it arrives, or kept. It is never copied
    otherwise.

    @ivar status: the status code, once the head has arrived.
    @ivar headers: the headers, lower-cased names, once the head has arrived.
    @ivar body_length: how many body bytes have arrived.
    @ivar mismatch: the offset in the body of the first piece that differed
        from the benchmark's output, when C{compare} was asked; L{None} while
        all of it matched.
    @ivar body: the body, when C{keep_body} was asked.
    @ivar chunks: how many chunks a chunked body had so far.
    @ivar complete: whether the whole response has arrived.
    """

    def __init__(self, compare: bool = False, keep_body: bool = False) -> None:
        self.keep_body = keep_body
        self.compare = compare
        self.mismatch: int | None = None
        self.status: int | None = None
        self.headers: dict[bytes, bytes] = {}
        self.body_length = 0
        self.body = bytearray()
        self.chunks = 0
        self.complete = False
        self._state = _HEAD
        self._head = bytearray()
        self._line = bytearray()
        self._remaining = 0

    @property
    def head_complete(self) -> bool:
        """
        Whether the status line and headers have all arrived.
        """
        return self._state != _HEAD

    def feed(self, buffer: bytearray, view: memoryview, start: int, end: int) -> int:
        """
        Take C{buffer[start:end]}.

        @param view: a memoryview of C{buffer}, so that body bytes are handed
            on without copying them.
        @return: where the response ended in C{buffer}, or C{end} when it has
            not ended yet.
        """
        position = start
        while position < end and not self.complete:
            state = self._state
            if state == _DATA or state == _LENGTH:
                count = min(self._remaining, end - position)
                if self.compare:
                    self._compare(buffer, position, count)
                self._take(view[position : position + count])
                position += count
                self._remaining -= count
                if self._remaining == 0:
                    if state == _DATA:
                        self._state = _DATA_END
                    else:
                        self._finish()
            elif state == _UNTIL_CLOSE:
                if self.compare:
                    self._compare(buffer, position, end - position)
                self._take(view[position:end])
                position = end
            elif state == _HEAD:
                position = self._feed_head(buffer, position, end)
            else:
                line, position = self._read_line(buffer, position, end)
                if line is not None:
                    self._line_arrived(line)
        return position

    def end_of_stream(self) -> None:
        """
        The server closed the connection: a body read until the close is
        complete, any other unfinished response is truncated.
        """
        if self._state == _UNTIL_CLOSE:
            self._finish()
        elif not self.complete:
            raise ProtocolError("the connection closed before the response ended")

    def _compare(self, buffer: bytearray, position: int, count: int) -> None:
        """
        Compare C{count} body bytes at C{position} with the benchmark's output
        at the same offset: a memory comparison, several times cheaper than
        even a CRC-32 of the bytes.
        """
        phase = self.body_length % len(LINE)
        expected = _EXPECTED[phase : phase + count]
        if self.mismatch is None and not buffer.startswith(expected, position):
            self.mismatch = self.body_length

    def _take(self, data: memoryview) -> None:
        self.body_length += len(data)
        if self.keep_body:
            self.body += data

    def _finish(self) -> None:
        self._state = _DONE
        self.complete = True

    def _read_line(
        self, buffer: bytearray, position: int, end: int
    ) -> tuple[bytes | None, int]:
        newline = buffer.find(b"\n", position, end)
        if newline < 0:
            self._line += buffer[position:end]
            if len(self._line) > 4096:
                raise ProtocolError("a chunk line is too long")
            return None, end
        line = bytes(self._line) + buffer[position:newline]
        self._line.clear()
        return line.rstrip(b"\r"), newline + 1

    def _line_arrived(self, line: bytes) -> None:
        if self._state == _SIZE:
            try:
                size = int(line.split(b";", 1)[0], 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size line {line!r}") from None
            if size == 0:
                self._state = _TRAILER
            else:
                self.chunks += 1
                self._remaining = size
                self._state = _DATA
        elif self._state == _DATA_END:
            if line:
                raise ProtocolError("a chunk did not end with CRLF")
            self._state = _SIZE
        elif self._state == _TRAILER and not line:
            self._finish()

    def _feed_head(self, buffer: bytearray, position: int, end: int) -> int:
        searched_from = max(len(self._head) - 3, 0)
        self._head += buffer[position:end]
        blank = self._head.find(b"\r\n\r\n", searched_from)
        if blank < 0:
            if len(self._head) > 65536:
                raise ProtocolError("the response head is too long")
            return end
        head_end = blank + 4
        self._parse_head(bytes(self._head[:blank]))
        leftover = len(self._head) - head_end
        self._head = bytearray()
        return end - leftover

    def _parse_head(self, head: bytes) -> None:
        status_line, *header_lines = head.split(b"\r\n")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ProtocolError(f"bad status line {status_line!r}")
        self.status = int(parts[1])
        for header_line in header_lines:
            name, _, value = header_line.partition(b":")
            self.headers[name.strip().lower()] = value.strip()
        if self.headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            self._state = _SIZE
        elif b"content-length" in self.headers:
            self._remaining = int(self.headers[b"content-length"])
            self._state = _LENGTH
            if self._remaining == 0:
                self._finish()
        elif self.status in (204, 304) or 100 <= self.status < 200:
            self._finish()
        else:
            self._state = _UNTIL_CLOSE


def connect(port: int, timeout: float | None = 30.0) -> socket.socket:
    """
    A TCP connection to C{port} on loopback, with Nagle's algorithm off.
    """
    sock = socket.create_connection((HOST, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class Connection:
    """
    A blocking keep-alive connection for one request at a time.
    """

    def __init__(self, port: int, timeout: float = 60.0) -> None:
        self.sock = connect(port, timeout)
        self._buffer = bytearray(65536)
        self._view = memoryview(self._buffer)

    def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        keep_body: bool = True,
    ) -> ResponseParser:
        """
        Send a request and read its whole response.
        """
        self.sock.sendall(request_bytes(method, path, headers, body))
        return self.read_response(ResponseParser(keep_body=keep_body))

    def read_response(self, parser: ResponseParser) -> ResponseParser:
        """
        Read a response into C{parser} until it is complete.
        """
        while not parser.complete:
            received = self.sock.recv_into(self._view)
            if received == 0:
                parser.end_of_stream()
                break
            parser.feed(self._buffer, self._view, 0, received)
        return parser

    def close(self) -> None:
        """
        Close the connection.
        """
        self.sock.close()


def wait_until(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    """
    Poll C{predicate} every 10 ms until it is true, for at most C{seconds}.

    @raise TimeoutError: naming C{what} when time runs out.
    """
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.01)
