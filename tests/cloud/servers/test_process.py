"""Process hygiene: ManagedProcess stops what it starts (the process, its group, stragglers), and every
real server, once stopped, leaves no process and no listening port behind."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from coalesce_cloud.servers.certs import CaFiles, CertFiles
from coalesce_cloud.servers.errors import ServerNotInstalledError, ServerStartError
from coalesce_cloud.servers.postgres import PostgresServer
from coalesce_cloud.servers.process import ManagedProcess, pid_alive, tcp_port_accepts
from tests.cloud.servers.harness import (
    make_coturn,
    make_ejabberd_node,
    postgres_state_dir,
    stop_coturn_and_check,
    stop_ejabberd_node_and_check,
    stop_postgres_and_check,
)

PortFactory = Callable[[], int]


def _epmd_pids() -> set[int]:
    result = subprocess.run(["pgrep", "-x", "epmd"], capture_output=True, text=True, check=False)
    return {int(pid) for pid in result.stdout.split()}


def test_start_waits_for_readiness_and_stop_closes_the_port(tmp_path: Path, free_tcp_port: int) -> None:
    process = ManagedProcess(
        "http.server",
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(free_tcp_port)],
        log_path=tmp_path / "http.log",
    )
    process.start(lambda: tcp_port_accepts("127.0.0.1", free_tcp_port), timeout=20)
    pid = process.pid
    assert pid is not None and process.running and pid_alive(pid)
    assert process.stop() == -signal.SIGTERM
    assert not process.running and not pid_alive(pid)
    assert not tcp_port_accepts("127.0.0.1", free_tcp_port)
    assert process.stop() == -signal.SIGTERM  # idempotent


def test_stop_kills_a_process_that_ignores_sigterm_and_its_stragglers(tmp_path: Path) -> None:
    child_pid_file = tmp_path / "child.pid"
    process = ManagedProcess(
        "stubborn",
        ["sh", "-c", f"trap '' TERM; sleep 300 & echo $! > {child_pid_file}; echo started; wait"],
        log_path=tmp_path / "stubborn.log",
        stop_timeout=0.5,
    )
    process.start(lambda: child_pid_file.is_file() and child_pid_file.read_text().strip() != "", timeout=10)
    pid, child = process.pid, int(child_pid_file.read_text())
    assert pid is not None and pid_alive(child)
    assert process.stop() == -signal.SIGKILL
    assert not pid_alive(pid) and not pid_alive(child)


def test_children_left_behind_by_a_clean_exit_are_killed(tmp_path: Path) -> None:
    child_pid_file = tmp_path / "child.pid"
    process = ManagedProcess(
        "leaky",
        ["sh", "-c", f"sleep 300 & echo $! > {child_pid_file}; exec sleep 300"],
        log_path=tmp_path / "leaky.log",
    )
    process.start(lambda: child_pid_file.is_file() and child_pid_file.read_text().strip() != "", timeout=10)
    child = int(child_pid_file.read_text())
    process.stop()
    assert not pid_alive(child)


def test_a_process_that_dies_while_starting_is_reported_with_its_log(tmp_path: Path) -> None:
    process = ManagedProcess(
        "doomed", ["sh", "-c", "echo 'no config file'; exit 3"], log_path=tmp_path / "doomed.log"
    )
    with pytest.raises(ServerStartError, match=r"exited with status 3 (.|\n)*no config file"):
        process.start(lambda: False, timeout=10)
    assert not process.running


def test_a_process_that_never_gets_ready_is_stopped(tmp_path: Path) -> None:
    process = ManagedProcess("sleepy", ["sleep", "300"], log_path=tmp_path / "sleepy.log")
    with pytest.raises(ServerStartError, match="not ready within"):
        process.start(lambda: False, timeout=0.3)
    assert process.pid is not None and not pid_alive(process.pid)


def test_a_missing_binary_is_reported(tmp_path: Path) -> None:
    process = ManagedProcess("ghost", [str(tmp_path / "no-such-binary")], log_path=tmp_path / "ghost.log")
    with pytest.raises(ServerStartError, match="could not run ghost"):
        process.start()


def test_ejabberd_node_leaves_nothing_behind(
    tmp_path: Path, xmpp_cert: CertFiles, cloud_ca: CaFiles, free_tcp_port_factory: PortFactory
) -> None:
    """Also when ``ejabberdctl stop`` cannot reach the node (here: a wrong cookie); the normal path is
    checked when the session's ``ejabberd`` fixture stops."""
    epmd_before = _epmd_pids()
    node = make_ejabberd_node(tmp_path / "ejabberd", xmpp_cert, cloud_ca, free_tcp_port_factory)
    try:
        node.start()
    except ServerNotInstalledError as exc:
        pytest.skip(str(exc))
    try:
        assert node.pid is not None and node.wrapper_pid is not None
        assert Path(f"/proc/{node.pid}/comm").read_text().strip() == "beam.smp"
        assert _epmd_pids() == epmd_before, "a single node must not start epmd"
        (node.config.home_dir / ".erlang.cookie").write_text("not-the-cookie")
    finally:
        stop_ejabberd_node_and_check(node)
    node.stop()  # idempotent
    assert _epmd_pids() == epmd_before


def test_coturn_leaves_nothing_behind(
    tmp_path: Path, turn_cert: CertFiles, free_udp_tcp_port_factory: PortFactory
) -> None:
    server = make_coturn(tmp_path / "coturn", turn_cert, free_udp_tcp_port_factory)
    try:
        server.start()
    except ServerNotInstalledError as exc:
        pytest.skip(str(exc))
    stop_coturn_and_check(server)
    server.stop()


def test_postgres_leaves_nothing_behind(free_tcp_port: int) -> None:
    state_dir = postgres_state_dir()
    server = PostgresServer(state_dir, free_tcp_port)
    try:
        try:
            server.start()
        except ServerNotInstalledError as exc:
            pytest.skip(str(exc))
        assert server.pid is not None
        # PostgreSQL's children each start a session of their own (so the group kill misses them); the
        # postmaster's fast shutdown must take them down.
        children = _children_of(server.pid)
        assert children
        stop_postgres_and_check(server)
        assert not [pid for pid in children if pid_alive(pid)]
        server.stop()
    finally:
        server.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


def _children_of(parent: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == parent:
                children.append(int(entry.name))
    return children
