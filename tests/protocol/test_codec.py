"""Every message round-trips; malformed, oversized and unknown input is refused with a precise code."""

from __future__ import annotations

import json

import pytest

from coalesce_common.errors import MessageTooLarge, ProtocolError
from coalesce_common.protocol import (
    MAX_MESSAGE_SIZE,
    Answer,
    Bye,
    Challenge,
    Denied,
    DenyReason,
    Error,
    Hello,
    JoinDecision,
    JoinRequest,
    Message,
    Offer,
    Pair,
    SenderRole,
    Welcome,
    encode,
    parse,
)

SDP = "v=0\r\na=fingerprint:sha-256 AB:CD\r\n"

EXAMPLES: list[Message] = [
    Hello(v=1, sender_name="Ada's laptop", sender_id="abc123"),
    Hello(v=1, sender_name="Chair", sender_id="m1", role=SenderRole.MODERATOR),
    JoinRequest(request_id="r1", sender_name="Guest"),
    JoinDecision(request_id="r1", approve=False),
    Challenge(v=1, receiver_name="Room 1", receiver_id="r1", pin_required=True, spake="c3Bha2U="),
    Challenge(v=1, receiver_name="Open room", receiver_id="r2", pin_required=False),
    Pair(spake="YQ==", confirm="Yg==", binding="Yw=="),
    Pair(),
    Welcome(share_id="s1", confirm="ZA=="),
    Denied(reason=DenyReason.THROTTLED, message="too many", retry_after=4.0),
    Denied(reason=DenyReason.WRONG_PIN, message="wrong PIN"),
    Offer(sdp=SDP, tracks={"0": "screen", "1": "camera"}, mac="ZQ=="),
    Answer(sdp=SDP, mac=None),
    Bye(reason="stopped"),
    Error(code="malformed", message="bad"),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: m.TYPE)
def test_round_trip(message: Message) -> None:
    assert parse(encode(message)) == message
    assert parse(encode(message).encode()) == message


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        ("not json", "malformed"),
        ("[1, 2]", "malformed"),
        ('{"v": 1}', "malformed"),
        ('{"type": "nonsense"}', "unknown-type"),
        ('{"type": "hello", "v": 1, "sender_name": "a"}', "malformed"),  # missing field
        ('{"type": "hello", "v": "1", "sender_name": "a", "sender_id": "b"}', "malformed"),  # wrong type
        ('{"type": "hello", "v": true, "sender_name": "a", "sender_id": "b"}', "malformed"),  # bool is no int
        ('{"type": "hello", "v": 1, "sender_name": "a", "sender_id": "b", "x": 1}', "malformed"),  # extra
        ('{"type": "hello", "v": 1, "sender_name": "' + "a" * 65 + '", "sender_id": "b"}', "malformed"),
        ('{"type": "denied", "reason": "because", "message": "m"}', "malformed"),  # unknown enum value
        ('{"type": "offer", "sdp": "x", "tracks": {"0": "microphone"}}', "malformed"),
        ('{"type": "offer", "sdp": "x", "tracks": {"0": 1}}', "malformed"),
        ('{"type": "offer", "sdp": "x", "tracks": [1]}', "malformed"),
        ('{"type": "denied", "reason": "throttled", "message": "m", "retry_after": NaN}', "malformed"),
        (b"\xff\xfe", "malformed"),
    ],
)
def test_malformed_is_refused_with_code(wire: str | bytes, code: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse(wire)
    assert info.value.code == code


def test_oversized_is_refused_before_parsing() -> None:
    wire = json.dumps({"type": "offer", "sdp": "x" * MAX_MESSAGE_SIZE})
    with pytest.raises(MessageTooLarge) as info:
        parse(wire)
    assert info.value.code == "too-large"
    assert info.value.size > MAX_MESSAGE_SIZE


def test_sdp_has_its_own_larger_limit_but_is_still_bounded() -> None:
    assert parse(encode(Offer(sdp="x" * 40_000))) == Offer(sdp="x" * 40_000)
    with pytest.raises(ProtocolError):
        parse(json.dumps({"type": "offer", "sdp": "x" * 50_000}))


def test_fields_at_their_default_stay_off_the_wire_so_older_peers_understand() -> None:
    hello = json.loads(encode(Hello(v=1, sender_name="Ada", sender_id="a")))
    assert hello == {"type": "hello", "v": 1, "sender_name": "Ada", "sender_id": "a"}  # no new fields
    full = json.loads(encode(Denied(reason=DenyReason.FULL, message="full", replaceable=True)))
    assert full == {"type": "denied", "reason": "full", "message": "full", "replaceable": True}
    assert parse(json.dumps(hello)) == Hello(v=1, sender_name="Ada", sender_id="a")  # defaults filled in
