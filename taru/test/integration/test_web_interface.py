"""
The bundled web page in a real headless Chromium, against a real Taru that
serves it: what a person sees and can do, checked against the page's DOM
contract (ids, classes and data attributes), not against its looks.

The browser work runs in the browser's own thread (L{call}); the reactor
keeps running meanwhile, so a test can start tasks through the API while
the page watches.
"""

from __future__ import annotations

import json
import os
import re
import signal
from typing import Any

from treq.client import HTTPClient
from twisted.logger import Logger
from twisted.trial.unittest import TestCase
from twisted.web.http_headers import Headers

import taru
from taru.test.integration.browser import (
    PHONE,
    Locator,
    Page,
    call,
    expect,
    open_page,
)
from taru.test.integration.harness import (
    Taru,
    free_port,
    http_client,
    kill_processes_with,
    processes_with,
    sleep_marker,
    wait_for,
)

log = Logger()

# The web interface this checkout ships.
PUBLIC = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(taru.__file__))), "public"
)

# Where screenshots go: a folder in trial's working folder, _trial_temp.
SCREENSHOTS = "screenshots"

# The longest the page's main thread may stay busy in one go while 100,000
# lines of output stream in: a click or a key waits that long for an answer.
# The bundled page measured 60 ms at most on two cores; a person notices from
# about a tenth of a second, and a slower machine needs room.
LONGEST_TASK_MS = 250.0

# The longest 100,000 lines of output may take to show, from the click; the
# bundled page measured about half a second.
RENDER_MS = 5000.0


async def start_taru(testcase: TestCase, config: str, *arguments: str) -> Taru:
    """
    Start a real Taru that serves this checkout's web page and runs tasks as
    plain child processes.
    """
    return await Taru(
        testcase, config, arguments=["--public", PUBLIC, *arguments]
    ).start()


def as_user(user: str | None) -> Headers:
    """
    Request headers naming C{user}, or none for L{None}.
    """
    return Headers() if user is None else Headers({"X-User": [user]})


async def api(
    client: HTTPClient,
    method: str,
    url: str,
    user: str | None = None,
    data: dict[str, str] | None = None,
) -> tuple[int, str]:
    """
    Make an API request and read all of its answer.

    @return: the status code and the body as text.
    """
    response = await client.request(method, url, headers=as_user(user), data=data)
    body = await response.content()
    return response.code, body.decode("utf-8")


async def run_to_end(
    client: HTTPClient, taru: Taru, task: str, user: str | None = None
) -> str:
    """
    Start a task through the API, wait for it to end, and give its exit code
    as the API words it (C{0}, C{3}, C{null}).
    """
    url = taru.url(f"/api/v1/task/{task}/status")
    code, body = await api(client, "POST", url, user)
    assert code == 200, (code, body)
    return body


def screenshot_path(name: str) -> str:
    """
    Where to save a screenshot named C{name}, in a folder made if missing.
    """
    os.makedirs(SCREENSHOTS, exist_ok=True)
    return os.path.abspath(os.path.join(SCREENSHOTS, name))


# From here on, the functions that take a Page run in the browser's thread,
# through call().


def task_item(page: Page, name: str) -> Locator:
    """
    The list item of the task named C{name}.
    """
    return page.locator(f'#tasks > li.task[data-task="{name}"]')


def expect_live(page: Page) -> None:
    """
    Wait until the page follows Taru's events.
    """
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def expect_task_state(
    page: Page, name: str, state: str, words: str, exit_code: str | None = None
) -> None:
    """
    Wait until a task's item shows C{state}, says C{words}, and carries
    C{exit_code} in C{data-exit-code}, or no such attribute for L{None}.
    """
    item = task_item(page, name)
    expect(item).to_have_attribute("data-state", state)
    expect(item.locator(".task-state")).to_have_text(words)
    if exit_code is None:
        without_code = f'#tasks > li.task[data-task="{name}"]:not([data-exit-code])'
        expect(page.locator(without_code)).to_have_count(1)
    else:
        expect(item).to_have_attribute("data-exit-code", exit_code)


def expect_field(
    field: Locator, name: str, tag: str, input_type: str | None = None
) -> None:
    """
    Check that a form field, found by its role and accessible name, is the
    argument C{name}'s, of the given tag and input type, with a C{<label>}.
    """
    expect(field).to_have_attribute("name", name)
    expect(field).to_have_js_property("tagName", tag)
    if input_type is not None:
        expect(field).to_have_attribute("type", input_type)
    labels = field.evaluate("e => [...e.labels].map((label) => label.tagName)")
    assert labels == ["LABEL"], f"{name} is labelled by {labels}"


def run_from_page(page: Page, name: str) -> None:
    """
    Click a task's Run button.
    """
    task_item(page, name).locator("button.run").click()


def output_when_ended(page: Page, task: str) -> tuple[str, str]:
    """
    Wait until the output panel shows a task's ended stream.

    @return: the panel's status text and the output's text.
    """
    expect(page.locator("#output-task")).to_have_text(task)
    status = page.locator("#output-status")
    expect(status).to_have_attribute("data-state", "ended")
    return status.inner_text(), page.locator("#output").evaluate("e => e.textContent")


