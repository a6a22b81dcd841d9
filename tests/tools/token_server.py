#!/usr/bin/python3
"""A Docker token server for the registry tests (Distribution's auth.token).

GET /token?service=S&scope=repository:NAME:pull,push[&scope=...]
  Checks the Basic credentials (--user USER:PASSWORD); with the right ones
  every requested action is granted, anonymously nothing (the registry then
  answers 401). Wrong credentials get 401. The answer is
  {"token": JWT, "expires_in": 300} (or "access_token" with --field).
The JWT is ES256, signed by --key, with the certificate --cert in its x5c
header; the registry trusts that certificate (rootcertbundle).

Prints "ready" on stdout once listening. Logs requests to stderr, never the
Authorization header. Needs Debian's python3-jwt and python3-cryptography:
run it with /usr/bin/python3.
"""
import argparse
import base64
import json
import secrets
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--issuer", required=True)
    p.add_argument("--user", required=True, help="USER:PASSWORD")
    p.add_argument("--field", default="token", choices=["token", "access_token"])
    args = p.parse_args()

    with open(args.key, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    with open(args.cert, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
    want_user, want_password = args.user.split(":", 1)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            url = urllib.parse.urlparse(self.path)
            if url.path != "/token":
                return self.answer(404, {"error": "not found"})
            query = urllib.parse.parse_qs(url.query)
            user = None
            header = self.headers.get("Authorization", "")
            if header.startswith("Basic "):
                try:
                    u, pw = base64.b64decode(header[6:]).decode().split(":", 1)
                except Exception:
                    return self.answer(400, {"error": "bad Authorization header"})
                if (u, pw) != (want_user, want_password):
                    return self.answer(401, {"error": "invalid credentials"})
                user = u
            access = []
            if user is not None:
                for scope in query.get("scope", []):
                    parts = scope.split(":")
                    if len(parts) == 3:
                        access.append({"type": parts[0], "name": parts[1],
                                       "actions": parts[2].split(",")})
            now = int(time.time())
            claims = {
                "iss": args.issuer, "sub": user or "", "aud": query.get("service", [""])[0],
                "exp": now + 300, "nbf": now - 10, "iat": now,
                "jti": secrets.token_hex(8), "access": access,
            }
            token = jwt.encode(claims, key, algorithm="ES256", headers={"x5c": x5c})
            self.answer(200, {args.field: token, "expires_in": 300})

        def answer(self, status, doc):
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *a):  # the request line only: no headers
            sys.stderr.write("token-server: " + (fmt % a) + "\n")

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
