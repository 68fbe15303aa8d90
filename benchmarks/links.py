"""The network a benchmark case runs over: loopback, or a lossy, slow or narrow link between namespaces.

On ``loopback`` every process runs here and talks over 127.0.0.1. On any other link the senders (Coalesce's
sender processes, ffmpeg's encoder, the sending Chromium) run inside a network namespace
(:class:`coalesce_testing.netns.Netns`) and reach the receivers, which stay here, over the namespace's veth,
whose both ends :class:`coalesce_testing.impair.ImpairedLink` impairs alike: the media and its feedback
(RTCP, acknowledgements) cross the same bad link, as between a laptop on a poor network and the room. The
screen the senders capture is still this machine's Xvfb (X's socket is a file, which a namespace reaches).

The links the issue names are :data:`LINKS`; ``--links`` picks among them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from coalesce_testing.impair import ImpairedLink, Impairment
from coalesce_testing.netns import Netns

LINKS: dict[str, Impairment] = {
    "loopback": Impairment(),
    "loss2": Impairment(loss_percent=2),
    "loss5": Impairment(loss_percent=5),
    "delay50": Impairment(delay_ms=50, jitter_ms=10),
    "cap10": Impairment(rate_mbit=10),
}
"""Link name -> what is done to each packet, each way (``delay50``: 50 ± 10 ms each way, so about 100 ms of
round trip; ``cap10``: 10 Mbit/s each way)."""


@dataclass(frozen=True)
class Network:
    """Where a case's senders run and the addresses each end uses."""

    name: str
    description: str
    sender_ip: str = "127.0.0.1"
    """The senders' own address: their only ICE host candidate."""
    receiver_ip: str = "127.0.0.1"
    """Where receivers listen, and their only ICE host candidate."""
    sender_prefix: Sequence[str] = field(default_factory=tuple)
    """Put before a sender's command line to run it in the senders' namespace (empty on loopback)."""

    def sender_command(self, command: Sequence[str]) -> list[str]:
        return [*self.sender_prefix, *command]


LOOPBACK = Network("loopback", "loopback")


@contextlib.contextmanager
def network(name: str) -> Iterator[Network]:
    """The link called ``name`` (a key of :data:`LINKS`), set up until the block ends."""
    impairment = LINKS[name]
    if name == "loopback":
        yield LOOPBACK
        return
    with Netns() as netns, ImpairedLink(netns, impairment):
        yield Network(
            name=name,
            description=impairment.describe(),
            sender_ip=netns.ns_ip,
            receiver_ip=netns.host_ip,
            sender_prefix=tuple(netns.exec_args([])),
        )
