"""
Taru behind a real nginx, configured as C{doc/nginx.conf} recommends: nginx
authenticates with HTTP basic auth and passes the user in C{X-User}; output
and events stream through it live; the metrics stay inside, and health
answers without a login.

Debian's nginx package is needed (C{make test} installs it); without it
these tests fail, they are not skipped.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import tempfile
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from twisted.web.http_headers import Headers

import taru
from taru.test.integration.harness import (
    Chunks,
    Taru,
    free_port,
    http_client,
    now,
    open_events,
    sleep,
    wait_for,
)

NGINX = "/usr/sbin/nginx"

RECOMMENDED = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(taru.__file__))),
    "doc",
    "nginx.conf",
)

PROXIED_CONFIG = """
    tasks:
      slow:
        command: [sh, -c, 'echo first; sleep 3; echo second']
      secret:
        command: [echo, secret]
    users:
      alice:
        can_run: [slow]
        can_view_status: [slow]
        can_view_output: [slow]
      root:
        can_run: [secret]
        can_view_status: [secret]
        can_view_output: [secret]
"""


class _Ended(ProcessProtocol):
    def __init__(self) -> None:
        self.ended: Deferred[None] = Deferred()
        self.output = b""

    def outReceived(self, data: bytes) -> None:
        self.output += data

    errReceived = outReceived

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback(None)


async def start_nginx(testcase: TestCase, taru_port: int) -> int:
    """
    Start nginx on a free loopback port in front of Taru, with the
    recommended configuration, and users alice and root.

    @return: nginx's port.
    """
    if not os.access(NGINX, os.X_OK):
        testcase.fail(
            f"no nginx at {NGINX}: the proxy tests need Debian's nginx package"
            " (make test installs it)"
        )
    folder = tempfile.mkdtemp(prefix="taru-nginx-")
    testcase.addCleanup(shutil.rmtree, folder, ignore_errors=True)
    port = free_port()
    with open(os.path.join(folder, "taru.htpasswd"), "w") as passwords:
        passwords.write("alice:{PLAIN}wonderland\nroot:{PLAIN}toor\n")
    with open(RECOMMENDED) as recommended:
        server = (
            recommended.read()
            .replace("127.0.0.1:3000", f"127.0.0.1:{taru_port}")
            .replace("listen 80;", f"listen 127.0.0.1:{port};")
            .replace("/etc/nginx/taru.htpasswd", os.path.join(folder, "taru.htpasswd"))
        )
    temporary = " ".join(
        f"{kind}_temp_path {folder}/{kind};"
        for kind in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    )
    with open(os.path.join(folder, "nginx.conf"), "w") as config:
        config.write(
            f"daemon off; master_process off; worker_processes 1;\n"
            f"pid {folder}/nginx.pid; error_log {folder}/error.log;\n"
            "events { worker_connections 256; }\n"
            f"http {{ access_log off; {temporary}\n{server}\n}}\n"
        )
    protocol = _Ended()
    process = reactor.spawnProcess(
        protocol,
        NGINX,
        [
            NGINX,
            "-p",
            folder,
            "-c",
            os.path.join(folder, "nginx.conf"),
            "-e",
            os.path.join(folder, "error.log"),
        ],
        env={},
    )

    async def stop() -> None:
        if not protocol.ended.called:
            process.signalProcess("TERM")
            await protocol.ended

    testcase.addCleanup(stop)

    def listening() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    if not await wait_for(listening, timeout=10):
        testcase.fail(f"nginx did not start: {protocol.output.decode()}")
    return port


def basic(user: str, password: str) -> Headers:
    """
    Headers that log in with HTTP basic auth.
    """
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return Headers({"Authorization": [f"Basic {token}"]})


class ProxyTests(TestCase):
    """
    A real nginx in front of the real Taru.
    """

    timeout = 60

    async def start(self) -> tuple[Taru, str]:
        taru_port = free_port()
        taru = await Taru(
            self,
            PROXIED_CONFIG,
            ["--listen", f"tcp:{taru_port}:interface=127.0.0.1"],
        ).start()
        nginx_port = await start_nginx(self, taru_port)
        return taru, f"http://127.0.0.1:{nginx_port}"

    async def test_wrong_password(self) -> None:
        """
        A wrong password, or none, gets 401 from nginx.
        """
        _, base = await self.start()
        client = http_client(self)

        wrong = await client.get(
            base + "/api/v1/tasks", headers=basic("alice", "guess")
        )
        none = await client.get(base + "/api/v1/tasks")

        self.assertEqual((wrong.code, none.code), (401, 401))
        self.assertEqual(wrong.headers.getRawHeaders("server", [""])[0][:5], "nginx")

    async def test_user_sees_own_tasks(self) -> None:
        """
        Logged in, a user gets the tasks they may see, whatever X-User they
        send themselves.
        """
        _, base = await self.start()
        client = http_client(self)
        headers = basic("alice", "wonderland")
        headers.addRawHeader("X-User", "root")

        response = await client.get(base + "/api/v1/tasks", headers=headers)
        listing: dict[str, Any] = await response.json()

        self.assertEqual(list(listing), ["slow"])

    async def test_output_streams_live(self) -> None:
        """
        A task's output arrives through nginx as it is written: the first
        line long before the task ends.
        """
        _, base = await self.start()
        client = http_client(self)
        started = now()

        response = await client.post(
            base + "/api/v1/task/slow/output",
            headers=basic("alice", "wonderland"),
            unbuffered=True,
        )
        chunks = Chunks(response)
        self.assertTrue(await wait_for(lambda: b"first" in chunks.body, timeout=10))
        first_at = now() - started
        await chunks.done

        self.assertLess(first_at, 1.5)
        self.assertGreater(now() - started, 2.5)
        self.assertEqual(chunks.body, b"first\nsecond\n")

    async def test_events_stream_live(self) -> None:
        """
        Events arrive through nginx as they happen.
        """
        _, base = await self.start()
        client = http_client(self)
        _, stream = await open_events(
            self, client, base + "/events", headers=basic("alice", "wonderland")
        )
        await sleep(0.2)

        started = now()
        await client.post(
            base + "/api/v1/task/slow", headers=basic("alice", "wonderland")
        )
        message = await stream.next_message(timeout=5)

        self.assertEqual(message, ["slow", "Started"])
        self.assertLess(now() - started, 1.5)

    async def test_metrics_refused(self) -> None:
        """
        nginx refuses C{/metrics} to everyone, logged in or not, however the
        address is spelled, though Taru itself serves it.
        """
        taru, base = await self.start()
        client = http_client(self)
        spellings = ["/metrics", "/metrics?name=x", "/%6Detrics", "//metrics"]

        direct = [
            (await client.get(taru.url(path))).code
            for path in ("/metrics", "/%6Detrics")
        ]
        proxied = [
            (await client.get(base + path, headers=headers)).code
            for path in spellings
            for headers in (basic("alice", "wonderland"), basic("root", "toor"), None)
        ]
        head = await client.head(base + "/metrics", headers=basic("root", "toor"))

        self.assertEqual(direct, [200, 200])
        self.assertEqual(proxied, [403] * 3 * len(spellings))
        self.assertEqual(head.code, 403)

    async def test_health_answers(self) -> None:
        """
        C{/health} answers through nginx without a login, as a load balancer
        asks.
        """
        _, base = await self.start()
        client = http_client(self)

        response = await client.get(base + "/health")
        report = json.loads(await response.content())

        self.assertEqual(response.code, 200)
        self.assertEqual(
            (report["status"], report["tasks"], report["running"]), ("ok", 2, 0)
        )
