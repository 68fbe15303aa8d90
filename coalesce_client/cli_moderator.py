"""``coalesce share --moderator`` at a terminal: who wants to share, the room as it changes, typed commands.

Lines are read from standard input in a thread of their own (a blocking read; the thread is a daemon,
so Ctrl-C never waits for Enter) and handed to the event loop, which carries them out: ``yes``/``no``
answer the oldest sender waiting to share, ``spotlight 2`` and the others steer the room
(:mod:`~coalesce_client.models.room_commands`). Standard input may be a pipe as well as a terminal; once
it ends, senders who ask to share are turned away, since nobody could answer.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sys
import threading

from coalesce_client.models.room_commands import HELP, Answer, ShowRoom, Steer, describe_room, parse_command
from coalesce_client.services.share import Share
from coalesce_common.errors import ProtocolError
from coalesce_common.protocol import RoomState


def say(text: str) -> None:
    print(text, flush=True)


class TerminalModerator:
    """Answers join requests (:meth:`ask`, the share's ``on_join_request``) and steers the room."""

    def __init__(self) -> None:
        self._pending: collections.deque[asyncio.Future[bool]] = collections.deque()
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._ended = False  # standard input has ended: nobody can answer
        self._said = ""
        self._task: asyncio.Task[None] | None = None

    async def ask(self, sender_name: str) -> bool:
        if self._ended:
            say(f"{sender_name} wants to share: turned away, since no more answers can be typed here.")
            return False
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append(answer)
        say(f"{sender_name} wants to share. Type yes to let them in, or no to turn them away.")
        try:
            return await answer
        finally:
            with contextlib.suppress(ValueError):
                self._pending.remove(answer)

    def start(self, share: Share) -> None:
        """Begin reading commands for ``share`` (running, as the room's moderator)."""
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._read, args=(loop,), name="moderator-input", daemon=True).start()
        say(f"You are the moderator of {share.receiver_name}. {HELP}")
        share.watch_room(lambda room: self._show(share, room), say)
        self._task = asyncio.ensure_future(self._obey(share))

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _read(self, loop: asyncio.AbstractEventLoop) -> None:
        for line in sys.stdin:
            if not self._hand_over(loop, line):
                return
        self._hand_over(loop, None)

    def _hand_over(self, loop: asyncio.AbstractEventLoop, line: str | None) -> bool:
        try:
            loop.call_soon_threadsafe(self._lines.put_nowait, line)
        except RuntimeError:  # the loop has closed: the CLI is exiting
            return False
        return True

    async def _obey(self, share: Share) -> None:
        while (line := await self._lines.get()) is not None:
            command = parse_command(line)
            if isinstance(command, str):
                say(command)
            elif isinstance(command, Answer):
                self._answer(command.approve)
            elif isinstance(command, ShowRoom):
                say(describe_room(share.receiver_name, share.room or RoomState()))
            elif isinstance(command, Steer):
                try:
                    await share.control_room(command.command, command.tile, command.other)
                except ProtocolError:
                    say("The share has ended: there is no room to steer.")
        self._ended = True
        while self._pending:
            self._pending.popleft().set_result(False)

    def _answer(self, approve: bool) -> None:
        while self._pending and self._pending[0].done():
            self._pending.popleft()
        if not self._pending:
            say("Nobody is waiting to share.")
            return
        self._pending.popleft().set_result(approve)

    def _show(self, share: Share, room: RoomState) -> None:
        line = describe_room(share.receiver_name, room)
        if line != self._said:
            self._said = line
            say(line)
