"""
Client processes: each drives many connections with one epoll loop and
reports to the benchmark over a pipe.

They run in processes of their own (multiprocessing's C{spawn}), so that
several can use the machine's cores while Taru uses one, and so that the
benchmark's own process stays free to sample Taru's memory.
"""

from __future__ import annotations

import multiprocessing
import resource
import select
import socket
import time
from multiprocessing.connection import Connection as Pipe
from multiprocessing.process import BaseProcess
from typing import Any

from bench.http_client import (
    RECEIVE_BUFFER_SIZE,
    ProtocolError,
    ResponseParser,
    connect,
)

_context = multiprocessing.get_context("spawn")

# Connections a subscriber process opens at once without having seen their
# response yet: both processes together stay below the server's listen
# backlog (Twisted's default is 50), so no SYN is dropped and retried.
CONNECTS_IN_FLIGHT = 20


def start_client(target: Any, *arguments: Any) -> tuple[BaseProcess, Pipe]:
    """
    Start C{target(pipe, *arguments)} in a new process.

    @return: the process and the benchmark's end of its pipe.
    """
    ours, theirs = _context.Pipe()
    process = _context.Process(
        target=_run_reporting, args=(theirs, target, *arguments), daemon=True
    )
    process.start()
    theirs.close()
    return process, ours


def expect(pipe: Pipe, seconds: float) -> Any:
    """
    The next message from a client process.

    @raise TimeoutError: when none comes within C{seconds}.
    """
    if not pipe.poll(seconds):
        raise TimeoutError(f"no word from a client process in {seconds:.0f}s")
    message = pipe.recv()
    if isinstance(message, tuple) and message and message[0] == "error":
        raise RuntimeError(f"client process failed: {message[1]}")
    return message


def end_client(process: BaseProcess, pipe: Pipe) -> None:
    """
    Wait briefly for a client process to exit, then terminate it.
    """
    process.join(5)
    if process.is_alive():
        process.terminate()
        process.join(5)
    pipe.close()


def raise_file_limit() -> None:
    """
    Raise this process's soft limit on open files to the hard limit.
    """
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _run_reporting(pipe: Pipe, client: Any, *arguments: Any) -> None:
    """
    Run a client, sending its exception, if any, to the benchmark before
    failing.
    """
    try:
        client(pipe, *arguments)
    except Exception as error:
        pipe.send(("error", f"{type(error).__name__}: {error}"))
        raise


def follow(pipe: Pipe, port: int, request: bytes, count: int, seconds: float) -> None:
    """
    Open C{count} connections, say C{"ready"}, and on C{"go"} send C{request} on
    each and read every response to its end, comparing the bodies with the
    benchmark's output; then send a report: when it started, and for each
    connection its status, body length, first differing offset, chunk count
    and when it finished, and the CPU time this process used.
    """
    raise_file_limit()
    sockets = [connect(port) for _ in range(count)]
    pipe.send("ready")
    if pipe.recv() != "go":
        return

    started = time.monotonic()
    cpu_before = time.process_time()
    for sock in sockets:
        sock.sendall(request)
        sock.setblocking(False)
    parsers = [ResponseParser(compare=True) for _ in sockets]
    finished: list[float | None] = [None] * count
    errors: list[str | None] = [None] * count
    index_of = {sock.fileno(): index for index, sock in enumerate(sockets)}
    poller = select.epoll(count)
    for sock in sockets:
        poller.register(sock.fileno(), select.EPOLLIN)
    buffer = bytearray(RECEIVE_BUFFER_SIZE)
    view = memoryview(buffer)

    left = count
    deadline = started + seconds
    while left and time.monotonic() < deadline:
        for fd, _ in poller.poll(1.0):
            index = index_of[fd]
            sock, parser = sockets[index], parsers[index]
            try:
                received = sock.recv_into(view)
            except BlockingIOError:
                continue
            except OSError as error:
                errors[index], received = str(error), 0
            try:
                if received == 0:
                    parser.end_of_stream()
                else:
                    parser.feed(buffer, view, 0, received)
            except ProtocolError as error:
                errors[index] = str(error)
            if parser.complete or received == 0 or errors[index] is not None:
                finished[index] = time.monotonic()
                poller.unregister(fd)
                sock.close()
                left -= 1
    for index, sock in enumerate(sockets):
        if finished[index] is None:
            errors[index] = "timed out"
            sock.close()
    poller.close()

    pipe.send(
        {
            "started": started,
            "cpu": time.process_time() - cpu_before,
            "followers": [
                {
                    "status": parser.status,
                    "length": parser.body_length,
                    "mismatch": parser.mismatch,
                    "chunks": parser.chunks,
                    "complete": parser.complete,
                    "finished": finished[index],
                    "error": errors[index],
                }
                for index, parser in enumerate(parsers)
            ],
        }
    )


