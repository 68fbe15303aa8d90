"""A moderator's view of the room and its commands: what ``room`` tells it, what ``room-control`` does.

Tiles are named by the numbers the room shows on them (1-4 by arrival), so a moderator's "spotlight 2"
means what the room's key 2 does. A command that names no tile on screen is refused with a sentence the
moderator's app can show; the share goes on.
"""

from __future__ import annotations

from coalesce_common.errors import ControlRefused
from coalesce_common.protocol import RoomCommand, RoomControl, RoomState
from coalesce_common.protocol.messages import NAME_LIMIT
from coalesce_receiver.models.room import RoomActions, RoomModel

MAX_WAITING_LISTED = 16
"""Waiting senders a ``room`` message lists (the oldest); more wait, but a moderator's list stops there."""


def room_state(model: RoomModel) -> RoomState:
    """The room as a moderator steers it: tiles by number, the spotlight, who waits to be let in."""
    shown = model.shown_shares
    waiting = model.join_requests[:MAX_WAITING_LISTED]
    spotlit = model.number_of(model.spotlit) if model.spotlit is not None else None
    heard = model.number_of(audible) if (audible := model.audible) is not None else None
    return RoomState(
        names=tuple(share.sender_name[:NAME_LIMIT] for share in shown),
        paused=tuple(share.paused for share in shown),
        sound=tuple(share.sound for share in shown),
        spotlight=spotlit or 0,
        locked=model.locked,
        waiting=tuple(request.sender_name[:NAME_LIMIT] for request in waiting),
        waiting_ids=tuple(request.share_id for request in waiting),
        queued=len(model.shares) - len(shown),
        audible=heard or 0,
        muted=model.sound_muted,
    )


def carry_out(model: RoomModel, actions: RoomActions, control: RoomControl) -> None:
    """Do what a moderator asked, as the room's keys would; raise :class:`ControlRefused` if it names a
    tile the room does not show."""
    if control.command is RoomCommand.GRID:
        actions.spotlight(None)
        return
    if control.command in (RoomCommand.MUTE, RoomCommand.UNMUTE):
        actions.mute_sound(control.command is RoomCommand.MUTE)
        return
    if control.command is RoomCommand.LISTEN and control.tile == 0:
        actions.listen_to(None)
        return
    share_id = _shown(model, control.tile)
    if control.command is RoomCommand.SPOTLIGHT:
        actions.spotlight(share_id)
    elif control.command is RoomCommand.SWAP:
        actions.swap(share_id, _shown(model, control.other))
    elif control.command is RoomCommand.LISTEN:
        actions.listen_to(share_id)
    else:
        actions.drop_share(share_id)


def _shown(model: RoomModel, number: int) -> str:
    share = model.share_numbered(number)
    if share is None:
        refused = ControlRefused(f"the room shows no share {number}", code="no-such-tile")
        refused.message_type = RoomControl.TYPE
        raise refused
    return share.share_id
