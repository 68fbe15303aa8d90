"""``coalesce-cloud`` without the [cloud] extra names the extra to install, with no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

# A fresh interpreter in which the named libraries cannot be imported, as after `pip install coalesce`.
_WITHOUT = """
import sys
hidden = set(sys.argv[1].split(","))

class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in hidden:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Hide())
from coalesce_cloud.entry import main
sys.exit(main(sys.argv[2:]))
"""


def _run(hidden: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT, hidden, *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "hidden", ["fastapi", "sqlalchemy", "fastapi,sqlalchemy,alembic,uvicorn,pydantic_settings"]
)
def test_without_the_cloud_extra_the_command_says_what_to_install(hidden: str) -> None:
    result = _run(hidden, "up", "--help")
    assert result.returncode == 2
    assert "pip install 'coalesce[cloud]'" in result.stderr
    assert "Traceback" not in result.stderr and "ModuleNotFoundError" not in result.stderr


def test_with_the_extra_the_command_runs() -> None:
    result = _run("nothing-hidden", "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: coalesce-cloud" in result.stdout and "pip install" not in result.stderr


def test_a_missing_module_that_is_not_the_extras_is_not_explained_away() -> None:
    result = _run("coalesce_common", "--help")
    assert result.returncode == 1 and "ModuleNotFoundError" in result.stderr


def test_the_clouds_default_api_port_is_not_the_receivers_fallback_port() -> None:
    """The README's walkthrough runs `coalesce-cloud up` and a receiver on one machine: as a non-root user the
    receiver cannot bind 443 and takes its fallback port, which the API must leave free."""
    from coalesce_cloud.admin_cli import DEFAULT_URL
    from coalesce_cloud.core.config import DEFAULT_API_PORT, Settings
    from coalesce_receiver.services.receiver import FALLBACK_PORT

    up_help = subprocess.run(
        [sys.executable, "-m", "coalesce_cloud", "up", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    assert f"(default {DEFAULT_API_PORT})" in " ".join(up_help.split())
    assert DEFAULT_API_PORT != FALLBACK_PORT
    assert DEFAULT_URL.endswith(f":{DEFAULT_API_PORT}")
    assert Settings.model_fields["public_url"].default.endswith(f":{DEFAULT_API_PORT}")
