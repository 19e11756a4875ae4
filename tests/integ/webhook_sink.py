#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A webhook receiver for the integration tests: HTTP/1.1 with keep-alive,
# optionally TLS. Every request is appended to LOG as one JSON line
# {method, path, headers, body}; the port is written to PORTFILE once
# listening. Answers: paths under /fail<N>/ get 503 for the first N
# requests of that path and then 200; /status<NNN>/ always NNN; /big/
# a 1200-byte body; anything else 200 with {"reply":"ok","path":...}.
# Under /drop/ the connection is closed after the answer, which does not
# say so (the client sees a kept-alive connection end while idle). Under
# /slow/ each request is held 0.15 s, and its record says how many /slow/
# requests were held at its arrival, in all ("held") and on its path
# ("held_path"), itself included.
# Usage: webhook_sink.py LOG PORTFILE [--port P] [--tls CERT KEY]
import json
import os
import re
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log_path, port_path = sys.argv[1], sys.argv[2]
port = 0
tls = None
args = sys.argv[3:]
while args:
    if args[0] == "--port":
        port = int(args[1])
        args = args[2:]
    elif args[0] == "--tls":
        tls = (args[1], args[2])
        args = args[3:]
    else:
        sys.exit("unknown argument " + args[0])
lock = threading.Lock()
seen = {}
held = {}  # /slow/ requests being held: "" all, else by path


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace") if n else ""
        rec = {"method": self.command, "path": self.path,
               "headers": {k.lower(): v for k, v in self.headers.items()},
               "body": body}
        status, reply = 200, None
        key = self.path.split("?")[0]
        slow = self.path.startswith("/slow/")
        with lock:
            if slow:
                held[""] = held.get("", 0) + 1
                held[key] = held.get(key, 0) + 1
                rec["held"], rec["held_path"] = held[""], held[key]
            with open(log_path, "a") as f:
                f.write(json.dumps(rec) + "\n")
            seen[key] = seen.get(key, 0) + 1
            m = re.match(r"^/fail(\d+)/", self.path)
            if m and seen[key] <= int(m.group(1)):
                status = 503
            m = re.match(r"^/status(\d+)/", self.path)
            if m:
                status = int(m.group(1))
        if slow:
            time.sleep(0.15)
            with lock:  # before the answer: the next request may follow it
                held[""] -= 1
                held[key] -= 1
        if self.path.startswith("/big/"):
            reply = ("0123456789" * 120).encode()
        else:
            reply = json.dumps({"reply": "ok", "path": key,
                                "n": seen[key]}, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)
        if self.path.startswith("/drop/"):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = handle_any


srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
srv.daemon_threads = True
if tls:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tls[0], tls[1])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(port_path + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(port_path + ".tmp", port_path)
srv.serve_forever()
