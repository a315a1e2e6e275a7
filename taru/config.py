"""
Taru's configuration: the YAML file, checked and turned into frozen specs.

Everything is validated here, once, when the file is loaded: the rest of Taru
trusts a L{Config}. Every problem is reported as a L{ConfigError} naming the
exact place in the file, such as
C{tasks.ping.arguments[0].enum_source: no task named 'hostz'}.
"""

from __future__ import annotations

import datetime
import ipaddress
import math
import os
import re
from collections.abc import Mapping
from typing import Any

import yaml
from attrs import frozen

DATATYPES = ("Int", "String", "Enum")

# The shortest and the longest heartbeat intervals, in seconds.
MIN_HEARTBEAT = 0.1
MAX_HEARTBEAT = 86400

_TASK_KEYS = frozenset(
    {
        "command",
        "buffered",
        "headers",
        "meta",
        "arguments",
        "history",
        "timeout",
        "working_directory",
        "environment",
        "systemd_properties",
    }
)
_ARGUMENT_KEYS = frozenset({"name", "datatype", "enum_source"})
_PERMISSIONS = ("can_run", "can_view_status", "can_view_output")
_TOP_KEYS = frozenset({"heartbeat", "tasks", "users", "trusted_proxies", "history"})

# How many runs of each task are kept in the history unless the configuration
# says otherwise, and the most it may say.
DEFAULT_HISTORY = 20
MAX_HISTORY = 10000

# The longest timeout a task may have: a year, in seconds.
MAX_TIMEOUT = 365 * 24 * 3600

_ENVIRONMENT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# A systemd unit property's name, as in MemoryMax or CPUQuota.
_PROPERTY_NAME = re.compile(r"[A-Z][A-Za-z0-9]*")

# Unit properties Taru sets itself, or that would undo how it runs, follows
# and stops a task: its commands, its type, its standard streams, its
# environment and working directory (which have settings of their own), how
# it is killed and when, and restarts.
_RESERVED_PROPERTY = re.compile(
    r"Exec\w*|Standard\w*|Kill\w*|Timeout\w*|Restart\w*|\w*Environment\w*"
    r"|Type|ExitType|RemainAfterExit|WorkingDirectory|RootDirectory"
    r"|SendSIGKILL|SendSIGHUP|FinalKillSignal|RuntimeMaxSec|RuntimeRandomizedExtraSec"
    r"|SuccessExitStatus|RestartForceExitStatus|GuessMainPID|PIDFile"
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# The peers that may name a user in X-User unless the configuration says
# otherwise: this machine (and peers on a unix socket, always).
DEFAULT_TRUSTED_PROXIES: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)

# Headers that frame the HTTP response or that Taru always sets.
_RESERVED_HEADERS = frozenset(
    {
        "connection",
        "content-length",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "x-content-type-options",
    }
)

_ARGUMENT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# RFC 7230 token characters: what an HTTP header name may be made of.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class ConfigError(Exception):
    """
    The configuration is not valid.

    @ivar where: the place in the file, as a dotted path (C{tasks.ping.command}),
        or the file name for problems with the file as a whole.
    @ivar problem: what is wrong there.
    """

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(where, problem)
        self.where = where
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


@frozen
class ArgumentSpec:
    """
    One typed argument of a task.

    @ivar name: the argument's name; C{$name} in the command is replaced by its
        value.
    @ivar datatype: one of C{Int}, C{String} or C{Enum}.
    @ivar enum_source: for C{Enum}, the task whose latest output lists the
        permitted values, one a line.
    """

    name: str
    datatype: str
    enum_source: str | None = None


@frozen
class TaskSpec:
    """
    A task as configured.

    @ivar name: the task's name, the key under C{tasks}.
    @ivar command: the program and its arguments, unsubstituted.
    @ivar buffered: whether the output of the latest run is kept, so that
        late followers see it from the start and Enum arguments can use it.
    @ivar headers: extra HTTP headers sent with the task's output.
    @ivar meta: free-form data for clients, passed through as JSON.
    @ivar arguments: the task's typed arguments, in configured order.
    @ivar history: how many of its latest runs are kept in the history.
    @ivar timeout: seconds after which a run is stopped, or L{None}.
    @ivar working_directory: where it runs, or L{None} for Taru's own
        working directory.
    @ivar environment: variables added to its environment.
    @ivar systemd_properties: unit properties for C{systemd-run -p}, used by
        the systemd runner only.
    """

    name: str
    command: tuple[str, ...]
    buffered: bool = True
    headers: tuple[tuple[str, str], ...] = ()
    meta: Mapping[str, Any] = {}
    arguments: tuple[ArgumentSpec, ...] = ()
    history: int = DEFAULT_HISTORY
    timeout: float | None = None
    working_directory: str | None = None
    environment: tuple[tuple[str, str], ...] = ()
    systemd_properties: tuple[tuple[str, str], ...] = ()


