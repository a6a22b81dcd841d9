#!/usr/bin/python3
"""A hostile registry for the hostile tests (tests/integration/hostile_test.cc).

Speaks enough of the Distribution API (GET/HEAD /v2/, manifests and blobs
by tag or digest) for regdisk prepare, pull, copy and inspect, and serves
one image per repository, REPO:v1, each misbehaving in its own way. The
real registry cannot be made to send any of these.

    long-layer      the manifest declares a 1 KiB layer; the blob is a valid
                    1 MiB gzip stream (a tar of one disk/disk.raw of 1 GiB
                    of "x") with an honest Content-Length
    length-lie      the manifest declares a 1 KiB layer; the answer says
                    Content-Length: 1 GiB and streams zeros for as long as
                    the client reads
    amplify         an index listing the same child index N times (--n),
                    four index levels deep, above one valid image
    many            an index of 300 distinct valid manifests
    token-crlf      (with --auth: every /v2/ request, the ping too, needs a
                    Bearer token) a valid image; the token
                    server (/token on this port) answers
                    {"token": "abc\\r\\nX-Injected: 1"}. A request carrying an
                    X-Injected header is logged as INJECTED
    arm64           one manifest (no index) whose config says linux/arm64,
                    with a valid raw disk
    arm64-index     an index listing only that arm64 manifest, as linux/arm64
    good            one valid amd64 image (the control)

The repository name picks the mode (hostile/long-layer:v1, ...). Valid
images hold disk/disk.raw, 1 MiB of zeros, gzip-compressed.

--port-file FILE receives the port once listening. --log FILE gets a line
per request: "METHOD PATH STATUS". Loopback only; stdlib only; run with
/usr/bin/python3.
"""
import argparse
import gzip
import hashlib
import io
import json
import socket
import struct
import sys
import tarfile
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import port_file

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
GIB = 1 << 30
MIB = 1 << 20


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def tar_of_disk(size):
    """A tar with disk/ and disk/disk.raw of `size` zero bytes (in memory)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        d = tarfile.TarInfo("disk")
        d.type = tarfile.DIRTYPE
        d.mode = 0o755
        t.addfile(d)
        f = tarfile.TarInfo("disk/disk.raw")
        f.size = size
        f.mode = 0o444
        t.addfile(f, io.BytesIO(bytes(size)))
    return buf.getvalue()


def gzip_of_huge_disk(size):
    """A tar of disk/disk.raw holding `size` bytes "x", gzip-compressed, made
    fast: after a full flush deflate forgets its history, so the compressed
    form of an 8 MiB run is the same each time and is simply repeated. Returns the
    blob and a diff_id that is not the tar's (hashing 1 GiB would slow every
    test; the layer must be refused long before anyone could check it)."""
    f = tarfile.TarInfo("disk/disk.raw")
    f.size = size
    f.mode = 0o444
    d = tarfile.TarInfo("disk")
    d.type = tarfile.DIRTYPE
    d.mode = 0o755
    headers = d.tobuf(tarfile.PAX_FORMAT) + f.tobuf(tarfile.PAX_FORMAT)
    chunk_size = 8 * MIB
    assert size % chunk_size == 0
    run = b"x" * chunk_size  # not zeros: those would become holes, not bytes written
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(headers) + c.flush(zlib.Z_FULL_FLUSH)
    chunk = c.compress(run) + c.flush(zlib.Z_FULL_FLUSH)
    tail = bytes(1024)  # the two end blocks
    last = c.compress(tail) + c.flush()
    crc = zlib.crc32(headers)
    for _ in range(size // chunk_size):
        crc = zlib.crc32(run, crc)
    crc = zlib.crc32(tail, crc)
    total = len(headers) + size + len(tail)
    gz = (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + first + chunk * (size // chunk_size) + last +
          struct.pack("<II", crc & 0xffffffff, total & 0xffffffff))
    return gz, digest(b"")


class Image:
    """Blobs and manifests of one repository."""

    def __init__(self):
        self.blobs = {}       # digest -> bytes
        self.manifests = {}   # digest -> (media type, bytes)
        self.tags = {}        # tag -> digest
        self.lie = {}         # digest -> Content-Length to claim (streams zeros)

    def blob(self, data):
        d = digest(data)
        self.blobs[d] = data
        return d

    def manifest(self, obj, tag=None):
        data = canonical(obj)
        d = digest(data)
        self.manifests[d] = (obj["mediaType"], data)
        if tag:
            self.tags[tag] = d
        return {"mediaType": obj["mediaType"], "digest": d, "size": len(data)}

    def config(self, diff_id, arch="amd64"):
        cfg = {"architecture": arch, "os": "linux", "config": {},
               "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
        data = canonical(cfg)
        return {"mediaType": OCI_CONFIG, "digest": self.blob(data), "size": len(data)}

    def image(self, layer, diff_id, arch="amd64", tag=None, size=None, annotations=None):
        """A manifest of one gzip layer (declared `size`, default its own)."""
        m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": self.config(diff_id, arch),
             "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": self.blob(layer),
                         "size": len(layer) if size is None else size}]}
        if annotations:
            m["annotations"] = annotations
        return self.manifest(m, tag)

    def index(self, children, tag=None):
        return self.manifest({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}, tag)


def build(n):
    small_tar = tar_of_disk(MIB)
    small = gzip.compress(small_tar, mtime=0)
    small_id = digest(small_tar)
    amd64 = {"architecture": "amd64", "os": "linux"}
    repos = {}

    good = Image()
    good.image(small, small_id, tag="v1")
    repos["good"] = good

    long_layer = Image()
    huge, huge_id = gzip_of_huge_disk(GIB)
    long_layer.image(huge, huge_id, tag="v1", size=1024)
    repos["long-layer"] = long_layer

    lie = Image()
    kib = bytes(1024)
    desc = lie.image(kib, digest(kib), tag="v1")
    m = json.loads(lie.manifests[desc["digest"]][1])
    lie.lie[m["layers"][0]["digest"]] = GIB
    repos["length-lie"] = lie

    amp = Image()
    child = dict(amp.image(small, small_id), platform=amd64)
    for _ in range(4):
        child = dict(amp.index([child] * n), platform=amd64)
    amp.tags["v1"] = child["digest"]
    repos["amplify"] = amp

    many = Image()
    children = [dict(many.image(small, small_id, annotations={"n": str(i)}), platform=amd64)
                for i in range(300)]
    many.index(children, tag="v1")
    repos["many"] = many

    arm = Image()
    arm.image(small, small_id, arch="arm64", tag="v1")
    repos["arm64"] = arm
    arm_index = Image()
    arm_child = dict(arm_index.image(small, small_id, arch="arm64"),
                     platform={"architecture": "arm64", "os": "linux"})
    arm_index.index([arm_child], tag="v1")
    repos["arm64-index"] = arm_index

    token = Image()
    token.image(small, small_id, tag="v1")
    repos["token-crlf"] = token
    return repos


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--auth", action="store_true", help="every /v2/ request needs a Bearer token")
    args = p.parse_args()
    repos = build(args.n)
    log_lock = threading.Lock()
    log = open(args.log, "a", buffering=1)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            # Headers and body go out in separate writes: without this,
            # Nagle and delayed ACKs cost 40 ms a request.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, fmt, *a):
            pass

        def record(self, status, note=""):
            with log_lock:
                log.write(f"{self.command} {self.path} {status}{note}\n")

        def answer(self, status, body=b"", ctype="application/json", headers=(), length=None):
            injected = " INJECTED" if self.headers.get("X-Injected") is not None else ""
            self.record(status, injected)
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD" and length is None:
                self.wfile.write(body)

        def error(self, status, code):
            self.answer(status, canonical({"errors": [{"code": code, "message": code.lower()}]}))

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            path = self.path.split("?")[0]
            port = self.server.server_address[1]
            if path == "/token":
                return self.answer(200, b'{"token": "abc\\r\\nX-Injected: 1", "expires_in": 300}')
            parts = path.split("/")
            repo = parts[3] if len(parts) > 3 and parts[1] == "v2" else ""
            if args.auth and not self.headers.get("Authorization", "").startswith("Bearer "):
                realm = f'Bearer realm="http://127.0.0.1:{port}/token",service="hostile"'
                return self.answer(401, canonical({"errors": [{"code": "UNAUTHORIZED"}]}),
                                   headers=[("WWW-Authenticate", realm)])
            if path == "/v2/":
                return self.answer(200, b"{}")
            if len(parts) != 6 or parts[1] != "v2" or parts[2] != "hostile" or repo not in repos:
                return self.error(404, "NAME_UNKNOWN")
            image, kind, ref = repos[repo], parts[4], parts[5]
            if kind == "manifests":
                ref = image.tags.get(ref, ref)
                if ref not in image.manifests:
                    return self.error(404, "MANIFEST_UNKNOWN")
                mtype, data = image.manifests[ref]
                return self.answer(200, data, ctype=mtype, headers=[("Docker-Content-Digest", ref)])
            if kind == "blobs":
                if ref in image.lie:
                    return self.stream_zeros(image.lie[ref])
                if ref not in image.blobs:
                    return self.error(404, "BLOB_UNKNOWN")
                return self.answer(200, image.blobs[ref], ctype="application/octet-stream",
                                   headers=[("Docker-Content-Digest", ref)])
            return self.error(404, "NAME_UNKNOWN")

        def stream_zeros(self, length):
            self.answer(200, ctype="application/octet-stream", length=length)
            if self.command == "HEAD":
                return
            zeros = bytes(64 << 10)
            sent = 0
            try:
                while sent < length:
                    n = min(len(zeros), length - sent)
                    self.wfile.write(zeros[:n])
                    sent += n
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.record("streamed", f" {sent}")
            self.close_connection = True

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    port_file.announce(port, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
