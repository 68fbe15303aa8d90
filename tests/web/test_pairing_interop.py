"""The browser's PIN pairing (coalesce_cloud/web/src, JavaScript) against the Python side, under Node.

The vectors file is what the Python ``spake2`` package makes from fixed entropy; the Node tests make the same
messages, keys and MACs from it, and accept each other's messages both ways. Then live pairings with fresh
randomness: the JS sender against the room display's Python half, with the right PIN and a wrong one.
"""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest

from coalesce_common.errors import WrongPin
from coalesce_common.protocol.messages import Pair
from coalesce_common.protocol.pairing import ReceiverPairing
from coalesce_common.signaling.xmpp import channel_binding
from tests.web.vectors import OFFER, VECTORS, vectors

WEB = VECTORS.parents[1]


def node() -> str:
    found = shutil.which("node")
    if found is None or not (WEB / "node_modules" / "@noble" / "curves").is_dir():
        pytest.fail("Node or the page's npm packages are missing: run scripts/setup.sh", pytrace=False)
    return found


async def node_run(*args: str, stdin: str = "") -> tuple[int, str, str]:
    """``node ARGS`` in the page's folder: its exit status, stdout and stderr."""
    proc = await asyncio.create_subprocess_exec(
        await asyncio.to_thread(node),
        *args,
        cwd=WEB,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def test_the_vectors_are_what_the_python_side_makes() -> None:
    assert VECTORS.read_text() == vectors(), "run: python -m tests.web.vectors"


async def test_the_js_pairing_makes_the_python_vectors() -> None:
    rc, out, err = await node_run("--test", "test/pairing.test.js")
    assert rc == 0, out + err
    assert "# fail 0" in out and "# pass 0" not in out, out


async def test_the_pages_answer_munging_keeps_what_the_pairing_vouches_for() -> None:
    rc, out, err = await node_run("--test", "test/sdp.test.js")
    assert rc == 0, out + err
    assert "# fail 0" in out and "# pass 0" not in out, out


async def pair_from_js(pin: str, room: ReceiverPairing, binding: str) -> dict[str, object]:
    request = json.dumps({"pin": pin, "receiver_spake": room.message, "binding": binding, "offer": OFFER})
    rc, out, err = await node_run("interop/pair-once.mjs", stdin=request)
    assert rc == 0, err
    answer: dict[str, object] = json.loads(out)
    return answer


async def test_a_js_sender_pairs_with_the_room_displays_python_half() -> None:
    binding = channel_binding("guest-1@coalesce.test/web", "box@coalesce.test")
    room = ReceiverPairing("4821")
    answer = await pair_from_js("4821", room, binding)
    pair = answer["pair"]
    assert isinstance(pair, dict)
    key = room.verify(Pair(spake=pair["spake"], confirm=pair["confirm"], binding=pair["binding"]), binding)
    key.verify_offer_mac(OFFER, str(answer["offer_mac"]))
    assert answer["receiver_confirm"] == key.receiver_confirm(binding)


async def test_a_js_sender_with_a_wrong_pin_is_told_so_by_the_python_half() -> None:
    binding = channel_binding("guest-1@coalesce.test/web", "box@coalesce.test")
    room = ReceiverPairing("4821")
    pair = (await pair_from_js("1234", room, binding))["pair"]
    assert isinstance(pair, dict)
    with pytest.raises(WrongPin):
        room.verify(Pair(spake=pair["spake"], confirm=pair["confirm"], binding=pair["binding"]), binding)