@frozen
class UserSpec:
    """
    A user's permissions, each a set of task names.
    """

    name: str
    can_run: frozenset[str]
    can_view_status: frozenset[str]
    can_view_output: frozenset[str]


@frozen
class Config:
    """
    A whole, valid configuration.

    @ivar heartbeat: seconds between C{Ping} events, or L{None} for none.
    @ivar tasks: the tasks by name, in the file's order.
    @ivar users: the users by name, or L{None} when the file has no C{users}
        section and everyone may do everything.
    @ivar trusted_proxies: the addresses whose requests may name a user in
        C{X-User}; peers on a unix socket always may.
    """

    tasks: Mapping[str, TaskSpec]
    users: Mapping[str, UserSpec] | None = None
    heartbeat: float | None = None
    trusted_proxies: tuple[Network, ...] = DEFAULT_TRUSTED_PROXIES


class _SourcedInt(int):
    """
    An integer read from YAML that remembers how it was written, so that
    C{[sleep, 010]} runs C{sleep 010} and not C{sleep 8}.
    """

    source: str


class _SourcedFloat(float):
    """
    A float read from YAML that remembers how it was written.
    """

    source: str


class _Loader(yaml.SafeLoader):
    """
    A safe YAML loader that refuses duplicate keys and keeps the text of
    numbers.
    """


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    written: set[object] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        if key in written:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        written.add(key)

    # Keys merged in with "<<" come first, so that written keys override them.
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"a key must be a string, not {_describe(key)}",
                key_node.start_mark,
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> int:
    try:
        number = yaml.SafeLoader.construct_yaml_int(loader, node)
    except ValueError:
        raise yaml.constructor.ConstructorError(
            None, None, "a number too long to read; quote it", node.start_mark
        ) from None
    value = _SourcedInt(number)
    value.source = str(node.value)
    return value


def _construct_float(loader: _Loader, node: yaml.ScalarNode) -> float:
    value = _SourcedFloat(yaml.SafeLoader.construct_yaml_float(loader, node))
    value.source = str(node.value)
    return value


_Loader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)
_Loader.add_constructor(
    "tag:yaml.org,2002:int",
    _construct_int,
)
_Loader.add_constructor(
    "tag:yaml.org,2002:float",
    _construct_float,
)


def _describe(value: object) -> str:
    """
    Name a YAML value's type the way a person writing YAML thinks of it.
    """
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, int):
        return f"a number ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, bytes):
        return "binary data"
    return f"a {type(value).__name__}"


