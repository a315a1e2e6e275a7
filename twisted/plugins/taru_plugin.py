"""
The C{twistd taru} plugin: C{twistd -n taru --config taru.yml --listen ...}.
"""

from __future__ import annotations

from twisted.application.service import IService, IServiceMaker
from twisted.plugin import IPlugin
from zope.interface import implementer

from taru.service import Options, make_service


@implementer(IServiceMaker, IPlugin)
class TaruServiceMaker:
    """
    Makes Taru's service for twistd.
    """

    tapname = "taru"
    description = "Run preconfigured commands for users over HTTP."
    options = Options

    def makeService(self, options: Options) -> IService:
        from twisted.internet import reactor

        return make_service(options, reactor)


taru = TaruServiceMaker()
