"""
C{taru-cli}'s commands, one function each, carried out through a
L{TaruClient} and shown on a L{Console}; L{execute} runs the one asked for
and turns its failure into an exit status.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from attrs import define
from twisted.internet.interfaces import IReactorTime

from taru.client.console import Console
from taru.client.events import EventParser, describe_event, is_heartbeat
from taru.client.exits import (
    EXIT_FAILURE,
    EXIT_STDOUT_CLOSED,
    ClientError,
    OutputFailed,
    StdoutClosed,
)
from taru.client.formatting import format_runs, format_tasks, utc_time
from taru.client.http import TaruClient, run_id_of
from taru.client.options import Invocation
from taru.client.records import describe_result, exit_status_of


@define
class Session:
    """
    What one command works with.

    @ivar run_started: whether C{run} may have started a run that has not
        ended yet, so that an interrupt should stop it.
    @ivar interrupted: whether a signal asked to give up the command, so
        that the failures giving up causes go unreported.
    """

    client: TaruClient
    console: Console
    clock: IReactorTime
    run_started: bool = False
    interrupted: bool = False


def _print_json(session: Session, body: bytes) -> None:
    """
    Print Taru's JSON answer as it came, on lines of its own.
    """
    session.console.output(body if body.endswith(b"\n") else body + b"\n")


async def list_tasks(invocation: Invocation, session: Session) -> int:
    """
    C{taru-cli list}: the tasks the user may see.
    """
    body, listing = await session.client.tasks()
    if invocation.json:
        _print_json(session, body)
    else:
        session.console.line(format_tasks(listing))
    return 0


async def run_task(invocation: Invocation, session: Session) -> int:
    """
    C{taru-cli run}: start a run, stream its output, and end with its exit
    status.
    """
    client, console = session.client, session.console
    task = task_of(invocation)
    arguments = invocation.arguments

    if invocation.mode == "detach":
        response = await client.request("POST", client.task_url(task), arguments)
        run_id = run_id_of(response)
        await client.stream(response, lambda chunk: None)
        console.line(str(run_id))
        return 0

    endpoint = "output" if invocation.mode == "output" else "status"
    session.run_started = True
    try:
        response = await client.request(
            "POST", client.task_url(task, endpoint), arguments
        )
    except ClientError as refused:
        if refused.code == 404 and invocation.mode == "output":
            await _explain_unreadable(client, task)
        raise
    if invocation.mode == "output":
        await client.stream(response, console.output)
    else:
        await client.stream(response, lambda chunk: None)
    # Its output or status is complete: the run has ended, or is ending.
    session.run_started = False

    # Read once the output is out, which is worth having even from a Taru too
    # old to name its runs.
    run_id = run_id_of(response)
    record = await client.run(task, run_id)
    if not record.ended:
        # The output can end a moment before Taru has noted the run's end.
        await client.text("GET", client.task_url(task, "status"))
        record = await client.run(task, run_id)
    if not record.ended:
        raise ClientError(f"run {run_id} of {task!r} has not ended")
    code, note = exit_status_of(record)
    if note is not None:
        console.error(note)
    return code


async def _explain_unreadable(client: TaruClient, task: str) -> None:
    """
    Taru hides a task from a user who may run it but not read its output,
    when asked to run it and stream the output: say what they may do
    instead.

    @raise ClientError: saying so, when that is why.
    """
    try:
        _, listing = await client.tasks()
    except ClientError:
        return
    permissions = listing.get(task)
    if not isinstance(permissions, dict) or permissions.get("can_run") is not True:
        return
    if permissions.get("can_view_output") is not True:
        raise ClientError(
            f"you may run {task!r} but not read its output:"
            " use run --no-output, or run --detach"
        )


async def stop_task(invocation: Invocation, session: Session) -> int:
    """
    C{taru-cli stop}: stop a task and everything it started.
    """
    session.console.line(await session.client.stop(task_of(invocation)))
    return 0


async def task_status(invocation: Invocation, session: Session) -> int:
    """
    C{taru-cli status}: wait for the task's run to end, print its exit code
    and end with it.
    """
    client, console = session.client, session.console
    task = task_of(invocation)
    answer = (await client.text("GET", client.task_url(task, "status"))).strip()
    if answer.isdigit():
        console.line(answer)
        return int(answer)

    # No exit code: a signal ended the run, or there was none.
    _, records = await client.runs(task)
    ended = [record for record in records if record.ended]
    if not ended:
        raise ClientError(f"task {task!r} has not run yet")
    code, note = exit_status_of(ended[0])
    console.line(describe_result(ended[0]))
    if note is not None:
        console.error(note)
    return code


async def task_output(invocation: Invocation, session: Session) -> int:
    """
    C{taru-cli output}: follow the output of the latest run, or of a given
    one, until it ends.
    """
    client = session.client
    task = task_of(invocation)
    if invocation.run_id is None:
        url = client.task_url(task, "output")
    else:
        url = client.task_url(task, "runs", str(invocation.run_id), "output")
    response = await client.request("GET", url)
    await client.stream(response, session.console.output)
    return 0


async def task_runs(invocation: Invocation, session: Session) -> int:
    """
    C{taru-cli runs}: a task's runs, newest first.
    """
    body, records = await session.client.runs(task_of(invocation))
    if invocation.json:
        _print_json(session, body)
    else:
        session.console.line(format_runs(records))
    return 0


async def follow_events(invocation: Invocation, session: Session) -> int:
    """
    C{taru-cli events}: one line per event until the connection ends, which
    is a failure: Taru never ends the stream by itself.
    """
    client, console = session.client, session.console

    def show(data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            message = data
        if is_heartbeat(message):
            return
        if invocation.json:
            console.line(data)
            return
        described = describe_event(message)
        if described is not None:
            console.line(f"{utc_time(session.clock.seconds())} {described}")

    response = await client.request("GET", f"{client.base}/events")
    try:
        await client.stream(response, EventParser(show).feed)
    except ClientError:
        # Lost or ended: either way, events stopped coming.
        pass
    raise ClientError(f"the event stream from Taru at {client.base} ended")


_COMMANDS: dict[str, Callable[[Invocation, Session], Awaitable[int]]] = {
    "list": list_tasks,
    "run": run_task,
    "stop": stop_task,
    "status": task_status,
    "output": task_output,
    "runs": task_runs,
    "events": follow_events,
}


def task_of(invocation: Invocation) -> str:
    """
    The task a command is about, for every command but C{list} and
    C{events}.
    """
    assert invocation.task is not None, "every command but list and events has one"
    return invocation.task


async def execute(invocation: Invocation, session: Session) -> int:
    """
    Carry out a command, and tell the user of failures: the reader of
    standard output going away ends it quietly, any other failure to write
    the output with a message.

    @return: the exit status.
    """
    try:
        return await _COMMANDS[invocation.command](invocation, session)
    except ClientError as failure:
        if not session.interrupted:
            session.console.error(str(failure))
        return EXIT_FAILURE
    except StdoutClosed:
        session.console.silence()
        return EXIT_STDOUT_CLOSED
    except OutputFailed as failure:
        session.console.silence()
        session.console.error(f"cannot write the output: {failure}")
        return EXIT_FAILURE
