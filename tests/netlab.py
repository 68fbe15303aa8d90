"""Network namespaces for tests: :func:`new_netns` (skips the test where none can be made) and the
``netns`` fixture (a fresh namespace per test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from coalesce_testing.netns import LabUnavailableError, Netns


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
