"""
Tests for L{taru.permissions}.
"""

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.interfaces import IAddress
from twisted.trial.unittest import SynchronousTestCase

from taru.config import (
    DEFAULT_TRUSTED_PROXIES,
    Config,
    TaskSpec,
    UserSpec,
    parse_config,
)
from taru.permissions import (
    Access,
    NotAuthenticated,
    UnknownUser,
    UntrustedPeer,
    access_for,
    check_peer,
    client_address,
)

TASKS = {
    name: TaskSpec(name=name, command=(name,)) for name in ("ping", "dump", "hosts")
}

ROOT = UserSpec(
    name="root",
    can_run=frozenset({"ping"}),
    can_view_status=frozenset({"ping", "dump"}),
    can_view_output=frozenset({"ping", "hosts"}),
)

ZOE = UserSpec(
    name="zoë",
    can_run=frozenset(),
    can_view_status=frozenset({"hosts"}),
    can_view_output=frozenset(),
)

OPEN = Config(tasks=TASKS)
CLOSED = Config(tasks=TASKS, users={"root": ROOT, "zoë": ZOE})


def permission_table(access: Access) -> dict[str, tuple[bool, bool, bool]]:
    """
    For each configured task, whether C{access} may run it, see its status
    and view its output.
    """
    return {
        task: (
            access.can_run(task),
            access.can_view_status(task),
            access.can_view_output(task),
        )
        for task in TASKS
    }


class OpenAccessTests(SynchronousTestCase):
    """
    Without a C{users} section, everyone may do everything, whatever the
    request says about its user.
    """

    def test_no_header(self) -> None:
        """
        A request without C{X-User} gets full access and no user name.
        """
        access = access_for(OPEN, None)

        self.assertEqual(access, Access(user=None, spec=None))
        self.assertEqual(
            permission_table(access), dict.fromkeys(TASKS, (True, True, True))
        )

    def test_any_header(self) -> None:
        """
        Missing, empty, repeated, unknown and non-UTF-8 C{X-User} headers all
        get the same full access when no users are configured.
        """
        headers: tuple[list[bytes], ...] = (
            [],
            [b""],
            [b"root"],
            [b"mallory"],
            [b"a", b"b"],
            [b"\xff"],
        )

        accesses = [access_for(OPEN, user_headers) for user_headers in headers]

        self.assertEqual(accesses, [Access(user=None, spec=None)] * len(headers))

    @given(st.text())
    def test_any_task(self, task: str) -> None:
        """
        Full access allows every permission on any task name at all.
        """
        access = access_for(OPEN, None)

        self.assertEqual(
            (
                access.can_run(task),
                access.can_view_status(task),
                access.can_view_output(task),
            ),
            (True, True, True),
        )