def _mapping(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(where, f"must be a mapping, not {_describe(value)}")
    return value


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(where, f"must be a list, not {_describe(value)}")
    return value


def _string(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(where, f"must be a string, not {_describe(value)}")
    return value


def _no_unknown_keys(
    mapping: dict[str, Any], known: frozenset[str], where: str
) -> None:
    for key in mapping:
        if key not in known:
            expected = ", ".join(sorted(known))
            raise ConfigError(
                _join(where, key), f"unknown key (expected one of: {expected})"
            )


def _optional(fields: dict[str, Any], key: str, default: object) -> object:
    """
    A key's value, or C{default} when the key is absent or left empty.
    """
    value = fields.get(key)
    return default if value is None else value


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _command_word(value: object, where: str) -> str:
    """
    One element of a command: a string, or a number kept as it was written.
    """
    if isinstance(value, (_SourcedInt, _SourcedFloat)):
        return value.source
    if isinstance(value, str):
        if "\0" in value:
            raise ConfigError(where, "must not contain a NUL character")
        return value
    hint = "" if isinstance(value, (list, dict)) else " (quote it to pass it as text)"
    raise ConfigError(where, f"must be a string, not {_describe(value)}{hint}")


def _json_value(value: object, where: str) -> Any:
    """
    Check that C{meta} holds only what JSON can carry; dates become ISO text.
    """
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(where, "must be a finite number")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, list):
        return [
            _json_value(item, f"{where}[{index}]") for index, item in enumerate(value)
        ]
    if isinstance(value, dict):
        return {
            key: _json_value(item, _join(where, key)) for key, item in value.items()
        }
    raise ConfigError(where, f"cannot hold {_describe(value)}")


def _parse_headers(value: object, where: str) -> tuple[tuple[str, str], ...]:
    headers = []
    for name, header_value in _mapping(value, where).items():
        here = _join(where, name)
        if not _HEADER_NAME.fullmatch(name):
            raise ConfigError(here, "is not a valid HTTP header name")
        if name.lower() in _RESERVED_HEADERS:
            raise ConfigError(
                here, "is set by Taru itself, for every response, and cannot be set"
            )
        if isinstance(header_value, (_SourcedInt, _SourcedFloat)):
            header_value = header_value.source
        text = _string(header_value, here)
        if any(character in text for character in "\r\n\0"):
            raise ConfigError(here, "must not contain CR, LF or NUL characters")
        headers.append((name, text))
    return tuple(headers)


def _parse_argument(value: object, where: str) -> ArgumentSpec:
    fields = _mapping(value, where)
    _no_unknown_keys(fields, _ARGUMENT_KEYS, where)
    for required in ("name", "datatype"):
        if required not in fields:
            raise ConfigError(_join(where, required), "is required")
    name = _string(fields["name"], _join(where, "name"))
    if not _ARGUMENT_NAME.fullmatch(name):
        raise ConfigError(
            _join(where, "name"),
            f"{name!r} is not a valid argument name"
            " (letters, digits and underscores, not starting with a digit)",
        )
    datatype = _string(fields["datatype"], _join(where, "datatype"))
    if datatype not in DATATYPES:
        raise ConfigError(
            _join(where, "datatype"),
            f"unknown datatype {datatype!r} (expected one of: {', '.join(DATATYPES)})",
        )
    enum_source = None
    if "enum_source" in fields:
        enum_source = _string(fields["enum_source"], _join(where, "enum_source"))
        if datatype != "Enum":
            raise ConfigError(
                _join(where, "enum_source"), "is only allowed with datatype Enum"
            )
    elif datatype == "Enum":
        raise ConfigError(_join(where, "enum_source"), "is required with datatype Enum")
    return ArgumentSpec(name=name, datatype=datatype, enum_source=enum_source)


def _check_task_name(name: str) -> None:
    """
    A task's name goes into URLs, file names and unit names: refuse what
    cannot be addressed there.
    """
    if not name:
        raise ConfigError("tasks", "a task's name must not be empty")
    if name in (".", "..") or "/" in name:
        raise ConfigError(
            f"tasks.{name}", "a task's name must not contain '/' or be '.' or '..'"
        )
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError("tasks", f"the name {name!r} is not valid Unicode") from None
    if any(ord(character) < 0x20 or ord(character) == 0x7F for character in name):
        raise ConfigError(
            f"tasks.{name!r}", "a task's name must not contain control characters"
        )


def _scalar_text(value: object, where: str) -> str:
    """
    A string, number or boolean as the text a program would be given: numbers
    as written, booleans as C{yes} and C{no}.
    """
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (_SourcedInt, _SourcedFloat)):
        return value.source
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        raise ConfigError(
            where, f"must be a string, number or boolean, not {_describe(value)}"
        )
    return value


