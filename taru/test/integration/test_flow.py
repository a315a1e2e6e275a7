"""
How output and events flow to clients that are slow, stalled or come back,
against the real Taru: a stalled client holds back neither the task nor the
other clients, and costs no memory; a client that lost its connection
continues without loss.
"""

from __future__ import annotations

import socket
import zlib

from twisted.trial.unittest import TestCase
from twisted.web.http_headers import Headers

from taru.test.integration.harness import (
    Taru,
    follow,
    http_client,
    is_exit_status,
    now,
    open_events,
    sleep,
    wait_for,
)

MIB = 1024 * 1024

FLOW_CONFIG = """
    tasks:
      big:
        command: [sh, -c, 'yes "$0" | head -c 209715200', &line a line of output]
      unbuffered_big:
        command: [sh, -c, 'yes "$0" | head -c 209715200', *line]
        buffered: false
      counting:
        command: [sh, -c, 'seq 1 1000000; sleep 1; seq 1000001 2000000']
"""


def stalled_client(port: int, path: str) -> socket.socket:
    """
    A client that asks for C{path} and then reads nothing, with a small
    receive buffer so that it stops the flow soon.
    """
    stalled = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", port))
    stalled.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode("ascii"))
    return stalled


def memory_of(pid: int) -> dict[str, int]:
    """
    A process's resident memory now and at its peak, in bytes.
    """
    found = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0]) * 1024
    return found


class SlowClientTests(TestCase):
    """
    A client that stops reading affects no one but itself.
    """

    timeout = 120

    async def test_stalled_client_holds_back_nothing(self) -> None:
        """
        While one client of a buffered task reads nothing, the task writes
        its 200 MiB at full speed, another client gets all of it, and Taru's
        memory does not grow with the output.
        """
        taru = await Taru(self, FLOW_CONFIG).start()
        port = taru.port
        client = http_client(self)
        before = memory_of(taru.pid)["VmRSS"]
        response = await client.post(taru.url("/api/v1/task/big"))
        await response.content()
        stalled = stalled_client(port, "/api/v1/task/big/output")
        self.addCleanup(stalled.close)
        started = now()

        fast = await follow(client, taru, "big")
        await fast.done
        status = await client.get(taru.url("/api/v1/task/big/status"))

        self.assertEqual(await status.content(), b"0")
        self.assertLess(now() - started, 60)
        self.assertEqual(len(fast.body), 200 * MIB)
        expected = (b"a line of output\n" * (200 * MIB // 17 + 1))[: 200 * MIB]
        self.assertEqual(zlib.crc32(fast.body), zlib.crc32(expected))
        growth = memory_of(taru.pid)["VmHWM"] - before
        self.assertLess(growth, 32 * MIB, f"grew by {growth} bytes")

    async def test_stalled_client_of_unbuffered_task(self) -> None:
        """
        An unbuffered task whose only client reads nothing waits on its pipe
        instead of Taru keeping its output: Taru's memory stays flat, and the
        task goes on once the client leaves.
        """
        taru = await Taru(self, FLOW_CONFIG).start()
        port = taru.port
        client = http_client(self)
        before = memory_of(taru.pid)["VmRSS"]
        stalled = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", port))
        stalled.sendall(
            b"POST /api/v1/task/unbuffered_big/output HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
        )

        await sleep(3)
        listing = await (await client.get(taru.url("/api/v1/tasks"))).json()
        growth = memory_of(taru.pid)["VmHWM"] - before
        stalled.close()
        status = await client.get(taru.url("/api/v1/task/unbuffered_big/status"))

        self.assertEqual(listing["unbuffered_big"]["state"], "running")
        self.assertLess(growth, 32 * MIB, f"grew by {growth} bytes")
        self.assertEqual(await status.content(), b"0")


class ResumeTests(TestCase):
    """
    A client that lost a buffered task's output continues where it stopped.
    """

    timeout = 60

    async def test_resume_with_range(self) -> None:
        """
        A client that drops its connection mid-run and asks again with
        C{Range: bytes=N-}, N being what it received, ends up with exactly
        the whole output.
        """
        taru = await Taru(self, FLOW_CONFIG).start()
        client = http_client(self)
        response = await client.post(taru.url("/api/v1/task/counting"))
        await response.content()
        first = await follow(client, taru, "counting")
        self.assertTrue(await wait_for(lambda: len(first.body) > 100_000))
        first.stop()
        received = first.body

        rest = await client.get(
            taru.url("/api/v1/task/counting/output"),
            headers=Headers({"Range": [f"bytes={len(received)}-"]}),
            unbuffered=True,
        )
        remainder = await rest.content()

        expected = b"".join(b"%d\n" % number for number in range(1, 2000001))
        self.assertEqual(rest.code, 206)
        self.assertEqual(len(received + remainder), len(expected))
        self.assertEqual(received + remainder, expected)


class ReplayTests(TestCase):
    """
    An event client that reconnects gets the events it missed.
    """

    timeout = 60

    async def test_last_event_id(self) -> None:
        """
        A client that reconnects with the id of the last event it got
        receives the events of the runs that happened while it was away.
        """
        taru = await Taru(self, "tasks:\n  quick: {command: ['true']}\n").start()
        client = http_client(self)
        response, stream = await open_events(self, client, taru.url("/events"))
        await client.post(taru.url("/api/v1/task/quick/status"))
        await stream.messages_until(is_exit_status)
        await stream.close()
        last_id = stream.last_event_id

        for _ in range(2):
            await (await client.post(taru.url("/api/v1/task/quick/status"))).content()
        _, again = await open_events(
            self,
            client,
            taru.url("/events"),
            headers=Headers({"Last-Event-ID": [last_id or ""]}),
        )

        missed = [await again.next_message() for _ in range(4)]
        self.assertEqual(
            missed,
            [
                ["quick", "Started"],
                ["quick", {"ExitStatus": 0}],
                ["quick", "Started"],
                ["quick", {"ExitStatus": 0}],
            ],
        )
