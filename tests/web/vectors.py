"""The pairing test vectors the browser's JS is checked against, made by the Python side (``spake2``).

``python -m tests.web.vectors`` writes ``coalesce_cloud/web/test/vectors.json``; ``tests/web`` checks that the
file is still what the Python side makes, and that the JS side (under Node) makes the same from it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from spake2 import SPAKE2_A, SPAKE2_B

from coalesce_common.protocol.pairing import _ID_RECEIVER, _ID_SENDER, PairingKey
from coalesce_common.signaling.xmpp import channel_binding

VECTORS = Path(__file__).resolve().parents[2] / "coalesce_cloud" / "web" / "test" / "vectors.json"
OFFER = "v=0\r\na=fingerprint:sha-256 ab:cd:EF:01\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
ANSWER = "v=0\r\na=fingerprint:SHA-256 12:34:56:78\r\na=fingerprint:sha-1 99:88\r\n"
PINS = ["4821", "000000", "123456789", "é"]


def entropy(label: str) -> bytes:
    """64 fixed bytes: what a SPAKE2 side turns into its secret scalar."""
    return hashlib.sha512(label.encode()).digest()


def vector(pin: str) -> dict[str, Any]:
    seed_a, seed_b = entropy(f"{pin}/A"), entropy(f"{pin}/B")
    side_a = SPAKE2_A(pin.encode(), idA=_ID_SENDER, idB=_ID_RECEIVER, entropy_f=lambda n: seed_a[:n])
    side_b = SPAKE2_B(pin.encode(), idA=_ID_SENDER, idB=_ID_RECEIVER, entropy_f=lambda n: seed_b[:n])
    message_a, message_b = side_a.start(), side_b.start()
    key_a, key_b = side_a.finish(message_b), side_b.finish(message_a)
    assert key_a == key_b
    key = PairingKey(key_a)
    binding = channel_binding("laptop@coalesce.test/web-1", "box@coalesce.test")
    return {
        "pin": pin,
        "entropy_a": seed_a.hex(),
        "entropy_b": seed_b.hex(),
        "message_a": message_a.hex(),
        "message_b": message_b.hex(),
        "key": key_a.hex(),
        "binding": binding,
        "sender_confirm": key.sender_confirm(),
        "sender_binding": key.sender_binding(binding),
        "receiver_confirm": key.receiver_confirm(binding),
        "offer": OFFER,
        "answer": ANSWER,
        "offer_mac": key.offer_mac(OFFER),
        "answer_mac": key.answer_mac(OFFER, ANSWER),
    }


def vectors() -> str:
    return json.dumps({"id_sender": _ID_SENDER.decode(), "id_receiver": _ID_RECEIVER.decode(),
                       "vectors": [vector(pin) for pin in PINS]}, indent=2) + "\n"  # fmt: skip


if __name__ == "__main__":
    VECTORS.write_text(vectors())
    print(f"wrote {VECTORS}")
