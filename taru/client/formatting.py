"""
Text for people: the task list and a task's runs as tables, and the
durations, sizes and times in them.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from taru.client.records import RunRecord, describe_result

# How many of an Enum's values the task list shows.
SHOWN_VALUES = 4


def format_table(headings: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """
    Columns aligned with two spaces between them, headings first, without
    trailing spaces.
    """
    widths = [
        max(len(row[column]) for row in [headings, *rows])
        for column in range(len(headings))
    ]
    lines = []
    for row in [headings, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def describe_argument(argument: Mapping[str, Any]) -> str:
    """
    An argument as the task list shows it: C{times:Int},
    C{host:Enum(localhost|::1)}.
    """
    described = f"{argument.get('name')}:{argument.get('datatype')}"
    if argument.get("datatype") != "Enum":
        return described
    values = argument.get("values")
    source = argument.get("enum_source")
    if isinstance(values, list):
        shown = [str(value) for value in values[:SHOWN_VALUES]]
        if len(values) > SHOWN_VALUES:
            shown.append(f"+{len(values) - SHOWN_VALUES} more")
        return f"{described}({'|'.join(shown) or 'no values'})"
    if "values" in argument and source is not None:
        return f"{described}(from {source}, which has not run yet)"
    if "values" in argument:
        return f"{described}(not ready)"
    if source is not None:
        return f"{described}(from {source})"
    return described


def _permissions(task: Mapping[str, Any]) -> str:
    can_run = task.get("can_run") is True
    can_read = task.get("can_view_output") is True
    if can_run and can_read:
        return "run, read output"
    if can_run:
        return "run"
    if can_read:
        return "read output"
    return "see status"


def _last_exit(task: Mapping[str, Any]) -> str:
    exit_code = task.get("exit_code")
    if task.get("state") != "finished":
        return "-"
    return "signal" if exit_code is None else str(exit_code)


def format_tasks(listing: Mapping[str, Any]) -> str:
    """
    The task list as a table: name, state, the last run's exit code, the
    arguments with their types, and what the user may do.
    """
    if not listing:
        return "no tasks"
    rows = []
    for name, task in listing.items():
        arguments = task.get("arguments") or []
        rows.append(
            [
                str(name),
                str(task.get("state", "")),
                _last_exit(task),
                " ".join(describe_argument(argument) for argument in arguments) or "-",
                _permissions(task),
            ]
        )
    return format_table(["TASK", "STATE", "EXIT", "ARGUMENTS", "YOU MAY"], rows)


def format_duration(seconds: float | None) -> str:
    """
    A duration for people: C{0.012s}, C{12.3s}, C{3m05s}, C{2h01m}.
    """
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.3f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def format_size(size: int | None) -> str:
    """
    A number of bytes for people: C{512 B}, C{1.5 KiB}, C{3.0 MiB}.
    """
    if size is None:
        return "-"
    amount, unit = float(size), "B"
    for larger in ("KiB", "MiB", "GiB"):
        if amount < 1024:
            break
        amount, unit = amount / 1024, larger
    return f"{size} B" if unit == "B" else f"{amount:.1f} {unit}"


_FRACTION = re.compile(r"\.\d+(?=Z$|[+-]\d\d:\d\d$)")


def format_time(timestamp: str | None) -> str:
    """
    An ISO 8601 time from Taru, without its fraction of a second.
    """
    if timestamp is None:
        return "-"
    return _FRACTION.sub("", timestamp)


def format_runs(records: Sequence[RunRecord]) -> str:
    """
    A task's runs as a table: number, start, duration, user, how it ended,
    its output's size, and its arguments.
    """
    if not records:
        return "no runs"
    rows = [
        [
            str(record.run_id),
            format_time(record.started_at),
            format_duration(record.duration),
            record.user or "-",
            describe_result(record),
            format_size(record.output_size) if record.output_kept else "not kept",
            " ".join(
                f"{name}={shlex.quote(value)}"
                for name, value in record.arguments.items()
            )
            or "-",
        ]
        for record in records
    ]
    headings = ["RUN", "STARTED", "DURATION", "USER", "RESULT", "OUTPUT", "ARGUMENTS"]
    return format_table(headings, rows)


def utc_time(seconds: float) -> str:
    """
    A moment as C{2026-12-04T21:00:00Z}.
    """
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
