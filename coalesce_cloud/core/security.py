"""Secrets the cloud hands out, and how it checks them.

- Device ids: 24 lower-case base32 characters (120 bits), so they are also valid, case-stable XMPP
  localparts (JIDs fold case; ``token_urlsafe`` ids could collide once folded).
- Device tokens: ``<device_id>.<secret>``; only SHA-256 of the secret is stored.
- Enrollment codes: 16 characters from a 32-symbol alphabet without look-alikes (80 bits), shown as
  ``ABCD-EFGH-JKMN-PQRS``; case, spaces and dashes are ignored when typed back. Stored as SHA-256.
- Meeting ids: 10 random decimal digits (never sequential).
- XMPP passwords: 32 random URL-safe bytes, registered in ejabberd and never stored here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from coalesce_cloud.models import DEVICE_ID_LENGTH, MEETING_ID_LENGTH

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no I, L, O, 0, 1
CODE_LENGTH = 16
CODE_GROUP = 4


def new_device_id() -> str:
    return base64.b32encode(secrets.token_bytes(15)).decode("ascii").lower()[:DEVICE_ID_LENGTH]


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_xmpp_password() -> str:
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def digest_matches(secret: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(secret), stored_digest)


def split_device_token(token: str) -> tuple[str, str] | None:
    """``(device_id, secret)`` from a bearer token, or None if it is not shaped like one."""
    device_id, dot, secret = token.partition(".")
    if not dot or len(device_id) != DEVICE_ID_LENGTH or not secret or len(secret) > 128:
        return None
    return device_id, secret


def new_enrollment_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i : i + CODE_GROUP] for i in range(0, CODE_LENGTH, CODE_GROUP))


def normalise_enrollment_code(text: str) -> str:
    return "".join(c for c in text.upper() if c not in " -\t")


def new_meeting_id() -> str:
    return f"{secrets.randbelow(10**MEETING_ID_LENGTH):0{MEETING_ID_LENGTH}d}"


def normalise_meeting_id(text: str) -> str | None:
    """The 10 digits of a typed meeting id (spaces and dashes ignored), or None if it cannot be one."""
    cleaned = "".join(c for c in text if c not in " -")
    if len(cleaned) != MEETING_ID_LENGTH or not cleaned.isascii() or not cleaned.isdigit():
        return None
    return cleaned


def admin_token_matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
