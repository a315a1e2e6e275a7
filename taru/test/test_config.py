"""
Tests for L{taru.config}.
"""

import os
from textwrap import dedent

from hypothesis import given
from hypothesis import strategies as st
from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase

from taru.config import (
    DEFAULT_HISTORY,
    ArgumentSpec,
    Config,
    ConfigError,
    TaskSpec,
    UserSpec,
    load_config,
    parse_config,
)

EXAMPLE = FilePath(__file__).parent().parent().parent().child("examples")

# The configuration the specification uses as its example.
SPEC_EXAMPLE = """\
heartbeat: 1
tasks:
  ping:
    command: [ping, -c10, $host]
    meta:
      description: Ping a host
    arguments:
    - name: host
      datatype: Enum
      enum_source: hosts
  hosts:
    command: [cat, some_host_list]
  download_database:
    command: [pg_dump, some, args]
    buffered: false
    headers:
      content-disposition: "attachment; filename=dump.sql"
    meta:
      description: Download a database
      download: true
users:
  root:
    can_run: [ping]
    can_view_status: [ping, download_database]
    can_view_output: [ping]
"""


def parse(text: str) -> Config:
    """
    Parse an indented YAML snippet.
    """
    return parse_config(dedent(text))


class ConfigTestCase(SynchronousTestCase):
    """
    A test case that checks the errors a configuration gives.
    """

    def assert_config_error(self, text: str, expected: str) -> ConfigError:
        """
        Parsing C{text} (dedented) fails with a L{ConfigError} that reads
        C{expected}.
        """
        error: ConfigError = self.assertRaises(ConfigError, parse_config, dedent(text))
        self.assertEqual(str(error), expected)
        return error


class ExampleTests(SynchronousTestCase):
    """
    The configurations shipped and documented parse as written.
    """

    def test_spec_example(self) -> None:
        """
        The specification's example becomes exactly the tasks, users and
        heartbeat it describes, tasks in the file's order.
        """
        expected = Config(
            tasks={
                "ping": TaskSpec(
                    name="ping",
                    command=("ping", "-c10", "$host"),
                    meta={"description": "Ping a host"},
                    arguments=(
                        ArgumentSpec(name="host", datatype="Enum", enum_source="hosts"),
                    ),
                ),
                "hosts": TaskSpec(name="hosts", command=("cat", "some_host_list")),
                "download_database": TaskSpec(
                    name="download_database",
                    command=("pg_dump", "some", "args"),
                    buffered=False,
                    headers=(("content-disposition", "attachment; filename=dump.sql"),),
                    meta={"description": "Download a database", "download": True},
                ),
            },
            users={
                "root": UserSpec(
                    name="root",
                    can_run=frozenset({"ping"}),
                    can_view_status=frozenset({"ping", "download_database"}),
                    can_view_output=frozenset({"ping"}),
                )
            },
            heartbeat=1.0,
        )

        config = parse_config(SPEC_EXAMPLE)

        self.assertEqual(config, expected)
        self.assertEqual(list(config.tasks), ["ping", "hosts", "download_database"])

    def test_example_file(self) -> None:
        """
        The example configuration in C{examples/taru.yml} loads: its tasks in
        order, its typed arguments, its one unbuffered download, no users.
        """
        path = EXAMPLE.child("taru.yml").path

        config = load_config(path)

        self.assertEqual(
            list(config.tasks),
            [
                "uptime",
                "countdown",
                "progress",
                "hosts",
                "greet",
                "repeat",
                "environment",
            ],
        )
        self.assertEqual(config.heartbeat, 15.0)
        self.assertIsNone(config.users)
        self.assertEqual(config.tasks["greet"].command, ("echo", "hello", "$host"))
        self.assertEqual(
            config.tasks["greet"].arguments,
            (ArgumentSpec(name="host", datatype="Enum", enum_source="hosts"),),
        )
        self.assertEqual(
            config.tasks["repeat"].arguments,
            (
                ArgumentSpec(name="times", datatype="Int"),
                ArgumentSpec(name="text", datatype="String"),
            ),
        )
        self.assertEqual(
            config.tasks["hosts"].command[1], "localhost\\n127.0.0.1\\n::1\\n"
        )
        environment = config.tasks["environment"]
        self.assertFalse(environment.buffered)
        self.assertEqual(
            environment.headers,
            (("content-disposition", 'attachment; filename="environment.txt"'),),
        )
        self.assertEqual(
            environment.meta,
            {
                "description": "Downloads the environment a task runs with",
                "download": True,
            },
        )
        self.assertEqual(
            [name for name, task in config.tasks.items() if not task.buffered],
            ["environment"],
        )


class DefaultTests(SynchronousTestCase):
    """
    What a configuration leaves out takes its documented default.
    """

    def test_task_defaults(self) -> None:
        """
        A task with only a command is buffered, sends no extra headers, has
        empty meta and takes no arguments.
        """
        config = parse(
            """
            tasks:
              uptime:
                command: [uptime]
            """
        )

        self.assertEqual(
            config.tasks["uptime"],
            TaskSpec(
                name="uptime",
                command=("uptime",),
                buffered=True,
                headers=(),
                meta={},
                arguments=(),
            ),
        )

    def test_null_fields_are_defaults(self) -> None:
        """
        C{headers}, C{meta} and C{arguments} written with no value mean the
        same as leaving them out.
        """
        config = parse(
            """
            tasks:
              uptime:
                command: [uptime]
                headers:
                meta:
                arguments:
            """
        )

        self.assertEqual(
            config.tasks["uptime"], TaskSpec(name="uptime", command=("uptime",))
        )

    def test_no_heartbeat(self) -> None:
        """
        Without a C{heartbeat}, no pings are configured.
        """
        config = parse("tasks: {uptime: {command: [uptime]}}")

        self.assertIsNone(config.heartbeat)

    def test_no_users(self) -> None:
        """
        Without a C{users} section, users are L{None}: access is open.
        """
        config = parse("tasks: {uptime: {command: [uptime]}}")

        self.assertIsNone(config.users)

    def test_empty_users_section(self) -> None:
        """
        An empty C{users} mapping configures users, none of them known; it is
        not the same as leaving the section out.
        """
        config = parse("tasks: {uptime: {command: [uptime]}}\nusers: {}")

        self.assertEqual(config.users, {})

    def test_empty_tasks_section(self) -> None:
        """
        A C{tasks} section with no tasks gives a configuration with no tasks.
        """
        config = parse("tasks:")

        self.assertEqual(config.tasks, {})

    def test_tasks_keep_file_order(self) -> None:
        """
        Tasks are listed in the order the file gives them, not sorted.
        """
        config = parse(
            """
            tasks:
              zebra: {command: [z]}
              apple: {command: [a]}
              mango: {command: [m]}
            """
        )

        self.assertEqual(list(config.tasks), ["zebra", "apple", "mango"])

    def test_bytes_input(self) -> None:
        """
        Configuration text may be given as UTF-8 bytes, as read from a file.
        """
        config = parse_config("tasks: {grüß: {command: [echo, ünïcode]}}".encode())

        self.assertEqual(config.tasks["grüß"].command, ("echo", "ünïcode"))


