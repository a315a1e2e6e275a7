"""
Tests for L{taru.arguments}.
"""

from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from taru.arguments import (
    INT_MAX,
    INT_MIN,
    MAX_VALUE_BYTES,
    ArgumentError,
    EnumLines,
    EnumNotReady,
    enum_lines,
    parse_arguments,
    substitute,
)
from taru.config import ArgumentSpec, TaskSpec

COUNT = ArgumentSpec(name="count", datatype="Int")
NOTE = ArgumentSpec(name="note", datatype="String")
HOST = ArgumentSpec(name="host", datatype="Enum", enum_source="hosts")

# Text a String argument accepts: anything without NUL.
STRING_VALUES = st.text(max_size=2000).filter(lambda text: "\0" not in text)

# Names an argument may have.
ARGUMENT_NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)


def task_taking(*arguments: ArgumentSpec) -> TaskSpec:
    """
    A task whose command uses each of C{arguments} as a whole element.
    """
    return TaskSpec(
        name="job",
        command=("prog", *(f"${argument.name}" for argument in arguments)),
        arguments=arguments,
    )


def no_enum_output(source: str) -> Sequence[str] | None:
    """
    Enum lines of a Taru where no task has run yet.
    """
    return None


class EnumLinesRecorder:
    """
    Answers Enum line look-ups from fixed outputs and remembers each task
    asked about.

    @ivar asked: the task names looked up, in order.
    """

    def __init__(self, outputs: dict[str, Sequence[str]]) -> None:
        self.outputs = outputs
        self.asked: list[str] = []

    def __call__(self, source: str) -> Sequence[str] | None:
        self.asked.append(source)
        return self.outputs.get(source)


def enum_output(**outputs: Sequence[str]) -> EnumLinesRecorder:
    """
    Enum lines taken from C{outputs}, by task name.
    """
    return EnumLinesRecorder(outputs)


class ArgumentTestCase(SynchronousTestCase):
    """
    A test case that checks single argument values.
    """

    def outcome(
        self,
        argument: ArgumentSpec,
        value: str,
        lines_of: EnumLines = no_enum_output,
    ) -> tuple[str, str]:
        """
        The value C{parse_arguments} gives for C{argument} set to C{value},
        or the message of the L{ArgumentError} it raises.
        """
        try:
            values = parse_arguments(
                task_taking(argument), {argument.name: [value]}, lines_of
            )
        except ArgumentError as error:
            return ("rejected", str(error))
        return ("accepted", values[argument.name])


