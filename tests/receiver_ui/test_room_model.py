"""The room's layout state (no Qt): numbers by arrival, places, the spotlight, the camera corner, whose
sound is heard; and a moderator's commands on it."""

from __future__ import annotations

import pytest

from coalesce_common.errors import ControlRefused
from coalesce_common.protocol import RoomCommand, RoomControl
from coalesce_receiver.models.room import PipCorner, RoomModel, ShareView
from coalesce_receiver.services.room_control import carry_out, room_state
from tests.receiver_ui.conftest import RecordingActions


def room(*share_ids: str) -> tuple[RoomModel, list[int]]:
    model = RoomModel("Aurora", pin_required=False)
    changes: list[int] = []
    model.subscribe(lambda: changes.append(1))
    for share_id in share_ids:
        model.add_share(ShareView(share_id, share_id.upper()))
    changes.clear()
    return model, changes


def placed(model: RoomModel) -> list[str]:
    return [share.share_id for share in model.placed_shares]


def test_numbers_follow_arrival_and_places_follow_swaps() -> None:
    model, changes = room("a", "b", "c")
    assert [model.number_of(s) for s in "abc"] == [1, 2, 3]

    assert model.swap("c", "a")
    assert placed(model) == ["c", "b", "a"]
    assert [model.number_of(s) for s in "abc"] == [1, 2, 3], "numbers stay with their shares"
    assert model.share_numbered(3) is not None and model.share_numbered(3).share_id == "c"  # type: ignore[union-attr]
    assert changes == [1]

    model.remove_share("b")
    assert placed(model) == ["c", "a"] and model.number_of("c") == 2  # share 3 moved up to 2
    model.add_share(ShareView("d", "D"))
    assert placed(model) == ["c", "a", "d"]


def test_the_fifth_share_takes_the_first_free_place() -> None:
    model, _ = room("a", "b", "c", "d", "e")
    assert model.number_of("e") is None and not model.swap("e", "a")
    model.swap("a", "d")
    model.remove_share("b")
    assert placed(model) == ["d", "c", "a", "e"]


def test_spotlight_rules() -> None:
    model, changes = room("a", "b")
    assert model.set_spotlight("b")
    assert placed(model) == ["b", "a"] and changes == [1]
    assert model.set_spotlight("b") and changes == [1], "no change, no notice"
    assert not model.set_spotlight("nobody") and model.spotlit == "b"
    assert model.set_spotlight(None) and placed(model) == ["a", "b"]

    model.set_spotlight("a")
    model.remove_share("a")
    assert model.spotlit is None


def test_the_camera_inset_goes_round_the_corners() -> None:
    model, changes = room("a")
    corners = []
    for _ in range(4):
        model.move_pip()
        corners.append(model.pip_corner)
    assert corners == [PipCorner.BOTTOM_LEFT, PipCorner.TOP_LEFT, PipCorner.TOP_RIGHT, PipCorner.BOTTOM_RIGHT]
    assert len(changes) == 4


def test_a_moderator_chooses_whose_sound_is_heard_and_mutes_the_room() -> None:
    model, _ = room("a", "b", "c")
    actions = RecordingActions(model)
    model.set_sound("b", True)
    model.set_sound("c", True)
    assert room_state(model).audible == 2  # the first tile that shares sound

    carry_out(model, actions, RoomControl(RoomCommand.LISTEN, tile=3))
    assert model.audible == "c" and room_state(model).audible == 3
    carry_out(model, actions, RoomControl(RoomCommand.MUTE))
    state = room_state(model)
    assert model.audible is None and state.muted and state.audible == 0
    carry_out(model, actions, RoomControl(RoomCommand.UNMUTE))
    assert model.audible == "c"
    carry_out(model, actions, RoomControl(RoomCommand.LISTEN))  # no tile: the spotlight decides again
    assert model.chosen_sound is None and model.audible == "b"
    with pytest.raises(ControlRefused, match="no share 4"):
        carry_out(model, actions, RoomControl(RoomCommand.LISTEN, tile=4))
    assert model.listen_to("zz") is False and model.chosen_sound is None  # a share not on screen
