"""The scale-out path: a sender on one ejabberd node shares to a box logged in on the other node."""

from __future__ import annotations

import secrets
from pathlib import Path

from coalesce_client.services.share import Share, ShareOptions, ShareTarget
from coalesce_cloud.servers.certs import CaFiles
from coalesce_cloud.servers.ejabberd import EjabberdCluster, EjabberdNode
from coalesce_common.signaling import SignalingChannel
from coalesce_common.signaling.xmpp import XmppAccount, XmppChannel, XmppSignaling
from coalesce_receiver.services.receiver import Receiver, ReceiverConfig

PIN = "4821"


async def account_on(node: EjabberdNode, user: str, ca: CaFiles) -> XmppAccount:
    password = secrets.token_urlsafe(16)
    await node.async_api_call("register", {"user": user, "host": node.domain, "password": password})
    return XmppAccount(node.jid(user), password, node.host, node.c2s_port, False, str(ca.cert))


async def test_sender_on_node_1_shares_to_a_box_on_node_2(
    ejabberd_cluster: EjabberdCluster,
    cloud_ca: CaFiles,
    camera_file: Path,
    tmp_path: Path,
) -> None:
    node1, node2 = ejabberd_cluster.nodes
    box_account = await account_on(node2, "box-" + secrets.token_hex(4), cloud_ca)
    sender_account = await account_on(node1, "sender-" + secrets.token_hex(4), cloud_ca)

    receiver = Receiver(
        ReceiverConfig(
            name="Cluster Room",
            pin=PIN,
            host="127.0.0.1",
            port=0,
            fallback_port=None,
            data_dir=tmp_path / "box",
            mdns=False,
        )
    )
    await receiver.start()

    async def serve(channel: XmppChannel) -> None:
        await receiver.serve(channel)

    box_stream = XmppSignaling(box_account, on_channel=serve)
    sender_stream = XmppSignaling(sender_account)
    await box_stream.connect()
    await sender_stream.connect()

    async def via_cluster(target: ShareTarget, timeout: float) -> SignalingChannel:
        return sender_stream.open_channel(box_account.jid)

    options = ShareOptions(sender_name="Node-1 laptop", pin=PIN, screen=None, camera=str(camera_file))
    try:
        async with Share(ShareTarget(box_account.jid, 0), options, channel_factory=via_cluster) as share:
            assert share.receiver_name == "Cluster Room"
            await receiver.wait_for_shares(1, timeout=20)
            assert [s.sender_name for s in receiver.model.shares] == ["Node-1 laptop"]
    finally:
        await sender_stream.aclose()
        await box_stream.aclose()
        await receiver.aclose()
