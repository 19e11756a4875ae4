/* SPDX-License-Identifier: MIT */
/*
 * CoAP test vectors shared by the codec suites and the fuzz corpora:
 * the plaintext messages of the recorded Device OS 0.7.0 sessions
 * (decrypted from /work/shared/vectors/devos-0.7.0-session, both
 * directions, duplicates removed) and the byte examples of protocol.md
 * §3.7 (MM = 12 34, TT = 07). All decode OK and re-encode identically.
 */
#ifndef CINDER_COAP_VECTORS_H
#define CINDER_COAP_VECTORS_H

#include <stddef.h>
#include <stdint.h>

/** One vector: a label and the message as lower-case hex. */
struct coap_vec {
	const char *name; /* where it comes from */
	const char *hex;  /* message bytes, two hex digits each */
};

static const struct coap_vec coap_vectors[] = {
	{"3.7 ping", "40001234"},
	{"3.7 ping ack", "60001234"},
	{"3.7 function call led on", "4102123407b166036c6564426f6e"},
	{"3.7 function return 1", "5144123507ff00000001"},
	{"3.7 function call no arg", "4102123407b166036c656440"},
	{"3.7 variable temp", "4101123407b1760474656d70"},
	{"3.7 variable reply separate", "5145123507ff00000017"},
	{"3.7 variable reply piggy-backed", "6145123407ff00000017"},
	{"3.7 describe app only", "4101123407b1644102"},
	{"3.7 describe default", "4101123407b164"},
	{"3.7 event temp private ttl 60", "50021234b1450474656d70ff3233"},
	{"3.7 event temp private ttl 120",
	 "50021234b1450474656d7033000078ff3233"},
	{"3.7 subscribe spark mine", "40011234b16505737061726b4175"},
	{"3.7 time request", "4101123407b174"},
	{"3.7 time reply", "6145123407ff6b04920e"},
	{"3.7 signal start", "4103123407b1734101"},
	{"3.7 signal reply", "6144123407"},
	{"3.7 update begin", "4102123407b175ff01020000004e200000000000"},
	{"3.7 chunk 3 fast (4 data bytes)",
	 "4102123407b16344c3c2c1c0020003ffdeadbeef"},
	{"3.7 update done", "4103123407b175"},
	{"3.7 chunk missed 3 and 7", "40011234b163ff00030007"},
	{"2.4 hello tcp", "50021234b168ff0006000100020006"},
	{"3.6 goodbye no-response", "50021234b178d0eaff0102"},
	{"5.3 update ready fast", "5144123507ff01"},
	{"5.3 update begin refused 5.03", "61a3123407"},
	{"5.3 update begin refused 4.00", "60801234"},
	{"5.5 update done ack json", "6144123407ff7b2272223a226f6b227d"},
	{"3.4 token 8 bytes", "480112340102030405060708"},
	{"rfc option len 13 and 269",
	 "40021234bd00414141414141414141414141414e000042424242424242424242"
	 "4242424242424242424242424242424242424242424242424242424242424242"
	 "4242424242424242424242424242424242424242424242424242424242424242"
	 "4242424242424242424242424242424242424242424242424242424242424242"
	 "4242424242424242424242424242424242424242424242424242424242424242"
	 "4242424242424242424242424242424242424242424242424242424242424242"
	 "4242424242424242424242424242424242424242424242424242424242424242"
	 "4242424242424242424242424242424242424242424242424242424242424242"
	 "4242424242424242424242424242424242424242424242424242424242424242"
	 "424242"},
	{"tinker d2s #0", "5002858bb168ff0003ffff00000003"},
	{"tinker d2s #1",
	 "5002858cb1450d0c737061726b2f68617264776172652f6d61785f62696e6172"
	 "79ff313032343030"},
	{"tinker d2s #2",
	 "5002858db1450d10737061726b2f68617264776172652f6f74615f6368756e6b"
	 "5f73697a65ff353132"},
	{"tinker d2s #3", "4001858eb16505737061726b"},
	{"tinker d2s #4", "4101858f01b174"},
	{"tinker d2s #5",
	 "6145014201ff7b2266223a5b226469676974616c72656164222c226469676974"
	 "616c7772697465222c22616e616c6f6772656164222c22616e616c6f67777269"
	 "7465225d2c2276223a7b7d2c2270223a332c226d223a5b5d7d"},
	{"tinker d2s #6", "60000143"},
	{"tinker d2s #7", "5144859002ff00000000"},
	{"tinker s2d #8", "50020141b168"},
	{"tinker s2d #9", "6145858f01ff6b04929e"},
	{"tinker s2d #10", "4101014201b164"},
	{"tinker s2d #11", "6000858c"},
	{"tinker s2d #12", "6000858d"},
	{"tinker s2d #13", "6000858e"},
	{"tinker s2d #14", "4102014302b1660a616e616c6f6772656164424130"},
	{"testapp d2s #15", "500246c8b168ff0003ffff00000003"},
	{"testapp d2s #16",
	 "500246c9b1450d0c737061726b2f68617264776172652f6d61785f62696e6172"
	 "79ff313032343030"},
	{"testapp d2s #17",
	 "500246cab1450d10737061726b2f68617264776172652f6f74615f6368756e6b"
	 "5f73697a65ff353132"},
	{"testapp d2s #18", "400146cbb16505737061726b"},
	{"testapp d2s #19", "410146cc01b174"},
	{"testapp d2s #20", "400146cdb16508766465762f636d64"},
	{"testapp d2s #21", "400146ceb16509766465762f6d696e654175"},
	{"testapp d2s #22",
	 "6145b58001ff7b2266223a5b226469676974616c72656164222c226469676974"
	 "616c7772697465222c22616e616c6f6772656164222c22616e616c6f67777269"
	 "7465222c22736574636f756e746572222c226563686f225d2c2276223a7b2263"
	 "6f756e746572223a322c22726174696f223a392c226772656574696e67223a34"
	 "7d2c2270223a332c226d223a5b5d7d"},
	{"testapp d2s #23", "6145b58102ff00000000"},
	{"testapp d2s #24", "6145b58203ff000000000000e03f"},
	{"testapp d2s #25", "6145b58304ff68656c6c6f2066726f6d2076646576"},
	{"testapp d2s #26", "6000b584"},
	{"testapp d2s #27", "514446cf05ff00000001"},
	{"testapp d2s #28",
	 "500246d0b1450a766465762f7265706c79ff676f7420766465762f636d643d70"
	 "756233"},
	{"testapp d2s #29", "500246d1b1450c766465762f636f756e746572ff31"},
	{"testapp d2s #30", "500246d2b1450c766465762f636f756e746572ff32"},
	{"testapp d2s #31", "400046d3"},
	{"testapp d2s #32", "500246d4b1450c766465762f636f756e746572ff33"},
	{"testapp d2s #33", "400046d5"},
	{"testapp d2s #34", "500246d6b1450c766465762f636f756e746572ff34"},
	{"testapp d2s #35", "500246d7b1450c766465762f636f756e746572ff35"},
	{"testapp d2s #36", "400046d8"},
	{"testapp d2s #37", "500246d9b1450c766465762f636f756e746572ff36"},
	{"testapp d2s #38", "400046da"},
	{"testapp d2s #39", "500246dbb1450c766465762f636f756e746572ff37"},
	{"testapp d2s #40", "500246dcb1450c766465762f636f756e746572ff38"},
	{"testapp d2s #41", "400046dd"},
	{"testapp d2s #42", "500246deb1450c766465762f636f756e746572ff39"},
	{"testapp d2s #43", "400046df"},
	{"testapp d2s #44", "500246e0b1450c766465762f636f756e746572ff3130"},
	{"testapp d2s #45", "500246e1b1450c766465762f636f756e746572ff3131"},
	{"testapp d2s #46", "400046e2"},
	{"testapp d2s #47", "500246e3b1450c766465762f636f756e746572ff3132"},
	{"testapp d2s #48", "400046e4"},
	{"testapp d2s #49", "500246e5b1450c766465762f636f756e746572ff3133"},
	{"testapp d2s #50", "500246e6b1450c766465762f636f756e746572ff3134"},
	{"testapp d2s #51", "400046e7"},
	{"testapp s2d #52", "5002b57fb168"},
	{"testapp s2d #53", "614546cc01ff6b04920e"},
	{"testapp s2d #54", "4101b58001b164"},
	{"testapp s2d #55", "600046c9"},
	{"testapp s2d #56", "600046ca"},
	{"testapp s2d #57", "600046cb"},
	{"testapp s2d #58", "600046cd"},
	{"testapp s2d #59", "600046ce"},
	{"testapp s2d #60", "4101b58102b17607636f756e746572"},
	{"testapp s2d #61", "4101b58203b17605726174696f"},
	{"testapp s2d #62", "4101b58304b176086772656574696e67"},
	{"testapp s2d #63",
	 "4102b58405b1660c6469676974616c77726974654744372c48494748"},
	{"testapp s2d #64",
	 "5002b585b165047664657603636d64340000003cff70756233"},
	{"testapp s2d #65", "600046d3"},
	{"testapp s2d #66", "600046d5"},
	{"testapp s2d #67", "600046d8"},
	{"testapp s2d #68", "600046da"},
	{"testapp s2d #69", "600046dd"},
	{"testapp s2d #70", "600046df"},
	{"testapp s2d #71", "600046e2"},
	{"testapp s2d #72", "600046e4"},
	{"testapp s2d #73", "600046e7"},
};

#define COAP_N_VECTORS (sizeof(coap_vectors) / sizeof(coap_vectors[0]))

/*
 * Convert a vector's hex into bytes. Returns the byte count, or 0 when
 * it does not fit (a test bug).
 */
static inline size_t
coap_vec_bytes(const struct coap_vec *v, uint8_t *out, size_t cap)
{
	size_t i, n = 0;

	for (i = 0; v->hex[i] != '\0' && v->hex[i + 1] != '\0'; i += 2) {
		unsigned hi = (unsigned)v->hex[i], lo = (unsigned)v->hex[i + 1];

		hi = hi <= '9' ? hi - '0' : hi - 'a' + 10;
		lo = lo <= '9' ? lo - '0' : lo - 'a' + 10;
		if (n == cap)
			return 0;
		out[n++] = (uint8_t)(hi << 4 | lo);
	}
	return n;
}

#endif
