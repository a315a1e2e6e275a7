"""
Where a profiled Taru spent its time:
C{python -m bench.profile_summary [--within TEXT] FILE...} reads py-spy's
collapsed stacks (C{--format raw}) and prints the functions with the most
samples, on their own (self) and with what they called (inclusive); with
C{--within}, only the stacks that pass through a frame containing TEXT,
such as C{_deliver} for the event broadcast.
"""

from __future__ import annotations

import argparse
from collections import Counter

SHOWN = 25


def summarize(path: str, within: str = "", shown: int = SHOWN) -> list[str]:
    """
    The busiest functions of one profile, as lines of text.

    @param within: count only the stacks with a frame containing this text.
    """
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    with open(path, encoding="utf-8", errors="replace") as profile:
        for line in profile:
            stack, _, count_text = line.rstrip("\n").rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = stack.split(";")
            if within and not any(within in frame for frame in frames):
                continue
            total += count
            own[frames[-1]] += count
            for frame in set(frames):
                inclusive[frame] += count
    lines = [f"{path}: {total} samples"]
    for title, counter in (("self", own), ("inclusive", inclusive)):
        lines.append(f"  by {title}:")
        for frame, count in counter.most_common(shown):
            lines.append(f"    {count / max(total, 1):6.1%}  {frame}")
    return lines


def main() -> None:
    """
    Summarize each profile named on the command line.
    """
    parser = argparse.ArgumentParser(prog="python -m bench.profile_summary")
    parser.add_argument("--within", default="", help="only stacks through this")
    parser.add_argument("--top", type=int, default=SHOWN, help="functions shown")
    parser.add_argument("paths", nargs="+", metavar="FILE")
    options = parser.parse_args()
    for path in options.paths:
        print("\n".join(summarize(path, options.within, options.top)))


if __name__ == "__main__":
    main()
