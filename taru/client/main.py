"""
The C{taru-cli} program: it reads the command line, puts the reactor, an
HTTP agent, standard output and the process's signals together, carries out
the command and exits with its status.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

from treq.client import HTTPClient
from twisted.internet.task import react
from twisted.web.client import Agent, HTTPConnectionPool

from taru.client.commands import Session
from taru.client.console import Console
from taru.client.exits import EXIT_FAILURE, EXIT_SIGNAL_BASE
from taru.client.http import TaruClient
from taru.client.interruptions import Interruptions, supervise
from taru.client.options import Invocation, parse_invocation

# Seconds to wait for a TCP connection to Taru.
CONNECT_TIMEOUT = 10.0


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
