"""The ``coalesce-cloud`` command's entry point: it names the extra to install when the cloud's libraries are
missing, instead of a ``ModuleNotFoundError`` traceback.

The cloud's libraries (FastAPI, SQLAlchemy, ...) come with ``pip install 'coalesce[cloud]'``; a plain
``pip install coalesce`` (the sender and the room display) installs the command too. Nothing here imports
them: :mod:`coalesce_cloud.cli` is imported only once they are known to be there.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

EXTRA = "cloud"
# The import names of the [cloud] extra's distributions (pyproject.toml) and of what they bring.
EXTRA_MODULES = frozenset(
    {"alembic", "fastapi", "psycopg", "pydantic", "pydantic_settings", "sqlalchemy", "starlette", "uvicorn"}
)


def missing_extra_message(module: str) -> str:
    return (
        f"coalesce-cloud: the cloud's libraries are not installed (no module {module!r}).\n"
        f"Install them with:  pip install 'coalesce[{EXTRA}]'\n"
        "(the sender and the room display do not need them; see deploy/README.md for a server)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        from coalesce_cloud.cli import main as cloud_main
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top not in EXTRA_MODULES:
            raise
        print(missing_extra_message(top), file=sys.stderr)
        return 2
    return cloud_main(argv)
