"""Looking for a PIN on the wire: its plain, encoded and hashed forms, and a search that also looks inside
every base64 or hex run of the captured text.

An unsalted hash or an encoding of a PIN on the wire is as good as the PIN itself (a PIN has at most 10¹²
values), so the pairing tests assert that none of these forms shows up. A KDF with a random salt would not
be found by searching; SPAKE2 is what rules those out, and the freshness tests check that its messages are
random.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import re
from collections.abc import Iterable

_DIGESTS = (
    "md5",
    "sha1",
    "sha224",
    "sha256",
    "sha384",
    "sha512",
    "sha3_256",
    "sha3_512",
    "blake2b",
    "blake2s",
)
_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/_-]{8,}")
_HEX_RUN = re.compile(rb"(?:[0-9A-Fa-f]{2}[:-]?){4,}")


def _raw_forms(pin: str) -> dict[str, bytes]:
    forms = {
        "utf-8": pin.encode(),
        "utf-16-le": pin.encode("utf-16-le"),
        "utf-16-be": pin.encode("utf-16-be"),
        "utf-32-le": pin.encode("utf-32-le"),
    }
    # A digest is searched by its first 8 bytes: that finds it whole, and cut short to a 16-digit hex id too.
    for name in _DIGESTS:
        forms[name] = hashlib.new(name, pin.encode()).digest()[:8]
    forms["sha256(sha256)"] = hashlib.sha256(hashlib.sha256(pin.encode()).digest()).digest()[:8]
    return forms


def _aligned(data: bytes) -> bytes:
    """The whole 3-byte groups of ``data``: their base64 is the same wherever ``data`` starts a blob."""
    return data[: len(data) - len(data) % 3]


def pin_traces(pin: str) -> dict[str, bytes]:
    """Every form of ``pin`` the search knows, by name: raw, hex (both cases), base64, base64url, base32."""
    traces: dict[str, bytes] = {}
    for name, data in _raw_forms(pin).items():
        traces[name] = data
        traces[f"{name} hex"] = data.hex().encode()
        traces[f"{name} HEX"] = data.hex().upper().encode()
        traces[f"{name} base64"] = base64.b64encode(_aligned(data))
        traces[f"{name} base64url"] = base64.urlsafe_b64encode(_aligned(data))
        traces[f"{name} base32"] = base64.b32encode(data[: len(data) - len(data) % 5])
    return traces


def _views(data: bytes) -> list[bytes]:
    """``data`` itself, and the bytes behind each base64 or hex run in it (a PIN may hide inside a blob)."""
    views = [data]
    for match in _BASE64_RUN.finditer(data):
        run = match.group().replace(b"-", b"+").replace(b"_", b"/")
        run = run[: len(run) - len(run) % 4] if len(run) % 4 == 1 else run
        with contextlib.suppress(binascii.Error, ValueError):
            views.append(base64.b64decode(run + b"=" * (-len(run) % 4)))
    for match in _HEX_RUN.finditer(data):
        digits = re.sub(rb"[:-]", b"", match.group())
        views.append(bytes.fromhex(digits[: len(digits) - len(digits) % 2].decode()))
    return views


def leaks(pin: str, wire: Iterable[str | bytes]) -> list[str]:
    """The names of the forms of ``pin`` found anywhere in ``wire``; empty when the PIN did not leak."""
    views = [view for item in wire for view in _views(item.encode() if isinstance(item, str) else item)]
    return [name for name, trace in pin_traces(pin).items() if any(trace in view for view in views)]
