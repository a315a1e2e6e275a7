"""
What the benchmark compares Taru with: raw loopback TCP between two Python
processes, process creation alone, and minimal raw-socket servers that
answer like Taru does (same framing, same bytes) but do nothing else.

The minimal servers measure the client's ceiling: the most the benchmark's
clients can take on this machine in a scenario's shape. A Taru figure near
that ceiling means the client, not Taru, set it.
"""

from __future__ import annotations

import fcntl
import os
import select
import socket
import statistics
import subprocess
import threading
import time
from multiprocessing.connection import Connection as Pipe

from bench.clients import expect, raise_file_limit, start_client
from bench.http_client import HOST, LINE, pattern

TRANSFER_BLOCK = 1 << 20


def _listen(backlog: int = 1024) -> socket.socket:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((HOST, 0))
    server.listen(backlog)
    return server


def _receive_raw(pipe: Pipe, total: int) -> None:
    """
    Listen, tell the port, accept one connection and read C{total} bytes
    from it with large buffers; report the seconds it took.
    """
    server = _listen()
    pipe.send(server.getsockname()[1])
    connection, _ = server.accept()
    started = time.monotonic()
    buffer = bytearray(TRANSFER_BLOCK)
    view = memoryview(buffer)
    received = 0
    while received < total:
        count = connection.recv_into(view)
        if count == 0:
            break
        received += count
    elapsed = time.monotonic() - started
    connection.close()
    server.close()
    pipe.send((received, elapsed))


def _send_raw(pipe: Pipe, port: int, total: int) -> None:
    """
    Connect to C{port} and send C{total} bytes in large blocks.
    """
    block = memoryview(pattern(TRANSFER_BLOCK))
    with socket.create_connection((HOST, port)) as sock:
        left = total
        while left > 0:
            part = block[: min(left, len(block))]
            sock.sendall(part)
            left -= len(part)
    pipe.send("sent")


def raw_tcp_seconds(total: int) -> float:
    """
    How long moving C{total} bytes over loopback TCP takes between two Python
    processes, a sender and a receiver, using 1 MiB buffers.
    """
    receiver, receiver_pipe = start_client(_receive_raw, total)
    port = expect(receiver_pipe, 30)
    sender, sender_pipe = start_client(_send_raw, port, total)
    received, elapsed = expect(receiver_pipe, 300)
    expect(sender_pipe, 30)
    for process in (receiver, sender):
        process.join(10)
    if received != total:
        raise RuntimeError(f"raw TCP moved {received} bytes, not {total}")
    return float(elapsed)


def task_alone_seconds(script: str, pipe_size: int = 0) -> tuple[int, float]:
    """
    How long a shell script's output takes to read from a pipe, with
    nothing else done with it: the most any server reading it that way
    could stream that task's output at.

    @param pipe_size: when given, the pipe is enlarged to this many bytes
        and read that much at a time; otherwise the pipe keeps the system's
        default size and is read 64 KiB at a time, as Taru reads it.
    @return: how many bytes the script wrote, and the seconds it took.
    """
    started = time.monotonic()
    task = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE)
    assert task.stdout is not None
    fd = task.stdout.fileno()
    read_size = 65536
    if pipe_size:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, pipe_size)
        read_size = pipe_size
    total = 0
    while chunk := os.read(fd, read_size):
        total += len(chunk)
    task.wait()
    task.stdout.close()
    return total, time.monotonic() - started


def spawn_seconds(count: int) -> list[float]:
    """
    How long each of C{count} runs of C{true} takes to start and be reaped,
    with C{posix_spawn} and C{waitpid}, with no server involved.
    """
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        pid = os.posix_spawnp("true", ["true"], os.environ)
        os.waitpid(pid, 0)
        timings.append(time.perf_counter() - started)
    return timings


def _read_head(connection: socket.socket) -> bytes:
    """
    Read a request head; what follows it is ignored.
    """
    data = b""
    while b"\r\n\r\n" not in data:
        more = connection.recv(65536)
        if not more:
            break
        data += more
    return data


def chunked_stream(length: int, chunk_size: int) -> tuple[bytes, bytes, int]:
    """
    The benchmark's output of C{length} bytes as a chunked body, in pieces
    that can be sent over and over: a framed block that starts and ends at
    the pattern's phase 0, how many times to send it, and a framed tail with
    the rest and the last chunk.
    """
    content = pattern(chunk_size * len(LINE))

    def framed(data: bytes) -> bytes:
        pieces = []
        for start in range(0, len(data), chunk_size):
            piece = data[start : start + chunk_size]
            pieces.append(b"%x\r\n%s\r\n" % (len(piece), piece))
        return b"".join(pieces)

    repeats, rest = divmod(length, len(content))
    return framed(content), framed(content[:rest]) + b"0\r\n\r\n", repeats


