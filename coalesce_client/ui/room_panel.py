"""The moderator's view of the room display: its tiles by number, each with Spotlight, Swap, Stop and Listen
(hear that share's sound), and the room's mute.

Shown on the sharing page only while sharing as the room's moderator, once the room has said what it
shows (``ShareSession.room``). The numbers are those on the room display's tiles, so "Spotlight" on
row 2 does what key 2 does at the room. Who waits to share is listed too; the join prompt answers them.
"""

from __future__ import annotations

from functools import partial

from PySide6.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from coalesce_client.models.session import SharePhase, ShareSession
from coalesce_client.ui.controller import SenderController
from coalesce_client.ui.widgets import message_label, show_message
from coalesce_common.protocol import RoomCommand, RoomState


class RoomPanel(QGroupBox):
    def __init__(
        self, session: ShareSession, controller: SenderController, parent: QWidget | None = None
    ) -> None:
        super().__init__("The room display", parent)
        self.setObjectName("room-panel")
        self._session = session
        self._controller = controller
        self._shown: RoomState | None = None
        self._row_widgets: list[QWidget] = []
        layout = QVBoxLayout(self)
        self.rows = QGridLayout()
        layout.addLayout(self.rows)
        self.empty = QLabel("No shares on the room display.", self)
        layout.addWidget(self.empty)
        bottom = QHBoxLayout()
        self.summary = QLabel(self)
        self.summary.setObjectName("room-summary")
        self.summary.setWordWrap(True)
        bottom.addWidget(self.summary, 1)
        self.grid_button = QPushButton("Back to &grid", self)
        self.grid_button.setObjectName("room-grid-button")
        self.grid_button.setToolTip("Show every share the same size again.")
        self.grid_button.clicked.connect(lambda: controller.control_room(RoomCommand.GRID))
        bottom.addWidget(self.grid_button)
        self.mute_button = QPushButton(self)
        self.mute_button.setObjectName("room-mute-button")
        self.mute_button.clicked.connect(self._toggle_mute)
        bottom.addWidget(self.mute_button)
        layout.addLayout(bottom)
        self.problem = message_label(self, name="room-problem")
        layout.addWidget(self.problem)
        self.hide()

    def sync(self) -> None:
        session, room = self._session, self._session.room
        visible = session.moderator and room is not None and session.phase is SharePhase.SHARING
        self.setVisible(visible)
        show_message(self.problem, session.room_problem, error=True)
        if room is None or room == self._shown:
            return
        self._shown = room
        self._rebuild(room)
        self.grid_button.setEnabled(room.spotlight != 0)
        self.mute_button.setText("Unmute the &room" if room.muted else "&Mute the room")
        self.mute_button.setToolTip(
            "Play the shared sound at the room again." if room.muted else "Play no share's sound at the room."
        )
        self.mute_button.setVisible(any(room.sound))
        parts = []
        if room.queued:
            parts.append(f"{room.queued} more connected (the room shows four)")
        if room.locked:
            parts.append("Locked: no new shares")
        if room.waiting:
            parts.append(f"Waiting to share: {', '.join(room.waiting)}")
        self.summary.setText(" · ".join(parts))

    def _toggle_mute(self) -> None:
        if self._shown is not None:
            self._controller.control_room(RoomCommand.UNMUTE if self._shown.muted else RoomCommand.MUTE)

    def _rebuild(self, room: RoomState) -> None:
        for widget in self._row_widgets:
            self.rows.removeWidget(widget)
            widget.deleteLater()
        self._row_widgets = []
        self.empty.setVisible(not room.names)
        sounds = room.sound or (False,) * len(room.names)  # a room from before sound says nothing
        for row, (name, paused, sound) in enumerate(zip(room.names, room.paused, sounds, strict=True)):
            number = row + 1
            heard = room.audible == number and not room.muted
            text = _tile_text(number, name, paused=paused, spotlit=room.spotlight == number, heard=heard)
            label = QLabel(text, self)
            label.setObjectName(f"room-tile-{number}")
            spotlight = QPushButton("Spotlight", self)
            spotlight.setObjectName(f"room-spotlight-{number}")
            spotlight.setAccessibleName(f"Spotlight {name}")
            spotlight.setEnabled(room.spotlight != number)
            spotlight.clicked.connect(partial(self._controller.control_room, RoomCommand.SPOTLIGHT, number))
            swap = QToolButton(self)
            swap.setObjectName(f"room-swap-{number}")
            swap.setText("Swap with")
            swap.setAccessibleName(f"Swap {name} with another share")
            swap.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
            menu = QMenu(swap)
            for other, other_name in enumerate(room.names, start=1):
                if other != number:
                    action = menu.addAction(f"{other} {other_name}")
                    action.setObjectName(f"room-swap-{number}-{other}")
                    action.triggered.connect(
                        partial(self._controller.control_room, RoomCommand.SWAP, number, other)
                    )
            swap.setMenu(menu)
            swap.setEnabled(len(room.names) > 1)
            stop = QPushButton("Stop", self)
            stop.setObjectName(f"room-stop-{number}")
            stop.setAccessibleName(f"Stop {name}'s share")
            stop.setToolTip(f"End {name}'s share on the room display.")
            stop.clicked.connect(partial(self._controller.control_room, RoomCommand.STOP, number))
            listen = QPushButton("Listen", self)
            listen.setObjectName(f"room-listen-{number}")
            listen.setAccessibleName(f"Hear {name}'s sound")
            listen.setToolTip(f"Play {name}'s sound at the room instead.")
            listen.setEnabled(sound and room.audible != number)
            listen.clicked.connect(partial(self._controller.control_room, RoomCommand.LISTEN, number))
            for column, widget in enumerate((label, spotlight, swap, stop, listen)):
                self.rows.addWidget(widget, row, column)
                self._row_widgets.append(widget)
        self.rows.setColumnStretch(0, 1)


def _tile_text(number: int, name: str, *, paused: bool, spotlit: bool, heard: bool) -> str:
    notes = [note for note, on in (("paused", paused), ("in the spotlight", spotlit), ("heard", heard)) if on]
    return f"{number}  {name}" + (f" ({', '.join(notes)})" if notes else "")
