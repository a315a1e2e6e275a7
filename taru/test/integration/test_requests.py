"""
What clients send, taken exactly, with the real Taru: an address reaches a
task only by that task's exact name, never a file outside the public folder,
and a request must arrive whole in time. Requests are sent as raw bytes, so
that no client library tidies an address first. The runner plays no part, so
this runs with the direct one only.
"""

from __future__ import annotations

import os
import socket
import time

from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from taru.test.integration.harness import (
    Taru,
    http_client,
    now,
    output_of,
    start_and_follow,
)

NAMES_CONFIG = """
    tasks:
      quick: {command: [echo, quick]}
      "a.b": {command: [echo, dotted]}
"""

# In the configuration file, which sits next to the public folder.
SECRET = "only-in-the-configuration-file"

STATIC_CONFIG = f"""
    # {SECRET}
    tasks:
      quick: {{command: [echo, quick]}}
"""

SLOW_CONFIG = """
    tasks:
      slow:
        command: [sh, -c, 'for i in 1 2 3 4 5; do echo line $i; sleep 0.5; done']
"""


def exchange(port: int, request: bytes, gap: float = 0.0) -> tuple[bytes, float]:
    """
    Send a request, a byte every C{gap} seconds when C{gap} is given, and
    read the answer until Taru closes the connection or 10 seconds pass.

    @return: the answer, and the seconds from the first byte sent to the end
        of the answer.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        started = time.monotonic()
        try:
            if gap:
                for byte in request:
                    connection.sendall(bytes([byte]))
                    time.sleep(gap)
            else:
                connection.sendall(request)
        except OSError:
            # Taru closed the connection before all was sent.
            pass
        answer = b""
        try:
            while chunk := connection.recv(65536):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return answer, time.monotonic() - started


def raw(method: str, target: bytes) -> bytes:
    """
    A request for C{target} exactly as given, closing the connection after
    the answer.
    """
    return (
        method.encode("ascii")
        + b" "
        + target
        + b" HTTP/1.1\r\nHost: taru\r\nConnection: close\r\n\r\n"
    )


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def body_of(answer: bytes) -> bytes:
    """
    The body of a chunked answer, its chunks joined.
    """
    rest = answer.split(b"\r\n\r\n", 1)[1]
    body = b""
    while True:
        size_line, rest = rest.split(b"\r\n", 1)
        size = int(size_line, 16)
        if size == 0:
            return body
        body += rest[:size]
        rest = rest[size + 2 :]


class TaskNameTests(TestCase):
    """
    A task is reached only by its exact name.
    """

    async def test_near_names_reach_no_task(self) -> None:
        """
        Other case, a trailing slash, an encoded slash or dot, a full-width or
        Cyrillic look-alike, a NUL or a path parameter all get 404 and start
        nothing; the exact name, percent-encoded or not, starts the task.
        """
        taru = await Taru(self, NAMES_CONFIG).start()
        port = taru.port
        near_names = [
            b"QUICK",
            b"Quick",
            b"quick%2F",
            b"quick%2Foutput",
            b".%2Fquick",
            b"%2E%2E%2Fquick",
            b"quick%2E",
            b"quick%20",
            b"%20quick",
            b"quick%00",
            b"quick;x",
            "ｑｕｉｃｋ".encode(),
            "quіck".encode(),
            "quick".encode("utf-16-le"),
            b"a%2Eb%2E",
            b"a%2fb",
            b"A.B",
        ]
        targets = [
            b"/api/v1/task/" + quote_raw(name) + b"/output" for name in near_names
        ] + [
            b"/api/v1/task/quick/output/",
            b"/api/v1/task/quick/",
            b"/api/v1/task//quick/output",
            b"/api/v1/task/%2e%2e/task/quick/output",
            b"/api/v1/task/quick/%2e%2e/output",
            b"/api/v1/Task/quick/output",
        ]

        answers = [
            await deferToThread(exchange, port, raw("POST", target))
            for target in targets
        ]
        client = http_client(self)
        listing = await (await client.get(taru.url("/api/v1/tasks"))).json()
        exact = [
            await deferToThread(
                exchange, port, raw("POST", b"/api/v1/task/" + name + b"/output")
            )
            for name in (b"quick", b"%71uick", b"a.b", b"a%2Eb")
        ]

        self.assertEqual(
            {
                target: status_of(answer)
                for target, (answer, _) in zip(targets, answers, strict=True)
            },
            {target: 404 for target in targets},
        )
        self.assertEqual(
            {name: task["state"] for name, task in listing.items()},
            {"quick": "new", "a.b": "new"},
        )
        self.assertEqual(
            [(status_of(answer), body_of(answer)) for answer, _ in exact],
            [
                (200, b"quick\n"),
                (200, b"quick\n"),
                (200, b"dotted\n"),
                (200, b"dotted\n"),
            ],
        )


def quote_raw(name: bytes) -> bytes:
    """
    Percent-encode the bytes of C{name} that may not stand in a request line
    as they are, leaving C{%}, so that encodings given stay as given.
    """
    return b"".join(
        bytes([byte]) if 0x21 <= byte < 0x7F else b"%%%02X" % byte for byte in name
    )


class PublicFolderTests(TestCase):
    """
    The public folder is served, and nothing outside it.
    """

    async def test_no_escape(self) -> None:
        """
        Dot segments, encoded or not, backslashes, doubled slashes and double
        encodings never serve the configuration file next to the public
        folder; they get 404 or 400.
        """
        taru = Taru(self, STATIC_CONFIG)
        public = os.path.join(taru.directory, "public")
        os.makedirs(os.path.join(public, "sub"))
        with open(os.path.join(public, "index.html"), "w") as page:
            page.write("<!doctype html><title>Taru</title>")
        with open(os.path.join(public, "sub", "file.txt"), "w") as inside:
            inside.write("inner")
        await taru.start()
        port = taru.port
        targets = [
            b"/../taru.yml",
            b"/../../taru.yml",
            b"/%2e%2e/taru.yml",
            b"/%2E%2E%2Ftaru.yml",
            b"/sub/..%2F..%2Ftaru.yml",
            b"/sub/%2e%2e/%2e%2e/taru.yml",
            b"/..%5Ctaru.yml",
            b"/sub/..\\..\\taru.yml",
            b"//taru.yml",
            b"/./../taru.yml",
            b"/%252e%252e/taru.yml",
            b"/index.html/../../taru.yml",
            b"/sub/file.txt/../../../taru.yml",
            b"/%2e%2e%2f%2e%2e%2ftaru.yml",
            b"/.%2e/taru.yml",
            b"/state/",
            b"/taru.yml",
            b"/%00../taru.yml",
        ]

        answers = {
            target: (await deferToThread(exchange, port, raw("GET", target)))[0]
            for target in targets
        }
        inner = (await deferToThread(exchange, port, raw("GET", b"/sub/file.txt")))[0]

        leaks = {
            target: answer
            for target, answer in answers.items()
            if SECRET.encode() in answer
        }
        self.assertEqual(leaks, {})
        self.assertEqual(
            {
                target: status_of(answer)
                for target, answer in answers.items()
                if status_of(answer) not in (400, 404)
            },
            {},
        )
        self.assertEqual(
            (status_of(inner), inner.endswith(b"\r\n\r\ninner")), (200, True)
        )


class RequestDeadlineTests(TestCase):
    """
    A request must arrive whole within C{--request-timeout} seconds; its answer
    may take as long as it needs.
    """

    async def test_trickled_request_gets_408(self) -> None:
        """
        A request head sent a byte every 0.2 seconds, so the connection is
        never idle, is answered 408 about a second after its first byte.
        """
        taru = await Taru(self, NAMES_CONFIG, ["--request-timeout", "1"]).start()
        request = b"GET /api/v1/tasks HTTP/1.1\r\nHost: taru\r\nX-Padding: " + (
            b"x" * 40
        )

        answer, seconds = await deferToThread(exchange, taru.port, request, 0.2)

        self.assertEqual(status_of(answer), 408, answer)
        self.assertIn(b"did not arrive whole within 1 seconds", answer)
        self.assertTrue(1.0 <= seconds < 3.0, seconds)

    async def test_half_sent_body_gets_408(self) -> None:
        """
        A POST that promises a body and sends half of it gets 408, and the
        task is not started.
        """
        taru = await Taru(self, NAMES_CONFIG, ["--request-timeout", "1"]).start()
        request = (
            b"POST /api/v1/task/quick HTTP/1.1\r\nHost: taru\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 20\r\n\r\nx=1"
        )

        answer, seconds = await deferToThread(exchange, taru.port, request)
        listing = await (await http_client(self).get(taru.url("/api/v1/tasks"))).json()

        self.assertEqual(status_of(answer), 408, answer)
        self.assertTrue(1.0 <= seconds < 3.0, seconds)
        self.assertEqual(listing["quick"]["state"], "new")

    async def test_streaming_outlasts_the_deadline(self) -> None:
        """
        Output that streams for longer than the deadline arrives whole and
        live.
        """
        taru = await Taru(self, SLOW_CONFIG, ["--request-timeout", "1"]).start()
        client = http_client(self)
        started = now()

        chunks = await start_and_follow(client, taru, "slow")
        await chunks.done

        self.assertEqual(chunks.body, b"".join(b"line %d\n" % i for i in range(1, 6)))
        self.assertGreater(now() - started, 2.0)
        self.assertLess(chunks.arrivals[0][0] - started, 1.0)
        self.assertEqual(await output_of(client, taru, "slow"), chunks.body)
