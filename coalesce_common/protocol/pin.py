"""The room PIN's rule: 4 to 12 ASCII digits, checked the same way at the box, in its CLI and in both apps.

ASCII only on purpose: ``str.isdigit`` also accepts ``²`` and Arabic-Indic digits, which a person would
type differently on the sender than the box shows, and SPAKE2 keys on the exact bytes.
"""

from __future__ import annotations

import re
import secrets

MIN_DIGITS = 4
MAX_DIGITS = 12
RULE = f"{MIN_DIGITS} to {MAX_DIGITS} digits"
"""The rule in words, for prompts and error messages ("a PIN is 4 to 12 digits")."""

_PIN = re.compile(rf"[0-9]{{{MIN_DIGITS},{MAX_DIGITS}}}")


def is_valid_pin(pin: str) -> bool:
    return _PIN.fullmatch(pin) is not None


def random_pin(digits: int) -> str:
    """A fresh PIN of ``digits`` digits from the system's CSPRNG."""
    if not MIN_DIGITS <= digits <= MAX_DIGITS:
        raise ValueError(f"a PIN is {RULE}, not {digits}")
    return "".join(secrets.choice("0123456789") for _ in range(digits))