def read_slowly(
    pipe: Pipe, port: int, request: bytes, rate: float, seconds: float
) -> None:
    """
    Send C{request}, report C{("head", status)} once the response head has
    arrived, then read the body at C{rate} bytes a second until the pipe says
    to stop (or C{seconds} pass); then drop the connection and report how much
    was read.
    """
    sock = connect(port)
    sock.sendall(request)
    parser = ResponseParser()
    buffer = bytearray(65536)
    view = memoryview(buffer)
    while not parser.head_complete:
        received = sock.recv_into(view)
        if received == 0:
            raise ProtocolError("the connection closed before the response head")
        parser.feed(buffer, view, 0, received)
    pipe.send(("head", parser.status))

    # Read at most `rate` bytes a second on average, in small steps, until
    # told to stop.
    sock.settimeout(0.5)
    started = time.monotonic()
    taken = 0
    tick = 0.01
    step = max(int(rate * tick), 1)
    while time.monotonic() - started < seconds and not parser.complete:
        if pipe.poll(0):
            break
        allowed = rate * (time.monotonic() - started) - taken
        if allowed < step:
            time.sleep(tick)
            continue
        try:
            received = sock.recv_into(view, min(int(allowed), len(buffer)))
        except TimeoutError:
            continue
        if received == 0:
            break
        taken += received
        parser.feed(buffer, view, 0, received)
    sock.close()
    if not pipe.poll(0):
        pipe.recv()
    pipe.send(("read", taken, time.monotonic() - started))


class _Subscribers:
    """
    Many event-stream connections in one epoll loop.
    """

    def __init__(self, pipe: Pipe, port: int, count: int) -> None:
        self.pipe = pipe
        self.port = port
        self.count = count
        self.sockets: list[socket.socket] = []
        self.received: list[bytearray] = []
        self.index_of: dict[int, int] = {}
        self.poller = select.epoll(count + 1)

    def connect_all(self, seconds: float) -> tuple[float, int]:
        """
        Connect every subscriber, at most L{CONNECTS_IN_FLIGHT} waiting at a
        time, and wait until each has received the stream's preamble.

        @return: how long it took, and how many failed.
        """
        started = time.monotonic()
        deadline = started + seconds
        request = (
            b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Accept: text/event-stream\r\n\r\n"
        )
        waiting: set[int] = set()
        connected = failed = 0
        while connected + failed < self.count and time.monotonic() < deadline:
            while len(waiting) < CONNECTS_IN_FLIGHT and len(self.sockets) < self.count:
                sock = connect(self.port, timeout=10)
                sock.sendall(request)
                sock.setblocking(False)
                index = len(self.sockets)
                self.sockets.append(sock)
                self.received.append(bytearray())
                self.index_of[sock.fileno()] = index
                self.poller.register(sock.fileno(), select.EPOLLIN)
                waiting.add(index)
            for fd, _ in self.poller.poll(1.0):
                index = self.index_of[fd]
                data = self._receive(index)
                if index not in waiting:
                    continue
                if data is None:
                    waiting.discard(index)
                    failed += 1
                elif b"retry: 2000" in self.received[index]:
                    if not self.received[index].startswith(b"HTTP/1.1 200"):
                        failed += 1
                    else:
                        connected += 1
                    waiting.discard(index)
        failed += self.count - connected - failed
        return time.monotonic() - started, failed

    def _receive(self, index: int) -> bytes | None:
        sock = self.sockets[index]
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return b""
        except OSError:
            data = b""
        if not data:
            self.poller.unregister(sock.fileno())
            return None
        self.received[index] += data
        return data

    def watch_run(self, seconds: float) -> dict[str, Any]:
        """
        Wait until every subscriber has received a C{Started} event and then
        an C{ExitStatus} event, or until C{seconds} pass.

        @return: when the first and the last C{Started} arrived, when the
            last C{ExitStatus} did, and how many subscribers missed either.
        """
        for received in self.received:
            received.clear()
        started = [False] * self.count
        ended = [False] * self.count
        waiting_start = waiting_end = self.count
        first_start = last_start = last_end = None
        self.pipe.send("armed")

        deadline = time.monotonic() + seconds
        while waiting_end and time.monotonic() < deadline:
            for fd, _ in self.poller.poll(1.0):
                index = self.index_of[fd]
                if self._receive(index) is None:
                    continue
                now = time.monotonic()
                received = self.received[index]
                if not started[index] and b'"Started"]' in received:
                    started[index] = True
                    waiting_start -= 1
                    first_start = first_start or now
                    last_start = now
                if not ended[index] and b'"ExitStatus"' in received:
                    ended[index] = True
                    waiting_end -= 1
                    last_end = now
        return {
            "first_started": first_start,
            "last_started": last_start,
            "last_ended": last_end,
            "missed_started": waiting_start,
            "missed_ended": waiting_end,
        }

    def close(self) -> None:
        """
        Close every connection.
        """
        for sock in self.sockets:
            sock.close()
        self.poller.close()


