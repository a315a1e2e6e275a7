"""
Byte ranges of a kept output, as a client asks for them with C{Range} to
continue a download it lost, and as the response states them in
C{Content-Range}.

A run's output grows while the run goes on, so its length is unknown until
it ends. Then a range is answered as for any file. Before, the answer says
C{*} for the length and, for a range without an end, streams everything from
the first byte asked for as it is written, stating as its end the largest
byte position a client can name (the convention for content of unknown
length, RFC 8673).
"""

from __future__ import annotations

import re

from attrs import frozen

# The end stated for an open range of an output that is still growing: the
# largest integer that JavaScript and JSON parsers hold exactly.
UNKNOWN_END = 2**53 - 1

_BYTE_RANGE = re.compile(r"bytes=(\d{1,18})-(\d{0,18})")


class RangeNotSatisfiable(Exception):
    """
    A range that cannot be served: badly formed, more than one range, or
    starting beyond the output.

    @ivar size: the output's length when known, for C{Content-Range}.
    """

    def __init__(self, problem: str, size: int | None) -> None:
        super().__init__(problem)
        self.size = size

    def content_range(self) -> str:
        """
        The C{Content-Range} value that goes with the refusal.
        """
        return f"bytes */{'*' if self.size is None else self.size}"


@frozen
class ByteRange:
    """
    The part of an output to send.

    @ivar first: the first byte.
    @ivar end: the byte after the last, or L{None} to follow the output to
        its end, however long it grows.
    @ivar content_range: the C{Content-Range} value that states the range.
    """

    first: int
    end: int | None
    content_range: str


def parse_range(header: str) -> tuple[int, int | None]:
    """
    Read a C{Range} header of one byte range, C{bytes=N-} or C{bytes=N-M}.

    @return: the first and last byte position asked for; the last is L{None}
        for an open range.
    @raise RangeNotSatisfiable: for any other form.
    """
    found = _BYTE_RANGE.fullmatch(header.strip())
    if found is None:
        raise RangeNotSatisfiable(
            "Range: only one byte range of the form bytes=N- or bytes=N-M is served",
            None,
        )
    first = int(found.group(1))
    last = int(found.group(2)) if found.group(2) else None
    if last is not None and last < first:
        raise RangeNotSatisfiable(
            f"Range: the last byte, {last}, comes before the first, {first}", None
        )
    return first, last


def byte_range(header: str, size: int, complete: bool) -> ByteRange:
    """
    The part of an output that a C{Range} header asks for.

    @param size: how many bytes the output holds now.
    @param complete: whether the output has all its bytes, so that C{size}
        is its length.
    @raise RangeNotSatisfiable: if the header is not one byte range, or the
        range starts beyond what the output can hold: past its end once it
        is complete, past its current size while it grows.
    """
    first, last = parse_range(header)
    if complete:
        if first >= size:
            raise RangeNotSatisfiable(
                f"Range: the output has {size} bytes; byte {first} is beyond it",
                size,
            )
        stop = size - 1 if last is None else min(last, size - 1)
        return ByteRange(first, stop + 1, f"bytes {first}-{stop}/{size}")
    if first > size:
        raise RangeNotSatisfiable(
            f"Range: the output has {size} bytes so far; byte {first} is beyond them",
            None,
        )
    if last is None:
        return ByteRange(first, None, f"bytes {first}-{UNKNOWN_END}/*")
    return ByteRange(first, last + 1, f"bytes {first}-{last}/*")
