"""Fixtures for the REST API tests: the app on a migrated database, a movable clock, an XMPP admin.

- ``database_url``: parametrized over ``sqlite`` (a file in tmp_path) and ``postgres`` (a fresh schema in
  the database of the ``postgres_url`` fixture from tests/cloud/conftest.py). Every test that uses the
  app runs on both; the schema always comes from the Alembic migrations, never ``create_all``.
- ``clock``: a :class:`FakeClock` handed to ``create_app``; ``clock.advance(hours=13)`` moves time.
- ``xmpp``: a :class:`RecordingXmppAdmin` (in-memory accounts, every call recorded). Tests that need the
  real server use ``ejabberd_settings`` and let the app build its own ejabberd client.
- ``make_client``: ``async with make_client(settings=..., xmpp_admin=..., client_ip=...) as client`` runs
  the app's lifespan and gives an ``httpx.AsyncClient`` on ``/api/v1`` through ``ASGITransport``;
  ``client``: one such client with the defaults.
- ``cloud``: helpers on ``client`` (admin calls, enrolling devices).
- ``served``: the same app served by a real uvicorn over TLS on loopback (a :class:`Served`: URL and CA).
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, make_url, text

from coalesce_cloud.api.app import create_app
from coalesce_cloud.core.config import ENV_PREFIX, Settings
from coalesce_cloud.servers.certs import CaFiles, issue_server_cert
from coalesce_cloud.xmpp_admin import XmppAdmin
from tests.cloud.api.support import (
    ADMIN_TOKEN,
    BASE_URL,
    DOMAIN,
    TURN_SECRET,
    ClientFactory,
    Cloud,
    FakeClock,
    RecordingXmppAdmin,
    Served,
)

SERVER_START_TIMEOUT = 15.0

# ------------------------------------------------------------------------------------------- database


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings must come from the test alone, not from COALESCE_CLOUD_* of the machine running it."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cloud.db'}"
        return
    try:
        server_url: str = request.getfixturevalue("postgres_url")
    except pytest.FixtureLookupError:
        pytest.skip("no postgres_url fixture (tests/cloud/conftest.py starts PostgreSQL)")
    schema = f"t_{secrets.token_hex(6)}"
    admin_engine = create_engine(server_url)
    try:
        with admin_engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(server_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin_engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin_engine.dispose()


# ---------------------------------------------------------------------------------------------- app


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def xmpp() -> RecordingXmppAdmin:
    return RecordingXmppAdmin()


@pytest.fixture
def manifest_dir(tmp_path: Path) -> Path:
    path = tmp_path / "updates"
    path.mkdir()
    return path


@pytest.fixture
def settings(database_url: str, tmp_path: Path, manifest_dir: Path) -> Settings:
    return Settings(
        state_dir=tmp_path / "state",
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        xmpp={"domain": DOMAIN, "host": "xmpp.coalesce.test", "starttls_port": 5222, "tls_port": 443},
        turn={
            "static_auth_secret": TURN_SECRET,
            "regions": [
                {"name": "eu-west", "host": "turn-eu.coalesce.test", "port": 3478, "tls_port": 443},
                {"name": "us-east", "host": "2001:db8::1", "port": 3478, "tls_port": 5349},
            ],
        },
        updates={"manifest_dir": manifest_dir},
    )


@pytest.fixture
def make_client(settings: Settings, clock: FakeClock, xmpp: RecordingXmppAdmin) -> ClientFactory:
    @asynccontextmanager
    async def factory(
        *,
        settings: Settings = settings,
        xmpp_admin: XmppAdmin | None = xmpp,
        client_ip: str = "198.51.100.7",
        app: Any = None,
    ) -> AsyncIterator[httpx.AsyncClient]:
        if app is None:
            app = create_app(settings, xmpp_admin=xmpp_admin, clock=clock)
        transport = httpx.ASGITransport(app=app, client=(client_ip, 40000))
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client,
        ):
            yield client

    return factory


@pytest.fixture
async def client(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as client:
        yield client


@pytest.fixture
def cloud(client: httpx.AsyncClient) -> Cloud:
    return Cloud(client)


@pytest.fixture
def served(
    settings: Settings,
    clock: FakeClock,
    xmpp: RecordingXmppAdmin,
    cloud_ca: CaFiles,
    tmp_path: Path,
    free_tcp_port: int,
) -> Iterator[Served]:
    cert = issue_server_cert(cloud_ca, tmp_path, "api", ["127.0.0.1"])
    app = create_app(settings, xmpp_admin=xmpp, clock=clock)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=free_tcp_port,
        ssl_certfile=str(cert.cert),
        ssl_keyfile=str(cert.key),
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn")
    thread.start()
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while not server.started:  # uvicorn has no ready event to wait on; poll its flag
        assert thread.is_alive(), "uvicorn stopped during start-up"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield Served(f"https://127.0.0.1:{free_tcp_port}", cloud_ca.cert)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
