#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Webhooks with the real clients (tests/compat/node_modules): `particle
# webhook create` (arguments and a JSON file in the shape of Particle's
# documented examples), `particle webhook list`, `particle webhook
# delete`, and particle-api-js createWebhook / listWebhooks /
# deleteWebhook / createIntegration, against a cinderd delivering to a
# loopback sink. Run under tests/with-pg; skips (77) without node or the
# node modules.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../integ/lib.sh"
. "$here/../integ/webhook_lib.sh"
compat_init
echo "webhook_allow_nets 127.0.0.1/32" >>"$T_DIR/cinder.conf"
start_cinderd
user_token dan
TOK=$TOKEN
sink_start plain
P="http://127.0.0.1:$SINK_plain"

particle_cli "$TOK" dan@example.com

# particle webhook create EVENT URL
CLI webhook create cli/ev "$P/cli" >"$T_DIR/create.out" 2>&1 || fail "create: $(cat "$T_DIR/create.out")"
ID1=$(sed -n 's/.*Successfully created webhook with ID \([0-9a-f]*\).*/\1/p' "$T_DIR/create.out")
[ -n "$ID1" ] || fail "no id in: $(cat "$T_DIR/create.out")"
# particle webhook create hook.json (a definition in the documented shape)
sed "s/SINKPORT/$SINK_plain/" "$top_srcdir/tests/data/webhooks/particle-docs-style.json" >"$T_DIR/hook.json"
(cd "$T_DIR" && CLI webhook create hook.json) >"$T_DIR/create2.out" 2>&1 || fail "create from file: $(cat "$T_DIR/create2.out")"
grep -q 'Using settings from the file hook.json' "$T_DIR/create2.out" || fail "file not used: $(cat "$T_DIR/create2.out")"
ID2=$(sed -n 's/.*Successfully created webhook with ID \([0-9a-f]*\).*/\1/p' "$T_DIR/create2.out")
[ -n "$ID2" ] || fail "no id in: $(cat "$T_DIR/create2.out")"
# a refused definition is an error the CLI shows
CLI webhook create cli/bad "ftp://nowhere/" >"$T_DIR/bad.out" 2>&1 && fail "ftp URL accepted"
grep -q 'url' "$T_DIR/bad.out" || fail "refusal not shown: $(cat "$T_DIR/bad.out")"

CLI webhook list >"$T_DIR/list.out" 2>&1 || fail "list: $(cat "$T_DIR/list.out")"
grep -q 'Found 2 hooks registered' "$T_DIR/list.out" || fail "list count: $(cat "$T_DIR/list.out")"
grep -q "Hook ID $ID1 is watching for \"cli/ev\"" "$T_DIR/list.out" || fail "list line: $(cat "$T_DIR/list.out")"
grep -q "Hook ID $ID2 is watching for \"greenhouse/temperature\"" "$T_DIR/list.out" || fail "list line 2"

# Both fire.
CLI publish cli/ev hello >/dev/null 2>&1 || fail "publish"
CLI publish greenhouse/temperature '{"t":21.5,"h":40}' >/dev/null 2>&1 || fail "publish json"
wait_for sink_has plain 'r["path"] == "/cli"' || fail "CLI webhook did not fire"
G='r["path"].startswith("/greenhouse/api?")'
wait_for sink_has plain "$G" || fail "file webhook did not fire: $(cat "$T_DIR/sink-plain.log")"
[ "$(sink_get plain "$G" 'r["path"]')" = "/greenhouse/api?source=particle" ] || fail "query"
[ "$(sink_get plain "$G" 'r["headers"]["authorization"]')" = "Bearer 12345abcdef" ] || fail "header"
[ "$(sink_get plain "$G" 'json.loads(r["body"])["temperature"]')" = 21.5 ] || fail "json body"
[ "$(sink_get plain "$G" 'sorted(json.loads(r["body"]).keys())')" = "['device', 'event', 'humidity', 'legacy', 'published', 'temperature']" ] ||
	fail "noDefaults body: $(sink_get plain "$G" 'r["body"]')"

