"""The few facts we read from SDP text: DTLS fingerprints and media section ids."""

from __future__ import annotations

import re

from coalesce_common.errors import ProtocolError

_FINGERPRINT = re.compile(r"^a=fingerprint:(\S+) ([0-9A-Fa-f:]+)\s*$", re.MULTILINE)


def dtls_fingerprints(sdp: str) -> list[str]:
    """Return the sorted, normalised ``algorithm value`` DTLS fingerprints in ``sdp``.

    Raises :class:`ProtocolError` when there is none: a session without DTLS is refused.
    """
    found = sorted({f"{alg.lower()} {value.upper()}" for alg, value in _FINGERPRINT.findall(sdp)})
    if not found:
        raise ProtocolError("the SDP carries no DTLS fingerprint", code="bad-sdp")
    return found


def fingerprint_digest_input(sdp: str) -> bytes:
    """The bytes of ``sdp``'s DTLS fingerprints that pairing MACs cover."""
    return "\n".join(dtls_fingerprints(sdp)).encode()
