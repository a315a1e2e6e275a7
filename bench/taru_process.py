"""
Taru as the benchmark runs it: a child process on a free loopback port, with
the direct runner, its own configuration, state folder and log file; and a
sampler of its resident memory.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from types import TracebackType

from bench.http_client import Connection

STARTUP_SECONDS = 30.0
SHUTDOWN_SECONDS = 15.0
SAMPLE_SECONDS = 0.02

_SITE_STARTING = re.compile(rb"Site starting on (\d+)")


class TaruProcess:
    """
    One Taru serving a given configuration on 127.0.0.1.

    @ivar pid: its process id, once started.
    @ivar port: the TCP port it listens on, once started.
    @ivar directory: its own temporary folder: configuration, spool files
        and log; removed when it stops.
    """

    # Where the scenarios' Taru processes are profiled to, when asked: one
    # file of py-spy's collapsed stacks for each Taru, named by the label
    # and a count.
    profile_directory: str | None = None
    profile_label = "taru"
    _profiles = 0

    def __init__(self, config: str, keep_log: str | None = None) -> None:
        """
        @param config: the configuration, as YAML text.
        @param keep_log: a path to copy Taru's log to when it stops.
        """
        self.directory = tempfile.mkdtemp(prefix="taru-bench-")
        self.config_path = os.path.join(self.directory, "taru.yml")
        self.log_path = os.path.join(self.directory, "taru.log")
        with open(self.config_path, "w", encoding="utf-8") as config_file:
            config_file.write(config)
        self.keep_log = keep_log
        self.process: subprocess.Popen[bytes] | None = None
        self.profiler: subprocess.Popen[bytes] | None = None
        self.pid = 0
        self.port = 0

    def start(self) -> TaruProcess:
        """
        Start Taru and wait until it listens.

        @raise RuntimeError: with its log, when it does not start in time.
        """
        with open(self.log_path, "wb") as log_file:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "taru",
                    "--listen",
                    "tcp:0:interface=127.0.0.1",
                    "--runner",
                    "direct",
                    "--state-dir",
                    os.path.join(self.directory, "state"),
                    self.config_path,
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.pid = self.process.pid
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as log:
                found = _SITE_STARTING.search(log.read())
            if found:
                self.port = int(found.group(1))
                self._start_profiler()
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("Taru did not start:\n" + self.log_text())

    def _start_profiler(self) -> None:
        """
        Sample Taru's stacks with py-spy, without pausing it, when a profile
        folder is set.
        """
        if TaruProcess.profile_directory is None:
            return
        TaruProcess._profiles += 1
        name = f"{TaruProcess.profile_label}-{TaruProcess._profiles:02d}.txt"
        path = os.path.join(TaruProcess.profile_directory, name)
        py_spy = os.path.join(os.path.dirname(sys.executable), "py-spy")
        self.profiler = subprocess.Popen(
            [py_spy, "record", "--pid", str(self.pid), "--format", "raw"]
            + ["--nonblocking", "--rate", "200", "--output", path],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def log_text(self) -> str:
        """
        What Taru has logged so far.
        """
        with open(self.log_path, encoding="utf-8", errors="replace") as log:
            return log.read()

    def connection(self) -> Connection:
        """
        A new keep-alive connection to this Taru.
        """
        return Connection(self.port)

    def stop(self) -> None:
        """
        Stop Taru with SIGTERM (SIGKILL if it lingers), and remove its folder.
        """
        _end(self.profiler, signal.SIGINT)
        _end(self.process, signal.SIGTERM)
        if self.keep_log is not None and os.path.exists(self.log_path):
            shutil.copyfile(self.log_path, self.keep_log)
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> TaruProcess:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def cpu_seconds(pid: int) -> float:
    """
    The CPU time process C{pid} has used, user and system, all threads.
    """
    with open(f"/proc/{pid}/stat", "rb") as stat:
        fields = stat.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def resident_kib(pid: int) -> int:
    """
    The resident set size of process C{pid}, in KiB (C{VmRSS}).
    """
    with open(f"/proc/{pid}/status", "rb") as status:
        for line in status:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


class RssSampler:
    """
    Samples a process's resident memory every L{SAMPLE_SECONDS} in a thread,
    from entering the C{with} block to leaving it, and notes the CPU time it
    used meanwhile.

    @ivar before: the resident size just before, in KiB.
    @ivar peak: the largest resident size seen, in KiB.
    @ivar cpu_share: the CPU time it used over the time that passed: 1.0 is
        one core kept busy.
    """

    def __init__(self, pid: int, interval: float = SAMPLE_SECONDS) -> None:
        self.pid = pid
        self.interval = interval
        self.before = 0
        self.peak = 0
        self.samples = 0
        self.cpu_share = 0.0
        self._cpu_before = 0.0
        self._entered = 0.0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @property
    def growth_mib(self) -> float:
        """
        Peak resident size minus the size before, in MiB.
        """
        return (self.peak - self.before) / 1024

    def _sample(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.peak = max(self.peak, resident_kib(self.pid))
            except (OSError, RuntimeError):
                return
            self.samples += 1

    def __enter__(self) -> RssSampler:
        self.before = self.peak = resident_kib(self.pid)
        self._cpu_before = cpu_seconds(self.pid)
        self._entered = time.monotonic()
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._thread.join()
        try:
            self.peak = max(self.peak, resident_kib(self.pid))
            used = cpu_seconds(self.pid) - self._cpu_before
        except (OSError, RuntimeError):
            return
        self.cpu_share = used / max(time.monotonic() - self._entered, 1e-9)


def _end(process: subprocess.Popen[bytes] | None, first: int) -> None:
    """
    End a process this benchmark started: C{first}, then SIGKILL if it
    lingers.
    """
    if process is None or process.poll() is not None:
        return
    os.kill(process.pid, first)
    try:
        process.wait(SHUTDOWN_SECONDS)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(SHUTDOWN_SECONDS)
