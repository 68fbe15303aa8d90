"""Shared fixtures and suite-wide policy for the Coalesce tests.

Fixtures:
- ``xvfb`` (session): a private Xvfb server, 1280x720x24; ``.display`` (e.g. ":5"), ``.width``, ``.height``,
  ``.env()`` for subprocess environments. Tests using it get the ``x11`` marker. Nothing sets ``DISPLAY`` or
  ``QT_QPA_PLATFORM`` globally: real windows need xcb, and tests that want offscreen Qt set it themselves.
- ``pattern_window`` (function): factory; shows a frameless full-screen window with four solid quadrants
  (``coalesce_testing.quadrants``) on the ``xvfb`` display and returns the colours a capture must see.
  Windows close at teardown.
- ``free_tcp_port`` / ``free_tcp_port_factory``: TCP ports on 127.0.0.1 that were free a moment ago and are
  handed out once per session.
- ``thread_join_timeout``: how long the thread hygiene check waits for threads that are stopping; override it
  in a module to shrink it.

Policy:
- Every test fails if it leaves a new non-daemon thread running after its teardown.
- Every test fails on a blocking call (sleep, file or blocking-socket IO, a wait on a held lock, ...) made
  in a thread whose asyncio event loop is running: async tests and their fixtures, and the Qt tests, whose
  qasync loop is marked running for the whole test (blockbuster). Tests do their own file IO before the loop
  or with ``asyncio.to_thread``; the few functions allowed to block anyway are listed, with the reason, in
  ``BLOCKING_ALLOWED_IN``.
- With ``CI=true`` (or ``1``) in the environment a skipped test counts as a failure, because CI must really
  run the tests that need X or a server; mark a test ``@pytest.mark.optional_in_ci`` when skipping it there
  is legitimate (another platform, hardware CI does not have). Expected failures (xfail) are left alone.
  Module-level skips (``pytest.importorskip`` at import time) fail too in CI; skip inside the tests instead.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import blockbuster.blockbuster
import pytest
from blockbuster import BlockBuster, BlockingError, blockbuster_ctx

from coalesce_testing.pulse import SINKS, PulseError, PulseMissing, PulseServer, start_pulse
from coalesce_testing.xvfb import XServer as XServer  # tests import it from here
from coalesce_testing.xvfb import XvfbError, XvfbMissing, read_line, start_xvfb, stop_process

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
XVFB_WIDTH, XVFB_HEIGHT, XVFB_DEPTH = 1280, 720, 24
PATTERN_READY_TIMEOUT = 20.0

Rgb = tuple[int, int, int]
_FAILED = pytest.StashKey[bool]()  # set on an item once one of its phases (setup, call, teardown) failed


# --------------------------------------------------------------------------------------------- CI policy


def _ci_enabled() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "optional_in_ci: this test may be skipped when CI=true (otherwise a skip in CI is a failure)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "xvfb" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.x11)


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    reason = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


def _fail_skip_in_ci(report: pytest.TestReport | pytest.CollectReport, what: str) -> None:
    reason = _skip_reason(report)
    report.outcome = "failed"
    report.longrepr = (
        f"{what} was skipped, and skips are failures when CI={os.environ.get('CI')!r}: {reason}\n"
        "CI must install and start what this test needs (see scripts/setup.sh); if skipping it in CI "
        "is legitimate, mark it @pytest.mark.optional_in_ci."
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        item.stash[_FAILED] = True
    if (
        report.skipped
        and not hasattr(report, "wasxfail")
        and _ci_enabled()
        and item.get_closest_marker("optional_in_ci") is None
    ):
        _fail_skip_in_ci(report, "test")
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    if report.skipped and _ci_enabled():
        _fail_skip_in_ci(report, f"collection of {collector.nodeid or collector.name}")
    return report


# ----------------------------------------------------------------------------------------- PulseAudio


@pytest.fixture(scope="session")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulseServer]:
    """A private PulseAudio (see :mod:`coalesce_testing.pulse`) for the session; its clients (the sound
    library, in this process) find it through ``PULSE_SERVER``, set before the library is first imported.
    """
    try:
        server = start_pulse(tmp_path_factory.mktemp("pulse"), SINKS)
    except PulseMissing as exc:
        pytest.skip(str(exc))
    except PulseError as exc:
        pytest.fail(str(exc))
    # Stopped at exit, after the sound library has closed its connection (its own atexit hook, registered
    # later, runs first): a server that goes away under libpulse's open context makes it abort the process.
    atexit.register(server.stop)
    saved = {key: os.environ.get(key) for key in server.client_env()}
    os.environ.update(server.client_env())
    try:
        yield server
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# ----------------------------------------------------------------------------------------------- Xvfb


@pytest.fixture(scope="session")
def xvfb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[XServer]:
    """A private Xvfb (see :mod:`coalesce_testing.xvfb`) for the whole session."""
    try:
        server = start_xvfb(
            XVFB_WIDTH, XVFB_HEIGHT, depth=XVFB_DEPTH, log_path=tmp_path_factory.mktemp("xvfb") / "xvfb.log"
        )
    except XvfbMissing as exc:
        pytest.skip(str(exc))
    except XvfbError as exc:
        pytest.fail(str(exc))
    with server:
        yield server


# ------------------------------------------------------------------------------------- pattern window

QUADRANTS = ("top_left", "top_right", "bottom_left", "bottom_right")
DEFAULT_PATTERN: dict[str, Rgb] = {
    "top_left": (255, 0, 0),
    "top_right": (0, 255, 0),
    "bottom_left": (0, 0, 255),
    "bottom_right": (255, 255, 255),
}


@dataclass
class PatternWindow:
    """What the screen shows while the window is up: one solid colour per quadrant of the whole screen."""

    quadrants: dict[str, Rgb]
    width: int
    height: int
    process: subprocess.Popen[bytes] = field(repr=False)
    stderr_path: Path = field(repr=False)

    def colour_at(self, x: int, y: int) -> Rgb:
        column = "left" if x < self.width // 2 else "right"
        row = "top" if y < self.height // 2 else "bottom"
        return self.quadrants[f"{row}_{column}"]

    def centres(self) -> dict[str, tuple[int, int]]:
        """The centre point of each quadrant, a safe place to sample."""
        w, h = self.width, self.height
        return {
            "top_left": (w // 4, h // 4),
            "top_right": (3 * w // 4, h // 4),
            "bottom_left": (w // 4, 3 * h // 4),
            "bottom_right": (3 * w // 4, 3 * h // 4),
        }

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-2000:]

    def close(self) -> None:
        """Stop the window and its process; safe to call twice."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        stop_process(self.process)
        if self.process.stdout is not None:
            self.process.stdout.close()


