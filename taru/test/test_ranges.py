"""
Tests for L{taru.ranges}: reading C{Range} and stating C{Content-Range} for
outputs that are complete and outputs that still grow.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from taru.ranges import UNKNOWN_END, ByteRange, RangeNotSatisfiable, byte_range


class CompleteOutputTests(SynchronousTestCase):
    """
    Ranges of an output that has all its bytes.
    """

    def test_open_range(self) -> None:
        """
        C{bytes=N-} is everything from byte N, with the length stated.
        """
        self.assertEqual(
            byte_range("bytes=4-", 10, complete=True),
            ByteRange(4, 10, "bytes 4-9/10"),
        )

    def test_closed_range(self) -> None:
        """
        C{bytes=N-M} is bytes N to M, both included.
        """
        self.assertEqual(
            byte_range("bytes=2-3", 10, complete=True),
            ByteRange(2, 4, "bytes 2-3/10"),
        )

    def test_end_beyond_length(self) -> None:
        """
        A range that ends beyond the output ends with it.
        """
        self.assertEqual(
            byte_range("bytes=8-100", 10, complete=True),
            ByteRange(8, 10, "bytes 8-9/10"),
        )

    def test_start_at_length(self) -> None:
        """
        A range that starts where the output ends cannot be served; the
        refusal states the length.
        """
        with self.assertRaises(RangeNotSatisfiable) as caught:
            byte_range("bytes=10-", 10, complete=True)

        self.assertEqual(caught.exception.content_range(), "bytes */10")
        self.assertIn("10 bytes", str(caught.exception))

    @given(st.integers(0, 1000), st.integers(1, 1000))
    def test_range_within_output(self, first: int, size: int) -> None:
        """
        Every open range starting inside the output covers the rest of it,
        and states exactly that.
        """
        first = first % size

        part = byte_range(f"bytes={first}-", size, complete=True)

        self.assertEqual((part.first, part.end), (first, size))
        self.assertEqual(part.content_range, f"bytes {first}-{size - 1}/{size}")


class GrowingOutputTests(SynchronousTestCase):
    """
    Ranges of an output whose run goes on.
    """

    def test_open_range_follows(self) -> None:
        """
        C{bytes=N-} follows the output to its end, whenever that is; the
        length is stated as unknown.
        """
        self.assertEqual(
            byte_range("bytes=4-", 10, complete=False),
            ByteRange(4, None, f"bytes 4-{UNKNOWN_END}/*"),
        )

    def test_from_current_size(self) -> None:
        """
        A client that has everything so far may wait for what follows.
        """
        self.assertEqual(byte_range("bytes=10-", 10, complete=False).first, 10)

    def test_beyond_current_size(self) -> None:
        """
        A range starting beyond what was written cannot be served.
        """
        with self.assertRaises(RangeNotSatisfiable) as caught:
            byte_range("bytes=11-", 10, complete=False)

        self.assertEqual(caught.exception.content_range(), "bytes */*")

    def test_closed_range(self) -> None:
        """
        C{bytes=N-M} of a growing output is served up to byte M.
        """
        self.assertEqual(
            byte_range("bytes=2-20", 10, complete=False),
            ByteRange(2, 21, "bytes 2-20/*"),
        )


class MalformedRangeTests(SynchronousTestCase):
    """
    Ranges Taru does not serve are refused with a message saying what it
    does serve.
    """

    def test_refused(self) -> None:
        """
        Suffix ranges, several ranges, other units, reversed and garbled
        ranges are refused.
        """
        for header in [
            "bytes=-5",
            "bytes=0-1,4-5",
            "lines=1-",
            "bytes=5-2",
            "bytes=x-",
            "bytes=1234567890123456789-",
            "",
        ]:
            with self.assertRaises(RangeNotSatisfiable, msg=header) as caught:
                byte_range(header, 10, complete=True)
            self.assertIn("Range:", str(caught.exception))
