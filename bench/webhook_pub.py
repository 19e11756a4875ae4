#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Publisher for bench/webhooks.sh: N private API events named NAME over
# C keep-alive connections, data = send time in ms; RATE events/s in all
# (0 = as fast as possible). Prints the wall time.
# Usage: webhook_pub.py HOST PORT TOKEN NAME N C RATE
import http.client
import sys
import threading
import time
import urllib.parse

host, port, token, name = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
n, conns, rate = int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
hdrs = {"Authorization": "Bearer " + token,
        "Content-Type": "application/x-www-form-urlencoded"}
errors = []


def worker(k):
    c = http.client.HTTPConnection(host, port)
    share = n // conns + (1 if k < n % conns else 0)
    t0 = time.time()
    for i in range(share):
        if rate > 0:
            due = t0 + i * conns / rate
            d = due - time.time()
            if d > 0:
                time.sleep(d)
        body = urllib.parse.urlencode({"name": name, "private": "true",
                                       "data": "%.3f" % (time.time() * 1000)})
        c.request("POST", "/v1/devices/events", body, hdrs)
        r = c.getresponse()
        r.read()
        if r.status != 200:
            errors.append(r.status)


t = time.time()
ths = [threading.Thread(target=worker, args=(k,)) for k in range(conns)]
for th in ths:
    th.start()
for th in ths:
    th.join()
if errors:
    sys.exit("publish errors: %d (first %s)" % (len(errors), errors[0]))
print("%.2f" % (time.time() - t))
