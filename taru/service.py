"""
Taru as a Twisted service: its options, the pieces wired together, the
listening endpoints, and configuration reloads on SIGHUP.

The same L{Options} and L{make_service} serve the C{taru} command, the
C{twistd taru} plugin and C{taru.tac}.
"""

from __future__ import annotations

import ipaddress
import os
import resource
import signal
import socket
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import (
    Deferred,
    DeferredList,
    FirstError,
    gatherResults,
    maybeDeferred,
)
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import (
    IAddress,
    IListeningPort,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure

import taru
from taru.api import TaruAPI
from taru.channel import REQUEST_DEADLINE
from taru.config import DEFAULT_TRUSTED_PROXIES, Config, ConfigError, load_config
from taru.events import EventBroadcaster
from taru.history import History, HistoryError
from taru.metrics import Metrics
from taru.output import Spool
from taru.runners import (
    DirectRunner,
    IRunner,
    RunnerError,
)
from taru.systemd import SystemdRunner, user_manager_answers
from taru.tasks import Tasks

RUNNERS = ("auto", "systemd", "direct")

# How long Taru waits, on shutdown, for the tasks it stops to end.
SHUTDOWN_WAIT_SECONDS = 10.0


def default_state_directory() -> str:
    """
    Where Taru keeps its state when not told: the folder systemd names in
    C{STATE_DIRECTORY}, else C{$XDG_STATE_HOME/taru}, else
    C{~/.local/state/taru}.
    """
    from_systemd = os.environ.get("STATE_DIRECTORY")
    if from_systemd:
        return from_systemd.split(":")[0]
    state_home = os.environ.get("XDG_STATE_HOME") or os.path.expanduser(
        "~/.local/state"
    )
    return os.path.join(state_home, "taru")


def default_endpoint(environ: dict[str, str] | None = None) -> str:
    """
    Where Taru listens when not told: on the first socket systemd passed to
    this process, else on TCP port 3000 on all interfaces.
    """
    if environ is None:
        environ = {**os.environ, **taru.SOCKET_ACTIVATION}
    passed = environ.get("LISTEN_PID") == str(os.getpid()) and environ.get(
        "LISTEN_FDS", "0"
    ) not in ("", "0")
    if not passed:
        return "tcp:3000"
    first = socket.socket(fileno=3)
    try:
        family = first.family
    finally:
        first.detach()
    domain = {socket.AF_INET6: "INET6", socket.AF_UNIX: "UNIX"}.get(family, "INET")
    return f"systemd:domain={domain}:index=0"


LOG_FORMATS = ("text", "json")


def _positive_seconds(option: str, value: object) -> float:
    """
    Read a number of seconds given on the command line.

    @raise usage.UsageError: for anything but a positive, finite number.
    """
    try:
        seconds = float(value)  # type: ignore[arg-type]  # str or float
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise usage.UsageError(
            f"--{option} must be a positive number of seconds, not {value!r}"
        )
    return seconds


class Options(usage.Options):
    """
    Taru's command-line options, shared by C{taru} and C{twistd taru}.
    """

    synopsis = "[options] [CONFIG]"
    longdesc = (
        "Serve preconfigured commands to users over HTTP. CONFIG is the YAML"
        " configuration file, ./taru.yml by default."
    )

    optParameters = [
        ["config", "c", None, "The configuration file (default: ./taru.yml)."],
        [
            "runner",
            "r",
            "auto",
            "How tasks run: systemd (systemd-run --user), direct (child"
            " processes), or auto (systemd when a user manager answers).",
        ],
        [
            "public",
            "p",
            None,
            "The folder served under / (default: ./public when it exists).",
        ],
        [
            "state-dir",
            "s",
            None,
            "Where output is spooled (default: $STATE_DIRECTORY, else"
            " $XDG_STATE_HOME/taru or ~/.local/state/taru).",
        ],
        [
            "log-format",
            None,
            "text",
            "How the taru command writes its log: text, or json (one JSON"
            " object per line, with every event's fields).",
        ],
        [
            "request-timeout",
            None,
            REQUEST_DEADLINE,
            "Seconds a client has to send a whole request, from its first byte"
            " to the end of its body; slower ones get 408.",
        ],
    ]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # not annotated
        self["listen"] = []

    def opt_listen(self, endpoint: str) -> None:
        """
        Listen on a Twisted endpoint (tcp:8080:interface=127.0.0.1,
        unix:/run/taru.sock, systemd:domain=INET:index=0); may be repeated.
        Default: the socket systemd passed, else tcp:3000.
        """
        self["listen"].append(endpoint)

    opt_l = opt_listen

    def parseArgs(self, config: str | None = None) -> None:
        if config is not None:
            if self["config"] is not None:
                raise usage.UsageError("give the configuration file only once")
            self["config"] = config

    def postOptions(self) -> None:
        if self["runner"] not in RUNNERS:
            raise usage.UsageError(
                f"--runner must be one of {', '.join(RUNNERS)}, not {self['runner']!r}"
            )
        if self["log-format"] not in LOG_FORMATS:
            raise usage.UsageError(
                f"--log-format must be one of {', '.join(LOG_FORMATS)},"
                f" not {self['log-format']!r}"
            )
        self["request-timeout"] = _positive_seconds(
            "request-timeout", self["request-timeout"]
        )
        if self["config"] is None:
            self["config"] = "taru.yml"
        if self["public"] is None and os.path.isdir("public"):
            self["public"] = "public"
        if self["public"] is not None and not os.path.isdir(self["public"]):
            raise usage.UsageError(f"--public: {self['public']!r} is not a folder")
        if self["state-dir"] is None:
            self["state-dir"] = default_state_directory()
        if not self["listen"]:
            self["listen"] = [default_endpoint()]
        try:
            self["loaded"] = load_config(self["config"])
        except ConfigError as error:
            sys.stderr.write(f"taru: {error}\n")
            raise SystemExit(2) from None


def choose_runner(
    name: str, reactor: Any, state_directory: str, log: Logger
) -> IRunner:
    """
    Make the runner the options ask for; for C{auto}, probe for a systemd
    user manager and say which was chosen.
    """
    if name == "auto":
        name = "systemd" if user_manager_answers() else "direct"
        log.info("runner: {runner} (chosen automatically)", runner=name)
    else:
        log.info("runner: {runner}", runner=name)
    if name == "systemd":
        return SystemdRunner(reactor, state_directory)
    runner: IRunner = DirectRunner(reactor)
    return runner


class EndpointError(Exception):
    """
    A C{--listen} endpoint is not valid.
    """


def _describe_address(address: object) -> str:
    host = getattr(address, "host", None)
    if host is not None:
        port = getattr(address, "port", "")
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    name = getattr(address, "name", address)
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)


