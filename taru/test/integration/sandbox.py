"""
A real systemd for the tests, booted in private namespaces so that it cannot
touch the host's files.

As root, C{unshare} gives it a PID, mount and cgroup namespace of its own.
Inside, before systemd starts, C{/run}, C{/tmp} and C{/var/tmp} become fresh
tmpfs, and C{/etc}, C{/var} and C{/root} become overlays whose upper layers
live on a tmpfs: whatever systemd and the tests write there is gone when the
sandbox ends. Only the folders the tests name (the project and the tests'
temporary folder) stay shared with the host. systemd boots C{basic.target},
never the machine's default target, then the tests start C{user@0.service}
for C{systemd-run --user}. Killing the namespace's PID 1 ends it all.

One sandbox serves every test of a run: it boots on first use and ends when
the test process exits.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import time

import taru

# The script that turns the new namespaces into the sandbox, then becomes
# systemd. Its arguments are the folders to keep shared with the host.
BOOT_SCRIPT = r"""
set -eu
mount --make-rprivate /
mount -t tmpfs -o mode=700 taru-sandbox /mnt
mkdir /mnt/keep /mnt/layers
index=0
for folder in "$@"; do
    mkdir "/mnt/keep/$index"
    mount --rbind "$folder" "/mnt/keep/$index"
    index=$((index + 1))
done
for folder in /etc /var /root; do
    layer="/mnt/layers/${folder#/}"
    mkdir -p "$layer/upper" "$layer/work"
    mount -t overlay overlay \
        -o "lowerdir=$folder,upperdir=$layer/upper,workdir=$layer/work" "$folder"
done
for folder in /run /tmp /var/tmp; do
    mount -t tmpfs -o mode=1777 taru-sandbox "$folder"
done
chmod 755 /run
index=0
for folder in "$@"; do
    mkdir -p "$folder"
    mount --rbind "/mnt/keep/$index" "$folder"
    index=$((index + 1))
done
mount -t proc proc /proc
umount -R /sys/fs/cgroup 2>/dev/null || true
mount -t cgroup2 cgroup2 /sys/fs/cgroup
export container=taru-test
exec /lib/systemd/systemd --system --unit=basic.target \
    --log-target=null --show-status=no
