"""
The run history: a record of every run (who started it, with which arguments,
from where, when, how it ended, how much it wrote) in an SQLite database in
the state folder, and the output of each buffered run, for the last few runs
of each task.

A run's output file is a second name (a hard link) for the task's spool file
of that run, made when the run starts: it costs no copy, grows as the run
writes, and stays when the next run's spool file takes the task's name.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from attrs import frozen
from twisted.logger import Logger

from taru.output import Output, read_kept
from taru.runners import ExitStatus

# How long a statement waits for a lock that another process holds.
LOCK_WAIT_SECONDS = 0.2

# The largest run number SQLite stores.
MAX_RUN_ID = 2**63 - 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task TEXT NOT NULL,
    user TEXT,
    address TEXT,
    arguments TEXT NOT NULL,
    argv TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL,
    exit_code INTEGER,
    signal INTEGER,
    timed_out INTEGER NOT NULL DEFAULT 0,
    stopped_by TEXT,
    output_size INTEGER NOT NULL DEFAULT 0,
    output_kept INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_by_task ON runs (task, id);
"""

_COLUMNS = (
    "id, task, user, address, arguments, argv, started_at, ended_at,"
    " exit_code, signal, timed_out, stopped_by, output_size, output_kept"
)


@frozen
class RunRecord:
    """
    What the history holds of one run.

    @ivar run_id: the run's number, never given to another run.
    @ivar user: who started it, or L{None} when unknown or without users.
    @ivar address: the address of the client that started it, if known.
    @ivar arguments: its argument values by name.
    @ivar argv: the command it ran.
    @ivar started_at: when it started, in seconds since the epoch.
    @ivar ended_at: when it ended, or L{None} while it runs.
    @ivar status: how it ended, or L{None} while it runs or when unknown.
    @ivar timed_out: whether it was stopped for running past its timeout.
    @ivar stopped_by: who asked for it to be stopped, if anyone did.
    @ivar output_size: how many bytes of output it wrote, as far as known.
    @ivar output_kept: whether its output can still be read.
    """

    run_id: int
    task: str
    user: str | None
    address: str | None
    arguments: Mapping[str, str]
    argv: tuple[str, ...]
    started_at: float
    ended_at: float | None
    status: ExitStatus | None
    timed_out: bool
    stopped_by: str | None
    output_size: int
    output_kept: bool


def _record(row: Sequence[Any]) -> RunRecord:
    (run_id, task, user, address, arguments, argv, started_at, ended_at) = row[:8]
    exit_code, signal, timed_out, stopped_by, output_size, output_kept = row[8:]
    status = None
    if exit_code is not None or signal is not None:
        status = ExitStatus(exit_code=exit_code, signal=signal)
    return RunRecord(
        run_id=run_id,
        task=task,
        user=user,
        address=address,
        arguments=json.loads(arguments),
        argv=tuple(json.loads(argv)),
        started_at=started_at,
        ended_at=ended_at,
        status=status,
        timed_out=bool(timed_out),
        stopped_by=stopped_by,
        output_size=output_size,
        output_kept=bool(output_kept),
    )


class HistoryError(Exception):
    """
    The history's database cannot be opened or used.
    """


