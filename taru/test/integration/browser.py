"""
A real Chromium for the integration tests, driven with Playwright from a
thread of its own.

Playwright's synchronous API blocks the thread that calls it, and the
reactor must keep running meanwhile: it reads the log of the Taru under test
and carries the tests' own HTTP requests. So one worker thread owns
Playwright and one Chromium for the whole test run. Tests hand that thread
functions with L{call} and await their results; the Playwright objects they
get back, such as a L{Page}, are handles to pass to later calls, never to
use on the reactor's thread.

The browser is Debian's C{chromium} package (C{make test} installs it);
Playwright's own browser download is not used.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from threading import Thread
from typing import Any, Literal, ParamSpec, TypeVar, cast

from twisted.internet import reactor as _global_reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorCore, IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.trial.unittest import TestCase

try:
    from playwright.sync_api import (
        Browser,
        BrowserContext,
        ConsoleMessage,
        Error,
        Locator,
        Page,
        Playwright,
        ViewportSize,
        expect,
        sync_playwright,
    )
except ImportError as missing:
    raise ImportError(
        "the browser tests need Playwright for Python, from setup.py's test"
        " extra: pip install --editable '.[test]' (make test does)"
    ) from missing

__all__ = [
    "CHROMIUM",
    "DESKTOP",
    "PHONE",
    "TIMEOUT_MS",
    "BrowserUnavailable",
    "Locator",
    "Page",
    "call",
    "expect",
    "open_page",
]

_P = ParamSpec("_P")
_T = TypeVar("_T")

# The browser, from Debian's chromium package.
CHROMIUM = "/usr/bin/chromium"

# No sandbox, because the tests run as root; no smooth scrolling, so that a
# scroll a test makes is over when the call returns; the rest keeps Chromium
# from reaching out to the network, which is closed here, or doing work no
# test asks for.
CHROMIUM_ARGUMENTS = [
    "--no-sandbox",
    "--disable-smooth-scrolling",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# How long an action or an expectation in the browser waits, in milliseconds.
TIMEOUT_MS = 10_000

# Chromium's own start-up is about a second; this leaves room for a busy
# machine.
LAUNCH_TIMEOUT_MS = 60_000

DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}

log = Logger()

# The global reactor is typed as its common part; this one also takes calls
# from other threads and runs shutdown triggers.
_reactor = cast(IReactorFromThreads, _global_reactor)
_core = cast(IReactorCore, _global_reactor)


class BrowserUnavailable(AssertionError):
    """
    Chromium cannot be started, so a browser test fails (it is never
    skipped: CI must not pass without the browser tests).
    """


class _DaemonThread(Thread):
    """
    A thread that does not keep the interpreter alive.

    The pool is stopped when the reactor shuts down; should that never
    happen, Playwright's driver sees its pipe close when Python exits and
    takes Chromium down with it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.daemon = True


class _BrowserPool(ThreadPool):
    threadFactory = _DaemonThread


class _BrowserThread:
    """
    The one thread that owns Playwright and the shared Chromium.

    Everything but L{call} and L{_shut_down} runs in that thread.
    """

    def __init__(self) -> None:
        self._pool: ThreadPool | None = None
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None

    def call(
        self, function: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> Deferred[_T]:
        """
        Run a function in the browser's thread, starting the thread first if
        this is the first call.
        """
        if self._pool is None:
            self._pool = _BrowserPool(minthreads=1, maxthreads=1, name="browser")
            self._pool.start()
            _core.addSystemEventTrigger("before", "shutdown", self._shut_down)
        return deferToThreadPool(_reactor, self._pool, function, *args, **kwargs)

    def browser(self) -> Browser:
        """
        The shared Chromium, launched on first use.

        @raise BrowserUnavailable: it cannot be launched.
        """
        if self._browser is not None and self._browser.is_connected():
            return self._browser
        if not os.access(CHROMIUM, os.X_OK):
            raise BrowserUnavailable(
                f"no browser at {CHROMIUM}: the browser tests need Debian's"
                " chromium package (apt-get install --no-install-recommends"
                " chromium; make test installs it)"
            )
        try:
            if self._playwright is None:
                self._playwright = sync_playwright().start()
            self._browser = self._playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=CHROMIUM_ARGUMENTS,
                timeout=LAUNCH_TIMEOUT_MS,
            )
        except Error as error:
            raise BrowserUnavailable(
                f"{CHROMIUM} did not start: {error.message}"
            ) from None
        expect.set_options(timeout=TIMEOUT_MS)
        return self._browser

    def _close(self) -> None:
        browser, self._browser = self._browser, None
        playwright, self._playwright = self._playwright, None
        try:
            if browser is not None:
                browser.close()
        finally:
            if playwright is not None:
                playwright.stop()

    def _shut_down(self) -> Deferred[None]:
        """
        Close Chromium and Playwright in their thread, then end the thread.
        """
        pool, self._pool = self._pool, None
        if pool is None:
            return succeed(None)
        closing = deferToThreadPool(_reactor, pool, self._close)

        def stop_pool(result: None | Failure) -> None:
            pool.stop()
            if isinstance(result, Failure):
                log.failure("Closing the browser failed", result)

        return closing.addBoth(stop_pool)


