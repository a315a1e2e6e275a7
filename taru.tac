"""
Taru for C{twistd -ny taru.tac}, configured from the environment:

  - TARU_CONFIG: the configuration file (default ./taru.yml);
  - TARU_LISTEN: endpoints to listen on, separated by spaces (default: the
    socket systemd passed, else tcp:3000);
  - TARU_RUNNER: auto, systemd or direct (default auto);
  - TARU_PUBLIC: the folder served under / (default ./public when present);
  - TARU_STATE_DIR: where output is spooled;
  - TARU_REQUEST_TIMEOUT: seconds a client has to send a whole request
    (default 30).
"""

import os

from twisted.application.service import Application
from twisted.internet import reactor

from taru.service import Options, make_service

_arguments = []
for _endpoint in os.environ.get("TARU_LISTEN", "").split():
    _arguments += ["--listen", _endpoint]
for _option, _variable in [
    ("--runner", "TARU_RUNNER"),
    ("--public", "TARU_PUBLIC"),
    ("--state-dir", "TARU_STATE_DIR"),
    ("--request-timeout", "TARU_REQUEST_TIMEOUT"),
    ("--config", "TARU_CONFIG"),
]:
    if os.environ.get(_variable):
        _arguments += [_option, os.environ[_variable]]

_options = Options()
_options.parseOptions(_arguments)

application = Application("taru")
make_service(_options, reactor).setServiceParent(application)
