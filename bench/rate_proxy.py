#!/usr/bin/python3
"""A TCP proxy that caps each connection's speed, the way a cloud blob store
caps a single stream (bench/run's P2p scenario).

    rate_proxy.py --upstream 127.0.0.1:5000 --rate 50 [--port-file FILE]

Listens on a free loopback port (printed as "ready PORT", and written to
--port-file) and forwards bytes both ways to --upstream. Each connection,
each direction, moves at most --rate MiB/s (paced per 64 KiB: the sender
sleeps until the bytes so far fit the rate). Connections are independent:
N connections move N times the rate. Loopback only; stdlib only.
"""
import argparse
import asyncio
import time

# Bytes read and paced at a time: small against a second at any useful rate,
# large enough that the pacing's own cost does not cap the speed.
CHUNK = 64 << 10
LOOPBACK = ("127.0.0.1", "localhost", "::1")


async def pipe(reader, writer, rate):
    start, moved = time.monotonic(), 0
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            moved += len(data)
            ahead = moved / rate - (time.monotonic() - start)
            if ahead > 0:
                await asyncio.sleep(ahead)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except OSError:
            pass


async def main():
    p = argparse.ArgumentParser(description="per-connection rate-limited TCP proxy (loopback)")
    p.add_argument("--upstream", required=True, help="HOST:PORT on loopback")
    p.add_argument("--rate", type=float, default=50, help="MiB/s per connection and direction (default 50)")
    p.add_argument("--port-file", help="write the listening port here")
    args = p.parse_args()
    host, _, port = args.upstream.rpartition(":")
    if host not in LOOPBACK:
        p.error("--upstream must be a loopback address")
    rate = args.rate * (1 << 20)

    async def handle(client_r, client_w):
        try:
            up_r, up_w = await asyncio.open_connection(host, int(port))
        except OSError:
            client_w.close()
            return
        await asyncio.gather(pipe(client_r, up_w, rate), pipe(up_r, client_w, rate))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    listen = server.sockets[0].getsockname()[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(f"{listen}\n")
        import os
        os.replace(args.port_file + ".tmp", args.port_file)
    print(f"ready {listen}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
