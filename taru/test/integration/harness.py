"""
Start the real C{taru} as a separate process on loopback, and talk to it over
HTTP with treq.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import sys
import textwrap
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from treq.client import HTTPClient
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import ProcessProtocol, Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, TestCase
from twisted.web.client import Agent, HTTPConnectionPool, ResponseDone
from twisted.web.http_headers import Headers
from twisted.web.iweb import IResponse

from taru.runners import exit_status_of
from taru.test.integration.sandbox import (
    Sandbox,
    SandboxUnavailable,
    shared_sandbox,
)

_LISTENING = re.compile(rb"Site starting on (\d+)")

# How long Taru may take to start listening.
START_TIMEOUT = 20.0


def now() -> float:
    """
    The real reactor's time.
    """
    return reactor.seconds()


def sleep(seconds: float) -> Deferred[None]:
    """
    Wait on the real reactor.
    """
    waiting: Deferred[None] = Deferred()
    reactor.callLater(seconds, waiting.callback, None)
    return waiting


class _TaruProtocol(ProcessProtocol):
    def __init__(self) -> None:
        self.log = bytearray()
        self.listening: Deferred[int] = Deferred()
        self.ended: Deferred[int | None] = Deferred()

    def outReceived(self, data: bytes) -> None:
        self.log += data
        if not self.listening.called:
            found = _LISTENING.search(self.log)
            if found:
                self.listening.callback(int(found.group(1)))

    errReceived = outReceived

    def processEnded(self, reason: Failure) -> None:
        code = exit_status_of(reason).exit_code
        if not self.listening.called:
            self.listening.errback(
                RuntimeError(
                    f"taru exited ({code}) before listening:\n{self.log.decode()}"
                )
            )
        self.ended.callback(code)


class Taru:
    """
    One real Taru process, listening on a free loopback port.

    @ivar base: the base URL, such as C{http://127.0.0.1:41234}.
    @ivar port: the TCP port it listens on, on 127.0.0.1.
    @ivar config_path: the configuration file it was started with.
    """

    def __init__(
        self,
        testcase: TestCase,
        config: str,
        arguments: Sequence[str] = (),
        environment: Mapping[str, str] | None = None,
        directory: str | None = None,
    ) -> None:
        """
        @param config: the configuration file's contents.
        @param arguments: more command-line arguments for C{taru}.
        @param environment: variables added to the environment Taru itself
            runs with.
        @param directory: the folder of an earlier Taru to take the place of,
            with its state; a new folder when not given.
        """
        self._testcase = testcase
        if directory is None:
            directory = testcase.mktemp()
            os.makedirs(directory)
        self.directory = os.path.abspath(directory)
        self.config_path = os.path.join(self.directory, "taru.yml")
        self.state_directory = os.path.join(self.directory, "state")
        self.write_config(config)
        self._arguments = list(arguments)
        self._environment = dict(environment or {})
        self._protocol = _TaruProtocol()
        self.base = ""
        self.port = 0
        self.pid = 0

    def successor(self) -> Taru:
        """
        A Taru to start after this one, on the same configuration and state,
        as when Taru is restarted.
        """
        with open(self.config_path, encoding="utf-8") as config_file:
            config = config_file.read()
        return Taru(
            self._testcase,
            config,
            self._arguments,
            self._environment,
            directory=self.directory,
        )

    def write_config(self, config: str) -> None:
        """
        Replace the configuration file's contents.
        """
        with open(self.config_path, "w", encoding="utf-8") as config_file:
            config_file.write(textwrap.dedent(config))

    async def start(self) -> Taru:
        """
        Start Taru and wait until it listens.
        """
        runner = getattr(self._testcase, "runner", "direct")
        runner_arguments = [] if "--runner" in self._arguments else ["--runner", runner]
        argv = [
            sys.executable,
            "-m",
            "taru",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--state-dir",
            self.state_directory,
            *runner_arguments,
            *self._arguments,
            self.config_path,
        ]
        environment = dict(os.environ)
        environment.update(self._environment)
        environment["PYTHONUNBUFFERED"] = "1"
        sandbox = None
        if runner == "systemd":
            sandbox = systemd_sandbox()
            argv = sandbox.command(*argv, directory=self.directory)
            self._testcase.addCleanup(stop_task_units, sandbox)
        process = reactor.spawnProcess(
            self._protocol, argv[0], argv, env=environment, path=self.directory
        )
        self.pid = process.pid
        self._testcase.addCleanup(self.stop)
        timeout = reactor.callLater(START_TIMEOUT, self._protocol.listening.cancel)
        try:
            port = await self._protocol.listening
        finally:
            if timeout.active():
                timeout.cancel()
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        if sandbox is not None:
            # nsenter forks to enter the PID namespace: signals go to its child.
            self.pid = _only_child(self.pid)
        return self

    @property
    def log(self) -> str:
        """
        Everything Taru has logged so far.
        """
        return self._protocol.log.decode("utf-8", "replace")

    def url(self, path: str) -> str:
        """
        The full URL of a path on this Taru.
        """
        return self.base + path

    def signal(self, signal_number: int) -> None:
        """
        Send Taru a signal.
        """
        if not self._protocol.ended.called:
            try:
                os.kill(self.pid, signal_number)
            except ProcessLookupError:
                # It exited and is about to be reaped.
                pass

    async def stop(self) -> int | None:
        """
        Stop Taru with SIGTERM and wait for it to exit.

        @return: its exit code.
        """
        if not self._protocol.ended.called:
            self.signal(signal.SIGTERM)
        return await self.ended()

    def ended(self) -> Deferred[int | None]:
        """
        A Deferred that fires with Taru's exit code once it has exited.
        """
        waiting: Deferred[int | None] = Deferred()

        def pass_on(code: int | None) -> int | None:
            waiting.callback(code)
            return code

        self._protocol.ended.addCallback(pass_on)
        return waiting


def systemd_sandbox() -> Sandbox:
    """
    The real systemd the tests share, or a skip where it cannot boot (CI
    counts a skip as a failure).
    """
    try:
        return shared_sandbox()
    except SandboxUnavailable as reason:
        raise SkipTest(f"no systemd sandbox: {reason}") from None


def stop_task_units(sandbox: Sandbox) -> None:
    """
    Stop whatever units of tasks a test left running in the shared sandbox.
    """
    sandbox.run("systemctl", "--user", "stop", "taru-*.service")
    sandbox.run("systemctl", "--user", "reset-failed", "taru-*.service")


def _only_child(pid: int) -> int:
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        [child] = children.read().split()
    return int(child)


def command_lines() -> list[tuple[int, list[bytes]]]:
    """
    Every live process with the arguments of its command line.
    """
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                arguments = cmdline.read().split(b"\0")[:-1]
        except OSError:
            continue
        if arguments:
            found.append((int(entry), arguments))
    return found


def sleep_marker() -> str:
    """
    A C{sleep} duration of about five minutes that is unique to one test, so
    that the processes of that test's run can be told apart in C{/proc}.
    """
    return f"300.{random.randrange(10**8, 10**9)}"


def processes_with(marker: str) -> list[int]:
    """
    The processes whose command line holds C{marker}.
    """
    needle = marker.encode("ascii")
    return [pid for pid, arguments in command_lines() if needle in b" ".join(arguments)]


def sleeping(marker: str) -> list[int]:
    """
    The processes running C{sleep marker}.
    """
    wanted = [b"sleep", marker.encode("ascii")]
    return [
        pid
        for pid, arguments in command_lines()
        if [os.path.basename(arguments[0]), *arguments[1:]] == wanted
    ]


def describe_processes_with(marker: str) -> str:
    """
    The processes whose command line holds C{marker}, for failure messages.
    """
    remaining = set(processes_with(marker))
    return "; ".join(
        f"{pid}: {b' '.join(arguments).decode('utf-8', 'replace')}"
        for pid, arguments in command_lines()
        if pid in remaining
    )


def kill_processes_with(marker: str) -> None:
    """
    Kill whatever is left of a test's runs.
    """
    for pid in processes_with(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def free_port() -> int:
    """
    A loopback TCP port that nothing listens on now.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def http_client(testcase: TestCase) -> HTTPClient:
    """
    A treq client with a connection pool of its own, closed when the test
    ends.
    """
    pool = HTTPConnectionPool(reactor, persistent=False)
    testcase.addCleanup(pool.closeCachedConnections)
    return HTTPClient(Agent(reactor, pool=pool))


async def wait_for(
    condition: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05
) -> bool:
    """
    Check a condition on the real reactor until it holds or time runs out.

    @return: whether it held in time.
    """
    deadline = now() + timeout
    while not condition():
        if now() >= deadline:
            return False
        await sleep(interval)
    return True


class EventStream(Protocol):
    """
    Reads a server-sent event stream as the JSON values of its C{data:}
    messages, in order.

    @ivar last_event_id: the last C{id} received.

    @ivar lost: fires once the connection is closed.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._messages: deque[Any] = deque()
        self.last_event_id: str | None = None
        self._waiting: Deferred[None] | None = None
        self.lost: Deferred[None] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data.replace(b"\r\n", b"\n")
        while b"\n\n" in self._buffer:
            block, self._buffer = self._buffer.split(b"\n\n", 1)
            for line in block.split(b"\n"):
                if line.startswith(b"id: "):
                    self.last_event_id = line[4:].decode("utf-8")
            data_lines = [
                line[6:] if line.startswith(b"data: ") else line[5:]
                for line in block.split(b"\n")
                if line.startswith(b"data:")
            ]
            if data_lines:
                self._messages.append(json.loads(b"\n".join(data_lines)))
        self._wake()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if not self.lost.called:
            self.lost.callback(None)
        self._wake()

    def _wake(self) -> None:
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            waiting.callback(None)

    async def next_message(self, timeout: float = 10.0) -> Any:
        """
        The next message, waiting for it if need be.

        @raise TimeoutError: if none arrives in time or the stream ended.
        """
        deadline = now() + timeout
        while not self._messages:
            left = deadline - now()
            if self.lost.called or left <= 0:
                raise TimeoutError("no further event arrived")
            self._waiting = Deferred()
            timer = reactor.callLater(left, self._wake)
            await self._waiting
            if timer.active():
                timer.cancel()
        return self._messages.popleft()

    async def messages_until(
        self, last: Callable[[Any], bool], timeout: float = 10.0
    ) -> list[Any]:
        """
        Every message up to and including the first for which C{last} holds.

        @raise TimeoutError: if no such message arrives in time.
        """
        deadline = now() + timeout
        received = []
        while True:
            left = deadline - now()
            received.append(await self.next_message(max(left, 0.0)))
            if last(received[-1]):
                return received

    def close(self) -> Deferred[None]:
        """
        Drop the connection.

        @return: fires once it is closed.
        """
        if not self.lost.called and self.transport is not None:
            self.transport.loseConnection()
        return self.lost


async def open_events(
    testcase: TestCase,
    client: HTTPClient,
    url: str,
    headers: Headers | None = None,
) -> tuple[IResponse, EventStream]:
    """
    Subscribe to an event stream, closed when the test ends.

    @return: the response and the stream of its messages.
    """
    response = await client.get(url, headers=headers, unbuffered=True)
    stream = EventStream()
    response.deliverBody(stream)
    testcase.addCleanup(stream.close)
    return response, stream


def is_exit_status(message: Any) -> bool:
    """
    Whether an event message announces the end of a run.
    """
    return isinstance(message[1], dict) and "ExitStatus" in message[1]


class Chunks(Protocol):
    """
    Records the chunks of a response body as they arrive, with their times.

    @ivar arrivals: each chunk with the time it arrived.
    @ivar done: fires when the body is complete, or once L{stop} dropped the
        connection; fails if the body was cut short otherwise.
    """

    def __init__(self, response: IResponse) -> None:
        self.arrivals: list[tuple[float, bytes]] = []
        self.done: Deferred[None] = Deferred()
        self._stopped = False
        response.deliverBody(self)

    def dataReceived(self, data: bytes) -> None:
        self.arrivals.append((now(), data))

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._stopped or reason.check(ResponseDone):
            self.done.callback(None)
        else:
            self.done.errback(reason)

    def stop(self) -> Deferred[None]:
        """
        Drop the connection, as a client that goes away does.

        @return: L{done}.
        """
        self._stopped = True
        if not self.done.called and self.transport is not None:
            # A response body's transport is a producer standing for the
            # connection; stopping it drops the connection.
            cast(IPushProducer, self.transport).stopProducing()
        return self.done

    @property
    def body(self) -> bytes:
        """
        Everything received so far.
        """
        return b"".join(data for _, data in self.arrivals)


async def start_and_follow(client: HTTPClient, taru: Taru, task: str) -> Chunks:
    """
    Start a task with C{POST output} and record its output as it streams.
    """
    response = await client.post(
        taru.url(f"/api/v1/task/{task}/output"), unbuffered=True
    )
    return Chunks(response)


async def follow(client: HTTPClient, taru: Taru, task: str) -> Chunks:
    """
    Follow a task's output with C{GET output}.
    """
    response = await client.get(
        taru.url(f"/api/v1/task/{task}/output"), unbuffered=True
    )
    return Chunks(response)


async def output_of(client: HTTPClient, taru: Taru, task: str) -> bytes:
    """
    Run a task to its end and return all of its output.
    """
    chunks = await start_and_follow(client, taru, task)
    await chunks.done
    return chunks.body
