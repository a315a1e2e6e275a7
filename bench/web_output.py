"""
How fast the web page shows a large output, and whether it stays responsive.

Starts Taru (direct runner) on loopback with tasks that print 100,000 lines,
opens the page in headless Chromium, and for each task measures, over
several rounds:

  - baseline: the page's own C{fetch()} reading the same output and throwing
    it away, so the cost of Taru and the network alone;
  - page: clicking Run until the last line is on the page and the exit code
    shown;
  - the longest main-thread task while it streamed (over 50 ms counts as a
    long task; the page is frozen for that long).

Prints medians and the page-to-baseline ratio. Usage:
C{python bench/web_output.py [ROUNDS]}
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from playwright.sync_api import Browser, sync_playwright

HERE = os.path.dirname(os.path.abspath(__file__))
PUBLIC = os.path.join(os.path.dirname(HERE), "public")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGUMENTS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

CONFIG = r"""
tasks:
  plain:
    command: [seq, 1, 100000]
  coloured:
    command:
    - awk
    - 'BEGIN { for (i = 1; i <= 100000; i++)
         printf "\033[3%dm%06d\033[0m \033[1mline\033[0m of output\n", i % 8, i }'
"""

LONG_TASKS = """
window.longest_task = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    window.longest_task = Math.max(window.longest_task, entry.duration);
  }
}).observe({type: "longtask", buffered: true});
"""

FETCH_ONLY = """
async (name) => {
  const started = performance.now();
  const response = await fetch(`api/v1/task/${name}/output`, {method: "POST"});
  const reader = response.body.getReader();
  let bytes = 0;
  for (;;) {
    const {done, value} = await reader.read();
    if (done) break;
    bytes += value.length;
  }
  await fetch(`api/v1/task/${name}/status`);
  return [performance.now() - started, bytes];
}
"""


def start_taru(directory: str) -> tuple[subprocess.Popen[bytes], str]:
    config = os.path.join(directory, "taru.yml")
    with open(config, "w") as config_file:
        config_file.write(CONFIG)
    log_path = os.path.join(directory, "taru.log")
    log_file = open(log_path, "wb")
    taru = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "taru",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--runner",
            "direct",
            "--public",
            PUBLIC,
            "--state-dir",
            os.path.join(directory, "state"),
            config,
        ],
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with open(log_path, "rb") as log:
            found = re.search(rb"Site starting on (\d+)", log.read())
        if found:
            return taru, f"http://127.0.0.1:{int(found.group(1))}/"
        if taru.poll() is not None:
            break
        time.sleep(0.05)
    taru.kill()
    with open(log_path, encoding="utf-8", errors="replace") as log:
        raise SystemExit("taru did not start:\n" + log.read())


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory() as directory:
        taru, base = start_taru(directory)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGUMENTS
                )
                print(f"Chromium {browser.version}, {rounds} rounds, medians")
                print(
                    f"{'output':<10} {'baseline s':>10} {'page s':>8}"
                    f" {'ratio':>6} {'longest task ms':>16}"
                )
                for task in ["plain", "coloured"]:
                    measure(browser, base, task, rounds)
                browser.close()
        finally:
            taru.terminate()
            taru.wait()


def measure(browser: Browser, base: str, task: str, rounds: int) -> None:
    baselines, pages, longest = [], [], []
    for _ in range(rounds):
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.add_init_script(LONG_TASKS)
        page.goto(base)
        page.wait_for_selector(f"li[data-task={task}]")
        milliseconds, _ = page.evaluate(FETCH_ONLY, task)
        baselines.append(milliseconds / 1000)
        page.wait_for_selector(f"li[data-task={task}][data-state=finished]")
        page.evaluate("window.longest_task = 0")

        started = time.monotonic()
        page.click(f"li[data-task={task}] button.run")
        page.wait_for_selector("#output-status[data-state=ended]", timeout=60_000)
        pages.append(time.monotonic() - started)
        longest.append(page.evaluate("window.longest_task"))
        last = page.evaluate(
            "document.getElementById('output').textContent.trimEnd().split('\\n').pop()"
        )
        assert "100000" in last, f"last line shown is {last!r}"
        context.close()
    baseline = statistics.median(baselines)
    shown = statistics.median(pages)
    print(
        f"{task:<10} {baseline:>10.2f} {shown:>8.2f} {shown / baseline:>6.1f}"
        f" {statistics.median(longest):>16.0f}"
    )


if __name__ == "__main__":
    main()