class AuthenticationTests(SynchronousTestCase):
    """
    With users configured, a request must name exactly one known user.
    """

    def test_no_header(self) -> None:
        """
        A request without C{X-User} is not authenticated.
        """
        error = self.assertRaises(NotAuthenticated, access_for, CLOSED, None)

        self.assertEqual(
            str(error),
            "authentication required: this Taru expects the X-User header",
        )

    def test_no_values(self) -> None:
        """
        An empty list of C{X-User} values is the same as no header.
        """
        self.assertRaises(NotAuthenticated, access_for, CLOSED, [])

    def test_empty_header(self) -> None:
        """
        An empty C{X-User} names no user.
        """
        error = self.assertRaises(UnknownUser, access_for, CLOSED, [b""])

        self.assertEqual(str(error), "the X-User header is empty")

    def test_repeated_header(self) -> None:
        """
        C{X-User} given more than once is refused, even when every value
        names a known user.
        """
        error = self.assertRaises(UnknownUser, access_for, CLOSED, [b"root", b"root"])

        self.assertEqual(str(error), "the X-User header must be given exactly once")

    def test_repeated_header_different_users(self) -> None:
        """
        C{X-User} naming two known users is refused rather than either
        being chosen.
        """
        error = self.assertRaises(
            UnknownUser, access_for, CLOSED, [b"zo\xc3\xab", b"root"]
        )

        self.assertEqual(str(error), "the X-User header must be given exactly once")

    def test_not_utf8(self) -> None:
        """
        A C{X-User} that is not UTF-8 is refused.
        """
        error = self.assertRaises(UnknownUser, access_for, CLOSED, [b"r\xffot"])

        self.assertEqual(str(error), "the X-User header is not valid UTF-8")

    def test_unknown_user(self) -> None:
        """
        A user the configuration does not list is refused, naming them.
        """
        error = self.assertRaises(UnknownUser, access_for, CLOSED, [b"mallory"])

        self.assertEqual(
            (error.reason, str(error)),
            ("unknown user 'mallory'", "unknown user 'mallory'"),
        )

    def test_names_match_exactly(self) -> None:
        """
        User names match exactly: another case or surrounding spaces name a
        different, unknown user.
        """
        headers = (b"Root", b"ROOT", b" root", b"root ")

        reasons = {
            header: str(self.assertRaises(UnknownUser, access_for, CLOSED, [header]))
            for header in headers
        }

        self.assertEqual(
            reasons,
            {header: f"unknown user {header.decode()!r}" for header in headers},
        )

    def test_no_users_configured(self) -> None:
        """
        An empty C{users} section is not the same as none: nobody is known.
        """
        config = Config(tasks=TASKS, users={})

        error = self.assertRaises(UnknownUser, access_for, config, [b"root"])

        self.assertEqual(str(error), "unknown user 'root'")


class UserAccessTests(SynchronousTestCase):
    """
    A known user gets exactly the permissions configured for them.
    """

    def test_access(self) -> None:
        """
        A known user's access carries their name and their permissions.
        """
        access = access_for(CLOSED, [b"root"])

        self.assertEqual(access, Access(user="root", spec=ROOT))

    def test_permissions(self) -> None:
        """
        Each of the three permissions holds for exactly the tasks listed
        under it.
        """
        access = access_for(CLOSED, [b"root"])

        self.assertEqual(
            permission_table(access),
            {
                "ping": (True, True, True),
                "dump": (False, True, False),
                "hosts": (False, False, True),
            },
        )

    def test_utf8_name(self) -> None:
        """
        A user name with non-ASCII letters is matched from its UTF-8 bytes.
        """
        access = access_for(CLOSED, ["zoë".encode()])

        self.assertEqual(
            (access.user, permission_table(access)),
            (
                "zoë",
                {
                    "ping": (False, False, False),
                    "dump": (False, False, False),
                    "hosts": (False, True, False),
                },
            ),
        )

    def test_unlisted_task(self) -> None:
        """
        A known user has no permission on a task name they were not given,
        including names of no configured task.
        """
        access = access_for(CLOSED, [b"root"])

        self.assertEqual(
            (
                access.can_run("nonexistent"),
                access.can_view_status("nonexistent"),
                access.can_view_output("nonexistent"),
            ),
            (False, False, False),
        )