class IntTests(ArgumentTestCase):
    """
    An Int is a 32-bit signed whole number in canonical decimal.
    """

    def test_accepts_canonical(self) -> None:
        """
        Canonical decimals in range are accepted unchanged, including both
        ends of the range.
        """
        values = ("0", "7", "-7", "10", "1000", "2147483647", "-2147483648")

        outcomes = {value: self.outcome(COUNT, value) for value in values}

        self.assertEqual(outcomes, {value: ("accepted", value) for value in values})

    def test_rejects_non_canonical(self) -> None:
        """
        Signs, leading zeros, negative zero, spaces, fractions, other bases,
        separators, exponents and non-ASCII digits are all refused as not a
        decimal whole number.
        """
        values = (
            "+1",
            "01",
            "00",
            "-0",
            "-01",
            " 1",
            "1 ",
            "1.0",
            "1e3",
            "1_000",
            "",
            "-",
            "--1",
            "0x10",
            "0b1",
            "ten",
            "١",
            "１",
            "²",
        )

        outcomes = {value: self.outcome(COUNT, value) for value in values}

        self.assertEqual(
            outcomes,
            {
                value: (
                    "rejected",
                    f"argument 'count' must be a whole number written in decimal,"
                    f" not {value!r}",
                )
                for value in values
            },
        )

    def test_rejects_trailing_newline(self) -> None:
        """
        A number followed by a line break is refused; it is not canonical
        decimal.
        """
        outcome = self.outcome(COUNT, "1\n")

        self.assertEqual(
            outcome,
            (
                "rejected",
                "argument 'count' must be a whole number written in decimal,"
                " not '1\\n'",
            ),
        )

    def test_rejects_out_of_range(self) -> None:
        """
        Numbers one past either end of the 32-bit range, and far beyond, are
        refused, naming the range.
        """
        values = ("2147483648", "-2147483649", "99999999999999999999")

        outcomes = {value: self.outcome(COUNT, value) for value in values}

        self.assertEqual(
            outcomes,
            {
                value: (
                    "rejected",
                    "argument 'count' must be between -2147483648 and 2147483647,"
                    f" not {value}",
                )
                for value in values
            },
        )

    @given(st.integers(min_value=INT_MIN, max_value=INT_MAX))
    def test_round_trip(self, number: int) -> None:
        """
        Every 32-bit signed integer, written in decimal, is accepted as
        written.
        """
        outcome = self.outcome(COUNT, str(number))

        self.assertEqual(outcome, ("accepted", str(number)))

    @given(st.integers().filter(lambda number: not INT_MIN <= number <= INT_MAX))
    def test_out_of_range_rejected(self, number: int) -> None:
        """
        Every integer outside the 32-bit signed range is refused.
        """
        verdict, _ = self.outcome(COUNT, str(number))

        self.assertEqual(verdict, "rejected")

    @given(
        st.one_of(
            st.text(),
            st.from_regex(r"[-+ 0]?[0-9]{1,11}[\n ]?", fullmatch=True),
        )
    )
    def test_accepts_exactly_canonical(self, value: str) -> None:
        """
        A text is accepted as an Int exactly when it is how Python writes
        some 32-bit signed integer.
        """
        try:
            number = int(value)
        except ValueError:
            canonical = False
        else:
            canonical = str(number) == value and INT_MIN <= number <= INT_MAX

        verdict, _ = self.outcome(COUNT, value)

        self.assertEqual(
            verdict, "accepted" if canonical else "rejected", f"value: {value!r}"
        )