class CommandTests(ConfigTestCase):
    """
    A task's command is a non-empty list of text, kept exactly as written.
    """

    def test_numbers_keep_written_text(self) -> None:
        """
        Numbers in a command keep the text they were written with, not the
        value YAML reads from them.
        """
        config = parse(
            """
            tasks:
              nap:
                command: [sleep, 010, 1.50, 0x10, 1_000, -7, 1:30, .inf]
            """
        )

        self.assertEqual(
            config.tasks["nap"].command,
            ("sleep", "010", "1.50", "0x10", "1_000", "-7", "1:30", ".inf"),
        )

    @given(
        st.from_regex(r"-?[0-9]{1,12}(\.[0-9]{0,6})?", fullmatch=True),
    )
    def test_any_number_keeps_written_text(self, written: str) -> None:
        """
        Whatever decimal number a command holds, it reaches the command as the
        characters written.
        """
        config = parse_config(f"tasks: {{nap: {{command: [sleep, {written}]}}}}")

        self.assertEqual(config.tasks["nap"].command, ("sleep", written))

    def test_quoted_words_are_text(self) -> None:
        """
        Quoting a word that YAML would read as a boolean or null passes it as
        that text.
        """
        config = parse(
            """
            tasks:
              say:
                command: [echo, "true", "no", "null", "~"]
            """
        )

        self.assertEqual(
            config.tasks["say"].command, ("echo", "true", "no", "null", "~")
        )

    def test_dollar_words_are_kept(self) -> None:
        """
        Argument placeholders stay in the parsed command as written; they are
        filled in only when the task runs.
        """
        config = parse("tasks: {say: {command: [echo, $host, pre$host, '${host}']}}")

        self.assertEqual(
            config.tasks["say"].command, ("echo", "$host", "pre$host", "${host}")
        )

    def test_boolean_rejected_with_hint(self) -> None:
        """
        A boolean in a command is refused, naming the element and suggesting
        quotes.
        """
        self.assert_config_error(
            "tasks: {say: {command: [echo, true]}}",
            "tasks.say.command[1]: must be a string, not a boolean (true)"
            " (quote it to pass it as text)",
        )

    def test_yaml_yes_rejected_with_hint(self) -> None:
        """
        The YAML 1.1 boolean C{no} is refused like C{false}, with the hint to
        quote it.
        """
        self.assert_config_error(
            "tasks: {say: {command: [echo, hello, no]}}",
            "tasks.say.command[2]: must be a string, not a boolean (false)"
            " (quote it to pass it as text)",
        )

    def test_null_rejected_with_hint(self) -> None:
        """
        A null in a command is refused, naming the element and suggesting
        quotes.
        """
        self.assert_config_error(
            "tasks: {say: {command: [echo, ~]}}",
            "tasks.say.command[1]: must be a string, not nothing (null)"
            " (quote it to pass it as text)",
        )

    def test_nested_list_rejected(self) -> None:
        """
        A list inside a command is refused, naming the element.
        """
        self.assert_config_error(
            "tasks: {say: {command: [echo, [a, b]]}}",
            "tasks.say.command[1]: must be a string, not a list",
        )

    def test_missing_command(self) -> None:
        """
        A task without a command is refused.
        """
        self.assert_config_error(
            "tasks: {say: {buffered: true}}", "tasks.say.command: is required"
        )

    def test_task_without_body(self) -> None:
        """
        A task name with nothing under it is refused for lacking a command.
        """
        self.assert_config_error("tasks: {say: }", "tasks.say.command: is required")

    def test_empty_command(self) -> None:
        """
        An empty command list is refused.
        """
        self.assert_config_error(
            "tasks: {say: {command: []}}", "tasks.say.command: must not be empty"
        )

    def test_empty_program(self) -> None:
        """
        A command whose program is the empty string is refused.
        """
        self.assert_config_error(
            "tasks: {say: {command: ['', hello]}}",
            "tasks.say.command[0]: the program must not be empty",
        )

    def test_command_not_a_list(self) -> None:
        """
        A command written as one string is refused: it would need a shell to
        split it.
        """
        self.assert_config_error(
            "tasks: {say: {command: echo hello}}",
            "tasks.say.command: must be a list, not a string ('echo hello')",
        )

    def test_nul_in_command(self) -> None:
        """
        A command element containing NUL is refused: no process can receive
        it.
        """
        self.assert_config_error(
            'tasks: {say: {command: [echo, "a\\0b"]}}',
            "tasks.say.command[1]: must not contain a NUL character",
        )


