"""
C{taru-cli}'s command line: its options and commands, Taru's address and the
credentials in it, and a task's C{NAME=VALUE} arguments, read into an
L{Invocation}.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from urllib.parse import unquote, urlsplit, urlunsplit

from attrs import field, frozen

from taru.client.exits import EXIT_FAILURE

PROGRAM = "taru-cli"

DEFAULT_URL = "http://127.0.0.1:3000"

# The environment variables that name Taru's address and the user to act as.
ENVIRONMENT_URL = "TARU_URL"
ENVIRONMENT_USER = "TARU_USER"


@frozen
class Invocation:
    """
    One command, as given on the command line.

    @ivar url: Taru's base URL, without a trailing slash or credentials.
    @ivar user: the user to name in C{X-User}, or L{None} to name none.
    @ivar credentials: the name and password for HTTP basic authentication,
        as the URL gave them, for a proxy in front of Taru.
    @ivar command: C{list}, C{run}, C{stop}, C{status}, C{output}, C{runs} or
        C{events}.
    @ivar task: the task the command is about, when it is about one.
    @ivar arguments: the task's arguments for C{run}, by name.
    @ivar json: print Taru's JSON instead of a table or lines.
    @ivar mode: how C{run} waits: C{output} streams the output, C{status}
        only waits for the end, C{detach} does not wait.
    @ivar stop_on_interrupt: stop the task, too, when C{run} is interrupted.
    @ivar run_id: the run whose output C{output} shows; the latest when
        L{None}.
    """

    url: str
    user: str | None
    command: str
    credentials: tuple[str, str] | None = None
    task: str | None = None
    arguments: Mapping[str, str] = field(factory=dict)
    json: bool = False
    mode: str = "output"
    stop_on_interrupt: bool = False
    run_id: int | None = None


def build_parser() -> argparse.ArgumentParser:
    """
    The parser of C{taru-cli}'s options and commands.
    """
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Run and watch the tasks of a Taru server.",
        epilog=(
            f"Exit status: a run's own exit code for run and status; 128 plus"
            f" the signal for a run a signal ended; {EXIT_FAILURE} when Taru"
            " refuses or cannot be reached, or the output cannot be written;"
            " 2 for a usage error; 130 on Ctrl-C; 141 when the reader of the"
            " output goes away."
        ),
    )
    parser.add_argument(
        "--url",
        help=f"Taru's address (default: ${ENVIRONMENT_URL}, else {DEFAULT_URL})",
    )
    parser.add_argument(
        "--user",
        metavar="NAME",
        help=f"the user to act as, sent as X-User (default: ${ENVIRONMENT_USER})",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    listing = commands.add_parser("list", help="list the tasks you may see")
    listing.add_argument("--json", action="store_true", help="print Taru's JSON")

    run = commands.add_parser(
        "run",
        help="run a task, stream its output and exit with its exit code",
    )
    run.add_argument("task", metavar="TASK", help="the task to run")
    run.add_argument(
        "arguments", nargs="*", metavar="NAME=VALUE", help="the task's arguments"
    )
    waiting = run.add_mutually_exclusive_group()
    waiting.add_argument(
        "--no-output",
        dest="mode",
        action="store_const",
        const="status",
        default="output",
        help="wait for the run to end without printing its output",
    )
    waiting.add_argument(
        "--detach",
        dest="mode",
        action="store_const",
        const="detach",
        help="only start the run, and print its number",
    )
    run.add_argument(
        "--stop-on-interrupt",
        action="store_true",
        help="on Ctrl-C, stop the task as well as stop following it",
    )

    stop = commands.add_parser("stop", help="stop a task and all it started")
    stop.add_argument("task", metavar="TASK", help="the task to stop")

    status = commands.add_parser(
        "status", help="wait for a task's run to end; print and exit with its code"
    )
    status.add_argument("task", metavar="TASK", help="the task to wait for")

    output = commands.add_parser("output", help="follow the output of a task's run")
    output.add_argument("task", metavar="TASK", help="the task whose output to show")
    output.add_argument(
        "--run",
        dest="run_id",
        type=_run_number,
        metavar="ID",
        help="the run whose output to show (default: the latest)",
    )

    runs = commands.add_parser("runs", help="list a task's runs, newest first")
    runs.add_argument("task", metavar="TASK", help="the task whose runs to list")
    runs.add_argument("--json", action="store_true", help="print Taru's JSON")

    events = commands.add_parser("events", help="print Taru's events as they happen")
    events.add_argument("--json", action="store_true", help="print each event's JSON")
    return parser


def _run_number(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a run number: {text!r}")
    return int(text)


def parse_invocation(argv: Sequence[str], environment: Mapping[str, str]) -> Invocation:
    """
    Read the command line.

    @param argv: the arguments, without the program's name.
    @param environment: the environment, for C{TARU_URL} and C{TARU_USER}.
    @raise SystemExit: with status 2 and a usage message on standard error,
        for options or arguments that make no sense.
    """
    parser = build_parser()
    options = parser.parse_args(argv)

    url = options.url or environment.get(ENVIRONMENT_URL) or DEFAULT_URL
    problem = url_problem(url)
    if problem is not None:
        source = "--url" if options.url else ENVIRONMENT_URL
        parser.error(f"{source}: {problem}")
    url, credentials = split_credentials(url)
    user = options.user
    if user is None:
        user = environment.get(ENVIRONMENT_USER)

    arguments: dict[str, str] = {}
    if options.command == "run":
        try:
            arguments = parse_task_arguments(options.arguments)
        except ValueError as malformed:
            parser.error(str(malformed))

    return Invocation(
        url=url.rstrip("/"),
        user=user or None,
        command=options.command,
        credentials=credentials,
        task=getattr(options, "task", None),
        arguments=arguments,
        json=getattr(options, "json", False),
        mode=getattr(options, "mode", "output"),
        stop_on_interrupt=getattr(options, "stop_on_interrupt", False),
        run_id=getattr(options, "run_id", None),
    )


def url_problem(url: str) -> str | None:
    """
    What is wrong with a base URL for Taru, if anything. The URL is not
    repeated: it may hold a password.
    """
    try:
        parts = urlsplit(url)
        # Reading the port checks it.
        _ = parts.port
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an http:// or https:// address"
    if parts.query or parts.fragment:
        return "a base address takes no query or fragment"
    return None


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """
    Take the name and password for basic authentication out of a URL such as
    C{https://alice:secret@taru.example/}.

    @return: the URL without them, and them if it had them.
    """
    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    host = parts.netloc.rpartition("@")[2]
    credentials = (unquote(parts.username), unquote(parts.password or ""))
    return urlunsplit(parts._replace(netloc=host)), credentials


def parse_task_arguments(given: Sequence[str]) -> dict[str, str]:
    """
    Read a task's arguments from C{NAME=VALUE} words. The value is everything
    after the first C{=}, spaces and further C{=} included.

    @raise ValueError: a word is not C{NAME=VALUE}, names an argument twice,
        or is not UTF-8.
    """
    arguments: dict[str, str] = {}
    for word in given:
        name, equals, value = word.partition("=")
        if not equals or not name:
            raise ValueError(
                f"arguments are given as NAME=VALUE, such as host=localhost;"
                f" not {word!r}"
            )
        try:
            word.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"argument {name!r} is not valid UTF-8") from None
        if name in arguments:
            raise ValueError(f"argument {name!r} is given twice")
        arguments[name] = value
    return arguments
