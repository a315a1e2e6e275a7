"""
The C{taru} command: parse options, start the service, run the reactor.
"""

from __future__ import annotations

import sys

from twisted.logger import (
    FileLogObserver,
    globalLogBeginner,
    jsonFileLogObserver,
    textFileLogObserver,
)
from twisted.python import usage

from taru.service import Options, make_service


def json_log_observer() -> FileLogObserver:
    """
    A log observer writing each event to standard output as one JSON object
    per line: C{--log-format json}, and for twistd, C{twistd --logger
    taru.cli.json_log_observer}.
    """
    return jsonFileLogObserver(sys.stdout, recordSeparator="")


def main(argv: list[str] | None = None) -> None:
    """
    Run Taru until it is stopped by SIGTERM or SIGINT.

    @param argv: the command-line arguments, without the program name.
    """
    options = Options()
    try:
        arguments = sys.argv[1:] if argv is None else argv
        # Options.parseOptions is not annotated.
        options.parseOptions(arguments)  # type: ignore[no-untyped-call]
    except usage.UsageError as error:
        sys.stderr.write(f"taru: {error}\nRun 'taru --help' for the options.\n")
        raise SystemExit(2) from None

    from twisted.internet import reactor

    service = make_service(options, reactor)
    observer: FileLogObserver
    if options["log-format"] == "json":
        observer = json_log_observer()
    else:
        observer = textFileLogObserver(sys.stdout)
    globalLogBeginner.beginLoggingTo([observer])
    reactor.callWhenRunning(service.startService)
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    reactor.run()
    if service.listen_failed:
        raise SystemExit(1)