PatternWindowFactory = Callable[..., PatternWindow]


@pytest.fixture
def pattern_window(xvfb: XServer, tmp_path: Path) -> Iterator[PatternWindowFactory]:
    """Factory: ``pattern_window()`` or ``pattern_window(quadrants={"top_left": (r, g, b), ...})``."""
    windows: list[PatternWindow] = []

    def launch(quadrants: Mapping[str, Rgb] | None = None) -> PatternWindow:
        colours = {**DEFAULT_PATTERN, **(quadrants or {})}
        if set(colours) != set(QUADRANTS):
            raise ValueError(f"quadrants must be among {QUADRANTS}, got {sorted(colours)}")
        args = ["#{:02x}{:02x}{:02x}".format(*colours[name]) for name in QUADRANTS]
        # stderr goes to a file: Qt's warnings must never fill a pipe nobody reads and block the window.
        stderr_path = tmp_path / f"pattern-window-{len(windows)}.stderr"
        with stderr_path.open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "coalesce_testing.quadrants", *args],
                env=xvfb.env(),
                cwd=ROOT,  # coalesce_testing is not installed: it comes from the checkout
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
        window = PatternWindow(colours, xvfb.width, xvfb.height, process, stderr_path)
        windows.append(window)
        assert process.stdout is not None
        try:
            line = read_line(process.stdout.fileno(), PATTERN_READY_TIMEOUT, "pattern window")
        except TimeoutError as exc:
            window.close()
            raise TimeoutError(f"{exc}; stderr: {window.stderr_text()}") from exc
        if line.strip() != "ready":
            window.close()
            pytest.fail(f"pattern window did not start (stdout {line!r}); stderr: {window.stderr_text()}")
        return window

    yield launch
    for window in windows:
        window.close()


# -------------------------------------------------------------------------------------------- network


@pytest.fixture(scope="session")
def free_tcp_port_factory() -> Callable[[], int]:
    """Returns a function giving TCP ports on 127.0.0.1 free at call time, never the same one twice."""
    given: set[int] = set()

    def factory() -> int:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind(("127.0.0.1", 0))
                port: int = sock.getsockname()[1]
            if port not in given:
                given.add(port)
                return port

    return factory


