"""Impaired links (coalesce_testing.impair) on a real namespace: loss, delay and a bandwidth cap do what
they say, in both directions, and leave nothing behind."""

from __future__ import annotations

import contextlib
import json
import socket
import statistics
import subprocess
import sys
import threading
import time

import pytest

from coalesce_testing.impair import TABLE, ImpairedLink, Impairment
from coalesce_testing.netns import Netns
from tests import netlab

# Runs inside the namespace: UDP to the host's echo, one datagram at a time; prints the round trips (ms).
PING = """
import json, socket, sys, time
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1.0)
rtts = []
for i in range(count):
    start = time.monotonic(); s.sendto(i.to_bytes(4, "big"), (host, port))
    try:
        s.recvfrom(64); rtts.append((time.monotonic() - start) * 1000)
    except TimeoutError:
        pass
print(json.dumps(rtts))
"""
# Runs inside the namespace: N datagrams one way, paced, then a TCP stream of B bytes.
BLAST = """
import socket, sys, time
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(count):
    s.sendto(b"x" * 200, (host, port)); time.sleep(0.0005)
"""
STREAM = """
import socket, sys
host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with socket.create_connection((host, port)) as c:
    c.sendall(b"y" * size)
"""


netns = netlab.netns  # a fixture


def _inside(netns: Netns, script: str, *args: object, timeout: float = 60.0) -> str:
    result = subprocess.run(
        netns.exec_args([sys.executable, "-c", script, *map(str, args)]),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return result.stdout


class _Echo:
    """A UDP echo on the host's veth address, in a thread."""

    def __init__(self, host: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(64)
                self.sock.sendto(data, peer)
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()


def _rtts(netns: Netns, count: int = 40) -> list[float]:
    echo = _Echo(netns.host_ip)
    try:
        rtts: list[float] = json.loads(_inside(netns, PING, netns.host_ip, echo.port, count))
    finally:
        echo.close()
    return rtts


def _ns_rules(netns: Netns) -> subprocess.CompletedProcess[str]:
    return netns.run(["nft", "list", "table", "inet", TABLE])


def test_impairments_are_checked_and_described() -> None:
    assert Impairment(2, 50, 10, 10).describe() == "2 % loss, 50 ± 10 ms, 10 Mbit/s"
    assert Impairment().describe() == "clean"
    for bad in ({"loss_percent": 101}, {"delay_ms": 5, "jitter_ms": 6}, {"rate_mbit": 0}):
        with pytest.raises(ValueError):
            Impairment(**bad)  # type: ignore[arg-type]


def test_delay_holds_packets_both_ways_and_goes_away_on_close(netns: Netns) -> None:
    clean = statistics.median(_rtts(netns))
    with ImpairedLink(netns, Impairment(delay_ms=40, jitter_ms=5)):
        delayed = _rtts(netns)
        assert "NFQUEUE" in netns.run(["iptables-legacy", "-S", "OUTPUT"]).stdout
    assert len(delayed) == 40, "a delayed packet was lost"
    # Each way 35-45 ms: a round trip of at least 70 ms, and the jitter shows as a spread.
    assert min(delayed) >= 70.0, delayed
    assert statistics.median(delayed) < 150.0, delayed
    assert max(delayed) - min(delayed) > 1.0, "no jitter"
    assert clean < 20.0
    rules = netns.run(["iptables-legacy", "-S", "OUTPUT"]).stdout
    assert "NFQUEUE" not in rules, "the queue rule outlived the link"
    assert statistics.median(_rtts(netns)) < 20.0


def test_loss_drops_about_the_share_asked(netns: Netns) -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind((netns.host_ip, 0))
    receiver.settimeout(1.0)
    count, got = 1000, 0

    def receive() -> None:  # while the blast runs: a full socket buffer would drop datagrams too
        nonlocal got
        with contextlib.suppress(TimeoutError):
            while True:
                receiver.recv(512)
                got += 1

    thread = threading.Thread(target=receive, daemon=True)
    with receiver, ImpairedLink(netns, Impairment(loss_percent=20)):
        assert _ns_rules(netns).returncode == 0
        thread.start()
        _inside(netns, BLAST, netns.host_ip, receiver.getsockname()[1], count)
        thread.join(10)
    assert _ns_rules(netns).returncode != 0, "the namespace's rules outlived the link"
    # Binomial(1000, 0.8): mean 800, standard deviation 12.6; the bounds are 8 deviations wide.
    assert 700 <= got <= 900, got


def test_rate_cap_limits_a_tcp_stream(netns: Netns) -> None:
    size = 2_000_000
    server = socket.create_server((netns.host_ip, 0))
    received = 0
    timing: list[float] = []

    def accept() -> None:
        nonlocal received
        connection, _ = server.accept()
        with connection:
            first = None
            while chunk := connection.recv(65536):
                first = first or time.monotonic()
                received += len(chunk)
            timing.extend([first or 0.0, time.monotonic()])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    with server, ImpairedLink(netns, Impairment(rate_mbit=8)):
        _inside(netns, STREAM, netns.host_ip, server.getsockname()[1], size)
        thread.join(30)
    assert received == size
    mbit_per_s = size * 8 / (timing[1] - timing[0]) / 1e6
    assert mbit_per_s < 8 * 1.25, mbit_per_s  # uncapped veth carries gigabits per second
    tc = subprocess.run(["tc", "qdisc", "show", "dev", netns.host_ifname], capture_output=True, text=True)
    assert "tbf" not in tc.stdout, "the cap outlived the link"
