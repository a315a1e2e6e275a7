"""
The C{twistd taru} plugin: C{twistd -n taru --config taru.yml --listen ...}.
"""

from __future__ import annotations

from twisted.application.service import IService, IServiceMaker
from twisted.plugin import IPlugin
from twisted.python import usage
from zope.interface import implementer

from taru.service import Options, make_service


class TwistdOptions(Options):
    """
    Taru's options under twistd, which writes the log itself.
    """

    def postOptions(self) -> None:
        if self["log-format"] != "text":
            raise usage.UsageError(
                "--log-format is the taru command's; under twistd, ask twistd"
                " for a JSON log with --logger taru.cli.json_log_observer"
            )
        super().postOptions()


@implementer(IServiceMaker, IPlugin)
class TaruServiceMaker:
    """
    Makes Taru's service for twistd.
    """

    tapname = "taru"
    description = "Run preconfigured commands for users over HTTP."
    options = TwistdOptions

    def makeService(self, options: Options) -> IService:
        from twisted.internet import reactor

        return make_service(options, reactor)


taru = TaruServiceMaker()