@pytest.fixture
def free_tcp_port(free_tcp_port_factory: Callable[[], int]) -> int:
    return free_tcp_port_factory()


# -------------------------------------------------------------------------------------------- hygiene


@pytest.fixture
def thread_join_timeout() -> float:
    """Seconds the thread check waits, in all, for leftover threads that are already stopping."""
    return 2.0


@pytest.fixture(autouse=True)
def _no_leaked_threads(thread_join_timeout: float) -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leftover = [t for t in threading.enumerate() if t not in before and not t.daemon and t.is_alive()]
    if not leftover:
        return
    deadline = time.monotonic() + thread_join_timeout
    for thread in leftover:
        thread.join(max(0.0, deadline - time.monotonic()))
    still_running = [t for t in leftover if t.is_alive()]
    if still_running:
        names = ", ".join(repr(t.name) for t in still_running)
        pytest.fail(
            f"test left {len(still_running)} non-daemon thread(s) running after teardown: {names}",
            pytrace=False,
        )


# Where blocking while an event loop runs in the thread is allowed: (file path suffix, function names). A call
# is allowed when any frame of its stack is one of these functions, so each entry names a function that calls
# none of our code below it (or, for test support, only what the app does before its loop runs).
BLOCKING_ALLOWED_IN: list[tuple[str, set[str]]] = [
    # PySide6's import hook (installed once PySide6 is imported) reads the source of every module imported
    # after it: once per module, at its first (lazy) import.
    ("shibokensupport/feature.py", {"_mod_uses_pyside"}),
    # aiortc's RTCRtpReceiver joins its decoder thread when a track ends (RTCP BYE, or the peer connection
    # closed): once per track, and the thread has only the frame it is decoding left to finish.
    ("aiortc/rtcrtpreceiver.py", {"__stop_decoder"}),
    # FastAPI reads an endpoint's source location (for its error messages) at the endpoint's first request,
    # then keeps it; the local cloud of the tests runs in the test process.
    ("fastapi/routing.py", {"_extract_endpoint_context"}),
    # fastapi-offline's app checks once, as it is built, that its docs folder exists (StaticFiles);
    # the tests build the cloud's app inside their loop.
    ("fastapi_offline/core.py", {"FastAPIOffline"}),
    # Logging to a file: pytest's log-file handler (on /dev/null unless --log-file is given) receives every
    # record our code logs. The apps themselves log to stderr, which blockbuster allows.
    ("logging/__init__.py", {"emit"}),
    # pytest-timeout writes the stacks of a test that timed out from its signal handler, loop or not.
    ("pytest_timeout.py", {"timeout_sigalrm"}),
    # pytest (and its plugins) report a test's outcome, reading the failing code's source, before the fixtures
    # are torn down: in a Qt test the qasync loop is still marked running then. Any file: every plugin's
    # implementation of these hooks.
    ("", {"pytest_runtest_makereport", "pytest_runtest_logreport", "pytest_exception_interact"}),
    # Playwright (tests that drive Debian's Chromium) finds its driver on disk as it starts, before any page.
    ("playwright/_impl/_driver.py", {"compute_driver_executable"}),
    # The sender app reads app.json and its version while it is built, before its loop runs
    # (run_sender_app); the Qt tests build it while their qasync loop is marked running for the whole test.
    ("tests/client_ui/conftest.py", {"build_sender_app"}),
]


@pytest.fixture(autouse=True)
def _no_blocking_calls_on_the_loop(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[BlockBuster]:
    # blockbuster raises its error where the call is made; code under test that catches every exception (a
    # task's error handler, logging's) would hide it, so each one raised is also noted here.
    seen: list[str] = []

    class NotedBlockingError(BlockingError):
        def __init__(self, func: str) -> None:
            super().__init__(func)
            stack = [f for f in traceback.extract_stack()[:-1] if "/blockbuster/" not in f.filename]
            seen.append(f"{func}, called from:\n" + "".join(traceback.format_list(stack[-12:])))

    monkeypatch.setattr(blockbuster.blockbuster, "BlockingError", NotedBlockingError)
    with blockbuster_ctx() as guard:
        for watched in guard.functions.values():
            for filename, functions in BLOCKING_ALLOWED_IN:
                watched.can_block_in(filename, functions)
        yield guard
    if seen and not request.node.stash.get(_FAILED, False):
        caught = f"{len(seen)} blocking call(s) on the event loop, caught by the code under test"
        pytest.fail(f"{caught}; the first: {seen[0]}", pytrace=False)
