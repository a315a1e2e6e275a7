"""
Random requests against the real Taru: random methods, addresses, query
strings, headers and bodies, well formed or not. None may get a server error
or a traceback, and Taru must go on answering.
"""

from __future__ import annotations

import random
import socket
import time
from urllib.parse import quote

from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase
from twisted.web.http_headers import Headers

from taru.test.integration.harness import Taru, http_client

FUZZ_CONFIG = """
    tasks:
      quick:
        command: [echo, quick]
      typed:
        command: [echo, $n, $s, $e]
        arguments:
          - {name: n, datatype: Int}
          - {name: s, datatype: String}
          - {name: e, datatype: Enum, enum_source: quick}
      dump:
        command: [printf, 'raw\\377\\000bytes']
        buffered: false
    users:
      alice:
        can_run: [quick, typed, dump]
        can_view_status: [quick, typed, dump]
        can_view_output: [quick, typed]
      bob:
        can_run: []
        can_view_status: [quick]
        can_view_output: []
"""

# How many requests, and the most time they may take together.
REQUESTS = 400
SECONDS = 60

METHODS = [b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"PATCH"]

TASK_NAMES = [
    "quick",
    "typed",
    "dump",
    "QUICK",
    "quick/",
    "..",
    "%2e%2e",
    "quick%2fstop",
    "qu%00ick",
    "ｑuick",
    "x" * 3000,
    "",
    "%ff%fe",
    "../../etc/passwd",
]

ACTIONS = ["", "/output", "/status", "/stop", "/nothing", "/output/more"]

HEADER_VALUES = [
    b"",
    b"alice",
    b"bob",
    b"mallory",
    b"\xff\xfe",
    b"a" * 5000,
    b"bytes=0-",
    b"bytes=5-2",
    b"bytes=-3,4-",
    b"application/json",
    b"application/x-www-form-urlencoded",
    b"multipart/form-data; boundary=x",
    b"cross-site",
    b"same-origin",
    b"http://evil.example",
    b"zz-99",
    b'"abc"',
]

HEADER_NAMES = [
    b"X-User",
    b"Content-Type",
    b"Range",
    b"If-Range",
    b"Last-Event-ID",
    b"Sec-Fetch-Site",
    b"Origin",
    b"Accept",
    b"X-Forwarded-Host",
]

BODIES = [
    b"",
    b"n=1&s=hello&e=quick",
    b'{"n": 1, "s": "x", "e": "quick"}',
    b'{"n": 1e400}',
    b"[1, 2]",
    b"n=%ff",
    b"\x00\xff" * 100,
    b"{" * 2000,
    b"n=" + b"9" * 5000,
]


def random_request(chance: random.Random) -> bytes:
    """
    One request, often malformed.
    """
    method = chance.choice(METHODS + [b"BREW", b"G\x00T", b""])
    if chance.random() < 0.8:
        name = chance.choice(TASK_NAMES)
        path = "/api/v1/task/" + name + chance.choice(ACTIONS)
    else:
        path = chance.choice(
            ["/", "/api/v1/tasks", "/index.html", "/api", "/api/v1", "/%2e%2e/%2e%2e/"]
        )
    if chance.random() < 0.5:
        pairs = [
            f"{chance.choice(['n', 's', 'e', 'check', 'x', ''])}="
            f"{quote(chance.choice(['1', '-0', '2147483648', 'quick', '%', 'ä', '']))}"
            for _ in range(chance.randrange(4))
        ]
        path += "?" + "&".join(pairs)
    headers = [b"Host: 127.0.0.1"]
    for _ in range(chance.randrange(5)):
        headers.append(
            chance.choice(HEADER_NAMES) + b": " + chance.choice(HEADER_VALUES)
        )
    body = chance.choice(BODIES)
    if chance.random() < 0.9:
        headers.append(b"Content-Length: %d" % len(body))
    headers.append(b"Connection: close")
    version = chance.choice([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/9.9", b"HTTP"])
    return (
        method
        + b" "
        + path.encode("utf-8")
        + b" "
        + version
        + b"\r\n"
        + b"\r\n".join(headers)
        + b"\r\n\r\n"
        + body
    )


def exchange(port: int, request: bytes) -> bytes:
    """
    Send a request and read what comes back within a short time: streams
    such as C{/events} do not end by themselves.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        try:
            connection.sendall(request)
            connection.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        connection.settimeout(0.5)
        answer = b""
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                chunk = connection.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            answer += chunk
        return answer


def fuzz(port: int, seed: int) -> list[tuple[bytes, bytes]]:
    """
    Send random requests; return each that got a server error or a
    traceback, with its answer.
    """
    chance = random.Random(seed)
    bad = []
    deadline = time.monotonic() + SECONDS
    for _ in range(REQUESTS):
        if time.monotonic() > deadline:
            break
        request = random_request(chance)
        answer = exchange(port, request)
        status = answer.split(b"\r\n", 1)[0]
        if status[9:10] == b"5" or b"Traceback" in answer:
            bad.append((request[:300], answer[:300]))
    return bad


class FuzzTests(TestCase):
    """
    Random requests never break Taru.
    """

    timeout = SECONDS + 30

    async def test_random_requests(self) -> None:
        """
        Hundreds of random, often malformed requests get no 5xx and no
        traceback; Taru logs no traceback and still answers afterwards.
        """
        taru = await Taru(self, FUZZ_CONFIG).start()
        port = taru.port
        seed = random.randrange(2**32)

        bad = await deferToThread(fuzz, port, seed)
        response = await http_client(self).get(
            taru.url("/api/v1/tasks"), headers=Headers({"X-User": ["alice"]})
        )

        self.assertEqual(bad, [], f"seed {seed}")
        self.assertEqual(response.code, 200)
        self.assertNotIn(
            "Traceback",
            taru.log,
            f"seed {seed}: {taru.log[taru.log.find('Traceback') - 500 :][:2500]}",
        )