LIST_CONFIG = """
    tasks:
      backup:
        command:
        - printf
        - '%b\\n'
        - '\\0033[1mbackup\\0033[0m inventory.db -> /mnt/backup'
        - '\\r  copying    12%\\r  copying   100%  412 MiB'
        - '  verifying \\0033[32mok\\0033[0m'
        - '\\0033[1;32mbacked up\\0033[0m in 41 s'
        meta:
          description: Copies the inventory database to the backup disk
      rotate_logs_and_compress_archives:
        command: [sh, -c, 'echo rotating; exit 3']
        meta:
          description: >-
            Rotates the web server's logs and compresses last month's
            archives, which takes a while on a busy machine
      follow_journal:
        command: [sh, -c, 'echo following; sleep {marker}']
        meta:
          description: Follows the system journal until stopped
      reindex:
        command: [sh, -c, 'sleep {marker}']
      repeat:
        command: [sh, -c, 'echo "$2 $1"', repeat, $times, $text]
        meta:
          description: Prints some text a number of times
        arguments:
          - {{name: times, datatype: Int}}
          - {{name: text, datatype: String}}
      secret:
        command: [sh, -c, 'exit 0']
    users:
      alice:
        can_run: &seen
          [backup, rotate_logs_and_compress_archives, follow_journal, reindex,
           repeat]
        can_view_status: *seen
        can_view_output: *seen
      root:
        can_run: [secret]
        can_view_status: [secret]
        can_view_output: [secret]
"""

RELOAD_CONFIG = """
    tasks:
      say:
        command: [printf, '%s\\n', $words]
        arguments:
          - {name: words, datatype: String}
      removed:
        command: [sh, -c, 'exit 0']
        meta:
          description: Goes away
"""

STATE_CONFIG = """
    tasks:
      tick:
        command: [sh, -c, 'sleep 3; exit 4']
        meta:
          description: Takes three seconds, then fails
"""

ARGUMENTS_CONFIG = """
    tasks:
      colours:
        command: [printf, 'red\\ngreen\\nblue\\n']
      show:
        command: [printf, '<%s>\\n', $count, $text, $colour]
        arguments:
          - {name: count, datatype: Int}
          - {name: text, datatype: String}
          - {name: colour, datatype: Enum, enum_source: colours}
"""

ENUM_CONFIG = """
    tasks:
      hosts:
        command: [printf, 'alpha\\nbeta\\ngamma delta\\n']
      ping:
        command: [echo, pinged, $host]
        arguments:
          - {name: host, datatype: Enum, enum_source: hosts}
"""

LIVE_OUTPUT_CONFIG = """
    tasks:
      slow:
        command: [sh, -c, 'echo first line; sleep 3; echo second line']
"""

SHOW_OUTPUT_CONFIG = """
    tasks:
      greet:
        command: [sh, -c, 'echo hello from the last run; exit 2']
"""

# A thousand lines at a time, five times over: far more than the panel holds.
FOLLOW_CONFIG = """
    tasks:
      lines:
        command:
          - sh
          - -c
          - 'for i in 1 2 3 4 5; do seq $((i * 1000 - 999)) $((i * 1000));
             sleep 0.2; done'
"""

ANSI_CONFIG = r"""
    tasks:
      styled:
        command:
          - printf
          - '\033[1mbold\033[0m \033[31mred\033[0m\n10%%\r55%%\r100%%\n'
"""

TERMINAL_CONFIG = r"""
    tasks:
      terminal:
        command:
          - printf
          - '\033[38;5;196mpalette\033[0m \033[38;2;1;2;3mtrue\033[0m
             \033[1;4;7minverse\033[0m \033]0;a title\007gone\n
             abcdef\r\033[Kxy\n\377\376ok\nback\b\bCK\n<b>not markup</b>\n'
"""

STOP_CONFIG = """
    tasks:
      long:
        command: [sh, -c, 'echo started; sleep {marker}; echo not stopped']
"""

# A header line, two rows, one with UTF-8 text and a CRLF, and a byte that
# is not UTF-8 at all: the download must hold exactly these bytes.
REPORT_BYTES = b"name,count\nalpha,1\r\n\xc3\xa9t\xc3\xa9,2\nraw,\xff\n"

DOWNLOAD_CONFIG = r"""
    tasks:
      report:
        command: [printf, 'name,count\nalpha,1\r\n\303\251t\303\251,2\nraw,\377\n']
        headers:
          content-disposition: 'attachment; filename="report.txt"'
        meta:
          description: The inventory as CSV
          download: true
"""

PERMISSIONS_CONFIG = """
    tasks:
      job:
        command: [sh, -c, 'echo job done']
        meta:
          description: Does the job
    users:
      watcher:
        can_run: []
        can_view_status: [job]
        can_view_output: []
      starter:
        can_run: [job]
        can_view_status: [job]
        can_view_output: []
"""

RECONNECT_CONFIG = """
    tasks:
      job:
        command: [sh, -c, 'exit 6']
"""

LONG_OUTPUT_CONFIG = r"""
    tasks:
      count:
        command: [seq, 1, 100000]
      colourful:
        command:
          - awk
          - 'BEGIN { for (i = 1; i <= 100000; i++)
                       printf "\033[3%dm%d\033[0m\n", i % 8, i }'
"""

# Records every long task of the page's main thread (one that keeps it busy
# for over 50 ms), from before the page's own scripts run.
LONG_TASK_OBSERVER = """
window.taruLongTasks = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    window.taruLongTasks.push({start: entry.startTime, duration: entry.duration});
  }
}).observe({type: "longtask", buffered: true});
"""