"""

# How long booting, and starting the user manager, may take.
BOOT_TIMEOUT = 60.0

# The user manager's runtime folder, inside the sandbox.
RUNTIME_DIRECTORY = f"/run/user/{os.getuid()}"


class SandboxUnavailable(Exception):
    """
    This machine cannot boot the sandbox: not root, no unshare, no systemd.
    """


def unavailable_because() -> str | None:
    """
    Why the sandbox cannot boot here, or L{None} if it can.
    """
    if os.geteuid() != 0:
        return "booting systemd in namespaces needs root"
    for tool in ("unshare", "nsenter", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not os.path.exists("/lib/systemd/systemd"):
        return "systemd is not installed"
    if not os.path.isdir("/mnt"):
        return "there is no /mnt to stage the sandbox's mounts on"
    return None


def _cgroup2_mount() -> str | None:
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            separator = fields.index("-")
            if fields[separator + 1] == "cgroup2":
                return fields[4]
    return None


def _own_cgroup() -> str | None:
    """
    A fresh cgroup under this process's own, for the sandbox's systemd to
    build its tree in, or L{None} if none can be made.
    """
    mount = _cgroup2_mount()
    if mount is None:
        return None
    with open("/proc/self/cgroup") as cgroups:
        path = next(
            (
                line.split(":", 2)[2].strip()
                for line in cgroups
                if line.startswith("0::")
            ),
            "/",
        )
    directory = os.path.join(mount, path.lstrip("/"), f"taru-sandbox-{os.getpid()}")
    try:
        os.mkdir(directory)
    except OSError:
        return None
    return directory


def _remove_cgroup(directory: str) -> None:
    for _ in range(50):
        try:
            for root, folders, _files in os.walk(directory, topdown=False):
                for folder in folders:
                    os.rmdir(os.path.join(root, folder))
            os.rmdir(directory)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(child) for child in children.read().split()]
    except OSError:
        return []


def project_directory() -> str:
    """
    The folder holding the C{taru} package: the project, with its
    virtual environment.
    """
    return os.path.dirname(os.path.dirname(os.path.abspath(taru.__file__)))


class Sandbox:
    """
    A booted sandbox.

    @ivar pid: the host's process id of the sandbox's PID 1, systemd.
    """

    def __init__(self, pid: int, unshare: subprocess.Popen[bytes], cgroup: str | None):
        self.pid = pid
        self._unshare = unshare
        self._cgroup = cgroup

    @classmethod
    def boot(cls, keep: list[str]) -> Sandbox:
        """
        Boot systemd in a new sandbox and start root's user manager.

        @param keep: folders to share with the host; everything else that
            is written lands in the sandbox's own layers.
        @raise SandboxUnavailable: this machine cannot boot it.
        """
        reason = unavailable_because()
        if reason is not None:
            raise SandboxUnavailable(reason)
        cgroup = _own_cgroup()
        enter_cgroup = (
            f'echo $$ > "{cgroup}/cgroup.procs"; ' if cgroup is not None else ""
        )
        unshare = subprocess.Popen(
            [
                "/bin/sh",
                "-c",
                enter_cgroup + 'exec unshare --pid --mount --cgroup --fork "$@"',
                "taru-sandbox",
                "/bin/sh",
                "-c",
                BOOT_SCRIPT,
                "taru-sandbox-boot",
                *keep,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + BOOT_TIMEOUT
        pid = None
        while pid is None:
            children = _children(unshare.pid)
            if children:
                pid = children[0]
            elif unshare.poll() is not None or time.monotonic() > deadline:
                said = unshare.stderr.read().decode() if unshare.stderr else ""
                raise SandboxUnavailable(f"the sandbox did not boot: {said}")
            else:
                time.sleep(0.02)
        sandbox = cls(pid, unshare, cgroup)
        try:
            sandbox._wait_for_boot(deadline)
        except BaseException:
            sandbox.shutdown()
            raise
        return sandbox

    def command(self, *argv: str, directory: str = "/") -> list[str]:
        """
        The command line that runs C{argv} inside the sandbox, as root, in
        C{directory}, with the user manager's runtime folder in its
        environment.
        """
        return [
            shutil.which("nsenter") or "nsenter",
            f"--target={self.pid}",
            "--pid",
            "--mount",
            "--cgroup",
            f"--wd={directory}",
            "--",
            "env",
            f"XDG_RUNTIME_DIR={RUNTIME_DIRECTORY}",
            *argv,
        ]

    def run(
        self, *argv: str, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        """
        Run a command inside the sandbox and wait for it.
        """
        return subprocess.run(
            self.command(*argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _wait_for_boot(self, deadline: float) -> None:
        while True:
            state = self.run("systemctl", "is-system-running").stdout.strip()
            if state in ("running", "degraded"):
                break
            if time.monotonic() > deadline:
                raise SandboxUnavailable(f"systemd did not finish booting: {state}")
            time.sleep(0.05)
        started = self.run("systemctl", "start", "user@0.service")
        if started.returncode != 0:
            raise SandboxUnavailable(f"no user manager: {started.stderr.strip()}")
        while self.run("systemctl", "--user", "show-environment").returncode != 0:
            if time.monotonic() > deadline:
                raise SandboxUnavailable("the user manager does not answer")
            time.sleep(0.05)

    def alive(self) -> bool:
        """
        Is the sandbox's systemd still running?
        """
        return self._unshare.poll() is None

    def shutdown(self) -> None:
        """
        End the sandbox: kill its PID 1, which ends every process in it, and
        remove its cgroups.
        """
        if self._unshare.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self._unshare.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self._unshare.pid, signal.SIGKILL)
                self._unshare.wait(timeout=30)
        if self._unshare.stderr is not None:
            self._unshare.stderr.close()
        if self._cgroup is not None:
            _remove_cgroup(self._cgroup)


_shared: Sandbox | None = None


def shared_sandbox() -> Sandbox:
    """
    The sandbox all tests of this run share, booted on first use.

    @raise SandboxUnavailable: this machine cannot boot it.
    """
    global _shared
    if _shared is None or not _shared.alive():
        _shared = Sandbox.boot(_kept_folders())
        atexit.register(_shared.shutdown)
    return _shared


def _kept_folders() -> list[str]:
    """
    The project (with its virtual environment and the tests' temporary
    folder), and the Python that runs the tests, when they lie in folders
    the sandbox replaces.
    """
    folders = [project_directory(), os.path.abspath(os.getcwd())]
    if os.path.realpath(sys.base_prefix).startswith(("/tmp/", "/var/tmp/", "/run/")):
        folders.append(os.path.realpath(sys.base_prefix))
    kept: list[str] = []
    for folder in sorted(set(folders), key=len):
        if not any(folder == other or folder.startswith(other + "/") for other in kept):
            kept.append(folder)
    return kept
