"""
The run history, the audit trail and per-task settings, with the real Taru:
records of who ran what from where, past runs' outputs, the history kept
across a restart, timeouts, working directories and environments.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from twisted.trial.unittest import TestCase
from twisted.web.http_headers import Headers

from taru.test.integration.harness import Taru, http_client

HISTORY_CONFIG = """
    history: 2
    tasks:
      say:
        command: [sh, -c, 'echo "said $1"; exit "$2"', say, $words, $code]
        arguments:
        - {name: words, datatype: String}
        - {name: code, datatype: Int}
      quiet:
        command: [echo, unkept]
        buffered: false
      nap:
        command: [sleep, "30"]
    users:
      alice: {can_run: [say, quiet, nap], can_view_status: [say, quiet, nap],
              can_view_output: [say, quiet, nap]}
      watcher: {can_run: [], can_view_status: [say], can_view_output: []}
"""


async def call(
    client: Any,
    method: str,
    url: str,
    user: str | None = "alice",
    forwarded_for: str | None = None,
    **kwargs: Any,
) -> tuple[int, Headers, bytes]:
    headers = Headers()
    if user is not None:
        headers.addRawHeader("X-User", user)
    if forwarded_for is not None:
        headers.addRawHeader("X-Forwarded-For", forwarded_for)
    response = await client.request(method, url, headers=headers, **kwargs)
    return response.code, response.headers, await response.content()


async def say(client: Any, taru: Taru, words: str, code: int) -> int:
    """
    Run C{say} to its end and return the run's number.
    """
    status, headers, body = await call(
        client,
        "POST",
        taru.url("/api/v1/task/say/status"),
        json={"words": words, "code": code},
    )
    assert status == 200, (status, body)
    return int(run_of(headers))


def run_of(headers: Headers) -> str:
    """
    The run a response says it started, in C{Taru-Run}.
    """
    [run] = headers.getRawHeaders("Taru-Run", [])
    return run


class HistoryTests(TestCase):
    """
    Runs are recorded and kept, the last few of each task.
    """

    async def test_records_and_outputs(self) -> None:
        """
        Each run's record says who started it, from which address (the one a
        trusted proxy forwards for), with which arguments, and how it ended;
        its output stays readable after later runs; records and outputs
        beyond the last two are forgotten.
        """
        taru = await Taru(self, HISTORY_CONFIG).start()
        client = http_client(self)
        first = await say(client, taru, "one two", 0)
        await call(
            client,
            "POST",
            taru.url("/api/v1/task/say/status"),
            forwarded_for="198.51.100.7",
            json={"words": "three", "code": 3},
        )
        second = first + 1
        third = await say(client, taru, "four", 0)

        code, _, listed = await call(client, "GET", taru.url("/api/v1/task/say/runs"))
        runs = json.loads(listed)
        outputs = [
            await call(client, "GET", taru.url(f"/api/v1/task/say/runs/{run}/output"))
            for run in (second, third)
        ]
        gone = [
            (await call(client, "GET", taru.url(path)))[0]
            for path in (
                f"/api/v1/task/say/runs/{first}",
                f"/api/v1/task/say/runs/{first}/output",
            )
        ]

        self.assertEqual(code, 200)
        self.assertEqual([run["id"] for run in runs], [third, second])
        record = runs[1]
        self.assertEqual(
            {
                key: record[key]
                for key in record
                if key not in ("started_at", "ended_at", "duration")
            },
            {
                "id": second,
                "task": "say",
                "user": "alice",
                "address": "198.51.100.7",
                "arguments": {"words": "three", "code": "3"},
                "state": "finished",
                "exit_code": 3,
                "signal": None,
                "timed_out": False,
                "stopped_by": None,
                "output_size": len(b"said three\n"),
                "output_kept": True,
            },
        )
        self.assertEqual(runs[0]["address"], "127.0.0.1")
        self.assertEqual(
            [(status, body) for status, _, body in outputs],
            [(200, b"said three\n"), (200, b"said four\n")],
        )
        self.assertEqual(gone, [404, 404])

    async def test_permissions(self) -> None:
        """
        Runs are listed to those who may see the task's status, and their
        outputs given to those who may see its output; to others the task
        does not exist.
        """
        taru = await Taru(self, HISTORY_CONFIG).start()
        client = http_client(self)
        run = await say(client, taru, "secret", 0)

        answers = [
            (await call(client, "GET", taru.url(path), user))[0]
            for path, user in [
                ("/api/v1/task/say/runs", "watcher"),
                (f"/api/v1/task/say/runs/{run}", "watcher"),
                (f"/api/v1/task/say/runs/{run}/output", "watcher"),
                ("/api/v1/task/quiet/runs", "watcher"),
                ("/api/v1/task/say/runs", None),
            ]
        ]

        self.assertEqual(answers, [200, 200, 404, 404, 401])

    async def test_run_numbers_as_written(self) -> None:
        """
        A run is found by its number in plain decimal only: leading zeros,
        signs and digits of other scripts find nothing.
        """
        taru = await Taru(self, HISTORY_CONFIG).start()
        client = http_client(self)
        run = await say(client, taru, "x", 0)

        answers = {
            written: (
                await call(client, "GET", taru.url(f"/api/v1/task/say/runs/{written}"))
            )[0]
            for written in [
                str(run),
                f"0{run}",
                f"+{run}",
                "%D9%A1",
                "%EF%BC%91",
                "1e0",
            ]
        }

        self.assertEqual(
            answers,
            {
                str(run): 200,
                f"0{run}": 404,
                f"+{run}": 404,
                "%D9%A1": 404,
                "%EF%BC%91": 404,
                "1e0": 404,
            },
        )

    async def test_limit(self) -> None:
        """
        C{?limit=N} gives the N latest runs; a limit that is not a number of
        runs gets 400.
        """
        taru = await Taru(self, HISTORY_CONFIG).start()
        client = http_client(self)
        await say(client, taru, "one", 0)
        latest = await say(client, taru, "two", 0)

        _, _, one = await call(client, "GET", taru.url("/api/v1/task/say/runs?limit=1"))
        bad = [
            (await call(client, "GET", taru.url(f"/api/v1/task/say/runs?limit={v}")))[0]
            for v in ["0", "-1", "x", "100001"]
        ]

        self.assertEqual([run["id"] for run in json.loads(one)], [latest])
        self.assertEqual(bad, [400] * 4)

    async def test_unbuffered_output_not_kept(self) -> None:
        """
        An unbuffered task's runs are recorded with the size of their output,
        which is not kept.
        """
        taru = await Taru(self, HISTORY_CONFIG).start()
        client = http_client(self)
        _, headers, _ = await call(
            client, "POST", taru.url("/api/v1/task/quiet/output")
        )
        run = run_of(headers)
        await call(client, "GET", taru.url("/api/v1/task/quiet/status"))

        _, _, record = await call(
            client, "GET", taru.url(f"/api/v1/task/quiet/runs/{run}")
        )
        code, _, message = await call(
            client, "GET", taru.url(f"/api/v1/task/quiet/runs/{run}/output")
        )

        self.assertEqual(
            {
                key: value
                for key, value in json.loads(record).items()
                if key in ("output_size", "output_kept")
            },
            {"output_size": 7, "output_kept": False},
        )
        self.assertEqual(
            (code, message.decode()),
            (404, f"the output of run {run} of task 'quiet' is not kept\n"),
        )

    async def test_kept_across_restart(self) -> None:
        """
        After a restart the history and the kept outputs are there, and new
        runs are numbered after the old ones.
        """
        first = await Taru(self, HISTORY_CONFIG).start()
        client = http_client(self)
        old = await say(client, first, "before", 0)
        await first.stop()

        second = await first.successor().start()
        _, _, listed = await call(client, "GET", second.url("/api/v1/task/say/runs"))
        _, _, output = await call(
            client, "GET", second.url(f"/api/v1/task/say/runs/{old}/output")
        )
        new = await say(client, second, "after", 0)

        self.assertEqual([run["id"] for run in json.loads(listed)], [old])
        self.assertEqual(output, b"said before\n")
        self.assertGreater(new, old)

    async def test_audit_log(self) -> None:
        """
        Taru's log says who started and who stopped each run, from where and
        with which arguments.
        """
        taru = await Taru(self, HISTORY_CONFIG).start()
        client = http_client(self)
        run = await say(client, taru, "logged", 0)
        await call(
            client,
            "POST",
            taru.url("/api/v1/task/say/stop"),
            forwarded_for="198.51.100.9",
        )

        self.assertRegex(
            taru.log,
            rf"task say started as run {run} by alice from 127\.0\.0\.1:"
            r" \['sh', '-c', .*'logged', '0'\]",
        )
        self.assertIn(f"task say run {run} ended: exit code 0", taru.log)


SETTINGS_CONFIG = """
    tasks:
      where:
        command: [sh, -c, 'pwd; echo "$GREETING|$TARU_USER|$TARU_RUN_ID|$TARU_TASK"']
        working_directory: {directory}
        environment: {{GREETING: hello there}}
      slow:
        command: [sleep, "30"]
        timeout: 1
    users:
      alice: {{can_run: [where, slow], can_view_status: [where, slow],
              can_view_output: [where, slow]}}
