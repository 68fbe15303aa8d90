"""Holds every packet of one NFQUEUE for a while, then lets it go: the delay of an impaired link.

This kernel has no ``netem`` qdisc, so :mod:`coalesce_testing.impair` sends a veth's outgoing packets to a
netfilter queue and this program (run as ``python -m coalesce_testing.delayer --queue N --delay-ms D
--jitter-ms J``, inside the namespace whose queue it serves) accepts each one ``D ± J`` ms after it came
(uniformly drawn, as netem's jitter: packets may overtake each other). One thread, one loop: the queue's
socket is read without blocking whenever it is readable, and due packets are released in between, so no
verdict ever races the receive. Prints ``ready`` once bound; exits on SIGTERM or when stdin closes.

The queue library is NetfilterQueue (python-netfilterqueue, libnetfilter_queue underneath).
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import os
import random
import select
import signal
import sys
import time
from types import FrameType

import netfilterqueue

COPY_BYTES = 64
"""Bytes of each packet copied to us: ``retain()`` needs a payload, nothing reads it, and an unchanged
payload is not sent back with the verdict, so the packet leaves whole."""
QUEUE_LENGTH = 8192
"""Packets the kernel may hold for the queue: at 10 Mbit/s and 60 ms about 600 are in flight."""


class Delayer:
    def __init__(self, delay_ms: float, jitter_ms: float, seed: int | None = None) -> None:
        self._delay = delay_ms / 1000.0
        self._jitter = jitter_ms / 1000.0
        self._random = random.Random(seed)
        self._held: list[tuple[float, int, netfilterqueue.Packet]] = []
        self._order = itertools.count()

    def hold(self, packet: netfilterqueue.Packet) -> None:
        packet.retain()
        wait = max(0.0, self._delay + self._random.uniform(-self._jitter, self._jitter))
        heapq.heappush(self._held, (time.monotonic() + wait, next(self._order), packet))

    def release_due(self) -> float | None:
        """Accept every packet whose time has come; seconds until the next one (``None``: none held)."""
        now = time.monotonic()
        while self._held and self._held[0][0] <= now:
            heapq.heappop(self._held)[2].accept()
        return self._held[0][0] - now if self._held else None


def serve(queue: int, delayer: Delayer) -> None:
    nfq = netfilterqueue.NetfilterQueue()
    nfq.bind(queue, delayer.hold, max_len=QUEUE_LENGTH, mode=netfilterqueue.COPY_PACKET, range=COPY_BYTES)
    running = True

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    fd = nfq.get_fd()
    print("ready", flush=True)
    try:
        while running:
            wait = delayer.release_due()
            readable, _, _ = select.select([fd, sys.stdin], [], [], 0.5 if wait is None else wait)
            if sys.stdin in readable and not os.read(sys.stdin.fileno(), 1):
                break
            if fd in readable:
                nfq.run(block=False)
    finally:
        nfq.unbind()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--queue", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, required=True)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    serve(args.queue, Delayer(args.delay_ms, args.jitter_ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
