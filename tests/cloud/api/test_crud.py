"""Data-access details the HTTP tests cannot see directly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from coalesce_cloud import crud
from coalesce_cloud.db import create_db_engine, make_session_factory, run_migrations
from coalesce_cloud.models import Org
from tests.cloud.api.support import START


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    engine = create_db_engine(database_url)
    run_migrations(engine)
    with make_session_factory(engine)() as session:
        yield session
    engine.dispose()


def test_a_savepoint_does_not_commit_the_request_early(session: Session) -> None:
    """SQLite's Python driver would let the first SAVEPOINT's release commit everything; it must not."""
    crud.get_or_create_org(session, name="ghost", now=START)
    session.rollback()
    assert session.scalar(select(Org).where(Org.name == "ghost")) is None


def test_get_or_create_org_is_idempotent(session: Session) -> None:
    first = crud.get_or_create_org(session, name="acme", now=START)
    session.commit()
    assert crud.get_or_create_org(session, name="acme", now=START).id == first.id
