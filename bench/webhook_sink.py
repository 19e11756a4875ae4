#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A fast keep-alive HTTP/1.1 receiver for bench/webhooks.sh (asyncio, no
# parsing beyond what is needed). Each request body is the publisher's
# send time in ms (time.time() * 1000); the sink keeps the delays from
# then to the request's arrival. Writes its port to PORTFILE. On SIGTERM
# it writes "count p50_ms p99_ms" to STATSFILE. With --stall it accepts
# connections and never answers.
# Usage: webhook_sink.py PORTFILE STATSFILE [--stall]
import asyncio
import os
import signal
import sys
import time

port_file, stats_file = sys.argv[1], sys.argv[2]
stall = "--stall" in sys.argv[3:]
delays = []
REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if stall:
                await asyncio.sleep(3600)
            n = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    n = int(line[15:])
            body = await reader.readexactly(n) if n else b""
            now = time.time() * 1000
            try:
                delays.append(now - float(body))
            except ValueError:
                pass
            writer.write(REPLY)
    except (asyncio.IncompleteReadError, ConnectionError,
            asyncio.CancelledError):
        pass
    writer.close()


def dump():
    d = sorted(delays)
    def pct(p):
        return d[min(len(d) - 1, int(len(d) * p))] if d else 0
    with open(stats_file, "w") as f:
        f.write("%d %.1f %.1f\n" % (len(d), pct(0.5), pct(0.99)))


async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(srv.sockets[0].getsockname()[1]))
    os.rename(port_file + ".tmp", port_file)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    loop.add_signal_handler(signal.SIGUSR1, dump)
    await stop
    dump()

asyncio.run(main())
