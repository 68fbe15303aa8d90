"""``waiting``: a moderated room tells the sender it decides, between ``pair`` and ``welcome``."""

from __future__ import annotations

import pytest

from coalesce_common.errors import ProtocolError
from coalesce_common.protocol import (
    Challenge,
    Hello,
    Pair,
    Role,
    SessionState,
    SignalingSession,
    Waiting,
    Welcome,
    encode,
    parse,
)


def test_waiting_comes_between_pair_and_welcome() -> None:
    sender, receiver = SignalingSession(Role.SENDER), SignalingSession(Role.RECEIVER)
    receiver.receive(sender.send(Hello(v=1, sender_name="Ada", sender_id="a")))
    sender.receive(receiver.send(Challenge(v=1, receiver_name="Room", receiver_id="r", pin_required=False)))
    receiver.receive(sender.send(Pair()))
    assert sender.receive(receiver.send(Waiting(seconds=120))) == Waiting(seconds=120.0)
    assert sender.state is SessionState.CONFIRMING
    sender.receive(receiver.send(Welcome(share_id="s")))
    assert sender.state is SessionState.PAIRED
    with pytest.raises(ProtocolError) as late:
        sender.receive(encode(Waiting(seconds=1)))
    assert late.value.code == "out-of-order"


def test_waiting_is_bounded() -> None:
    assert parse('{"type": "waiting", "seconds": 3600}') == Waiting(seconds=3600.0)
    for bad in (
        '{"type": "waiting", "seconds": -1}',
        '{"type": "waiting", "seconds": 1e9}',
        '{"type": "waiting"}',
    ):
        with pytest.raises(ProtocolError):
            parse(bad)
