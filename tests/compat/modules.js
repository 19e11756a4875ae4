// SPDX-License-Identifier: MIT
// Cinder's module parser and planner against Particle's own
// binary-version-reader (tests/compat/modules.sh runs it):
//  1. images built by `cinderd firmware make-module` and images built by
//     binary-version-reader's firmwareTestHelper are parsed by both
//     HalModuleParser and `cinderd firmware inspect`: same header and
//     suffix fields, same verdict on corrupted copies and on the
//     package's own non-module asset;
//  2. the describe fixtures of the package's specs go through
//     HalDependencyResolver.findAnyMissingDependencies and through
//     `cinderd firmware plan` with a catalogue holding exactly the
//     modules the resolver says are missing: the planner must choose one
//     of them, and after "installing" each choice both must agree until
//     neither wants anything.
// Usage: node modules.js CINDERD WORKDIR
'use strict';

const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const bvr = require('binary-version-reader');

const [cinderd, work] = process.argv.slice(2);
const specs = path.join(path.dirname(require.resolve('binary-version-reader/package.json')), 'specs');
let checks = 0;

function fail(msg) {
	console.error('FAIL: modules.js: ' + msg);
	process.exit(1);
}
function eq(a, b, what) {
	checks++;
	if (a !== b) {
		fail(`${what}: binary-version-reader ${JSON.stringify(a)}, cinder ${JSON.stringify(b)}`);
	}
}
function cinder(args) {
	try {
		return JSON.parse(execFileSync(cinderd, ['firmware', ...args]).toString());
	} catch (e) {
		if (e.stdout && e.stdout.length) {
			return JSON.parse(e.stdout.toString());
		}
		throw e;
	}
}

async function compareFile(file, what) {
	const buf = fs.readFileSync(file);
	const p = await new bvr.HalModuleParser().parseBuffer({ fileBuffer: buf });
	const c = cinder(['inspect', file]);
	const pre = p.prefixInfo, suf = p.suffixInfo;
	eq(p.crc.ok, c.ok, `${what}: valid`);
	if (!c.ok) {
		return c;
	}
	eq(pre.prefixOffset, c.prefix_offset, `${what}: prefix offset`);
	eq(parseInt(pre.moduleStartAddy, 16), c.start_address, `${what}: start`);
	eq(parseInt(pre.moduleEndAddy, 16), c.end_address, `${what}: end`);
	eq(pre.moduleFlags, c.flags, `${what}: flags`);
	eq(pre.moduleVersion, c.version, `${what}: version`);
	eq(pre.platformID, c.platform_id, `${what}: platform`);
	eq(pre.moduleFunction, bvr.ModuleInfo.FunctionType[
		{ bootloader: 'BOOTLOADER', system_part: 'SYSTEM_PART', user_part: 'USER_PART',
			monolithic: 'MONO_FIRMWARE', radio_stack: 'RADIO_STACK', ncp_firmware: 'NCP_FIRMWARE',
			resource: 'RESOURCE' }[c.function]], `${what}: function`);
	eq(pre.moduleIndex, c.index, `${what}: index`);
	eq(pre.depModuleFunction, fnum(c.dependencies[0].f), `${what}: dep1 function`);
	eq(pre.depModuleIndex, c.dependencies[0].index, `${what}: dep1 index`);
	eq(pre.depModuleVersion, c.dependencies[0].version, `${what}: dep1 version`);
	eq(pre.dep2ModuleFunction, fnum(c.dependencies[1].f), `${what}: dep2 function`);
	eq(pre.dep2ModuleIndex, c.dependencies[1].index, `${what}: dep2 index`);
	eq(pre.dep2ModuleVersion, c.dependencies[1].version, `${what}: dep2 version`);
	eq(suf.suffixSize, c.suffix_size, `${what}: suffix size`);
	eq(suf.fwUniqueId, c.module_sha256, `${what}: suffix SHA-256`);
	eq(suf.crcBlock, c.crc32, `${what}: CRC`);
	eq(suf.productId, c.product_id === undefined ? -1 : c.product_id, `${what}: product id`);
	eq(suf.productVersion, c.product_version === undefined ? -1 : c.product_version,
		`${what}: product version`);
	return c;
}

function fnum(letter) {
	return { n: 0, r: 1, b: 2, m: 3, s: 4, u: 5, c: 7, a: 8 }[letter];
}