# Clicks a task's Run button in the page and waits, off Playwright's polling,
# until its whole output shows.
RENDER_OUTPUT = """
async ([task, last]) => {
  const output = document.getElementById("output");
  const status = document.getElementById("output-status");
  const panel = document.getElementById("output-panel");
  // The panel may still show the end of an earlier run: count only once this
  // run has been seen streaming.
  let started = false;
  const watcher = new MutationObserver((records) => {
    started ||= status.dataset.state === "streaming"
      || records.some((record) => record.oldValue === "streaming");
  });
  watcher.observe(status, {attributeFilter: ["data-state"], attributeOldValue: true});
  const start = performance.now();
  document.querySelector(`#tasks > li.task[data-task="${task}"] button.run`).click();
  const shown = () => started && status.dataset.state === "ended"
    && output.textContent.trimEnd().endsWith(last);
  while (!shown() && performance.now() - start < 30000) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const rendered = performance.now() - start;
  watcher.disconnect();
  await new Promise((resolve) => setTimeout(resolve, 200));
  const during = window.taruLongTasks.filter((t) => t.start + t.duration >= start);
  const box = panel.getBoundingClientRect();
  return {
    shown: shown(),
    rendered_ms: rendered,
    longest_task_ms: Math.max(0, ...during.map((t) => t.duration)),
    long_tasks: during.length,
    tail: output.textContent.slice(-40),
    panel: [box.width, box.height],
    page_height: document.documentElement.scrollHeight,
  };
}
"""