class WrongTypeTests(ConfigTestCase):
    """
    A value of the wrong type is refused, naming its place and what it was.
    """

    def test_tasks_not_a_mapping(self) -> None:
        """
        C{tasks} must map names to tasks.
        """
        self.assert_config_error(
            "tasks: [uptime]", "tasks: must be a mapping, not a list"
        )

    def test_task_not_a_mapping(self) -> None:
        """
        A task must be a mapping of its fields.
        """
        self.assert_config_error(
            "tasks: {uptime: [uptime]}", "tasks.uptime: must be a mapping, not a list"
        )

    def test_buffered_not_boolean(self) -> None:
        """
        C{buffered} must be a boolean; a quoted word is not one.
        """
        self.assert_config_error(
            "tasks: {env: {command: [env], buffered: 'no'}}",
            "tasks.env.buffered: must be true or false, not a string ('no')",
        )

    def test_buffered_number(self) -> None:
        """
        C{buffered} must be a boolean; C{0} is not one.
        """
        self.assert_config_error(
            "tasks: {env: {command: [env], buffered: 0}}",
            "tasks.env.buffered: must be true or false, not a number (0)",
        )

    def test_headers_not_a_mapping(self) -> None:
        """
        C{headers} must map header names to values.
        """
        self.assert_config_error(
            "tasks: {env: {command: [env], headers: [x-a]}}",
            "tasks.env.headers: must be a mapping, not a list",
        )

    def test_headers_empty_list(self) -> None:
        """
        An empty list is not a mapping either, so it is refused as
        C{headers}.
        """
        self.assert_config_error(
            "tasks: {env: {command: [env], headers: []}}",
            "tasks.env.headers: must be a mapping, not a list",
        )

    def test_meta_not_a_mapping(self) -> None:
        """
        C{meta} must be a mapping.
        """
        self.assert_config_error(
            "tasks: {env: {command: [env], meta: description}}",
            "tasks.env.meta: must be a mapping, not a string ('description')",
        )

    def test_meta_false(self) -> None:
        """
        C{false} is not a mapping, so it is refused as C{meta}.
        """
        self.assert_config_error(
            "tasks: {env: {command: [env], meta: false}}",
            "tasks.env.meta: must be a mapping, not a boolean (false)",
        )

    def test_arguments_not_a_list(self) -> None:
        """
        C{arguments} must be a list.
        """
        self.assert_config_error(
            "tasks: {say: {command: [echo], arguments: {name: x}}}",
            "tasks.say.arguments: must be a list, not a mapping",
        )

    def test_arguments_empty_mapping(self) -> None:
        """
        An empty mapping is not a list, so it is refused as C{arguments}.
        """
        self.assert_config_error(
            "tasks: {say: {command: [echo], arguments: {}}}",
            "tasks.say.arguments: must be a list, not a mapping",
        )

    def test_argument_not_a_mapping(self) -> None:
        """
        Each argument must be a mapping of its fields.
        """
        self.assert_config_error(
            "tasks: {say: {command: [echo], arguments: [host]}}",
            "tasks.say.arguments[0]: must be a mapping, not a string ('host')",
        )

    def test_argument_name_not_a_string(self) -> None:
        """
        An argument's name must be a string.
        """
        self.assert_config_error(
            "tasks: {say: {command: [echo], arguments: [{name: 1, datatype: Int}]}}",
            "tasks.say.arguments[0].name: must be a string, not a number (1)",
        )

    def test_users_not_a_mapping(self) -> None:
        """
        C{users} must map user names to permissions.
        """
        self.assert_config_error(
            "tasks: {}\nusers: [root]", "users: must be a mapping, not a list"
        )

    def test_user_not_a_mapping(self) -> None:
        """
        A user must be a mapping of permissions.
        """
        self.assert_config_error(
            "tasks: {}\nusers: {root: [can_run]}",
            "users.root: must be a mapping, not a list",
        )

    def test_permission_not_a_list(self) -> None:
        """
        A permission must be a list of task names, even for one task.
        """
        self.assert_config_error(
            """
            tasks: {ping: {command: [ping]}}
            users:
              root: {can_run: ping, can_view_status: [], can_view_output: []}
            """,
            "users.root.can_run: must be a list, not a string ('ping')",
        )

    def test_permission_entry_not_a_string(self) -> None:
        """
        Each entry of a permission list must be a task name.
        """
        self.assert_config_error(
            """
            tasks: {ping: {command: [ping]}}
            users:
              root: {can_run: [ping, 7], can_view_status: [], can_view_output: []}
            """,
            "users.root.can_run[1]: must be a string, not a number (7)",
        )


class TrustedProxyTests(SynchronousTestCase):
    """
    C{trusted_proxies} lists the peers that may name a user.
    """

    def test_default(self) -> None:
        """
        Without the key, this machine's loopback addresses are trusted.
        """
        config = parse_config("tasks: {}")

        self.assertEqual(
            [str(network) for network in config.trusted_proxies],
            ["127.0.0.0/8", "::1/128"],
        )

    def test_addresses_and_networks(self) -> None:
        """
        Addresses and networks of either family are read as networks.
        """
        config = parse_config(
            "tasks: {}\ntrusted_proxies: [10.1.2.3, 192.168.0.0/16, 'fd00::/8']"
        )

        self.assertEqual(
            [str(network) for network in config.trusted_proxies],
            ["10.1.2.3/32", "192.168.0.0/16", "fd00::/8"],
        )

    def test_invalid(self) -> None:
        """
        Anything but a list of addresses or networks is refused, naming the
        entry.
        """
        self.assert_config_error(
            "tasks: {}\ntrusted_proxies: [10.0.0.1, 10.0.0.300]",
            "trusted_proxies[1]: '10.0.0.300' is not an IP address or network",
        )
        self.assert_config_error(
            "tasks: {}\ntrusted_proxies: 10.0.0.1",
            "trusted_proxies: must be a list of addresses or networks,"
            " not a string ('10.0.0.1')",
        )

    def assert_config_error(self, text: str, expected: str) -> None:
        with self.assertRaises(ConfigError) as caught:
            parse_config(text)
        self.assertEqual(str(caught.exception), expected)


class UnknownKeyTests(ConfigTestCase):
    """
    A key Taru does not know is refused at every level, so that a typo is not
    silently ignored.
    """

    def test_top_level(self) -> None:
        """
        An unknown top-level key is refused, listing the known ones.
        """
        self.assert_config_error(
            "tasks: {}\nheartbeet: 1",
            "heartbeet: unknown key"
            " (expected one of: heartbeat, history, tasks, trusted_proxies, users)",
        )

    def test_task(self) -> None:
        """
        An unknown task field is refused, listing the known ones.
        """
        self.assert_config_error(
            "tasks: {say: {command: [echo], buffer: false}}",
            "tasks.say.buffer: unknown key"
            " (expected one of: arguments, buffered, command, environment, headers,"
            " history, meta, systemd_properties, timeout, working_directory)",
        )

    def test_argument(self) -> None:
        """
        An unknown argument field is refused, listing the known ones.
        """
        self.assert_config_error(
            """
            tasks:
              say:
                command: [echo, $word]
                arguments:
                - {name: word, datatype: String, default: hi}
            """,
            "tasks.say.arguments[0].default: unknown key"
            " (expected one of: datatype, enum_source, name)",
        )

    def test_user(self) -> None:
        """
        An unknown permission is refused, listing the three known ones.
        """
        self.assert_config_error(
            """
            tasks: {ping: {command: [ping]}}
            users:
              root:
                can_run: [ping]
                can_view_status: [ping]
                can_view_output: [ping]
                can_stop: [ping]
            """,
            "users.root.can_stop: unknown key"
            " (expected one of: can_run, can_view_output, can_view_status)",
        )


