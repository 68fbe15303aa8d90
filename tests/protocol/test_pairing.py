"""SPAKE2 pairing: right PIN pairs, wrong PIN is refused, swapped fingerprints are detected, the PIN never
crosses the wire and the key never shows."""

from __future__ import annotations

import base64
import json
import os

import pytest

from coalesce_common import PROTOCOL_VERSION
from coalesce_common.errors import IdentityMismatch, ProtocolError, WrongPin
from coalesce_common.protocol import (
    Answer,
    Challenge,
    Hello,
    Message,
    Offer,
    Pair,
    Role,
    SessionState,
    SignalingSession,
    Welcome,
    encode,
)
from coalesce_common.protocol.pairing import PairingKey, ReceiverPairing, SenderPairing
from coalesce_common.protocol.sdp import dtls_fingerprints
from tests.protocol.pin_traces import leaks, pin_traces

TLS = "AA:BB:CC"
OFFER = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=fingerprint:sha-256 11:22:33\r\n"
ANSWER = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=fingerprint:sha-256 44:55:66\r\n"
LONG_PIN = "482193570614"  # twelve digits: no chance of meeting it in the random bytes of a message


def pair(sender_pin: str, receiver_pin: str, sender_sees: str = TLS, receiver_has: str = TLS):  # type: ignore[no-untyped-def]
    receiver = ReceiverPairing(receiver_pin)
    message, sender_key = SenderPairing(sender_pin).finish(receiver.message, sender_sees)
    return sender_key, receiver.verify(message, receiver_has)


def pairing_exchange(pin: str) -> list[str]:
    """Pair and negotiate through both sides' sessions, checking every MAC; return each wire message sent."""
    sender, receiver = SignalingSession(Role.SENDER), SignalingSession(Role.RECEIVER)
    wire: list[str] = []

    def to_receiver(message: Message) -> Message:
        wire.append(sender.send(message))
        return receiver.receive(wire[-1])

    def to_sender(message: Message) -> Message:
        wire.append(receiver.send(message))
        return sender.receive(wire[-1])

    to_receiver(Hello(v=PROTOCOL_VERSION, sender_name="Ada", sender_id="0123456789abcdef"))
    receiver_pairing = ReceiverPairing(pin)
    challenge = to_sender(
        Challenge(
            v=PROTOCOL_VERSION,
            receiver_name="Room 1",
            receiver_id="fedcba9876543210",
            pin_required=True,
            spake=receiver_pairing.message,
        )
    )
    assert isinstance(challenge, Challenge)
    pair_message, sender_key = SenderPairing(pin).finish(challenge.spake, TLS)
    received_pair = to_receiver(pair_message)
    assert isinstance(received_pair, Pair)
    receiver_key = receiver_pairing.verify(received_pair, TLS)
    welcome = to_sender(Welcome(share_id="share-1", confirm=receiver_key.receiver_confirm(TLS)))
    assert isinstance(welcome, Welcome)
    sender_key.verify_receiver_confirm(welcome.confirm, TLS)
    offer = to_receiver(Offer(sdp=OFFER, tracks={"0": "screen"}, mac=sender_key.offer_mac(OFFER)))
    assert isinstance(offer, Offer)
    receiver_key.verify_offer_mac(offer.sdp, offer.mac)
    answer = to_sender(Answer(sdp=ANSWER, mac=receiver_key.answer_mac(OFFER, ANSWER)))
    assert isinstance(answer, Answer)
    sender_key.verify_answer_mac(OFFER, answer.sdp, answer.mac)
    assert sender.state is receiver.state is SessionState.ACTIVE
    return wire


def test_right_pin_gives_both_sides_the_same_key() -> None:
    sender_key, receiver_key = pair("4821", "4821")
    sender_key.verify_receiver_confirm(receiver_key.receiver_confirm(TLS), TLS)
    receiver_key.verify_offer_mac(OFFER, sender_key.offer_mac(OFFER))
    sender_key.verify_answer_mac(OFFER, ANSWER, receiver_key.answer_mac(OFFER, ANSWER))


