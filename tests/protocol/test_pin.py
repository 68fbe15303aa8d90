"""The PIN rule every part of Coalesce applies: 4 to 12 ASCII digits."""

from __future__ import annotations

import pytest

from coalesce_common.protocol.pin import MAX_DIGITS, MIN_DIGITS, RULE, is_valid_pin, random_pin


@pytest.mark.parametrize("pin", ["0000", "4821", "123456789012"])
def test_four_to_twelve_ascii_digits_are_a_pin(pin: str) -> None:
    assert is_valid_pin(pin)


@pytest.mark.parametrize(
    "pin",
    [
        "",
        "482",
        "1234567890123",
        "48 21",
        "48a1",
        "4821\n",
        "\u0664\u0668\u0662\u0661",
        "48\u00b221",
        "-4821",
    ],
)
def test_anything_else_is_refused(pin: str) -> None:
    assert not is_valid_pin(pin)


def test_random_pins_keep_their_length_and_the_rule() -> None:
    pins = {random_pin(6) for _ in range(50)}
    assert all(len(pin) == 6 and is_valid_pin(pin) for pin in pins)
    assert len(pins) > 1
    with pytest.raises(ValueError, match=RULE):
        random_pin(MAX_DIGITS + 1)
    assert RULE == f"{MIN_DIGITS} to {MAX_DIGITS} digits" == "4 to 12 digits"
