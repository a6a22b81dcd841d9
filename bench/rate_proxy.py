#!/usr/bin/python3
"""A TCP proxy that caps speed per connection (bench/run's P2p: a cloud blob
store caps a single stream) and in total (P4/P5: a node's link), and counts
the bytes it moves.

    rate_proxy.py --upstream 127.0.0.1:5000 [--rate 50] [--total-rate 100]
                  [--port-file FILE] [--control SOCKET]

Listens on a free loopback port (printed as "ready PORT", and written to
--port-file) and forwards bytes both ways to --upstream.
--rate: each connection, each direction, moves at most this many MiB/s
(paced per 64 KiB: the sender sleeps until the bytes so far fit the rate);
N connections move N times the rate. 0: no per-connection cap.
--total-rate: all connections together move at most this many MiB/s in each
direction (one shared pacer per direction: each 64 KiB takes the next free
slot of the link, with 20 ms of credit for oversleeping). 0: no total cap.
--control: a unix socket; each connection to it gets one line
"down UP_TO_CLIENT_BYTES up FROM_CLIENT_BYTES connections N" (totals since
the start) and is closed. The bench reads it before and after a step.
Loopback only; stdlib only.
"""
import argparse
import asyncio
import os
import time

# Bytes read and paced at a time: small against a second at any useful rate,
# large enough that the pacing's own cost does not cap the speed.
CHUNK = 64 << 10
LOOPBACK = ("127.0.0.1", "localhost", "::1")
MIB = 1 << 20
# Idle time the total pacer credits back, as a token bucket's depth: asyncio
# oversleeps each short wait by about a millisecond, and without credit those
# losses would add up to a rate well below the cap. 20 ms is 2 MiB at 100 MiB/s.
BURST_S = 0.02


class Link:
    """One direction of the node's link: a shared pacer and a byte counter."""

    def __init__(self, rate):
        self.rate = rate  # bytes/s, 0: unlimited
        self.free_at = 0.0  # monotonic time the link is next free
        self.bytes = 0

    def delay(self, n):
        """Seconds to wait before sending n more bytes (reserves their slot)."""
        self.bytes += n
        if not self.rate:
            return 0.0
        now = time.monotonic()
        self.free_at = max(self.free_at, now - BURST_S) + n / self.rate
        return self.free_at - now


async def pipe(reader, writer, rate, link):
    start, moved = time.monotonic(), 0
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            moved += len(data)
            wait = link.delay(len(data))
            if rate:
                wait = max(wait, moved / rate - (time.monotonic() - start))
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except OSError:
            pass


def publish(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


async def main():
    p = argparse.ArgumentParser(description="rate-limited, counting TCP proxy (loopback)")
    p.add_argument("--upstream", required=True, help="HOST:PORT on loopback")
    p.add_argument("--rate", type=float, default=0, help="MiB/s per connection and direction (0: no cap)")
    p.add_argument("--total-rate", type=float, default=0, help="MiB/s for all connections, per direction (0: no cap)")
    p.add_argument("--port-file", help="write the listening port here")
    p.add_argument("--control", help="unix socket that answers with the byte counters")
    args = p.parse_args()
    host, _, port = args.upstream.rpartition(":")
    if host not in LOOPBACK:
        p.error("--upstream must be a loopback address")
    rate = args.rate * MIB
    down, up = Link(args.total_rate * MIB), Link(args.total_rate * MIB)
    connections = 0

    async def handle(client_r, client_w):
        nonlocal connections
        connections += 1
        try:
            up_r, up_w = await asyncio.open_connection(host, int(port))
        except OSError:
            client_w.close()
            return
        await asyncio.gather(pipe(client_r, up_w, rate, up), pipe(up_r, client_w, rate, down))

    async def report(_, w):
        w.write(f"down {down.bytes} up {up.bytes} connections {connections}\n".encode())
        await w.drain()
        w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    listen = server.sockets[0].getsockname()[1]
    if args.control:
        if os.path.exists(args.control):
            os.unlink(args.control)
        await asyncio.start_unix_server(report, args.control)
    if args.port_file:
        publish(args.port_file, f"{listen}\n")
    print(f"ready {listen}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
