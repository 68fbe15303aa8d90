"""Network namespaces for tests and benchmarks: a namespace joined to the host by a veth pair.

:class:`Netns` is a namespace ``cotest-<pid>-<n>`` on its own 10.213.X.0/24 (host side ``.1``, namespace
side ``.2``, default route via the host), with an optional nftables firewall *inside* the namespace
(:meth:`Netns.firewall`: only TCP to the listed (ip, port) pairs leaves it). Services the host binds to
127.0.0.1 are out of reach from inside: 127.0.0.1 there is the namespace's own loopback.

Names carry the owner's PID, so what a killed run left can be found and removed (``tests/proxy/lab.py``
does, with the proxies' own leftovers); veths are ``cot<X>h``/``cot<X>n`` with the namespace name as
alias. It all needs root. :mod:`coalesce_testing.impair` makes the veth lossy, slow or narrow.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import json
import logging
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from coalesce_cloud.servers.errors import ServerNotInstalledError
from coalesce_cloud.servers.process import find_executable, pid_alive

log = logging.getLogger(__name__)

SUBNET_PREFIX = "10.213"
"""Namespace subnets are 10.213.X.0/24, X chosen among those no host interface uses."""
OWNER_PREFIX = "cotest"
FIREWALL_TABLE = "coalesce_lab"
COMMAND_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
POLL_FIRST, POLL_MAX = 0.01, 0.2

NETNS_NAME = re.compile(rf"^{OWNER_PREFIX}-(\d+)-\d+$")
VETH_NAME = re.compile(r"^cot\d{1,3}h$")
_netns_counter = itertools.count()
_subnet_lock = threading.Lock()


class LabError(Exception):
    """The lab could not be built, changed or torn down; the message says which command failed."""


class LabUnavailableError(LabError):
    """This machine cannot host the lab (not root, a tool missing, namespaces not permitted)."""


def owner_tag(pid: int | None = None) -> str:
    return f"{OWNER_PREFIX}-{os.getpid() if pid is None else pid}"


# ------------------------------------------------------------------------------------------- commands


def tool(name: str, package: str) -> str:
    try:
        return str(find_executable(name, package=package))
    except ServerNotInstalledError as exc:
        raise LabUnavailableError(str(exc)) from exc


def run_command(
    args: Sequence[str], *, check: bool = True, input: str | None = None, timeout: float = COMMAND_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            list(args), input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"{' '.join(args)}: {exc}") from exc
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(args)} failed with status {result.returncode}: {result.stderr.strip()}")
    return result


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabUnavailableError("the proxy lab needs root (network namespaces, nftables, system users)")


def free_port(host: str) -> int:
    """A TCP port free on ``host`` right now (the kernel picks it; a server should bind it soon)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    interval = POLL_FIRST
    while not condition():
        if time.monotonic() >= deadline:
            raise LabError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)
        interval = min(interval * 2, POLL_MAX)


# ------------------------------------------------------------------------------------------ namespace


def _used_subnets() -> set[int]:
    """The X of every 10.213.X.0/24 a host interface has an address in, or a lab veth is named after."""
    used: set[int] = set()
    addresses = json.loads(run_command(["ip", "-j", "-4", "addr", "show"]).stdout or "[]")
    lab_net = ipaddress.ip_network(f"{SUBNET_PREFIX}.0.0/16")
    for link in addresses:
        for info in link.get("addr_info", []):
            network = ipaddress.ip_interface(f"{info['local']}/{info['prefixlen']}").network
            if network.overlaps(lab_net):
                if network.prefixlen <= 16:
                    return set(range(256))  # someone routes the whole range: stay out of it
                first, last = network.network_address.packed[2], network.broadcast_address.packed[2]
                used.update(range(first, last + 1))
        name = link.get("ifname", "")
        if VETH_NAME.match(name):
            used.add(int(name[3:-1]))
    return used


@dataclass(frozen=True)
class SecondLink:
    """Another veth between the host and a namespace (:meth:`Netns.add_link`), on 10.213.X.0/24."""

    index: int
    host_ifname: str
    ns_ifname: str

    @property
    def host_ip(self) -> str:
        return f"{SUBNET_PREFIX}.{self.index}.1"

    @property
    def ns_ip(self) -> str:
        return f"{SUBNET_PREFIX}.{self.index}.2"


