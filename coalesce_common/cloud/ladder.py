"""The fallback ladder: which way this computer's media can reach the cloud's TURN relay, found at once.

The rungs, best first: **UDP** (peer to peer is possible, and TURN over UDP when it is not), **TURN over
TCP**, **TURN over TLS** (port 443 in production: what hotel Wi-Fi and guarded offices let through). Each
goes the way the proxy resolver says; behind a proxy UDP is not tried (a proxy carries TCP only).

The rungs are tried in parallel, not in turn, so a blocked one costs no time-out of its own:

- UDP is the STUN answer :func:`~coalesce_common.cloud.turn.order_by_rtt` already waited for (1 s) when
  it ordered the regions. When the region answered, UDP is chosen and nothing else is tried.
- Otherwise a TCP and a TLS allocation start together; each is given back as soon as it is made. TCP is
  taken when it works; TLS when TCP has failed, or has not answered within :data:`GRACE` of TLS working.

Why probe before building the peer connection: aiortc hands aioice one TURN server only, and aioice waits
for every candidate it gathers (up to 5 s) before the offer leaves, so a blocked rung inside the peer
connection would hold up every share on that network. Racing several peer connections would need one PIN
pairing each (and the room would see several offers); teaching aioice several TURN servers would mean
replacing its whole gathering method, which has no hook. A probe is one allocation, given back at once.
:func:`climb` with ``every_rung`` tries all three to the end, for ``coalesce doctor``.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

from coalesce_common.cloud.turn import TurnServer, TurnTransport, tls_endpoint
from coalesce_common.errors import MediaError
from coalesce_common.net.proxy import ProxyResolver
from coalesce_common.net.turn import TurnRoute

RUNGS: tuple[TurnTransport, ...] = ("udp", "tcp", "tls")
NAMES: dict[TurnTransport, str] = {"udp": "UDP", "tcp": "TCP", "tls": "TLS"}
PROBE_TIMEOUT = 5.0
"""Seconds a TCP or TLS allocation may take before that rung counts as blocked."""
GRACE = 0.5
"""Seconds the better TCP rung still gets once TLS has worked."""


@dataclass(frozen=True)
class Step:
    """One rung, as tried: ``ok`` is ``None`` when it was not tried (``detail`` says why)."""

    transport: TurnTransport
    ok: bool | None
    detail: str
    seconds: float | None = None


@dataclass(frozen=True)
class Ladder:
    """What :func:`climb` found for one TURN region: each rung, and the one the share uses."""

    region: str
    steps: tuple[Step, ...]
    chosen: TurnTransport | None
    via: str = ""
    """The proxy TURN goes through (its label, never a password), or ``""`` when it goes directly."""

    @property
    def relay_only(self) -> bool:
        """Whether media can only go through the relay (UDP is blocked or a proxy is the way out)."""
        return self.chosen in ("tcp", "tls")

    def relay_path(self) -> str:
        """How relayed media travels, for people: ``"over TLS through the local relay"`` (and the proxy)."""
        if self.chosen is None:
            return ""
        path = f"over {NAMES[self.chosen]} through the {self.region} relay"
        return f"{path}, via the proxy {self.via}" if self.via else path

    def failure(self) -> str:
        """The sentence for a share that found no rung."""
        tried = "; ".join(f"{NAMES[s.transport]}: {s.detail}" for s in self.steps if s.ok is False)
        return (
            f"No way to the Coalesce cloud's relay works from this network ({tried}). "
            "Ask your IT administrator to allow TCP port 443 to the cloud, or set the proxy in Settings."
        )


async def proxy_on_the_way(resolver: ProxyResolver, server: TurnServer) -> str:
    """The proxy on the way to ``server``'s TURN over TLS (its label, no password), or ``""`` when it is
    reached directly. Behind a proxy UDP is assumed blocked: media only through TURN, tunnelled by it."""
    url = server.url("tls")
    if url is None or resolver.always_direct:
        return ""
    host, port = tls_endpoint(url)
    hops = await resolver.resolve(host, port)
    return "" if hops[0].is_direct else hops[0].label


def forced(server: TurnServer, transport: TurnTransport, *, via: str = "", why: str) -> Ladder:
    """The ladder when the user chose the rung (``--relay-only``): nothing is tried."""
    steps = {t: Step(t, None, f"not tried: {why}") for t in RUNGS if t != transport}
    steps[transport] = Step(transport, None, f"chosen: {why}")
    return _ladder(server, steps, transport, via)


async def climb(
    server: TurnServer,
    route: TurnRoute,
    *,
    via: str = "",
    every_rung: bool = False,
    timeout: float = PROBE_TIMEOUT,
    grace: float = GRACE,
) -> Ladder:
    """Find the best rung to ``server`` the way ``route`` goes (through the proxy ``via``, if named)."""
    steps: dict[TurnTransport, Step] = {}
    if via:
        steps["udp"] = Step("udp", None, f"not tried: the way out is the proxy {via}")
    elif math.isfinite(server.rtt):
        steps["udp"] = Step("udp", True, f"STUN answered in {server.rtt * 1000:.0f} ms", server.rtt)
    else:
        steps["udp"] = Step("udp", False, "no STUN answer: UDP is blocked")
    relayed: tuple[TurnTransport, ...] = ("tcp", "tls")
    rungs = [t for t in relayed if server.url(t) is not None]
    for transport in relayed:
        if transport not in rungs:
            steps[transport] = Step(transport, None, f"not offered by the {server.region} region")
    if steps["udp"].ok and not every_rung:
        for transport in rungs:
            steps[transport] = Step(transport, None, "not needed: UDP works")
        return _ladder(server, steps, "udp", via)
    probes: dict[TurnTransport, asyncio.Future[float]] = {
        t: asyncio.ensure_future(_probe(route, server, t, timeout)) for t in rungs
    }
    try:
        await _settle(probes, grace=grace, every_rung=every_rung)
    finally:
        for task in probes.values():
            task.cancel()
        await asyncio.gather(*probes.values(), return_exceptions=True)
    worked = [t for t in RUNGS if t in probes and _worked(probes[t])]
    chosen = "udp" if steps["udp"].ok else next(iter(worked), None)
    for transport, task in probes.items():
        steps[transport] = _step(transport, task, timeout, chosen)
    return _ladder(server, steps, chosen, via)


def _worked(task: asyncio.Future[float]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None


async def _probe(route: TurnRoute, server: TurnServer, transport: TurnTransport, timeout: float) -> float:
    url = server.url(transport)
    assert url is not None  # only offered rungs are probed
    return await route.probe(url, server.username, server.credential, timeout=timeout)


async def _settle(
    probes: dict[TurnTransport, asyncio.Future[float]], *, grace: float, every_rung: bool
) -> None:
    """Return once the best rung that can still work has: at once when every better one failed, or
    ``grace`` after the first that worked (every probe's end, with ``every_rung``)."""
    order = list(probes)
    deadline: float | None = None
    while True:
        pending = [probes[t] for t in order if not probes[t].done()]
        if not pending:
            return
        if not every_rung:
            for transport in order:
                task = probes[transport]
                if not task.done():
                    break  # a better rung is still being tried
                if task.exception() is None:
                    return  # the best rung that can work did
            worked = [t for t in order if probes[t].done() and probes[t].exception() is None]
            if worked and deadline is None:
                deadline = time.monotonic() + grace
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        done, _ = await asyncio.wait(pending, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        if not done:
            return  # the grace is over: take the best that worked


def _step(
    transport: TurnTransport, task: asyncio.Future[float], timeout: float, chosen: TurnTransport | None
) -> Step:
    if not task.done() or task.cancelled():  # given up once another rung was settled on
        assert chosen is not None
        if RUNGS.index(chosen) < RUNGS.index(transport):
            return Step(transport, None, f"not needed: {NAMES[chosen]} works")
        return Step(transport, False, f"no answer yet when {NAMES[chosen]} had worked")
    error = task.exception()
    if error is None:
        seconds = task.result()
        return Step(transport, True, f"relay allocated in {seconds * 1000:.0f} ms", seconds)
    if isinstance(error, MediaError):
        return Step(transport, False, str(error))
    return Step(transport, False, f"failed after {timeout:g} s")


def _ladder(
    server: TurnServer, steps: dict[TurnTransport, Step], chosen: TurnTransport | None, via: str
) -> Ladder:
    return Ladder(server.region, tuple(steps[t] for t in RUNGS), chosen, via)
