"""
Giving up a command when a signal asks to: L{Interruptions} hands each
signal to whoever listens for it now, and L{supervise} cancels the command,
and stops the task too when asked to.
"""

from __future__ import annotations

from collections.abc import Callable

from attrs import define
from twisted.internet.defer import CancelledError, Deferred

from taru.client.commands import Session, execute, task_of
from taru.client.exits import EXIT_SIGNAL_BASE, ClientError
from taru.client.options import Invocation

# Seconds that stopping a task after Ctrl-C may take before taru-cli gives up.
STOP_TIMEOUT = 10.0


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
    stopping = Deferred.fromCoroutine(session.client.stop(task_of(invocation)))
    interruptions.listen(lambda number: stopping.cancel())
    timeout = session.clock.callLater(STOP_TIMEOUT, stopping.cancel)
    try:
        session.console.error(await stopping)
    except CancelledError:
        session.console.error(f"gave up stopping {task_of(invocation)!r}")
    except ClientError as failure:
        session.console.error(f"could not stop {task_of(invocation)!r}: {failure}")
    finally:
        interruptions.listen(None)
        if timeout.active():
            timeout.cancel()