class Netns:
    """A network namespace ``cotest-<pid>-<n>`` on 10.213.X.0/24, joined to the host by a veth pair.

    Created in the constructor (raises :class:`LabUnavailableError` when this machine cannot); ``close`` (or
    leaving the ``with`` block) kills what still runs inside, deletes namespace and veth, and checks both are
    gone. No firewall until :meth:`firewall` is called: until then the namespace reaches every host address.
    """

    def __init__(self) -> None:
        require_root()
        self._ip = tool("ip", "iproute2")
        self._nft = tool("nft", "nftables")
        self.name = ""
        self.host_ifname = ""
        self.ns_ifname = ""
        self.index = -1
        self.allowed: tuple[tuple[str, int], ...] | None = None
        self._more_links: list[SecondLink] = []
        self._closed = False
        try:
            self._create()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"<Netns {self.name} {self.subnet if self.index >= 0 else '-'} closed={self._closed}>"

    # ------------------------------------------------------------------------------------- addresses

    @property
    def subnet(self) -> str:
        return f"{SUBNET_PREFIX}.{self.index}.0/24"

    @property
    def host_ip(self) -> str:
        """The host's address on the veth: bind here what the namespace may reach (proxies, PAC server)."""
        return f"{SUBNET_PREFIX}.{self.index}.1"

    @property
    def ns_ip(self) -> str:
        return f"{SUBNET_PREFIX}.{self.index}.2"

    # -------------------------------------------------------------------------------------- creation

    def _create(self) -> None:
        while True:
            name = f"{owner_tag()}-{next(_netns_counter)}"
            result = run_command([self._ip, "netns", "add", name], check=False)
            if result.returncode == 0:
                self.name = name
                break
            if "File exists" not in result.stderr:
                raise LabUnavailableError(f"cannot create a network namespace: {result.stderr.strip()}")
        self._create_veth()
        ip, name = self._ip, self.name
        run_command([ip, "link", "set", self.host_ifname, "alias", name])
        run_command([ip, "addr", "add", f"{self.host_ip}/24", "dev", self.host_ifname])
        run_command([ip, "link", "set", self.host_ifname, "up"])
        run_command([ip, "-n", name, "link", "set", "lo", "up"])
        run_command([ip, "-n", name, "addr", "add", f"{self.ns_ip}/24", "dev", self.ns_ifname])
        run_command([ip, "-n", name, "link", "set", self.ns_ifname, "up"])
        # A default route, so that "direct" traffic to any address meets the firewall rather than ENETUNREACH.
        run_command([ip, "-n", name, "route", "add", "default", "via", self.host_ip])
        log.info("netns %s up on %s (host %s)", name, self.subnet, self.host_ip)

    def _create_veth(self) -> None:
        self.index, self.host_ifname, self.ns_ifname = self._new_veth()

    def _new_veth(self) -> tuple[int, str, str]:
        """Pick a free X and create veth ``cot<X>h`` (host) / ``cot<X>n`` (namespace). The host-side name is
        the lock: ``ip link add`` fails if a concurrent run took the same X first, and we try the next."""
        with _subnet_lock:
            used = _used_subnets()
            candidates = [x for x in range(1, 255) if x not in used]
            random.shuffle(candidates)
            for x in candidates:
                host_if, ns_if = f"cot{x}h", f"cot{x}n"
                peer = ["peer", "name", ns_if, "netns", self.name]
                result = run_command([self._ip, "link", "add", host_if, "type", "veth", *peer], check=False)
                if result.returncode == 0:
                    return x, host_if, ns_if
                if "File exists" not in result.stderr:
                    raise LabUnavailableError(f"cannot create a veth pair: {result.stderr.strip()}")
        raise LabError(f"no free /24 left in {SUBNET_PREFIX}.0.0/16")

    def add_link(self) -> SecondLink:
        """A second veth between the host and the namespace, on a /24 of its own, up but not routed: what a
        laptop's second network (Ethernet beside Wi-Fi) is. :meth:`move_to` sends the namespace's traffic
        through it. Removed with the namespace."""
        index, host_if, ns_if = self._new_veth()
        link = SecondLink(index, host_if, ns_if)
        self._more_links.append(link)
        ip, name = self._ip, self.name
        run_command([ip, "link", "set", host_if, "alias", f"{name} (second)"])
        run_command([ip, "addr", "add", f"{link.host_ip}/24", "dev", host_if])
        run_command([ip, "link", "set", host_if, "up"])
        run_command([ip, "-n", name, "addr", "add", f"{link.ns_ip}/24", "dev", ns_if])
        run_command([ip, "-n", name, "link", "set", ns_if, "up"])
        return link

    def move_to(self, link: SecondLink) -> None:
        """The namespace leaves its first link for ``link``, as a laptop whose Wi-Fi drops while its Ethernet
        is plugged in: the first veth loses its address and goes down, and the default route goes through
        ``link``. The host's first-link address stays reachable, through the host, as any host address is."""
        ip, name = self._ip, self.name
        run_command([ip, "-n", name, "addr", "flush", "dev", self.ns_ifname])
        run_command([ip, "-n", name, "link", "set", self.ns_ifname, "down"])
        run_command([ip, "-n", name, "route", "replace", "default", "via", link.host_ip])
        log.info("netns %s moved to its second link %s", name, link.ns_ip)

    # ------------------------------------------------------------------------------------------- use

    def exec_args(self, cmd: Sequence[str]) -> list[str]:
        """``cmd`` prefixed so that it runs inside the namespace."""
        return ["ip", "netns", "exec", self.name, *cmd]

    def run(
        self, cmd: Sequence[str], *, timeout: float = COMMAND_TIMEOUT, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` inside the namespace and capture its output (text); never raises on a bad status."""
        return subprocess.run(
            self.exec_args(cmd), input=input, capture_output=True, text=True, timeout=timeout, check=False
        )

    def firewall(self, allow: Iterable[tuple[str, int]]) -> None:
        """Let only TCP to these (ip, port) pairs out of the namespace; replaces any earlier list atomically.

        Established connections survive a replacement (conntrack). Loopback inside the namespace stays open,
        and so do replies to connections coming in from the host (no input rules).
        """
        pairs = tuple(_check_endpoint(ip, port) for ip, port in allow)
        run_command(self.exec_args([self._nft, "-f", "-"]), input=render_firewall(pairs))
        self.allowed = pairs
        log.info("netns %s firewall: only TCP to %s", self.name, pairs or "nothing")

    def clear_firewall(self) -> None:
        """Remove the firewall: everything may leave again."""
        script = f"table inet {FIREWALL_TABLE}\ndelete table inet {FIREWALL_TABLE}\n"
        run_command(self.exec_args([self._nft, "-f", "-"]), input=script)
        self.allowed = None

    def ruleset(self) -> str:
        """The namespace's nftables ruleset as ``nft list ruleset`` prints it (for failure messages)."""
        return run_command(self.exec_args([self._nft, "list", "ruleset"])).stdout

    def pids(self) -> list[int]:
        """Processes running inside the namespace."""
        if not self.name:
            return []
        result = run_command([self._ip, "netns", "pids", self.name], check=False)
        return [int(word) for word in result.stdout.split() if word.isdigit()]

    # -------------------------------------------------------------------------------------- teardown

    def close(self) -> None:
        """Kill what still runs inside, delete the namespace and the veth, and check they are gone.
        Safe to call again."""
        if self._closed:
            return
        self._closed = True
        leftovers = self.pids()
        if leftovers:
            log.warning("netns %s: killing processes still inside: %s", self.name, leftovers)
            for pid in leftovers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not any(map(pid_alive, leftovers)), STOP_TIMEOUT, "processes to die")
        if self.name:
            run_command([self._ip, "netns", "del", self.name], check=False)
        host_ifnames = [
            name for name in [self.host_ifname, *(link.host_ifname for link in self._more_links)] if name
        ]
        for host_ifname in host_ifnames:
            # Deleting the namespace destroys the pair, unless something still holds the namespace open.
            run_command([self._ip, "link", "del", host_ifname], check=False)
        problems = []
        if self.name and self.name in netns_names():
            problems.append(f"namespace {self.name}")
        problems += [f"veth {name}" for name in host_ifnames if link_exists(name)]
        if problems:
            raise LabError(f"still there after close: {', '.join(problems)}")
        log.info("netns %s removed", self.name)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _check_endpoint(ip: str, port: int) -> tuple[str, int]:
    address = ipaddress.ip_address(ip)  # raises ValueError on anything but an IP literal
    if not 0 < port < 65536:
        raise ValueError(f"bad port {port}")
    return str(address), port


def render_firewall(allow: Sequence[tuple[str, int]]) -> str:
    """An nft script that (re)creates the lab's output filter in one transaction.

    The leading ``table``/``delete table`` pair makes the script work whether or not the table exists.
    ``reject with tcp reset`` on output turns a connect() into an immediate ECONNREFUSED; the final
    ``reject`` makes send() on UDP (and anything else) fail at once with EPERM, as a drop on output would,
    and also queues an ICMP error (ECONNREFUSED on a connected UDP socket's next call).
    """
    families = {4: "ip", 6: "ip6"}
    accepts = [
        f"        {families[ipaddress.ip_address(ip).version]} daddr {ip} tcp dport {port} accept"
        for ip, port in allow
    ]
    return "\n".join(
        [
            f"table inet {FIREWALL_TABLE}",
            f"delete table inet {FIREWALL_TABLE}",
            f"table inet {FIREWALL_TABLE} {{",
            "    chain output {",
            "        type filter hook output priority filter; policy drop;",
            '        oifname "lo" accept',
            "        ct state established,related accept",
            *accepts,
            "        meta l4proto tcp reject with tcp reset",
            "        reject with icmpx admin-prohibited",
            "    }",
            "}",
            "",
        ]
    )


def netns_names() -> list[str]:
    result = run_command(["ip", "-j", "netns", "list"], check=False)
    return [entry["name"] for entry in json.loads(result.stdout or "[]")]


def link_exists(name: str) -> bool:
    return run_command(["ip", "link", "show", "dev", name], check=False).returncode == 0
