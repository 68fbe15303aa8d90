"""How often the signaling server collects the garbage closed strangers leave."""

from __future__ import annotations

import pytest

from coalesce_common.signaling.websocket import SWEEP_INTERVAL, SWEEP_SHARE, sweep_interval


def test_a_slow_collection_spaces_out_the_next_so_a_flood_cannot_keep_the_loop_collecting() -> None:
    assert sweep_interval(0.001) == SWEEP_INTERVAL  # a small heap: as often as the interval allows
    assert sweep_interval(1.2) == pytest.approx(1.2 / SWEEP_SHARE)  # at most a tenth of the time
    assert sweep_interval(1.2) > 1.2
