"""The Linux packages for real: built by ``installers/build.sh linux``, installed with apt-get, used, removed.

What a user does with them, on this machine, as root (CI is root; elsewhere these tests install system-wide
packages, so they run only with ``CI=true`` or ``COALESCE_INSTALLER_TESTS=1``):

* the .debs pass ``apt-get install --dry-run`` (as Briefcase's own CI checks them), then install;
  ``/usr/bin/coalesce --version`` is the project's version; the room has its user, data folder and units;
* the installed sender shares the Xvfb screen to the installed room display (its window on Xvfb), and the
  room's statistics show the frames arriving, as the LAN tests check them;
* the installed sender, enrolled with a local cloud through the real Secret Service (gnome-keyring on a
  private D-Bus), installs an N+1 package the cloud's signed manifest names (``coalesce update --install``:
  the app's own update code, apt-get as root), and refuses a download whose SHA-256 differs;
* removing and purging both leaves nothing of theirs but the room's data folder (and, as Debian does for
  system users, the ``coalesce-room`` user).

The packages are built once per run (a module fixture, ~4 min on two cores; the N+1 sender ~2 min more).
``COALESCE_PREBUILT_DEBS=DIR`` uses the version-N packages in DIR instead of building them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import os
import shutil
import ssl
import subprocess
import threading
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from coalesce_cloud.stack import LocalCloud
from tests.cloudlab import local_cloud as local_cloud  # a whole local cloud, as `coalesce-cloud up` runs it
from tests.conftest import XServer

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
NEXT_VERSION = ".".join([*VERSION.split(".")[:-1], str(int(VERSION.split(".")[-1]) + 1)])
SENDER, ROOM = "coalesce", "coalesce-room"
PLATFORM = "linux-x86_64"
PIN = "4821"
BUILD_TIMEOUT = 1800
APT_TIMEOUT = 600
LOOPBACK_ICE = {"COALESCE_ICE_HOST_ADDRESSES": "127.0.0.1"}

pytestmark = pytest.mark.timeout(3600)


def _opted_in() -> bool:
    flags = (os.environ.get("CI", ""), os.environ.get("COALESCE_INSTALLER_TESTS", ""))
    return any(flag.strip().lower() in {"1", "true"} for flag in flags)


@pytest.fixture(scope="module", autouse=True)
def _allowed() -> None:
    if not _opted_in():
        pytest.skip("installs system packages: run with CI=true or COALESCE_INSTALLER_TESTS=1")
    if os.geteuid() != 0:
        pytest.skip("installing the packages needs root (CI runs as root)")


def _run(*command: str, timeout: float = APT_TIMEOUT, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = kwargs.pop("env", None) or {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, **kwargs)  # type: ignore[call-overload]
    assert result.returncode == 0, f"{' '.join(command)}: {result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result  # type: ignore[no-any-return]


def _build(dist: Path, **env: str) -> None:
    _run(
        "bash",
        str(ROOT / "installers" / "build.sh"),
        "linux",
        timeout=BUILD_TIMEOUT,
        env={**os.environ, "COALESCE_DIST": str(dist), **env},
    )


def _deb(dist: Path, app: str, version: str) -> Path:
    (found,) = dist.glob(f"{app}_{version}-*.deb")
    return found


@pytest.fixture(scope="module")
def debs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The version-N packages, built once for this run (or taken from ``COALESCE_PREBUILT_DEBS``)."""
    prebuilt = os.environ.get("COALESCE_PREBUILT_DEBS")
    dist = Path(prebuilt) if prebuilt else tmp_path_factory.mktemp("dist")
    if not prebuilt:
        started = time.monotonic()
        _build(dist)
        print(f"\nbuild of both packages: {time.monotonic() - started:.0f} s")
    return {app: _deb(dist, app, VERSION) for app in (SENDER, ROOM)}


def _installed_version(package: str) -> str | None:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status} ${Version}", package], capture_output=True, text=True
    )
    status = result.stdout.split()
    return status[-1] if result.returncode == 0 and status[:3] == ["install", "ok", "installed"] else None