def reaches_beyond_loopback(address: IAddress) -> bool:
    """
    Whether a listening address can be reached from other machines.
    """
    if not isinstance(address, (IPv4Address, IPv6Address)):
        return False
    host = ipaddress.ip_address(address.host.split("%", 1)[0])
    return not host.is_loopback


def raise_open_file_limit(
    getrlimit: Callable[[int], tuple[int, int]] = resource.getrlimit,
    setrlimit: Callable[[int, tuple[int, int]], None] = resource.setrlimit,
) -> tuple[int, int]:
    """
    Let Taru open as many files as the system allows it: every follower,
    subscriber and running task holds some, and the usual soft limit of
    1,024 is soon reached.

    @return: the soft limit before and after.
    """
    soft, hard = getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard
    if hard == resource.RLIM_INFINITY:
        # The kernel takes no unlimited soft limit; its own ceiling is the
        # most it allows.
        with open("/proc/sys/fs/nr_open") as ceiling:
            wanted = int(ceiling.read())
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft, soft
    try:
        setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError):
        return soft, soft
    return soft, wanted


class TaruService(MultiService):
    """
    The whole of Taru: its tasks, its API on every endpoint it listens on,
    and reloading on SIGHUP.
    """

    _log = Logger()

    def __init__(
        self,
        config_path: str,
        config: Config,
        runner: IRunner,
        state_directory: str,
        public: str | None,
        endpoints: list[str],
        reactor: Any,
        request_timeout: float = REQUEST_DEADLINE,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # not annotated
        self.config_path = config_path
        self._reactor = reactor
        self._runner = runner
        self._previous_sighup: Callable[..., Any] | int | None = None
        self.events = EventBroadcaster(reactor)
        self.metrics = Metrics(reactor, self.events, runner.name)
        self.tasks = Tasks(
            config,
            runner,
            Spool(os.path.join(state_directory, "spool")),
            self.events,
            reactor,
            History(state_directory),
            observers=[self.metrics],
        )
        self.api = TaruAPI(self.tasks, self.events, public, reactor, self.metrics)
        self._site = self.api.site(request_timeout)
        self._endpoints: list[tuple[str, IStreamServerEndpoint]] = []
        for description in endpoints:
            try:
                endpoint = serverFromString(reactor, description)
            except ValueError as error:
                raise EndpointError(f"--listen {description!r}: {error}") from None
            self._endpoints.append((description, endpoint))
        self._ports: list[IListeningPort] = []
        self.listening: Deferred[object] = Deferred()
        self.listen_failed = False
        self._log_config(config)

    @property
    def endpoints(self) -> list[str]:
        """
        The endpoints Taru listens on, as given.
        """
        return [description for description, _ in self._endpoints]

    def _log_config(self, config: Config) -> None:
        self._log.info(
            "configuration {path} loaded: {tasks} tasks, {users}",
            path=self.config_path,
            tasks=len(config.tasks),
            users=(
                "no users (open to all)"
                if config.users is None
                else f"{len(config.users)} users"
            ),
        )
        if self._runner.name != "systemd":
            ignored = [
                name for name, spec in config.tasks.items() if spec.systemd_properties
            ]
            if ignored:
                self._log.warn(
                    "the {runner} runner ignores the systemd_properties of"
                    " {tasks}: they apply with --runner systemd only",
                    runner=self._runner.name,
                    tasks=", ".join(ignored),
                )

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]  # not annotated
        before, after = raise_open_file_limit()
        self._log.info(
            "open files: at most {after} (was {before})", before=before, after=after
        )
        self.events.set_heartbeat(self.tasks.config.heartbeat)
        self._previous_sighup = signal.signal(signal.SIGHUP, self._sighup)
        Deferred.fromCoroutine(self._start_serving())

    async def _start_serving(self) -> None:
        """
        Find the tasks still running from before, then listen.
        """
        try:
            await self.tasks.recover()
        except Exception as error:
            self._log.warn(
                "cannot tell which tasks are running already: {error}",
                error=str(error) or type(error).__name__,
            )
        each = [
            Deferred.fromCoroutine(self._listen(description, endpoint))
            for description, endpoint in self._endpoints
        ]
        try:
            self.listening.callback(await gatherResults(each, consumeErrors=True))
        except FirstError as error:
            self._cannot_listen(error.subFailure)

    def _cannot_listen(self, failure: Failure) -> None:
        """
        Taru cannot serve on every endpoint it was told to: it stops, rather
        than run half reachable.
        """
        self.listen_failed = True
        self._reactor.stop()

    async def _listen(self, description: str, endpoint: IStreamServerEndpoint) -> None:
        try:
            port = await endpoint.listen(self._site)
        except Exception as error:
            self._log.error(
                "cannot listen on {endpoint}: {error}",
                endpoint=description,
                error=str(error) or type(error).__name__,
            )
            raise
        self._ports.append(port)
        address = port.getHost()
        self._log.info(
            "listening on {endpoint} ({address})",
            endpoint=description,
            address=_describe_address(address),
        )
        config = self.tasks.config
        if (
            config.users is not None
            and config.trusted_proxies == DEFAULT_TRUSTED_PROXIES
            and reaches_beyond_loopback(address)
        ):
            self._log.warn(
                "users are configured and Taru listens on {address}, beyond this"
                " machine, but only this machine may name users: requests from"
                " elsewhere get 401. Put Taru behind a proxy that sets X-User"
                " and list it in trusted_proxies.",
                address=_describe_address(address),
            )

    def _sighup(self, signal_number: int, frame: FrameType | None) -> None:
        self._reactor.callFromThread(self.reload)

    def reload(self) -> bool:
        """
        Read the configuration file again and put it in force; an invalid
        file is reported and the configuration in force stays.

        @return: whether the new configuration is in force.
        """
        try:
            config = load_config(self.config_path)
        except ConfigError as error:
            self._log.warn(
                "configuration not reloaded, the old one stays in force: {error}",
                error=str(error),
            )
            self.metrics.config_reloaded(False)
            return False
        self.tasks.reconfigure(config)
        self.events.set_heartbeat(config.heartbeat)
        self._log_config(config)
        self.events.publish(None, "UpdateConfig")
        self.metrics.config_reloaded(True)
        return True

    def stopService(self) -> Deferred[None]:
        if self._previous_sighup is not None:
            signal.signal(signal.SIGHUP, self._previous_sighup)
            self._previous_sighup = None
        self.events.stop()
        ports, self._ports = self._ports, []
        closing = DeferredList([maybeDeferred(port.stopListening) for port in ports])
        stopped: Deferred[Any] = closing.addCallback(
            lambda _: maybeDeferred(super(TaruService, self).stopService)
        )
        if isinstance(self._runner, DirectRunner):
            # Children of the direct runner would be orphaned: end them.
            ending = self.tasks.stop_all()
            ending.addTimeout(SHUTDOWN_WAIT_SECONDS, self._reactor)
            ending.addErrback(lambda _: None)
            stopped.addCallback(lambda _: ending)
        return stopped.addCallback(lambda _: None)


def make_service(options: Options, reactor: Any) -> TaruService:
    """
    Build Taru's service from parsed options.
    """
    runner = choose_runner(
        options["runner"], reactor, options["state-dir"], TaruService._log
    )
    try:
        return TaruService(
            config_path=options["config"],
            config=options["loaded"],
            runner=runner,
            state_directory=options["state-dir"],
            public=options["public"],
            endpoints=options["listen"],
            reactor=reactor,
            request_timeout=options["request-timeout"],
        )
    except (EndpointError, RunnerError, HistoryError, OSError) as error:
        sys.stderr.write(f"taru: {_message(error)}\n")
        raise SystemExit(2) from None


def _message(error: Exception) -> str:
    if isinstance(error, OSError) and error.filename:
        return f"{error.filename}: {error.strerror}"
    return str(error)
