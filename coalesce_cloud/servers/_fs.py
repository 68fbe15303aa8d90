"""Small file helpers for server state directories: atomic writes with a fixed mode."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_file(path: Path, data: str | bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically (temporary file + rename) and give it exactly ``mode``.

    The temporary file is created with mode 0600, so a secret never sits world-readable, not even briefly.
    """
    payload = data.encode() if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(payload)
            tmp.flush()
            os.fchmod(tmp.fileno(), mode)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_private_file(path: Path, data: str | bytes) -> None:
    """Write a secret (key, password, cookie) readable by its owner only."""
    write_file(path, data, mode=0o600)
