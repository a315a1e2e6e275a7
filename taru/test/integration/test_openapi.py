"""
The OpenAPI document holds true of the real Taru: Schemathesis reads it from
the running server and drives every operation in it, with generated
parameters, arguments and bodies, as users of different permissions and as
none. Every answer's status code, content type, headers and body must be
what the document says, and none may be a server error.

Nothing is left out: not even C{/events}, whose stream never ends, since
Schemathesis stops reading a stream after a given number of events, which
the heartbeat sends within a fifth of a second.

Schemathesis runs as its command-line program, in a thread of its own, so
that the reactor goes on reading Taru's log meanwhile. It talks to
127.0.0.1 only, with a fixed seed, so that a failure can be replayed: its
output, with the seed and a curl command for each problem, is the failure's
message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

import taru
from taru.test.integration.harness import Taru

PUBLIC = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(taru.__file__))), "public"
)

# Quick tasks of every kind: each type of argument, buffered and not, a
# failing one, one with a content type of its own, one that takes an
# argument named like the status endpoint's flag, and one stopped by its
# timeout. The heartbeat makes /events send an event every tenth of a second.
CONFIG = """
    heartbeat: 0.1
    tasks:
      hosts:
        command: [printf, 'alpha\\nbeta\\n']
      greet:
        command: [echo, hello, $who]
        history: 3
        meta:
          description: Greets someone
        arguments:
        - {name: who, datatype: String}
      count:
        command: [echo, $n]
        arguments:
        - {name: n, datatype: Int}
      ping:
        command: [echo, pinging, $host]
        arguments:
        - {name: host, datatype: Enum, enum_source: hosts}
      stream:
        command: [sh, -c, 'echo one; echo two']
        buffered: false
      fail:
        command: [sh, -c, 'echo failing >&2; exit 3']
      table:
        command: [printf, 'a,b\\n1,2\\n']
        headers:
          content-type: text/csv
          content-disposition: attachment; filename="table.csv"
        meta: {download: true}
      verify:
        command: [echo, $check]
        arguments:
        - {name: check, datatype: String}
      slow:
        command: [sh, -c, 'echo started; sleep 5; echo never']
        timeout: 0.3
    users:
      operator:
        can_run: &every_task [hosts, greet, count, ping, stream, fail, table, verify,
          slow]
        can_view_status: *every_task
        can_view_output: *every_task
      watcher:
        can_run: [hosts]
        can_view_status: [hosts, greet, fail, slow]
        can_view_output: [hosts, slow]
"""

# The task names requests are made for, most of the time.
TASK_NAMES = [
    *("hosts", "greet", "count", "ping", "stream", "fail", "table", "verify"),
    *("slow", "missing"),
]

# Every run uses this seed; Schemathesis prints it too.
SEED = 20261204

# How long one run of Schemathesis may take before the test gives up on it.
PATIENCE = 120.0

# What Schemathesis is told besides the document. Parameter values are drawn
# from dictionaries most of the time, so that requests name tasks, files and
# ranges that exist; the rest are generated freely.
SETTINGS = """
seed = {seed}
workers = 1
{headers}

[generation]
max-examples = {max_examples}
database = "none"

[phases]
stateful.enabled = {stateful}

[dictionaries.tasks]
values = {tasks}

[dictionaries.files]
values = ["index.html", "app.js", "style.css", "favicon.svg", "missing.txt"]

[dictionaries.ranges]
values = ["bytes=0-", "bytes=2-", "bytes=1-3", "bytes=0-0", "bytes=100000-"]

[dictionaries.checks]
values = ["true", "false"]

[parameters]
"path.name" = {{ dictionary = "tasks", probability = 0.9 }}
"path.file" = {{ dictionary = "files", probability = 0.9 }}
"header.Range" = {{ dictionary = "ranges", probability = 0.7 }}
"query.check" = {{ dictionary = "checks", probability = 0.7 }}

# Which arguments a task takes comes from the configuration, which the
# document cannot know: a request the document allows may name arguments
# the task lacks (400). It may also find the task still running (405), or
# ask for a range beyond the output as it is now (416).
[checks.positive_data_acceptance]
expected-statuses = [
  "2xx", "3xx", "400", "401", "403", "404", "405", "409", "416", "429", "5xx",
]

# 416 is how Taru refuses a malformed Range.
[checks.negative_data_rejection]
expected-statuses = [
  "400", "401", "403", "404", "405", "406", "409", "415", "416", "422", "428",
  "429", "5xx",
]

