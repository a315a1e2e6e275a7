"""
Start the real C{taru} as a separate process on loopback, and talk to it over
HTTP with treq.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import textwrap
from collections.abc import Sequence

from treq.client import HTTPClient
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, HTTPConnectionPool

_LISTENING = re.compile(rb"Site starting on (\d+)")

# How long Taru may take to start listening.
START_TIMEOUT = 20.0


def sleep(seconds: float) -> Deferred[None]:
    """
    Wait on the real reactor.
    """
    waiting: Deferred[None] = Deferred()
    reactor.callLater(seconds, waiting.callback, None)  # type: ignore[attr-defined]
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
        code: int | None = 0
        if isinstance(reason.value, ProcessTerminated):
            code = reason.value.exitCode
        elif not isinstance(reason.value, ProcessDone):
            code = None
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
    @ivar config_path: the configuration file it was started with.
    """

    def __init__(
        self, testcase: TestCase, config: str, arguments: Sequence[str] = ()
    ) -> None:
        self._testcase = testcase
        directory = testcase.mktemp()
        os.makedirs(directory)
        self.directory = os.path.abspath(directory)
        self.config_path = os.path.join(self.directory, "taru.yml")
        self.state_directory = os.path.join(self.directory, "state")
        self.write_config(config)
        self._arguments = list(arguments)
        self._protocol = _TaruProtocol()
        self.base = ""
        self.pid = 0

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
        argv = [
            sys.executable,
            "-m",
            "taru",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--state-dir",
            self.state_directory,
            *self._arguments,
            self.config_path,
        ]
        environment = dict(os.environ)
        environment["PYTHONUNBUFFERED"] = "1"
        process = reactor.spawnProcess(  # type: ignore[attr-defined]
            self._protocol, sys.executable, argv, env=environment, path=self.directory
        )
        self.pid = process.pid
        self._testcase.addCleanup(self.stop)
        timeout = reactor.callLater(  # type: ignore[attr-defined]
            START_TIMEOUT, self._protocol.listening.cancel
        )
        port = await self._protocol.listening
        timeout.cancel()
        self.base = f"http://127.0.0.1:{port}"
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
            os.kill(self.pid, signal_number)

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
        self._protocol.ended.addBoth(lambda code: (waiting.callback(code), code)[1])
        return waiting


def http_client(testcase: TestCase) -> HTTPClient:
    """
    A treq client with a connection pool of its own, closed when the test
    ends.
    """
    pool = HTTPConnectionPool(reactor, persistent=False)
    testcase.addCleanup(pool.closeCachedConnections)
    return HTTPClient(Agent(reactor, pool=pool))
