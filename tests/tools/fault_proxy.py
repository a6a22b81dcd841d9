#!/usr/bin/python3
"""A misbehaving HTTP proxy for the fault tests (tests/integration/fault_test.cc).

Listens on a free loopback port in front of a real registry (--upstream
HOST:PORT) and forwards every request as is (the Host header too, so the
registry's Location headers point back at the proxy), except those that
match a rule. Rules come from --rule (repeatable) and from --rules FILE, a
control file re-read whenever it changes (its rules then start counting
afresh), one rule a line, '#' starts a comment:

    METHOD PATH [nth=N] [times=T] ACTION [key=value | flag ...]

METHOD is GET, HEAD, PUT, PATCH, POST, DELETE or '*'. PATH is a substring of
the request path ('/blobs/sha256:', '/blobs/uploads/', '/manifests/', '/v2/'),
or with a leading '~' a regular expression searched in it ('~^/v2/.' is
everything but the /v2/ ping).
The rule fires on the Nth matching request (default 1) and the T-1 after it
(default T=1; times=0: every one from the Nth on). The first rule that fires
decides. Actions:

    status=CODE [retry-after=S] [forward] [echo-auth]
        answer CODE with a registry error document instead of forwarding;
        'forward' sends the request upstream first (its answer is lost);
        'echo-auth' copies the request's Authorization header into the
        error message (a registry that leaks it; the client must scrub it)
    reset [after=K]       forward; send the answer's headers and K body bytes
                          (default 0), then reset the connection (RST)
    reset-request [after=K]
                          send the request's headers and K bytes of its body
                          upstream, then reset both connections: the client
                          gets no answer, the registry a broken upload
    truncate [after=K]    forward; send the headers (with the real
                          Content-Length) and K body bytes, then close (FIN)
    stall [after=K] [seconds=S]
                          forward; send the headers and K body bytes, then go
                          quiet for S seconds (default 30), then close
    delay [seconds=S]     forward, but answer only after S seconds
    flip [offset=K]       forward; flip one bit of body byte K (default: the
                          middle one) of the answer
    flip-request [offset=K]
                          flip one bit of byte K of the request body before
                          forwarding it (a corrupted upload)
    strip-range           forward without the Range header (a server that
                          ignores Range: the whole body, 200)
    shift-range [by=K]    forward with the Range header's offsets moved K
                          bytes on (default 1): a 206 for another range
    refuse-chunked [code=C]
                          only for a request with a chunked body (other
                          requests do not count): answer C (default 411
                          Length Required) as soon as its headers are in,
                          then read and drop the body and close, as a proxy
                          that wants a Content-Length does

--port-file FILE receives the port once listening ("ready PORT" also goes to
stdout). --log FILE gets a line per request: "N METHOD PATH -> pass 200" or
"-> FAULT <rule>", with "chunked" after PATH for a chunked request body. --record-auth FILE appends each distinct Authorization
header value seen (the test checks none of them shows in regdisk's output).

Loopback only; stdlib only; run with /usr/bin/python3.
"""
import argparse
import http.client
import json
import os
import re
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import port_file

ACTIONS = {"status", "reset", "reset-request", "truncate", "stall", "delay", "flip", "flip-request",
           "strip-range", "shift-range", "refuse-chunked"}
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
              "te", "trailer", "transfer-encoding", "upgrade"}