class ArgumentTests(ConfigTestCase):
    """
    Each argument has a valid name and datatype; Enum arguments name a
    buffered task to take their values from.
    """

    def test_all_datatypes(self) -> None:
        """
        Int, String and Enum arguments parse, in the order configured.
        """
        config = parse(
            """
            tasks:
              hosts: {command: [cat, hosts]}
              ping:
                command: [ping, -c, $count, $host, $note]
                arguments:
                - {name: count, datatype: Int}
                - {name: host, datatype: Enum, enum_source: hosts}
                - {name: note, datatype: String}
            """
        )

        self.assertEqual(
            config.tasks["ping"].arguments,
            (
                ArgumentSpec(name="count", datatype="Int"),
                ArgumentSpec(name="host", datatype="Enum", enum_source="hosts"),
                ArgumentSpec(name="note", datatype="String"),
            ),
        )

    def test_enum_source_defined_later(self) -> None:
        """
        An Enum may take its values from a task defined further down the file.
        """
        config = parse(
            """
            tasks:
              ping:
                command: [ping, $host]
                arguments: [{name: host, datatype: Enum, enum_source: hosts}]
              hosts: {command: [cat, hosts]}
            """
        )

        self.assertEqual(config.tasks["ping"].arguments[0].enum_source, "hosts")

    def test_enum_source_unknown(self) -> None:
        """
        An Enum whose source names no task is refused at that argument.
        """
        self.assert_config_error(
            """
            tasks:
              hosts: {command: [cat, hosts]}
              ping:
                command: [ping, $host]
                arguments: [{name: host, datatype: Enum, enum_source: hostz}]
            """,
            "tasks.ping.arguments[0].enum_source: no task named 'hostz'",
        )

    def test_enum_source_unknown_names_index(self) -> None:
        """
        The error for a bad Enum source names the argument's position.
        """
        self.assert_config_error(
            """
            tasks:
              ping:
                command: [ping, -c, $count, $host]
                arguments:
                - {name: count, datatype: Int}
                - {name: host, datatype: Enum, enum_source: hostz}
            """,
            "tasks.ping.arguments[1].enum_source: no task named 'hostz'",
        )

    def test_enum_without_source(self) -> None:
        """
        An Enum argument must say which task lists its values.
        """
        self.assert_config_error(
            """
            tasks:
              ping:
                command: [ping, $host]
                arguments: [{name: host, datatype: Enum}]
            """,
            "tasks.ping.arguments[0].enum_source: is required with datatype Enum",
        )

    def test_enum_source_on_string(self) -> None:
        """
        Only an Enum may have an C{enum_source}.
        """
        self.assert_config_error(
            """
            tasks:
              hosts: {command: [cat, hosts]}
              ping:
                command: [ping, $host]
                arguments: [{name: host, datatype: String, enum_source: hosts}]
            """,
            "tasks.ping.arguments[0].enum_source: is only allowed with datatype Enum",
        )

    def test_enum_source_on_int(self) -> None:
        """
        An Int may not have an C{enum_source} either.
        """
        self.assert_config_error(
            """
            tasks:
              counts: {command: [seq, 3]}
              ping:
                command: [ping, -c, $count]
                arguments: [{name: count, datatype: Int, enum_source: counts}]
            """,
            "tasks.ping.arguments[0].enum_source: is only allowed with datatype Enum",
        )

    def test_enum_source_unbuffered(self) -> None:
        """
        An Enum may not take its values from an unbuffered task, whose output
        is not kept.
        """
        self.assert_config_error(
            """
            tasks:
              hosts: {command: [cat, hosts], buffered: false}
              ping:
                command: [ping, $host]
                arguments: [{name: host, datatype: Enum, enum_source: hosts}]
            """,
            "tasks.ping.arguments[0].enum_source: task 'hosts' is unbuffered,"
            " so its output is not kept to take values from",
        )

    def test_missing_name(self) -> None:
        """
        An argument without a name is refused.
        """
        self.assert_config_error(
            "tasks: {say: {command: [echo], arguments: [{datatype: Int}]}}",
            "tasks.say.arguments[0].name: is required",
        )

    def test_missing_datatype(self) -> None:
        """
        An argument without a datatype is refused.
        """
        self.assert_config_error(
            "tasks: {say: {command: [echo], arguments: [{name: word}]}}",
            "tasks.say.arguments[0].datatype: is required",
        )

    def test_unknown_datatype(self) -> None:
        """
        A datatype other than Int, String or Enum is refused, listing those.
        """
        self.assert_config_error(
            "tasks: {say: {command: [echo], arguments: [{name: n, datatype: int}]}}",
            "tasks.say.arguments[0].datatype: unknown datatype 'int'"
            " (expected one of: Int, String, Enum)",
        )

    def test_invalid_name(self) -> None:
        """
        An argument name that a C{$name} placeholder could not spell is
        refused.
        """
        self.assert_config_error(
            "tasks: {say: {command: [echo], arguments: [{name: a-b, datatype: Int}]}}",
            "tasks.say.arguments[0].name: 'a-b' is not a valid argument name"
            " (letters, digits and underscores, not starting with a digit)",
        )

    def test_name_starting_with_digit(self) -> None:
        """
        An argument name may not start with a digit.
        """
        self.assert_config_error(
            "tasks: {say: {command: [echo], arguments: [{name: 1a, datatype: Int}]}}",
            "tasks.say.arguments[0].name: '1a' is not a valid argument name"
            " (letters, digits and underscores, not starting with a digit)",
        )

    def test_name_with_trailing_newline(self) -> None:
        """
        An argument name ending in a line break is refused like any other
        invalid name.
        """
        self.assert_config_error(
            """
            tasks:
              say:
                command: [echo]
                arguments: [{name: "a\\n", datatype: Int}]
            """,
            "tasks.say.arguments[0].name: 'a\\n' is not a valid argument name"
            " (letters, digits and underscores, not starting with a digit)",
        )

    def test_duplicate_argument_names(self) -> None:
        """
        Two arguments of one task may not share a name; the second is named.
        """
        self.assert_config_error(
            """
            tasks:
              say:
                command: [echo, $word]
                arguments:
                - {name: word, datatype: String}
                - {name: other, datatype: Int}
                - {name: word, datatype: Int}
            """,
            "tasks.say.arguments[2].name: argument 'word' is defined twice",
        )


