"""Sanity checks with a real WebSocket library (Debian's python3-websockets 10.4, asyncio API)."""

import asyncio
import json

import websockets

from helpers import answer_resp, expected_answer_push, expected_offer_push, offer_body, uniq
from wsclient import post_offer


def test_exchange_with_websockets_library(server):
    a, b = uniq("A"), uniq("B")

    async def main():
        # websockets offers permessage-deflate by default: the server must simply not negotiate it
        async with websockets.connect(f"{server.ws_url}/ws/{b}") as wb, \
                websockets.connect(f"{server.ws_url}/ws/{a}") as wa:
            loop = asyncio.get_running_loop()
            resp = await loop.run_in_executor(None, post_offer, server.port, offer_body(a, b))
            assert resp.status == 200, resp
            xid = resp.json()["data"]["id"]
            push = json.loads(await asyncio.wait_for(wb.recv(), 5))
            assert push == expected_offer_push(a, b, xid)
            await wb.send(json.dumps({"ty": "answer", "id": xid, "answer_resp": answer_resp(b)}))
            got = json.loads(await asyncio.wait_for(wa.recv(), 5))
            assert got == expected_answer_push(a, b, xid)
            # ping/pong through the library
            pong = await wa.ping(b"lib")
            await asyncio.wait_for(pong, 5)
            # a WS offer from B to A, answered by A
            await wb.send(json.dumps({"ty": "offer", "id": xid + "r", "offer_req": {
                "offer_sdp": push["offer_req"]["offer_sdp"], "candidate": [], "answer_domain": a,
                "offer_domain": b}}))
            back = json.loads(await asyncio.wait_for(wa.recv(), 5))
            assert back["ty"] == "offer" and back["id"] == xid + "r"
        return True

    assert asyncio.run(asyncio.wait_for(main(), 20))


def test_replace_seen_by_websockets_library(server):
    b = uniq("B")

    async def main():
        old = await websockets.connect(f"{server.ws_url}/ws/{b}")
        new = await websockets.connect(f"{server.ws_url}/ws/{b}")
        try:
            await asyncio.wait_for(old.recv(), 5)
            raise AssertionError("old connection received a message instead of a close")
        except websockets.ConnectionClosed as e:
            assert (e.code, e.reason) == (4000, "replaced")
        await new.close()
        assert new.close_code == 1000
        return True

    assert asyncio.run(asyncio.wait_for(main(), 20))


def test_bad_domain_refused_before_upgrade(server):
    async def main():
        try:
            await websockets.connect(f"{server.ws_url}/ws/a%20b")
        except websockets.InvalidStatusCode as e:
            assert e.status_code == 400
            return True
        raise AssertionError("upgrade to a bad domain succeeded")

    assert asyncio.run(asyncio.wait_for(main(), 20))
