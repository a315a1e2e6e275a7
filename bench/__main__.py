"""
Taru's benchmark:
C{python -m bench [--only 1,3] [--runs N] [--no-ceilings] [--profile DIR]}.

Starts Taru (direct runner) on 127.0.0.1 for each scenario, drives it with
raw-socket clients in separate processes, and prints one table of medians:

  1. one client streaming a 1 GiB output, against raw loopback TCP;
  2. 100 followers of one 1 GiB output: aggregate rate, identical bytes;
  3. 10,000 C{/events} subscribers: start of a task to the last C{Started};
  4. Taru's peak memory growth with a slow client and with 100 followers;
  5. run-and-wait latency of C{true};
  6. C{GET /api/v1/tasks} requests a second with 100 tasks.

Before each scenario the same clients run against a minimal raw-socket
server answering in the same shape: the client's ceiling. A Taru figure
close to it would say more about the client than about Taru.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from importlib.metadata import version

from bench.scenarios import DEFAULT_RUNS, SCENARIOS, Row
from bench.taru_process import TaruProcess


def machine() -> list[str]:
    """
    What the benchmark runs on: CPU, cores, memory, kernel, Python.
    """
    model = "unknown CPU"
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="utf-8") as meminfo:
        memory_kib = int(meminfo.readline().split()[1])
    return [
        f"CPU:     {model}, {os.cpu_count()} cores"
        f" ({len(os.sched_getaffinity(0))} usable), {memory_kib / 1024**2:.0f} GiB RAM",
        f"Kernel:  {platform.system()} {platform.release()}",
        f"Python:  {platform.python_implementation()} {platform.python_version()},"
        f" Twisted {version('twisted')}",
    ]


def table(rows: list[Row]) -> list[str]:
    """
    The results as a plain-text table, then each row's individual runs.
    """
    cells = [
        (
            "scenario",
            "measured (median)",
            "baseline / ratio",
            "client ceiling",
            "target",
            "result",
        )
    ]
    for row in rows:
        result = "-" if row.passed is None else ("PASS" if row.passed else "MISS")
        cells.append(
            (row.scenario, row.measured, row.baseline, row.ceiling, row.target, result)
        )
    widths = [max(len(line[column]) for line in cells) for column in range(6)]
    lines = []
    for number, line in enumerate(cells):
        lines.append(
            "  ".join(
                cell.ljust(width) for cell, width in zip(line, widths, strict=True)
            ).rstrip()
        )
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    lines.append("")
    lines.append("Runs:")
    for row in rows:
        lines.append(f"  {row.scenario.split(' ', 1)[0]} {row.runs}")
    return lines


def parse_options(arguments: list[str]) -> argparse.Namespace:
    """
    The command-line options.
    """
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only",
        default=",".join(str(number) for number in SCENARIOS),
        help="the scenarios to run, such as 1,3 (default: all)",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=None,
        help="runs per scenario (default: 3, and 5 for scenario 3)",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="record each Taru's stacks with py-spy (in .venv) into DIR",
    )
    parser.add_argument(
        "--no-ceilings",
        action="store_true",
        help="skip measuring the clients against minimal servers",
    )
    options = parser.parse_args(arguments)
    try:
        options.scenarios = [int(part) for part in options.only.split(",") if part]
    except ValueError:
        parser.error(f"--only takes scenario numbers, not {options.only!r}")
    unknown = sorted(set(options.scenarios) - set(SCENARIOS))
    if unknown or not options.scenarios:
        parser.error(f"no such scenario: {unknown}; there are 1 to {len(SCENARIOS)}")
    if options.runs is not None and not 1 <= options.runs <= 20:
        parser.error("--runs takes 1 to 20")
    return options


def main(arguments: list[str]) -> None:
    """
    Run the chosen scenarios and print the table.
    """
    options = parse_options(arguments)
    began = time.monotonic()

    def say(message: str) -> None:
        print(f"[{time.monotonic() - began:6.1f}s] {message}", flush=True)

    if options.profile:
        os.makedirs(options.profile, exist_ok=True)
        TaruProcess.profile_directory = options.profile

    for line in machine():
        print(line)
    print(flush=True)
    rows: list[Row] = []
    for number in options.scenarios:
        runs = options.runs or DEFAULT_RUNS[number]
        say(f"scenario {number}, {runs} runs")
        TaruProcess.profile_label = f"scenario-{number}"
        try:
            rows.extend(SCENARIOS[number](runs, not options.no_ceilings, say))
        except Exception as error:
            say(f"scenario {number} failed: {type(error).__name__}: {error}")
            failure = f"failed: {type(error).__name__}"
            row = Row(f"{number}. (failed)", failure, "", "", "", False, str(error))
            rows.append(row)

    print()
    for line in machine():
        print(line)
    print()
    for line in table(rows):
        print(line)
    print()
    print(
        "Medians of the runs; MB/s and GB/s are 10^6 and 10^9 bytes a second."
        " Client ceiling: the same clients against a minimal raw-socket server"
        " answering in the same shape, on this machine. Only the direct runner"
        " is measured: the systemd runner is not."
    )
    print(f"The benchmark took {(time.monotonic() - began) / 60:.1f} minutes.")


if __name__ == "__main__":
    main(sys.argv[1:])
