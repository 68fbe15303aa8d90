"""The Linux packages' own pieces, added around Briefcase (called by ``installers/build.sh``).

``add-files STAGE APP``: after ``briefcase create``, put into the bundle's file tree what the template does
not write: our desktop entry (over the template's), the AppStream metadata, the scalable icon and, for the
room, its systemd units and ``/etc/default/coalesce-room``. Briefcase packs the whole tree into the .deb.

``finish-deb STAGE APP OUT``: after ``briefcase package``. Briefcase writes ``DEBIAN/control`` into the tree
and has no setting for maintainer scripts, so the room's ``postinst``/``prerm``/``postrm`` (system user,
data folder, units) and its conffile list are added to that ``DEBIAN/`` here, and the tree is packed again
with ``dpkg-deb --build --root-owner-group`` as Briefcase does (its own pass is left uncompressed). The
control file also gets what Briefcase cannot express: no ``Homepage: None`` when the project has no
homepage, and Recommends.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BUNDLE = "org.coalesce"
ROOM = "coalesce-room"
ROOM_FILES = HERE / "room"
RECOMMENDS = {
    # pkexec: updates hand the package to `pkexec apt-get install`; a Secret Service keeps the secrets
    "coalesce": "pkexec, gnome-keyring | kwalletmanager | keepassxc",
    # the box: nothing. Its cloud credentials are a systemd credential (coalesce-room enroll), not a keyring
    ROOM: "",
}
ROOM_CONFFILES = ["/etc/default/coalesce-room"]
# zstd: dpkg and apt read it since Debian 12 and Ubuntu 21.10; xz would take minutes longer on two cores.
COMPRESSION = "zstd"


def _bundle_tree(stage: Path, app: str) -> Path:
    """``build/APP/VENDOR/CODENAME/APP-VERSION``: the tree that becomes the package's file system."""
    trees = [path for path in (stage / "build" / app).glob(f"*/*/{app}-*") if (path / "usr").is_dir()]
    if len(trees) != 1:
        raise SystemExit(f"bundle: expected one bundle tree for {app} under {stage / 'build'}, found {trees}")
    return trees[0]


def _install(source: Path, target: Path, mode: int = 0o644) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    target.chmod(mode)


def add_files(stage: Path, app: str) -> None:
    tree = _bundle_tree(stage, app)
    resources = stage / "resources"
    desktop_id = f"{BUNDLE}.{app}"
    _install(
        resources / "linux" / f"{desktop_id}.desktop",
        tree / "usr/share/applications" / f"{desktop_id}.desktop",
    )
    _install(
        resources / "linux" / f"{desktop_id}.metainfo.xml",
        tree / "usr/share/metainfo" / f"{desktop_id}.metainfo.xml",
    )
    _install(
        resources / "icons" / f"{app}.svg",
        tree / "usr/share/icons/hicolor/scalable/apps" / f"{desktop_id}.svg",
    )
    if app == ROOM:
        units = tree / "lib/systemd/system"
        for unit in ("coalesce-room.service", "coalesce-room-headless.service"):
            _install(ROOM_FILES / unit, units / unit)
        _install(ROOM_FILES / "default", tree / "etc/default/coalesce-room")


def _write_copyright(stage: Path, target: Path, app: str) -> None:
    """A machine-readable copyright file naming Debian's copy of the licence (Briefcase copies the text)."""
    target.write_text(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        f"Upstream-Name: {app}\n\n"
        "Files: *\n"
        "Copyright: 2026 The Coalesce developers\n"
        "License: Apache-2.0\n"
        " On Debian systems the full text of the Apache License 2.0 is in\n"
        " /usr/share/common-licenses/Apache-2.0 (and in LICENSE in the source).\n"
        " The bundled Python packages under usr/lib/{app}/app_packages carry their own licences\n"
        " in their *.dist-info folders.\n".replace("{app}", app)
    )


def _installed_kib(tree: Path) -> int:
    return (
        sum(path.stat().st_size for path in tree.rglob("*") if path.is_file() and "DEBIAN" not in path.parts)
        // 1024
    )


def _edit_control(control: Path, app: str) -> None:
    lines = [line for line in control.read_text().splitlines() if line != "Homepage: None"]
    lines.insert(1, f"Installed-Size: {_installed_kib(control.parent.parent)}")
    depends = next(i for i, line in enumerate(lines) if line.startswith("Depends:"))
    if RECOMMENDS[app]:
        lines.insert(depends + 1, f"Recommends: {RECOMMENDS[app]}")
    control.write_text("\n".join(lines) + "\n")


def finish_deb(stage: Path, app: str, out: Path) -> None:
    """Pack the bundle tree (with the ``DEBIAN/control`` Briefcase wrote into it) as the final ``out``."""
    tree = _bundle_tree(stage, app)
    # pip's console scripts for the bundled wheels: their first line names the build venv, so none would run
    shutil.rmtree(tree / "usr" / "lib" / app / "app_packages" / "bin", ignore_errors=True)
    _write_copyright(stage, tree / "usr" / "share" / "doc" / app / "copyright", app)
    debian = tree / "DEBIAN"
    _edit_control(debian / "control", app)
    if app == ROOM:
        for script in ("postinst", "prerm", "postrm"):
            _install(ROOM_FILES / script, debian / script, 0o755)
        (debian / "conffiles").write_text("".join(f"{path}\n" for path in ROOM_CONFFILES))
    # Briefcase ships no bytecode and its launcher writes none: every start would compile numpy, aiortc, ...
    # in memory. Compiled here with unchecked hashes, so the files' dates do not matter.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            str(tree / "usr" / "lib" / app),
        ],
        check=False,  # a file that does not compile (a test for another Python) stays source only
        stdout=subprocess.DEVNULL,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["dpkg-deb", "--build", "--root-owner-group", f"-Z{COMPRESSION}", str(tree), str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def main(argv: list[str]) -> None:
    if len(argv) == 3 and argv[0] == "add-files":
        add_files(Path(argv[1]), argv[2])
    elif len(argv) == 4 and argv[0] == "finish-deb":
        finish_deb(Path(argv[1]), argv[2], Path(argv[3]))
    else:
        raise SystemExit("usage: bundle.py add-files STAGE APP | finish-deb STAGE APP OUT")


if __name__ == "__main__":
    main(sys.argv[1:])
