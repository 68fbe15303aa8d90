"""PIN pairing: a SPAKE2 exchange keyed by the PIN, and MACs that bind the result to what each side sees.

The PIN never crosses the wire, not even hashed. Both sides run SPAKE2 (the ``spake2`` package, as the
W3C Open Screen Protocol does) with the PIN as password and derive a 32-byte key that only parties
knowing the PIN can compute; an attacker gets one online guess per attempt, which the receiver throttles.

The key then confirms what an attacker in the middle would have to change:

* ``confirm``      (sender)   proves the sender knows the PIN: a mismatch means a wrong PIN;
* ``binding``      (sender)   covers the TLS certificate fingerprint the sender saw;
* ``confirm``      (receiver) covers the certificate the receiver really presents;
* ``offer.mac``/``answer.mac`` cover the DTLS fingerprints of both SDPs.

So a relay that terminates TLS with its own certificate, or swaps DTLS fingerprints to sit in the
media path, is detected by one side or the other and the share is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from spake2 import SPAKE2_A, SPAKE2_B, SPAKEError
from spake2.ed25519_basic import NotOnCurve

from coalesce_common.errors import IdentityMismatch, ProtocolError, WrongPin
from coalesce_common.protocol.messages import Pair
from coalesce_common.protocol.sdp import fingerprint_digest_input

_ID_SENDER = b"coalesce/1 sender"
_ID_RECEIVER = b"coalesce/1 receiver"


# What spake2 raises for a hostile element: the wrong side or length (SPAKEError), a point off the curve
# (NotOnCurve, which is no SPAKEError), not in the prime-order group or malformed (ValueError), short input
# (IndexError, AssertionError in its decoders).
_BAD_ELEMENT = (SPAKEError, NotOnCurve, ValueError, IndexError, AssertionError)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str | None, what: str) -> bytes:
    if text is None:
        raise ProtocolError(f"pairing: {what} is missing", code="malformed")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError(f"pairing: {what} is not base64", code="malformed") from exc


def _element(text: str | None, what: str, length: int) -> bytes:
    """The peer's SPAKE2 message, which must be exactly as long as ours.

    spake2 decodes an element of any length as a little-endian number, so a short one is a valid point
    about one time in fourteen: only the length check makes every truncated message ``bad-pairing``.
    """
    data = _unb64(text, what)
    if len(data) != length:
        raise ProtocolError(f"pairing: {what} has the wrong length", code="bad-pairing")
    return data


class PairingKey:
    """The shared key of one paired session and the MACs derived from it."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __repr__(self) -> str:  # never show the key
        return "PairingKey(<secret>)"

    def _mac(self, label: bytes, *parts: bytes) -> str:
        h = hmac.new(self._key, label, hashlib.sha256)
        for part in parts:
            h.update(len(part).to_bytes(4, "big"))
            h.update(part)
        return _b64(h.digest())

    def _verify(self, expected: str, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(expected.encode(), given.encode())

    # sender → receiver
    def sender_confirm(self) -> str:
        return self._mac(b"sender-confirm")

    def sender_binding(self, tls_fingerprint: str) -> str:
        return self._mac(b"sender-tls", tls_fingerprint.encode())

    # receiver → sender
    def receiver_confirm(self, tls_fingerprint: str) -> str:
        return self._mac(b"receiver-tls", tls_fingerprint.encode())

    def verify_receiver_confirm(self, confirm: str | None, tls_fingerprint: str) -> None:
        if not self._verify(self.receiver_confirm(tls_fingerprint), confirm):
            raise IdentityMismatch(
                "The receiver's TLS certificate is not the one the PIN vouches for: someone may be between "
                "you and the room display. The share was stopped."
            )

    def offer_mac(self, offer_sdp: str) -> str:
        return self._mac(b"offer-dtls", fingerprint_digest_input(offer_sdp))

    def verify_offer_mac(self, offer_sdp: str, mac: str | None) -> None:
        if not self._verify(self.offer_mac(offer_sdp), mac):
            raise IdentityMismatch("the offer's DTLS fingerprint does not match the paired sender")

    def answer_mac(self, offer_sdp: str, answer_sdp: str) -> str:
        return self._mac(
            b"answer-dtls", fingerprint_digest_input(offer_sdp), fingerprint_digest_input(answer_sdp)
        )

    def verify_answer_mac(self, offer_sdp: str, answer_sdp: str, mac: str | None) -> None:
        if not self._verify(self.answer_mac(offer_sdp, answer_sdp), mac):
            raise IdentityMismatch(
                "The receiver's media fingerprint is not the one the PIN vouches for: someone may be between "
                "you and the room display. The share was stopped."
            )


class SenderPairing:
    """The sender's half: start with the PIN, finish with the receiver's SPAKE2 message."""

    def __init__(self, pin: str) -> None:
        self._spake = SPAKE2_A(pin.encode(), idA=_ID_SENDER, idB=_ID_RECEIVER)
        self._message = self._spake.start()

    def finish(self, receiver_spake: str | None, tls_fingerprint: str) -> tuple[Pair, PairingKey]:
        """Return the ``pair`` message to send and the session key."""
        try:
            element = _element(receiver_spake, "the receiver's SPAKE2 message", len(self._message))
            key = PairingKey(self._spake.finish(element))
        except _BAD_ELEMENT as exc:
            raise ProtocolError(
                "pairing: the receiver's SPAKE2 message is invalid", code="bad-pairing"
            ) from exc
        pair = Pair(
            spake=_b64(self._message),
            confirm=key.sender_confirm(),
            binding=key.sender_binding(tls_fingerprint),
        )
        return pair, key


class ReceiverPairing:
    """The receiver's half: its SPAKE2 message goes in the challenge; ``verify`` checks the sender's pair."""

    def __init__(self, pin: str) -> None:
        self._spake = SPAKE2_B(pin.encode(), idA=_ID_SENDER, idB=_ID_RECEIVER)
        start = self._spake.start()
        self._length = len(start)
        self.message = _b64(start)

    def verify(self, pair: Pair, tls_fingerprint: str) -> PairingKey:
        """Return the session key, or raise :class:`WrongPin` / :class:`IdentityMismatch`."""
        try:
            element = _element(pair.spake, "the sender's SPAKE2 message", self._length)
            key = PairingKey(self._spake.finish(element))
        except _BAD_ELEMENT as exc:
            raise ProtocolError(
                "pairing: the sender's SPAKE2 message is invalid", code="bad-pairing"
            ) from exc
        if not key._verify(key.sender_confirm(), pair.confirm):
            raise WrongPin()
        if not key._verify(key.sender_binding(tls_fingerprint), pair.binding):
            raise IdentityMismatch(
                "the sender saw another TLS certificate than ours: someone may be in the middle"
            )
        return key