class HeaderTests(ConfigTestCase):
    """
    Headers are valid HTTP header names with values that cannot break a
    response.
    """

    def test_headers_kept_in_order(self) -> None:
        """
        Headers keep their order; numbers keep their written text.
        """
        config = parse(
            """
            tasks:
              dump:
                command: [pg_dump]
                headers:
                  content-type: application/sql
                  x-retry-after: 010
                  content-disposition: attachment; filename=dump.sql
            """
        )

        self.assertEqual(
            config.tasks["dump"].headers,
            (
                ("content-type", "application/sql"),
                ("x-retry-after", "010"),
                ("content-disposition", "attachment; filename=dump.sql"),
            ),
        )

    def test_name_with_space(self) -> None:
        """
        A header name with a space is refused.
        """
        self.assert_config_error(
            "tasks: {dump: {command: [pg_dump], headers: {content type: text}}}",
            "tasks.dump.headers.content type: is not a valid HTTP header name",
        )

    def test_name_with_colon(self) -> None:
        """
        A header name with a colon is refused.
        """
        self.assert_config_error(
            "tasks: {dump: {command: [pg_dump], headers: {'x:y': text}}}",
            "tasks.dump.headers.x:y: is not a valid HTTP header name",
        )

    def test_empty_name(self) -> None:
        """
        An empty header name is refused.
        """
        self.assert_config_error(
            "tasks: {dump: {command: [pg_dump], headers: {'': text}}}",
            "tasks.dump.headers.: is not a valid HTTP header name",
        )

    def test_name_with_trailing_newline(self) -> None:
        """
        A header name ending in a line break is refused: a line break can
        never be part of a header name.
        """
        self.assert_config_error(
            'tasks: {dump: {command: [pg_dump], headers: {"x-a\\n": text}}}',
            "tasks.dump.headers.x-a\n: is not a valid HTTP header name",
        )

    def test_value_with_line_breaks(self) -> None:
        """
        A header value with CR, LF or NUL is refused, whichever it holds.
        """
        problems = {}
        for escaped in ("\\r", "\\n", "\\0", "\\r\\nx-b: c"):
            error = self.assertRaises(
                ConfigError,
                parse_config,
                "tasks: {dump: {command: [pg_dump],"
                f' headers: {{x-a: "a{escaped}b"}}}}}}',
            )
            problems[escaped] = str(error)

        self.assertEqual(
            problems,
            dict.fromkeys(
                ("\\r", "\\n", "\\0", "\\r\\nx-b: c"),
                "tasks.dump.headers.x-a: must not contain CR, LF or NUL characters",
            ),
        )

    def test_value_boolean(self) -> None:
        """
        A header value must be text; a boolean is refused.
        """
        self.assert_config_error(
            "tasks: {dump: {command: [pg_dump], headers: {x-a: true}}}",
            "tasks.dump.headers.x-a: must be a string, not a boolean (true)",
        )

    def test_value_null(self) -> None:
        """
        A header with no value is refused.
        """
        self.assert_config_error(
            "tasks: {dump: {command: [pg_dump], headers: {x-a: }}}",
            "tasks.dump.headers.x-a: must be a string, not nothing (null)",
        )


class ReservedHeaderTests(ConfigTestCase):
    """
    A task may not set the headers that frame a response, nor nosniff.
    """

    def test_framing_headers(self) -> None:
        """
        Content-Length, Transfer-Encoding and the like are refused, in any
        case.
        """
        for name in ("Content-Length", "transfer-encoding", "Connection", "TE"):
            self.assert_config_error(
                f"tasks: {{t: {{command: [x], headers: {{{name}: '1'}}}}}}",
                f"tasks.t.headers.{name}: is set by Taru itself, for every response,"
                " and cannot be set",
            )

    def test_nosniff(self) -> None:
        """
        X-Content-Type-Options cannot be weakened by a task.
        """
        self.assert_config_error(
            "tasks: {t: {command: [x], headers: {x-content-type-options: nope}}}",
            "tasks.t.headers.x-content-type-options: is set by Taru itself, for"
            " every response, and cannot be set",
        )


class MetaTests(ConfigTestCase):
    """
    C{meta} passes through as JSON.
    """

    def test_passes_through(self) -> None:
        """
        Nested JSON-compatible meta comes through unchanged.
        """
        config = parse(
            """
            tasks:
              dump:
                command: [pg_dump]
                meta:
                  description: Dump it
                  download: true
                  weight: 1.5
                  tags: [db, {size: 3}]
                  owner: null
            """
        )

        self.assertEqual(
            config.tasks["dump"].meta,
            {
                "description": "Dump it",
                "download": True,
                "weight": 1.5,
                "tags": ["db", {"size": 3}],
                "owner": None,
            },
        )

    def test_dates_become_iso_text(self) -> None:
        """
        YAML dates and timestamps in meta become ISO 8601 strings, at any
        depth.
        """
        config = parse(
            """
            tasks:
              dump:
                command: [pg_dump]
                meta:
                  since: 2024-05-01
                  at: 2024-05-01 12:30:00
                  history: [2023-01-02]
            """
        )

        self.assertEqual(
            config.tasks["dump"].meta,
            {
                "since": "2024-05-01",
                "at": "2024-05-01T12:30:00",
                "history": ["2023-01-02"],
            },
        )

    def test_non_finite_number(self) -> None:
        """
        A number JSON cannot carry is refused, naming its place.
        """
        self.assert_config_error(
            "tasks: {dump: {command: [pg_dump], meta: {sizes: [1, .nan]}}}",
            "tasks.dump.meta.sizes[1]: must be a finite number",
        )

    def test_binary(self) -> None:
        """
        Binary data is refused in meta, naming its place.
        """
        self.assert_config_error(
            "tasks: {dump: {command: [pg_dump], meta: {blob: !!binary aGk=}}}",
            "tasks.dump.meta.blob: cannot hold binary data",
        )