async function parserChecks() {
	const made = [
		['photon-s2', ['--platform', '6', '--function', 'system_part', '--index', '2',
			'--version', '1512', '--dep', 's:1:1512', '--dep', 'b:0:400', '--size', '5000']],
		['photon-boot', ['--platform', '6', '--function', 'bootloader', '--index', '0',
			'--version', '501', '--size', '3000']],
		['electron-s3', ['--platform', '10', '--function', 'system_part', '--index', '3',
			'--version', '1512', '--dep', 's:2:110']],
		['electron-app', ['--platform', '10', '--function', 'user_part', '--index', '1',
			'--version', '6', '--dep', 's:2:1512', '--product-id', '4242', '--product-version', '9']],
		['gcc-s1', ['--platform', '3', '--function', 'system_part', '--index', '1',
			'--version', '1512', '--size', '2048']],
		['boron-boot', ['--platform', '13', '--function', 'bootloader', '--index', '0',
			'--version', '1100', '--start', '0xf4000', '--dep', 's:1:1102']],
	];
	for (const [name, args] of made) {
		const file = path.join(work, name + '.bin');
		execFileSync(cinderd, ['firmware', 'make-module', '-o', file, ...args]);
		const c = await compareFile(file, name);
		if (!c.ok) {
			fail(`${name}: cinder refuses its own image`);
		}
		// A corrupted copy: both refuse it.
		const bad = Buffer.from(fs.readFileSync(file));
		bad[bad.length - 50] ^= 0x55; // module data, not a header
		fs.writeFileSync(file + '.bad', bad);
		const cb = await compareFile(file + '.bad', name + ' corrupted');
		eq('crc_mismatch', cb.error, `${name} corrupted: cinder's reason`);
	}
	// Images made by Particle's test helper.
	const { FunctionType } = bvr.ModuleInfo;
	const helper = [
		['bvr-app', { platformId: 13, productId: 1234, productVersion: 5,
			deps: [{ func: FunctionType.SYSTEM_PART, index: 1, version: 4100 }],
			moduleStartAddress: 0xb4000 }],
		['bvr-photon-app', { platformId: 6, productId: 0xffff, productVersion: 0xffff,
			moduleStartAddress: 0x080a0000, moduleVersion: 6,
			deps: [{ func: FunctionType.SYSTEM_PART, index: 2, version: 1512 }] }],
		['bvr-photon-boot', { platformId: 6, productId: 0xffff, productVersion: 0xffff,
			moduleFunction: FunctionType.BOOTLOADER, moduleIndex: 0, moduleVersion: 501,
			addVectorTable: true, moduleStartAddress: 0x08000000, dataSize: 2000 }],
		['bvr-system', { platformId: 12, productId: 0xffff, productVersion: 0xffff,
			moduleFunction: FunctionType.SYSTEM_PART, moduleIndex: 1, moduleVersion: 4100,
			moduleStartAddress: 0x30000, dataSize: 4000,
			deps: [{ func: FunctionType.BOOTLOADER, index: 0, version: 2000 },
				{ func: FunctionType.RADIO_STACK, index: 0, version: 202 }] }],
	];
	for (const [name, opts] of helper) {
		const file = path.join(work, name + '.bin');
		fs.writeFileSync(file, bvr.firmwareTestHelper.createFirmwareBinary(opts));
		const c = await compareFile(file, name);
		if (!c.ok) {
			fail(`${name}: cinder refuses a binary-version-reader image: ${c.message}`);
		}
	}
	// The package's own asset that is not a module.
	const asset = path.join(specs, 'assets', 'km4_image2_all.bin');
	if (fs.existsSync(asset)) {
		await compareFile(asset, 'km4_image2_all.bin');
	}
}

// --- planner vs HalDependencyResolver -------------------------------------

const letterFunc = { b: 'bootloader', s: 'system_part', u: 'user_part', m: 'monolithic', a: 'radio_stack', c: 'ncp_firmware' };
const slotted = { 6: ['b0', 's1', 's2'], 8: ['b0', 's1', 's2'], 10: ['b0', 's1', 's2', 's3'], 3: ['b0', 's1', 's2', 's3'] };

function install(describe, f, n, v) {
	const m = describe.m.find(x => x.l === 'm' && x.f === f && x.n === String(n));
	if (m) {
		m.v = v;
		m.d = [];
	} else {
		describe.m.push({ s: 131072, l: 'm', vc: 30, vv: 30, f, n: String(n), v, d: [] });
	}
}

function plannerChecks() {
	const dir = path.join(specs, 'describes');
	const resolver = new bvr.HalDependencyResolver();
	let compared = 0;
	for (const name of fs.readdirSync(dir).sort()) {
		const describe = JSON.parse(JSON.stringify(require(path.join(dir, name))));
		if (!Array.isArray(describe.m)) {
			continue; // not a describe (modules.json.js holds single modules)
		}
		const platform = describe.p || 6;
		const catalogue = [];
		let comparable = true;
		for (let step = 0; step < 8; step++) {
			const missing = resolver.findAnyMissingDependencies(describe);
			for (const dep of missing) {
				const key = dep.f + dep.n;
				if (!(slotted[platform] || []).includes(key) || !letterFunc[dep.f]) {
					comparable = false;
					break;
				}
				const file = path.join(work, `${name}-${key}-${dep.v}.bin`);
				if (!catalogue.includes(file)) {
					execFileSync(cinderd, ['firmware', 'make-module', '-o', file,
						'--platform', String(platform), '--function', letterFunc[dep.f],
						'--index', String(dep.n), '--version', String(dep.v)]);
					catalogue.push(file);
				}
			}
			if (!comparable) {
				break;
			}
			const dfile = path.join(work, `${name}.step${step}.json`);
			fs.writeFileSync(dfile, JSON.stringify(describe));
			const plan = cinder(['plan', dfile, '--platform', String(platform), ...catalogue]);
			if (missing.length === 0) {
				eq('nothing', plan.status, `${name} step ${step}: planner status`);
				compared++;
				break;
			}
			eq('send', plan.status, `${name} step ${step}: planner status (${plan.reason})`);
			const hit = missing.find(d => d.f === plan.image.f && String(d.n) === String(plan.image.index));
			eq(true, hit !== undefined && hit.v === plan.image.version,
				`${name} step ${step}: planner's ${plan.image.f}${plan.image.index}@${plan.image.version} among ` +
				JSON.stringify(missing.map(d => `${d.f}${d.n}@${d.v}`)));
			install(describe, plan.image.f, plan.image.index, plan.image.version);
		}
		if (!comparable) {
			console.log(`# ${name}: needs a module without a known slot; not compared`);
		}
	}
	if (compared < 8) {
		fail(`only ${compared} describe fixtures were comparable`);
	}
	console.log(`# ${compared} describe fixtures healed identically`);
}

(async () => {
	await parserChecks();
	plannerChecks();
	console.log(`# ${checks} checks passed`);
})().catch(e => fail(e.stack || String(e)));