def subscribe(pipe: Pipe, port: int, count: int) -> None:
    """
    Hold C{count} connections to C{/events}. Commands on the pipe:
    C{"connect"} opens them all; C{"watch"} answers C{"armed"}, then waits for a
    run's C{Started} and C{ExitStatus} on every connection and reports when they
    arrived; anything else closes them all and ends the process.
    """
    raise_file_limit()
    subscribers = _Subscribers(pipe, port, count)
    try:
        while True:
            command = pipe.recv()
            if command == "connect":
                pipe.send(("connected", *subscribers.connect_all(120.0)))
            elif command == "watch":
                pipe.send(("run", subscribers.watch_run(30.0)))
            else:
                break
    finally:
        subscribers.close()


def request_repeatedly(
    pipe: Pipe,
    port: int,
    request: bytes,
    connections: int,
    warmup: float,
    seconds: float,
) -> None:
    """
    Keep C{connections} keep-alive connections busy sending C{request} one at a
    time each, from C{start_at} (sent with C{"go"}) on; count the responses that
    complete in the C{seconds} after a C{warmup}, and report the count.
    """
    raise_file_limit()
    sockets = [connect(port) for _ in range(connections)]
    for sock in sockets:
        sock.setblocking(False)
    index_of = {sock.fileno(): index for index, sock in enumerate(sockets)}
    poller = select.epoll(connections)
    for sock in sockets:
        poller.register(sock.fileno(), select.EPOLLIN)
    pipe.send("ready")
    command, start_at = pipe.recv()
    if command != "go":
        return
    time.sleep(max(start_at - time.monotonic(), 0))

    measure_from = start_at + warmup
    measure_until = measure_from + seconds
    cpu_before = time.process_time()
    parsers = [ResponseParser() for _ in sockets]
    for sock in sockets:
        sock.send(request)
    buffer = bytearray(RECEIVE_BUFFER_SIZE)
    view = memoryview(buffer)
    counted = errors = 0
    body_lengths: set[int] = set()
    busy = connections
    deadline = measure_until + 10
    while busy and time.monotonic() < deadline:
        for fd, _ in poller.poll(1.0):
            index = index_of[fd]
            sock, parser = sockets[index], parsers[index]
            try:
                received = sock.recv_into(view)
            except BlockingIOError:
                continue
            if received == 0:
                poller.unregister(fd)
                errors += 1
                busy -= 1
                continue
            parser.feed(buffer, view, 0, received)
            if not parser.complete:
                continue
            now = time.monotonic()
            if measure_from <= now < measure_until:
                counted += 1
                body_lengths.add(parser.body_length)
                if parser.status != 200:
                    errors += 1
            if now >= measure_until:
                poller.unregister(fd)
                busy -= 1
                continue
            parsers[index] = ResponseParser()
            sock.send(request)
    for sock in sockets:
        sock.close()
    poller.close()
    pipe.send(
        {
            "responses": counted,
            "errors": errors,
            "seconds": seconds,
            "body_lengths": sorted(body_lengths),
            "cpu": time.process_time() - cpu_before,
        }
    )
