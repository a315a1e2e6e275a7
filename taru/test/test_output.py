"""
Tests for L{taru.output}: outputs, their followers, and spool files.
"""

from __future__ import annotations

import os
import stat

from hypothesis import assume, given
from hypothesis import strategies as st
from twisted.internet.interfaces import IConsumer, IPushProducer
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from taru.output import (
    BACKLOG_LIMIT,
    CHUNK_SIZE,
    STALL_SECONDS,
    Follower,
    FollowerStalled,
    Output,
    Spool,
)
from taru.test.fakes import RecordingProducer, ThrottledConsumer

# Bytes that are not text: NUL, invalid UTF-8, a lone continuation byte, CR
# without LF, and no newline at the end.
AWKWARD_CHUNKS = [b"\x00\xff\xfe", b"caf\xc3", b"\xa9 \x80\r", b"no newline"]

# Task names made of any characters that can be encoded.
task_names = st.text(alphabet=st.characters(codec="utf-8"), min_size=0, max_size=300)


def follow(
    output: Output, from_start: bool = True, consumer: StringTransport | None = None
) -> tuple[Follower, StringTransport]:
    """
    Follow an output the way the web API does: register the follower as its
    consumer's producer, then let it write what there is.
    """
    consumer = StringTransport() if consumer is None else consumer
    follower = output.follow(consumer, from_start)
    consumer.registerProducer(follower, True)
    follower.pump()
    return follower, consumer


def discard(output: Output) -> None:
    """
    Close and release an output, so that its spool file is closed once its
    followers are done.
    """
    output.close()
    output.release()


