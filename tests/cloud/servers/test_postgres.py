"""A real PostgreSQL: the application role logs in with its password (and only with it)."""

from __future__ import annotations

import shutil

import psycopg
import pytest
import sqlalchemy

from coalesce_cloud.servers.postgres import PostgresServer
from tests.cloud.servers.harness import postgres_state_dir


def test_psycopg_connects_and_selects(postgres: PostgresServer) -> None:
    with psycopg.connect(postgres.conninfo) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.execute("SELECT current_user, current_database()").fetchone() == (
            postgres.user,
            postgres.database,
        )


def test_sqlalchemy_url_works(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+psycopg://coalesce:")
    engine = sqlalchemy.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()


def test_a_wrong_password_is_refused(postgres: PostgresServer) -> None:
    conninfo = psycopg.conninfo.make_conninfo(postgres.conninfo, password="wrong", connect_timeout=5)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(conninfo)


def test_a_restart_keeps_the_data_and_the_url(free_tcp_port: int) -> None:
    state_dir = postgres_state_dir()
    server = PostgresServer(state_dir, free_tcp_port)
    try:
        server.start()
        url = server.url
        with psycopg.connect(server.conninfo) as conn:
            conn.execute("CREATE TABLE kept (value text)")
            conn.execute("INSERT INTO kept VALUES ('still here')")
        server.stop()
        again = PostgresServer(state_dir, free_tcp_port)
        again.start()
        try:
            assert again.url == url
            with psycopg.connect(again.conninfo) as conn:
                assert conn.execute("SELECT value FROM kept").fetchone() == ("still here",)
        finally:
            again.stop()
    finally:
        server.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
