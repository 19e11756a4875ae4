// SPDX-License-Identifier: MIT
// particle-api-js against a local cinderd: login, getUserInfo, listDevices,
// getDevice, getVariable, callFunction (args), renameDevice, an unknown
// variable (404), deleteCurrentAccessToken. Usage:
//   node apijs.js API_URL USERNAME PASSWORD DEVICE_ID
// Prints "ok <step>" lines; exits non-zero on the first failure.
'use strict';
const Particle = require('particle-api-js');

const [baseUrl, username, password, deviceId] = process.argv.slice(2);
const particle = new Particle({ baseUrl });

function check(cond, what) {
	if (!cond) {
		throw new Error('check failed: ' + what);
	}
	console.log('ok ' + what);
}

async function main() {
	const login = await particle.login({ username, password });
	const auth = login.body.access_token;
	check(/^[0-9a-f]{40}$/.test(auth), 'login');
	const user = await particle.getUserInfo({ auth });
	check(user.body.username === username, 'getUserInfo');
	const list = await particle.listDevices({ auth });
	check(Array.isArray(list.body) && list.body.some((d) => d.id === deviceId && d.connected), 'listDevices');
	const dev = await particle.getDevice({ deviceId, auth });
	check(dev.body.variables.counter === 'int32' && dev.body.functions.includes('echo'), 'getDevice');
	const call = await particle.callFunction({ deviceId, name: 'setcounter', argument: '17', auth });
	check(call.body.connected === true && typeof call.body.return_value === 'number', 'callFunction');
	const echo = await particle.callFunction({ deviceId, name: 'echo', argument: 'four', auth });
	check(echo.body.return_value === 4, 'callFunction return_value');
	const v = await particle.getVariable({ deviceId, name: 'counter', auth });
	check(v.body.result === 17 && v.body.coreInfo.deviceID === deviceId, 'getVariable');
	const rn = await particle.renameDevice({ deviceId, name: 'apijs_dev', auth });
	check(rn.body.name === 'apijs_dev', 'renameDevice');
	try {
		await particle.getVariable({ deviceId, name: 'nosuchvar', auth });
		check(false, 'unknown variable refused');
	} catch (e) {
		check(e.statusCode === 404, 'unknown variable refused');
	}
	await particle.deleteCurrentAccessToken({ auth });
	try {
		await particle.getUserInfo({ auth });
		check(false, 'token revoked');
	} catch (e) {
		check(e.statusCode === 401, 'token revoked');
	}
}

main().then(() => {
	console.log('apijs: all passed');
}, (e) => {
	console.error('apijs: ' + (e && e.stack ? e.stack : e));
	if (e && e.body) {
		console.error(JSON.stringify(e.body));
	}
	process.exit(1);
});