"""


class TaskSettingsTests(TestCase):
    """
    A task's working directory, environment and timeout.
    """

    async def test_directory_and_environment(self) -> None:
        """
        The task runs in its working directory, with its variables, the user
        who started it and the run's number.
        """
        directory = os.path.realpath(self.mktemp())
        os.makedirs(directory)
        taru = await Taru(self, SETTINGS_CONFIG.format(directory=directory)).start()
        client = http_client(self)

        _, headers, output = await call(
            client, "POST", taru.url("/api/v1/task/where/output")
        )

        run = run_of(headers)
        self.assertEqual(
            output.decode().splitlines(),
            [directory, f"hello there|alice|{run}|where"],
        )

    async def test_timeout(self) -> None:
        """
        A run that passes its timeout is stopped; the task list and the run's
        record say it timed out.
        """
        directory = os.path.realpath(self.mktemp())
        os.makedirs(directory)
        taru = await Taru(self, SETTINGS_CONFIG.format(directory=directory)).start()
        client = http_client(self)

        _, headers, status = await call(
            client, "POST", taru.url("/api/v1/task/slow/status")
        )
        run = run_of(headers)
        _, _, listed = await call(client, "GET", taru.url("/api/v1/tasks"))
        _, _, record = await call(
            client, "GET", taru.url(f"/api/v1/task/slow/runs/{run}")
        )

        task = json.loads(listed)["slow"]
        details = json.loads(record)
        self.assertEqual(status, b"null")
        self.assertEqual((task["timed_out"], task["exit_code"]), (True, None))
        self.assertEqual(
            (details["timed_out"], details["stopped_by"], details["signal"]),
            (True, "timeout", 15),
        )
        self.assertLess(details["duration"], 5)
        self.assertTrue(re.search(r"ran past its timeout of 1\.0s", taru.log))


class JSONLogTests(TestCase):
    """
    With C{--log-format json}, each log event is a JSON object per line,
    with its fields.
    """

    async def test_audit_events(self) -> None:
        """
        The start, stop and end of a run are events whose fields say which
        task and run, who, from where and with which arguments.
        """
        taru = await Taru(self, HISTORY_CONFIG, ["--log-format", "json"]).start()
        client = http_client(self)
        run = await say(client, taru, "logged", 4)
        _, headers, _ = await call(client, "POST", taru.url("/api/v1/task/nap"))
        nap = int(run_of(headers))
        await call(
            client,
            "POST",
            taru.url("/api/v1/task/nap/stop"),
            forwarded_for="198.51.100.9",
        )
        await call(client, "GET", taru.url("/api/v1/task/nap/status"))

        events = [json.loads(line) for line in taru.log.splitlines() if line]
        fields = ("audit", "task", "run_id", "user", "address", "stopped_by")
        audit = [
            tuple(event.get(key) for key in fields)
            for event in events
            if "audit" in event
        ]

        self.assertEqual(
            audit,
            [
                ("started", "say", run, "alice", "127.0.0.1", None),
                ("ended", "say", run, "alice", None, None),
                ("started", "nap", nap, "alice", "127.0.0.1", None),
                ("stopped", "nap", nap, "alice", "198.51.100.9", None),
                ("ended", "nap", nap, "alice", None, "alice"),
            ],
        )
        [started] = [event for event in events if event.get("run_id") == run][:1]
        self.assertEqual(started["arguments"], {"words": "logged", "code": "4"})
