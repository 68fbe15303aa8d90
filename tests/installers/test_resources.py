"""The assets in ``resources/`` and what the wheel and the sdist carry.

The icons are checked as files (size from the PNG header), the desktop entries with ``desktop-file-validate``
and the AppStream metadata with ``appstreamcli validate``, the real tools the desktops and lintian use. The
wheel and the sdist are built for real (``python -m build``) from a copy of the tree, and their listings must
hold what the code loads at run time.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from coalesce_common.resources import ICON_SIZES, ROOM_ICON, SENDER_ICON, SENDER_LIVE_ICON, icon_paths

ROOT = Path(__file__).resolve().parents[2]
RESOURCES = ROOT / "resources"
DESKTOP_IDS = ("org.coalesce.coalesce", "org.coalesce.coalesce-room")
_COPY_IGNORE = shutil.ignore_patterns(
    ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".import_linter_cache"
)


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (scripts/setup.sh installs it)")
    return found


@pytest.mark.parametrize("name", [SENDER_ICON, SENDER_LIVE_ICON, ROOM_ICON])
def test_every_icon_size_is_rendered_at_its_size(name: str) -> None:
    paths = icon_paths(name)
    assert [_png_size(path) for path in paths] == [(size, size) for size in ICON_SIZES]
    assert (RESOURCES / "icons" / f"{name}.svg").is_file(), "the PNGs are rendered from this SVG"


@pytest.mark.parametrize("name", [SENDER_ICON, ROOM_ICON])
def test_windows_and_macos_icons_exist(name: str) -> None:
    ico = (RESOURCES / "icons" / f"{name}.ico").read_bytes()
    icns = (RESOURCES / "icons" / f"{name}.icns").read_bytes()
    assert ico[:4] == b"\x00\x00\x01\x00" and struct.unpack("<H", ico[4:6])[0] >= 7  # 16..256 px
    assert icns[:4] == b"icns" and struct.unpack(">I", icns[4:8])[0] == len(icns)


@pytest.mark.parametrize("desktop_id", DESKTOP_IDS)
def test_desktop_entries_validate(desktop_id: str) -> None:
    path = RESOURCES / "linux" / f"{desktop_id}.desktop"
    result = subprocess.run([_tool("desktop-file-validate"), str(path)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
    assert f"Icon={desktop_id}\n" in path.read_text()


@pytest.mark.parametrize("desktop_id", DESKTOP_IDS)
def test_appstream_metadata_validates(desktop_id: str) -> None:
    path = RESOURCES / "linux" / f"{desktop_id}.metainfo.xml"
    result = subprocess.run(
        [_tool("appstreamcli"), "validate", "--no-net", "--pedantic", str(path)],
        capture_output=True,
        text=True,
    )
    # Only notes remain: "cid-contains-hyphen" for the room's id, which follows its package name.
    assert result.returncode == 0, result.stdout + result.stderr
    assert f'<launchable type="desktop-id">{desktop_id}.desktop</launchable>' in path.read_text()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """The wheel and the sdist, built by ``python -m build`` from a copy of the tree."""
    base = tmp_path_factory.mktemp("dist")
    tree = base / "tree"
    shutil.copytree(ROOT, tree, ignore=_COPY_IGNORE)
    out = base / "out"
    result = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(tree)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "License classifiers are deprecated" not in result.stdout + result.stderr
    assert "project.license` as a TOML table is deprecated" not in result.stdout + result.stderr
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    yield wheel, sdist


def test_the_wheel_carries_what_the_code_loads(built: tuple[Path, Path]) -> None:
    wheel, _ = built
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "coalesce_cloud/alembic.ini",
        "coalesce_cloud/migrations/script.py.mako",
        "coalesce_cloud/migrations/versions/v0001_initial_schema.py",
        "coalesce_resources/__init__.py",
        "coalesce_resources/linux/org.coalesce.coalesce.desktop",
        "coalesce_resources/icons/coalesce.ico",
        "coalesce_resources/icons/coalesce-room.icns",
    ):
        assert needed in names, f"{needed} is missing from {wheel.name}"
    for name in (SENDER_ICON, SENDER_LIVE_ICON, ROOM_ICON):
        for size in ICON_SIZES:
            assert f"coalesce_resources/icons/{name}-{size}.png" in names
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "License-Expression: Apache-2.0" in text


def test_the_sdist_carries_the_screenshots_and_the_installers(built: tuple[Path, Path]) -> None:
    _, sdist = built
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    screenshots = {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs" / "screenshots").glob("*.png")}
    assert screenshots and screenshots <= names, sorted(screenshots - names)
    for needed in (
        "LICENSE",
        "CHANGELOG.md",
        "resources/icons/coalesce.svg",
        "installers/build.sh",
        "installers/linux/room/postinst",
    ):
        assert needed in names, f"{needed} is missing from {sdist.name}"


@pytest.fixture(scope="session")
def qapp_args(pytestconfig: pytest.Config) -> list[str]:
    """Offscreen Qt for the icon tests (as tests/receiver_ui/conftest.py chooses it)."""
    args = [str(pytestconfig.getini("qt_qapp_name"))]
    if not os.environ.get("QT_QPA_PLATFORM"):
        args += ["-platform", "offscreen"]
    return args


def test_the_apps_load_their_icons_from_the_packaged_files(qapp: object) -> None:
    from coalesce_client.ui.images import app_icon
    from coalesce_receiver.ui.app import room_icon

    for icon in (app_icon(), app_icon(live=True), room_icon()):
        assert sorted(size.width() for size in icon.availableSizes()) == list(ICON_SIZES)

    def stand(icon: object) -> tuple[int, int, int]:  # the foot of the screen, at 64 px
        colour = icon.pixmap(64, 64).toImage().pixelColor(32, 56)  # type: ignore[attr-defined]
        return colour.red(), colour.green(), colour.blue()

    red, _, blue = stand(app_icon(live=True))
    assert red > 200 and blue < 80, "sharing shows the red icon"
    red, _, blue = stand(app_icon())
    assert blue > 200 and red < 80, "idle shows the blue icon"
    red, green, blue = stand(room_icon())
    assert green > red and green > 100, "the room display has its own (teal) icon"
