"""`coalesce-cloud up` as a process: it prints every port it opens (each bound where it says), stops within
5 s with an idle HTTPS keep-alive client connected, and leaves no server behind when it is SIGKILLed."""

from __future__ import annotations

import asyncio
import http.client
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from coalesce_cloud.servers.process import find_executable, pid_alive
from tests.cloud.servers.harness import free_udp_port_range

HOST = "127.0.0.2"
"""Not 127.0.0.1, so a port bound to the wrong address shows (the control ports must be on 127.0.0.1)."""
LOOPBACK = "127.0.0.1"
START_TIMEOUT = 120.0
LISTENER = re.compile(
    r"^ {4}(?P<host>[0-9.]+):(?P<port>\d+)(?:-(?P<last>\d+))? (?P<transport>tcp\+udp|tcp|udp) "
)
"""A line of the "listening on" list: ``    HOST:PORT[-LAST] tcp|udp|tcp+udp  what it is for``."""


@dataclass(frozen=True)
class Printed:
    host: str
    port: int
    last_port: int | None
    transports: tuple[str, ...]
    purpose: str


@dataclass
class Up:
    process: asyncio.subprocess.Process
    state_dir: Path
    output: list[str]
    listeners: list[Printed]

    @property
    def api(self) -> Printed:
        return next(listener for listener in self.listeners if listener.purpose.startswith("REST API"))


@pytest.fixture
def cloud_cli_installed() -> None:
    try:
        find_executable("ejabberdctl", package="ejabberd")
        find_executable("turnserver", package="coturn")
    except Exception as exc:  # ServerNotInstalledError
        pytest.skip(str(exc))


@pytest.fixture
async def up(tmp_path: Path, cloud_cli_installed: None) -> AsyncIterator[Up]:
    """`coalesce-cloud up` on 127.0.0.2 with every port chosen by it, running until the test ends it."""
    state = tmp_path / "state"
    relay_min, relay_max = free_udp_port_range(20)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "coalesce_cloud", "up", "--state-dir", str(state), "--host", HOST,
        "--api-port", "0", "--xmpp-port", "0", "--xmpp-tls-port", "0", "--xmpp-websocket-port", "0",
        "--turn-port", "0",
        "--turn-tls-port", "0", "--relay-ports", f"{relay_min}-{relay_max}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    output: list[str] = []
    try:
        async with asyncio.timeout(START_TIMEOUT):
            while not output or output[-1] != "Press Ctrl-C to stop.":
                line = await process.stdout.readline()
                assert line, "coalesce-cloud up exited while starting:\n" + "\n".join(output)
                output.append(line.decode().rstrip("\n"))
        listeners = [parse(line) for line in output if LISTENER.match(line)]
        relay = [listener for listener in listeners if listener.last_port is not None]
        assert [(r.port, r.last_port) for r in relay] == [(relay_min, relay_max)], output
        draining = asyncio.ensure_future(drain(process.stdout, output))  # a full pipe would block it
        yield Up(process, state, output, listeners)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    await draining


async def drain(stream: asyncio.StreamReader, output: list[str]) -> None:
    while line := await stream.readline():
        output.append(line.decode().rstrip("\n"))


def parse(line: str) -> Printed:
    match = LISTENER.match(line)
    assert match is not None, line
    last = match["last"]
    return Printed(
        host=match["host"],
        port=int(match["port"]),
        last_port=int(last) if last else None,
        transports=tuple(match["transport"].split("+")),
        purpose=line[match.end() :].strip(),
    )


# ------------------------------------------------------------------------------------- the system's view


def process_tree(root: int) -> set[int]:
    """``root`` and every process descended from it (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo += children.get(pid, [])
    return tree


def listening_sockets(pids: Iterable[int] | None = None) -> set[tuple[str, str, int]]:
    """(transport, address, port) of the listening TCP and bound UDP sockets, of ``pids`` only if given."""
    result = subprocess.run(["ss", "-Htulnp"], capture_output=True, text=True, check=True, timeout=10)
    wanted = None if pids is None else set(pids)
    found = set()
    for line in result.stdout.splitlines():
        fields = line.split()
        transport, local = fields[0], fields[4]
        owners = {int(pid) for pid in re.findall(r"pid=(\d+)", line)}
        if wanted is not None and not owners & wanted:
            continue
        address, _, port = local.rpartition(":")
        found.add((transport, address.strip("[]"), int(port)))
    return found


def mentioning(text: str) -> list[int]:
    """PIDs of the living processes whose command line contains ``text``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline and pid_alive(int(entry.name)):
                pids.append(int(entry.name))
    return pids


