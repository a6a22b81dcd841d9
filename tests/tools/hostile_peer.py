#!/usr/bin/python3
"""A lying or hanging peer for the peer tests (tests/integration/peers_test.cc).

Speaks the peer protocol v1 (src/peer/protocol.h) as a node would, but:

    --mode corrupt   claims every chunk: /v1/have answers every digest asked,
                     GET /v1/chunks/sha256/<hex> answers 200 with --chunk-bytes
                     bytes that are not the chunk (sha256 of the digest, repeated)
    --mode hang      accepts every connection, reads the request, and never
                     answers (until killed)

Logs one line per request to stdout ("chunk HEX", "have N", "hang PATH"), so a
test can check it was asked at all. Listens on --listen (default 127.0.0.1)
port --port (default 0: a free one), announced through --port-file.
"""
import argparse
import hashlib
import http.server
import re
import sys
import threading

from port_file import announce

CHUNK_PATH = re.compile(r"^/v1/chunks/sha256/([0-9a-f]{64})$")
# A /v1/have body is at most 1024 digests of 65 bytes (protocol.h's kMaxHaveBody).
MAX_HAVE_BODY = 1024 * 65
# How long a hanging answer waits: longer than any test runs.
HANG_SECONDS = 3600


def make_handler(mode, chunk_bytes):
    lock = threading.Lock()

    def log(line):
        with lock:
            print(line, flush=True)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def hang(self):
            log(f"hang {self.path[:100]}")
            threading.Event().wait(HANG_SECONDS)

        def answer(self, code, body, content_type="application/octet-stream"):
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self):
            if mode == "hang":
                return self.hang()
            if self.path == "/v1/health":
                return self.answer(200, b"ok\n", "text/plain")
            m = CHUNK_PATH.match(self.path)
            if not m:
                return self.answer(404, b"")
            log(f"chunk {m.group(1)}")
            lie = hashlib.sha256(m.group(1).encode()).digest()
            self.answer(200, (lie * (chunk_bytes // len(lie) + 1))[:chunk_bytes])

        do_HEAD = do_GET

        def do_POST(self):
            if mode == "hang":
                return self.hang()
            length = int(self.headers.get("Content-Length", "0"))
            if self.path != "/v1/have" or length > MAX_HAVE_BODY:
                return self.answer(400, b"")
            body = self.rfile.read(length)
            lines = [l for l in body.split(b"\n") if l]
            log(f"have {len(lines)}")
            self.answer(200, b"".join(l + b"\n" for l in lines), "text/plain")

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["corrupt", "hang"], required=True)
    p.add_argument("--listen", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--chunk-bytes", type=int, default=1 << 20)
    a = p.parse_args()
    server = http.server.ThreadingHTTPServer((a.listen, a.port), make_handler(a.mode, a.chunk_bytes))
    server.daemon_threads = True
    announce(server.server_address[1], a.port_file)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