class UserTests(ConfigTestCase):
    """
    Every user has all three permission lists, each naming existing tasks.
    """

    def test_permission_sets(self) -> None:
        """
        Each permission becomes the set of task names listed; an explicit
        empty list means no tasks.
        """
        config = parse(
            """
            tasks:
              ping: {command: [ping]}
              dump: {command: [pg_dump]}
            users:
              root:
                can_run: [ping, dump]
                can_view_status: [dump]
                can_view_output: []
              guest:
                can_run: []
                can_view_status: [ping]
                can_view_output: [ping, ping]
            """
        )

        self.assertEqual(
            config.users,
            {
                "root": UserSpec(
                    name="root",
                    can_run=frozenset({"ping", "dump"}),
                    can_view_status=frozenset({"dump"}),
                    can_view_output=frozenset(),
                ),
                "guest": UserSpec(
                    name="guest",
                    can_run=frozenset(),
                    can_view_status=frozenset({"ping"}),
                    can_view_output=frozenset({"ping"}),
                ),
            },
        )

    def test_each_permission_required(self) -> None:
        """
        Leaving out any one of the three permissions is refused, naming it.
        """
        messages = {}
        for missing in ("can_run", "can_view_status", "can_view_output"):
            present = {"can_run", "can_view_status", "can_view_output"} - {missing}
            fields = ", ".join(f"{permission}: [ping]" for permission in present)
            error = self.assertRaises(
                ConfigError,
                parse_config,
                f"tasks: {{ping: {{command: [ping]}}}}\nusers: {{root: {{{fields}}}}}",
            )
            messages[missing] = str(error)

        self.assertEqual(
            messages,
            {
                "can_run": "users.root.can_run: is required (use [] for none)",
                "can_view_status": (
                    "users.root.can_view_status: is required (use [] for none)"
                ),
                "can_view_output": (
                    "users.root.can_view_output: is required (use [] for none)"
                ),
            },
        )

    def test_user_without_body(self) -> None:
        """
        A user with nothing under it is refused for lacking permissions.
        """
        self.assert_config_error(
            "tasks: {}\nusers: {root: }",
            "users.root.can_run: is required (use [] for none)",
        )

    def test_unknown_task(self) -> None:
        """
        A permission naming a task that does not exist is refused, naming the
        entry.
        """
        self.assert_config_error(
            """
            tasks: {ping: {command: [ping]}}
            users:
              root:
                can_run: [ping]
                can_view_status: [ping, pong]
                can_view_output: [ping]
            """,
            "users.root.can_view_status[1]: no task named 'pong'",
        )


class EmptyValueTests(ConfigTestCase):
    """
    Keys written without a value are read as intended, or refused with a hint.
    """

    def test_empty_permission_list(self) -> None:
        """
        A permission written with no value is refused, suggesting C{[]}.
        """
        self.assert_config_error(
            """
            tasks: {ping: {command: [ping]}}
            users:
              guest: {can_run: , can_view_status: [], can_view_output: []}
            """,
            "users.guest.can_run: must be a list of task names (use [] for none)",
        )

    def test_empty_users_section(self) -> None:
        """
        C{users:} with nothing under it is refused rather than locking everyone
        out, or letting everyone in.
        """
        self.assert_config_error(
            "tasks: {ping: {command: [ping]}}\nusers:\n",
            "users: is empty; list users, or remove the key to open every task to all",
        )

    def test_empty_optional_task_keys(self) -> None:
        """
        C{headers}, C{meta} and C{arguments} written with no value take their
        defaults.
        """
        config = parse_config(
            "tasks: {t: {command: [x], headers: , meta: , arguments: }}"
        )

        self.assertEqual(config.tasks["t"], TaskSpec(name="t", command=("x",)))


class SelfReferenceTests(ConfigTestCase):
    """
    Definitions that could never be used are refused.
    """

    def test_enum_from_itself(self) -> None:
        """
        An Enum fed by its own task could never run: refused.
        """
        self.assert_config_error(
            """
            tasks:
              pick:
                command: [echo, $v]
                arguments: [{name: v, datatype: Enum, enum_source: pick}]
            """,
            "tasks.pick.arguments[0].enum_source: a task cannot take its values"
            " from its own output",
        )

    def test_empty_user_name(self) -> None:
        """
        A user named by the empty string could never be named by a request.
        """
        self.assert_config_error(
            """
            tasks: {t: {command: [x]}}
            users:
              "": {can_run: [], can_view_status: [], can_view_output: []}
            """,
            "users: a user's name must not be empty",
        )


class TaskNameTests(ConfigTestCase):
    """
    Task names that could not be addressed in a URL or a file name are refused.
    """

    def test_slash(self) -> None:
        """
        A name with a slash is refused.
        """
        self.assert_config_error(
            "tasks: {a/b: {command: [x]}}",
            "tasks.a/b: a task's name must not contain '/' or be '.' or '..'",
        )

    def test_dots(self) -> None:
        """
        C{.} and C{..} are refused as names.
        """
        for name in (".", ".."):
            self.assert_config_error(
                f"tasks: {{'{name}': {{command: [x]}}}}",
                f"tasks.{name}: a task's name must not contain '/' or be '.' or '..'",
            )

    def test_empty(self) -> None:
        """
        An empty name is refused.
        """
        self.assert_config_error(
            "tasks: {'': {command: [x]}}", "tasks: a task's name must not be empty"
        )

    def test_control_characters(self) -> None:
        """
        A name with a control character is refused, shown escaped.
        """
        self.assert_config_error(
            'tasks: {"a\\tb": {command: [x]}}',
            "tasks.'a\\tb': a task's name must not contain control characters",
        )

    def test_lone_surrogate(self) -> None:
        """
        A name that is not valid Unicode is refused.
        """
        self.assert_config_error(
            'tasks: {"a\\ud800": {command: [x]}}',
            "tasks: the name 'a\\ud800' is not valid Unicode",
        )

    def test_unicode_and_spaces_allowed(self) -> None:
        """
        Names with spaces and non-ASCII letters are fine.
        """
        config = parse_config("tasks: {'nettoyage du cache é': {command: [x]}}")

        self.assertEqual(list(config.tasks), ["nettoyage du cache é"])


class DuplicateKeyTests(SynchronousTestCase):
    """
    A key written twice in one mapping is refused rather than one silently
    winning.
    """

    def test_duplicate_task(self) -> None:
        """
        Two tasks of the same name are refused, naming the line of the second.
        """
        text = "tasks:\n  ping: {command: [ping]}\n  ping: {command: [pong]}\n"

        error = self.assertRaises(ConfigError, parse_config, text, "taru.yml")

        self.assertEqual(
            str(error), "taru.yml, line 3: invalid YAML: duplicate key 'ping'"
        )

    def test_duplicate_field(self) -> None:
        """
        A task field given twice is refused, naming its line.
        """
        text = "tasks:\n  ping:\n    command: [ping]\n    command: [pong]\n"

        error = self.assertRaises(ConfigError, parse_config, text, "taru.yml")

        self.assertEqual(
            str(error), "taru.yml, line 4: invalid YAML: duplicate key 'command'"
        )

    def test_duplicate_user(self) -> None:
        """
        Two users of the same name are refused.
        """
        text = (
            "tasks: {}\n"
            "users:\n"
            "  root: {can_run: [], can_view_status: [], can_view_output: []}\n"
            "  root: {can_run: [], can_view_status: [], can_view_output: []}\n"
        )

        error = self.assertRaises(ConfigError, parse_config, text, "taru.yml")

        self.assertEqual(
            str(error), "taru.yml, line 4: invalid YAML: duplicate key 'root'"
        )

    def test_merge_key_override(self) -> None:
        """
        A key written next to a YAML merge (C{<<}) overrides the merged value,
        as YAML defines; it is not a duplicate.
        """
        config = parse(
            """
            tasks:
              hosts: &listing
                command: [cat, hosts]
                meta: {description: Lists hosts}
              users_list:
                <<: *listing
                command: [cat, users]
            """
        )

        self.assertEqual(
            config.tasks["users_list"],
            TaskSpec(
                name="users_list",
                command=("cat", "users"),
                meta={"description": "Lists hosts"},
            ),
        )


