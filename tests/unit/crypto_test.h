/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the crypto unit tests (check_crypto, check_crypto_key,
 * check_vectors): the recorded sessions' keys from tests/data/vectors
 * ($top_srcdir), loaded by a fixture, and a throwaway RSA-2048 private key
 * (unused by check_vectors).
 */
#ifndef CINDER_TEST_CRYPTO_TEST_H
#define CINDER_TEST_CRYPTO_TEST_H

#include <stdlib.h>

#include <check.h>

#include "crypto.h"
#include "xmalloc.h"

/* Throwaway keys generated with openssl for these tests only. */
/* RSA-2048, e=65537, PKCS#8 "PRIVATE KEY". */
static const char pkcs8_2048_pem[] __attribute__((unused)) =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCu7KxxAFzTejo7\n"
	"W16lc5LK7yLspptaOy38oCq0RK4489tYN15KtkFYGILANc8QvnymZNGBrjzwHbgr\n"
	"/5xwsYm+euz+NH7T/ARvoMu6KKBtMot7vssbS5KajX3hY9R5yfiNAZQ+ZJClGGpy\n"
	"lQOwKolRepfPm84mzTAiGIK4QOJSX3ywb4KJ3fU6nzGuBKpxVjXMWr7wphKCNug4\n"
	"t5TinLQjmqsA4CLeccu7Em/GhpmSIXJBjPcR7FSWQzS2XZIWYmSKeHyJyeHd9bx5\n"
	"VwL0MpyIe6pNeeHILoARxbPoBYlQhmt0Wr2MJsqZGY0S/eCD4YctWcvoSpGf9uxq\n"
	"mB90WHdNAgMBAAECggEAMgXZnGkbophqDa5n5w2hdWokhSNx+sBAuuU8wReA8SV/\n"
	"XP9cdiYfkqdTwM7Ce8nVkKn1Jc4jfBErqV1sKegDeZbiriFqAYoo5JlJmV9j3UZe\n"
	"kBE0OQaIEq2SyYFIclmZPA2vDJaqrKPKUSEfEGJhqYzS3Bp0vjDgamey/ikD78UH\n"
	"7ImHg8A9kXsKQXcI72x4ebRSWCTkfNPL3zhFvPka+1vNl27e9CMajXvp+xfZLt1/\n"
	"l9660634sH963tRnX8eBWpL8nQmhRZrJehjHXzc9iAeA4pBpms0Vh2YWtd+OjyFa\n"
	"hG9skLOMcDjrbeR/FKGsfgXVYpue+uYXpeC1zjI92wKBgQDtI9K8MajjXMAhEUiF\n"
	"UnPhZwBUn/s9NJ0mYQNbwTqbleFuGrmrn3qtvI8PdsHQUdNTgoZ7aiYDcKsxiZsD\n"
	"H9zE42LSU8Bgyu8Ma5Iv1V+hXi7V/Ia6hnsiCo8NTh3vwc0J0EP75QMo8ROnbrJ1\n"
	"SNtbQRGacSWwZqZdeo4Dwm+yEwKBgQC81iRrhL9ePavDaJXyj3sZZCWnmxoG21y0\n"
	"BphdeZy5JG6cGIpvQUlhCnA7nXylexYhWaIRtNz+W1y5m3P6r7Lv8vjotbyYyndG\n"
	"dd1WTnsO5knyyGl2iJrLz11qP0Gk9C50hzTlbOu1HFJ6IxVVl5WbyrPTIG7tRzSW\n"
	"/0dT4ntdHwKBgAnT3jvmYvVpNp0oNjUwQZUpy522M5dJwumAQ79dtqwT/g+uE9vE\n"
	"9DSXB+bAKTAU9AkV87TRpVmnJbEb3sy2WVPfiIzm46YfQuDk5F4PHbN2T8KWgI7i\n"
	"W+ABSARpJFx3T6QEeYzK5OKhewsJT2QE7PJPNAeOgN1ao7JkDdaiDDb5AoGBAIDZ\n"
	"ZXRv2dxGHGNzg41E1ewXZ5IbxQCUwYadUW3Gw2eZMlgUbrFHTPiIFNi4twp7GDid\n"
	"XnbSgFCWqoiDR/nv1RrhIXI4P33J+OT9G4/+cP1TqXWdxkh5IZab4dPTYclaTDB6\n"
	"6V76mUK1Fpn8Qlxq2Ey7XURcRxRkl7/IZDUavq5lAoGARAH4qx4KkM3S4cZelxWD\n"
	"74fcgWE49MMrCKL9VZ4x2ridY4/na6F5qtZHcRKwSuWIyFc69vjiIVSiHS2D2OZF\n"
	"6PFdPg/gqp7uZQ+86wlOsMGCqkW3RwgEnE9GBZxEcDNYJyEbmZNbwJB2z1s1rTy7\n"
	"RVmHBMOBHhKtVx8F5CuGm/8=\n"
	"-----END PRIVATE KEY-----\n";

static struct crypto_key *server, *server_pub, *device, *device_pub;

static inline char *
vec_path(const char *name)
{
	const char *top = getenv("top_srcdir");

	return xasprintf("%s/tests/data/vectors/%s", top ? top : ".", name);
}

static inline void
load_keys(void)
{
	char *p;

	p = vec_path("server_key.pem");
	ck_assert_int_eq(crypto_server_key_load(p, &server), 0);
	free(p);
	p = vec_path("server_pub.pem");
	ck_assert_int_eq(crypto_pubkey_load(p, &server_pub), 0);
	free(p);
	p = vec_path("device_key.pem");
	ck_assert_int_eq(crypto_privkey_load(p, &device), 0);
	free(p);
	p = vec_path("device_pub.pem");
	ck_assert_int_eq(crypto_pubkey_load(p, &device_pub), 0);
	free(p);
}

static inline void
free_keys(void)
{
	crypto_key_free(server);
	crypto_key_free(server_pub);
	crypto_key_free(device);
	crypto_key_free(device_pub);
	server = server_pub = device = device_pub = NULL;
}

#endif
