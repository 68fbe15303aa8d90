"""A real two-node ejabberd cluster on one host: shared accounts, and a message crossing nodes."""

from __future__ import annotations

import ssl
import uuid

from coalesce_cloud.servers.ejabberd import EjabberdCluster
from tests.cloud.servers.xmpp_client import TestClient


def test_both_nodes_list_the_whole_cluster(ejabberd_cluster: EjabberdCluster) -> None:
    expected = sorted(["ejabberd1@localhost", "ejabberd2@localhost"])
    for node in ejabberd_cluster.nodes:
        assert ejabberd_cluster.members(node) == expected


async def test_message_from_node1_reaches_a_user_on_node2(
    ejabberd_cluster: EjabberdCluster, cloud_ssl_context: ssl.SSLContext
) -> None:
    node1, node2 = ejabberd_cluster.nodes
    tag = uuid.uuid4().hex[:8]
    alice, bob = f"alice-{tag}", f"bob-{tag}"
    # Each account is registered on one node and must exist on both (the table is replicated).
    for node, user in ((node1, alice), (node2, bob)):
        await node.async_api_call("register", {"user": user, "host": node.domain, "password": f"pw-{user}"})
    assert await node2.async_api_call("check_account", {"user": alice, "host": node2.domain}) == 0

    sender = await TestClient.login(
        node1.jid(alice),
        f"pw-{alice}",
        host=node1.host,
        port=node1.c2s_port,
        ssl_context=cloud_ssl_context,
        direct_tls=False,
    )
    receiver = await TestClient.login(
        node2.jid(bob),
        f"pw-{bob}",
        host=node2.host,
        port=node2.c2s_tls_port,
        ssl_context=cloud_ssl_context,
        direct_tls=True,
    )
    try:
        sessions = await node1.async_api_call("user_sessions_info", {"user": bob, "host": node1.domain})
        assert isinstance(sessions, list) and len(sessions) == 1
        assert isinstance(sessions[0], dict) and sessions[0]["node"] == node2.node_name
        sender.send_chat(
            str(receiver.xmpp.boundjid.full), "across the cluster"
        )  # full JID: see test_ejabberd
        message = await receiver.next_message()
        assert message["body"] == "across the cluster"
        assert message["from"].bare == node1.jid(alice)
    finally:
        await sender.close()
        await receiver.close()
