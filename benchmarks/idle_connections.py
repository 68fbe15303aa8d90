"""Receiver memory and descriptors under a churn of idle connections (issue 10, "bounded resources").

Run as ``python -m benchmarks.idle_connections [--connections 2000] [--sources 50]``. It starts a headless
receiver on 127.0.0.1, reads its RSS and open descriptors at rest, opens ``--connections`` plain TCP
connections that never say a word (spread over ``--sources`` addresses in 127.0.0.0/8), reads them again,
closes every connection, waits until the receiver's descriptors are back to their resting count, and reads
them a last time. It prints one JSON object; the figures are for a report, not asserted anywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.procs import child_env


def rss_kib(pid: int) -> int:
    match = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    assert match is not None
    return int(match.group(1))


def descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def settle(pid: int, target: int, timeout: float) -> float:
    """Seconds until ``pid`` holds at most ``target`` descriptors (polled: another process)."""
    start = time.monotonic()
    while descriptors(pid) > target and time.monotonic() - start < timeout:
        time.sleep(0.05)
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--sources", type=int, default=50, help="source addresses, at most 250")
    parser.add_argument("--rounds", type=int, default=3, help="open and close this many times")
    parser.add_argument("receiver_args", nargs="*", help="extra coalesce-receiver options (after --)")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory() as data:
        receiver = subprocess.Popen(
            [
                *(sys.executable, "-m", "coalesce_receiver", "--headless", "--no-mdns"),
                *("--host", "127.0.0.1", "--port", "0", "--data-dir", data, *args.receiver_args),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=child_env(),
        )
        try:
            assert receiver.stdout is not None
            line = receiver.stdout.readline()
            port = int(line.rsplit(":", 1)[1])
            rest_fds, rest_rss = descriptors(receiver.pid), rss_kib(receiver.pid)
            rounds = []
            for _ in range(args.rounds):
                conns: list[socket.socket] = []
                for i in range(args.connections):
                    source = (f"127.0.0.{2 + i % args.sources}", 0)
                    with contextlib.suppress(OSError):
                        conns.append(socket.create_connection(("127.0.0.1", port), 2, source_address=source))
                settle(receiver.pid, 0, 0.5)  # give its accept loop a moment to catch up
                peak = {"fds": descriptors(receiver.pid), "rss_kib": rss_kib(receiver.pid)}
                for conn in conns:
                    conn.close()
                waited = settle(receiver.pid, rest_fds, 30)
                after = {"fds": descriptors(receiver.pid), "rss_kib": rss_kib(receiver.pid)}
                rounds.append({"open": peak, "closed": after, "seconds_to_settle": round(waited, 2)})
            print(json.dumps({"rest": {"fds": rest_fds, "rss_kib": rest_rss}, "rounds": rounds}, indent=2))
        finally:
            receiver.terminate()
            receiver.wait(10)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return 0


if __name__ == "__main__":
    sys.exit(main())