METHODS = {"GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "*"}


class Rule:
    def __init__(self, text):
        self.text = text.strip()
        words = self.text.split()
        if len(words) < 3:
            raise ValueError(f"rule {self.text!r}: expected METHOD PATH ACTION")
        self.method, self.path = words[0].upper(), words[1]
        if self.method not in METHODS:
            raise ValueError(f"rule {self.text!r}: unknown method {words[0]!r}")
        self.nth, self.times = 1, 1
        self.action, self.args = None, {}
        for w in words[2:]:
            key, _, value = w.partition("=")
            if key == "nth":
                self.nth = int(value)
            elif key == "times":
                self.times = int(value)
            elif key in ACTIONS and self.action is None:
                self.action = key
                if value:
                    self.args["code"] = int(value)
            else:
                self.args[key] = value if value else True
        if self.action is None:
            raise ValueError(f"rule {self.text!r}: no action ({', '.join(sorted(ACTIONS))})")
        if self.action == "status" and "code" not in self.args:
            raise ValueError(f"rule {self.text!r}: status needs a code (status=503)")
        self.seen = 0

    def fires(self, method, path, chunked):
        """Counts a matching request; true when this one gets the fault."""
        if self.action == "refuse-chunked" and not chunked:
            return False
        if self.method not in ("*", method):
            return False
        if self.path.startswith("~") and not re.search(self.path[1:], path):
            return False
        if not self.path.startswith("~") and self.path not in path:
            return False
        self.seen += 1
        if self.seen < self.nth:
            return False
        return self.times == 0 or self.seen < self.nth + self.times

    def int(self, key, default):
        v = self.args.get(key)
        return default if v is None or v is True else int(v)


class Rules:
    """The --rule rules plus the control file's, re-read when it changes."""

    def __init__(self, fixed, path):
        self.fixed = [Rule(t) for t in fixed]
        self.path = path
        self.stamp = None
        self.from_file = []
        self.lock = threading.Lock()

    def _reload(self):
        if not self.path:
            return
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        if stamp == self.stamp:
            return
        self.stamp = stamp
        rules = []
        if stamp is not None:
            with open(self.path) as f:
                for line in f:
                    line = line.split("#", 1)[0].strip()
                    if line:
                        rules.append(Rule(line))
        self.from_file = rules

    def match(self, method, path, chunked):
        with self.lock:
            self._reload()
            hit = None
            for rule in self.fixed + self.from_file:
                if rule.fires(method, path, chunked) and hit is None:
                    hit = rule
            return hit


def main():
    p = argparse.ArgumentParser(description="fault-injecting HTTP proxy for tests")
    p.add_argument("--upstream", required=True, help="HOST:PORT of the real server (loopback)")
    p.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    p.add_argument("--port-file", help="write the port here once listening")
    p.add_argument("--rule", action="append", default=[], help="a rule (see the module doc)")
    p.add_argument("--rules", help="control file of rules, re-read when it changes")
    p.add_argument("--log", help="append a line per request here (default: stderr)")
    p.add_argument("--record-auth", help="append each distinct Authorization value seen here")
    args = p.parse_args()

    up_host, _, up_port = args.upstream.rpartition(":")
    if up_host not in ("127.0.0.1", "localhost", "::1", "[::1]"):
        p.error("--upstream must be a loopback address")
    up_port = int(up_port)
    rules = Rules(args.rule, args.rules)
    log_lock = threading.Lock()
    log_file = open(args.log, "a", buffering=1) if args.log else sys.stderr
    seen_auth = set()
    counter = [0]

    def log(line):
        with log_lock:
            log_file.write(line + "\n")
            log_file.flush()

    def record_auth(value):
        if not args.record_auth or not value:
            return
        with log_lock:
            if value in seen_auth:
                return
            seen_auth.add(value)
            with open(args.record_auth, "a") as f:
                f.write(value + "\n")

    def rst(sock):
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            sock.close()
        except OSError:
            pass

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "fault-proxy"

        def log_message(self, fmt, *a):  # requests are logged by log() instead
            pass

        def reset(self):
            """Resets the client's connection (RST) once this handler returns."""
            self.close_connection = True
            rst(self.connection)  # the socket closes when rfile and wfile do

        def read_body(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                body = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline().strip():
                            pass
                        return body
                    body += self.rfile.read(size)
                    self.rfile.readline()
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def upstream(self, body, partial=None):
            """Sends the request upstream; returns (status, reason, headers, body).
            With `partial`, sends only that many body bytes and breaks off."""
            conn = http.client.HTTPConnection(up_host, up_port, timeout=120)
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in self.headers.items():
                if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                    conn.putheader(k, v)
            if body or self.command in ("PUT", "PATCH", "POST"):
                conn.putheader("Content-Length", str(len(body)))
            if partial is not None:
                conn.endheaders()
                conn.send(body[:partial])
                time.sleep(0.2)  # let the server read what came before the break
                rst(conn.sock)
                return None
            conn.endheaders(body if body else None)
            resp = conn.getresponse()
            data = resp.read()
            headers = [(k, v) for k, v in resp.getheaders()
                       if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"]
            length = resp.getheader("Content-Length")
            conn.close()
            return resp.status, resp.reason, headers, data, length

        def send_head(self, status, reason, headers, length):
            lines = [f"HTTP/1.1 {status} {reason}"]
            lines += [f"{k}: {v}" for k, v in headers]
            lines.append(f"Content-Length: {length}")
            self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

        def answer(self, status, reason, headers, data, length=None):
            if length is None or self.command != "HEAD":
                length = len(data)
            self.send_head(status, reason, headers, length)
            if self.command != "HEAD":
                self.wfile.write(data)
            self.wfile.flush()

        def handle_any(self):
            counter[0] += 1
            n = counter[0]
            record_auth(self.headers.get("Authorization"))
            chunked = self.headers.get("Transfer-Encoding", "").lower() == "chunked"
            rule = rules.match(self.command, self.path, chunked)
            where = f"{n} {self.command} {self.path}" + (" chunked" if chunked else "")
            if rule is not None and rule.action == "refuse-chunked":
                log(f"{where} -> FAULT {rule.text}")
                code = rule.args.get("code", 411)
                self.close_connection = True
                self.send_head(code, http.client.responses.get(code, "Error"),
                               [("Content-Type", "text/plain"), ("Connection", "close")], 0)
                self.wfile.flush()
                try:
                    self.read_body()  # a reset with unread bytes could lose the answer
                except (OSError, ValueError):
                    pass
                return
            body = self.read_body()
            if rule is None:
                try:
                    status, reason, headers, data, length = self.upstream(body)
                except OSError as e:
                    log(f"{where} -> upstream error {e}")
                    return self.reset()
                log(f"{where} -> pass {status}")
                return self.answer(status, reason, headers, data, length)
            log(f"{where} -> FAULT {rule.text}")
            a = rule.action
            if a == "status":
                code = rule.args["code"]
                if rule.args.get("forward"):
                    try:
                        self.upstream(body)
                    except OSError:
                        pass
                message = "injected fault"
                if rule.args.get("echo-auth"):
                    message += " for Authorization: " + self.headers.get("Authorization", "")
                doc = {"errors": [{"code": "UNAVAILABLE" if code >= 500 else "TOOMANYREQUESTS"
                                   if code == 429 else "UNKNOWN", "message": message}]}
                headers = [("Content-Type", "application/json")]
                if "retry-after" in rule.args:
                    headers.append(("Retry-After", str(rule.args["retry-after"])))
                return self.answer(code, http.client.responses.get(code, "Error"), headers,
                                   json.dumps(doc).encode())
            if a == "reset-request":
                try:
                    self.upstream(body, partial=rule.int("after", len(body) // 2))
                except OSError:
                    pass
                return self.reset()
            if a == "flip-request" and body:
                i = min(rule.int("offset", len(body) // 2), len(body) - 1)
                body = body[:i] + bytes([body[i] ^ 1]) + body[i + 1:]
            if a == "delay":
                time.sleep(float(rule.args.get("seconds", 1)))
            if a == "strip-range":
                del self.headers["Range"]
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
            if a == "shift-range" and m:
                by = rule.int("by", 1)
                end = str(int(m.group(2)) + by) if m.group(2) else ""
                del self.headers["Range"]
                self.headers["Range"] = f"bytes={int(m.group(1)) + by}-{end}"
            try:
                status, reason, headers, data, length = self.upstream(body)
            except OSError as e:
                log(f"{where} -> upstream error {e}")
                return self.reset()
            if a in ("delay", "flip-request", "strip-range", "shift-range"):
                return self.answer(status, reason, headers, data, length)
            if a == "flip":
                if data:
                    i = min(rule.int("offset", len(data) // 2), len(data) - 1)
                    data = data[:i] + bytes([data[i] ^ 1]) + data[i + 1:]
                return self.answer(status, reason, headers, data, length)
            after = min(rule.int("after", 0), len(data))
            self.send_head(status, reason, headers, len(data) if self.command != "HEAD" else length)
            if self.command != "HEAD":
                self.wfile.write(data[:after])
            self.wfile.flush()
            if a == "reset":
                return self.reset()
            self.close_connection = True
            if a == "stall":
                time.sleep(float(rule.args.get("seconds", 30)))
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        do_GET = do_HEAD = do_PUT = do_PATCH = do_POST = do_DELETE = handle_any

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True

        def handle_error(self, request, client_address):
            pass  # broken connections are the point here

    server = Server(("127.0.0.1", args.port), Handler)
    port = server.server_address[1]
    port_file.announce(port, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