CLI webhook delete "$ID1" >"$T_DIR/del.out" 2>&1 || fail "delete: $(cat "$T_DIR/del.out")"
grep -q 'Successfully deleted webhook' "$T_DIR/del.out" || fail "delete output: $(cat "$T_DIR/del.out")"

# particle-api-js
cat >"$T_DIR/js.js" <<'JS'
const Particle = require(process.env.NM + '/particle-api-js');
const api = new Particle({ baseUrl: process.env.API });
const auth = process.env.TOK;
const P = process.env.P;
function fail(m) { console.log(m); process.exit(1); }
(async () => {
	const c = await api.createWebhook({ event: 'js/ev', url: P + '/js', auth,
		rejectUnauthorized: true, noDefaults: false,
		hook: { method: 'PUT', headers: { 'X-From': 'js' }, json: { v: '{{{PARTICLE_EVENT_VALUE}}}' },
			responseEvent: 'js-reply', errorResponseEvent: 'js-error' } });
	if (!c.body.ok || !c.body.id) fail('create: ' + JSON.stringify(c.body));
	const l = await api.listWebhooks({ auth });
	const mine = l.body.find((h) => h.id === c.body.id);
	if (!mine || mine.event !== 'js/ev' || mine.url !== P + '/js' || mine.requestType !== 'PUT')
		fail('list: ' + JSON.stringify(l.body));
	const i = await api.createIntegration({ event: 'js/int', auth,
		settings: { integration_type: 'Webhook', url: P + '/jsint' } });
	if (!i.body.id || i.body.integration_type !== 'Webhook') fail('integration: ' + JSON.stringify(i.body));
	await api.publishEvent({ name: 'js/ev', data: 'from-js', isPrivate: true, auth });
	await api.publishEvent({ name: 'js/int', data: 'x', isPrivate: true, auth });
	console.log('ID ' + c.body.id + ' ' + i.body.id);
})().catch((e) => fail('error: ' + (e && (e.errorDescription || e.message))));
JS
NM=$NM API=$API TOK=$TOK P=$P node "$T_DIR/js.js" >"$T_DIR/js.out" 2>&1 || fail "particle-api-js: $(cat "$T_DIR/js.out")"
wait_for sink_has plain 'r["path"] == "/js"' || fail "api-js webhook did not fire"
[ "$(sink_get plain 'r["path"] == "/js"' 'r["method"]')" = PUT ] || fail "api-js method"
[ "$(sink_get plain 'r["path"] == "/js"' 'r["headers"]["x-from"]')" = js ] || fail "api-js header"
[ "$(sink_get plain 'r["path"] == "/js"' 'json.loads(r["body"])["v"]')" = from-js ] || fail "api-js json"
wait_for sink_has plain 'r["path"] == "/jsint"' || fail "integration did not fire"
JSID=$(awk '/^ID /{print $2}' "$T_DIR/js.out")
cat >"$T_DIR/js2.js" <<'JS'
const Particle = require(process.env.NM + '/particle-api-js');
const api = new Particle({ baseUrl: process.env.API });
api.deleteWebhook({ hookId: process.env.ID, auth: process.env.TOK })
	.then((r) => { if (!r.body.ok) throw new Error(JSON.stringify(r.body)); console.log('deleted'); })
	.catch((e) => { console.log('error: ' + (e.errorDescription || e.message)); process.exit(1); });
JS
NM=$NM API=$API TOK=$TOK ID=$JSID node "$T_DIR/js2.js" >"$T_DIR/js2.out" 2>&1 || fail "deleteWebhook: $(cat "$T_DIR/js2.out")"
http GET "/v1/webhooks/$JSID" -H "Authorization: Bearer $TOK"
expect 404 "deleted webhook"
stop_cinderd
note "webhooks compat ok"
