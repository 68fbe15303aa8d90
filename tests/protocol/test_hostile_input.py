"""Hostile bytes never raise anything but ProtocolError: deep nesting, bad SPAKE2 elements."""

from __future__ import annotations

import base64
import random

import pytest
from spake2 import SPAKE2_B, SPAKEError
from spake2.ed25519_basic import NotOnCurve

from coalesce_common.errors import ProtocolError
from coalesce_common.protocol import Hello, Offer, Pair, encode, parse
from coalesce_common.protocol.codec import MAX_NESTING
from coalesce_common.protocol.pairing import ReceiverPairing, SenderPairing

PIN = "4821"
FINGERPRINT = "AA:BB"


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 1_000, 20_000])
def test_deep_nesting_is_malformed_not_a_recursion_error(depth: int) -> None:
    for text in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        with pytest.raises(ProtocolError) as caught:
            parse(text, max_size=10 * len(text))
        assert caught.value.code == "malformed"


def test_nesting_inside_a_message_field_is_refused_but_brackets_in_strings_are_text() -> None:
    with pytest.raises(ProtocolError) as caught:
        parse('{"type": "hello", "v": 1, "sender_name": [[[[["x"]]]]], "sender_id": "i"}')
    assert caught.value.code == "malformed"
    hello = Hello(v=1, sender_name='[[[[[{{{{"', sender_id="i")
    assert parse(encode(hello)) == hello
    offer = Offer(sdp="v=0", tracks={"0": "screen"})  # the deepest real message: two levels
    assert parse(encode(offer)) == offer


def real_element() -> bytes:
    pair, _ = SenderPairing(PIN).finish(ReceiverPairing(PIN).message, FINGERPRINT)
    assert pair.spake is not None
    return base64.b64decode(pair.spake)


def bad_elements(side: bytes = b"A") -> dict[str, bytes]:
    """Hostile SPAKE2 messages for a party expecting ``side`` (``A``: the sender's, as the receiver does)."""
    element = side + real_element()[1:]
    other = b"B" if side == b"A" else b"A"
    return {
        "empty": b"",
        "truncated": element[:10],
        "not-on-the-curve": side + b"\x02" * 32,
        "not-in-the-group": side + b"\xff" * 32,
        "identity": side + b"\x00" * 32,
        "the-wrong-side": other + element[1:],
    }


def test_the_bad_elements_cover_every_kind_of_spake2_failure() -> None:
    """Each kind spake2 raises for hostile input is among the cases below (else the test proves less)."""
    kinds = set()
    for element in bad_elements().values():
        spake = SPAKE2_B(PIN.encode(), idA=b"coalesce/1 sender", idB=b"coalesce/1 receiver")
        spake.start()
        try:
            spake.finish(element)
        except Exception as exc:
            kinds.add(type(exc))
    assert NotOnCurve in kinds and ValueError in kinds and any(issubclass(k, SPAKEError) for k in kinds)


@pytest.mark.parametrize("name", list(bad_elements()))
def test_every_bad_spake2_element_is_a_bad_pairing(name: str) -> None:
    spake = base64.b64encode(bad_elements(b"A")[name]).decode()
    pair = Pair(spake=spake, confirm="AAAA", binding="AAAA")
    with pytest.raises(ProtocolError) as at_receiver:
        ReceiverPairing(PIN).verify(pair, FINGERPRINT)
    assert at_receiver.value.code == "bad-pairing"
    from_receiver = base64.b64encode(bad_elements(b"B")[name]).decode()
    with pytest.raises(ProtocolError) as at_sender:
        SenderPairing(PIN).finish(from_receiver, FINGERPRINT)
    assert at_sender.value.code == "bad-pairing"


def test_a_spake2_message_of_any_other_length_is_a_bad_pairing() -> None:
    """spake2 decodes short input as a number, so about one random short element in 14 is a valid point."""
    rng = random.Random(10)
    length = len(real_element())
    for size in (n for n in range(2, 2 * length) if n != length):
        for _ in range(20):
            element = b"A" + rng.randbytes(size - 1)
            pair = Pair(spake=base64.b64encode(element).decode(), confirm="AAAA", binding="AAAA")
            with pytest.raises(ProtocolError) as caught:
                ReceiverPairing(PIN).verify(pair, FINGERPRINT)
            assert caught.value.code == "bad-pairing", (size, element)
