"""
The benchmark's scenarios. Each starts its own Taru, measures a few runs,
and returns rows for the table: the median, the baseline it is compared
with, the client's ceiling in the same shape, and the target.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.baselines import (
    raw_tcp_seconds,
    serve_events,
    serve_fixed,
    serve_output,
    spawn_seconds,
    task_alone_seconds,
)
from bench.clients import (
    end_client,
    expect,
    follow,
    read_slowly,
    request_repeatedly,
    start_client,
    subscribe,
)
from bench.http_client import (
    LINE,
    Connection,
    ResponseParser,
    connect,
    request_bytes,
)
from bench.taru_process import RssSampler, TaruProcess

MIB = 1 << 20
GIB = 1 << 30

Say = Callable[[str], None]


class Row:
    """
    One line of the results table.

    @ivar passed: whether the target was met; L{None} when there is none.
    @ivar runs: the individual runs' figures, for the notes under the table.
    """

    def __init__(
        self,
        scenario: str,
        measured: str,
        baseline: str,
        ceiling: str,
        target: str,
        passed: bool | None,
        runs: str = "",
    ) -> None:
        self.scenario = scenario
        self.measured = measured
        self.baseline = baseline
        self.ceiling = ceiling
        self.target = target
        self.passed = passed
        self.runs = runs


def output_script(length: int) -> str:
    """
    The shell script that writes C{length} bytes of the benchmark's output.
    """
    return f'yes "{LINE.decode().rstrip()}" | head -c {length}'


def _output_task(name: str, length: int) -> str:
    command = json.dumps(["sh", "-c", output_script(length)])
    return f"  {name}:\n    command: {command}\n"


STREAM_CONFIG = (
    "tasks:\n"
    + _output_task("output_1g", GIB)
    + _output_task("output_2g", 2 * GIB)
    + _output_task("output_1m", MIB)
    + '  "true":\n    command: ["true"]\n'
)

TASK_COUNT = 100


def _listing_config() -> str:
    tasks = []
    for number in range(TASK_COUNT):
        tasks.append(
            f"  task_{number:03d}:\n"
            f"    command: [echo, task, '{number}']\n"
            f"    meta:\n"
            f"      description: The task numbered {number}, for the listing\n"
        )
    return "tasks:\n" + "".join(tasks)


def _warm_up(taru: TaruProcess) -> None:
    """
    Exercise the code paths once, so that what the first request imports
    or allocates is not counted as the scenario's.
    """
    connection = taru.connection()
    try:
        connection.request("GET", "/api/v1/tasks")
        if b'"true"' in connection.request("GET", "/api/v1/tasks").body:
            connection.request("POST", "/api/v1/task/true/status")
            response = connection.request("POST", "/api/v1/task/output_1m/output")
            if response.body_length != MIB:
                raise RuntimeError("the warm-up output is not 1 MiB long")
    finally:
        connection.close()


def _percentile(values: list[float], fraction: float) -> float:
    """
    The nearest-rank percentile of C{values}.
    """
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


def _figures(values: list[float], unit: str, digits: int = 0) -> str:
    figures = ", ".join(f"{value:.{digits}f}" for value in values)
    return figures + ("%" if unit == "%" else f" {unit}")


def _run_followers(
    port: int,
    request: bytes,
    processes: int,
    per_process: int,
    seconds: float,
    before_go: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """
    Have C{processes} client processes each open C{per_process} connections,
    call C{before_go}, then send C{request} on every connection at once and
    read every response to its end.

    @return: the seconds from the first request to the last byte, each
        follower's report, and the share of a core the client processes
        used together.
    """
    clients = [
        start_client(follow, port, request, per_process, seconds)
        for _ in range(processes)
    ]
    try:
        for _, pipe in clients:
            if expect(pipe, 60) != "ready":
                raise RuntimeError("a follower process did not get ready")
        if before_go is not None:
            before_go()
        for _, pipe in clients:
            pipe.send("go")
        reports = [expect(pipe, seconds + 60) for _, pipe in clients]
    finally:
        for process, pipe in clients:
            end_client(process, pipe)
    followers = [follower for report in reports for follower in report["followers"]]
    started = min(report["started"] for report in reports)
    finished = max(follower["finished"] for follower in followers)
    seconds = finished - started
    cpu = sum(report["cpu"] for report in reports)
    return {"seconds": seconds, "followers": followers, "client_cpu": cpu / seconds}


def _identical(followers: list[dict[str, Any]], length: int) -> int:
    """
    How many followers received exactly the expected output of C{length}
    bytes: status 200, the whole body, of that length, every byte as
    expected.
    """
    return sum(
        1
        for follower in followers
        if follower["status"] == 200
        and follower["complete"]
        and follower["error"] is None
        and follower["length"] == length
        and follower["mismatch"] is None
    )


def _start_task(port: int, name: str) -> Callable[[], None]:
    """
    A function that starts task C{name} and returns once Taru says so.
    """

    def start() -> None:
        connection = Connection(port)
        try:
            response = connection.request("POST", f"/api/v1/task/{name}")
        finally:
            connection.close()
        if response.status != 200:
            raise RuntimeError(f"starting {name} answered {response.status}")

    return start


def _ceiling_of_followers(
    length: int, chunk_size: int, processes: int, per_process: int
) -> tuple[float, int]:
    """
    The aggregate rate, in bytes a second, at which the follower clients
    take a chunked output of C{length} bytes from a minimal server, and how
    many followers got it intact.
    """
    server, server_pipe = start_client(serve_output, length, chunk_size, 900.0)
    try:
        port = expect(server_pipe, 30)
        request = request_bytes("GET", "/output")
        result = _run_followers(port, request, processes, per_process, 600)
    finally:
        server_pipe.send("stop")
        end_client(server, server_pipe)
    count = processes * per_process
    rate = length * count / result["seconds"]
    return rate, _identical(result["followers"], length)


# The chunk size Taru's output has when a follower keeps up with the task:
# one chunk per read from the task's pipe (Taru reads 64 KiB at a time, the
# pipe seldom holds that much). The ceilings use it too, the worse case for
# the client's parser.
CEILING_CHUNK_SIZE = 64 * 1024


def scenario_1(runs: int, ceilings: bool, say: Say) -> list[Row]:
    """
    One client streams a 1 GiB output with C{POST .../output}; compared with
    raw loopback TCP moving 1 GiB between two Python processes, and with the
    task's output read from its pipe and thrown away.
    """
    request = request_bytes("POST", "/api/v1/task/output_1g/output")
    ceiling = "not measured"
    if ceilings:
        rate, intact = _ceiling_of_followers(GIB, CEILING_CHUNK_SIZE, 1, 1)
        ceiling = f"{rate / 1e6:.0f} MB/s"
        say(f"  client ceiling: {ceiling} ({intact}/1 intact)")

    rates, raw_rates, pipe_rates, big_pipe_rates, ratios = [], [], [], [], []
    growths, chunk_sizes, cpu = [], [], []
    intact = 0
    with TaruProcess(STREAM_CONFIG) as taru:
        _warm_up(taru)
        for run in range(runs):
            raw_rate = GIB / raw_tcp_seconds(GIB) / 1e6
            piped, seconds = task_alone_seconds(output_script(GIB))
            pipe_rate = piped / seconds / 1e6
            piped, seconds = task_alone_seconds(output_script(GIB), MIB)
            big_pipe_rates.append(piped / seconds / 1e6)
            with RssSampler(taru.pid) as sampler:
                result = _run_followers(taru.port, request, 1, 1, 600)
            follower = result["followers"][0]
            intact += _identical(result["followers"], GIB)
            rate = follower["length"] / result["seconds"] / 1e6
            rates.append(rate)
            raw_rates.append(raw_rate)
            pipe_rates.append(pipe_rate)
            ratios.append(rate / raw_rate)
            growths.append(sampler.growth_mib)
            chunk_sizes.append(follower["length"] / max(follower["chunks"], 1))
            cpu.append(sampler.cpu_share * 100)
            say(
                f"  run {run + 1}: {rate:.0f} MB/s, raw TCP {raw_rate:.0f} MB/s,"
                f" ratio {rate / raw_rate:.2f}; the task alone into a pipe"
                f" {pipe_rate:.0f} MB/s; mean chunk {chunk_sizes[-1] / 1024:.1f} KiB,"
                f" Taru CPU {cpu[-1]:.0f}%, client CPU"
                f" {result['client_cpu'] * 100:.0f}%, RSS +{sampler.growth_mib:.1f} MiB"
            )
    ratio = statistics.median(ratios)
    return [
        Row(
            "1. one client, POST output of 1 GiB",
            f"{statistics.median(rates):.0f} MB/s",
            f"raw TCP {statistics.median(raw_rates):.0f} MB/s, ratio {ratio:.2f};"
            f" task alone into a pipe {statistics.median(pipe_rates):.0f} MB/s",
            ceiling,
            ">= 1/3 of raw TCP",
            ratio >= 1 / 3 and intact == runs,
            f"Taru {_figures(rates, 'MB/s')}; raw TCP {_figures(raw_rates, 'MB/s')};"
            f" task alone into a pipe {_figures(pipe_rates, 'MB/s')}, into a 1 MiB"
            f" pipe read 1 MiB at a time {_figures(big_pipe_rates, 'MB/s')};"
            f" {intact}/{runs} outputs intact; mean chunk"
            f" {statistics.median(chunk_sizes) / 1024:.1f} KiB; Taru CPU"
            f" {_figures(cpu, '%')}; Taru RSS growth {_figures(growths, 'MiB', 1)}",
        )
    ]


def scenario_2(runs: int, ceilings: bool, say: Say) -> list[Row]:
    """
    100 followers of one buffered 1 GiB run: the aggregate rate, and whether
    every follower received the same bytes.
    """
    processes, per_process = 2, 50
    count = processes * per_process
    ceiling = "not measured"
    if ceilings:
        length = 256 * MIB
        rate, intact = _ceiling_of_followers(length, 64 * 1024, processes, per_process)
        ceiling = f"{rate / 1e9:.2f} GB/s"
        say(f"  client ceiling: {ceiling} ({intact}/{count} intact, 256 MiB each)")

    rates, growths, all_intact, cpu = [], [], [], []
    request = request_bytes("GET", "/api/v1/task/output_1g/output")
    with TaruProcess(STREAM_CONFIG) as taru:
        _warm_up(taru)
        for run in range(runs):
            with RssSampler(taru.pid) as sampler:
                result = _run_followers(
                    taru.port,
                    request,
                    processes,
                    per_process,
                    600,
                    _start_task(taru.port, "output_1g"),
                )
            intact = _identical(result["followers"], GIB)
            total = sum(follower["length"] for follower in result["followers"])
            rate = total / result["seconds"]
            rates.append(rate / 1e9)
            growths.append(sampler.growth_mib)
            all_intact.append(intact)
            cpu.append(sampler.cpu_share * 100)
            say(
                f"  run {run + 1}: {rate / 1e9:.2f} GB/s aggregate in"
                f" {result['seconds']:.1f}s, {intact}/{count} identical,"
                f" Taru CPU {cpu[-1]:.0f}%, clients CPU"
                f" {result['client_cpu'] * 100:.0f}%, RSS +{sampler.growth_mib:.1f} MiB"
            )
    median = statistics.median(rates)
    equal = all(intact == count for intact in all_intact)
    return [
        Row(
            f"2. {count} followers of a 1 GiB output",
            f"{median:.2f} GB/s, {min(all_intact)}/{count} identical",
            "",
            ceiling,
            ">= 2 GB/s, all identical",
            median >= 2 and equal,
            f"{_figures(rates, 'GB/s', 2)}; Taru CPU {_figures(cpu, '%')};"
            f" Taru RSS growth {_figures(growths, 'MiB', 1)}",
        )
    ]


def _subscriber_runs(
    port: int, runs: int, trigger: Callable[[], None], say: Say, what: str
) -> tuple[list[float], float, int]:
    """
    Connect 10,000 subscribers from two processes, then for each run call
    C{trigger} and time until the last subscriber has the C{Started} event.

    @return: each run's latency in seconds, how long connecting took, and
        how many subscribers missed an event or failed to connect.
    """
    processes, per_process = 2, 5000
    clients = [start_client(subscribe, port, per_process) for _ in range(processes)]
    latencies: list[float] = []
    missed = 0
    try:
        for _, pipe in clients:
            pipe.send("connect")
        connected = [expect(pipe, 180) for _, pipe in clients]
        connect_seconds = max(message[1] for message in connected)
        missed += sum(message[2] for message in connected)
        say(f"  {what}: 10,000 subscribers connected in {connect_seconds:.1f}s")
        for run in range(runs):
            for _, pipe in clients:
                pipe.send("watch")
            for _, pipe in clients:
                if expect(pipe, 30) != "armed":
                    raise RuntimeError("a subscriber process did not arm")
            started = time.monotonic()
            trigger()
            reports = [expect(pipe, 60)[1] for _, pipe in clients]
            run_missed = sum(
                report["missed_started"] + report["missed_ended"] for report in reports
            )
            missed += run_missed
            if any(report["last_started"] is None for report in reports):
                raise RuntimeError("no subscriber received the Started event")
            last = max(report["last_started"] for report in reports)
            first = min(report["first_started"] for report in reports)
            latencies.append(last - started)
            say(
                f"  {what} run {run + 1}: last Started after"
                f" {(last - started) * 1000:.0f} ms (first after"
                f" {(first - started) * 1000:.0f} ms), {run_missed} missed"
            )
            time.sleep(0.2)
    finally:
        for _, pipe in clients:
            pipe.send("quit")
        for process, pipe in clients:
            end_client(process, pipe)
    return latencies, connect_seconds, missed


def scenario_3(runs: int, ceilings: bool, say: Say) -> list[Row]:
    """
    10,000 event subscribers: the time from starting a task to the last of
    them receiving its C{Started} event.
    """
    ceiling = "not measured"
    if ceilings:
        server, server_pipe = start_client(serve_events, 900.0)
        try:
            port = expect(server_pipe, 30)
            latencies, _, _ = _subscriber_runs(
                port, runs, lambda: server_pipe.send("broadcast"), say, "ceiling"
            )
        finally:
            server_pipe.send("stop")
            end_client(server, server_pipe)
        ceiling = f"p50 {statistics.median(latencies) * 1000:.0f} ms"

    with TaruProcess(STREAM_CONFIG) as taru:
        _warm_up(taru)
        control = taru.connection()

        def start_true() -> None:
            response = control.request("POST", "/api/v1/task/true")
            if response.status != 200:
                raise RuntimeError(f"starting true answered {response.status}")

        with RssSampler(taru.pid) as sampler:
            latencies, connect_seconds, missed = _subscriber_runs(
                taru.port, runs, start_true, say, "Taru"
            )
        control.close()
    p50 = statistics.median(latencies) * 1000
    return [
        Row(
            "3. 10,000 /events subscribers, start to last Started",
            f"p50 {p50:.0f} ms, {missed} missed",
            "",
            ceiling,
            "p50 <= 150 ms",
            p50 <= 150 and missed == 0,
            f"{_figures([value * 1000 for value in latencies], 'ms')}; connecting"
            f" took {connect_seconds:.1f}s; Taru RSS growth"
            f" {sampler.growth_mib:.1f} MiB with 10,000 subscribers",
        )
    ]


def scenario_4(runs: int, ceilings: bool, say: Say) -> list[Row]:
    """
    Taru's peak memory growth (a) while a 2 GiB output is written and one
    client follows it at 1 MB/s, (b) while 100 followers read a 2 GiB
    output to its end.
    """
    slow_growths, slow_seconds = [], []
    for run in range(runs):
        with TaruProcess(STREAM_CONFIG) as taru:
            _warm_up(taru)
            time.sleep(0.5)
            request = request_bytes("POST", "/api/v1/task/output_2g/output")
            with RssSampler(taru.pid) as sampler:
                started = time.monotonic()
                client, pipe = start_client(read_slowly, taru.port, request, 1e6, 900)
                try:
                    head = expect(pipe, 30)
                    if head != ("head", 200):
                        raise RuntimeError(f"the slow client got {head}")
                    waiter = taru.connection()
                    waiter.sock.settimeout(600)
                    status = waiter.request("GET", "/api/v1/task/output_2g/status")
                    waiter.close()
                    ended = time.monotonic()
                finally:
                    pipe.send("stop")
                    _, taken, _ = expect(pipe, 30)
                    end_client(client, pipe)
            if status.body != b"0":
                raise RuntimeError(f"the 2 GiB task ended with {bytes(status.body)!r}")
            slow_growths.append(sampler.growth_mib)
            slow_seconds.append(ended - started)
            say(
                f"  (a) run {run + 1}: task took {ended - started:.1f}s, the client"
                f" read {taken / 1e6:.1f} MB, RSS +{sampler.growth_mib:.1f} MiB"
                f" (from {sampler.before / 1024:.0f} MiB)"
            )

    processes, per_process = 2, 50
    count = processes * per_process
    growths, rates, all_intact = [], [], []
    request = request_bytes("GET", "/api/v1/task/output_2g/output")
    for run in range(runs):
        with TaruProcess(STREAM_CONFIG) as taru:
            _warm_up(taru)
            time.sleep(0.5)
            with RssSampler(taru.pid) as sampler:
                result = _run_followers(
                    taru.port,
                    request,
                    processes,
                    per_process,
                    900,
                    _start_task(taru.port, "output_2g"),
                )
            intact = _identical(result["followers"], 2 * GIB)
            rate = count * 2 * GIB / result["seconds"] / 1e9
            growths.append(sampler.growth_mib)
            rates.append(rate)
            all_intact.append(intact)
            say(
                f"  (b) run {run + 1}: {rate:.2f} GB/s aggregate,"
                f" {intact}/{count} identical, Taru CPU"
                f" {sampler.cpu_share * 100:.0f}%, clients CPU"
                f" {result['client_cpu'] * 100:.0f}%, RSS +{sampler.growth_mib:.1f} MiB"
                f" (from {sampler.before / 1024:.0f} MiB)"
            )

    slow = statistics.median(slow_growths)
    many = statistics.median(growths)
    return [
        Row(
            "4a. RSS growth, 2 GiB output, one client at 1 MB/s",
            f"{slow:.1f} MiB",
            "",
            "",
            "<= 32 MiB",
            slow <= 32,
            f"{_figures(slow_growths, 'MiB', 1)}; the task took"
            f" {_figures(slow_seconds, 's', 1)}",
        ),
        Row(
            f"4b. RSS growth, {count} followers of a 2 GiB output",
            f"{many:.1f} MiB",
            "",
            "",
            "<= 32 MiB",
            many <= 32 and all(intact == count for intact in all_intact),
            f"{_figures(growths, 'MiB', 1)}; {_figures(rates, 'GB/s', 2)} aggregate;"
            f" {min(all_intact)}/{count} identical",
        ),
    ]


def _sequential_latencies(port: int, path: str, count: int) -> list[float]:
    """
    The round-trip time of C{count} sequential C{POST path} requests on one
    keep-alive connection, after a warm-up.
    """
    sock = connect(port)
    request = request_bytes("POST", path)
    buffer = bytearray(65536)
    view = memoryview(buffer)
    timings = []
    try:
        for number in range(count + 30):
            started = time.perf_counter()
            sock.sendall(request)
            parser = ResponseParser(keep_body=True)
            while not parser.complete:
                received = sock.recv_into(view)
                if received == 0:
                    parser.end_of_stream()
                parser.feed(buffer, view, 0, received)
            elapsed = time.perf_counter() - started
            if parser.status != 200 or parser.body != b"0":
                raise RuntimeError(f"{path} answered {parser.status} {parser.body!r}")
            if number >= 30:
                timings.append(elapsed)
    finally:
        sock.close()
    return timings


def scenario_5(runs: int, ceilings: bool, say: Say) -> list[Row]:
    """
    Run-and-wait latency: sequential C{POST /api/v1/task/true/status} on a
    keep-alive connection, direct runner.
    """
    count = 300
    path = "/api/v1/task/true/status"
    ceiling = "not measured"
    if ceilings:
        response = (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n1\r\n0\r\n0\r\n\r\n"
        )
        server, server_pipe = start_client(serve_fixed, response, 300.0)
        try:
            port = expect(server_pipe, 30)
            timings = _sequential_latencies(port, path, count)
        finally:
            server_pipe.send("stop")
            end_client(server, server_pipe)
        ceiling = f"p50 {statistics.median(timings) * 1000:.2f} ms"

    p50s, p99s, spawn_p50s = [], [], []
    with TaruProcess(STREAM_CONFIG) as taru:
        _warm_up(taru)
        for run in range(runs):
            spawn_p50s.append(statistics.median(spawn_seconds(count)) * 1000)
            timings = _sequential_latencies(
                taru.port, "/api/v1/task/true/status", count
            )
            p50s.append(statistics.median(timings) * 1000)
            p99s.append(_percentile(timings, 0.99) * 1000)
            say(
                f"  run {run + 1}: p50 {p50s[-1]:.2f} ms, p99 {p99s[-1]:.2f} ms;"
                f" spawning true alone p50 {spawn_p50s[-1]:.2f} ms"
            )
    p50 = statistics.median(p50s)
    p99 = statistics.median(p99s)
    return [
        Row(
            f"5. POST /task/true/status, {count} sequential (direct runner)",
            f"p50 {p50:.2f} ms, p99 {p99:.2f} ms",
            f"posix_spawn+wait of true: p50 {statistics.median(spawn_p50s):.2f} ms",
            ceiling,
            "p50 <= 3 ms",
            p50 <= 3,
            f"p50 {_figures(p50s, 'ms', 2)}; p99 {_figures(p99s, 'ms', 2)}",
        )
    ]


def _raw_response(port: int, request: bytes) -> bytes:
    """
    The exact bytes of one response, as a minimal server may replay them.
    """
    sock = connect(port)
    raw = bytearray()
    parser = ResponseParser()
    buffer = bytearray(1 << 20)
    try:
        sock.sendall(request)
        while not parser.complete:
            received = sock.recv_into(buffer)
            if received == 0:
                parser.end_of_stream()
            raw += buffer[:received]
            parser.feed(buffer, memoryview(buffer), 0, received)
    finally:
        sock.close()
    return bytes(raw)


def _request_rate(port: int, request: bytes, seconds: float) -> tuple[float, int, int]:
    """
    Requests a second completed by two client processes, four keep-alive
    connections each, over C{seconds} after a second's warm-up.

    @return: the rate, the errors, and how many different body lengths came.
    """
    processes, connections, warmup = 2, 4, 1.0
    clients = [
        start_client(request_repeatedly, port, request, connections, warmup, seconds)
        for _ in range(processes)
    ]
    try:
        for _, pipe in clients:
            if expect(pipe, 30) != "ready":
                raise RuntimeError("a request process did not get ready")
        start_at = time.monotonic() + 0.2
        for _, pipe in clients:
            pipe.send(("go", start_at))
        reports = [expect(pipe, warmup + seconds + 30) for _, pipe in clients]
    finally:
        for process, pipe in clients:
            end_client(process, pipe)
    responses = sum(report["responses"] for report in reports)
    errors = sum(report["errors"] for report in reports)
    lengths = {length for report in reports for length in report["body_lengths"]}
    return responses / seconds, errors, len(lengths)


def scenario_6(runs: int, ceilings: bool, say: Say) -> list[Row]:
    """
    C{GET /api/v1/tasks} requests a second with 100 tasks configured.
    """
    seconds = 5.0
    request = request_bytes("GET", "/api/v1/tasks")
    rates, growths, cpu = [], [], []
    errors = 0
    with TaruProcess(_listing_config()) as taru:
        _warm_up(taru)
        response = _raw_response(taru.port, request)
        ceiling = "not measured"
        if ceilings:
            server, server_pipe = start_client(serve_fixed, response, 300.0)
            try:
                port = expect(server_pipe, 30)
                rate, _, _ = _request_rate(port, request, seconds)
            finally:
                server_pipe.send("stop")
                end_client(server, server_pipe)
            ceiling = f"{rate:.0f} req/s"
            say(f"  client ceiling: {ceiling} ({len(response)} bytes a response)")
        for run in range(runs):
            with RssSampler(taru.pid) as sampler:
                rate, run_errors, _ = _request_rate(taru.port, request, seconds)
            rates.append(rate)
            growths.append(sampler.growth_mib)
            errors += run_errors
            cpu.append(sampler.cpu_share * 100)
            say(
                f"  run {run + 1}: {rate:.0f} req/s, {run_errors} errors,"
                f" Taru CPU {cpu[-1]:.0f}%, RSS +{sampler.growth_mib:.1f} MiB"
            )
    median = statistics.median(rates)
    return [
        Row(
            f"6. GET /api/v1/tasks, {TASK_COUNT} tasks, 8 connections",
            f"{median:.0f} req/s",
            "",
            ceiling,
            ">= 5,000 req/s",
            median >= 5000 and errors == 0,
            f"{_figures(rates, 'req/s')}; {errors} errors;"
            f" {len(response)} bytes a response; Taru CPU {_figures(cpu, '%')};"
            f" Taru RSS growth {_figures(growths, 'MiB', 1)}",
        )
    ]


SCENARIOS: dict[int, Callable[[int, bool, Say], list[Row]]] = {
    1: scenario_1,
    2: scenario_2,
    3: scenario_3,
    4: scenario_4,
    5: scenario_5,
    6: scenario_6,
}

# How many runs each scenario makes unless told otherwise.
DEFAULT_RUNS = {1: 3, 2: 3, 3: 5, 4: 3, 5: 3, 6: 3}