def _install(*paths: Path) -> None:
    _run("apt-get", "install", "--yes", "--allow-downgrades", *(str(p) for p in paths))


@pytest.fixture
def installed(debs: dict[str, Path]) -> dict[str, Path]:
    """Both version-N packages installed (again, when a test before removed or updated them)."""
    stale = [deb for app, deb in debs.items() if _installed_version(app) != VERSION]
    if stale:
        _install(*stale)
    return debs


def test_the_packages_install_cleanly_and_say_their_version(debs: dict[str, Path]) -> None:
    for app in (SENDER, ROOM):
        if _installed_version(app) is not None:
            _run("apt-get", "purge", "--yes", app)
    dry = _run("apt-get", "install", "--dry-run", str(debs[SENDER]), str(debs[ROOM])).stdout
    assert f"Inst {SENDER} " in dry and f"Inst {ROOM} " in dry
    _install(debs[SENDER], debs[ROOM])

    assert _run("/usr/bin/coalesce", "--version").stdout.strip() == f"coalesce {VERSION}"
    assert _run("/usr/bin/coalesce-room", "--version").stdout.strip() == f"coalesce-room {VERSION}"
    assert Path("/usr/share/applications/org.coalesce.coalesce.desktop").is_file()
    assert Path("/usr/share/icons/hicolor/256x256/apps/org.coalesce.coalesce.png").is_file()
    assert Path("/usr/share/metainfo/org.coalesce.coalesce-room.metainfo.xml").is_file()
    user = _run("getent", "passwd", ROOM).stdout.split(":")
    assert user[5] == "/var/lib/coalesce-room" and user[6].strip() == "/usr/sbin/nologin"
    data = Path("/var/lib/coalesce-room")
    assert data.is_dir() and data.owner() == ROOM and (data.stat().st_mode & 0o777) == 0o750
    units = [Path(f"/lib/systemd/system/{unit}") for unit in (f"{ROOM}.service", f"{ROOM}-headless.service")]
    _run("systemd-analyze", "verify", "--man=no", *(str(unit) for unit in units))
    kiosk = units[0].read_text()
    for line in (
        "User=coalesce-room",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "Restart=always",
        "StateDirectory=coalesce-room",
        "ExecStart=/usr/bin/cage ",
    ):
        assert line in kiosk
    assert "--headless" in units[1].read_text()
    assert Path("/etc/systemd/system/graphical.target.wants/coalesce-room.service").is_symlink()


