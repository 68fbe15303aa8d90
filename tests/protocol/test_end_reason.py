"""Why a share ended, said to people: every reason has a sentence without codes, naming the room."""

from __future__ import annotations

import re

import pytest

from coalesce_common.errors import ProtocolError
from coalesce_common.protocol import Bye, EndReason, encode, parse


@pytest.mark.parametrize("reason", [r for r in EndReason if r is not EndReason.STOPPED])
def test_each_end_reason_is_a_plain_sentence_naming_the_room(reason: EndReason) -> None:
    sentence = reason.describe("Room 4.12")
    assert sentence is not None
    assert sentence.endswith(".") and sentence[0].isupper()
    assert "-" not in reason.value or reason.value not in sentence  # never the wire code
    assert not re.search(r"\b[a-z]+-[a-z]+\b", sentence.replace("Room 4.12", "")), sentence  # no codes
    if reason is not EndReason.CLOUD_DISCONNECTED:  # the cloud, not the room, ended that one
        assert "Room 4.12" in sentence


def test_the_user_stopping_says_nothing() -> None:
    assert EndReason.STOPPED.describe("Room") is None


def test_bye_carries_a_known_reason_only() -> None:
    assert parse(encode(Bye(reason=EndReason.DROPPED_BY_ROOM))) == Bye(reason=EndReason.DROPPED_BY_ROOM)
    with pytest.raises(ProtocolError) as caught:
        parse('{"type": "bye", "reason": "because I said so"}')
    assert caught.value.code == "malformed"
