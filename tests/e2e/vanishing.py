"""A receiver's mDNS announcement in a process of its own, for tests where it vanishes without a goodbye.

In the tests, :func:`publish_in_child` starts ``python -m tests.e2e.vanishing NAME``, which publishes NAME on
loopback with :class:`~coalesce_common.discovery.ReceiverPublisher`, says so on stdout and stays until its
stdin closes. ``kill()`` is the power cut: SIGKILL, so no goodbye packet ever leaves. ``freeze()`` and
``thaw()`` (SIGSTOP, SIGCONT) are a network that drops out for a while and comes back: the publisher neither
answers nor says goodbye meanwhile, then answers again with the same records.

``CONFIRM_INTERVAL`` and ``CONFIRM_TIMEOUT`` are the browser's confirmation timings shrunk for these tests,
and ``SILENT_FOR_AT_MOST`` how long a silent receiver may then stay listed.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from coalesce_common.discovery import SERVICE_TYPE, ReceiverInfo, ReceiverPublisher
from tests.e2e.child import ready_child

READY = "published"
START_TIMEOUT = 30.0  # a Python start and zeroconf's probing (~1.2 s), on a loaded 2-core machine
PORT = 8443  # advertised only: nothing listens there, the tests look at mDNS alone
# The interval stays above one second: a responder multicasts a record at most once a second (RFC 6762 §6),
# so asking faster would delay its answers past the timeout.
CONFIRM_INTERVAL = 1.5
CONFIRM_TIMEOUT = 1.0
SILENT_FOR_AT_MOST = 3 * CONFIRM_INTERVAL + 2.0  # two missed rounds at worst (see ReceiverBrowser), and slack


class PublisherProcess:
    """The child publishing ``name``; ``key`` is the instance name a browser reports it under."""

    def __init__(self, name: str, process: asyncio.subprocess.Process) -> None:
        self.name = name
        self.key = f"{name}.{SERVICE_TYPE}"
        self._process = process

    def kill(self) -> None:
        """Stop the publisher at once, as a power cut would: no goodbye packet."""
        self._process.send_signal(signal.SIGKILL)

    def freeze(self) -> None:
        """Stop the publisher where it stands: it neither answers nor says goodbye until :meth:`thaw`."""
        self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._process.send_signal(signal.SIGCONT)


@asynccontextmanager
async def publish_in_child(name: str) -> AsyncIterator[PublisherProcess]:
    """Publish ``name`` from a child process, announced once this yields; killed on exit."""
    async with ready_child(
        "tests.e2e.vanishing", name, ready=READY, timeout=START_TIMEOUT, what=f"the publisher of {name!r}"
    ) as process:
        yield PublisherProcess(name, process)


async def _publish(name: str) -> None:
    info = ReceiverInfo(
        name=name,
        receiver_id=f"child-{name.lower().replace(' ', '-')}",
        addresses=("127.0.0.1",),
        port=PORT,
        pin_required=False,
        fingerprint="00" * 32,
    )
    publisher = ReceiverPublisher(info, interfaces=["127.0.0.1"])
    await publisher.start()
    try:
        print(READY, flush=True)
        await asyncio.to_thread(sys.stdin.read)  # until the test is gone, should it not kill us
    finally:
        await publisher.aclose()


if __name__ == "__main__":
    asyncio.run(_publish(sys.argv[1]))
