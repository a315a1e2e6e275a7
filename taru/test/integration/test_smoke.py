"""
The real Taru starts, lists its tasks and runs one.
"""

from twisted.trial.unittest import TestCase

from taru.test.integration.harness import Taru, http_client


class SmokeTests(TestCase):
    """
    The simplest full path through a real Taru.
    """

    async def test_run_and_read_output(self) -> None:
        """
        A task started with POST output streams its output and ends.
        """
        taru = await Taru(self, "tasks:\n  hello: {command: [echo, hi]}\n").start()
        client = http_client(self)

        response = await client.post(taru.url("/api/v1/task/hello/output"))
        body = await response.content()

        self.assertEqual((response.code, body), (200, b"hi\n"))
