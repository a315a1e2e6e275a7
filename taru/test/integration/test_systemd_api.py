"""
The whole API and streaming suites again, with every task run by the real
systemd, booted in a sandbox.
"""

from twisted.trial.unittest import TestCase

from taru.test.integration import test_api, test_streaming


def _with_systemd(module: object) -> dict[str, type]:
    """
    A copy of each test case class of a module, running tasks as systemd
    units.
    """
    copies = {}
    for name, value in vars(module).items():
        if (
            isinstance(value, type)
            and issubclass(value, TestCase)
            and value.__module__ == getattr(module, "__name__", None)
        ):
            copies[f"Systemd{name}"] = type(
                f"Systemd{name}", (value,), {"runner": "systemd"}
            )
    return copies


globals().update(_with_systemd(test_api))
globals().update(_with_systemd(test_streaming))
