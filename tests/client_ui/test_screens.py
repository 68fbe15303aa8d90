"""Sharing a real X screen (the session's Xvfb): thumbnails of what it shows, then screen plus camera."""

from __future__ import annotations

import asyncio

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from coalesce_client.models.session import SharePhase
from tests.client_ui.conftest import WAIT_MS, ReceiverFactory, Runner, SenderFactory
from tests.client_ui.test_flows import type_address, wait_sharing
from tests.conftest import PatternWindowFactory, XServer


def close_to(actual: tuple[int, ...], expected: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(int(a) - int(e)) <= tolerance for a, e in zip(actual, expected, strict=True))


def test_thumbnails_show_the_screen_and_the_camera_joins_the_share(
    xvfb: XServer,
    pattern_window: PatternWindowFactory,
    make_receiver: ReceiverFactory,
    make_sender: SenderFactory,
    qtbot: QtBot,
    run: Runner,
) -> None:
    pattern = run(asyncio.to_thread(pattern_window))
    receiver = make_receiver()
    app = make_sender(display=xvfb.display)
    type_address(qtbot, app, f"127.0.0.1:{receiver.port}")
    wait_sharing(qtbot, app)
    qtbot.waitUntil(lambda: [list(s.tracks) for s in receiver.model.shares] == [["screen"]], timeout=WAIT_MS)

    [monitor] = app.models.media.monitors
    assert (monitor.width, monitor.height) == (xvfb.width, xvfb.height)
    assert monitor.thumbnail is not None
    height, width = monitor.thumbnail.shape[:2]
    for quadrant, (x, y) in pattern.centres().items():
        pixel = monitor.thumbnail[y * height // xvfb.height, x * width // xvfb.width]
        assert close_to(tuple(pixel), pattern.quadrants[quadrant]), (quadrant, pixel)
    page = app.window.sharing_page
    button = page.screen_group.button(1)
    assert (
        button is not None
        and button.isChecked()
        and button.text() == "Screen 1 (1280\N{MULTIPLICATION SIGN}720)"
    )
    assert not page.no_screen_button.isEnabled()  # the screen is all that is shared: keep it
    qtbot.waitUntil(lambda: "1280\N{MULTIPLICATION SIGN}720" in page.status.text(), timeout=WAIT_MS)

    page.camera_check.setFocus()
    qtbot.keyClick(page.camera_check, Qt.Key.Key_Space)
    first = receiver.model.shares[0].share_id
    qtbot.waitUntil(
        lambda: [sorted(s.tracks) for s in receiver.model.shares] == [["camera", "screen"]], timeout=WAIT_MS
    )
    assert receiver.model.shares[0].share_id == first  # the same share: the camera joined it
    assert app.models.session.phase is SharePhase.SHARING
    assert page.no_screen_button.isEnabled()