def test_the_pin_crosses_the_wire_in_no_form() -> None:
    wire = pairing_exchange(LONG_PIN)
    assert len(wire) == 6
    assert leaks(LONG_PIN, wire) == []


def test_the_leak_search_finds_every_form_it_knows() -> None:
    """The check above is only as good as this search: each form is found plain and inside a blob."""
    for name, trace in pin_traces(LONG_PIN).items():
        blob = base64.b64encode(b"\x01" + trace).decode()  # off the 3-byte grid: not the trace's own base64
        carriers = [encode(Pair(spake=blob)), encode(Pair(confirm=(b"\x02\x03" + trace).hex()))]
        if trace.isascii() and trace.decode().isprintable():
            carriers.append(
                encode(Hello(v=PROTOCOL_VERSION, sender_name=f"Ada {trace.decode()}", sender_id="x"))
            )
        for carrier in carriers:
            assert name in leaks(LONG_PIN, [carrier]), (name, carrier)


def test_each_pairing_sends_fresh_messages_for_the_same_pin() -> None:
    first, second = pairing_exchange(LONG_PIN), pairing_exchange(LONG_PIN)
    # hello carries no secret and is the same; from the challenge on, SPAKE2's randomness makes all differ
    assert first[0] == second[0]
    for one, other in zip(first[1:], second[1:], strict=True):
        assert one != other
    challenges = [json.loads(w[1])["spake"] for w in (first, second)]
    pairs = [json.loads(w[2]) for w in (first, second)]
    assert challenges[0] != challenges[1]
    for field in ("spake", "confirm", "binding"):
        assert pairs[0][field] != pairs[1][field], field


def test_wrong_pin_is_refused() -> None:
    with pytest.raises(WrongPin):
        pair("4821", "4822")


def test_tls_certificate_swap_is_detected_by_the_receiver() -> None:
    with pytest.raises(IdentityMismatch):
        pair("4821", "4821", sender_sees="EE:EE:EE")


def test_tls_certificate_swap_is_detected_by_the_sender() -> None:
    sender_key, receiver_key = pair("4821", "4821")
    with pytest.raises(IdentityMismatch):
        sender_key.verify_receiver_confirm(receiver_key.receiver_confirm("EE:EE:EE"), TLS)


def test_swapped_dtls_fingerprints_are_detected() -> None:
    sender_key, receiver_key = pair("4821", "4821")
    tampered_offer = OFFER.replace("11:22:33", "99:99:99")
    with pytest.raises(IdentityMismatch):
        receiver_key.verify_offer_mac(tampered_offer, sender_key.offer_mac(OFFER))
    tampered_answer = ANSWER.replace("44:55:66", "99:99:99")
    with pytest.raises(IdentityMismatch):
        sender_key.verify_answer_mac(OFFER, tampered_answer, receiver_key.answer_mac(OFFER, ANSWER))


def test_garbage_spake_message_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        SenderPairing("1234").finish("not base64!", TLS)
    with pytest.raises(ProtocolError):
        SenderPairing("1234").finish("AAAA", TLS)


def test_sdp_without_fingerprint_is_refused() -> None:
    with pytest.raises(ProtocolError) as info:
        dtls_fingerprints("v=0\r\n")
    assert info.value.code == "bad-sdp"


def test_key_never_shows_in_repr_or_str() -> None:
    secret = os.urandom(32)
    key = PairingKey(secret)
    shown = f"{key!r} {key!s} {key}"
    for form in (
        repr(secret),
        secret.hex(),
        secret.hex().upper(),
        base64.b64encode(secret).decode(),
        base64.urlsafe_b64encode(secret).decode(),
        str(list(secret)),
    ):
        assert form not in shown
    assert key.sender_confirm() not in shown  # nor anything that stands for the key