class WebInterfaceTests(TestCase):
    """
    The page in a real browser, against a real Taru with the direct runner.
    """

    runner = "direct"

    # Playwright's expectations raise AssertionError: a test that one stops
    # has failed, as when one of trial's assertions stops it. Trial types the
    # attribute as its own FailTest (an AssertionError) but only matches
    # exceptions against it, so the wider class is safe.
    failureException = AssertionError  # type: ignore[assignment]

    async def test_list(self) -> None:
        """
        The page lists exactly the tasks the user may see, in the API's order,
        each with its name, its description when it has one, and its state in
        words and attributes; on a phone it fits the screen's width.
        """
        marker = sleep_marker()
        self.addCleanup(kill_processes_with, marker)
        taru = await start_taru(self, LIST_CONFIG.format(marker=marker))
        client = http_client(self)
        for task in ["backup", "rotate_logs_and_compress_archives"]:
            await run_to_end(client, taru, task, "alice")
        for action in ["reindex", "follow_journal", "reindex/stop"]:
            url = taru.url(f"/api/v1/task/{action}")
            code, body = await api(client, "POST", url, "alice")
            self.assertEqual(code, 200, body)
        await api(client, "GET", taru.url("/api/v1/task/reindex/status"), "alice")
        code, body = await api(client, "GET", taru.url("/api/v1/tasks"), "alice")
        self.assertEqual(code, 200, body)
        listed = json.loads(body)
        self.assertNotIn("secret", listed)
        desktop = await open_page(self, taru.base, user="alice")
        phone = await open_page(self, taru.base, PHONE, is_mobile=True, user="alice")

        def check_list(page: Page) -> list[str]:
            expect_live(page)
            expect(page.locator("#tasks > li.task")).to_have_count(len(listed))
            for name, task in listed.items():
                item = task_item(page, name)
                expect(item.locator(".task-name")).to_have_text(name)
                description = item.locator(".task-description")
                if "description" in task["meta"]:
                    expect(description).to_have_text(task["meta"]["description"])
                else:
                    expect(description).to_have_count(0)
            expect_task_state(page, "backup", "finished", "exit code 0", "0")
            expect_task_state(
                page,
                "rotate_logs_and_compress_archives",
                "finished",
                "failed: exit code 3",
                "3",
            )
            expect_task_state(page, "follow_journal", "running", "running")
            expect_task_state(page, "reindex", "finished", "stopped")
            expect_task_state(page, "repeat", "new", "never run")
            order: list[str] = page.locator("#tasks > li.task").evaluate_all(
                "items => items.map((item) => item.dataset.task)"
            )
            return order

        def show_backup(page: Page) -> None:
            task_item(page, "backup").locator("button.view").click()
            expect(page.locator("#output")).to_contain_text("backed up in 41 s")
            expect(page.locator("#output-status")).to_have_text("exit code 0")

        def desktop_screenshot(page: Page) -> None:
            show_backup(page)
            page.screenshot(path=screenshot_path("desktop.png"), full_page=True)

        def phone_width(page: Page) -> dict[str, int]:
            show_backup(page)
            page.screenshot(path=screenshot_path("phone.png"), full_page=True)
            widths: dict[str, int] = page.evaluate(
                "({scroll: document.documentElement.scrollWidth,"
                " inner: window.innerWidth})"
            )
            return widths

        self.assertEqual(await call(check_list, desktop), list(listed))
        await call(desktop_screenshot, desktop)
        self.assertEqual(await call(check_list, phone), list(listed))
        widths = await call(phone_width, phone)
        self.assertLessEqual(widths["scroll"], widths["inner"], widths)

    async def test_live_state(self) -> None:
        """
        A run started elsewhere shows on the open page as it happens: running,
        with an elapsed time that ticks, then finished with its exit code,
        without the page being reloaded.
        """
        taru = await start_taru(self, STATE_CONFIG)
        client = http_client(self)
        page = await open_page(self, taru.base)

        def before(page: Page) -> None:
            expect_live(page)
            expect_task_state(page, "tick", "new", "never run")
            page.evaluate("window.taruNotReloaded = true")

        def while_running(page: Page) -> None:
            expect_task_state(page, "tick", "running", "running")
            elapsed = task_item(page, "tick").locator(".task-elapsed")
            expect(elapsed).to_have_text(re.compile(r"^\s*0:0\d\s*$"))
            shown = elapsed.inner_text()
            expect(elapsed).not_to_have_text(shown, timeout=2500)

        def after(page: Page) -> bool:
            expect_task_state(page, "tick", "finished", "failed: exit code 4", "4")
            elapsed = task_item(page, "tick").locator(".task-elapsed")
            expect(elapsed).to_have_text(re.compile(r"^\s*0:0[2-4]\s*$"))
            not_reloaded: bool = page.evaluate("window.taruNotReloaded === true")
            return not_reloaded

        await call(before, page)
        code, body = await api(client, "POST", taru.url("/api/v1/task/tick"))
        self.assertEqual(code, 200, body)
        await call(while_running, page)
        self.assertTrue(await call(after, page), "the page was reloaded")

    async def test_argument_form(self) -> None:
        """
        A task's form has a number field for an Int, a text field for a
        String and a drop-down for an Enum, each labelled with the argument's
        name; a value the API refuses shows the API's own error and starts
        nothing, and good values reach the command exactly, each as one
        argument, as its output shows.
        """
        taru = await start_taru(self, ARGUMENTS_CONFIG)
        client = http_client(self)
        await run_to_end(client, taru, "colours")
        refused = {"count": "4.0", "text": "x", "colour": "green"}
        code, error = await api(
            client, "POST", taru.url("/api/v1/task/show"), data=refused
        )
        text = """it's "quoted", $HOME; and spaced"""
        page = await open_page(self, taru.base)

        def check_fields(page: Page) -> None:
            expect_live(page)
            form = task_item(page, "show").locator("form.task-form")
            expect_field(
                form.get_by_role("spinbutton", name="count", exact=True),
                "count",
                "INPUT",
                "number",
            )
            expect_field(
                form.get_by_role("textbox", name="text", exact=True),
                "text",
                "INPUT",
                "text",
            )
            expect_field(
                form.get_by_role("combobox", name="colour", exact=True),
                "colour",
                "SELECT",
            )

        def fill_and_run(page: Page, values: dict[str, str]) -> None:
            form = task_item(page, "show").locator("form.task-form")
            form.locator('[name="count"]').fill(values["count"])
            form.locator('[name="text"]').fill(values["text"])
            form.locator('[name="colour"]').select_option(values["colour"])
            run_from_page(page, "show")

        def refusal_shown(page: Page) -> None:
            error_box = task_item(page, "show").locator(".task-error")
            expect(error_box).to_have_text(error.strip())
            expect_task_state(page, "show", "new", "never run")

        def good_run(page: Page) -> str:
            fill_and_run(page, {"count": "3", "text": text, "colour": "green"})
            _, output = output_when_ended(page, "show")
            expect(task_item(page, "show").locator(".task-error")).to_have_text("")
            return output

        self.assertEqual(code, 400, error)
        await call(check_fields, page)
        await call(fill_and_run, page, refused)
        await call(refusal_shown, page)
        self.assertEqual(await call(good_run, page), f"<3>\n<{text}>\n<green>\n")

    async def test_enum_waits_for_its_source(self) -> None:
        """
        An Enum whose source has never run shows a disabled drop-down, says
        which task to run first and offers a button that runs it; once the
        source has run, the drop-down offers the source's lines and a chosen
        one runs the task.
        """
        taru = await start_taru(self, ENUM_CONFIG)
        page = await open_page(self, taru.base)

        def not_ready(page: Page) -> None:
            expect_live(page)
            ping = task_item(page, "ping")
            expect(ping.locator('select[name="host"]')).to_be_disabled()
            expect(ping.locator(".not-ready")).to_contain_text("run hosts first")
            expect(ping.locator("button.run-source")).to_have_text("Run hosts")

        def run_source(page: Page) -> list[str]:
            task_item(page, "ping").locator("button.run-source").click()
            expect_task_state(page, "hosts", "finished", "exit code 0", "0")
            ping = task_item(page, "ping")
            select = ping.locator('select[name="host"]')
            expect(select).to_be_enabled()
            expect(ping.locator(".not-ready")).to_be_hidden()
            values: list[str] = select.locator("option").evaluate_all(
                "options => options.map((o) => o.value).filter((v) => v !== '')"
            )
            return values

        def run_with_choice(page: Page) -> str:
            select = task_item(page, "ping").locator('select[name="host"]')
            select.select_option("gamma delta")
            run_from_page(page, "ping")
            _, output = output_when_ended(page, "ping")
            return output

        await call(not_ready, page)
        self.assertEqual(await call(run_source, page), ["alpha", "beta", "gamma delta"])
        self.assertEqual(await call(run_with_choice, page), "pinged gamma delta\n")

    async def test_live_output(self) -> None:
        """
        Output shows in the panel as the task writes it, while the task still
        runs, and the panel says how the run ended.
        """
        taru = await start_taru(self, LIVE_OUTPUT_CONFIG)
        page = await open_page(self, taru.base)

        def first_line_while_running(page: Page) -> str:
            expect_live(page)
            run_from_page(page, "slow")
            output = page.locator("#output")
            expect(output).to_contain_text("first line")
            expect(page.locator("#output-status")).to_have_attribute(
                "data-state", "streaming"
            )
            text: str = output.evaluate("e => e.textContent")
            return text

        first_shown = await call(first_line_while_running, page)
        status, output = await call(output_when_ended, page, "slow")

        self.assertEqual(first_shown, "first line\n")
        self.assertEqual(output, "first line\nsecond line\n")
        self.assertEqual(status.strip(), "exit code 0")

    async def test_show_output(self) -> None:
        """
        Show output brings the latest run's output into the panel, with how
        that run ended.
        """
        taru = await start_taru(self, SHOW_OUTPUT_CONFIG)
        await run_to_end(http_client(self), taru, "greet")
        page = await open_page(self, taru.base)

        def show(page: Page) -> tuple[str, str]:
            expect_live(page)
            task_item(page, "greet").locator("button.view").click()
            return output_when_ended(page, "greet")

        status, output = await call(show, page)

        self.assertEqual(output, "hello from the last run\n")
        self.assertTrue(status.strip().endswith("exit code 2"), status)

    async def test_output_follows_the_end(self) -> None:
        """
        The output panel keeps its end in view as output arrives, offers
        Jump to end only once the person scrolls up, and that button brings
        the end back into view.
        """
        taru = await start_taru(self, FOLLOW_CONFIG)
        page = await open_page(self, taru.base)

        def below_end(page: Page) -> float:
            distance: float = page.locator("#output").evaluate(
                "e => e.scrollHeight - e.scrollTop - e.clientHeight"
            )
            return distance

        def stream(page: Page) -> tuple[float, bool]:
            expect_live(page)
            run_from_page(page, "lines")
            output_when_ended(page, "lines")
            return below_end(page), page.locator("#output-follow").is_visible()

        def scroll_up_and_jump(page: Page) -> tuple[float, float]:
            page.locator("#output").hover()
            page.mouse.wheel(0, -2000)
            jump = page.locator("#output-follow")
            expect(jump).to_be_visible()
            scrolled_up = below_end(page)
            jump.click()
            expect(jump).to_be_hidden()
            return scrolled_up, below_end(page)

        below, jump_offered = await call(stream, page)
        self.assertLess(below, 1)
        self.assertFalse(jump_offered)
        scrolled_up, after_jump = await call(scroll_up_and_jump, page)

        self.assertGreater(scrolled_up, 1)
        self.assertLess(after_jump, 1)

    async def test_ansi_and_carriage_return(self) -> None:
        """
        ANSI bold and colour become styled spans, and a carriage return
        overwrites its line, so that a progress counter shows only its last
        value.
        """
        taru = await start_taru(self, ANSI_CONFIG)
        page = await open_page(self, taru.base)

        def styled(page: Page) -> dict[str, Any]:
            expect_live(page)
            run_from_page(page, "styled")
            _, text = output_when_ended(page, "styled")
            output = page.locator("#output")
            expect(output.locator(".ansi-bold")).to_have_text("bold")
            red = output.locator(".ansi-fg-1")
            expect(red).to_have_text("red")
            colours: dict[str, str] = red.evaluate(
                "e => ({red: getComputedStyle(e).color,"
                " plain: getComputedStyle(e.closest('#output')).color})"
            )
            return {"text": text, **colours}

        shown = await call(styled, page)

        self.assertEqual(shown["text"].rstrip("\n").split("\n"), ["bold red", "100%"])
        self.assertNotEqual(shown["red"], shown["plain"])

    async def test_terminal(self) -> None:
        """
        The output shows what a terminal would: 256 colours and true colour,
        inverse, bold and underline; titles and erased text gone; bytes that
        are not UTF-8 as replacement characters; backspaces stepping back;
        and markup in the output as plain text.
        """
        taru = await start_taru(self, TERMINAL_CONFIG)
        page = await open_page(self, taru.base)

        def shown(page: Page) -> dict[str, Any]:
            expect_live(page)
            run_from_page(page, "terminal")
            _, text = output_when_ended(page, "terminal")
            output = page.locator("#output")
            found: dict[str, Any] = output.evaluate(
                """(output) => {
                    const colour = (text) => [...output.querySelectorAll("span")]
                        .filter((span) => span.textContent === text)
                        .map((span) => getComputedStyle(span).color)[0];
                    const inverse = [...output.querySelectorAll("span")]
                        .find((span) => span.textContent === "inverse");
                    return {
                        palette: colour("palette"),
                        true_colour: colour("true"),
                        inverse: inverse ? [...inverse.classList].sort() : [],
                        elements: output.querySelectorAll("b").length,
                    };
                }"""
            )
            return {"text": text, **found}

        found = await call(shown, page)

        self.assertEqual(
            found["text"].split("\n"),
            [
                "palette true inverse gone",
                "xy",
                "\ufffd\ufffdok",
                "baCK",
                "<b>not markup</b>",
                "",
            ],
        )
        self.assertEqual(found["palette"], "rgb(255, 0, 0)")
        self.assertEqual(found["true_colour"], "rgb(1, 2, 3)")
        self.assertEqual(
            found["inverse"],
            ["ansi-bg-inverse", "ansi-bold", "ansi-fg-inverse", "ansi-underline"],
        )
        self.assertEqual(found["elements"], 0)

    async def test_stop(self) -> None:
        """
        Stopping a task from the page ends it and everything it started, and
        the page says it was stopped.
        """
        marker = sleep_marker()
        self.addCleanup(kill_processes_with, marker)
        taru = await start_taru(self, STOP_CONFIG.format(marker=marker))
        page = await open_page(self, taru.base)

        def start(page: Page) -> None:
            expect_live(page)
            item = task_item(page, "long")
            expect(item.locator("button.stop")).to_be_hidden()
            run_from_page(page, "long")
            expect(page.locator("#output")).to_contain_text("started")
            expect_task_state(page, "long", "running", "running")
            expect(item.locator("button.run")).to_be_disabled()
            expect(page.locator("#output-stop")).to_be_visible()

        def stop(page: Page) -> str:
            item = task_item(page, "long")
            item.locator("button.stop").click()
            expect_task_state(page, "long", "finished", "stopped")
            expect(item.locator("button.stop")).to_be_hidden()
            expect(item.locator("button.run")).to_be_enabled()
            status, _ = output_when_ended(page, "long")
            return status

        await call(start, page)
        self.assertTrue(processes_with(marker))
        status = await call(stop, page)

        self.assertEqual(status.strip(), "stopped")
        self.assertTrue(
            await wait_for(lambda: not processes_with(marker), 10.0),
            processes_with(marker),
        )

    async def test_timed_out(self) -> None:
        """
        A run stopped by its task's timeout shows as timed out, in the task
        list and in the output panel.
        """
        marker = sleep_marker()
        self.addCleanup(kill_processes_with, marker)
        config = STOP_CONFIG.format(marker=marker) + "        timeout: 0.5\n"
        taru = await start_taru(self, config)
        page = await open_page(self, taru.base)

        def run(page: Page) -> str:
            expect_live(page)
            run_from_page(page, "long")
            expect_task_state(page, "long", "finished", "timed out")
            status, _ = output_when_ended(page, "long")
            return status

        status = await call(run, page)

        self.assertEqual(status.strip(), "timed out")

    async def test_download(self) -> None:
        """
        A download task's button says Download and saves the output, byte for
        byte, under the name its content-disposition header gives.
        """
        taru = await start_taru(self, DOWNLOAD_CONFIG)
        page = await open_page(self, taru.base)

        def download(page: Page) -> tuple[str, bytes]:
            expect_live(page)
            button = task_item(page, "report").locator("button.run")
            expect(button).to_have_text("Download")
            with page.expect_download() as started:
                button.click()
            saved = started.value
            with open(saved.path(), "rb") as file:
                return saved.suggested_filename, file.read()

        name, content = await call(download, page)

        self.assertEqual((name, content), ("report.txt", REPORT_BYTES))

    async def test_permissions(self) -> None:
        """
        The page offers only what the user may do: a user who may only see a
        task's status gets no form and no buttons; one who may run it but not
        read its output can run it, but not show its output.
        """
        taru = await start_taru(self, PERMISSIONS_CONFIG)
        watcher = await open_page(self, taru.base, user="watcher")
        starter = await open_page(self, taru.base, user="starter")

        def watcher_sees(page: Page) -> None:
            expect_live(page)
            item = task_item(page, "job")
            expect(item.locator(".task-name")).to_have_text("job")
            expect_task_state(page, "job", "new", "never run")
            for control in [
                "form.task-form",
                "button.run",
                "button.stop",
                "button.view",
            ]:
                expect(item.locator(control)).to_have_count(0)

        def starter_runs(page: Page) -> None:
            expect_live(page)
            item = task_item(page, "job")
            expect(item.locator("button.view")).to_have_count(0)
            expect(item.locator("button.stop")).to_be_hidden()
            run_from_page(page, "job")
            expect_task_state(page, "job", "finished", "exit code 0", "0")
            expect(item.locator(".task-error")).to_have_text("")

        await call(watcher_sees, watcher)
        await call(starter_runs, starter)

    async def test_refused(self) -> None:
        """
        A browser that names no user, or one Taru does not know, is shown the
        API's refusal instead of a task list.
        """
        taru = await start_taru(self, PERMISSIONS_CONFIG)
        client = http_client(self)
        refusals = {}
        pages = {}
        for user in [None, "mallory"]:
            url = taru.url("/api/v1/tasks")
            refusals[user] = await api(client, "GET", url, user)
            pages[user] = await open_page(self, taru.base, user=user)

        def refusal_shown(page: Page, refusal: str) -> None:
            message = page.locator("#tasks-message")
            expect(message).to_be_visible()
            expect(message).to_contain_text(refusal.strip())
            expect(page.locator("#tasks > li.task")).to_have_count(0)

        self.assertEqual(refusals[None][0], 401, refusals)
        self.assertEqual(refusals["mallory"][0], 403, refusals)
        for user, page in pages.items():
            await call(refusal_shown, page, refusals[user][1])

    async def test_reconnection(self) -> None:
        """
        When Taru goes away the page says it is reconnecting; once Taru is
        back on the same address, the page is live again and shows runs
        started after the restart.
        """
        port = free_port()
        listen = ["--listen", f"tcp:{port}:interface=127.0.0.1"]
        base = f"http://127.0.0.1:{port}"
        first = await start_taru(self, RECONNECT_CONFIG, *listen)
        client = http_client(self)
        page = await open_page(self, base)

        def connection_is(page: Page, state: str) -> None:
            expect(page.locator("#connection")).to_have_attribute("data-state", state)

        def shows_run(page: Page) -> None:
            expect_task_state(page, "job", "finished", "failed: exit code 6", "6")

        await call(connection_is, page, "live")
        await first.stop()
        await call(connection_is, page, "reconnecting")
        await first.successor().start()
        await call(connection_is, page, "live")
        code, body = await api(client, "POST", f"{base}/api/v1/task/job/status")
        await call(shows_run, page)

        self.assertEqual((code, body), (200, "6"))

    async def test_long_output(self) -> None:
        """
        100,000 lines of output, plain or with a colour per line, show to
        their end quickly, without the page's main thread staying busy long
        enough for a person to notice, and without the panel changing its
        size.
        """
        taru = await start_taru(self, LONG_OUTPUT_CONFIG)
        page = await open_page(self, taru.base, init_script=LONG_TASK_OBSERVER)

        def render(page: Page, task: str) -> dict[str, Any]:
            expect_live(page)
            measured: dict[str, Any] = page.evaluate(RENDER_OUTPUT, [task, "100000"])
            return measured

        plain = await call(render, page, "count")
        coloured = await call(render, page, "colourful")
        for task, measured in [("count", plain), ("colourful", coloured)]:
            log.info(
                "100,000 lines of {task}: shown in {rendered_ms:.0f} ms, longest"
                " task {longest_task_ms:.0f} ms of {long_tasks} long tasks",
                task=task,
                **measured,
            )

        for measured in [plain, coloured]:
            self.assertTrue(measured["shown"], measured)
            self.assertTrue(measured["tail"].rstrip().endswith("\n100000"), measured)
            self.assertLess(measured["rendered_ms"], RENDER_MS, measured)
            self.assertLess(measured["longest_task_ms"], LONGEST_TASK_MS, measured)
        self.assertEqual(coloured["panel"], plain["panel"])
        self.assertEqual(coloured["page_height"], plain["page_height"])

    async def test_reload(self) -> None:
        """
        When Taru reloads its configuration, the open page shows the new task
        list at once, without being reloaded, and keeps what someone was
        typing into a task that is still there.
        """
        taru = await start_taru(self, RELOAD_CONFIG)
        page = await open_page(self, taru.base)

        def before(page: Page) -> None:
            expect_live(page)
            expect(page.locator("#tasks > li.task")).to_have_count(2)
            task_item(page, "say").locator("input[name=words]").fill("half typed")
            page.evaluate("window.taruNotReloaded = true")

        def after(page: Page) -> tuple[str, bool]:
            expect(page.locator("#tasks > li.task")).to_have_count(2)
            expect(task_item(page, "added")).to_have_count(1)
            expect(task_item(page, "removed")).to_have_count(0)
            typed = task_item(page, "say").locator("input[name=words]").input_value()
            not_reloaded: bool = page.evaluate("window.taruNotReloaded === true")
            return typed, not_reloaded

        await call(before, page)
        taru.write_config(
            RELOAD_CONFIG.replace("removed:", "added:").replace(
                "description: Goes away", "description: Came with the reload"
            )
        )
        taru.signal(signal.SIGHUP)
        self.assertEqual(await call(after, page), ("half typed", True))

    async def test_keyboard(self) -> None:
        """
        Someone with only a keyboard can reach a task's field and its Run
        button with Tab, see where the focus is, and run the task with Enter.
        """
        taru = await start_taru(self, RELOAD_CONFIG)
        page = await open_page(self, taru.base)

        def use_keyboard(page: Page) -> tuple[str, str]:
            expect_live(page)
            field = task_item(page, "say").locator("input[name=words]")
            for _ in range(20):
                page.keyboard.press("Tab")
                if field.evaluate("e => e === document.activeElement"):
                    break
            expect(field).to_be_focused()
            page.keyboard.type("typed, not clicked")
            page.keyboard.press("Tab")
            run = task_item(page, "say").locator("button.run")
            expect(run).to_be_focused()
            outline: str = run.evaluate("e => getComputedStyle(e).outlineStyle")
            page.keyboard.press("Enter")
            _, output = output_when_ended(page, "say")
            return outline, output

        outline, output = await call(use_keyboard, page)
        self.assertNotEqual(outline, "none")
        self.assertEqual(output, "typed, not clicked\n")

    async def test_dark_mode(self) -> None:
        """
        Where the system prefers dark colours the page is dark, and its text
        light.
        """
        taru = await start_taru(self, RELOAD_CONFIG)
        light = await open_page(self, taru.base)
        dark = await open_page(self, taru.base, color_scheme="dark")

        def lightness(page: Page) -> tuple[float, float]:
            expect_live(page)
            background, text = page.evaluate(
                "[getComputedStyle(document.body).backgroundColor,"
                " getComputedStyle(document.body).color]"
            )
            return luminance(background), luminance(text)

        light_background, light_text = await call(lightness, light)
        dark_background, dark_text = await call(lightness, dark)
        self.assertGreater(light_background, light_text)
        self.assertLess(dark_background, dark_text)
        self.assertLess(dark_background, 0.2)


