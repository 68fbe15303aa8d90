"""The sender's models on their own: parsing destinations, the receivers list, settings files, proxies."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from coalesce_client.models.app_settings import AppSettings, AppSettingsModel, load_app_settings
from coalesce_client.models.destination import Destination, DestinationError, parse_destination
from coalesce_client.models.proxy_form import ProxyForm
from coalesce_client.models.receivers import ReceiverList
from coalesce_client.models.session import (
    JoinRequest,
    LinkStatus,
    MediaChoice,
    PinRequest,
    SharePhase,
    ShareSession,
)
from coalesce_common.discovery import ReceiverInfo
from coalesce_common.net.proxy import ProxyConfig, ProxySettingsError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.168.1.40:8443", Destination(host="192.168.1.40", port=8443)),
        (" room.example.com ", Destination(host="room.example.com", port=443)),
        ("[fd00::7]:8443", Destination(host="fd00::7", port=8443)),
        ("fd00::7", Destination(host="fd00::7", port=443)),
        ("123 456 7890", Destination(meeting_id="1234567890")),
        ("123-456-7890", Destination(meeting_id="1234567890")),
    ],
)
def test_what_people_type_is_understood(text: str, expected: Destination) -> None:
    assert parse_destination(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "Type the address or the meeting ID"),
        ("1234", "too short for a meeting ID"),
        ("room 4", "is not an address or a meeting ID"),
        ("host:99999", "from 1 to 65535"),
        ("host:http", "from 1 to 65535"),
    ],
)
def test_what_cannot_be_understood_is_explained(text: str, says: str) -> None:
    with pytest.raises(DestinationError, match=says):
        parse_destination(text)


def test_destinations_label_and_round_trip() -> None:
    lan = Destination(host="fd00::7", port=8443, name="Aurora", fingerprint="AB:CD")
    assert lan.label == "Aurora" and lan.address == "[fd00::7]:8443"
    assert Destination.from_json(lan.to_json()) == lan
    meeting = Destination(meeting_id="1234567890")
    assert meeting.label == "meeting 123 456 7890"
    assert Destination.from_json(meeting.to_json()) == meeting
    assert Destination.from_json({"host": "x", "port": "nope"}) is None
    assert Destination.from_json(["not", "a", "dict"]) is None


def info(name: str, receiver_id: str, port: int = 8443) -> ReceiverInfo:
    return ReceiverInfo(name, receiver_id, ("10.0.0.5",), port, True, "AB")


def test_receivers_are_listed_from_found_until_lost_sorted_by_name() -> None:
    receivers = ReceiverList()
    changes: list[list[str]] = []
    receivers.subscribe(lambda: changes.append([r.name for r in receivers.receivers]))
    assert receivers.searching
    receivers.found("Zulu._coalesce._tcp.local.", info("Zulu", "z"))
    receivers.found("alpha._coalesce._tcp.local.", info("alpha", "a"))
    receivers.found("alpha._coalesce._tcp.local.", info("alpha", "a"))  # the same again: no change
    assert [r.name for r in receivers.receivers] == ["alpha", "Zulu"] and receivers.searching
    receivers.found("alpha._coalesce._tcp.local.", info("alpha", "a", port=9443))  # it moved
    receivers.lost("Zulu._coalesce._tcp.local.")
    receivers.lost("Zulu._coalesce._tcp.local.")  # lost twice: one change
    assert [(r.name, r.port) for r in receivers.receivers] == [("alpha", 9443)]
    assert changes == [["Zulu"], ["alpha", "Zulu"], ["alpha", "Zulu"], ["alpha"]]
    receivers.searched()
    assert not receivers.searching and len(changes) == 5


def test_a_discovery_problem_is_said_until_discovery_works_again() -> None:
    receivers = ReceiverList()
    receivers.found("a", info("alpha", "a"))
    receivers.set_problem("no network")
    assert receivers.problem == "no network" and not receivers.searching
    receivers.restart()
    assert receivers.problem is None and receivers.searching and receivers.receivers == []
    receivers.set_problem("no network")
    receivers.found("a", info("alpha", "a"))
    assert receivers.problem is None and [r.name for r in receivers.receivers] == ["alpha"]


def test_session_phases_and_messages() -> None:
    session = ShareSession()
    seen: list[SharePhase] = []
    session.subscribe(lambda: seen.append(session.phase))
    session.begin(Destination(host="h", port=1, name="Room"))
    session.ask_pin(PinRequest("Room"))
    session.pin_answered()
    session.started("Room 1")
    assert session.sharing and session.receiver_name == "Room 1"
    session.ended(error="boom")
    assert not session.active and session.error == "boom"
    assert seen == [
        SharePhase.CONNECTING,
        SharePhase.WAITING_FOR_PIN,
        SharePhase.CONNECTING,
        SharePhase.SHARING,
        SharePhase.IDLE,
    ]


def test_join_requests_queue_until_answered_or_withdrawn() -> None:
    loop = asyncio.new_event_loop()
    try:
        session = ShareSession()
        changes: list[list[str]] = []
        session.subscribe(lambda: changes.append([r.sender_name for r in session.join_requests]))
        session.set_moderator(True)
        session.set_moderator(True)  # no change, no notice
        assert session.moderator and changes == [[]]
        ada, bob, other_ada = (JoinRequest(name, loop.create_future()) for name in ("Ada", "Bob", "Ada"))
        for request in (ada, bob, other_ada):
            session.ask_join(request)
        assert session.join_requests == [ada, bob, other_ada]  # two Adas are two requests
        session.answer_join(bob, True)
        assert bob.answer.result() is True and session.join_requests == [ada, other_ada]
        session.answer_join(bob, False)  # answered already: ignored
        session.withdraw_join(bob)
        assert bob.answer.result() is True
        session.withdraw_join(ada)  # timed out: dropped unanswered
        assert ada.answer.cancelled() and session.join_requests == [other_ada]
        session.ended()  # the share they were asked through is gone
        assert other_ada.answer.cancelled() and session.join_requests == []
        assert session.moderator  # the choice outlives the share
        assert changes[:5] == [[], ["Ada"], ["Ada", "Bob"], ["Ada", "Bob", "Ada"], ["Ada", "Ada"]]
    finally:
        loop.close()


def test_link_status_reads_well() -> None:
    assert LinkStatus().describe() == "Measuring the connection…"
    status = LinkStatus("relayed", 1920, 1080, 29.6, 41.2, 2500)
    assert (
        status.describe()
        == "Relayed through the cloud · 1920\N{MULTIPLICATION SIGN}1080 · 30 fps · 41 ms round trip"
        " · 2.5 Mbit/s"
    )
    assert "reconnecting" in LinkStatus("relayed", reconnecting=True).describe()
    over_tls = LinkStatus(
        "relayed", relay="over TLS through the eu relay, via the proxy http://proxy.corp:3128"
    )
    assert (
        over_tls.describe() == "Relayed over TLS through the eu relay, via the proxy http://proxy.corp:3128"
    )


def test_app_settings_survive_a_round_trip_and_keep_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "coalesce" / "app.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"display_name": "Ada", "future_key": [1, 2]}))
    model = AppSettingsModel(path)
    assert model.settings.display_name == "Ada"
    model.update(media=MediaChoice(2, "0"), last_destination=Destination(meeting_id="1234567890"))
    again = load_app_settings(path)
    assert again == model.settings
    assert json.loads(path.read_text())["future_key"] == [1, 2]


async def test_app_settings_changed_on_the_loop_are_written_off_it_newest_last(tmp_path: Path) -> None:
    path = tmp_path / "coalesce" / "app.json"
    model = await asyncio.to_thread(AppSettingsModel, path)  # the app builds it before its loop runs
    changes: list[str] = []
    model.subscribe(lambda: changes.append(model.settings.display_name))
    model.update(display_name="Ada")  # on the loop: the suite's guard fails the test if this writes here
    model.update(display_name="Grace")
    assert model.settings.display_name == "Grace" and changes == ["Ada", "Grace"]  # in force at once
    await model.saved()
    assert (await asyncio.to_thread(load_app_settings, path)).display_name == "Grace"


def test_a_damaged_settings_file_gives_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.write_text("{not json")
    assert load_app_settings(path) == AppSettings(display_name=AppSettings().display_name)


def test_proxy_form_builds_the_config_save_proxy_stores() -> None:
    form = ProxyForm(
        mode="manual", kind="socks5", host="proxy.corp", port=1080, username="a@b", password="p:w"
    )
    config = form.to_config()
    assert config == ProxyConfig(mode="manual", url="socks5://a%40b:p%3Aw@proxy.corp:1080")
    assert ProxyForm.from_config(config) == form
    pac = ProxyForm(mode="pac", pac_url="http://wpad/proxy.pac", username="bob", password="pw")
    assert ProxyForm.from_config(pac.to_config()) == pac
    assert ProxyForm(mode="none").to_config() == ProxyConfig(mode="none")


@pytest.mark.parametrize(
    ("form", "says"),
    [
        (ProxyForm(mode="manual", port=3128), "host name"),
        (ProxyForm(mode="manual", host="p", port=0), "port"),
        (ProxyForm(mode="manual", host="p", port=3128, password="x"), "user name"),
        (ProxyForm(mode="pac"), "PAC"),
    ],
)
def test_proxy_form_errors_name_the_field(form: ProxyForm, says: str) -> None:
    with pytest.raises(ProxySettingsError, match=says):
        form.to_config()