# A stream of events never ends by itself: two are enough to judge it.
[[operations]]
include-operation-id = "events"
max-stream-events = 2

# An unbuffered task's output takes no range, and If-Range naming another
# run asks for the whole output: either way Range is ignored, as HTTP lets a
# server do, malformed or not.
[[operations]]
include-operation-id = ["getOutput", "getRunOutput"]
checks.negative_data_rejection.expected-statuses = [
  "200", "400", "401", "403", "404", "405", "406", "409", "415", "416", "422",
  "428", "429", "5xx",
]

# 520 is what ?check=true answers for a run that did not exit with 0, on
# purpose, so that curl --fail fails; it is in the document.
[[operations]]
include-operation-id = ["getStatus", "runWithStatus"]
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "520"]
"""


def settings(user: str | None, max_examples: int, stateful: bool) -> str:
    """
    The Schemathesis configuration for one run.

    @param user: sent as C{X-User} with every request, or none when L{None}.
    """
    headers = "" if user is None else f'headers = {{ "X-User" = "{user}" }}'
    return SETTINGS.format(
        seed=SEED,
        headers=headers,
        max_examples=max_examples,
        stateful="true" if stateful else "false",
        tasks=json.dumps(TASK_NAMES),
    )


def loopback_environment() -> dict[str, str]:
    """
    Taru's test environment without proxy settings, so that Schemathesis
    talks to Taru on 127.0.0.1 directly.
    """
    return {
        name: value
        for name, value in os.environ.items()
        if not name.lower().endswith("_proxy")
    }


def run_schemathesis(
    url: str, directory: str, config_path: str
) -> subprocess.CompletedProcess[str]:
    """
    Run Schemathesis against the OpenAPI document at C{url}, with every
    check it has, and wait for it to end.
    """
    argv = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        config_path,
        "run",
        url,
        "--checks",
        "all",
        "--no-color",
    ]
    try:
        return subprocess.run(
            argv,
            cwd=directory,
            env=loopback_environment(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PATIENCE,
        )
    except subprocess.TimeoutExpired as timeout:
        # What was captured comes as bytes, even with text=True.
        captured = timeout.stdout or b""
        output = (
            captured.decode("utf-8", "replace")
            if isinstance(captured, bytes)
            else captured
        )
        raise AssertionError(
            f"Schemathesis, seed {SEED}, did not end within {PATIENCE:g} seconds:"
            f"\n{output}"
        ) from None


class OpenAPIConformanceTests(TestCase):
    """
    Schemathesis finds nothing in Taru's answers that its OpenAPI document
    does not allow.
    """

    async def check_conformance(
        self, user: str | None, max_examples: int, stateful: bool = True
    ) -> None:
        """
        Start Taru, and fail with Schemathesis's report when it finds a
        problem, or when Taru logged an error meanwhile.
        """
        taru = await Taru(self, CONFIG, ["--public", PUBLIC]).start()
        directory = os.path.join(taru.directory, "schemathesis")
        os.makedirs(directory)
        config_path = os.path.join(directory, "schemathesis.toml")
        with open(config_path, "w", encoding="utf-8") as config_file:
            config_file.write(settings(user, max_examples, stateful))

        result = await deferToThread(
            run_schemathesis, taru.url("/api/v1/openapi.json"), directory, config_path
        )

        if result.returncode != 0:
            self.fail(
                f"Schemathesis, seed {SEED}, X-User {user!r}, exited with"
                f" {result.returncode} (replay a case with 'st replay ID' in"
                f" {directory}):\n{result.stdout}{result.stderr}"
            )
        # A bug met while a streamed answer was under way cannot change its
        # status any more; Taru logs it.
        self.assertNotIn("Traceback", taru.log)

    async def test_operator(self) -> None:
        """
        A user who may run, view and read every task gets only documented
        answers, from every operation.
        """
        await self.check_conformance("operator", max_examples=15)

    async def test_watcher(self) -> None:
        """
        A user who may see some tasks, read the output of fewer and run one
        gets only documented answers, 404 included for what they may not do.
        """
        await self.check_conformance("watcher", max_examples=10)

    async def test_no_user(self) -> None:
        """
        A request without C{X-User} gets the documented 401, except where no
        user is asked for.
        """
        await self.check_conformance(None, max_examples=3, stateful=False)

    async def test_unknown_user(self) -> None:
        """
        A request naming a user the configuration lacks gets the documented
        403, except where no user is asked for.
        """
        await self.check_conformance("stranger", max_examples=3, stateful=False)
