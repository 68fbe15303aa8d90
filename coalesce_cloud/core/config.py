"""Typed settings of the cloud: environment (``COALESCE_CLOUD_*``), then a TOML/JSON file, then defaults.

Nested groups take ``__`` in the environment: ``COALESCE_CLOUD_XMPP__DOMAIN=example.org``,
``COALESCE_CLOUD_TURN__STATIC_AUTH_SECRET=...``. A file is named by ``Settings(config_file=...)`` or
``COALESCE_CLOUD_CONFIG_FILE``; its keys are the field names (``[xmpp]`` tables for the groups). Explicit
keyword arguments win over the environment, which wins over the file.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    JsonConfigSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from coalesce_cloud.updates import Manifest
from coalesce_common.cloud import notice

ENV_PREFIX = "COALESCE_CLOUD_"
MIN_ADMIN_TOKEN_LENGTH = 16
DEFAULT_API_PORT = 9443
"""The REST API's port when none is configured (``up``, the admin CLI): not 8443, the room receiver's
fallback when it may not bind 443, so that both run on one machine as a non-root user."""
_HOSTNAME = re.compile(r"^[A-Za-z0-9.:\[\]-]{1,253}$")


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/coalesce/cloud``, i.e. ``~/.local/state/coalesce/cloud`` when unset."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "coalesce" / "cloud"


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class XmppNode(_Group):
    """One ejabberd node as devices reach it."""

    host: str = Field(min_length=1)
    starttls_port: int = Field(default=5222, ge=1, le=65535)
    tls_port: int = Field(default=5223, ge=1, le=65535)


class XmppSettings(_Group):
    """The XMPP service as devices reach it, and ejabberd's admin API as the cloud reaches it."""

    domain: str = "localhost"
    host: str = Field(default="", description="host name devices connect to; the domain when empty")
    starttls_port: int = Field(default=5222, ge=1, le=65535)
    tls_port: int = Field(default=5223, ge=1, le=65535)
    api_url: str = "http://127.0.0.1:5280/api"
    more_api_urls: list[str] = Field(
        default_factory=list,
        description="the admin API of the cluster's other ejabberd nodes, tried in turn when api_url fails",
    )
    api_user: str = Field(
        default="coalesce-api",
        pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$",
        description="localpart (in domain) of the account ejabberd's admin API obeys",
    )
    api_password: SecretStr | None = Field(
        default=None, description="that account's password (HTTP Basic); every admin call fails without it"
    )
    api_timeout: float = Field(default=10.0, gt=0)
    websocket_url: str = Field(
        default="",
        description="where browsers (web guests) reach XMPP over WebSocket (RFC 7395), e.g. "
        "wss://cloud.example.com/xmpp-websocket; empty: web guests get no WebSocket address",
    )

    more_nodes: list[XmppNode] = Field(
        default_factory=list,
        description="the cluster's other ejabberd nodes as devices reach them; devices fail over to them",
    )

    @property
    def client_host(self) -> str:
        return self.host or self.domain

    @property
    def api_urls(self) -> list[str]:
        return [self.api_url, *self.more_api_urls]

    @property
    def client_nodes(self) -> list[XmppNode]:
        """Every node devices may log in to, the main one (``host`` and its ports) first."""
        main = XmppNode(host=self.client_host, starttls_port=self.starttls_port, tls_port=self.tls_port)
        return [main, *(n for n in self.more_nodes if n != main)]

    @property
    def service_user(self) -> str:
        """The account that sends device-status notices; fixed, since devices trust only that one."""
        return notice.SERVICE_USER

    @property
    def service_jid(self) -> str:
        return notice.service_jid(self.domain)


class TurnRegion(_Group):
    """One coturn deployment; senders measure STUN round trips to pick among regions."""

    name: str = Field(min_length=1, max_length=64)
    host: str
    port: int = Field(default=3478, ge=1, le=65535, description="STUN and TURN over UDP and TCP")
    tls_port: int = Field(default=443, ge=1, le=65535, description="TURN over TLS (turns:)")
    tls_host: str | None = Field(
        default=None,
        description="the name in turns: URLs, one the relay's certificate carries; host when unset "
        "(Firefox skips a turns: server given by IP address)",
    )
    static_auth_secret: SecretStr | None = Field(
        default=None, description="this region's coturn secret; the shared one when unset"
    )

    @field_validator("host", "tls_host")
    @classmethod
    def _host_is_plain(cls, value: str | None) -> str | None:
        if value is not None and not _HOSTNAME.match(value):
            raise ValueError("must be a host name or IP address")
        return value

    @property
    def tls_name(self) -> str:
        """The host of this region's turns: URL."""
        return self.tls_host or self.host


