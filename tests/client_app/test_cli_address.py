"""``coalesce share --to``: addresses as the room display shows them, and a clear usage error otherwise."""

from __future__ import annotations

import pytest

from coalesce_client.cli import DEFAULT_PORT, build_parser, parse_host_port


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("192.168.1.20:8443", ("192.168.1.20", 8443)),
        ("room.local", ("room.local", DEFAULT_PORT)),
        ("[fd00::7]:8443", ("fd00::7", 8443)),
        ("[fd00::7]", ("fd00::7", DEFAULT_PORT)),
    ],
)
def test_addresses_the_room_display_shows_are_understood(text: str, address: tuple[str, int]) -> None:
    assert parse_host_port(text) == address


@pytest.mark.parametrize("text", ["127.0.0.1:", ":8443", "host:port", "host:70000", "[fd00::7]:x"])
def test_a_broken_address_is_a_usage_error_in_words(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["share", "--to", text])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "is not an address: give the host (and :port) the room display shows" in err
    assert "Traceback" not in err and "ValueError" not in err
