"""
Typed task arguments: checking the values a request gives and putting them
into the command.

Values are never given to a shell. A command element that is exactly C{$name}
becomes the value as one element, whatever the value contains; any other
element stays as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from taru.config import ArgumentSpec, TaskSpec

INT_MIN = -(2**31)
INT_MAX = 2**31 - 1

# The most characters a 32-bit signed decimal takes: a sign and ten digits.
INT_DIGITS = 11

# The longest value an argument may have, in bytes of UTF-8: far below what
# the system allows for one element of a command line (128 KiB on Linux).
MAX_VALUE_BYTES = 32 * 1024

_CANONICAL_INT = re.compile(r"-?(0|[1-9][0-9]*)")


class ArgumentError(Exception):
    """
    The request's arguments do not fit the task.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class EnumNotReady(ArgumentError):
    """
    An Enum argument's source task has no output to take values from yet.
    """

    def __init__(self, argument: str, source: str) -> None:
        super().__init__(
            f"argument {argument!r} is not ready: its values come from the output"
            f" of task {source!r}, which has none yet; run {source!r} first"
        )
        self.argument = argument
        self.source = source


# Given a task name, the lines of its latest output, or None if it has none.
EnumLines = Callable[[str], "Sequence[str] | None"]


def enum_lines(output: bytes) -> list[str]:
    """
    Split an Enum source's output into the values it permits.

    Lines are split on C{\\n} and lose one trailing C{\\r}. Empty lines and
    lines that are not UTF-8 permit nothing.

    @param output: the source task's output.
    @return: the permitted values, in order.
    """
    values = []
    for raw_line in output.split(b"\n"):
        if raw_line.endswith(b"\r"):
            raw_line = raw_line[:-1]
        if not raw_line:
            continue
        try:
            values.append(raw_line.decode("utf-8"))
        except UnicodeDecodeError:
            continue
    return values


def _check_value(argument: ArgumentSpec, value: str, lines_of: EnumLines) -> str:
    if "\0" in value:
        raise ArgumentError(f"argument {argument.name!r} must not contain NUL")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ArgumentError(
            f"argument {argument.name!r} must be text (it holds a lone surrogate)"
        ) from None
    if size > MAX_VALUE_BYTES:
        raise ArgumentError(
            f"argument {argument.name!r} is {size} bytes long; at most"
            f" {MAX_VALUE_BYTES} are accepted"
        )
    if argument.datatype == "Int":
        if not _CANONICAL_INT.fullmatch(value) or value == "-0":
            raise ArgumentError(
                f"argument {argument.name!r} must be a whole number"
                f" written in decimal, not {value!r}"
            )
        # Length first: Python refuses to convert very long digit strings.
        if len(value) > INT_DIGITS or not INT_MIN <= int(value) <= INT_MAX:
            shown = value if len(value) <= 20 else f"a number of {len(value)} digits"
            raise ArgumentError(
                f"argument {argument.name!r} must be between {INT_MIN}"
                f" and {INT_MAX}, not {shown}"
            )
    elif argument.datatype == "Enum":
        assert argument.enum_source is not None
        permitted = lines_of(argument.enum_source)
        if permitted is None:
            raise EnumNotReady(argument.name, argument.enum_source)
        if value not in permitted:
            raise ArgumentError(
                f"argument {argument.name!r}: {value!r} is not one of the values"
                f" listed by task {argument.enum_source!r}"
            )
    return value


def parse_arguments(
    task: TaskSpec,
    given: Mapping[str, Sequence[str]],
    lines_of: EnumLines,
) -> dict[str, str]:
    """
    Check a request's argument values against a task's argument definitions.

    @param task: the task to be run.
    @param given: each argument name the request gave, with every value it was
        given.
    @param lines_of: looks up the permitted values for Enum arguments.
    @return: one checked value per argument of the task.
    @raise ArgumentError: an argument is missing, unknown, repeated or not
        valid; the message says which and why.
    """
    defined = {argument.name: argument for argument in task.arguments}
    for name in given:
        if name not in defined:
            if defined:
                known = ", ".join(repr(known) for known in defined)
                raise ArgumentError(
                    f"task {task.name!r} has no argument {name!r} (it takes {known})"
                )
            raise ArgumentError(
                f"task {task.name!r} takes no arguments, but {name!r} was given"
            )

    values = {}
    for argument in task.arguments:
        argument_values = given.get(argument.name, ())
        if not argument_values:
            raise ArgumentError(
                f"argument {argument.name!r} ({argument.datatype}) is required"
            )
        if len(argument_values) > 1:
            raise ArgumentError(f"argument {argument.name!r} was given more than once")
        values[argument.name] = _check_value(argument, argument_values[0], lines_of)
    return values


def substitute(command: Sequence[str], values: Mapping[str, str]) -> tuple[str, ...]:
    """
    Put argument values into a command.

    @param command: the configured command.
    @param values: the checked argument values.
    @return: the command with every element that is exactly C{$name}, for a
        given C{name}, replaced by that value; all other elements unchanged.
    """
    return tuple(
        values.get(word[1:], word) if word.startswith("$") else word for word in command
    )
