"""
Who may name a user: only trusted proxies and peers on a unix socket, with
the real Taru. The runner plays no part, so this runs with the direct one
only.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile

from twisted.trial.unittest import TestCase
from twisted.web.http_headers import Headers

from taru.test.integration.harness import Taru, http_client

TRUST_CONFIG = """
    tasks:
      hello: {command: [echo, hello]}
    users:
      alice: {can_run: [hello], can_view_status: [hello], can_view_output: [hello]}
    trusted_proxies: [192.0.2.1]
"""


class TrustedProxyTests(TestCase):
    """
    Only trusted proxies, and peers on a unix socket, may name a user.
    """

    async def test_untrusted_peer_refused(self) -> None:
        """
        A request from a peer that is not a trusted proxy gets 401 and a
        message saying why, even with a valid X-User; the same request on
        Taru's unix socket is served.
        """
        # A unix socket's path must be short; trial's folders are deep.
        folder = tempfile.mkdtemp(prefix="taru-")
        self.addCleanup(shutil.rmtree, folder, ignore_errors=True)
        socket_path = os.path.join(folder, "taru.sock")
        taru = await Taru(
            self, TRUST_CONFIG, ["--listen", f"unix:{socket_path}"]
        ).start()
        client = http_client(self)

        refused = await client.get(
            taru.url("/api/v1/tasks"), headers=Headers({"X-User": ["alice"]})
        )
        message = await refused.text()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as unix:
            unix.connect(socket_path)
            unix.sendall(b"GET /api/v1/tasks HTTP/1.0\r\nX-User: alice\r\n\r\n")
            answer = b""
            while chunk := unix.recv(65536):
                answer += chunk

        self.assertEqual(refused.code, 401)
        self.assertIn("127.0.0.1", message)
        self.assertIn("trusted_proxies", message)
        self.assertTrue(answer.startswith(b"HTTP/1.0 200"), answer[:200])
        self.assertIn(b'"hello"', answer)
