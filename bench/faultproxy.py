#!/usr/bin/python3
"""A deliberately broken signaling server for `bench/run.py --self-test`: a WebSocket- and
HTTP-aware proxy in front of a real signal-server that breaks what it relays in one named way.
The load generator must report every mode but `none` as a failed run, of the named kind.

  none          relays everything unchanged (the proxy itself must not make a run fail)
  misroute      answer pushes go back to the answering peer, with an emptied SDP
  truncate      offer pushes lose the last 4 characters of their SDP
  duplicate     every offer push is delivered twice
  drop          one server push in a thousand is dropped (the 1,000th, 2,000th, ...)
  reply-id      POST /offer replies name another exchange id
  wrong-domain  answer pushes name the answering peer as the offer domain too

Usage: faultproxy.py --mode MODE --port LISTEN --upstream PORT   (both on 127.0.0.1)
Stops on SIGTERM or SIGINT. Standard library only.
"""

import argparse
import asyncio
import json
import signal
import struct

MODES = ["none", "misroute", "truncate", "duplicate", "drop", "reply-id", "wrong-domain"]


def ws_frame(opcode, payload):
    """A server frame (unmasked, final)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


async def read_frame(reader):
    """(fin, opcode, payload) of one frame from the server."""
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await reader.readexactly(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", await reader.readexactly(8))
    mask = await reader.readexactly(4) if b1 & 0x80 else None
    payload = await reader.readexactly(n)
    if mask:
        payload = bytes(c ^ mask[i & 3] for i, c in enumerate(payload))
    return b0 & 0x80, b0 & 0x0F, payload


class Proxy:
    def __init__(self, mode, upstream):
        self.mode = mode
        self.upstream = upstream
        self.by_domain = {}  # domain -> the client's writer (the last registration wins)
        self.pushes = 0  # server text frames seen, for `drop`

    async def pipe(self, reader, writer):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def client(self, creader, cwriter):
        try:
            ureader, uwriter = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            cwriter.close()
            return
        try:
            head = await creader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            cwriter.close()
            uwriter.close()
            return
        uwriter.write(head)
        target = head.split(b"\r\n", 1)[0].split(b" ")
        up = asyncio.ensure_future(self.pipe(creader, uwriter))
        try:
            if len(target) == 3 and target[0] == b"GET" and target[1].startswith(b"/ws/"):
                domain = target[1][4:].split(b"?")[0].decode("latin-1")
                await self.websocket(domain, ureader, cwriter)
            elif self.mode == "reply-id":
                await self.http_replies(ureader, cwriter)
            else:
                await self.pipe(ureader, cwriter)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            cwriter.close()
            uwriter.close()
            up.cancel()

    async def websocket(self, domain, ureader, cwriter):
        head = await ureader.readuntil(b"\r\n\r\n")
        cwriter.write(head)
        if not head.startswith(b"HTTP/1.1 101"):
            await self.pipe(ureader, cwriter)
            return
        self.by_domain[domain] = cwriter
        try:
            while True:
                fin, op, payload = await read_frame(ureader)
                if op != 1 or not fin:
                    cwriter.write(ws_frame(op, payload))  # control frames pass unchanged
                    if op == 8:
                        break
                    continue
                for writer, data in self.text(cwriter, payload):
                    writer.write(ws_frame(1, data))
                await cwriter.drain()
        finally:
            if self.by_domain.get(domain) is cwriter:
                del self.by_domain[domain]

    def text(self, cwriter, payload):
        """The deliveries [(writer, payload)] that the mode makes of one server text frame."""
        self.pushes += 1
        if self.mode == "drop":
            return [] if self.pushes % 1000 == 0 else [(cwriter, payload)]
        if self.mode == "none":
            return [(cwriter, payload)]
        msg = json.loads(payload)
        ty = msg.get("ty")
        if self.mode == "misroute" and ty == "answer":
            msg["answer_resp"]["answer_sdp"] = ""
            back = self.by_domain.get(msg["answer_resp"]["answer_domain"], cwriter)
            return [(back, dump(msg))]
        if self.mode == "truncate" and ty == "offer":
            msg["offer_req"]["offer_sdp"] = msg["offer_req"]["offer_sdp"][:-4]
            return [(cwriter, dump(msg))]
        if self.mode == "duplicate" and ty == "offer":
            return [(cwriter, payload), (cwriter, payload)]
        if self.mode == "wrong-domain" and ty == "answer":
            msg["offer_req"]["offer_domain"] = msg["answer_resp"]["answer_domain"]
            return [(cwriter, dump(msg))]
        return [(cwriter, payload)]

    async def http_replies(self, ureader, cwriter):
        """Relays HTTP responses (Content-Length bodies), giving each Resp another data.id."""
        while True:
            head = await ureader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            body = await ureader.readexactly(length)
            try:
                resp = json.loads(body)
                if isinstance(resp.get("data"), dict) and "id" in resp["data"]:
                    resp["data"]["id"] += "z"
                    body = dump(resp)
            except ValueError:
                pass
            kept = [ln for ln in lines if ln and not ln.lower().startswith("content-length:")]
            cwriter.write(("\r\n".join(kept) + f"\r\nContent-Length: {len(body)}\r\n\r\n")
                          .encode("latin-1") + body)
            await cwriter.drain()


def dump(msg):
    return json.dumps(msg, separators=(",", ":")).encode()


async def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=MODES, required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", type=int, required=True)
    args = ap.parse_args()
    proxy = Proxy(args.mode, args.upstream)
    server = await asyncio.start_server(proxy.client, "127.0.0.1", args.port, limit=1 << 20)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
