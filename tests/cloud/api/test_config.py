"""Settings: environment over file over defaults; TOML and JSON files."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from coalesce_cloud.core.config import Settings

TOML = """
public_url = "https://cloud.example.org"
meeting_ttl = 3600
[xmpp]
domain = "file.example.org"
starttls_port = 5222
[turn]
static_auth_secret = "from-file"
[[turn.regions]]
name = "eu"
host = "turn-eu.example.org"
"""


def test_a_toml_file_with_the_environment_on_top(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cloud.toml"
    path.write_text(TOML)
    monkeypatch.setenv("COALESCE_CLOUD_XMPP__DOMAIN", "env.example.org")
    settings = Settings(config_file=path)
    assert settings.public_url == "https://cloud.example.org"
    assert settings.meeting_ttl == timedelta(hours=1)
    assert settings.xmpp.domain == "env.example.org" and settings.xmpp.starttls_port == 5222
    assert settings.turn.regions[0].host == "turn-eu.example.org" and settings.turn.regions[0].tls_port == 443
    assert settings.turn.static_auth_secret is not None
    assert "from-file" not in repr(settings), "secrets are masked in reprs (and so in logs)"


def test_a_json_file_named_by_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cloud.json"
    path.write_text(json.dumps({"database_url": "postgresql://u@db/cloud", "xmpp": {"domain": "j.example"}}))
    monkeypatch.setenv("COALESCE_CLOUD_CONFIG_FILE", str(path))
    settings = Settings()
    assert settings.database_url == "postgresql://u@db/cloud" and settings.xmpp.domain == "j.example"


def test_defaults_put_state_in_one_folder(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'cloud.db'}"
    assert settings.signing_key_path == tmp_path / "update-signing-key.pem"
    assert settings.meeting_ttl == timedelta(hours=12) and settings.turn.credential_ttl == 600


def test_mistakes_are_caught_early(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        Settings(xmpp={"domian": "typo.example"})
    with pytest.raises(ValidationError):
        Settings(turn={"regions": [{"name": "eu", "host": "bad host/"}]})
    with pytest.raises(FileNotFoundError):
        Settings(config_file=tmp_path / "missing.toml")
