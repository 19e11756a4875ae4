#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Events with the real clients (tests/compat/node_modules): `particle
# subscribe` / `particle publish` from particle-cli, and particle-api-js
# getEventStream (token as header) and publishEvent, against a cinderd
# with a PostgreSQL of its own. Run under tests/with-pg; skips (77) when
# node or the node modules are missing.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../integ/lib.sh"
compat_init
start_cinderd

add_user dan@example.com danpass1234
login dan@example.com danpass1234
TOK=$TOKEN

# The CLI reads its API URL and token from $HOME/.particle.
particle_cli "$TOK" dan@example.com

# particle subscribe (the "mine" stream) sees particle publish.
CLI subscribe --max 1 cli/ >"$T_DIR/sub.out" 2>&1 &
T_PIDS+=("$!")
SUB=$!
wait_for grep -q 'Subscribing to "cli/"' "$T_DIR/sub.out" || fail "subscribe did not start: $(cat "$T_DIR/sub.out")"
tries=0
until grep -q '"name":"cli/hello"' "$T_DIR/sub.out"; do
	CLI publish cli/hello "from the CLI" >>"$T_DIR/pub.out" 2>&1 || fail "particle publish: $(cat "$T_DIR/pub.out")"
	tries=$((tries + 1))
	[ $tries -lt 10 ] || fail "particle subscribe got nothing: $(cat "$T_DIR/sub.out")"
	WAIT_S=2 wait_for grep -q '"name":"cli/hello"' "$T_DIR/sub.out" && break
done
grep -q '"data":"from the CLI"' "$T_DIR/sub.out" || fail "subscribe output: $(cat "$T_DIR/sub.out")"
wait "$SUB" || fail "particle subscribe --max 1 did not exit cleanly"

# particle-api-js: getEventStream on /v1/events/:prefix and on the
# devices stream, publishEvent private and public.
cat >"$T_DIR/js.js" <<'JS'
const Particle = require(process.env.NM + '/particle-api-js');
const api = new Particle({ baseUrl: process.env.API });
const auth = process.env.TOK;
const want = new Set(['js/public', 'js/private']);
const got = {};
function done(ok, msg) { console.log(msg); process.exit(ok ? 0 : 1); }
setTimeout(() => done(false, 'timeout: ' + JSON.stringify(got)), 20000);
Promise.all([
	api.getEventStream({ name: 'js', auth }),
	api.getEventStream({ deviceId: 'mine', name: 'js', auth }),
]).then(([all, mine]) => {
	const seen = (tag) => (ev) => {
		got[tag + ':' + ev.name] = ev;
		const need = ['all:js/public', 'all:js/private', 'mine:js/public', 'mine:js/private'];
		if (need.every((k) => got[k])) {
			const e = got['all:js/public'];
			if (e.data !== 'pub' || e.coreid !== 'api' || typeof e.ttl !== 'number' ||
			    !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(e.published_at))
				done(false, 'bad event: ' + JSON.stringify(e));
			done(true, 'ok ' + JSON.stringify(e));
		}
	};
	all.on('event', seen('all'));
	mine.on('event', seen('mine'));
	// streams are open once the promises resolve
	return api.publishEvent({ name: 'js/public', data: 'pub', isPrivate: false, auth })
		.then(() => api.publishEvent({ name: 'js/private', data: 'priv', isPrivate: true, auth }));
}).catch((e) => done(false, 'error: ' + (e && e.message)));
JS
NM=$NM API=$API TOK=$TOK node "$T_DIR/js.js" >"$T_DIR/js.out" 2>&1 || fail "particle-api-js: $(cat "$T_DIR/js.out")"
note "$(cat "$T_DIR/js.out")"

# getEventStream with no name on /v1/events is refused (400), as on Particle.
http GET /v1/events -H "Authorization: Bearer $TOK"
[ "$HTTP_STATUS" = 400 ] || fail "bare /v1/events: $HTTP_STATUS"
stop_cinderd
note "events compat ok"
