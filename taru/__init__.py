"""
Taru: a web service that runs preconfigured commands ("tasks") for the users
allowed to, and streams their output live.
"""

import os

__version__ = "0.1.0"

# systemd names the sockets it passes in LISTEN_PID and LISTEN_FDS. Importing
# Twisted's endpoints removes both from the environment, so they are kept
# here, before anything of Taru imports Twisted, for the default endpoint.
SOCKET_ACTIVATION = {
    name: os.environ[name]
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")
    if name in os.environ
}