class History:
    """
    The run history of every task, on disk.
    """

    _log = Logger()

    def __init__(self, directory: str) -> None:
        """
        @param directory: the state folder: the database is
            C{history.sqlite3} in it, run outputs are in C{runs/}.
        @raise HistoryError: when the database cannot be opened.
        """
        self._outputs = os.path.join(directory, "runs")
        path = os.path.join(directory, "history.sqlite3")
        self._lock = self._lock_folder(directory)
        try:
            # Waits at most that long for a lock someone else holds: the
            # database is used from the reactor's thread.
            self._database = sqlite3.connect(
                path,
                timeout=LOCK_WAIT_SECONDS,
                isolation_level=None,
                check_same_thread=False,
            )
            # Committing without waiting for the disk: a crash may lose the
            # last moments of history, never the database.
            self._database.execute("PRAGMA journal_mode=WAL")
            self._database.execute("PRAGMA synchronous=NORMAL")
            self._database.executescript(_SCHEMA)
            # Found out now rather than at the first run: a database this
            # Taru may read but not write.
            self._database.execute("BEGIN IMMEDIATE")
            self._database.execute("ROLLBACK")
        except (sqlite3.Error, OSError) as error:
            os.close(self._lock)
            raise HistoryError(f"{path}: {error}") from None

    @staticmethod
    def _lock_folder(directory: str) -> int:
        """
        Make sure no other Taru uses the state folder: two would run the same
        tasks twice at once and forget each other's runs.

        @return: the descriptor that holds the lock while Taru runs.
        @raise HistoryError: when another process holds it, or the folder
            cannot be used.
        """
        path = os.path.join(directory, "taru.lock")
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise HistoryError(f"{path}: {error.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            raise HistoryError(
                f"{directory}: another Taru (process {holder or 'unknown'}) uses"
                " this state folder; give each Taru a folder of its own"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, b"%d\n" % os.getpid(), 0)
        return fd

    def close(self) -> None:
        self._database.close()
        os.close(self._lock)

    def _execute(self, statement: str, values: Sequence[Any] = ()) -> sqlite3.Cursor:
        """
        Run one statement.

        @raise HistoryError: when the database fails, such as on a full disk
            or when another process holds it locked.
        """
        try:
            return self._database.execute(statement, values)
        except sqlite3.Error as error:
            raise HistoryError(f"the run history cannot be used: {error}") from None

    def begin(
        self,
        task: str,
        user: str | None,
        address: str | None,
        arguments: Mapping[str, str],
        argv: Sequence[str],
        started_at: float,
    ) -> int:
        """
        Record a run that is starting.

        @return: its run number.
        """
        cursor = self._execute(
            "INSERT INTO runs (task, user, address, arguments, argv, started_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                task,
                user,
                address,
                json.dumps(dict(arguments)),
                json.dumps(list(argv)),
                started_at,
            ),
        )
        run_id = cursor.lastrowid
        assert run_id is not None
        return run_id

    def forget(self, run_id: int) -> None:
        """
        The run did not start after all: drop its record.
        """
        self._execute("DELETE FROM runs WHERE id = ?", (run_id,))

    def output_path(self, run_id: int) -> str:
        """
        Where a run's output is kept.
        """
        return os.path.join(self._outputs, f"{run_id}.out")

    def keep_output(self, run_id: int, spool_path: str) -> None:
        """
        Keep a buffered run's output under the run's own name, as a second
        name for its spool file. When that cannot be done the run is recorded
        without its output, and the rest goes on.
        """
        try:
            os.makedirs(self._outputs, mode=0o700, exist_ok=True)
            os.link(spool_path, self.output_path(run_id))
        except OSError as error:
            self._log.warn(
                "the output of run {run_id} is not kept in the history: {error}",
                run_id=run_id,
                error=str(error),
            )
            return
        try:
            self._execute("UPDATE runs SET output_kept = 1 WHERE id = ?", (run_id,))
        except HistoryError as error:
            self._log.warn(
                "run {run_id} is not marked as having its output kept: {error}",
                run_id=run_id,
                error=str(error),
            )

    def output(self, run_id: int) -> Output | None:
        """
        A past run's output, as kept, or L{None} when it is not kept.
        """
        return read_kept(self.output_path(run_id))

    def end(
        self,
        run_id: int,
        ended_at: float,
        status: ExitStatus | None,
        timed_out: bool,
        stopped_by: str | None,
        output_size: int,
    ) -> None:
        """
        Record how a run ended.
        """
        self._execute(
            "UPDATE runs SET ended_at = ?, exit_code = ?, signal = ?,"
            " timed_out = ?, stopped_by = ?, output_size = ? WHERE id = ?",
            (
                ended_at,
                None if status is None else status.exit_code,
                None if status is None else status.signal,
                int(timed_out),
                stopped_by,
                output_size,
                run_id,
            ),
        )

    def prune(self, task: str, keep: int, spare: int | None = None) -> None:
        """
        Forget all but the C{keep} latest runs of a task, and their outputs.

        @param spare: a run to keep in any case, such as one still running.
        """
        rows = self._execute(
            "SELECT id, output_kept FROM runs WHERE task = ? AND id != ?"
            " ORDER BY id DESC LIMIT -1 OFFSET ?",
            (task, -1 if spare is None else spare, keep),
        ).fetchall()
        for run_id, output_kept in rows:
            if output_kept:
                try:
                    os.unlink(self.output_path(run_id))
                except FileNotFoundError:
                    pass
        for run_id, _ in rows:
            self._execute("DELETE FROM runs WHERE id = ?", (run_id,))

    def runs(self, task: str, limit: int = -1) -> list[RunRecord]:
        """
        A task's runs, newest first.
        """
        rows = self._execute(
            f"SELECT {_COLUMNS} FROM runs WHERE task = ? ORDER BY id DESC LIMIT ?",
            (task, limit),
        ).fetchall()
        return [_record(row) for row in rows]

    def get(self, task: str, run_id: int) -> RunRecord | None:
        """
        One run of a task, or L{None} when the history holds no such run.
        """
        if not 0 < run_id <= MAX_RUN_ID:
            return None
        row = self._execute(
            f"SELECT {_COLUMNS} FROM runs WHERE task = ? AND id = ?", (task, run_id)
        ).fetchone()
        return None if row is None else _record(row)

    def unfinished(self) -> list[RunRecord]:
        """
        The runs recorded as started and not ended: running now, or cut short
        when an earlier Taru stopped without seeing their end.
        """
        rows = self._execute(
            f"SELECT {_COLUMNS} FROM runs WHERE ended_at IS NULL ORDER BY id"
        ).fetchall()
        return [_record(row) for row in rows]
