"""SPAKE2 pairing: right PIN pairs, wrong PIN is refused, swapped fingerprints are detected."""

from __future__ import annotations

import pytest

from coalesce_common.errors import IdentityMismatch, ProtocolError, WrongPin
from coalesce_common.protocol.pairing import ReceiverPairing, SenderPairing
from coalesce_common.protocol.sdp import dtls_fingerprints

TLS = "AA:BB:CC"
OFFER = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=fingerprint:sha-256 11:22:33\r\n"
ANSWER = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=fingerprint:sha-256 44:55:66\r\n"


def pair(sender_pin: str, receiver_pin: str, sender_sees: str = TLS, receiver_has: str = TLS):  # type: ignore[no-untyped-def]
    receiver = ReceiverPairing(receiver_pin)
    message, sender_key = SenderPairing(sender_pin).finish(receiver.message, sender_sees)
    return sender_key, receiver.verify(message, receiver_has)


def test_right_pin_gives_both_sides_the_same_key() -> None:
    sender_key, receiver_key = pair("4821", "4821")
    sender_key.verify_receiver_confirm(receiver_key.receiver_confirm(TLS), TLS)
    receiver_key.verify_offer_mac(OFFER, sender_key.offer_mac(OFFER))
    sender_key.verify_answer_mac(OFFER, ANSWER, receiver_key.answer_mac(OFFER, ANSWER))


def test_pin_is_not_in_any_message() -> None:
    receiver = ReceiverPairing("482193")
    message, _ = SenderPairing("482193").finish(receiver.message, TLS)
    wire = f"{receiver.message}{message.spake}{message.confirm}{message.binding}"
    assert "482193" not in wire


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


def test_key_never_shows_in_repr() -> None:
    sender_key, _ = pair("4821", "4821")
    assert "secret" in repr(sender_key)
