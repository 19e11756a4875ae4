#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# An SSE client left idle for a minute stays connected: particle-api-js
# drops a stream after 15 s without a byte and reconnects, so zero
# 'reconnect' events over 62 idle seconds proves the keep-alive works for
# the real client. Then user A publishes a private event: A's streams get
# it on the same connection, user B's streams get nothing.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../integ/lib.sh"
compat_init
start_cinderd

add_user alice@example.com alicepass123
add_user bob@example.com bobpass1234
login alice@example.com alicepass123
TOK_A=$TOKEN
login bob@example.com bobpass1234
TOK_B=$TOKEN

cat >"$T_DIR/idle.js" <<'JS'
const Particle = require(process.env.NM + '/particle-api-js');
const api = new Particle({ baseUrl: process.env.API });
const A = process.env.TOK_A, B = process.env.TOK_B;
const IDLE_MS = 62000;
const log = { reconnects: 0, a_mine: 0, a_prefix: 0, b_mine: 0, b_prefix: 0 };
function done(ok, msg) { console.log(msg + ' ' + JSON.stringify(log)); process.exit(ok ? 0 : 1); }
setTimeout(() => done(false, 'timeout'), IDLE_MS + 20000);
Promise.all([
	api.getEventStream({ deviceId: 'mine', name: 'idle', auth: A }),
	api.getEventStream({ name: 'idle', auth: A }),
	api.getEventStream({ deviceId: 'mine', name: 'idle', auth: B }),
	api.getEventStream({ name: 'idle', auth: B }),
]).then((streams) => {
	const tags = ['a_mine', 'a_prefix', 'b_mine', 'b_prefix'];
	streams.forEach((s, i) => {
		s.on('reconnect', () => { log.reconnects++; });
		s.on('event', (ev) => {
			if (ev.name === 'idle/secret' && ev.data === 'for alice')
				log[tags[i]]++;
		});
	});
	setTimeout(() => {
		api.publishEvent({ name: 'idle/secret', data: 'for alice', isPrivate: true, auth: A })
			.catch((e) => done(false, 'publish: ' + e.message));
	}, IDLE_MS);
	setTimeout(() => {
		const ok = log.reconnects === 0 && log.a_mine === 1 && log.a_prefix === 1 &&
			log.b_mine === 0 && log.b_prefix === 0;
		done(ok, ok ? 'ok' : 'unexpected');
	}, IDLE_MS + 3000);
}).catch((e) => done(false, 'error: ' + (e && e.message)));
JS
NM=$NM API=$API TOK_A=$TOK_A TOK_B=$TOK_B timeout 120 node "$T_DIR/idle.js" >"$T_DIR/idle.out" 2>&1 ||
	fail "idle streams: $(cat "$T_DIR/idle.out")"
note "$(cat "$T_DIR/idle.out")"
stop_cinderd