async def all_exit(pids: set[int], timeout: float) -> list[int]:
    """Wait (on pidfds: any process, not only children) until every one of ``pids`` has exited, or
    ``timeout``; returns those still alive."""
    loop = asyncio.get_running_loop()
    waits: list[asyncio.Future[None]] = []
    pidfds = []
    for pid in pids:
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        pidfds.append(pidfd)
        exited = loop.create_future()
        loop.add_reader(pidfd, lambda f=exited: f.done() or f.set_result(None))
        waits.append(exited)
    try:
        if waits:
            await asyncio.wait(waits, timeout=timeout)
    finally:
        for pidfd in pidfds:
            loop.remove_reader(pidfd)
            os.close(pidfd)
    return await asyncio.to_thread(lambda: [pid for pid in pids if pid_alive(pid)])


def expected_sockets(listeners: Iterable[Printed]) -> set[tuple[str, str, int]]:
    """What the printed list says is listening now (relay ports open only per allocation)."""
    return {
        (transport, listener.host, listener.port)
        for listener in listeners
        if listener.last_port is None
        for transport in listener.transports
    }


# ------------------------------------------------------------------------------------------------ tests


async def test_up_prints_every_port_it_opens_each_bound_to_the_host_it_names(up: Up) -> None:
    printed = expected_sockets(up.listeners)
    opened = await asyncio.to_thread(listening_sockets, await asyncio.to_thread(process_tree, up.process.pid))
    assert opened == printed, (
        f"opened but not printed: {opened - printed}; printed but not opened: {printed - opened}"
    )
    control = {listener.purpose: listener.host for listener in up.listeners if listener.host != HOST}
    assert set(control.values()) == {LOOPBACK} and len(control) == 2, up.output
    assert any("admin API" in purpose for purpose in control) and any("Erlang" in p for p in control)
    helper = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "coalesce_cloud", "up", "--help", stdout=asyncio.subprocess.PIPE
    )
    help_text = (await helper.communicate())[0].decode()
    for flag in ("--relay-ports", "--xmpp-admin-port", "--erlang-dist-port", "--turn-tls-port"):
        assert flag in help_text
    up.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(up.process.wait(), 30) == 0


async def test_up_stops_within_5_s_with_an_idle_keep_alive_client(up: Up) -> None:
    ca = up.state_dir / "ca" / "ca.crt"
    context = await asyncio.to_thread(ssl.create_default_context, cafile=str(ca))
    # A blocking client that, like a browser tab or an httpx pool, does not read its idle connection: it
    # does not answer the server's close_notify (an asyncio client would, its transport always reads).
    client = http.client.HTTPSConnection(up.api.host, up.api.port, context=context, timeout=10)

    def request_once() -> tuple[int, bytes, str | None]:
        client.request("GET", "/api/v1/health")
        response = client.getresponse()
        return response.status, response.read(), response.getheader("connection")

    try:
        status, body, connection = await asyncio.to_thread(request_once)
        assert (status, body) == (200, b'{"status":"ok"}')
        assert connection != "close" and client.sock is not None  # kept alive, and left unread

        began = time.monotonic()
        up.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(up.process.wait(), 10)
        took = time.monotonic() - began
    finally:
        client.close()
    assert code == 0
    # Not merely cut off by the grace period for running requests: closed at once, being idle.
    assert not [line for line in up.output if "graceful shutdown exceeded" in line], up.output
    assert took < 5.0, f"{took:.1f} s to stop with a keep-alive client:\n" + "\n".join(up.output)
    still = expected_sockets(up.listeners) & await asyncio.to_thread(listening_sockets)
    assert not still, f"ports still open after exit: {still}"


async def test_a_killed_up_leaves_no_server_behind(up: Up) -> None:
    tree = await asyncio.to_thread(process_tree, up.process.pid)
    servers = await asyncio.to_thread(mentioning, str(up.state_dir))
    names = {(await asyncio.to_thread(Path(f"/proc/{pid}/comm").read_text)).strip() for pid in servers}
    assert {"beam.smp", "turnserver"} <= names, names  # what must die is there to begin with

    up.process.send_signal(signal.SIGKILL)
    await asyncio.wait_for(up.process.wait(), 10)
    survivors = await all_exit(tree - {up.process.pid}, timeout=15)
    assert not survivors, f"processes of the killed stack still running: {survivors}"
    assert not await asyncio.to_thread(mentioning, str(up.state_dir))
    still = expected_sockets(up.listeners) & await asyncio.to_thread(listening_sockets)
    assert not still, f"ports still open after the kill: {still}"