_thread = _BrowserThread()


def call(
    function: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs
) -> Deferred[_T]:
    """
    Run C{function(*args, **kwargs)} in the browser's thread.

    @return: fires with the function's result, or fails with its exception,
        such as the C{AssertionError} of a failed C{expect}.
    """
    return _thread.call(function, *args, **kwargs)


async def open_page(
    testcase: TestCase,
    url: str,
    viewport: ViewportSize = DESKTOP,
    is_mobile: bool = False,
    user: str | None = None,
    init_script: str | None = None,
    color_scheme: Literal["light", "dark"] = "light",
) -> Page:
    """
    Open a page in a browser context of its own, closed when the test ends.
    The test fails if the page raises an uncaught error or breaks its
    content security policy.

    @param viewport: the size of the window.
    @param is_mobile: whether to behave as a phone: the page's viewport meta
        tag counts, touch events are on, and pixels are doubled.
    @param user: the user every request names in C{X-User}; none when
        L{None}.
    @param init_script: JavaScript run in the page before its own scripts.
    @param color_scheme: the colours the system prefers.
    @return: the page, loaded from C{url}.
    @raise BrowserUnavailable: there is no browser to open it in.
    """
    context = await call(_new_context, viewport, is_mobile, user, color_scheme)
    testcase.addCleanup(call, context.close)
    errors: list[str] = []
    testcase.addCleanup(_check_no_errors, testcase, errors)
    return await call(_new_page, context, url, init_script, errors)


def _check_no_errors(testcase: TestCase, errors: list[str]) -> None:
    testcase.assertEqual(errors, [], "the page raised errors or broke its policy")


def _new_context(
    viewport: ViewportSize,
    is_mobile: bool,
    user: str | None,
    color_scheme: Literal["light", "dark"],
) -> BrowserContext:
    context = _thread.browser().new_context(
        viewport=viewport,
        is_mobile=is_mobile,
        has_touch=is_mobile,
        device_scale_factor=2 if is_mobile else 1,
        extra_http_headers={} if user is None else {"X-User": user},
        accept_downloads=True,
        color_scheme=color_scheme,
    )
    context.set_default_timeout(TIMEOUT_MS)
    return context


def _new_page(
    context: BrowserContext, url: str, init_script: str | None, errors: list[str]
) -> Page:
    if init_script is not None:
        context.add_init_script(init_script)
    page = context.new_page()

    def page_error(error: Error) -> None:
        errors.append(str(error))
        _reactor.callFromThread(
            log.warn, "The page raised an error: {error}", error=str(error)
        )

    def console_error(message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        # Failed requests are logged too, and some tests cause them on
        # purpose; a refusal by the content security policy is a bug.
        if message.text.startswith("Refused to"):
            errors.append(message.text)
        _reactor.callFromThread(
            log.warn, "The page logged an error: {text}", text=message.text
        )

    page.on("pageerror", page_error)
    page.on("console", console_error)
    page.goto(url)
    return page
