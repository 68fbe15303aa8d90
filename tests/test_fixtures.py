"""The shared fixtures in conftest.py do what they promise: a real X server, a real pattern on it, free
ports, and the suite's policies (leaked threads fail; skips fail under CI=true)."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mss
import pytest

CONFTEST = Path(__file__).with_name("conftest.py")


def _grabber(display: str) -> Any:
    factory = getattr(mss, "MSS", None) or mss.mss  # mss.MSS from 10.2 on; mss.mss before (deprecated after)
    return factory(display=display)


def test_xvfb_serves_a_screen_of_the_promised_size(xvfb: Any) -> None:
    assert re.fullmatch(r":\d+", xvfb.display)
    with _grabber(xvfb.display) as grabber:
        monitor = grabber.monitors[1]
    assert (monitor["width"], monitor["height"]) == (xvfb.width, xvfb.height) == (1280, 720)


def test_pattern_window_really_shows_the_pattern(pattern_window: Callable[..., Any], xvfb: Any) -> None:
    window = pattern_window()
    assert window.quadrants == {
        "top_left": (255, 0, 0),
        "top_right": (0, 255, 0),
        "bottom_left": (0, 0, 255),
        "bottom_right": (255, 255, 255),
    }
    with _grabber(xvfb.display) as grabber:
        shot = grabber.grab(grabber.monitors[1])
    assert shot.size == (xvfb.width, xvfb.height)
    for name, (x, y) in window.centres().items():
        assert shot.pixel(x, y) == window.quadrants[name], name
    # The corners and the pixels on either side of the dividing lines, so the window covers the whole screen.
    w, h = xvfb.width, xvfb.height
    for x, y in [(0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1), (w // 2 - 1, 0), (w // 2, h - 1),
                 (0, h // 2 - 1), (w - 1, h // 2)]:  # fmt: skip
        assert shot.pixel(x, y) == window.colour_at(x, y), (x, y)


def test_pattern_window_takes_other_colours(pattern_window: Callable[..., Any], xvfb: Any) -> None:
    window = pattern_window(quadrants={"top_left": (12, 34, 56), "bottom_right": (0, 0, 0)})
    with _grabber(xvfb.display) as grabber:
        shot = grabber.grab(grabber.monitors[1])
    centres = window.centres()
    assert shot.pixel(*centres["top_left"]) == (12, 34, 56)
    assert shot.pixel(*centres["top_right"]) == (0, 255, 0)
    assert shot.pixel(*centres["bottom_right"]) == (0, 0, 0)


def test_free_tcp_port_can_be_bound(free_tcp_port: int, free_tcp_port_factory: Callable[[], int]) -> None:
    assert free_tcp_port != free_tcp_port_factory()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", free_tcp_port))
        sock.listen()


def _inner_suite(pytester: pytest.Pytester, test_source: str) -> None:
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_source)


def test_a_leaked_thread_fails_the_test(pytester: pytest.Pytester) -> None:
    _inner_suite(
        pytester,
        """
        import threading
        import pytest

        @pytest.fixture
        def thread_join_timeout():
            return 0.05

        def test_leaks():
            stop = threading.Event()
            thread = threading.Thread(target=stop.wait, name="coalesce-leak-probe")
            thread.stop = stop
            thread.start()

        def test_stopping_thread_is_waited_for():
            threading.Thread(target=lambda: None, name="quick").start()

        def test_daemon_threads_are_ignored():
            stop = threading.Event()
            thread = threading.Thread(target=stop.wait, name="coalesce-daemon-probe", daemon=True)
            thread.stop = stop
            thread.start()
        """,
    )
    try:
        result = pytester.runpytest("-p", "no:cacheprovider")
    finally:
        for thread in threading.enumerate():
            if thread.name.startswith("coalesce-") and hasattr(thread, "stop"):
                thread.stop.set()
                thread.join()
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        ["*left 1 non-daemon thread(s) running after teardown: 'coalesce-leak-probe'"]
    )


def test_a_blocking_call_on_a_running_loop_fails_the_test(pytester: pytest.Pytester) -> None:
    _inner_suite(
        pytester,
        """
        import asyncio
        import time
        import pytest

        @pytest.mark.asyncio
        async def test_sleeps_on_the_loop():
            time.sleep(0.001)

        @pytest.mark.asyncio
        async def test_sleeps_in_a_worker_thread():
            await asyncio.to_thread(time.sleep, 0.001)

        def test_sleeps_with_no_loop():
            time.sleep(0.001)

        @pytest.mark.asyncio
        async def test_hides_the_error():
            try:
                time.sleep(0.001)
            except Exception:
                pass
        """,
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    # The test that hides the error passes its call, then fails at teardown (counted once each).
    result.assert_outcomes(passed=3, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*BlockingError: Blocking call to time.sleep*", "FAILED *test_sleeps_on_the_loop*"]
    )
    result.stdout.fnmatch_lines(
        [
            "*1 blocking call(s) on the event loop, caught by the code under test; the first: time.sleep, *",
            "*in test_hides_the_error*",
        ]
    )


SKIPPING_TESTS = """
    import pytest

    def test_needs_a_server():
        pytest.skip("no server here")

    @pytest.mark.optional_in_ci
    def test_windows_only():
        pytest.skip("Windows only")

    @pytest.mark.xfail(reason="known bug")
    def test_known_bug():
        assert False
    """


@pytest.mark.parametrize("ci", ["true", "1"])
def test_skips_fail_under_ci(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    _inner_suite(pytester, SKIPPING_TESTS)
    monkeypatch.setenv("CI", ci)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, skipped=1, xfailed=1)
    result.stdout.fnmatch_lines(["*skips are failures when CI=*no server here*"])


@pytest.mark.parametrize("ci", [None, "false", ""])
def test_skips_stay_skips_outside_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None
) -> None:
    _inner_suite(pytester, SKIPPING_TESTS)
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(skipped=2, xfailed=1)


def test_module_level_skip_fails_under_ci(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    _inner_suite(
        pytester,
        """
        import pytest

        pytest.importorskip("coalesce_no_such_module")

        def test_never_collected():
            pass
        """,
    )
    monkeypatch.setenv("CI", "true")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
