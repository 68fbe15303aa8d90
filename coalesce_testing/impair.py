"""A lossy, slow or narrow link: impairments on the veth of a :class:`~coalesce_testing.netns.Netns`.

This kernel has no ``netem`` qdisc, so each impairment is built from what it has, at
both ends (so both directions are impaired alike, as on a real bad link):

- **loss**: an nftables rule ``numgen random mod 1000 < N drop`` on what each end receives (0.1 % steps);
- **delay and jitter**: an ``NFQUEUE`` rule sending every packet to a netfilter queue served by
  :mod:`coalesce_testing.delayer`, which accepts each one ``delay ± jitter`` ms later (one program per end:
  inside the namespace for the namespace's side). The rule is iptables' (``iptables-legacy``): this kernel
  has the xtables ``NFQUEUE`` target but not nftables' own ``queue`` expression (``CONFIG_NFT_QUEUE``);
- **bandwidth**: a ``tbf`` qdisc (``tc qdisc replace dev … root tbf rate R``), which this kernel has.

On the way out, delay (iptables' filter table, output hook) comes before the cap (the qdisc); loss is
applied where the packet arrives (nftables, input hook). The host side's
rules sit in their own table named after the veth, so links of other namespaces are left alone.
It all needs root, like the namespace itself.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from coalesce_testing.netns import LabError, Netns, run_command, tool

ROOT = Path(__file__).resolve().parent.parent
TABLE = "coalesce_impair"
HOST_QUEUE_BASE = 3000
"""The host side's queue is this plus the veth's subnet index (queues are per network namespace, so the
host's must not clash between links; inside a namespace queue 0 is its own)."""
NS_QUEUE = 0
START_TIMEOUT = 10.0
TBF_BURST = "32kb"
TBF_LATENCY = "200ms"
"""How long a packet may wait in the cap's queue before it is dropped (as a full router buffer would)."""


@dataclass(frozen=True)
class Impairment:
    """What is done to every packet in each direction."""

    loss_percent: float = 0.0
    delay_ms: float = 0.0
    """One way, so the round trip gains twice this."""
    jitter_ms: float = 0.0
    rate_mbit: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.loss_percent <= 100.0:
            raise ValueError(f"loss must be 0-100 %, got {self.loss_percent}")
        if self.delay_ms < 0 or self.jitter_ms < 0 or self.jitter_ms > self.delay_ms:
            raise ValueError(f"need 0 <= jitter <= delay, got {self.delay_ms} ± {self.jitter_ms} ms")
        if self.rate_mbit is not None and self.rate_mbit <= 0:
            raise ValueError(f"a rate cap must be positive, got {self.rate_mbit} Mbit/s")

    def describe(self) -> str:
        parts = []
        if self.loss_percent:
            parts.append(f"{self.loss_percent:g} % loss")
        if self.delay_ms:
            spread = f" ± {self.jitter_ms:g}" if self.jitter_ms else ""
            parts.append(f"{self.delay_ms:g}{spread} ms")
        if self.rate_mbit is not None:
            parts.append(f"{self.rate_mbit:g} Mbit/s")
        return ", ".join(parts) or "clean"


def render_loss(table: str, ifname: str, loss_percent: float) -> str:
    """The nft script for one end: (re)creates ``table`` with the loss rule for what ``ifname`` receives.

    Dropped on the way *in*: a drop in the sender's output hook would fail its ``send()`` with EPERM, which
    no real lossy network does."""
    per_mille = round(loss_percent * 10)
    drop = "drop" if per_mille >= 1000 else f"numgen random mod 1000 < {per_mille} drop"  # 100 %: a blackout
    rules = [f'        iifname "{ifname}" {drop}']
    return "\n".join(
        [
            f"table inet {table}",
            f"delete table inet {table}",
            f"table inet {table} {{",
            "    chain input {",
            "        type filter hook input priority -10; policy accept;",
            *rules,
            "    }",
            "}",
            "",
        ]
    )


class _Delayer:
    """One :mod:`coalesce_testing.delayer` process, started with ``prefix`` (``ip netns exec …`` or none)."""

    def __init__(self, prefix: list[str], queue: int, impairment: Impairment) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        args = [
            *prefix, sys.executable, "-m", "coalesce_testing.delayer", "--queue", str(queue),
            "--delay-ms", f"{impairment.delay_ms:g}", "--jitter-ms", f"{impairment.jitter_ms:g}",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], START_TIMEOUT)
        line = self.process.stdout.readline() if ready else b""
        if line.strip() != b"ready":
            self.close()
            error = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
            raise LabError(f"the packet delayer for queue {queue} did not start: {error.strip()[-2000:]}")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class ImpairedLink:
    """Applies an :class:`Impairment` to both ends of ``netns``'s veth until :meth:`close`.

    The delayers start before the queue rules exist, so no packet ever meets a queue nobody serves (which
    the kernel would drop)."""

    def __init__(self, netns: Netns, impairment: Impairment) -> None:
        self.netns = netns
        self.impairment = impairment
        self._nft = tool("nft", "nftables")
        self._iptables = tool("iptables-legacy", "iptables")
        self._tc = tool("tc", "iproute2")
        self._host_table = f"{TABLE}_{netns.host_ifname}"
        self._host_queue = HOST_QUEUE_BASE + netns.index
        self._delayers: list[_Delayer] = []
        self._closed = False
        try:
            self._apply()
        except BaseException:
            self.close()
            raise

    def _apply(self) -> None:
        impairment, netns = self.impairment, self.netns
        if impairment.delay_ms:
            self._delayers.append(_Delayer(netns.exec_args([]), NS_QUEUE, impairment))
            self._delayers.append(_Delayer([], self._host_queue, impairment))
            for action in self._queue_rules("-A"):
                run_command(action)
        if impairment.loss_percent:
            ns_rules = render_loss(TABLE, netns.ns_ifname, impairment.loss_percent)
            run_command(netns.exec_args([self._nft, "-f", "-"]), input=ns_rules)
            host_rules = render_loss(self._host_table, netns.host_ifname, impairment.loss_percent)
            run_command([self._nft, "-f", "-"], input=host_rules)
        if impairment.rate_mbit is not None:
            tbf = ["root", "tbf", "rate", f"{impairment.rate_mbit:g}mbit", "burst", TBF_BURST,
                   "latency", TBF_LATENCY]  # fmt: skip
            run_command(netns.exec_args([self._tc, "qdisc", "replace", "dev", netns.ns_ifname, *tbf]))
            run_command([self._tc, "qdisc", "replace", "dev", netns.host_ifname, *tbf])

    def _queue_rules(self, action: str) -> list[list[str]]:
        """``iptables`` commands that add (``-A``) or delete (``-D``) the queue rule of both ends."""
        netns = self.netns
        ends: list[tuple[list[str], str, int]] = [
            (netns.exec_args([]), netns.ns_ifname, NS_QUEUE),
            ([], netns.host_ifname, self._host_queue),
        ]
        rule = ["-j", "NFQUEUE", "--queue-num"]
        return [
            [*prefix, self._iptables, "-w", action, "OUTPUT", "-o", ifname, *rule, str(queue)]
            for prefix, ifname, queue in ends
        ]

    def close(self) -> None:
        """Remove every rule, qdisc and delayer (the rules first, so no packet meets a dead queue)."""
        if self._closed:
            return
        self._closed = True
        netns = self.netns
        if self.impairment.delay_ms:
            for action in self._queue_rules("-D"):
                run_command(action, check=False)
        script = "table inet {t}\ndelete table inet {t}\n"
        run_command(netns.exec_args([self._nft, "-f", "-"]), input=script.format(t=TABLE), check=False)
        run_command([self._nft, "-f", "-"], input=script.format(t=self._host_table), check=False)
        if self.impairment.rate_mbit is not None:
            for prefix, ifname in ((netns.exec_args([]), netns.ns_ifname), ([], netns.host_ifname)):
                run_command([*prefix, self._tc, "qdisc", "del", "dev", ifname, "root"], check=False)
        for delayer in self._delayers:
            delayer.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