def _parse_history(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(where, f"must be a number of runs, not {_describe(value)}")
    if not 1 <= value <= MAX_HISTORY:
        raise ConfigError(where, f"must be a number of runs from 1 to {MAX_HISTORY}")
    return int(value)


def _parse_timeout(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(where, f"must be a number of seconds, not {_describe(value)}")
    if not 0 < value <= MAX_TIMEOUT:
        raise ConfigError(
            where, f"must be more than 0 and at most {MAX_TIMEOUT} seconds (a year)"
        )
    return float(value)


def _parse_working_directory(value: object, where: str) -> str:
    path = _string(value, where)
    if "\0" in path:
        raise ConfigError(where, "must not contain NUL characters")
    if not os.path.isabs(path):
        raise ConfigError(where, f"must be an absolute path, not {path!r}")
    if not os.path.isdir(path):
        raise ConfigError(where, f"{path!r} is not a folder")
    return path


def _parse_environment(value: object, where: str) -> tuple[tuple[str, str], ...]:
    variables = []
    for name, variable_value in _mapping(value, where).items():
        here = _join(where, name)
        if not _ENVIRONMENT_NAME.fullmatch(name):
            raise ConfigError(
                here, "is not a valid variable name (letters, digits and _)"
            )
        if name.startswith("TARU_"):
            raise ConfigError(here, "is set by Taru itself, for every run")
        text = _scalar_text(variable_value, here)
        if "\0" in text:
            raise ConfigError(here, "must not contain NUL characters")
        variables.append((name, text))
    return tuple(variables)


def _parse_systemd_properties(value: object, where: str) -> tuple[tuple[str, str], ...]:
    properties = []
    for name, property_value in _mapping(value, where).items():
        here = _join(where, name)
        if not _PROPERTY_NAME.fullmatch(name):
            raise ConfigError(
                here, "is not a systemd property name, such as MemoryMax or CPUQuota"
            )
        if _RESERVED_PROPERTY.fullmatch(name):
            raise ConfigError(
                here,
                "is set by Taru itself, or would change how it runs and stops"
                " the task (use working_directory, environment and timeout for"
                " those)",
            )
        text = _scalar_text(property_value, here)
        if any(character in text for character in "\r\n\0"):
            raise ConfigError(here, "must not contain CR, LF or NUL characters")
        properties.append((name, text))
    return tuple(properties)


def _parse_task(name: str, value: object, history: int = DEFAULT_HISTORY) -> TaskSpec:
    _check_task_name(name)
    where = f"tasks.{name}"
    if value is None:
        raise ConfigError(_join(where, "command"), "is required")
    fields = _mapping(value, where)
    _no_unknown_keys(fields, _TASK_KEYS, where)

    if "command" not in fields:
        raise ConfigError(_join(where, "command"), "is required")
    command_items = _list(fields["command"], _join(where, "command"))
    if not command_items:
        raise ConfigError(_join(where, "command"), "must not be empty")
    command = tuple(
        _command_word(item, f"{where}.command[{index}]")
        for index, item in enumerate(command_items)
    )
    if not command[0]:
        raise ConfigError(f"{where}.command[0]", "the program must not be empty")

    buffered = fields.get("buffered", True)
    if not isinstance(buffered, bool):
        raise ConfigError(
            _join(where, "buffered"),
            f"must be true or false, not {_describe(buffered)}",
        )

    headers = _parse_headers(_optional(fields, "headers", {}), _join(where, "headers"))
    meta = _json_value(
        _mapping(_optional(fields, "meta", {}), _join(where, "meta")),
        _join(where, "meta"),
    )

    arguments_where = _join(where, "arguments")
    arguments = tuple(
        _parse_argument(item, f"{arguments_where}[{index}]")
        for index, item in enumerate(
            _list(_optional(fields, "arguments", []), arguments_where)
        )
    )
    seen: set[str] = set()
    for index, argument in enumerate(arguments):
        if argument.name in seen:
            raise ConfigError(
                f"{arguments_where}[{index}].name",
                f"argument {argument.name!r} is defined twice",
            )
        seen.add(argument.name)

    timeout = fields.get("timeout")
    working_directory = fields.get("working_directory")
    return TaskSpec(
        name=name,
        command=command,
        buffered=buffered,
        headers=headers,
        meta=meta,
        arguments=arguments,
        history=_parse_history(fields.get("history", history), _join(where, "history")),
        timeout=None
        if timeout is None
        else _parse_timeout(timeout, _join(where, "timeout")),
        working_directory=None
        if working_directory is None
        else (
            _parse_working_directory(
                working_directory, _join(where, "working_directory")
            )
        ),
        environment=_parse_environment(
            _optional(fields, "environment", {}), _join(where, "environment")
        ),
        systemd_properties=_parse_systemd_properties(
            _optional(fields, "systemd_properties", {}),
            _join(where, "systemd_properties"),
        ),
    )


def _parse_user(name: str, value: object, tasks: Mapping[str, TaskSpec]) -> UserSpec:
    if not name:
        raise ConfigError("users", "a user's name must not be empty")
    where = f"users.{name}"
    fields = _mapping({} if value is None else value, where)
    _no_unknown_keys(fields, frozenset(_PERMISSIONS), where)
    permissions: dict[str, frozenset[str]] = {}
    for permission in _PERMISSIONS:
        here = _join(where, permission)
        if permission not in fields:
            raise ConfigError(here, "is required (use [] for none)")
        if fields[permission] is None:
            raise ConfigError(here, "must be a list of task names (use [] for none)")
        names = _list(fields[permission], here)
        for index, task_name in enumerate(names):
            task_name = _string(task_name, f"{here}[{index}]")
            if task_name not in tasks:
                raise ConfigError(f"{here}[{index}]", f"no task named {task_name!r}")
        permissions[permission] = frozenset(names)
    return UserSpec(name=name, **permissions)


def _parse_heartbeat(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(
            "heartbeat", f"must be a number of seconds, not {_describe(value)}"
        )
    if not MIN_HEARTBEAT <= value <= MAX_HEARTBEAT:
        raise ConfigError(
            "heartbeat",
            f"must be a number of seconds from {MIN_HEARTBEAT} to {MAX_HEARTBEAT}",
        )
    return float(value)


def _parse_trusted_proxies(value: object) -> tuple[Network, ...]:
    if value is None:
        return DEFAULT_TRUSTED_PROXIES
    if not isinstance(value, list):
        raise ConfigError(
            "trusted_proxies",
            f"must be a list of addresses or networks, not {_describe(value)}",
        )
    networks = []
    for index, entry in enumerate(value):
        where = f"trusted_proxies[{index}]"
        if not isinstance(entry, str):
            raise ConfigError(
                where, f"must be an address or network, not {_describe(entry)}"
            )
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ConfigError(
                where, f"{entry!r} is not an IP address or network"
            ) from None
    return tuple(networks)


def parse_config(text: str | bytes, source: str = "<config>") -> Config:
    """
    Parse and validate configuration text.

    @param text: the YAML document.
    @param source: the file's name, used in messages about the file as a whole.
    @return: the validated configuration.
    @raise ConfigError: if the text is not valid YAML or not a valid
        configuration.
    """
    try:
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{source}, line {mark.line + 1}" if mark else source
        problem = error.problem or error.context or "invalid YAML"
        raise ConfigError(where, f"invalid YAML: {problem}") from None
    except yaml.YAMLError as error:
        raise ConfigError(source, f"invalid YAML: {error}") from None

    if document is None:
        raise ConfigError(source, "is empty; it needs at least a 'tasks' section")
    top = _mapping(document, source)
    _no_unknown_keys(top, _TOP_KEYS, "")

    if "tasks" not in top:
        raise ConfigError("tasks", "is required")
    task_fields = _mapping(_optional(top, "tasks", {}), "tasks")
    history = DEFAULT_HISTORY
    if "history" in top:
        history = _parse_history(top["history"], "history")
    tasks = {
        name: _parse_task(name, value, history) for name, value in task_fields.items()
    }

    for task in tasks.values():
        for index, argument in enumerate(task.arguments):
            if argument.enum_source is None:
                continue
            here = f"tasks.{task.name}.arguments[{index}].enum_source"
            source_task = tasks.get(argument.enum_source)
            if source_task is task:
                raise ConfigError(
                    here, "a task cannot take its values from its own output"
                )
            if source_task is None:
                raise ConfigError(here, f"no task named {argument.enum_source!r}")
            if not source_task.buffered:
                raise ConfigError(
                    here,
                    f"task {argument.enum_source!r} is unbuffered, so its output"
                    " is not kept to take values from",
                )

    users = None
    if "users" in top:
        if top["users"] is None:
            raise ConfigError(
                "users",
                "is empty; list users, or remove the key to open every task to all",
            )
        user_fields = _mapping(top["users"], "users")
        users = {
            name: _parse_user(name, value, tasks) for name, value in user_fields.items()
        }

    return Config(
        tasks=tasks,
        users=users,
        heartbeat=_parse_heartbeat(top.get("heartbeat")),
        trusted_proxies=_parse_trusted_proxies(top.get("trusted_proxies")),
    )


def load_config(path: str) -> Config:
    """
    Read and validate a configuration file.

    @param path: the file's path.
    @return: the validated configuration.
    @raise ConfigError: if the file cannot be read or is not valid.
    """
    try:
        with open(path, "rb") as config_file:
            text = config_file.read()
    except OSError as error:
        raise ConfigError(path, f"cannot read: {error.strerror}") from None
    return parse_config(text, source=path)