class DocumentTests(SynchronousTestCase):
    """
    Problems with the file as a whole name the file, and a line where there
    is one.
    """

    def test_invalid_yaml_names_line(self) -> None:
        """
        Text that is not YAML is refused, naming the file and the line.
        """
        text = "tasks:\n  ping: {command: [ping]\n  pong: 1\n"

        error = self.assertRaises(ConfigError, parse_config, text, "taru.yml")

        self.assertEqual(error.where, "taru.yml, line 3")
        self.assertTrue(
            error.problem.startswith("invalid YAML: "), f"problem: {error.problem!r}"
        )

    def test_not_utf8(self) -> None:
        """
        Bytes that are not UTF-8 are refused as invalid YAML, naming the file.
        """
        error = self.assertRaises(
            ConfigError, parse_config, b"tasks: \xff\n", "taru.yml"
        )

        self.assertEqual(error.where, "taru.yml")
        self.assertTrue(
            error.problem.startswith("invalid YAML: "), f"problem: {error.problem!r}"
        )

    def test_non_string_key(self) -> None:
        """
        A key that is not a string is refused, naming its line.
        """
        error = self.assertRaises(
            ConfigError, parse_config, "tasks:\n  1: {command: [ping]}\n", "taru.yml"
        )

        self.assertEqual(
            str(error),
            "taru.yml, line 2: invalid YAML: a key must be a string, not a number (1)",
        )

    def test_empty_file(self) -> None:
        """
        An empty file is refused, naming the file and what it needs.
        """
        error = self.assertRaises(ConfigError, parse_config, "", "taru.yml")

        self.assertEqual(
            str(error), "taru.yml: is empty; it needs at least a 'tasks' section"
        )

    def test_comments_only(self) -> None:
        """
        A file holding only comments is as empty as an empty file.
        """
        error = self.assertRaises(
            ConfigError, parse_config, "# tasks: later\n", "taru.yml"
        )

        self.assertEqual(
            str(error), "taru.yml: is empty; it needs at least a 'tasks' section"
        )

    def test_top_level_list(self) -> None:
        """
        A file whose top level is a list is refused, naming the file.
        """
        error = self.assertRaises(ConfigError, parse_config, "- ping\n", "taru.yml")

        self.assertEqual(str(error), "taru.yml: must be a mapping, not a list")

    def test_top_level_string(self) -> None:
        """
        A file holding a single string is refused, naming the file.
        """
        error = self.assertRaises(ConfigError, parse_config, "ping\n", "taru.yml")

        self.assertEqual(
            str(error), "taru.yml: must be a mapping, not a string ('ping')"
        )

    def test_default_source_name(self) -> None:
        """
        Without a source name, problems with the text as a whole say
        C{<config>}.
        """
        error = self.assertRaises(ConfigError, parse_config, "")

        self.assertEqual(error.where, "<config>")

    def test_tasks_required(self) -> None:
        """
        A file without a C{tasks} section is refused.
        """
        error = self.assertRaises(ConfigError, parse_config, "heartbeat: 1\n")

        self.assertEqual(str(error), "tasks: is required")

    def test_error_fields(self) -> None:
        """
        A L{ConfigError} carries its place and its problem separately.
        """
        error = self.assertRaises(
            ConfigError, parse_config, "tasks: {ping: {command: []}}"
        )

        self.assertEqual(
            (error.where, error.problem), ("tasks.ping.command", "must not be empty")
        )


class HeartbeatTests(ConfigTestCase):
    """
    The heartbeat is a positive, finite number of seconds.
    """

    def test_whole_seconds(self) -> None:
        """
        A whole number of seconds becomes a float.
        """
        config = parse("heartbeat: 15\ntasks: {}")

        self.assertEqual(config.heartbeat, 15.0)
        self.assertIs(type(config.heartbeat), float)

    def test_fraction(self) -> None:
        """
        A fraction of a second is allowed.
        """
        config = parse("heartbeat: 0.25\ntasks: {}")

        self.assertEqual(config.heartbeat, 0.25)

    def test_null(self) -> None:
        """
        A heartbeat with no value means no heartbeat.
        """
        config = parse("heartbeat:\ntasks: {}")

        self.assertIsNone(config.heartbeat)

    def test_not_positive(self) -> None:
        """
        Zero, negative, too short, too long and non-finite heartbeats are
        refused, however large.
        """
        messages = {
            written: str(
                self.assertRaises(
                    ConfigError, parse_config, f"heartbeat: {written}\ntasks: {{}}"
                )
            )
            for written in (
                "0",
                "0.0",
                "0.05",
                "-1",
                "-0.5",
                ".inf",
                ".nan",
                "1" + "0" * 400,
            )
        }

        self.assertEqual(
            messages,
            dict.fromkeys(
                ("0", "0.0", "0.05", "-1", "-0.5", ".inf", ".nan", "1" + "0" * 400),
                "heartbeat: must be a number of seconds from 0.1 to 86400",
            ),
        )

    def test_number_too_long_to_read(self) -> None:
        """
        A number of thousands of digits is refused with its line, not a
        crash.
        """
        self.assert_config_error(
            "tasks:\n  t: {command: [echo, " + "9" * 5000 + "]}\n",
            "<config>, line 2: invalid YAML: a number too long to read; quote it",
        )

    def test_string(self) -> None:
        """
        A quoted number is not a number of seconds.
        """
        self.assert_config_error(
            "heartbeat: '1'\ntasks: {}",
            "heartbeat: must be a number of seconds, not a string ('1')",
        )

    def test_boolean(self) -> None:
        """
        C{true} is not a number of seconds, although Python counts it as one.
        """
        self.assert_config_error(
            "heartbeat: true\ntasks: {}",
            "heartbeat: must be a number of seconds, not a boolean (true)",
        )

    def test_list(self) -> None:
        """
        A list is not a number of seconds.
        """
        self.assert_config_error(
            "heartbeat: [1]\ntasks: {}",
            "heartbeat: must be a number of seconds, not a list",
        )


