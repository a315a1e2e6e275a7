"""
Who may do what: the user named by the C{X-User} header and the three
per-task permissions.

Taru does no authentication itself; a reverse proxy sets C{X-User}. Without a
C{users} section in the configuration everything is open to everyone.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from attrs import frozen
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IAddress

from taru.config import Config, UserSpec


class NotAuthenticated(Exception):
    """
    Users are configured but the request names none.
    """

    def __str__(self) -> str:
        return "authentication required: this Taru expects the X-User header"


class UntrustedPeer(Exception):
    """
    Users are configured, and the request comes from a peer that may not
    name one: not a trusted proxy.
    """

    def __init__(self, peer: str) -> None:
        super().__init__(peer)
        self.peer = peer

    def __str__(self) -> str:
        return (
            f"requests from {self.peer} are not accepted: users are named by a"
            " trusted proxy (see trusted_proxies in the configuration)"
        )


class UnknownUser(Exception):
    """
    The request names a user the configuration does not know, or names one
    ambiguously.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


@frozen
class Access:
    """
    What one requester may do, under one configuration.

    @ivar user: the user's name, or L{None} when no users are configured.
    @ivar spec: the user's permissions, or L{None} for full access.
    """

    user: str | None
    spec: UserSpec | None

    def can_run(self, task: str) -> bool:
        """
        May this requester start and stop C{task}?
        """
        return self.spec is None or task in self.spec.can_run

    def can_view_status(self, task: str) -> bool:
        """
        May this requester see C{task} and its state?
        """
        return self.spec is None or task in self.spec.can_view_status

    def can_view_output(self, task: str) -> bool:
        """
        May this requester read C{task}'s output?
        """
        return self.spec is None or task in self.spec.can_view_output


def access_for(config: Config, user_headers: Sequence[bytes] | None) -> Access:
    """
    Work out what a request may do.

    @param config: the configuration in force.
    @param user_headers: every value of the request's C{X-User} header, or
        L{None} if it had none.
    @return: the requester's access.
    @raise NotAuthenticated: users are configured and no user is named.
    @raise UnknownUser: the user is not configured, or the header is repeated
        or empty.
    """
    if config.users is None:
        return Access(user=None, spec=None)
    if not user_headers:
        raise NotAuthenticated()
    if len(user_headers) > 1:
        raise UnknownUser("the X-User header must be given exactly once")
    try:
        name = user_headers[0].decode("utf-8")
    except UnicodeDecodeError:
        raise UnknownUser("the X-User header is not valid UTF-8") from None
    if not name:
        raise UnknownUser("the X-User header is empty")
    spec = config.users.get(name)
    if spec is None:
        raise UnknownUser(f"unknown user {name!r}")
    return Access(user=name, spec=spec)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """
    An IP address from its text, IPv4-mapped IPv6 addresses as IPv4, or
    L{None} when the text is not one.
    """
    try:
        address = ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def client_address(
    config: Config, peer: IAddress, forwarded_for: Sequence[bytes] | None
) -> str:
    """
    The address of the client behind a request, for the history and the
    log: the peer's own, unless the peer is a trusted proxy (or on a unix
    socket) that says in C{X-Forwarded-For} whom it forwards for, in which
    case the last address there that is not a trusted proxy.

    @param forwarded_for: the values of the C{X-Forwarded-For} headers.
    """
    if isinstance(peer, (IPv4Address, IPv6Address)):
        own = _ip(peer.host)
        if own is None or not any(own in net for net in config.trusted_proxies):
            return peer.host
        said = str(own)
    else:
        said = "unix"
    hops = [
        hop
        for value in forwarded_for or []
        for hop in value.decode("latin-1").split(",")
    ]
    for hop in reversed(hops):
        address = _ip(hop)
        if address is None:
            # Not an address: nothing before it can be believed.
            return said
        said = str(address)
        if not any(address in network for network in config.trusted_proxies):
            return said
    return said


def check_peer(config: Config, peer: IAddress) -> None:
    """
    Refuse a request from a peer that may not name a user, when users are
    configured: only trusted proxies and peers on a unix socket may.

    @raise UntrustedPeer: if the peer is neither.
    """
    if config.users is None:
        return
    if not isinstance(peer, (IPv4Address, IPv6Address)):
        return
    address = _ip(peer.host)
    if address is None or not any(
        address in network for network in config.trusted_proxies
    ):
        raise UntrustedPeer(str(address or peer.host))
