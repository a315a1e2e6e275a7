"""
A bounded soak of the real Taru: hundreds of clients following output and
leaving at random, start and stop cycles, and reloads, all at once. Nothing
may leak, no follower that stayed may miss a byte, and no task may run
twice at once.
"""

from __future__ import annotations

import os
import random
import signal
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredList, gatherResults
from twisted.trial.unittest import TestCase

from taru.runners import process_tree
from taru.test.integration.harness import (
    Chunks,
    Taru,
    follow,
    http_client,
    now,
    open_events,
    sleep,
    wait_for,
)

SOAK_CONFIG = """
    heartbeat: 1
    tasks:
      stream:
        command: [sh, -c, 'for i in $(seq 1 200); do echo "line $i"; sleep 0.01; done']
      stoppable:
        command: [sleep, '30.5']
"""

EXPECTED = b"".join(b"line %d\n" % number for number in range(1, 201))

# At least this many rounds of followers and start/stop cycles, and both go
# on until the soak has lasted SOAK_SECONDS.
ROUNDS = 4
FOLLOWERS_PER_ROUND = 50
STOP_CYCLES = 50
SOAK_SECONDS = 60.0


def open_descriptors(pid: int) -> int:
    """
    How many file descriptors a process has open.
    """
    return len(os.listdir(f"/proc/{pid}/fd"))


def runs_overlap(messages: list[Any], task: str) -> bool:
    """
    Whether the events show a task started again before its run ended.
    """
    running = False
    for name, event in messages:
        if name != task:
            continue
        if event == "Started":
            if running:
                return True
            running = True
        elif isinstance(event, dict) and "ExitStatus" in event:
            running = False
    return False


class SoakTests(TestCase):
    """
    Taru under mixed load for a while.
    """

    timeout = 180

    async def test_soak(self) -> None:
        """
        For a minute: rounds of 50 followers (at least 200 in all), half of
        whom leave at a random moment, start and stop cycles (at least 50)
        and a reload every half second, together: every follower
        that stayed got the whole output, byte for byte; no task ran twice
        at once; afterwards Taru holds as many file descriptors and child
        processes as before.
        """
        taru = await Taru(self, SOAK_CONFIG).start()
        client = http_client(self)
        seed = random.randrange(2**32)
        chance = random.Random(seed)
        # Each task's last output stays open once it has run: count from
        # there.
        for task in ["stream", "stoppable"]:
            await (await client.post(taru.url(f"/api/v1/task/{task}"))).content()
        await (await client.post(taru.url("/api/v1/task/stoppable/stop"))).content()
        for task in ["stream", "stoppable"]:
            await (await client.get(taru.url(f"/api/v1/task/{task}/status"))).content()
        await sleep(0.5)
        descriptors_before = open_descriptors(taru.pid)
        children_before = set(process_tree(taru.pid))
        _, events = await open_events(self, client, taru.url("/events"))
        reloading = True

        async def reload_often() -> None:
            while reloading:
                taru.signal(signal.SIGHUP)
                await sleep(0.5)

        async def stop_cycles() -> list[bytes]:
            statuses: list[bytes] = []
            while len(statuses) < STOP_CYCLES or now() < soak_ends:
                started = await client.post(taru.url("/api/v1/task/stoppable"))
                await started.content()
                await sleep(chance.random() * 0.05)
                stopped = await client.post(taru.url("/api/v1/task/stoppable/stop"))
                await stopped.content()
                status = await client.get(taru.url("/api/v1/task/stoppable/status"))
                statuses.append(await status.content())
            return statuses

        async def follower_rounds() -> list[bytes]:
            stayed: list[Chunks] = []
            rounds = 0
            while rounds < ROUNDS or now() < soak_ends:
                rounds += 1
                started = await client.post(taru.url("/api/v1/task/stream"))
                await started.content()
                followers = [
                    await follow(client, taru, "stream")
                    for _ in range(FOLLOWERS_PER_ROUND)
                ]
                for chunks in followers:
                    if chance.random() < 0.5:
                        stayed.append(chunks)
                    else:
                        reactor.callLater(chance.random() * 1.5, chunks.stop)
                await DeferredList([chunks.done for chunks in followers])
                status = await client.get(taru.url("/api/v1/task/stream/status"))
                await status.content()
            return [chunks.body for chunks in stayed]

        soak_ends = now() + SOAK_SECONDS
        reloads = Deferred.fromCoroutine(reload_often())
        bodies, statuses = await gatherResults(
            [
                Deferred.fromCoroutine(follower_rounds()),
                Deferred.fromCoroutine(stop_cycles()),
            ]
        )
        reloading = False
        await reloads
        await sleep(0.5)
        await events.close()
        messages: list[Any] = []
        while True:
            try:
                messages.append(await events.next_message(timeout=0.1))
            except TimeoutError:
                break
        settled = await wait_for(
            lambda: (
                open_descriptors(taru.pid) == descriptors_before
                and set(process_tree(taru.pid)) == children_before
            ),
            timeout=15,
        )

        self.assertEqual(
            [body for body in bodies if body != EXPECTED], [], f"seed {seed}"
        )
        self.assertGreater(len(bodies), 0)
        self.assertEqual(set(statuses), {b"null"}, f"seed {seed}")
        self.assertFalse(runs_overlap(messages, "stream"), f"seed {seed}")
        self.assertFalse(runs_overlap(messages, "stoppable"), f"seed {seed}")
        self.assertTrue(
            settled,
            f"seed {seed}: {open_descriptors(taru.pid)} descriptors, were"
            f" {descriptors_before}; children {set(process_tree(taru.pid))},"
            f" were {children_before}",
        )