_OUTPUT_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


def serve_output(pipe: Pipe, length: int, chunk_size: int, seconds: float) -> None:
    """
    Serve the benchmark's output of C{length} bytes, chunked like Taru's, to
    every connection, a thread each, until the pipe says to stop or
    C{seconds} pass.
    """
    raise_file_limit()
    block, tail, repeats = chunked_stream(length, chunk_size)
    block_view = memoryview(block)

    def serve(connection: socket.socket) -> None:
        with connection:
            _read_head(connection)
            connection.sendall(_OUTPUT_HEAD)
            for _ in range(repeats):
                connection.sendall(block_view)
            connection.sendall(tail)

    server = _listen()
    server.settimeout(0.2)
    pipe.send(server.getsockname()[1])
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not pipe.poll(0):
        try:
            connection, _ = server.accept()
        except TimeoutError:
            continue
        connection.settimeout(None)
        threading.Thread(target=serve, args=(connection,), daemon=True).start()
    server.close()


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


_EVENTS_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    b"Cache-Control: no-store\r\nTransfer-Encoding: chunked\r\n\r\n"
)


def serve_events(pipe: Pipe, seconds: float) -> None:
    """
    Answer every C{GET /events} with the stream's preamble, and on each
    C{"broadcast"} from the pipe write a C{Started} and then an
    C{ExitStatus} event to every stream, as Taru would, until the pipe says
    anything else or C{seconds} pass.
    """
    raise_file_limit()
    server = _listen(4096)
    server.setblocking(False)
    poller = select.epoll()
    poller.register(server.fileno(), select.EPOLLIN)
    poller.register(pipe.fileno(), select.EPOLLIN)
    streams: dict[int, socket.socket] = {}
    pending: dict[int, bytes] = {}
    pipe.send(server.getsockname()[1])

    number = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for fd, _ in poller.poll(1.0):
            if fd == server.fileno():
                for _ in range(256):
                    try:
                        connection, _ = server.accept()
                    except BlockingIOError:
                        break
                    connection.setblocking(False)
                    pending[connection.fileno()] = b""
                    streams[connection.fileno()] = connection
                    poller.register(connection.fileno(), select.EPOLLIN)
            elif fd == pipe.fileno():
                if pipe.recv() != "broadcast":
                    deadline = 0
                    break
                for message in (b'"Started"', b'{"ExitStatus":0}'):
                    number += 1
                    event = _chunk(
                        b'id: bench-%d\ndata: ["true",%s]\n\n' % (number, message)
                    )
                    for stream in streams.values():
                        stream.send(event)
            else:
                connection = streams[fd]
                try:
                    data = connection.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    poller.unregister(fd)
                    del streams[fd]
                    pending.pop(fd, None)
                    connection.close()
                elif fd in pending:
                    pending[fd] += data
                    if b"\r\n\r\n" in pending[fd]:
                        del pending[fd]
                        connection.send(_EVENTS_HEAD + _chunk(b"retry: 2000\n\n"))
    for connection in streams.values():
        connection.close()
    server.close()
    poller.close()


def serve_fixed(pipe: Pipe, response: bytes, seconds: float) -> None:
    """
    Answer every request on every connection with the same C{response},
    from one epoll loop, until the pipe says to stop or C{seconds} pass.
    """
    raise_file_limit()
    server = _listen()
    server.setblocking(False)
    poller = select.epoll()
    poller.register(server.fileno(), select.EPOLLIN)
    poller.register(pipe.fileno(), select.EPOLLIN)
    connections: dict[int, socket.socket] = {}
    pipe.send(server.getsockname()[1])

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for fd, _ in poller.poll(1.0):
            if fd == server.fileno():
                try:
                    connection, _ = server.accept()
                except BlockingIOError:
                    continue
                # Blocking: it is read only when epoll says so, and a
                # response is written whole.
                connection.setblocking(True)
                connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                connections[connection.fileno()] = connection
                poller.register(connection.fileno(), select.EPOLLIN)
            elif fd == pipe.fileno():
                deadline = 0
                break
            else:
                connection = connections[fd]
                try:
                    data = connection.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    poller.unregister(fd)
                    del connections[fd]
                    connection.close()
                    continue
                # Requests without bodies, one at a time per connection.
                for _ in range(data.count(b"\r\n\r\n")):
                    connection.sendall(response)
    for connection in connections.values():
        connection.close()
    server.close()
    poller.close()


def median(values: list[float]) -> float:
    """
    The median of C{values}.
    """
    return statistics.median(values)
