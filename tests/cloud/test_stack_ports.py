"""The local cloud's port picks: no two servers are handed the same port, and coturn's port is free for
both TCP and UDP (a UDP-only pick once handed coturn the port ejabberd was about to bind, and
``coalesce-cloud up`` failed with "address already in use").

Run in a namespace whose ephemeral range is 32 ports with half of them taken for TCP, so that a picker
which lets the kernel repeat itself, or picks coturn's port for UDP alone, is caught in a few rounds."""

from __future__ import annotations

import json
import sys
import textwrap

from coalesce_testing.netns import Netns
from tests.netlab import netns  # noqa: F401  (the fixture)

FIRST, LAST = 40000, 40031
BUSY = range(FIRST, FIRST + 16)
"""Held for TCP by the script before it picks: free for UDP, taken for TCP."""
ROUNDS = 20

SCRIPT = textwrap.dedent(
    f"""
    import dataclasses, json, socket
    from coalesce_cloud.stack import StackPorts

    held = []
    for port in range({BUSY.start}, {BUSY.stop}):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", port))
        sock.listen()
        held.append(sock)
    rounds = []
    for _ in range({ROUNDS}):
        ports = StackPorts(xmpp_tls={LAST})
        ports.fill("127.0.0.1")
        rounds.append(dataclasses.asdict(ports))
    print(json.dumps(rounds))
    """
)


def test_every_server_gets_its_own_port_and_coturns_is_free_for_tcp_too(netns: Netns) -> None:  # noqa: F811
    sysctl = netns.run(["sysctl", "-w", f"net.ipv4.ip_local_port_range={FIRST} {LAST}"])
    assert sysctl.returncode == 0, sysctl.stderr
    result = netns.run([sys.executable, "-c", SCRIPT])
    assert result.returncode == 0, result.stderr
    for ports in json.loads(result.stdout):
        servers = {name: port for name, port in ports.items() if not name.startswith("relay_")}
        assert len(set(servers.values())) == len(servers), ports
        assert ports["xmpp_tls"] == LAST, "a port given is kept"
        assert ports["turn"] not in BUSY, f"coturn's port {ports['turn']} is taken for TCP"
        assert not set(servers.values()) & set(BUSY), ports
        assert not ports["relay_min"] <= ports["turn"] <= ports["relay_max"], ports
