"""A device whose ejabberd node dies logs in at the cluster's other node, and shares again.

Its own cluster (the fixture is per module): the test stops one of the two nodes.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

from coalesce_client.services.share import Share, ShareOptions, ShareTarget
from coalesce_cloud.servers.certs import CaFiles
from coalesce_cloud.servers.ejabberd import EjabberdCluster
from coalesce_common.cloud.device import connect_xmpp
from coalesce_common.cloud.rest import DeviceCredentials
from coalesce_common.signaling import SignalingChannel
from coalesce_common.signaling.xmpp import XmppAccount, XmppChannel, XmppNode, XmppSignaling
from coalesce_receiver.services.receiver import Receiver, ReceiverConfig
from tests.cloud.e2e.test_cluster import account_on

PIN = "4821"


async def test_a_device_whose_node_dies_logs_in_at_the_other_node_and_shares(
    ejabberd_cluster: EjabberdCluster, cloud_ca: CaFiles, camera_file: Path, tmp_path: Path
) -> None:
    node1, node2 = ejabberd_cluster.nodes
    box_account = await account_on(node2, "box-" + secrets.token_hex(4), cloud_ca)
    on_node1 = await account_on(node1, "sender-" + secrets.token_hex(4), cloud_ca)
    # What enrollment gives a device of a two-node cloud: its node, and the other one to fail over to.
    account = XmppAccount(
        on_node1.jid, on_node1.password, node1.host, node1.c2s_port, False, str(cloud_ca.cert),
        node1.c2s_tls_port, (XmppNode(node2.host, node2.c2s_port, node2.c2s_tls_port),),
    )  # fmt: skip
    credentials = DeviceCredentials("https://127.0.0.1:9/unused", "sender", "token", "acme", account)

    receiver = Receiver(
        ReceiverConfig(
            name="Cluster Room", pin=PIN, host="127.0.0.1", port=0, fallback_port=None,
            data_dir=tmp_path / "box", mdns=False,
        )
    )  # fmt: skip
    await receiver.start()

    async def serve(channel: XmppChannel) -> None:
        await receiver.serve(channel)

    box_stream = XmppSignaling(box_account, on_channel=serve)
    await box_stream.connect()
    stream, _ = await connect_xmpp(credentials, service="coalesce-sender")
    try:
        assert stream.account.port == node1.c2s_port  # its own node first
        await asyncio.to_thread(node1.stop)
        await asyncio.wait_for(stream.wait_disconnected(), 30)
        await stream.aclose()

        stream, _ = await connect_xmpp(credentials, service="coalesce-sender", timeout=10)
        assert (stream.account.host, stream.account.port) == (node2.host, node2.c2s_port)
        sender_stream = stream

        async def via_cluster(target: ShareTarget, timeout: float) -> SignalingChannel:
            return sender_stream.open_channel(box_account.jid)

        options = ShareOptions(
            sender_name="Failed-over laptop", pin=PIN, screen=None, camera=str(camera_file)
        )
        async with Share(ShareTarget(box_account.jid, 0), options, channel_factory=via_cluster):
            await receiver.wait_for_shares(1, timeout=20)
            [shown] = receiver.model.shares
            assert shown.sender_name == "Failed-over laptop"
            assert await asyncio.wait_for(shown.tracks["camera"].wait_for_frames(3), 20)
    finally:
        await stream.aclose()
        await box_stream.aclose()
        await receiver.aclose()