def _start_room(xvfb: XServer, folder: Path) -> tuple[subprocess.Popen[str], int, Path]:
    stats = folder / "stats.json"
    room = subprocess.Popen(
        [
            "/usr/bin/coalesce-room",
            "--windowed",
            "--name",
            "Installed Box",
            "--pin",
            PIN,
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-mdns",
            "--stats-file",
            str(stats),
            "--data-dir",
            str(folder / "data"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=xvfb.env(HOME=str(folder), **LOOPBACK_ICE),
    )
    assert room.stdout is not None
    line = room.stdout.readline()
    assert line.startswith("listening on 127.0.0.1:"), line + (room.stderr.read() if room.poll() else "")
    return room, int(line.rsplit(":", 1)[1]), stats


def _frames_from(stats: Path, sender: str) -> int:
    try:
        shares = json.loads(stats.read_text())["shares"]
    except (OSError, ValueError):
        return 0
    return max((t["frames"] for s in shares if s["sender"] == sender for t in s["tracks"]), default=0)


def _eventually(holds: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll what nothing signals (a file another process rewrites every second) until a deadline."""
    deadline = time.monotonic() + timeout
    while not holds():
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        threading.Event().wait(0.1)


def test_the_installed_sender_shares_to_the_installed_room(
    installed: dict[str, Path], xvfb: XServer, tmp_path: Path
) -> None:
    room, port, stats = _start_room(xvfb, tmp_path / "room")
    try:
        share = subprocess.Popen(
            [
                "/usr/bin/coalesce",
                "share",
                "--to",
                f"127.0.0.1:{port}",
                "--pin",
                PIN,
                "--name",
                "Grace",
                "--duration",
                "8",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=xvfb.env(HOME=str(tmp_path / "sender"), **LOOPBACK_ICE),
        )
        try:
            _eventually(lambda: _frames_from(stats, "Grace") > 10, 60, "the room's stats show Grace's frames")
            out, err = share.communicate(timeout=60)
        finally:
            if share.poll() is None:
                share.kill()
                share.wait(10)
        assert share.returncode == 0, err
        assert "Sharing to Installed Box" in out
        _eventually(lambda: _frames_from(stats, "Grace") == 0, 10, "the tile removed after the share")
    finally:
        room.terminate()
        assert room.wait(30) == 0, room.stderr.read() if room.stderr else ""


class _Downloads:
    """A plain HTTP server for the update files (the manifest's URL), in a thread stopped at teardown."""

    def __init__(self, folder: Path) -> None:
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.folder = folder
        self.thread = threading.Thread(target=self.server.serve_forever, name="downloads")

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}"

    def __enter__(self) -> _Downloads:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def _publish(cloud: LocalCloud, *, version: str, url: str, sha256: str) -> None:
    """Publishing a release is writing ``<state_dir>/updates/<platform>.json``; the cloud signs it."""
    folder = cloud.state_dir / "updates"
    folder.mkdir(exist_ok=True)
    manifest = {
        "platform": PLATFORM,
        "version": version,
        "url": url,
        "sha256": sha256,
        "notes": "The installer test's release.",
        "published_at": "2026-12-01T00:00:00+00:00",
    }
    (folder / f"{PLATFORM}.json").write_text(json.dumps(manifest))


def _enrollment_code(cloud: LocalCloud) -> str:
    import httpx

    response = httpx.post(
        f"{cloud.api_url}/api/v1/admin/enrollment-codes",
        json={"org": "acme", "uses": 1, "ttl_seconds": 600},
        headers={"Authorization": f"Bearer {cloud.admin_token}"},
        verify=ssl.create_default_context(cafile=cloud.ca_file),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["code"])


def _as_installed_user(cloud: LocalCloud, home: Path, *commands: str) -> subprocess.CompletedProcess[str]:
    """Run ``/usr/bin/coalesce`` commands in one private D-Bus session whose Secret Service is gnome-keyring
    (unlocked with a throwaway password): the keyring an installed app uses on a Linux desktop."""
    for tool in ("dbus-run-session", "gnome-keyring-daemon"):
        assert shutil.which(tool), f"{tool} is missing (scripts/setup.sh installs it)"
    # The daemon forks away from the session: its process id, asked of the bus, is ended on the way out.
    script = "\n".join(
        [
            "printf throwaway | gnome-keyring-daemon --unlock --components=secrets >/dev/null",
            "daemon=$(dbus-send --session --print-reply=literal --dest=org.freedesktop.DBus "
            "/org/freedesktop/DBus org.freedesktop.DBus.GetConnectionUnixProcessID "
            "string:org.freedesktop.secrets | awk '{print $2}')",
            "trap 'kill \"$daemon\" 2>/dev/null || true' EXIT",
            *commands,
        ]
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON_KEYRING", "DBUS_", "GNOME_KEYRING", "XDG_RUNTIME"))
    }
    runtime = home / "run"
    runtime.mkdir(parents=True, mode=0o700)
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_RUNTIME_DIR=str(runtime),  # a keyring daemon of its own, not one another session left running
        DEBIAN_FRONTEND="noninteractive",
    )
    return subprocess.run(
        ["dbus-run-session", "--", "sh", "-ec", script],
        capture_output=True,
        text=True,
        timeout=APT_TIMEOUT,
        env=env,
    )


def _enroll(cloud: LocalCloud) -> str:
    return f"/usr/bin/coalesce enroll {cloud.api_url} {_enrollment_code(cloud)} --ca {cloud.ca_file}"


def test_a_tampered_update_is_refused_and_deleted(
    installed: dict[str, Path], local_cloud: LocalCloud, tmp_path: Path
) -> None:
    served = tmp_path / "served"
    served.mkdir()
    name = f"{SENDER}_{NEXT_VERSION}-1~debian-bookworm_amd64.deb"
    real, tampered = b"the package the cloud published", b"the package someone swapped in on the way"
    (served / name).write_bytes(tampered)
    with _Downloads(served) as downloads:
        # The cloud signs the manifest, so its signature is right; its checksum is the real package's.
        _publish(
            local_cloud,
            version=NEXT_VERSION,
            url=downloads.url(name),
            sha256=hashlib.sha256(real).hexdigest(),
        )
        home = tmp_path / "home"
        result = _as_installed_user(
            local_cloud, home, _enroll(local_cloud), "/usr/bin/coalesce update --install"
        )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "does not match its signed checksum, so it was deleted" in result.stderr
    assert list((home / "cache" / "coalesce" / "updates").iterdir()) == []
    assert _installed_version(SENDER) == VERSION


def test_the_installed_sender_installs_the_next_version_from_the_cloud(
    installed: dict[str, Path], local_cloud: LocalCloud, tmp_path: Path
) -> None:
    served = tmp_path / "served"
    started = time.monotonic()
    _build(served, COALESCE_VERSION=NEXT_VERSION, COALESCE_APPS=SENDER)
    print(f"\nbuild of the sender at {NEXT_VERSION}: {time.monotonic() - started:.0f} s")
    package = _deb(served, SENDER, NEXT_VERSION)
    with _Downloads(served) as downloads:
        _publish(
            local_cloud,
            version=NEXT_VERSION,
            url=downloads.url(package.name),
            sha256=hashlib.sha256(package.read_bytes()).hexdigest(),
        )
        result = _as_installed_user(
            local_cloud, tmp_path / "home", _enroll(local_cloud), "/usr/bin/coalesce update --install"
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Coalesce {NEXT_VERSION} is installed" in result.stdout
    assert _installed_version(SENDER) == NEXT_VERSION
    assert _run("/usr/bin/coalesce", "--version").stdout.strip() == f"coalesce {NEXT_VERSION}"
    # The secrets went to gnome-keyring, not to a plaintext file.
    assert not (tmp_path / "home" / "data" / "python_keyring").exists()


def _owned_paths(package: str) -> list[Path]:
    listing = _run("dpkg-query", "-L", package).stdout.splitlines()
    return [Path(line) for line in listing if line.startswith("/") and line not in {"/.", "/"}]


def test_removing_and_purging_leave_only_the_data_folder(installed: dict[str, Path]) -> None:
    owned = {app: _owned_paths(app) for app in (SENDER, ROOM)}
    private = [
        Path("/usr/lib/coalesce"),
        Path("/usr/lib/coalesce-room"),
        Path("/usr/bin/coalesce"),
        Path("/usr/bin/coalesce-room"),
        Path("/lib/systemd/system/coalesce-room.service"),
    ]
    assert all(path.exists() for path in private)

    _run("apt-get", "remove", "--yes", SENDER, ROOM)
    for path in private:
        assert not path.exists(), f"{path} is left after apt-get remove"
    assert not list(Path("/etc/systemd/system").rglob("coalesce-room*")), "a unit link is left"
    assert Path("/etc/default/coalesce-room").is_file(), "remove keeps the settings, as Debian does"

    _run("dpkg", "--purge", SENDER, ROOM)  # apt no longer knows packages installed from files once removed
    assert _installed_version(SENDER) is None and _installed_version(ROOM) is None
    leftovers = [
        path
        for app in (SENDER, ROOM)
        for path in owned[app]
        if path.exists() and not path.is_dir()  # shared folders (/usr/share/icons/...) stay, as they should
    ]
    assert leftovers == []
    assert not Path("/etc/default/coalesce-room").exists()
    assert not list(Path("/var/lib/systemd/deb-systemd-helper-enabled").rglob("coalesce-room*"))
    assert Path("/var/lib/coalesce-room").is_dir(), "the room's data folder (its TLS key and id) stays"
    with contextlib.suppress(FileNotFoundError):
        assert not list(Path("/var/lib/dpkg/info").glob("coalesce*"))