class StringTests(ArgumentTestCase):
    """
    A String is any text without NUL.
    """

    def test_accepts_anything_but_nul(self) -> None:
        """
        Empty text, spaces, line breaks, shell syntax, placeholders and
        non-ASCII text are all accepted unchanged.
        """
        values = ("", " ", "a b", "\n", "\r\n", "; rm -rf /", "$(id)", "$host", "ü☃")

        outcomes = {value: self.outcome(NOTE, value) for value in values}

        self.assertEqual(outcomes, {value: ("accepted", value) for value in values})

    def test_rejects_nul(self) -> None:
        """
        Text containing NUL is refused: no process can receive it.
        """
        outcome = self.outcome(NOTE, "a\0b")

        self.assertEqual(outcome, ("rejected", "argument 'note' must not contain NUL"))

    def test_length_limit(self) -> None:
        """
        A value of up to L{MAX_VALUE_BYTES} bytes is accepted; a longer one
        is refused, saying how long it is and may be, counting UTF-8 bytes.
        """
        longest = "x" * MAX_VALUE_BYTES
        too_long = "é" * (MAX_VALUE_BYTES // 2 + 1)

        self.assertEqual(self.outcome(NOTE, longest), ("accepted", longest))
        self.assertEqual(
            self.outcome(NOTE, too_long),
            (
                "rejected",
                f"argument 'note' is {MAX_VALUE_BYTES + 2} bytes long;"
                f" at most {MAX_VALUE_BYTES} are accepted",
            ),
        )

    @given(STRING_VALUES)
    def test_reaches_command_as_one_element(self, value: str) -> None:
        """
        Every accepted String value reaches the command exactly, as a single
        element.
        """
        task = task_taking(NOTE)

        values = parse_arguments(task, {"note": [value]}, no_enum_output)
        argv = substitute(task.command, values)

        self.assertEqual(argv, ("prog", value))


class EnumTests(ArgumentTestCase):
    """
    An Enum accepts only a line of its source task's latest output.
    """

    def test_accepts_listed_value(self) -> None:
        """
        A value equal to one of the source's lines is accepted.
        """
        lines_of = enum_output(hosts=["alpha", "beta"])

        outcome = self.outcome(HOST, "beta", lines_of)

        self.assertEqual(outcome, ("accepted", "beta"))

    def test_asks_for_its_source(self) -> None:
        """
        The permitted values are looked up under the argument's source task.
        """
        lines_of = enum_output(hosts=["alpha"])

        self.outcome(HOST, "alpha", lines_of)

        self.assertEqual(lines_of.asked, ["hosts"])

    def test_rejects_unlisted_values(self) -> None:
        """
        Values that are not exactly a listed line are refused: other text,
        other case, extra spaces, a line break, a prefix, several lines.
        """
        lines_of = enum_output(hosts=["alpha", "beta"])
        values = ("gamma", "Alpha", "alpha ", " alpha", "alpha\n", "alp", "")

        outcomes = {value: self.outcome(HOST, value, lines_of) for value in values}

        self.assertEqual(
            outcomes,
            {
                value: (
                    "rejected",
                    f"argument 'host': {value!r} is not one of the values"
                    " listed by task 'hosts'",
                )
                for value in values
            },
        )

    def test_rejects_joined_lines(self) -> None:
        """
        Two permitted lines joined by a line break are not a permitted value.
        """
        lines_of = enum_output(hosts=["alpha", "beta"])

        verdict, _ = self.outcome(HOST, "alpha\nbeta", lines_of)

        self.assertEqual(verdict, "rejected")

    def test_not_ready(self) -> None:
        """
        Without output from the source task, the argument is not ready, and
        the message names the argument and the source to run.
        """
        error = self.assertRaises(
            EnumNotReady,
            parse_arguments,
            task_taking(HOST),
            {"host": ["alpha"]},
            no_enum_output,
        )

        self.assertEqual(
            (error.argument, error.source, str(error)),
            (
                "host",
                "hosts",
                "argument 'host' is not ready: its values come from the output"
                " of task 'hosts', which has none yet; run 'hosts' first",
            ),
        )

    def test_not_ready_is_argument_error(self) -> None:
        """
        Not being ready is a kind of argument error.
        """
        self.assertTrue(issubclass(EnumNotReady, ArgumentError))

    def test_empty_output_permits_nothing(self) -> None:
        """
        A source that ran but printed nothing is ready and permits no value,
        not even an empty one.
        """
        lines_of = enum_output(hosts=enum_lines(b""))

        verdict, _ = self.outcome(HOST, "", lines_of)

        self.assertEqual(verdict, "rejected")

    def test_from_output(self) -> None:
        """
        Values from a source's raw output are accepted line by line; blank
        lines between them do not permit an empty value.
        """
        lines_of = enum_output(hosts=enum_lines(b"alpha\r\n\r\nbeta\n\n"))
        values = ("alpha", "beta", "", "alpha\r")

        outcomes = {value: self.outcome(HOST, value, lines_of)[0] for value in values}

        self.assertEqual(
            outcomes,
            {
                "alpha": "accepted",
                "beta": "accepted",
                "": "rejected",
                "alpha\r": "rejected",
            },
        )

    def test_other_datatypes_do_not_look_up(self) -> None:
        """
        Tasks without Enum arguments never look up any task's output.
        """
        lines_of = enum_output()

        parse_arguments(
            task_taking(COUNT, NOTE), {"count": ["1"], "note": ["x"]}, lines_of
        )

        self.assertEqual(lines_of.asked, [])


class EnumLinesTests(SynchronousTestCase):
    """
    L{enum_lines} splits a source task's output into permitted values.
    """

    def test_splits_on_newline(self) -> None:
        """
        Each line is one value, in order; the final newline ends the last
        line rather than starting an empty one.
        """
        self.assertEqual(
            enum_lines(b"alpha\nbeta\ngamma\n"), ["alpha", "beta", "gamma"]
        )

    def test_last_line_without_newline(self) -> None:
        """
        A last line without a newline is still a value.
        """
        self.assertEqual(enum_lines(b"alpha\nbeta"), ["alpha", "beta"])

    def test_drops_one_carriage_return(self) -> None:
        """
        One carriage return before the newline is dropped; a second stays.
        """
        self.assertEqual(enum_lines(b"alpha\r\nbeta\r\r\n"), ["alpha", "beta\r"])

    def test_carriage_return_is_not_a_separator(self) -> None:
        """
        A carriage return inside a line does not split it.
        """
        self.assertEqual(enum_lines(b"al\rpha\n"), ["al\rpha"])

    def test_empty_lines_permit_nothing(self) -> None:
        """
        Empty lines, and lines holding only a carriage return, are no values.
        """
        self.assertEqual(enum_lines(b"\nalpha\n\n\r\n\nbeta\n\n"), ["alpha", "beta"])

    def test_empty_output(self) -> None:
        """
        Empty output permits nothing.
        """
        self.assertEqual(enum_lines(b""), [])

    def test_spaces_are_kept(self) -> None:
        """
        Spaces are part of a line; a line of spaces is a value.
        """
        self.assertEqual(enum_lines(b" alpha \n  \n"), [" alpha ", "  "])

    def test_utf8(self) -> None:
        """
        Lines are decoded as UTF-8; a line that is not UTF-8 permits nothing
        while the others still count.
        """
        self.assertEqual(
            enum_lines("zürich\n".encode() + b"\xff\xfe\nbern\n"), ["zürich", "bern"]
        )

    @given(
        st.lists(
            st.text(
                alphabet=st.characters(
                    exclude_characters="\r\n", exclude_categories=["Cs"]
                )
            )
        )
    )
    def test_round_trip(self, lines: list[str]) -> None:
        """
        Lines written one per line, in any line-ending style, come back as
        the non-empty ones, in order.
        """
        for ending in (b"\n", b"\r\n"):
            output = b"".join(line.encode() + ending for line in lines)

            self.assertEqual(enum_lines(output), [line for line in lines if line])


class ArgumentSetTests(SynchronousTestCase):
    """
    A request must give each of a task's arguments exactly once and nothing
    else.
    """

    def test_all_given(self) -> None:
        """
        With every argument given once and valid, each gets its value.
        """
        task = task_taking(COUNT, NOTE, HOST)

        values = parse_arguments(
            task,
            {"note": ["hi"], "host": ["alpha"], "count": ["3"]},
            enum_output(hosts=["alpha"]),
        )

        self.assertEqual(values, {"count": "3", "note": "hi", "host": "alpha"})

    def test_no_arguments(self) -> None:
        """
        A task without arguments, given none, gets no values.
        """
        values = parse_arguments(task_taking(), {}, no_enum_output)

        self.assertEqual(values, {})

    def test_missing(self) -> None:
        """
        An argument the request leaves out is required; the message names it
        and its datatype.
        """
        error = self.assertRaises(
            ArgumentError,
            parse_arguments,
            task_taking(COUNT, NOTE),
            {"count": ["3"]},
            no_enum_output,
        )

        self.assertEqual(str(error), "argument 'note' (String) is required")

    def test_given_without_value(self) -> None:
        """
        An argument named with no value at all is as missing as one left out.
        """
        error = self.assertRaises(
            ArgumentError,
            parse_arguments,
            task_taking(COUNT),
            {"count": []},
            no_enum_output,
        )

        self.assertEqual(str(error), "argument 'count' (Int) is required")

    def test_unknown(self) -> None:
        """
        An argument the task does not take is refused, listing those it does.
        """
        error = self.assertRaises(
            ArgumentError,
            parse_arguments,
            task_taking(COUNT, NOTE),
            {"count": ["3"], "note": ["hi"], "colour": ["red"]},
            no_enum_output,
        )

        self.assertEqual(
            str(error), "task 'job' has no argument 'colour' (it takes 'count', 'note')"
        )

    def test_unknown_without_arguments(self) -> None:
        """
        Any argument given to a task that takes none is refused, saying so.
        """
        error = self.assertRaises(
            ArgumentError,
            parse_arguments,
            task_taking(),
            {"colour": ["red"]},
            no_enum_output,
        )

        self.assertEqual(
            str(error), "task 'job' takes no arguments, but 'colour' was given"
        )

    def test_repeated(self) -> None:
        """
        An argument given more than once is refused, even with equal values.
        """
        error = self.assertRaises(
            ArgumentError,
            parse_arguments,
            task_taking(COUNT),
            {"count": ["3", "3"]},
            no_enum_output,
        )

        self.assertEqual(str(error), "argument 'count' was given more than once")

    def test_names_are_case_sensitive(self) -> None:
        """
        An argument name in another case is a different, unknown argument.
        """
        error = self.assertRaises(
            ArgumentError,
            parse_arguments,
            task_taking(COUNT),
            {"Count": ["3"]},
            no_enum_output,
        )

        self.assertEqual(
            str(error), "task 'job' has no argument 'Count' (it takes 'count')"
        )

    def test_error_message_attribute(self) -> None:
        """
        An L{ArgumentError} carries its message for the client.
        """
        error = ArgumentError("argument 'count' was given more than once")

        self.assertEqual(
            (error.message, str(error)),
            (
                "argument 'count' was given more than once",
                "argument 'count' was given more than once",
            ),
        )


class SubstituteTests(SynchronousTestCase):
    """
    L{substitute} replaces whole C{$name} elements with values, and nothing
    else.
    """

    def test_whole_element_becomes_one_element(self) -> None:
        """
        An element that is exactly C{$name} becomes the value as one element,
        spaces and all.
        """
        argv = substitute(("echo", "$text"), {"text": "a b  c"})

        self.assertEqual(argv, ("echo", "a b  c"))

    def test_undefined_stays(self) -> None:
        """
        A placeholder for a name with no value stays as written.
        """
        argv = substitute(("echo", "$host", "$asdf"), {"host": "example"})

        self.assertEqual(argv, ("echo", "example", "$asdf"))

    def test_substrings_untouched(self) -> None:
        """
        Elements that merely contain C{$name} are left alone, as are
        elements naming a longer or braced name.
        """
        command = ("echo", "pre$host", "$host.txt", "${host}", "$hostname", "$$host")

        argv = substitute(command, {"host": "example"})

        self.assertEqual(argv, command)

    def test_lone_dollar(self) -> None:
        """
        A lone C{$} names no argument and stays as written.
        """
        argv = substitute(("echo", "$", "$host"), {"host": "example"})

        self.assertEqual(argv, ("echo", "$", "example"))

    def test_values_not_resubstituted(self) -> None:
        """
        A value that looks like a placeholder is passed on literally.
        """
        argv = substitute(
            ("echo", "$first", "$second"), {"first": "$second", "second": "x"}
        )

        self.assertEqual(argv, ("echo", "$second", "x"))

    def test_repeated_placeholder(self) -> None:
        """
        A placeholder used twice is replaced at both places.
        """
        argv = substitute(("cp", "$file", "$file"), {"file": "a"})

        self.assertEqual(argv, ("cp", "a", "a"))

    def test_empty_value_keeps_its_place(self) -> None:
        """
        An empty value becomes an empty element; it does not vanish.
        """
        argv = substitute(("echo", "$note", "end"), {"note": ""})

        self.assertEqual(argv, ("echo", "", "end"))

    def test_program_placeholder(self) -> None:
        """
        The program itself may be a placeholder.
        """
        argv = substitute(("$tool", "--version"), {"tool": "git"})

        self.assertEqual(argv, ("git", "--version"))

    @given(
        st.lists(st.one_of(st.text(), ARGUMENT_NAMES.map(lambda name: f"${name}"))),
        st.dictionaries(ARGUMENT_NAMES, st.text()),
    )
    def test_length_unchanged(self, command: list[str], values: dict[str, str]) -> None:
        """
        Substitution never adds or removes command elements.
        """
        argv = substitute(command, values)

        self.assertEqual(len(argv), len(command))

    @given(
        st.lists(st.one_of(st.text(), ARGUMENT_NAMES.map(lambda name: f"${name}"))),
        st.dictionaries(ARGUMENT_NAMES, st.text()),
    )
    def test_each_element(self, command: list[str], values: dict[str, str]) -> None:
        """
        Each element becomes its value if it is exactly C{$name} for a given
        name, and is otherwise kept as written.
        """
        expected = tuple(
            values[word[1:]] if word[:1] == "$" and word[1:] in values else word
            for word in command
        )

        argv = substitute(command, values)

        self.assertEqual(argv, expected)
