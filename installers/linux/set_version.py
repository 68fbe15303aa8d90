"""Set ``[project] version`` in a staged copy of the tree: the update test's N+1 package (build.sh).

python installers/linux/set_version.py STAGED_TREE VERSION
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

_VERSION = re.compile(r'^version = "[^"]*"$', re.MULTILINE)
_RELEASE = re.compile(r'<release version="[^"]*"')


def main(tree: Path, version: str) -> None:
    pyproject = tree / "pyproject.toml"
    text, count = _VERSION.subn(f'version = "{version}"', pyproject.read_text(), count=1)
    if count != 1:
        raise SystemExit(f"set_version: no version line in {pyproject}")
    pyproject.write_text(text)
    for metainfo in (tree / "resources" / "linux").glob("*.metainfo.xml"):
        metainfo.write_text(_RELEASE.sub(f'<release version="{version}"', metainfo.read_text(), count=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
