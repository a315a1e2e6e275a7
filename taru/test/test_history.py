"""
Tests for L{taru.history}: run records in SQLite and the outputs kept with
them.
"""

from __future__ import annotations

import os
import sqlite3
import time

from twisted.trial.unittest import SynchronousTestCase

from taru.history import MAX_RUN_ID, History, HistoryError
from taru.runners import ExitStatus


class HistoryTests(SynchronousTestCase):
    """
    L{History} records runs, keeps the latest of each task, and survives
    being opened again.
    """

    def setUp(self) -> None:
        self.directory = self.mktemp()
        self.history = History(self.directory)
        self.addCleanup(self.history.close)

    def begin(self, task: str = "greet", started_at: float = 100.0) -> int:
        return self.history.begin(
            task, "alice", "192.0.2.7", {"host": "a b"}, ["ping", "a b"], started_at
        )

    def spool_file(self, contents: bytes) -> str:
        path: str = self.mktemp() + ".out"
        with open(path, "wb") as spool:
            spool.write(contents)
        return path

    def test_begin_and_end(self) -> None:
        """
        A run's record holds what it was begun with and how it ended.
        """
        run_id = self.begin()
        self.history.end(run_id, 103.5, ExitStatus(3, None), False, "bob", 42)

        record = self.history.get("greet", run_id)

        assert record is not None
        self.assertEqual(
            (
                record.user,
                record.address,
                record.arguments,
                record.argv,
                record.started_at,
                record.ended_at,
                record.status,
                record.timed_out,
                record.stopped_by,
                record.output_size,
                record.output_kept,
            ),
            (
                "alice",
                "192.0.2.7",
                {"host": "a b"},
                ("ping", "a b"),
                100.0,
                103.5,
                ExitStatus(3, None),
                False,
                "bob",
                42,
                False,
            ),
        )

    def test_running_run(self) -> None:
        """
        A run that has not ended has no end time and no status, and is among
        the unfinished ones.
        """
        run_id = self.begin()

        record = self.history.get("greet", run_id)

        assert record is not None
        self.assertEqual((record.ended_at, record.status), (None, None))
        self.assertEqual([each.run_id for each in self.history.unfinished()], [run_id])

    def test_numbers_are_never_reused(self) -> None:
        """
        Run numbers grow, even after the latest run was forgotten and after
        the history is opened again.
        """
        first = self.begin()
        second = self.begin()
        self.history.forget(second)
        self.history.close()
        self.history = History(self.directory)

        third = self.begin()

        self.assertTrue(first < second < third, (first, second, third))
        self.assertIsNone(self.history.get("greet", second))

    def test_runs_newest_first_by_task(self) -> None:
        """
        A task's runs come newest first, without other tasks' runs.
        """
        first = self.begin("greet")
        self.begin("other")
        second = self.begin("greet")

        self.assertEqual(
            [record.run_id for record in self.history.runs("greet")], [second, first]
        )

    def test_prune_forgets_runs_and_outputs(self) -> None:
        """
        Pruning keeps the newest runs of the task and deletes the others'
        records and kept outputs, leaving other tasks alone.
        """
        run_ids = []
        for number in range(4):
            run_id = self.begin()
            self.history.keep_output(run_id, self.spool_file(b"run %d" % number))
            run_ids.append(run_id)
        other = self.begin("other")

        self.history.prune("greet", 2)

        self.assertEqual(
            [record.run_id for record in self.history.runs("greet")],
            [run_ids[3], run_ids[2]],
        )
        self.assertEqual(
            [os.path.exists(self.history.output_path(i)) for i in run_ids],
            [False, False, True, True],
        )
        self.assertIsNotNone(self.history.get("other", other))

    def test_kept_output(self) -> None:
        """
        A kept output is the spool file under a second name: it reads back
        whole, and grows with the spool file.
        """
        spool_path = self.spool_file(b"first\n")
        run_id = self.begin()
        self.history.keep_output(run_id, spool_path)
        with open(spool_path, "ab") as spool:
            spool.write(b"second\n")
        os.unlink(spool_path)

        output = self.history.output(run_id)

        assert output is not None
        self.addCleanup(output.release)
        record = self.history.get("greet", run_id)
        assert record is not None
        self.assertTrue(record.output_kept)
        self.assertEqual(output.contents(), b"first\nsecond\n")

    def test_output_not_kept(self) -> None:
        """
        When the output cannot be kept (here: no spool file), the run is
        recorded without it, and there is no output to read.
        """
        run_id = self.begin()

        self.history.keep_output(run_id, os.path.join(self.mktemp(), "missing"))

        record = self.history.get("greet", run_id)
        assert record is not None
        self.assertFalse(record.output_kept)
        self.assertIsNone(self.history.output(run_id))
        self.assertEqual(len(self.flushLoggedErrors()), 0)

    def test_unknown_numbers(self) -> None:
        """
        Numbers the history cannot hold, or of another task's run, find
        nothing.
        """
        run_id = self.begin("other")

        for number in (0, -1, MAX_RUN_ID + 1, 10**30, run_id):
            self.assertIsNone(self.history.get("greet", number), number)

    def test_damaged_database(self) -> None:
        """
        A database file that is not one gives an error naming it.
        """
        directory = self.mktemp()
        os.makedirs(directory)
        with open(os.path.join(directory, "history.sqlite3"), "wb") as damaged:
            damaged.write(b"this is not a database" * 100)

        error = self.assertRaises(HistoryError, History, directory)

        self.assertIn("history.sqlite3: file is not a database", str(error))

    def test_one_taru_per_folder(self) -> None:
        """
        A second history on the same folder, as a second Taru would open, is
        refused with the process holding it; once the first is closed, the
        folder may be used again.
        """
        error = self.assertRaises(HistoryError, History, self.directory)

        self.assertIn(f"another Taru (process {os.getpid()})", str(error))
        self.history.close()
        self.history = History(self.directory)

    def test_locked_database(self) -> None:
        """
        A database another process holds locked gives a L{HistoryError} soon,
        not a wait without end.
        """
        other = sqlite3.connect(
            os.path.join(self.directory, "history.sqlite3"), isolation_level=None
        )
        self.addCleanup(other.close)
        other.execute("BEGIN IMMEDIATE")
        started = time.monotonic()

        error = self.assertRaises(HistoryError, self.begin)

        other.execute("ROLLBACK")
        self.assertIn("database is locked", str(error))
        self.assertLess(time.monotonic() - started, 2)
