"""
Runs as Taru records them, and what C{taru-cli} makes of how a run ended:
the exit status to end with, and a few words for people.
"""

from __future__ import annotations

from collections.abc import Mapping

from attrs import frozen

from taru.client.exits import EXIT_FAILURE, EXIT_SIGNAL_BASE, ClientError

# Who Taru says stopped a run when the request named no user.
_NOBODY = "anonymous"


def _whole(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


@frozen
class RunRecord:
    """
    What Taru tells of one run of a task.

    @ivar ended: whether the run has ended.
    @ivar exit_code: its exit code, once it exited by itself.
    @ivar signal: the signal that ended it, if one did.
    @ivar duration: the seconds it ran or has run, when known.
    """

    run_id: int
    task: str
    user: str | None
    started_at: str | None
    ended: bool
    duration: float | None
    exit_code: int | None
    signal: int | None
    timed_out: bool
    stopped_by: str | None
    arguments: Mapping[str, str]
    output_size: int | None
    output_kept: bool

    @classmethod
    def from_json(cls, record: object) -> RunRecord:
        """
        Read a run's record as Taru sends it.

        @raise ClientError: it is not a record of a run.
        """
        if not isinstance(record, dict) or _whole(record.get("id")) is None:
            raise ClientError("Taru sent something that is not a run's record")
        arguments = record.get("arguments")
        duration = record.get("duration")
        return cls(
            run_id=record["id"],
            task=str(record.get("task", "")),
            user=_text_or_none(record.get("user")),
            started_at=_text_or_none(record.get("started_at")),
            ended=record.get("state") != "running",
            duration=(
                float(duration)
                if isinstance(duration, (int, float)) and not isinstance(duration, bool)
                else None
            ),
            exit_code=_whole(record.get("exit_code")),
            signal=_whole(record.get("signal")),
            timed_out=record.get("timed_out") is True,
            stopped_by=_text_or_none(record.get("stopped_by")),
            arguments=(
                {str(name): str(value) for name, value in arguments.items()}
                if isinstance(arguments, dict)
                else {}
            ),
            output_size=_whole(record.get("output_size")),
            output_kept=record.get("output_kept") is True,
        )


def exit_status_of(record: RunRecord) -> tuple[int, str | None]:
    """
    The exit status C{taru-cli} ends with for a run that ended, and a note
    for standard error when the run did not exit by itself.

    @return: the run's exit code; 128 plus the signal when a signal ended
        it; L{EXIT_FAILURE} when Taru does not know how it ended.
    """
    name = f"run {record.run_id} of {record.task!r}"
    stop = _why_stopped(record)
    cause = None if stop is None else f"{name} {stop}"
    if record.exit_code is not None:
        note = None if cause is None else f"{cause}; it exited with {record.exit_code}"
        return record.exit_code, note
    if record.signal is not None:
        how = f"ended by signal {record.signal}"
        note = f"{name} {how}" if cause is None else f"{cause}: {how}"
        return EXIT_SIGNAL_BASE + record.signal, note
    return EXIT_FAILURE, f"Taru does not know how {name} ended"


def _why_stopped(record: RunRecord) -> str | None:
    """
    Why a run was stopped, as the end of a sentence that names the run; or
    L{None} when nobody stopped it.
    """
    if record.timed_out or record.stopped_by == "timeout":
        return "timed out"
    if record.stopped_by == "shutdown":
        return "was stopped as Taru shut down"
    if record.stopped_by == _NOBODY:
        return "was stopped"
    if record.stopped_by is not None:
        return f"was stopped by {record.stopped_by}"
    return None


def describe_result(record: RunRecord) -> str:
    """
    How a run ended, in a few words: C{exit 0}, C{signal 9},
    C{timed out (signal 15)}, C{stopped by alice (signal 15)}, C{running}.
    """
    if not record.ended:
        return "running"
    if record.exit_code is not None:
        result = f"exit {record.exit_code}"
    elif record.signal is not None:
        result = f"signal {record.signal}"
    else:
        result = "unknown"
    if record.timed_out or record.stopped_by == "timeout":
        return f"timed out ({result})"
    if record.stopped_by == "shutdown":
        return f"stopped at shutdown ({result})"
    if record.stopped_by == _NOBODY:
        return f"stopped ({result})"
    if record.stopped_by is not None:
        return f"stopped by {record.stopped_by} ({result})"
    return result