class PeerTests(SynchronousTestCase):
    """
    With users configured, only trusted proxies and unix socket peers may
    name one.
    """

    users = parse_config(
        "tasks: {t: {command: ['true']}}\n"
        "users: {alice: {can_run: [t], can_view_status: [t], can_view_output: [t]}}"
    )

    def test_loopback_trusted_by_default(self) -> None:
        """
        Loopback peers of either family, IPv4 ones written as IPv6 included,
        are trusted by default; so are unix socket peers.
        """
        self.assertEqual(self.users.trusted_proxies, DEFAULT_TRUSTED_PROXIES)
        for peer in [
            IPv4Address("TCP", "127.0.0.1", 4000),
            IPv4Address("TCP", "127.8.9.10", 4000),
            IPv6Address("TCP", "::1", 4000),
            IPv6Address("TCP", "::ffff:127.0.0.1", 4000),
            UNIXAddress(b"/run/taru.sock"),
        ]:
            check_peer(self.users, peer)

    def test_others_refused(self) -> None:
        """
        Any other peer is refused, with its address in the message.
        """
        for peer, shown in [
            (IPv4Address("TCP", "192.0.2.7", 4000), "192.0.2.7"),
            (IPv6Address("TCP", "2001:db8::1", 4000), "2001:db8::1"),
            (IPv6Address("TCP", "::ffff:192.0.2.7", 4000), "192.0.2.7"),
        ]:
            with self.assertRaises(UntrustedPeer) as caught:
                check_peer(self.users, peer)
            self.assertIn(shown, str(caught.exception))

    def test_configured_proxy(self) -> None:
        """
        A configured proxy is trusted, and loopback no longer is unless
        listed.
        """
        config = parse_config(
            "tasks: {t: {command: ['true']}}\n"
            "users: {alice: {can_run: [], can_view_status: [], can_view_output: []}}\n"
            "trusted_proxies: [192.0.2.0/24]"
        )

        check_peer(config, IPv4Address("TCP", "192.0.2.7", 4000))
        self.assertRaises(
            UntrustedPeer, check_peer, config, IPv4Address("TCP", "127.0.0.1", 1)
        )

    def test_no_users(self) -> None:
        """
        Without users, X-User means nothing and every peer is served.
        """
        check_peer(parse_config("tasks: {}"), IPv4Address("TCP", "192.0.2.7", 1))


class ClientAddressTests(SynchronousTestCase):
    """
    L{client_address} believes C{X-Forwarded-For} only from trusted proxies.
    """

    config = parse_config(
        "tasks: {t: {command: ['true']}}\ntrusted_proxies: [127.0.0.1, 10.0.0.0/8]"
    )

    def address(self, peer: IAddress, *forwarded: bytes) -> str:
        return client_address(self.config, peer, list(forwarded) or None)

    def test_direct_client(self) -> None:
        """
        Without C{X-Forwarded-For}, the peer is the client.
        """
        self.assertEqual(self.address(IPv4Address("TCP", "192.0.2.1", 1)), "192.0.2.1")
        self.assertEqual(self.address(IPv4Address("TCP", "127.0.0.1", 1)), "127.0.0.1")
        self.assertEqual(self.address(UNIXAddress(b"/run/taru.sock")), "unix")

    def test_untrusted_peer_not_believed(self) -> None:
        """
        An untrusted peer's C{X-Forwarded-For} is ignored.
        """
        self.assertEqual(
            self.address(IPv4Address("TCP", "192.0.2.1", 1), b"198.51.100.1"),
            "192.0.2.1",
        )

    def test_through_trusted_proxies(self) -> None:
        """
        Through trusted proxies, the client is the last address that is not a
        trusted proxy; what a client said of itself before that is ignored.
        """
        peer = IPv4Address("TCP", "127.0.0.1", 1)
        self.assertEqual(self.address(peer, b"198.51.100.1"), "198.51.100.1")
        self.assertEqual(
            self.address(peer, b"203.0.113.9, 198.51.100.1, 10.1.2.3"),
            "198.51.100.1",
        )
        self.assertEqual(
            self.address(peer, b"203.0.113.9", b"198.51.100.1"), "198.51.100.1"
        )
        self.assertEqual(
            self.address(UNIXAddress(b"/run/taru.sock"), b"198.51.100.1"),
            "198.51.100.1",
        )

    def test_garbage_stops_the_walk(self) -> None:
        """
        A hop that is not an address ends the walk at the last one believed.
        """
        peer = IPv4Address("TCP", "127.0.0.1", 1)
        self.assertEqual(self.address(peer, b"198.51.100.1, nonsense"), "127.0.0.1")
        self.assertEqual(self.address(peer, b"nonsense, 10.0.0.1"), "10.0.0.1")
