"""A cloud the sender reaches from a network namespace without a proxy, for the media ladder.

- ``ladder_netns`` (module): a :class:`Netns`; each test sets its firewall (``netns.firewall(allow)``: only
  TCP to the listed endpoints leaves it, UDP never) and clears it at teardown.
- ``local_cloud`` (module): the cloud of ``tests/cloudlab.py`` bound to the namespace's host-side address
  (``netns.host_ip``) instead of 127.0.0.1, so the namespace reaches it directly; ``admin`` and ``box``
  use it.
- ``loopback_only_ice``: here the box offers its host-side address, so that peer to peer is possible.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from coalesce_cloud.stack import LocalCloud
from coalesce_common.media.ice import reset_host_addresses_policy, set_host_addresses_policy
from coalesce_testing.netns import Netns
from tests.cloudlab import admin, box, camera_file, file_keyring, running_cloud
from tests.netlab import new_netns

__all__ = ["admin", "box", "camera_file", "file_keyring"]


@pytest.fixture(scope="module")
def ladder_netns() -> Iterator[Netns]:
    with new_netns() as namespace:
        yield namespace


@pytest.fixture
def netns(ladder_netns: Netns) -> Iterator[Netns]:
    """The module's namespace with no firewall after the test; a test that leaves processes in it fails."""
    yield ladder_netns
    ladder_netns.clear_firewall()
    leftovers = ladder_netns.pids()
    if leftovers:
        pytest.fail(f"the test left processes {leftovers} running in {ladder_netns.name}", pytrace=False)


@pytest.fixture(scope="module")
def local_cloud(ladder_netns: Netns, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    with running_cloud(tmp_path_factory.mktemp("cloud"), host=ladder_netns.host_ip) as cloud:
        yield cloud


@pytest.fixture(autouse=True)
def loopback_only_ice(ladder_netns: Netns) -> Iterator[None]:
    set_host_addresses_policy(include_loopback=False, only=[ladder_netns.host_ip])
    yield
    reset_host_addresses_policy()