def pattern(size: int, seed: int = 0) -> bytes:
    """
    C{size} bytes in which every byte value occurs and no chunk-sized stretch
    repeats the previous one, so that reordered or repeated chunks show.
    """
    return bytes((index * 7 + index // 251 + seed) % 256 for index in range(size))


class MemoryStore:
    """
    A store that keeps everything in memory and remembers being closed.
    """

    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = False
        self.reads = 0

    def append(self, data: bytes) -> None:
        self.data += data

    def read(self, offset: int, limit: int) -> bytes:
        self.reads += 1
        return bytes(self.data[offset : offset + limit])

    def trim(self, offset: int) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class BufferedOutputTests(SynchronousTestCase):
    """
    An output kept in a spool file hands every byte to every follower, from
    the start if asked, each at its own pace.
    """

    def setUp(self) -> None:
        self.spool = Spool(self.mktemp())
        self.output = self.spool.create("task")
        self.addCleanup(discard, self.output)

    def test_follower_provides_push_producer(self) -> None:
        """
        A follower is a push producer, as consumers expect.
        """
        follower, _ = follow(self.output)

        self.assertTrue(verifyObject(IPushProducer, follower))

    def test_bytes_arrive_exactly_and_in_order(self) -> None:
        """
        A follower writes exactly the bytes appended, in order, whatever they
        are: binary, invalid UTF-8, without a final newline.
        """
        _, consumer = follow(self.output)

        for chunk in AWKWARD_CHUNKS:
            self.output.append(chunk)

        self.assertEqual(consumer.value(), b"".join(AWKWARD_CHUNKS))

    def test_output_larger_than_a_chunk(self) -> None:
        """
        An output of several chunks reaches a follower whole and in order,
        whether the follower joins before or after it is written.
        """
        data = pattern(3 * CHUNK_SIZE + 5)
        _, early = follow(self.output)

        self.output.append(data)
        _, late = follow(self.output)

        self.assertEqual((early.value(), late.value()), (data, data))

    def test_from_start_gets_earlier_bytes_then_live_ones(self) -> None:
        """
        A follower from the start of a kept output first gets everything
        written so far, then what is written after it joined.
        """
        self.output.append(b"before\n")
        _, consumer = follow(self.output, from_start=True)
        after_joining = consumer.value()

        self.output.append(b"after\n")

        self.assertEqual(
            (after_joining, consumer.value()), (b"before\n", b"before\nafter\n")
        )

    def test_not_from_start_gets_only_new_bytes(self) -> None:
        """
        A follower not from the start gets only what is written after it
        joined, even on a kept output.
        """
        self.output.append(b"before\n")
        _, consumer = follow(self.output, from_start=False)

        self.output.append(b"after\n")

        self.assertEqual(consumer.value(), b"after\n")

    def test_many_followers_get_identical_bytes(self) -> None:
        """
        Followers that join from the start at different times all end up with
        the same bytes.
        """
        consumers = []
        for chunk in AWKWARD_CHUNKS:
            consumers.append(follow(self.output)[1])
            self.output.append(chunk)

        self.assertEqual(
            [consumer.value() for consumer in consumers],
            [b"".join(AWKWARD_CHUNKS)] * len(AWKWARD_CHUNKS),
        )

    def test_paused_follower_resumes_where_it_left_off(self) -> None:
        """
        A follower its consumer paused writes nothing more until resumed, then
        continues with the next byte it had not written.
        """
        follower, consumer = follow(self.output)
        self.output.append(b"one ")
        follower.pauseProducing()
        self.output.append(b"two ")
        self.output.append(b"three")
        while_paused = consumer.value()

        follower.resumeProducing()

        self.assertEqual((while_paused, consumer.value()), (b"one ", b"one two three"))

    def test_paused_follower_does_not_hold_back_others(self) -> None:
        """
        While one follower of a kept output is paused, the others keep getting
        everything.
        """
        slow, _ = follow(self.output)
        _, fast = follow(self.output)
        slow.pauseProducing()

        self.output.append(b"live data")

        self.assertEqual(fast.value(), b"live data")

    def test_paused_follower_does_not_pause_source(self) -> None:
        """
        The task writing a kept output is never paused, however far behind a
        follower falls: the spool file takes it all.
        """
        source = RecordingProducer()
        self.output.attach_source(source)
        follower, consumer = follow(self.output)
        follower.pauseProducing()
        data = pattern(2 * BACKLOG_LIMIT + 1)

        self.output.append(data)
        follower.resumeProducing()

        self.assertEqual((source.calls, consumer.value()), ([], data))

    def test_pause_between_chunks(self) -> None:
        """
        A consumer that pauses its follower in the middle of a long output
        gets no more until it resumes, then the rest in order.
        """
        consumer = ThrottledConsumer()
        consumer.allow(CHUNK_SIZE)
        data = pattern(3 * CHUNK_SIZE)
        follower, _ = follow(self.output, consumer=consumer)

        self.output.append(data)
        first = consumer.value()
        consumer.allow(4 * CHUNK_SIZE)
        follower.resumeProducing()

        self.assertEqual((first, consumer.value()), (data[:CHUNK_SIZE], data))

    def test_follower_done_when_output_closed(self) -> None:
        """
        A follower that has everything ends when the output is closed.
        """
        follower, consumer = follow(self.output)
        self.output.append(b"all of it")
        self.assertNoResult(follower.done)

        self.output.close()

        self.successResultOf(follower.done)
        self.assertEqual(consumer.value(), b"all of it")

    def test_paused_follower_done_only_after_catching_up(self) -> None:
        """
        A follower that is behind when the output is closed ends only once it
        has written the rest.
        """
        follower, consumer = follow(self.output)
        follower.pauseProducing()
        self.output.append(b"late bytes")
        self.output.close()
        self.assertNoResult(follower.done)

        follower.resumeProducing()

        self.successResultOf(follower.done)
        self.assertEqual(consumer.value(), b"late bytes")

    def test_follower_of_closed_output_gets_all_and_ends(self) -> None:
        """
        A follower from the start of an output already closed gets all of it,
        then ends.
        """
        self.output.append(b"finished run")
        self.output.close()

        follower, consumer = follow(self.output)

        self.successResultOf(follower.done)
        self.assertEqual(consumer.value(), b"finished run")

    def test_stop_producing_ends_follower(self) -> None:
        """
        A follower whose consumer stops it ends at once, writes nothing more,
        and no longer counts as following.
        """
        follower, consumer = follow(self.output)
        self.output.append(b"first")

        follower.stopProducing()
        self.output.append(b"second")

        self.successResultOf(follower.done)
        self.assertEqual((consumer.value(), self.output.follower_count), (b"first", 0))

    def test_stop_is_idempotent(self) -> None:
        """
        Stopping a follower twice, or resuming one that stopped, does nothing
        more.
        """
        follower, consumer = follow(self.output)
        follower.stop()

        follower.stop()
        self.output.append(b"ignored")
        follower.resumeProducing()

        self.successResultOf(follower.done)
        self.assertEqual(consumer.value(), b"")

    def test_follower_count(self) -> None:
        """
        The follower count is how many followers have not ended yet.
        """
        first, _ = follow(self.output)
        follow(self.output)
        counts = [self.output.follower_count]

        first.stop()
        counts.append(self.output.follower_count)

        self.assertEqual(counts, [2, 1])

    def test_contents(self) -> None:
        """
        The contents of a kept output are all the bytes written so far.
        """
        for chunk in AWKWARD_CHUNKS:
            self.output.append(chunk)

        self.assertEqual(self.output.contents(), b"".join(AWKWARD_CHUNKS))

    def test_empty_append_changes_nothing(self) -> None:
        """
        Appending no bytes neither grows the output nor writes to followers.
        """
        _, consumer = follow(self.output)

        self.output.append(b"")

        self.assertEqual((self.output.size, consumer.value()), (0, b""))


class FollowerWorkTests(SynchronousTestCase):
    """
    What a follower costs per chunk, and followers of a part of an output.
    """

    def test_caught_up_followers_only_write(self) -> None:
        """
        Followers that have everything get each new chunk as it arrived: a
        chunk for N such followers costs N writes and no reads.
        """
        store = MemoryStore()
        output = Output(store, kept=True)
        consumers = [follow(output)[1] for _ in range(100)]
        store.reads = 0

        output.append(b"a chunk\n")
        output.append(b"another\n")

        self.assertEqual(store.reads, 0)
        self.assertEqual(
            {consumer.value() for consumer in consumers}, {b"a chunk\nanother\n"}
        )

    def test_follower_behind_reads(self) -> None:
        """
        A follower that was paused reads what it missed back from the store,
        in order, once it resumes.
        """
        store = MemoryStore()
        output = Output(store, kept=True)
        follower, consumer = follow(output)
        follower.pauseProducing()
        output.append(b"missed ")
        output.append(b"too\n")

        follower.resumeProducing()

        self.assertEqual(consumer.value(), b"missed too\n")
        self.assertGreater(store.reads, 0)

    def test_part(self) -> None:
        """
        A follower given an offset and an end writes exactly that part, and
        is done once it has.
        """
        output = Output(MemoryStore(), kept=True)
        output.append(b"0123456789")
        consumer = StringTransport()
        follower = output.follow(consumer, True, offset=3, end=7)
        consumer.registerProducer(follower, True)

        follower.pump()

        self.assertEqual(consumer.value(), b"3456")
        self.successResultOf(follower.done)

    def test_part_of_growing_output(self) -> None:
        """
        A follower of a part that is not written yet waits for it, and stops
        at the part's end though the output goes on.
        """
        output = Output(MemoryStore(), kept=True)
        output.append(b"0123")
        consumer = StringTransport()
        follower = output.follow(consumer, True, offset=2, end=6)
        consumer.registerProducer(follower, True)
        follower.pump()

        output.append(b"4567")

        self.assertEqual(consumer.value(), b"2345")
        self.successResultOf(follower.done)

    def test_written(self) -> None:
        """
        A follower counts the bytes it has written to its consumer, whether
        they arrived while it was caught up or were read back, and from
        where it began, not from the output's start.
        """
        output = Output(MemoryStore(), kept=True)
        output.append(b"before")
        consumer = StringTransport()
        follower = output.follow(consumer, True, offset=2)
        consumer.registerProducer(follower, True)
        follower.pump()
        output.append(b" live")
        follower.pauseProducing()
        output.append(b" missed")

        written_while_paused = follower.written
        follower.resumeProducing()

        self.assertEqual(written_while_paused, len(b"fore live"))
        self.assertEqual(follower.written, len(consumer.value()))
        self.assertEqual(consumer.value(), b"fore live missed")


class UnbufferedOutputTests(SynchronousTestCase):
    """
    An unbuffered output keeps only what its followers have not written yet,
    and pauses its source while the slowest of them is far behind.
    """

    def setUp(self) -> None:
        self.output = Output.unbuffered()
        self.source = RecordingProducer()
        self.output.attach_source(self.source)

    def test_follower_gets_only_what_follows_joining(self) -> None:
        """
        A follower of an unbuffered output gets only bytes written after it
        joined, even when it asks for the start.
        """
        self.output.append(b"lost\n")
        _, consumer = follow(self.output, from_start=True)

        for chunk in AWKWARD_CHUNKS:
            self.output.append(chunk)

        self.assertEqual(consumer.value(), b"".join(AWKWARD_CHUNKS))

    def test_many_followers_get_identical_bytes(self) -> None:
        """
        Followers of an unbuffered output that joined together get the same
        bytes.
        """
        consumers = [follow(self.output)[1] for _ in range(3)]

        for chunk in AWKWARD_CHUNKS:
            self.output.append(chunk)

        self.assertEqual(
            [consumer.value() for consumer in consumers],
            [b"".join(AWKWARD_CHUNKS)] * 3,
        )

    def test_paused_follower_resumes_where_it_left_off(self) -> None:
        """
        A paused follower of an unbuffered output still gets, once resumed,
        every byte it missed, although a faster follower has written them.
        """
        slow, slow_consumer = follow(self.output)
        _, fast_consumer = follow(self.output)
        self.output.append(b"both ")
        slow.pauseProducing()
        missed = pattern(3 * CHUNK_SIZE)
        self.output.append(missed)

        slow.resumeProducing()
        self.output.append(b" end")

        expected = b"both " + missed + b" end"
        self.assertEqual(
            (slow_consumer.value(), fast_consumer.value()), (expected, expected)
        )

    def test_backlog_at_limit_does_not_pause_source(self) -> None:
        """
        A backlog of exactly the limit leaves the source running.
        """
        slow, _ = follow(self.output)
        slow.pauseProducing()

        self.output.append(pattern(BACKLOG_LIMIT))

        self.assertEqual(self.source.calls, [])

    def test_backlog_over_limit_pauses_source(self) -> None:
        """
        Once the slowest follower is more than the limit behind, the source is
        paused, once; a faster follower has had everything meanwhile.
        """
        slow, _ = follow(self.output)
        _, fast_consumer = follow(self.output)
        slow.pauseProducing()
        data = pattern(BACKLOG_LIMIT + 1)

        self.output.append(data[:BACKLOG_LIMIT])
        self.output.append(data[BACKLOG_LIMIT:])
        self.output.append(b"still arriving")

        self.assertEqual(
            (self.source.calls, fast_consumer.value()),
            (["pause"], data + b"still arriving"),
        )

    def test_source_resumed_when_backlog_falls_to_half(self) -> None:
        """
        A paused source is resumed when the slowest follower's backlog is down
        to half the limit, and not before.
        """
        consumer = ThrottledConsumer()
        consumer.allow(0)
        follower, _ = follow(self.output, consumer=consumer)
        follower.pauseProducing()
        data = pattern(BACKLOG_LIMIT // 2 + 9 * CHUNK_SIZE)
        self.output.append(data)
        paused = list(self.source.calls)

        consumer.allow(8 * CHUNK_SIZE)
        follower.resumeProducing()
        above_half = list(self.source.calls)
        consumer.allow(CHUNK_SIZE)
        follower.resumeProducing()

        self.assertEqual(
            (paused, above_half, self.source.calls),
            (["pause"], ["pause"], ["pause", "resume"]),
        )
        self.assertEqual(consumer.value(), data[: 9 * CHUNK_SIZE])

    def test_source_resumed_when_slow_follower_leaves(self) -> None:
        """
        When the follower that held the source back stops, the source is
        resumed.
        """
        slow, _ = follow(self.output)
        slow.pauseProducing()
        self.output.append(pattern(BACKLOG_LIMIT + 1))

        slow.stopProducing()

        self.assertEqual(self.source.calls, ["pause", "resume"])

    def test_no_followers_never_pauses_source(self) -> None:
        """
        With no follower, output is dropped as it comes and the source is
        never paused.
        """
        self.output.append(pattern(2 * BACKLOG_LIMIT))

        self.assertEqual(self.source.calls, [])

    def test_follower_done_when_output_closed(self) -> None:
        """
        A follower of an unbuffered output ends when the output is closed and
        it has written everything.
        """
        follower, consumer = follow(self.output)
        follower.pauseProducing()
        self.output.append(b"tail")
        self.output.close()
        self.assertNoResult(follower.done)

        follower.resumeProducing()

        self.successResultOf(follower.done)
        self.assertEqual(consumer.value(), b"tail")

    def test_follower_of_closed_output_ends_at_once(self) -> None:
        """
        A follower that joins an unbuffered output after it closed ends at
        once with nothing written.
        """
        self.output.append(b"gone")
        self.output.close()

        follower, consumer = follow(self.output)

        self.successResultOf(follower.done)
        self.assertEqual(consumer.value(), b"")


class StallTests(SynchronousTestCase):
    """
    A follower whose client takes nothing for too long is dropped.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.source = RecordingProducer()
        self.output = Output.unbuffered()
        self.output.attach_source(self.source)

    def test_dropped_after_stall(self) -> None:
        """
        A follower paused for L{STALL_SECONDS} fails with L{FollowerStalled},
        and the task it held back is let go.
        """
        follower = self.output.follow(StringTransport(), False, self.clock)
        follower.pauseProducing()
        self.output.append(b"x" * (BACKLOG_LIMIT + 1))
        self.assertEqual(self.source.calls, ["pause"])

        self.clock.advance(STALL_SECONDS)

        self.failureResultOf(follower.done, FollowerStalled)
        self.assertEqual(self.output.follower_count, 0)
        self.assertEqual(self.source.calls, ["pause", "resume"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_kept_while_reading(self) -> None:
        """
        A follower that resumes within the limit is kept, and the clock starts
        again at its next pause.
        """
        consumer = StringTransport()
        follower = self.output.follow(consumer, False, self.clock)
        follower.pauseProducing()
        self.clock.advance(STALL_SECONDS - 1)

        follower.resumeProducing()
        follower.pauseProducing()
        self.clock.advance(STALL_SECONDS - 1)

        self.assertNoResult(follower.done)
        follower.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_without_clock_never_dropped(self) -> None:
        """
        Without a clock, a paused follower is kept however long it waits.
        """
        follower = self.output.follow(StringTransport(), False)

        follower.pauseProducing()

        self.assertNoResult(follower.done)
        self.assertEqual(self.output.follower_count, 1)
        follower.stop()


class ReleaseTests(SynchronousTestCase):
    """
    An output's store is freed once the output is released, closed, and
    followed by nobody.
    """

    def setUp(self) -> None:
        self.store = MemoryStore()
        self.output = Output(self.store, kept=True)
        self.output.append(b"output")

    def test_released_then_closed_frees_store(self) -> None:
        """
        Closing a released output that nobody follows frees its store.
        """
        self.output.release()

        self.output.close()

        self.assertTrue(self.store.closed)

    def test_closed_then_released_frees_store(self) -> None:
        """
        Releasing a closed output that nobody follows frees its store.
        """
        self.output.close()

        self.output.release()

        self.assertTrue(self.store.closed)

    def test_unreleased_output_keeps_store(self) -> None:
        """
        A closed output that is still needed keeps its store after its last
        follower ends.
        """
        follower, _ = follow(self.output)

        self.output.close()

        self.successResultOf(follower.done)
        self.assertFalse(self.store.closed)

    def test_running_output_keeps_store(self) -> None:
        """
        A released output whose run is still writing keeps its store.
        """
        self.output.release()

        self.assertFalse(self.store.closed)

    def test_store_freed_after_last_follower(self) -> None:
        """
        A released, closed output keeps its store while a follower still reads
        it, and frees it when that follower is done.
        """
        follower, consumer = follow(self.output)
        follower.pauseProducing()
        self.output.append(b" and more")
        self.output.release()
        self.output.close()
        still_open = not self.store.closed

        follower.resumeProducing()

        self.assertTrue(still_open)
        self.assertTrue(self.store.closed)
        self.assertEqual(consumer.value(), b"output and more")


class SpoolTests(SynchronousTestCase):
    """
    A spool keeps each buffered task's latest output in a file of its own.
    """

    def setUp(self) -> None:
        self.directory = self.mktemp()
        self.spool = Spool(self.directory)

    def test_record_rewritten(self) -> None:
        """
        A run's record reads back as last written, also after a longer one.
        """
        self.spool.write_record("task", {"started_at": 1.5, "note": "x" * 100})

        self.spool.write_record("task", {"exit_code": 0})

        self.assertEqual(self.spool.read_record("task"), {"exit_code": 0})

    def test_no_record(self) -> None:
        """
        A task without a record, or with one that is not a JSON object, has
        an empty record.
        """
        self.spool.write_record("list", [1, 2])  # type: ignore[arg-type]

        self.assertEqual(
            (self.spool.read_record("none"), self.spool.read_record("list")),
            ({}, {}),
        )

    def create(self, task: str) -> Output:
        """
        Create a task's spool, discarded when the test ends.
        """
        output = self.spool.create(task)
        self.addCleanup(discard, output)
        return output

    def test_folder_removed_while_running(self) -> None:
        """
        A spool folder removed after start-up is made again for the next run.
        """
        os.rmdir(self.directory)

        output = self.create("hosts")
        output.append(b"alpha\n")

        self.assertEqual(output.contents(), b"alpha\n")
        self.assertTrue(os.path.isfile(self.spool.path_for("hosts")))

    def test_creates_private_folder(self) -> None:
        """
        A missing spool folder is created, readable by its owner only.
        """
        mode = stat.S_IMODE(os.stat(self.directory).st_mode)

        self.assertEqual(mode & 0o077, 0)

    def test_file_holds_output(self) -> None:
        """
        A run's bytes are in the task's spool file, readable by its owner
        only.
        """
        output = self.create("task")

        for chunk in AWKWARD_CHUNKS:
            output.append(chunk)

        path = self.spool.path_for("task")
        with open(path, "rb") as spool_file:
            self.assertEqual(spool_file.read(), b"".join(AWKWARD_CHUNKS))
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode) & 0o077, 0)

    def test_only_the_spool_file_is_left(self) -> None:
        """
        Creating a spool file leaves that file in the folder and nothing else.
        """
        self.create("task")
        self.create("task")

        self.assertEqual(
            os.listdir(self.directory),
            [os.path.basename(self.spool.path_for("task"))],
        )

    def test_new_run_replaces_file_old_followers_keep_old_bytes(self) -> None:
        """
        A new spool for a task replaces its file, while the previous run's
        output and its followers still read the previous run's bytes.
        """
        old = self.create("task")
        follower, consumer = follow(old)
        follower.pauseProducing()
        old.append(b"old run\n")
        old.close()

        new = self.create("task")
        new.append(b"new run\n")
        follower.resumeProducing()

        with open(self.spool.path_for("task"), "rb") as spool_file:
            self.assertEqual(spool_file.read(), b"new run\n")
        self.assertEqual(
            (old.contents(), consumer.value(), new.contents()),
            (b"old run\n", b"old run\n", b"new run\n"),
        )
        self.successResultOf(follower.done)

    def test_awkward_names_stay_inside_the_folder(self) -> None:
        """
        Task names with slashes, dots or non-ASCII characters get spool files
        directly inside the folder, and creating them writes nowhere else.
        """
        names = ["a/b", "../escape", ".", "..", "/etc/passwd", "zażółć gęśl", ""]

        for name in names:
            self.create(name).append(name.encode("utf-8"))

        self.assertEqual(
            sorted(os.listdir(self.directory)),
            sorted(os.path.basename(self.spool.path_for(name)) for name in names),
        )
        self.assertEqual(
            os.listdir(os.path.dirname(self.directory)),
            [os.path.basename(self.directory)],
        )

    def test_long_names_are_shortened(self) -> None:
        """
        A task name too long for a file name gets a shorter, distinct one.
        """
        long_names = ["x" * 300, "x" * 299 + "y", "ł" * 100]

        basenames = [os.path.basename(self.spool.path_for(name)) for name in long_names]

        self.assertEqual(len(set(basenames)), len(long_names))
        for basename in basenames:
            self.assertLessEqual(len(basename.encode("utf-8")), 255 - len(".partial"))

    @given(name=task_names)
    def test_path_is_a_plain_file_in_the_folder(self, name: str) -> None:
        """
        Every task name maps to a plain file name directly inside the folder,
        short enough for the file system together with its temporary suffix.
        """
        path = self.spool.path_for(name)
        basename = os.path.basename(path)

        self.assertEqual(os.path.dirname(path), self.directory)
        self.assertNotIn(basename, ("", ".", ".."))
        self.assertNotIn("\0", basename)
        self.assertLessEqual(len(f"{basename}.partial".encode()), 255)

    @given(first=task_names, second=task_names)
    def test_distinct_names_get_distinct_paths(self, first: str, second: str) -> None:
        """
        Two different task names never share a spool file.
        """
        assume(first != second)

        self.assertNotEqual(self.spool.path_for(first), self.spool.path_for(second))

    def test_quoted_looking_name_differs_from_its_unquoted_twin(self) -> None:
        """
        A name that looks like the escaped form of another does not share its
        file.
        """
        self.assertNotEqual(self.spool.path_for("a/b"), self.spool.path_for("a%2Fb"))


class ConsumerFakeTests(SynchronousTestCase):
    """
    The throttled consumer used here is a consumer.
    """

    def test_provides_consumer(self) -> None:
        """
        L{ThrottledConsumer} provides L{IConsumer}.
        """
        self.assertTrue(verifyObject(IConsumer, ThrottledConsumer()))
