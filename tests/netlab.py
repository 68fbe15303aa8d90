"""Network namespaces for tests: :func:`new_netns` (skips the test where none can be made) and the
``netns`` fixture (a fresh namespace per test)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest

from coalesce_testing.impair import ImpairedLink, Impairment
from coalesce_testing.netns import LabUnavailableError, Netns

BLACKOUT = Impairment(loss_percent=100)


def new_netns() -> Netns:
    """A new namespace, or the test is skipped (a failure under CI=true) where this machine cannot."""
    try:
        return Netns()
    except LabUnavailableError as exc:
        pytest.skip(f"no network namespace here: {exc}")


@pytest.fixture
def netns() -> Iterator[Netns]:
    with new_netns() as namespace:
        yield namespace


@contextlib.asynccontextmanager
async def blackout(netns: Netns) -> AsyncIterator[None]:
    """Every packet on the namespace's link dropped, both ways, while inside."""
    link = await asyncio.to_thread(ImpairedLink, netns, BLACKOUT)
    try:
        yield
    finally:
        await asyncio.to_thread(link.close)