class TurnSettings(_Group):
    static_auth_secret: SecretStr | None = None
    credential_ttl: int = Field(default=600, ge=60, le=86400, description="seconds")
    regions: list[TurnRegion] = Field(default_factory=list)


class ThrottleSettings(_Group):
    """Failures allowed before back-off, and the back-off (doubling from base_delay up to max_delay)."""

    enroll_free_failures: int = Field(default=5, ge=1)
    lookup_free_failures: int = Field(default=10, ge=1)
    web_guest_free_admissions: int = Field(
        default=10, ge=1, description="web guests one address may be admitted as before back-off"
    )
    base_delay: float = Field(default=2.0, gt=0)
    max_delay: float = Field(default=900.0, gt=0)
    forget_after: float = Field(default=3600.0, gt=0)


class UpdateSettings(_Group):
    """Update manifests: the file ``manifest_dir/<platform>.json`` if there is one (read per request, so
    publishing is writing a file), else the entry for that platform in ``manifests``. They are signed
    with ``signing_key`` when served."""

    signing_key: Path | None = Field(
        default=None, description="ed25519 private key (PEM); state_dir/update-signing-key.pem when unset"
    )
    manifest_dir: Path | None = Field(default=None, description="state_dir/updates when unset")
    manifests: list[dict[str, str]] = Field(default_factory=list, description="manifests given inline")

    @field_validator("manifests")
    @classmethod
    def _manifests_are_valid(cls, value: list[dict[str, str]]) -> list[dict[str, str]]:
        for entry in value:
            Manifest.from_dict(entry)  # raises ManifestInvalid, a ValueError, with the reason
        return value

    def inline_manifest(self, platform: str) -> Manifest | None:
        for entry in self.manifests:
            if entry.get("platform") == platform:
                return Manifest.from_dict(entry)
        return None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True
    )

    config_file: Path | None = Field(default=None, description="TOML (.toml) or JSON (.json) settings file")
    state_dir: Path = Field(default_factory=default_state_dir)
    database_url: str = Field(default="", description="SQLAlchemy URL; sqlite in state_dir when empty")
    public_url: str = f"https://localhost:{DEFAULT_API_PORT}"
    admin_token: SecretStr | None = Field(default=None, description="bearer token of the admin API")
    meeting_ttl: timedelta = Field(default=timedelta(hours=12), description="seconds or ISO 8601 duration")
    web_guest_ttl: timedelta = Field(
        default=timedelta(hours=4),
        description="a web guest's identity lasts this long at most (and never beyond its meeting)",
    )
    web_guest_sweep_every: timedelta = Field(
        default=timedelta(seconds=30),
        gt=timedelta(0),
        description="how often expired web guests are removed from XMPP (their shares end then)",
    )
    max_body_bytes: int = Field(default=65536, ge=1024)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    xmpp: XmppSettings = Field(default_factory=XmppSettings)
    turn: TurnSettings = Field(default_factory=TurnSettings)
    updates: UpdateSettings = Field(default_factory=UpdateSettings)
    throttle: ThrottleSettings = Field(default_factory=ThrottleSettings)

    @field_validator("admin_token")
    @classmethod
    def _admin_token_is_long(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_ADMIN_TOKEN_LENGTH:
            raise ValueError(
                f"admin_token must be at least {MIN_ADMIN_TOKEN_LENGTH} characters; "
                'make one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'
            )
        return value

    @field_validator("meeting_ttl")
    @classmethod
    def _meeting_ttl_is_positive(cls, value: timedelta) -> timedelta:
        if value < timedelta(minutes=1):
            raise ValueError("meeting_ttl must be at least one minute")
        return value

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.state_dir / 'cloud.db'}"

    @property
    def signing_key_path(self) -> Path:
        return self.updates.signing_key or self.state_dir / "update-signing-key.pem"

    @property
    def manifest_dir(self) -> Path:
        return self.updates.manifest_dir or self.state_dir / "updates"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file(init_settings)
        if path is not None:
            sources.append(_file_source(settings_cls, path))
        return (*sources, file_secret_settings)


def _config_file(init_settings: PydanticBaseSettingsSource) -> Path | None:
    given: Any = (
        init_settings.init_kwargs.get("config_file")
        if isinstance(init_settings, InitSettingsSource)
        else None
    )
    given = given or os.environ.get(f"{ENV_PREFIX}CONFIG_FILE")
    return Path(given) if given else None


def _file_source(settings_cls: type[BaseSettings], path: Path) -> PydanticBaseSettingsSource:
    if not path.is_file():
        raise FileNotFoundError(f"settings file {path} does not exist")
    if path.suffix == ".json":
        return JsonConfigSettingsSource(settings_cls, json_file=path)
    if path.suffix == ".toml":
        return TomlConfigSettingsSource(settings_cls, toml_file=path)
    raise ValueError(f"settings file {path} must end in .toml or .json")
