"""Hostile neighbours for the lockout tests: raw pairing attempts from chosen addresses in 127.0.0.0/8.

:func:`knock` makes one attempt from one local address: a TLS WebSocket on a socket bound to that address,
a hello, and (given a PIN) the SPAKE2 pair; it tells how the receiver answered.

:func:`guess_in_child` starts ``python -m tests.e2e.guessers PORT FIRST COUNT``: a process of its own (so that
the guessing does not share the receiver's event loop, as on a real network) in which every address
127.0.0.FIRST … 127.0.0.(FIRST+COUNT-1) guesses wrong PINs as fast as it is answered, ignoring every
``retry_after``. It says ``guessing`` on stdout once a first wrong PIN was answered, and when its stdin
closes it prints the tally of answers as one JSON line and exits.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from coalesce_common import PROTOCOL_VERSION
from coalesce_common.errors import ProtocolError
from coalesce_common.protocol import Challenge, Denied, Error, Hello, encode, parse
from coalesce_common.protocol.pairing import SenderPairing
from coalesce_common.signaling.websocket import SIGNALING_PATH
from coalesce_common.tls import fingerprint_of_der
from tests.e2e.child import ready_child

READY = "guessing"
START_TIMEOUT = 60.0  # a Python start and a first answer, on a loaded 2-core machine
WRONG_PIN = "0000"


@dataclass(frozen=True)
class Outcome:
    """How the receiver answered one attempt: ``challenge`` (no PIN was sent), a deny reason such as
    ``wrong-pin`` or ``throttled``, ``welcome``, ``error:<code>``, or ``dropped`` (no answer)."""

    kind: str
    retry_after: float | None = None


def _client_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def knock(port: int, local_address: str, pin: str | None, *, timeout: float = 10.0) -> Outcome:
    """One pairing attempt from ``local_address`` to the receiver on 127.0.0.1:``port``."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        sock.bind((local_address, 0))
        await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), timeout)
    except (OSError, TimeoutError):
        sock.close()
        # A bind that fails (the address's ports all in TIME_WAIT after a flood) fails without awaiting
        # anything: yield, or a caller knocking in a loop would hold the event loop for ever (every
        # time-out included: the test would hang instead of failing).
        await asyncio.sleep(0)
        return Outcome("dropped")
    try:
        async with (
            asyncio.timeout(timeout),
            ws_connect(
                f"wss://127.0.0.1:{port}{SIGNALING_PATH}",
                sock=sock,
                ssl=_client_context(),
                proxy=None,
                close_timeout=1,
            ) as ws,
        ):
            await ws.send(encode(Hello(v=PROTOCOL_VERSION, sender_name="Guesser", sender_id=local_address)))
            reply = parse(await ws.recv())
            if isinstance(reply, Challenge):
                if pin is None or reply.spake is None:
                    return Outcome("challenge")
                der = ws.transport.get_extra_info("ssl_object").getpeercert(binary_form=True)
                pair, _ = SenderPairing(pin).finish(reply.spake, fingerprint_of_der(der))
                await ws.send(encode(pair))
                reply = parse(await ws.recv())
            if isinstance(reply, Denied):
                return Outcome(reply.reason.value, reply.retry_after)
            if isinstance(reply, Error):
                return Outcome(f"error:{reply.code}")
            return Outcome(reply.TYPE)
    except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake, ProtocolError):
        sock.close()
        return Outcome("dropped")


@dataclass
class Tally:
    """What the guessers were answered, over how many seconds."""

    answers: Counter[str]
    seconds: float


class Guessers:
    def __init__(self, process: asyncio.subprocess.Process, started: float) -> None:
        self._process = process
        self._started = started

    async def stop(self) -> Tally:
        """Stop guessing; return the tally."""
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.close()
        async with asyncio.timeout(30):
            line = await self._process.stdout.readline()
        return Tally(Counter(json.loads(line)), time.monotonic() - self._started)


@asynccontextmanager
async def guess_in_child(port: int, first: int, count: int) -> AsyncIterator[Guessers]:
    """Guessers on 127.0.0.``first`` … in a child process, guessing once this yields; killed on exit."""
    started = time.monotonic()
    async with ready_child(
        "tests.e2e.guessers",
        str(port),
        str(first),
        str(count),
        ready=READY,
        timeout=START_TIMEOUT,
        what="the guessers",
    ) as process:
        yield Guessers(process, started)


async def _guess(port: int, first: int, count: int) -> None:
    answers: Counter[str] = Counter()
    stopping = False

    async def guess_from(address: str) -> None:
        while not stopping:  # a flag as well as the cancel: 3.11's wait_for may swallow a cancel
            outcome = await knock(port, address, WRONG_PIN)
            answers[outcome.kind] += 1
            if outcome.kind == "wrong-pin" and answers["wrong-pin"] == 1:
                print(READY, flush=True)

    tasks = [asyncio.ensure_future(guess_from(f"127.0.0.{first + i}")) for i in range(count)]
    try:
        await asyncio.to_thread(sys.stdin.read)  # until the test says stop (or is gone)
    finally:
        stopping = True
        print(json.dumps(answers), flush=True)  # attempts still under way are not counted
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(_guess(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
