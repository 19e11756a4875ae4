#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# SSE stream behaviour against a real cinderd: response headers and the
# ":ok" preamble, an idle stream receives a keep-alive within 10 s, a
# reader that stops reading is cut off (one log line) while another stream
# keeps receiving, and URL-encoded prefixes (a%2Fb) match names with '/'.
set -u
. "$(dirname "$0")/lib.sh"
integ_init
start_cinderd

http GET /v1/events/x
[ "$HTTP_STATUS" = 404 ] && { echo "SKIP: event routes not wired into cinderd" >&2; exit 77; }

add_user carol@example.com carolpass123
login carol@example.com carolpass123
TOK=$TOKEN

# Headers and preamble.
curl -sN -D "$T_DIR/hdr" "$API/v1/events/a%2Fb?access_token=$TOK" >"$T_DIR/sse-ab" &
T_PIDS+=("$!")
wait_for grep -q '^:ok' "$T_DIR/sse-ab" || fail "no preamble"
grep -qi '^Content-Type: text/event-stream' "$T_DIR/hdr" || fail "content type: $(cat "$T_DIR/hdr")"
grep -qi '^Cache-Control: no-cache' "$T_DIR/hdr" || fail "no Cache-Control"
grep -qi '^X-Accel-Buffering: no' "$T_DIR/hdr" || fail "no X-Accel-Buffering"
head -c 5 "$T_DIR/sse-ab" | cmp -s - <(printf ':ok\n\n') || fail "preamble bytes"

# Encoded prefix: a%2Fb is "a/b".
http POST /v1/devices/events -H "Authorization: Bearer $TOK" -d name=a/b/c -d data=1
expect 200 "publish a/b/c"
http POST /v1/devices/events -H "Authorization: Bearer $TOK" -d name=a/x -d data=2
expect 200 "publish a/x"
wait_for grep -q '^event: a/b/c$' "$T_DIR/sse-ab" || fail "a/b/c not on the a%2Fb stream"
grep -q 'a/x' "$T_DIR/sse-ab" && fail "a/x on the a%2Fb stream"

# Keep-alive: a byte within 10 s of silence. The python client times it.
python3 - "$API_PORT" "$TOK" >"$T_DIR/ka" <<'PY' || fail "keep-alive: $(cat "$T_DIR/ka")"
import socket, sys, time
port, tok = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port))
s.sendall(("GET /v1/events/idle HTTP/1.1\r\nHost: x\r\n"
           "Authorization: Bearer %s\r\n\r\n" % tok).encode())
buf = b""
while b":ok\n\n" not in buf:
    d = s.recv(4096)
    if not d:
        sys.exit("closed before the preamble")
    buf += d
t0 = time.monotonic()
s.settimeout(12)
d = s.recv(4096)  # the next chunk is the keep-alive
dt = time.monotonic() - t0
print("keep-alive after %.1f s: %r" % (dt, d))
sys.exit(0 if d and dt < 10.0 else 1)
PY
note "$(cat "$T_DIR/ka")"

# A slow reader (never reads, small receive buffer) is cut off while a
# normal stream keeps receiving. The publisher uses one keep-alive
# connection for speed.
curl -sN "$API/v1/events/big?access_token=$TOK" >"$T_DIR/sse-fast" &
T_PIDS+=("$!")
wait_for grep -q '^:ok' "$T_DIR/sse-fast" || fail "fast stream did not start"
python3 - "$API_PORT" "$TOK" "$T_DIR" >"$T_DIR/slow" 2>&1 <<'PY' || fail "slow reader: $(cat "$T_DIR/slow")"
import http.client, os, socket, sys, time
port, tok, tdir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
slow = socket.socket()
slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
slow.connect(("127.0.0.1", port))
slow.sendall(("GET /v1/events/big HTTP/1.1\r\nHost: x\r\n"
              "Authorization: Bearer %s\r\n\r\n" % tok).encode())
buf = b""
while b":ok\n\n" not in buf:
    buf += slow.recv(256)
# from here on the slow client reads nothing
c = http.client.HTTPConnection("127.0.0.1", port)
data = "d" * 1000
log = os.path.join(tdir, "cinderd.log")
for i in range(20000):
    c.request("POST", "/v1/devices/events",
              body="name=big&private=true&data=%s" % data,
              headers={"Authorization": "Bearer " + tok,
                       "Content-Type": "application/x-www-form-urlencoded"})
    r = c.getresponse()
    r.read()
    if r.status != 200:
        sys.exit("publish %d: %d" % (i, r.status))
    if i % 50 == 0 and "fell behind" in open(log).read():
        print("cut after %d events" % i)
        break
else:
    sys.exit("slow reader never cut off")
c.request("POST", "/v1/devices/events", body="name=big/last&data=after",
          headers={"Authorization": "Bearer " + tok,
                   "Content-Type": "application/x-www-form-urlencoded"})
c.getresponse().read()
PY
note "$(cat "$T_DIR/slow")"
[ "$(grep -c 'fell behind' "$T_DIR/cinderd.log")" = 1 ] || fail "expected one 'fell behind' log line"
wait_for grep -q '^event: big/last$' "$T_DIR/sse-fast" || fail "the normal stream stopped receiving"
kill -0 "$CINDERD_PID" || fail "cinderd died"
stop_cinderd
note "event streams ok"