def luminance(colour: str) -> float:
    """
    How light a CSS C{rgb(...)} colour is, from 0 (black) to 1 (white).
    """
    red, green, blue = (int(part) for part in re.findall(r"\d+", colour)[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


EDGE_CONFIG = r"""
    tasks:
      '10':
        command: [sh, -c, 'exit 0']
      '2':
        command: [sh, -c, 'exit 0']
      colours:
        command:
          - python3
          - -c
          - |
            import sys
            line = "".join(
                "\x1b[38;2;%d;%d;%dm#" % (n % 256, n * 7 % 256, n * 13 % 256)
                for n in range(3000)
            )
            sys.stdout.write(line + "\x1b[0m\n\x1b[38;5;200mpalette\x1b[0m\n")
      sequences:
        command:
          - printf
          - '\033(Bcharset \033Pdevice control\033\\gone \033[38:2::255:0:0mcolon\033[0m
             \033[12;34\nafter\n'
      rewrites:
        command:
          - python3
          - -c
          - |
            import sys
            sys.stdout.write("x" * 200000 + "\rX" * 3000 + "\n")
      a_task_whose_argument_names_are_long:
        command: [echo, $an_argument_whose_name_goes_on_without_any_space_to_break_it]
        arguments:
          - name: an_argument_whose_name_goes_on_without_any_space_to_break_it
            datatype: Enum
            enum_source: a_source_task_whose_name_goes_on_and_on_without_any_space_in_it
      a_source_task_whose_name_goes_on_and_on_without_any_space_in_it:
        command: [echo, one]
"""


# The colour of the styled run of output whose text is exactly the argument.
COLOUR_OF = """
(text) => {
  const span = [...document.querySelectorAll("#output span")]
    .find((span) => span.textContent === text);
  return span ? getComputedStyle(span).color : null;
}
"""


class EdgeTests(TestCase):
    """
    What broke the page once: many colours, names that look like numbers or
    never end, odd escape sequences, and long lines rewritten in place.
    """

    failureException = AssertionError  # type: ignore[assignment]

    async def test_order_of_numeric_names(self) -> None:
        """
        Tasks named like numbers are listed where the configuration puts
        them, not first.
        """
        taru = await start_taru(self, EDGE_CONFIG)
        page = await open_page(self, taru.base)

        def order(page: Page) -> list[str]:
            expect_live(page)
            expect(page.locator("#tasks > li.task")).to_have_count(7)
            names: list[str] = page.locator("#tasks > li.task").evaluate_all(
                "items => items.map((item) => item.dataset.task)"
            )
            return names

        names = await call(order, page)

        self.assertEqual(names[:3], ["10", "2", "colours"])

    async def test_many_colours(self) -> None:
        """
        Thousands of different true colours are all shown, and colours keep
        working after them.
        """
        taru = await start_taru(self, EDGE_CONFIG)
        page = await open_page(self, taru.base)

        def colours(page: Page) -> str:
            expect_live(page)
            run_from_page(page, "colours")
            _, text = output_when_ended(page, "colours")
            colour: str = page.evaluate(COLOUR_OF, "palette")
            return text + colour

        shown = await call(colours, page)

        self.assertEqual(shown, "#" * 3000 + "\npalette\n" + "rgb(255, 0, 215)")

    async def test_odd_sequences(self) -> None:
        """
        Character set choices and device control strings are dropped, colour
        parts separated by colons are read, and a sequence broken off by
        text is dropped without swallowing that text.
        """
        taru = await start_taru(self, EDGE_CONFIG)
        page = await open_page(self, taru.base)

        def sequences(page: Page) -> tuple[str, str]:
            expect_live(page)
            run_from_page(page, "sequences")
            _, text = output_when_ended(page, "sequences")
            colour: str = page.evaluate(COLOUR_OF, "colon")
            return text, colour

        text, colour = await call(sequences, page)

        self.assertEqual(text, "charset gone colon \nafter\n")
        self.assertEqual(colour, "rgb(255, 0, 0)")

    async def test_long_line_rewritten(self) -> None:
        """
        A very long line rewritten thousands of times with C{\\r} does not
        freeze the page.
        """
        taru = await start_taru(self, EDGE_CONFIG)
        page = await open_page(self, taru.base, init_script=LONG_TASK_OBSERVER)

        def rewrites(page: Page) -> tuple[str, float]:
            expect_live(page)
            run_from_page(page, "rewrites")
            _, text = output_when_ended(page, "rewrites")
            longest: float = page.evaluate(
                "Math.max(0, ...window.taruLongTasks.map((t) => t.duration))"
            )
            return text, longest

        text, longest = await call(rewrites, page)

        # Shown as a terminal wraps it: "\r" goes back to the start of the
        # last 10,000 characters.
        self.assertEqual(text.replace("\n", ""), "x" * 190000 + "X" + "x" * 9999)
        self.assertLess(longest, LONGEST_TASK_MS)

    async def test_long_names_on_a_phone(self) -> None:
        """
        Names without spaces break to fit a phone's width; an Enum that is
        not ready says so when its form is sent, and sends nothing.
        """
        taru = await start_taru(self, EDGE_CONFIG)
        page = await open_page(self, taru.base, {"width": 320, "height": 700}, True)
        name = "a_task_whose_argument_names_are_long"

        def narrow(page: Page) -> tuple[int, int, str]:
            expect_live(page)
            item = task_item(page, name)
            expect(item.locator(".not-ready")).to_be_visible()
            item.locator("button.run").click()
            expect(item.locator(".task-error")).to_contain_text("Not ready yet")
            widths: dict[str, int] = page.evaluate(
                "({scroll: document.documentElement.scrollWidth,"
                " inner: window.innerWidth})"
            )
            state: str = item.get_attribute("data-state") or ""
            return widths["scroll"], widths["inner"], state

        scroll, inner, state = await call(narrow, page)

        self.assertLessEqual(scroll, inner)
        self.assertEqual(state, "new")