class LoadConfigTests(SynchronousTestCase):
    """
    L{load_config} reads a file and reports problems under its path.
    """

    def test_reads_file(self) -> None:
        """
        A valid file loads into its configuration.
        """
        path = FilePath(self.mktemp())
        path.setContent(b"tasks:\n  uptime: {command: [uptime]}\n")

        config = load_config(path.path)

        self.assertEqual(config.tasks, {"uptime": TaskSpec("uptime", ("uptime",))})

    def test_missing_file(self) -> None:
        """
        A missing file is a L{ConfigError} naming the path and why it could
        not be read.
        """
        path = self.mktemp()

        error = self.assertRaises(ConfigError, load_config, path)

        self.assertEqual(error.where, path)
        self.assertEqual(error.problem, "cannot read: No such file or directory")

    def test_directory(self) -> None:
        """
        A directory is not a readable configuration file.
        """
        path = FilePath(self.mktemp())
        path.makedirs()

        error = self.assertRaises(ConfigError, load_config, path.path)

        self.assertEqual(error.where, path.path)
        self.assertTrue(
            error.problem.startswith("cannot read: "), f"problem: {error.problem!r}"
        )

    def test_invalid_yaml_names_path(self) -> None:
        """
        Invalid YAML in a file is reported under the file's path and line.
        """
        path = FilePath(self.mktemp())
        path.setContent(b"tasks:\n  ping: [\n")

        error = self.assertRaises(ConfigError, load_config, path.path)

        self.assertTrue(
            error.where.startswith(f"{path.path}, line "), f"where: {error.where!r}"
        )

    def test_empty_file_names_path(self) -> None:
        """
        An empty file is reported under its path.
        """
        path = FilePath(self.mktemp())
        path.setContent(b"")

        error = self.assertRaises(ConfigError, load_config, path.path)

        self.assertEqual(
            str(error), f"{path.path}: is empty; it needs at least a 'tasks' section"
        )


class TaskSettingsTests(ConfigTestCase):
    """
    A task's history, timeout, working directory, environment and systemd
    properties.
    """

    def test_defaults(self) -> None:
        """
        Without them, a task keeps the default number of runs, has no timeout,
        runs in Taru's folder, with no more variables and no properties.
        """
        spec = parse("tasks: {t: {command: ['true']}}").tasks["t"]

        self.assertEqual(
            (
                spec.history,
                spec.timeout,
                spec.working_directory,
                spec.environment,
                spec.systemd_properties,
            ),
            (DEFAULT_HISTORY, None, None, (), ()),
        )

    def test_given(self) -> None:
        """
        Each setting is read as given; numbers and booleans become the text a
        program is given, numbers as written.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        spec = parse(
            f"""
            history: 5
            tasks:
              t:
                command: ['true']
                history: 3
                timeout: 1.5
                working_directory: {directory}
                environment: {{GREETING: hi, COUNT: 010, DEBUG: true}}
                systemd_properties: {{MemoryMax: 64M, CPUQuota: 50%, PrivateTmp: yes}}
              u:
                command: ['true']
            """
        )

        t = spec.tasks["t"]
        self.assertEqual((t.history, spec.tasks["u"].history), (3, 5))
        self.assertEqual((t.timeout, t.working_directory), (1.5, directory))
        self.assertEqual(
            t.environment, (("GREETING", "hi"), ("COUNT", "010"), ("DEBUG", "yes"))
        )
        self.assertEqual(
            t.systemd_properties,
            (("MemoryMax", "64M"), ("CPUQuota", "50%"), ("PrivateTmp", "yes")),
        )

    def test_bad_settings(self) -> None:
        """
        Each setting's wrong values are refused with a message naming it.
        """
        cases = {
            "history: 0": "history: must be a number of runs from 1 to 10000",
            "history: lots": "history: must be a number of runs, not a string ('lots')",
            "timeout: 0": "timeout: must be more than 0 and at most 31536000"
            " seconds (a year)",
            "timeout: soon": "timeout: must be a number of seconds, not a string"
            " ('soon')",
            "working_directory: relative/path": "working_directory: must be an"
            " absolute path, not 'relative/path'",
            "working_directory: /no/such/folder/here": "working_directory:"
            " '/no/such/folder/here' is not a folder",
            "environment: {1BAD: x}": "environment.1BAD: is not a valid variable"
            " name (letters, digits and _)",
            "environment: {TARU_USER: x}": "environment.TARU_USER: is set by Taru"
            " itself, for every run",
            "environment: {A: [1]}": "environment.A: must be a string, number or"
            " boolean, not a list",
            "systemd_properties: {memoryMax: 1}": "systemd_properties.memoryMax: is"
            " not a systemd property name, such as MemoryMax or CPUQuota",
            "systemd_properties: {ExecStart: /bin/sh}": "systemd_properties."
            "ExecStart: is set by Taru itself, or would change how it runs and"
            " stops the task (use working_directory, environment and timeout for"
            " those)",
            'systemd_properties: {Description: "a\\nb"}': "systemd_properties."
            "Description: must not contain CR, LF or NUL characters",
        }
        for setting, message in cases.items():
            self.assert_config_error(
                f"tasks: {{t: {{command: ['true'], {setting}}}}}", f"tasks.t.{message}"
            )

    def test_reserved_properties(self) -> None:
        """
        Every property through which Taru runs, follows and stops the task is
        refused, whichever its family; resource and sandboxing ones are not.
        """
        refused = [
            "ExecStart",
            "ExecCondition",
            "StandardInputText",
            "StandardOutput",
            "UnsetEnvironment",
            "EnvironmentFile",
            "KillMode",
            "KillSignal",
            "TimeoutSec",
            "TimeoutStopSec",
            "SendSIGKILL",
            "RuntimeMaxSec",
            "ExitType",
            "Type",
            "Restart",
            "WorkingDirectory",
        ]
        accepted = ["MemoryMax", "CPUQuota", "User", "DynamicUser", "PrivateTmp"]

        verdicts = {}
        for name in refused + accepted:
            try:
                parse_config(
                    "tasks: {t: {command: ['true'],"
                    f" systemd_properties: {{{name}: x}}}}}}"
                )
            except ConfigError:
                verdicts[name] = "refused"
            else:
                verdicts[name] = "accepted"

        self.assertEqual(
            verdicts,
            {
                **dict.fromkeys(refused, "refused"),
                **dict.fromkeys(accepted, "accepted"),
            },
        )

    def test_bad_top_level_history(self) -> None:
        """
        The top-level history is checked too.
        """
        self.assert_config_error(
            "history: 100001\ntasks: {t: {command: ['true']}}",
            "history: must be a number of runs from 1 to 10000",
        )
