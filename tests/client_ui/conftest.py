"""Fixtures for the sender app's tests: offscreen Qt on a qasync loop, real receivers on loopback.

* The Qt platform is ``offscreen``, chosen through pytest-qt's ``qapp_args`` as the receiver's UI tests do,
  so neither other tests nor subprocesses inherit it.
* ``qloop`` is a qasync loop marked running for the whole test (``already_running=True``): Qt events and
  asyncio callbacks are both served while the test waits with ``qtbot.waitUntil``, exactly as in the app,
  where the loop is ``QApplication.exec()``. :func:`run` drives a coroutine to its end that way.
* ``make_receiver`` starts real receivers (TLS signaling, SPAKE2, aiortc) on 127.0.0.1 on that loop.
* ``make_sender`` builds the whole app (models, controller, window) with short timings, no mDNS unless
  asked, a video file as the only camera and, unless given a display, no screen to capture (offscreen Qt
  has no X screen).
* Every test gets its own ``XDG_CONFIG_HOME``, ``XDG_DATA_HOME`` and ``XDG_CACHE_HOME`` and a plaintext
  keyring (keyrings.alt) inside them, so settings and passwords never touch the developer's
  (``isolated_home``, shared with the Qt-free tests of ``tests/client_app``).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import qasync
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from coalesce_client.app import SenderConfig, SenderServices
from coalesce_client.models.media import Camera
from coalesce_client.services.devices import grab_monitors
from coalesce_client.ui.app import SenderApp
from coalesce_common.media.ice import reset_host_addresses_policy, set_host_addresses_policy
from coalesce_receiver.services.receiver import Receiver, ReceiverConfig
from coalesce_receiver.services.throttle import PinThrottle
from tests.client_app.conftest import isolated_home, no_screen  # noqa: F401 - an autouse fixture, a helper
from tests.e2e.conftest import video_file  # noqa: F401 - a fixture, used by this folder's tests

T = TypeVar("T")
PIN = "4821"
SENDER_NAME = "Ada's laptop"
WAIT_MS = 20_000
"""The longest a test waits for a share to connect or end (real TLS, SPAKE2, ICE and DTLS on loopback)."""


@pytest.fixture(scope="session")
def qapp_args(pytestconfig: pytest.Config) -> list[str]:
    args = [str(pytestconfig.getini("qt_qapp_name"))]
    if not os.environ.get("QT_QPA_PLATFORM"):
        args += ["-platform", "offscreen"]
    return args


@pytest.fixture(autouse=True)
def loopback_only_ice() -> Iterator[None]:
    set_host_addresses_policy(only=["127.0.0.1"])
    yield
    reset_host_addresses_policy()


_closed_loops: list[asyncio.AbstractEventLoop] = []


@pytest.fixture
def qloop(qapp: QApplication, qtbot: QtBot) -> Iterator[asyncio.AbstractEventLoop]:
    """A qasync loop that runs whenever Qt processes events, for the whole test."""
    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    yield loop
    leftovers = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in leftovers:
        task.cancel()
    if leftovers:
        gathered = asyncio.ensure_future(asyncio.gather(*leftovers, return_exceptions=True), loop=loop)
        qtbot.waitUntil(gathered.done, timeout=WAIT_MS)
    # Not loop.stop(): it calls QApplication.exit(), whose "quit now" flag would make every later
    # QEventLoop.exec() (qtbot.wait) return at once. The loop never ran exec() itself, so only its
    # "running" marks need undoing before it can be closed.
    qapp.aboutToQuit.disconnect(loop._after_run_forever)
    asyncio.events._set_running_loop(None)
    loop._QEventLoop__is_running = False  # type: ignore[attr-defined]
    asyncio.set_event_loop(None)
    loop.close()
    # A closed qasync loop leaves its timer object's pending Qt timers behind (they die when next due).
    # Kill them now, and keep the loop (and so that QObject) alive, so that no timer event can ever reach
    # a timer object Python has already freed.
    timer = loop._timer  # type: ignore[attr-defined]
    for timer_id in list(timer._SimpleTimer__callbacks):
        timer.killTimer(timer_id)
    _closed_loops.append(loop)


Runner = Callable[[Coroutine[Any, Any, Any]], Any]


def off_the_loop(run: Runner, blocking: Callable[..., T], *args: Any) -> T:
    """``blocking(*args)`` in a worker thread, Qt and the loop served meanwhile: a test body runs while the
    qasync loop is marked running, so it reads files and the keyring this way."""
    return run(asyncio.to_thread(blocking, *args))  # type: ignore[no-any-return]


def saved_app_settings(run: Runner, app: SenderApp) -> dict[str, Any]:
    """``app.json`` as the app leaves it once its pending write is done."""

    async def read() -> dict[str, Any]:
        await app.models.settings.saved()
        text = await asyncio.to_thread(app.models.settings.path.read_text)
        return json.loads(text)  # type: ignore[no-any-return]

    return run(read())  # type: ignore[no-any-return]


@pytest.fixture
def run(qloop: asyncio.AbstractEventLoop, qtbot: QtBot) -> Runner:
    """``run(coro)``: run a coroutine on the qasync loop to its end, serving Qt meanwhile; its result."""

    def runner(coro: Coroutine[Any, Any, T], timeout_ms: int = WAIT_MS) -> T:
        task = qloop.create_task(coro)
        qtbot.waitUntil(task.done, timeout=timeout_ms)
        return task.result()

    return runner


ReceiverFactory = Callable[..., Receiver]


@pytest.fixture
def make_receiver(run: Runner, tmp_path: Path) -> Iterator[ReceiverFactory]:
    """``make_receiver(pin=..., throttle=..., **ReceiverConfig fields)`` → a started receiver on loopback."""
    receivers: list[Receiver] = []

    def factory(*, throttle: PinThrottle | None = None, **overrides: Any) -> Receiver:
        fields: dict[str, Any] = {
            "name": "Room 1",
            "host": "127.0.0.1",
            "port": 0,
            "fallback_port": None,
            "data_dir": tmp_path / f"receiver-{len(receivers)}",
            "mdns": False,
        }
        fields.update(overrides)
        receiver = Receiver(ReceiverConfig(**fields), throttle=throttle)
        run(receiver.start())
        receivers.append(receiver)
        return receiver

    yield factory
    for receiver in receivers:
        run(receiver.aclose())


SenderFactory = Callable[..., SenderApp]


def build_sender_app(
    loop: asyncio.AbstractEventLoop,
    settings_path: Path,
    name: str,
    timings: dict[str, Any],
    services: SenderServices,
) -> SenderApp:
    """The app as ``run_sender_app`` builds it before its loop runs: ``app.json`` read (first written with
    ``name`` when missing), the app's version read, the models, the controller and the window.

    The Qt tests' loop is marked running for the whole test, so the suite's blocking-call guard lets this
    function alone block (tests/conftest.py).
    """
    if not settings_path.exists():
        settings_path.parent.mkdir(parents=True, exist_ok=True)
        settings_path.write_text(f'{{"display_name": "{name}"}}\n')
    config = SenderConfig(**timings)
    return SenderApp.build(loop, config=config, services=services, settings_path=settings_path)


@pytest.fixture
def make_sender(
    qloop: asyncio.AbstractEventLoop,
    qtbot: QtBot,
    run: Runner,
    video_file: Callable[..., Path],  # noqa: F811 - the fixture imported above
    isolated_home: Path,  # noqa: F811 - the fixture imported above
) -> Iterator[SenderFactory]:
    """``make_sender(display=None, discovery_interfaces=None, cameras=None)`` → a shown, running app."""
    apps: list[tuple[SenderApp, asyncio.Task[None]]] = []

    def factory(
        *,
        display: str | None = None,
        discovery_interfaces: list[str] | None = None,
        cameras: list[Camera] | None = None,
        name: str = SENDER_NAME,
        services: dict[str, Any] | None = None,
        **config: Any,
    ) -> SenderApp:
        if cameras is None:
            cameras = [Camera(str(video_file((0, 160, 255))), "Test camera")]
        chosen: dict[str, Any] = {
            "grab_monitors": grab_monitors if display is not None else no_screen,
            "list_cameras": lambda: list(cameras),
            "load_credentials": lambda: None,
        }
        chosen.update(services or {})
        timings: dict[str, Any] = {
            "discovery": discovery_interfaces is not None,
            "discovery_interfaces": discovery_interfaces,
            "discovery_settle": 1.0,
            "display": display,
            "thumbnail_interval": 0.5,
            "status_interval": 0.3,
            "preview_interval": 0.1,
            **config,
        }
        settings_path = isolated_home / "config" / "coalesce" / "app.json"
        app = build_sender_app(qloop, settings_path, name, timings, SenderServices(**chosen))
        task = qloop.create_task(app.controller.run())
        apps.append((app, task))
        app.window.show()
        qtbot.waitExposed(app.window)
        return app

    yield factory
    for app, task in apps:
        task.cancel()
        qtbot.waitUntil(task.done, timeout=WAIT_MS)
        app.close()
