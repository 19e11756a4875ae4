/* SPDX-License-Identifier: MIT */
/*
 * Tests for crypto: key loading, checks and conversions, key generation,
 * RSA PKCS#1 v1.5 encrypt/decrypt and raw signatures, HMAC/SHA-256 known
 * answers, the AES channel with IV chaining and strict padding, and both
 * sides of the handshake, including bad sizes, nonces and signatures.
 * Keys come from tests/data/vectors ($top_srcdir) and literals below.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "err.h"
#include "mutate.h"
#include "xmalloc.h"

/* Throwaway keys generated with openssl for these tests only. */
/* RSA-2048, e=65537, PKCS#8 "PRIVATE KEY". */
static const char pkcs8_2048_pem[] =
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
/* The PKCS#8 key above, encrypted (passphrase "secret"). */
static const char encrypted_pem[] =
	"-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
	"MIIFLTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI7OEpfFo0qSQCAggA\n"
	"MAwGCCqGSIb3DQIJBQAwHQYJYIZIAWUDBAEqBBA75E+vivMQ5qr8HzFlzsTnBIIE\n"
	"0EvT+nTE6TizN4Hz+roWnJE2zZDPRgiWw2Hae1NNfHi2ZlRldeTcaxfPUDaBXUwa\n"
	"xK/Q6m6yYthQbZA2st9ALBjAUA5vU12Xs6HxkapCutaoEfHiHM+5q8NIKRtRc0Pk\n"
	"6Cxa1oo7QZUAUwlsPmA3gwjCd3irJxD6DvoZqeOuon2BeXPk/sXus6l2xNqRVl+e\n"
	"WQSrT2l6NBdV4Bohzg4gk/cGIID0xr08wtupQjPKL5DRKPiaaTBXxf9C+0Yku0Mh\n"
	"T83pc6HN7/F37JcdPF8/lfUCeASL278NRxgwLDo9SOfNaQU9dr4TEssMxndjN711\n"
	"bWuHFBBMEz7J1zgD30dtA4MuS6yc90gSGp8SH2iAOH0jASkFjp2QFbTAP0wMme9L\n"
	"D3ImAxWyJ5vyxmaVUJuSDTPjrdcgHbn4FReJAPs1pLA0/bDbL0N2dVYb6qs9yhVA\n"
	"gFQSA3CM0xNY1eMAw89xYI0aWu31N3TpffAORN99M558VtQznklQo2Ohe9aoaguN\n"
	"SewmSgpAYwU6Z09Nxef9bqbE3KihmDImKmnyoWtl1/hQ30ToMhFGLoC8bMNXyulI\n"
	"0uWgSUkxNFRzVEbd+/AJrS7HO7K/8wu2ho6Y8tTPAzTDMcIw1BI/tO+RDvGkw1ce\n"
	"GCJ6Fb1RPUwbF+7ur6m78ZpJI4y1u90Vca8cBHXLRfkSKuU/nRIrOdNaSeak1JVC\n"
	"bj6cPjmYm7E6XwWQ0OoFjtE+zT5ioadJcXAGwBMacDS5CZSaVBte8DIwUiN7JvTW\n"
	"qxife9ssywd/bukNAHQhiiI3PYjqdBImnNlz5j/OYwbms+hwTHM8XSfSp83/pLQu\n"
	"iLQgv5IBBu4M30FNwjV2upXt+bYTVK1abqWmFEDREO39YgUTpiZiTwZg4TWg1w8d\n"
	"UQ0SbmFMNXEtO50gOd0Sj0qgSCvNSwcC/Dq0BwpNzfutRkulPYOPFPK+Ci8Yx2WT\n"
	"ngsO0nQzGnfUthxFu4Ouju9RYs5QX3wzpoLhLw8IEaOUHwtuLVHfxPpTt+6zwYyx\n"
	"CRVuI9tC6eUVlw0y1vDJAtCQ9SxrKZ3MqT5DeJMIrFDeLBxXjZeV7lP3QKhiRW4/\n"
	"wH5ohb59qn6rffdblb1Oi/nV/wziBRNhVkvOkzMWSq/yJp1fUr1iyxV8Q0RnXZjK\n"
	"wd+lnxXVuVRc/gfVNTAmCGeM3j1butCgKYUj8Wfe76QTi4sKo3dCbfZnsIPxCWIQ\n"
	"ZSBB31J8zp4p3JG5qKQBpry0SmE1YfbC803CBEBzY02pU2MF/Qxgrn0ZeoE+xtGg\n"
	"b2BjL87BLTJK5BqUGr2UCqrRfrJrt9cG3unehlVDWJFE9jHZKyPlCxvwif3BEmj9\n"
	"JJlbTr6kH7Ksa7PF5OD4q80YKF2pkkulxq1V0wRMd1WEIvG0ThG/LrkdyTuy/mT5\n"
	"BYt2FSY7qY95b6iUX00+Mg8EFwPXMULKc9/bEgZJgUwQPw28Cvn1scvgjssqxua9\n"
	"V7VQG0GoWon1d5HeprwZ0X4UiWWkr0vgowqRzULrCqxDNBroyRbmu9OwzRquIifu\n"
	"HsPrGAQwHo8X74ddPBnqC48oc8KqdExC9IWqROZMBEhdqedTqLjjzB/uq6LNTEKB\n"
	"ajSBd4gqRcirjKayNDCJJ8iECnXUGWEDolkIyRw+5mVa\n"
	"-----END ENCRYPTED PRIVATE KEY-----\n";
/* RSA-2048, e=3, PKCS#8. */
static const char e3_2048_pem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDBMpvF7ABqh5vX\n"
	"GLqrLD8xK08UeLEWkIuN4cUfbpIRiaCXH7w1mLWtYxGcGNJxEO9wIWjS6LgBBP89\n"
	"mpxHzzv2eef8dqAAhxjzxo1FW0EVj+2PWAt9489jMcHM5qo0VPmks5K5jOGjbwGV\n"
	"dLQLeqPtagqhFIIBLsVEpwO3CWGb06BpYdWJLDEhY1k7a/XI088p5T/i9UnixgRo\n"
	"625RN/u26Bwu4Org7ouQ8VgPMel61kLmnCaE2Z5j+BntFaV1LZaWaqh3svpxNTkO\n"
	"Ek4mBv+uP2+KNip8F7pQ8ENEJjLNgN0bJJtZSkmZWYBHwj7VKgZjpVT+Lk3+0pRx\n"
	"+CIt00aHAgEDAoIBAQCAzGfZSABHBRKPZdHHctTLcjS4UHYPCwez69i/nwwLsRW6\n"
	"FSgjuyPI7LZoEIxLYJ+gFkXh8HqrWKopEb2FNNKkUUVS+cAAWhCihF4uPNYOX/O0\n"
	"5Vz+l9+XdoEzRHF4OKZtzQx7s0EXn1ZjoyKyUcKeRrHAuFardIODGgJ6BkESi+tX\n"
	"dZQ2/ty3/eklMP7J9Ir35qRyFIx1tRdjUY2gVs9uFXwWLKf+ST0HCUQbt5aMsn5V\n"
	"V7QltmhoORoYxDEz0dAm4BXqpusGablvjuZAgari+bixbRrjLx87MDNs97YmXZtg\n"
	"fMTkz6Z9OgOZGH2GmEOXBq886iO1k5Rf6jJ9COBrAoGBAPfXypuqGF6WqRFy9WTm\n"
	"I6Bo9VWlSATfLhuIlKq2HfK/amNL8MelBV8zU2ETtsjnIFamSS6T1Z0Ui5Y9waU1\n"
	"86o5z0R/ppf3PARs0KFQH5GyFpIaCO0ddRjEQRG7WFUdubpDAXoKPgP3Wj0wgD0K\n"
	"Is97ZqpBBVfFrEGkyO2PVMfxAoGBAMeOZtuMlYd2vWoQrRKzwV5NFfOSjnJTCEXL\n"
	"XG8ql9HSXX7BrSc+e1DTEBDR577Aqi7AT2m4cmSzFtyKLbZxfzQiS0MYEgHwWp55\n"
	"61N1JO2nskhmCZUJ2/Kz5uRlWkx2OrnHZ/n31MvmKD2xnUWBItGFtKPhycCoyPQ9\n"
	"T+ji8S33AoGBAKU6hxJxZZRkcLZMo5iZbRWbTjkY2q3qHr0FuHHOvqHU8ZeH9dpu\n"
	"A5TM4kC3zzCaFY8Zhh8NORNjB7l+gRjOonF734L/xGVPfVhIixY1amEhZGFmsJ4T\n"
	"o2XYK2EnkDi+e9GCAPwG1AKk5tN1qtNcFzT87xwrWOUuctZt20kKOIVLAoGBAIUJ\n"
	"meezDlpPKPFgc2HNK5QzY/e3CaGMsC6HkvTHD+E26P8ryMTUUjXiCrXhRSnVxsnV\n"
	"ikZ69u3MuehcHnmg/3gW3NdlYVagPGmmnOJOGJ5vzDBEBmNb5/cime2Y5t2kJyaE\n"
	"7/v6jd1EGtPLvi5WFzZZIxfr29XF201+NUXsoMlPAoGAAkDirPCLo2xJ/Q4MOWxK\n"
	"s40XpzfoNsXkZnflTjG1so5JKPzjo92zUQHlzR1gg/pRjUFYg5y8KTlCaRmElu/f\n"
	"7PTiq1rGl5E1fYg7H+cThHGXsdo9Pgo6iSdE+d5tDBzswWENmVV5/Q2yLNYLtTEE\n"
	"ClGAQvVGkaFcd+T0S1QoYs4=\n"
	"-----END PRIVATE KEY-----\n";
/* RSA-1024, e=3, public. */
static const char e3_1024_pub_pem[] =
	"-----BEGIN PUBLIC KEY-----\n"
	"MIGdMA0GCSqGSIb3DQEBAQUAA4GLADCBhwKBgQCjDuDHt5gxM3mSSxaI7+WFIl75\n"
	"OmJLBsNlEzKXVXej7n2Jmsfr3FiENnHtEuwA5YrlVVXl3LRnr5YGc2dkVwBQNL89\n"
	"hBoLNc7rEadeNbt3ogfYHHIepnecJhzwGnqLCRyQoUIJ1atq3myjue1hw4GCOY2r\n"
	"Yx+0wKSBoOPYYUf5DQIBAw==\n"
	"-----END PUBLIC KEY-----\n";
/* RSA-512, public. */
static const char rsa512_pub_pem[] =
	"-----BEGIN PUBLIC KEY-----\n"
	"MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAKyNsjxVCqrLW1SYWyWh5/UeoRa+caK8\n"
	"4tWdoUICHPRr1EE8lLiDAcSdVmE4a5D9CbBF/OacwzxVDLrKZHlWYyUCAwEAAQ==\n"
	"-----END PUBLIC KEY-----\n";
/* RSA-3072, public. */
static const char rsa3072_pub_pem[] =
	"-----BEGIN PUBLIC KEY-----\n"
	"MIIBojANBgkqhkiG9w0BAQEFAAOCAY8AMIIBigKCAYEAzsdW3+lmszhgRXbtGPWp\n"
	"HSh3BKUda1BSLQ1RDNybswKS70OcsIb6gXw6QMU2UiIJJAbynk0qftQtWgmCZUcl\n"
	"4UQQnn/1DZnmaHJzJEDqhlB+Jxg6AnRpRsYDSLjJDacbNxdbtBDQmBG+1NPAIke1\n"
	"jfM9HvkeqW5TXH3jKrp+PFTwy5nIp943vsHpwh/tNKsjxcCKyp77b7jRpiTxbV5G\n"
	"Zyi3WwSqNzb6/xZjoyJFNWpYC96VT11CpQc2QrIPljGSY0h76f4nZKi7GbvrZxIK\n"
	"0jnX5cjUIME+eDYsZOOcbq0GRoqNAa8fVuILl9karPjRr9Ao5Z8P8vgNTMhO6tmw\n"
	"bVEJRxwVHJJoFbLPZKaoYs2KBj+SeAdcvlR+0By9yn5zVXb5Z4wE8Nkz5qYd4Rxj\n"
	"uKjzrtRWnwmEzxcNZaLR2XzkbbYkhOI5lC5FuK5hEcoDTqtlZokR14GQz1ewhBty\n"
	"CAqOV3/YMEWfNd+QaZN7SL68/nZ6XkgwZVAf8+Xfl3zxAgMBAAE=\n"
	"-----END PUBLIC KEY-----\n";
/* The vectors' device key as PKCS#1 "RSA PUBLIC KEY". */
static const char device_pkcs1_pub_pem[] =
	"-----BEGIN RSA PUBLIC KEY-----\n"
	"MIGJAoGBAK//L/BgjYprkDdKDbjRY4NnFcm3CI1duPbe41UAj5eonQsM7WLuy/tl\n"
	"31N3GGGxuLRH6KPPd79y2RQIHKNX36z6XQwHWqTmq0rKdm4nRH+PVy7KHtK4Py4E\n"
	"MBwZv8hofkEBdELFsUTjrKNq0EsoXYFy7rmHUpNPKKj1BSihnsbDAgMBAAE=\n"
	"-----END RSA PUBLIC KEY-----\n";

static struct crypto_key *server, *server_pub, *device, *device_pub;

static char *
vec_path(const char *name)
{
	const char *top = getenv("top_srcdir");

	return xasprintf("%s/tests/data/vectors/%s", top ? top : ".", name);
}

static uint8_t *
vec_read(const char *name, size_t *len)
{
	char *path = vec_path(name);
	FILE *f = fopen(path, "rb");
	uint8_t *buf = xmalloc(65536);

	ck_assert_msg(f != NULL, "cannot open %s", path);
	*len = fread(buf, 1, 65535, f);
	buf[*len] = '\0';
	fclose(f);
	free(path);
	return buf;
}

static void
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

static void
free_keys(void)
{
	crypto_key_free(server);
	crypto_key_free(server_pub);
	crypto_key_free(device);
	crypto_key_free(device_pub);
	server = server_pub = device = device_pub = NULL;
}

static size_t
unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex) / 2, i;
	unsigned v;

	ck_assert_uint_le(n, cap);
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

/*
 * Keys
 */

START_TEST(test_crypto_server_key_load_ok)
{
	uint8_t der[CRYPTO_PUB_DER_MAX];
	size_t len = 0, flen = 0;
	uint8_t *file;
	char *pem = NULL;

	ck_assert_uint_eq(crypto_key_bits(server), 2048);
	ck_assert(crypto_key_is_private(server));
	ck_assert_int_eq(crypto_server_key_check(server), 0);
	/* The exported public half is byte-identical to the vector files. */
	ck_assert_int_eq(crypto_key_public_der(server, der, sizeof(der), &len),
			 0);
	ck_assert_uint_eq(len, CRYPTO_SERVER_PUB_DER_LEN);
	file = vec_read("server_pub.der", &flen);
	ck_assert_uint_eq(flen, len);
	ck_assert_mem_eq(der, file, len);
	free(file);
	ck_assert_int_eq(crypto_key_public_pem(server, &pem), 0);
	file = vec_read("server_pub.pem", &flen);
	ck_assert_str_eq(pem, (char *)file);
	free(file);
	free(pem);
	ck_assert(crypto_key_public_eq(server, server_pub));
	ck_assert(!crypto_key_is_private(server_pub));
}
END_TEST

START_TEST(test_crypto_server_key_load_pkcs8)
{
	struct crypto_key *k = NULL;

	ck_assert_int_eq(crypto_privkey_parse(pkcs8_2048_pem,
					      strlen(pkcs8_2048_pem), &k),
			 0);
	ck_assert_uint_eq(crypto_key_bits(k), 2048);
	ck_assert_int_eq(crypto_server_key_check(k), 0);
	crypto_key_free(k);
}
END_TEST

START_TEST(test_crypto_server_key_load_bad)
{
	struct crypto_key *k = (struct crypto_key *)1;
	char *p;

	/* A 1024-bit key is a valid private key but not a server key. */
	p = vec_path("device_key.pem");
	ck_assert_int_eq(crypto_server_key_load(p, &k), CINDER_ERR_INVAL);
	ck_assert_ptr_null(k);
	free(p);
	/* A public key is not a private key. */
	p = vec_path("server_pub.pem");
	ck_assert_int_eq(crypto_server_key_load(p, &k), CINDER_ERR_CRYPTO);
	ck_assert_ptr_null(k);
	free(p);
	/* Text that is not a key at all. */
	p = vec_path("README.md");
	ck_assert_int_eq(crypto_server_key_load(p, &k), CINDER_ERR_CRYPTO);
	free(p);
	ck_assert_int_eq(crypto_server_key_load("/nonexistent/key.pem", &k),
			 CINDER_ERR_IO);
	ck_assert_int_eq(crypto_server_key_load(NULL, &k), CINDER_ERR_INVAL);
	/* Right size, wrong exponent. */
	ck_assert_int_eq(
		crypto_privkey_parse(e3_2048_pem, strlen(e3_2048_pem), &k), 0);
	ck_assert_uint_eq(crypto_key_bits(k), 2048);
	ck_assert_int_eq(crypto_server_key_check(k), CINDER_ERR_INVAL);
	crypto_key_free(k);
	/* Public-only and small keys fail the check. */
	ck_assert_int_eq(crypto_server_key_check(server_pub), CINDER_ERR_INVAL);
	ck_assert_int_eq(crypto_server_key_check(device), CINDER_ERR_INVAL);
	ck_assert_int_eq(crypto_server_key_check(NULL), CINDER_ERR_INVAL);
	ck_assert_int_eq(crypto_privkey_parse("", 0, &k), CINDER_ERR_INVAL);
	ck_assert_int_eq(
		crypto_privkey_parse("-----BEGIN RSA PRIVATE KEY-----\n"
				     "AAAA\n"
				     "-----END RSA PRIVATE KEY-----\n",
				     56, &k),
		CINDER_ERR_CRYPTO);
}
END_TEST

static char *
tmp_dir(void)
{
	const char *top = getenv("top_builddir");
	char *d = xasprintf("%s/check_crypto.XXXXXX", top ? top : ".");

	ck_assert_ptr_nonnull(mkdtemp(d));
	return d;
}

static void
rm_dir(char *d)
{
	DIR *dir = opendir(d);
	struct dirent *e;
	char *p;

	while (dir != NULL && (e = readdir(dir)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		p = xasprintf("%s/%s", d, e->d_name);
		unlink(p);
		free(p);
	}
	if (dir != NULL)
		closedir(dir);
	rmdir(d);
	free(d);
}

START_TEST(test_crypto_server_key_generate_ok)
{
	char *d = tmp_dir();
	char *kp = xasprintf("%s/server.pem", d);
	char *dp = xasprintf("%s/server.pub.der", d);
	char *pp = xasprintf("%s/server.pub.pem", d);
	struct crypto_key *k = NULL, *pub1 = NULL, *pub2 = NULL;
	uint8_t *der, *pem, *priv;
	size_t dlen = 0, plen = 0, klen = 0;
	struct stat st;
	FILE *f;

	ck_assert_int_eq(crypto_server_key_generate(kp, dp, pp), 0);
	ck_assert_int_eq(stat(kp, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(crypto_server_key_load(kp, &k), 0);
	ck_assert_int_eq(crypto_pubkey_load(dp, &pub1), 0);
	ck_assert_int_eq(crypto_pubkey_load(pp, &pub2), 0);
	ck_assert(crypto_key_public_eq(k, pub1));
	ck_assert(crypto_key_public_eq(k, pub2));

	f = fopen(dp, "rb");
	der = xmalloc(1024);
	dlen = fread(der, 1, 1024, f);
	fclose(f);
	ck_assert_uint_eq(dlen, CRYPTO_SERVER_PUB_DER_LEN);
	f = fopen(pp, "rb");
	pem = xcalloc(1, 1024);
	plen = fread(pem, 1, 1023, f);
	fclose(f);
	ck_assert_uint_gt(plen, 0);
	ck_assert_ptr_nonnull(
		strstr((char *)pem, "-----BEGIN PUBLIC KEY-----"));
	f = fopen(kp, "rb");
	priv = xcalloc(1, 4096);
	klen = fread(priv, 1, 4095, f);
	fclose(f);
	ck_assert_uint_gt(klen, 0);
	/* PKCS#1, like the Node servers' default_key.pem. */
	ck_assert_ptr_nonnull(
		strstr((char *)priv, "-----BEGIN RSA PRIVATE KEY-----"));

	/* Never overwrite: a second run changes nothing. */
	ck_assert_int_eq(crypto_server_key_generate(kp, dp, pp),
			 CINDER_ERR_CONFLICT);
	crypto_key_free(pub1);
	ck_assert_int_eq(crypto_server_key_load(kp, &pub1), 0);
	ck_assert(crypto_key_public_eq(k, pub1));

	crypto_key_free(k);
	crypto_key_free(pub1);
	crypto_key_free(pub2);
	free(der);
	free(pem);
	freezero(priv, 4096);
	free(kp);
	free(dp);
	free(pp);
	rm_dir(d);
}
END_TEST

START_TEST(test_crypto_server_key_generate_conflict)
{
	char *d = tmp_dir();
	char *kp = xasprintf("%s/server.pem", d);
	char *dp = xasprintf("%s/server.pub.der", d);
	char *pp = xasprintf("%s/server.pub.pem", d);
	FILE *f;

	/* Only the last path exists: nothing at all may be created. */
	f = fopen(pp, "w");
	fputs("keep me\n", f);
	fclose(f);
	ck_assert_int_eq(crypto_server_key_generate(kp, dp, pp),
			 CINDER_ERR_CONFLICT);
	ck_assert_int_eq(access(kp, F_OK), -1);
	ck_assert_int_eq(access(dp, F_OK), -1);
	ck_assert_int_eq(access(pp, F_OK), 0);
	/* The same path twice conflicts with itself. */
	ck_assert_int_eq(crypto_server_key_generate(kp, kp, NULL),
			 CINDER_ERR_CONFLICT);
	ck_assert_int_eq(access(kp, F_OK), -1);
	/* Unwritable place. */
	ck_assert_int_eq(
		crypto_server_key_generate("/nonexistent/k.pem", NULL, NULL),
		CINDER_ERR_IO);
	ck_assert_int_eq(crypto_server_key_generate(NULL, dp, pp),
			 CINDER_ERR_INVAL);
	/* Public files are optional. */
	ck_assert_int_eq(crypto_server_key_generate(kp, NULL, NULL), 0);
	ck_assert_int_eq(access(kp, F_OK), 0);
	free(kp);
	free(dp);
	free(pp);
	rm_dir(d);
}
END_TEST

/* Encrypted keys are refused without asking for a passphrase. */
START_TEST(test_crypto_privkey_parse_encrypted)
{
	struct crypto_key *k = NULL;

	ck_assert_int_eq(
		crypto_privkey_parse(encrypted_pem, strlen(encrypted_pem), &k),
		CINDER_ERR_CRYPTO);
	ck_assert_ptr_null(k);
	ck_assert_int_eq(
		crypto_pubkey_parse(encrypted_pem, strlen(encrypted_pem), &k),
		CINDER_ERR_CRYPTO);
	ck_assert_ptr_null(k);
}
END_TEST

START_TEST(test_crypto_pubkey_parse_formats)
{
	struct crypto_key *k = NULL;
	uint8_t der[CRYPTO_PUB_DER_MAX], der2[CRYPTO_PUB_DER_MAX];
	size_t len = 0, len2 = 0, flen;
	uint8_t *file;

	/* PEM SPKI (the fixture) and DER SPKI. */
	ck_assert_uint_eq(crypto_key_bits(device_pub), 1024);
	ck_assert_int_eq(
		crypto_key_public_der(device_pub, der, sizeof(der), &len), 0);
	ck_assert_uint_eq(len, CRYPTO_DEVICE_PUB_DER_LEN);
	ck_assert_int_eq(crypto_pubkey_parse(der, len, &k), 0);
	ck_assert(crypto_key_public_eq(k, device_pub));
	crypto_key_free(k);
	/* PEM PKCS#1 "RSA PUBLIC KEY". */
	ck_assert_int_eq(crypto_pubkey_parse(device_pkcs1_pub_pem,
					     strlen(device_pkcs1_pub_pem), &k),
			 0);
	ck_assert(crypto_key_public_eq(k, device_pub));
	crypto_key_free(k);
	/* The server's 294-byte DER as a device stores it. */
	file = vec_read("server_pub.der", &flen);
	ck_assert_int_eq(crypto_pubkey_parse(file, flen, &k), 0);
	ck_assert(crypto_key_public_eq(k, server));
	ck_assert_int_eq(crypto_key_public_der(k, der2, sizeof(der2), &len2),
			 0);
	ck_assert_uint_eq(len2, flen);
	ck_assert_mem_eq(der2, file, flen);
	crypto_key_free(k);
	free(file);
	/* A private key yields only its public half. */
	file = vec_read("device_key.pem", &flen);
	ck_assert_int_eq(crypto_pubkey_parse(file, flen, &k), 0);
	ck_assert(!crypto_key_is_private(k));
	ck_assert(crypto_key_public_eq(k, device_pub));
	crypto_key_free(k);
	free(file);
}
END_TEST

/* The hand-read DER path (crypto_spki_der_rsa) yields the right modulus:
 * what it encrypts the device key decrypts, for the device's own DER and
 * for the same DER with a trailing byte (which takes the generic path). */
START_TEST(test_crypto_pubkey_parse_der_fast_path)
{
	struct crypto_key *k = NULL;
	uint8_t der[CRYPTO_PUB_DER_MAX + 1], ct[256], pt[256], msg[40];
	size_t len = 0, n = 0, m = 0;
	int round;

	memset(msg, 0x5a, sizeof(msg));
	ck_assert_int_eq(
		crypto_key_public_der(device_pub, der, sizeof(der), &len), 0);
	for (round = 0; round < 2; round++) {
		int r = crypto_pubkey_parse(der, len + (size_t)round, &k);

		if (round == 1 && r != 0)
			break; /* the generic decoder refused trailing data */
		ck_assert_int_eq(r, 0);
		ck_assert(!crypto_key_is_private(k));
		ck_assert_uint_eq(crypto_key_bits(k), 1024);
		ck_assert(crypto_key_public_eq(k, device_pub));
		ck_assert_int_eq(crypto_rsa_encrypt(k, msg, sizeof(msg), ct,
						    sizeof(ct), &n),
				 0);
		ck_assert_int_eq(
			crypto_rsa_decrypt(device, ct, n, pt, sizeof(pt), &m),
			0);
		ck_assert_uint_eq(m, sizeof(msg));
		ck_assert_mem_eq(pt, msg, sizeof(msg));
		crypto_key_free(k);
		k = NULL;
		der[len] = 0;
	}
	crypto_key_free(k);
}
END_TEST

/* The PEM path (crypto_spki_pem_rsa: base64 undone, then the DER
 * reader) gives the same working key. */
START_TEST(test_crypto_pubkey_parse_pem_fast_path)
{
	struct crypto_key *k = NULL;
	uint8_t ct[256], pt[256], msg[40];
	size_t n = 0, m = 0;
	char *pem = NULL;

	memset(msg, 0xa5, sizeof(msg));
	ck_assert_int_eq(crypto_key_public_pem(device_pub, &pem), 0);
	ck_assert_int_eq(crypto_pubkey_parse(pem, strlen(pem), &k), 0);
	ck_assert(crypto_key_public_eq(k, device_pub));
	ck_assert_int_eq(
		crypto_rsa_encrypt(k, msg, sizeof(msg), ct, sizeof(ct), &n), 0);
	ck_assert_int_eq(crypto_rsa_decrypt(device, ct, n, pt, sizeof(pt), &m),
			 0);
	ck_assert_mem_eq(pt, msg, sizeof(msg));
	crypto_key_free(k);
	free(pem);
}
END_TEST

START_TEST(test_crypto_pubkey_parse_bad)
{
	struct crypto_key *k = (struct crypto_key *)1;
	uint8_t der[CRYPTO_PUB_DER_MAX];
	size_t len = 0, i;

	ck_assert_int_eq(
		crypto_pubkey_parse(rsa512_pub_pem, strlen(rsa512_pub_pem), &k),
		CINDER_ERR_INVAL);
	ck_assert_ptr_null(k);
	ck_assert_int_eq(crypto_pubkey_parse(rsa3072_pub_pem,
					     strlen(rsa3072_pub_pem), &k),
			 CINDER_ERR_INVAL);
	ck_assert_int_eq(crypto_pubkey_parse(e3_1024_pub_pem,
					     strlen(e3_1024_pub_pem), &k),
			 CINDER_ERR_INVAL);
	ck_assert_int_eq(crypto_pubkey_parse("", 0, &k), CINDER_ERR_INVAL);
	ck_assert_int_eq(crypto_pubkey_parse(NULL, 5, &k), CINDER_ERR_INVAL);
	ck_assert_int_eq(crypto_pubkey_parse("garbage", 7, &k),
			 CINDER_ERR_CRYPTO);
	ck_assert_int_eq(crypto_pubkey_parse(der, CRYPTO_KEYFILE_MAX + 1, &k),
			 CINDER_ERR_TOO_BIG);
	/* Every truncation of a valid DER key fails cleanly. */
	ck_assert_int_eq(
		crypto_key_public_der(device_pub, der, sizeof(der), &len), 0);
	for (i = 1; i < len; i++) {
		ck_assert_int_ne(crypto_pubkey_parse(der, i, &k), 0);
		ck_assert_ptr_null(k);
	}
}
END_TEST

static void
pubkey_mutant(const uint8_t *buf, size_t len, void *arg)
{
	struct crypto_key *k = NULL;
	int r = crypto_pubkey_parse(buf, len, &k);

	/* Anything accepted must be a sane key; nothing may crash. */
	if (r == 0) {
		ck_assert_uint_ge(crypto_key_bits(k), 1024);
		ck_assert_uint_le(crypto_key_bits(k), 2048);
	} else {
		ck_assert_ptr_null(k);
	}
	crypto_key_free(k);
	(*(unsigned *)arg)++;
}

START_TEST(test_crypto_pubkey_parse_mutants)
{
	uint8_t der[CRYPTO_PUB_DER_MAX];
	size_t len = 0;
	unsigned n = 0;

	ck_assert_int_eq(
		crypto_key_public_der(device_pub, der, sizeof(der), &len), 0);
	mutate_run(der, len, 0xc1d3, 2000, pubkey_mutant, &n);
	ck_assert_uint_eq(n, 2000 + len);
}
END_TEST

START_TEST(test_crypto_pubkey_der_pem_roundtrip)
{
	uint8_t der[CRYPTO_PUB_DER_MAX], der2[CRYPTO_PUB_DER_MAX];
	size_t len = 0, len2 = 0, flen;
	char *pem = NULL;
	uint8_t *file;

	ck_assert_int_eq(crypto_key_public_der(device, der, sizeof(der), &len),
			 0);
	ck_assert_int_eq(crypto_pubkey_der_to_pem(der, len, &pem), 0);
	file = vec_read("device_pub.pem", &flen);
	ck_assert_str_eq(pem, (char *)file);
	ck_assert_int_eq(crypto_pubkey_pem_to_der(pem, strlen(pem), der2,
						  sizeof(der2), &len2),
			 0);
	ck_assert_uint_eq(len2, len);
	ck_assert_mem_eq(der, der2, len);
	/* Buffer too small. */
	ck_assert_int_eq(crypto_pubkey_pem_to_der(pem, strlen(pem), der2,
						  len - 1, &len2),
			 CINDER_ERR_TOO_BIG);
	ck_assert_uint_eq(len2, 0);
	ck_assert_int_eq(crypto_key_public_der(server, der2, 293, &len2),
			 CINDER_ERR_TOO_BIG);
	free(pem);
	ck_assert_int_eq(crypto_pubkey_der_to_pem(der, 10, &pem),
			 CINDER_ERR_CRYPTO);
	ck_assert_ptr_null(pem);
	free(file);
}
END_TEST

/* PEM to DER: the base64-only way for strict SPKI and the generic one for
 * the rest give what crypto_pubkey_parse and i2d would. */
START_TEST(test_crypto_pubkey_pem_to_der_forms)
{
	uint8_t der[CRYPTO_PUB_DER_MAX], der2[CRYPTO_PUB_DER_MAX];
	size_t len = 0, len2 = 0;
	struct crypto_key *k = NULL;
	const char *bad[] = {e3_1024_pub_pem, rsa512_pub_pem, rsa3072_pub_pem};
	size_t i;

	ck_assert_int_eq(
		crypto_key_public_der(device_pub, der, sizeof(der), &len), 0);
	ck_assert_int_eq(crypto_pubkey_pem_to_der(device_pkcs1_pub_pem,
						  strlen(device_pkcs1_pub_pem),
						  der2, sizeof(der2), &len2),
			 0);
	ck_assert_uint_eq(len2, len);
	ck_assert_mem_eq(der, der2, len);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = crypto_pubkey_parse(bad[i], strlen(bad[i]), &k);

		crypto_key_free(k);
		k = NULL;
		ck_assert_int_ne(r, 0);
		ck_assert_int_eq(crypto_pubkey_pem_to_der(bad[i],
							  strlen(bad[i]), der2,
							  sizeof(der2), &len2),
				 r);
		ck_assert_uint_eq(len2, 0);
	}
	ck_assert_int_eq(
		crypto_pubkey_pem_to_der(NULL, 0, der2, sizeof(der2), &len2),
		CINDER_ERR_INVAL);
}
END_TEST

START_TEST(test_crypto_key_public_eq_cases)
{
	ck_assert(crypto_key_public_eq(device, device_pub));
	ck_assert(crypto_key_public_eq(device_pub, device));
	ck_assert(crypto_key_public_eq(server, server));
	ck_assert(!crypto_key_public_eq(server, device_pub));
	ck_assert(!crypto_key_public_eq(server_pub, device));
	ck_assert(!crypto_key_public_eq(NULL, device));
	ck_assert(!crypto_key_public_eq(device, NULL));
	ck_assert_uint_eq(crypto_key_bits(NULL), 0);
	ck_assert(!crypto_key_is_private(NULL));
	crypto_key_free(NULL);
}
END_TEST

START_TEST(test_crypto_key_dup_shares)
{
	struct crypto_key *d = crypto_key_dup(server);
	uint8_t mac[20], sig[256];
	size_t n = 0;

	ck_assert_ptr_nonnull(d);
	ck_assert_ptr_ne(d, server);
	/* The original may go first; the duplicate stays usable. */
	crypto_key_free(server);
	server = NULL;
	ck_assert(crypto_key_is_private(d));
	ck_assert(crypto_key_public_eq(d, server_pub));
	memset(mac, 9, sizeof(mac));
	ck_assert_int_eq(
		crypto_rsa_sign_raw(d, mac, sizeof(mac), sig, sizeof(sig), &n),
		0);
	ck_assert_int_eq(
		crypto_rsa_verify_raw(server_pub, mac, sizeof(mac), sig, n), 0);
	crypto_key_free(d);
	ck_assert_ptr_null(crypto_key_dup(NULL));
}
END_TEST

START_TEST(test_crypto_key_generate_sizes)
{
	struct crypto_key *k = NULL;

	ck_assert_int_eq(crypto_key_generate(1024, &k), 0);
	ck_assert_uint_eq(crypto_key_bits(k), 1024);
	ck_assert(crypto_key_is_private(k));
	ck_assert_int_eq(crypto_server_key_check(k), CINDER_ERR_INVAL);
	crypto_key_free(k);
	ck_assert_int_eq(crypto_key_generate(512, &k), CINDER_ERR_INVAL);
	ck_assert_ptr_null(k);
	ck_assert_int_eq(crypto_key_generate(8192, &k), CINDER_ERR_INVAL);
}
END_TEST

/*
 * RSA primitives
 */

START_TEST(test_crypto_rsa_roundtrip)
{
	uint8_t msg[100], ct[256], pt[256];
	size_t n = 0, m = 0;

	memset(msg, 0xa5, sizeof(msg));
	ck_assert_int_eq(crypto_rsa_encrypt(server_pub, msg, sizeof(msg), ct,
					    sizeof(ct), &n),
			 0);
	ck_assert_uint_eq(n, 256);
	ck_assert_int_eq(crypto_rsa_decrypt(server, ct, n, pt, sizeof(pt), &m),
			 0);
	ck_assert_uint_eq(m, sizeof(msg));
	ck_assert_mem_eq(pt, msg, sizeof(msg));
	/* Device key: 128-byte blocks. */
	ck_assert_int_eq(
		crypto_rsa_encrypt(device_pub, msg, 40, ct, sizeof(ct), &n), 0);
	ck_assert_uint_eq(n, 128);
	ck_assert_int_eq(crypto_rsa_decrypt(device, ct, n, pt, 40, &m), 0);
	ck_assert_uint_eq(m, 40);
	ck_assert_mem_eq(pt, msg, 40);
	/* Output buffer exactly too small. */
	ck_assert_int_eq(crypto_rsa_decrypt(device, ct, n, pt, 39, &m),
			 CINDER_ERR_TOO_BIG);
	ck_assert_uint_eq(m, 0);
	/* Empty plaintext works too. */
	ck_assert_int_eq(
		crypto_rsa_encrypt(device_pub, NULL, 0, ct, sizeof(ct), &n), 0);
	ck_assert_int_eq(crypto_rsa_decrypt(device, ct, n, pt, sizeof(pt), &m),
			 0);
	ck_assert_uint_eq(m, 0);
}
END_TEST

START_TEST(test_crypto_rsa_bad_input)
{
	uint8_t msg[256], ct[256], pt[256];
	size_t n = 0, m = 0;
	int r;

	memset(msg, 1, sizeof(msg));
	/* 245 is the limit for 2048 bits, 117 for 1024. */
	ck_assert_int_eq(
		crypto_rsa_encrypt(server_pub, msg, 245, ct, sizeof(ct), &n),
		0);
	ck_assert_int_eq(
		crypto_rsa_encrypt(server_pub, msg, 246, ct, sizeof(ct), &n),
		CINDER_ERR_INVAL);
	ck_assert_int_eq(
		crypto_rsa_encrypt(device_pub, msg, 118, ct, sizeof(ct), &n),
		CINDER_ERR_INVAL);
	ck_assert_int_eq(crypto_rsa_encrypt(server_pub, msg, 10, ct, 255, &n),
			 CINDER_ERR_INVAL);
	/* Wrong ciphertext length, public key, NULLs. */
	ck_assert_int_eq(
		crypto_rsa_encrypt(server_pub, msg, 10, ct, sizeof(ct), &n), 0);
	ck_assert_int_eq(
		crypto_rsa_decrypt(server, ct, 255, pt, sizeof(pt), &m),
		CINDER_ERR_INVAL);
	ck_assert_int_eq(
		crypto_rsa_decrypt(server_pub, ct, 256, pt, sizeof(pt), &m),
		CINDER_ERR_INVAL);
	ck_assert_int_eq(
		crypto_rsa_decrypt(device, ct, 256, pt, sizeof(pt), &m),
		CINDER_ERR_INVAL);
	ck_assert_int_eq(crypto_rsa_decrypt(NULL, ct, 256, pt, sizeof(pt), &m),
			 CINDER_ERR_INVAL);
	/* Corrupted ciphertext: an error, or (implicit rejection in newer
	 * OpenSSL) never the original plaintext. */
	ct[100] ^= 0x40;
	r = crypto_rsa_decrypt(server, ct, 256, pt, sizeof(pt), &m);
	ck_assert(r == CINDER_ERR_CRYPTO || m != 10 || memcmp(pt, msg, 10));
	/* All zero and all 0xff (>= modulus) blocks. */
	memset(ct, 0, sizeof(ct));
	ck_assert_int_ne(
		crypto_rsa_decrypt(server, ct, 256, pt, sizeof(pt), &m) == 0 &&
			m == 10 && memcmp(pt, msg, 10) == 0,
		1);
	memset(ct, 0xff, sizeof(ct));
	ck_assert_int_eq(
		crypto_rsa_decrypt(server, ct, 256, pt, sizeof(pt), &m),
		CINDER_ERR_CRYPTO);
}
END_TEST

START_TEST(test_crypto_rsa_sign_raw_roundtrip)
{
	uint8_t mac[20], sig[256], sig2[256], tmp[256];
	size_t n = 0, n2 = 0, m = 0;

	memset(mac, 0x3c, sizeof(mac));
	ck_assert_int_eq(crypto_rsa_sign_raw(server, mac, sizeof(mac), sig,
					     sizeof(sig), &n),
			 0);
	ck_assert_uint_eq(n, 256);
	/* Type-1 padding is deterministic. */
	ck_assert_int_eq(crypto_rsa_sign_raw(server, mac, sizeof(mac), sig2,
					     sizeof(sig2), &n2),
			 0);
	ck_assert_mem_eq(sig, sig2, 256);
	ck_assert_int_eq(
		crypto_rsa_verify_raw(server_pub, mac, sizeof(mac), sig, n), 0);
	ck_assert_int_eq(
		crypto_rsa_verify_raw(server, mac, sizeof(mac), sig, n), 0);
	/* A raw signature is not an encryption: decrypting it must fail. */
	ck_assert_int_eq(
		crypto_rsa_decrypt(server, sig, n, tmp, sizeof(tmp), &m) == 0 &&
			m == 20 && memcmp(tmp, mac, 20) == 0,
		0);
}
END_TEST

START_TEST(test_crypto_rsa_verify_raw_tampered)
{
	uint8_t mac[20], sig[256];
	size_t n = 0;

	memset(mac, 0x3c, sizeof(mac));
	ck_assert_int_eq(crypto_rsa_sign_raw(server, mac, sizeof(mac), sig,
					     sizeof(sig), &n),
			 0);
	sig[255] ^= 1;
	ck_assert_int_eq(crypto_rsa_verify_raw(server_pub, mac, 20, sig, n),
			 CINDER_ERR_CRYPTO);
	sig[255] ^= 1;
	mac[0] ^= 1;
	ck_assert_int_eq(crypto_rsa_verify_raw(server_pub, mac, 20, sig, n),
			 CINDER_ERR_CRYPTO);
	mac[0] ^= 1;
	ck_assert_int_eq(crypto_rsa_verify_raw(server_pub, mac, 19, sig, n),
			 CINDER_ERR_CRYPTO);
	ck_assert_int_eq(crypto_rsa_verify_raw(server_pub, mac, 20, sig, 255),
			 CINDER_ERR_CRYPTO);
	ck_assert_int_eq(crypto_rsa_verify_raw(device_pub, mac, 20, sig, n),
			 CINDER_ERR_CRYPTO);
	ck_assert_int_eq(crypto_rsa_verify_raw(server_pub, NULL, 20, sig, n),
			 CINDER_ERR_INVAL);
	/* Signing needs a private key and a short enough message. */
	ck_assert_int_eq(
		crypto_rsa_sign_raw(server_pub, mac, 20, sig, sizeof(sig), &n),
		CINDER_ERR_INVAL);
	ck_assert_int_eq(crypto_rsa_sign_raw(server, mac, 20, sig, 255, &n),
			 CINDER_ERR_INVAL);
	ck_assert_int_eq(
		crypto_rsa_sign_raw(device, sig, 118, sig, sizeof(sig), &n),
		CINDER_ERR_INVAL);
	ck_assert_int_eq(
		crypto_rsa_sign_raw(server, mac, 0, sig, sizeof(sig), &n),
		CINDER_ERR_INVAL);
}
END_TEST

/*
 * Hashes, MACs, RNG, memory
 */

START_TEST(test_crypto_hmac_sha1_rfc2202)
{
	uint8_t key[80], out[20], want[20], data[50];

	/* RFC 2202 §3 test case 1. */
	memset(key, 0x0b, 20);
	ck_assert_int_eq(crypto_hmac_sha1(key, 20, "Hi There", 8, out), 0);
	unhex("b617318655057264e28bc0b6fb378c8ef146be00", want, 20);
	ck_assert_mem_eq(out, want, 20);
	/* Test case 2: short key. */
	ck_assert_int_eq(crypto_hmac_sha1("Jefe", 4,
					  "what do ya want for nothing?", 28,
					  out),
			 0);
	unhex("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79", want, 20);
	ck_assert_mem_eq(out, want, 20);
	/* Test case 3: 50 bytes of 0xdd under 0xaa * 20. */
	memset(key, 0xaa, 20);
	memset(data, 0xdd, 50);
	ck_assert_int_eq(crypto_hmac_sha1(key, 20, data, 50, out), 0);
	unhex("125d7342b9ac11cd91a39af48aa17b4f63f175d3", want, 20);
	ck_assert_mem_eq(out, want, 20);
	/* Test case 6: key longer than the block. */
	memset(key, 0xaa, 80);
	ck_assert_int_eq(
		crypto_hmac_sha1(key, 80,
				 "Test Using Larger Than Block-Size Key - "
				 "Hash Key First",
				 54, out),
		0);
	unhex("aa4ae5e15272d00e95705637ce8a3b55ed402112", want, 20);
	ck_assert_mem_eq(out, want, 20);
	ck_assert_int_eq(crypto_hmac_sha1(NULL, 0, NULL, 0, out), 0);
	ck_assert_int_eq(crypto_hmac_sha1(NULL, 3, "x", 1, out),
			 CINDER_ERR_INVAL);
}
END_TEST

START_TEST(test_crypto_hmac_sha256_rfc4231)
{
	uint8_t key[20], out[32], want[32];

	memset(key, 0x0b, 20);
	ck_assert_int_eq(crypto_hmac_sha256(key, 20, "Hi There", 8, out), 0);
	unhex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff"
	      "7",
	      want, 32);
	ck_assert_mem_eq(out, want, 32);
}
END_TEST

START_TEST(test_crypto_sha256_known)
{
	uint8_t out[32], want[32];

	ck_assert_int_eq(crypto_sha256("abc", 3, out), 0);
	unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a"
	      "d",
	      want, 32);
	ck_assert_mem_eq(out, want, 32);
	ck_assert_int_eq(crypto_sha256(NULL, 0, out), 0);
	unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85"
	      "5",
	      want, 32);
	ck_assert_mem_eq(out, want, 32);
	ck_assert_int_eq(crypto_sha256(NULL, 1, out), CINDER_ERR_INVAL);
}
END_TEST

START_TEST(test_crypto_password_hash_verify)
{
	char *h1 = NULL, *h2 = NULL, *bad;
	size_t len;

	ck_assert_int_eq(crypto_password_hash("correct horse", &h1), 0);
	ck_assert_ptr_nonnull(h1);
	ck_assert_int_eq(strncmp(h1, "$pbkdf2-sha256$", 15), 0);
	ck_assert_int_eq(crypto_password_verify("correct horse", h1), 0);
	ck_assert_int_eq(crypto_password_verify("correct horsE", h1),
			 CINDER_ERR_AUTH);
	ck_assert_int_eq(crypto_password_verify("", h1), CINDER_ERR_AUTH);
	/* Random salt: the same password hashes differently. */
	ck_assert_int_eq(crypto_password_hash("correct horse", &h2), 0);
	ck_assert_str_ne(h1, h2);
	ck_assert_int_eq(crypto_password_verify("correct horse", h2), 0);

	/* A changed hash character: mismatch, not a parse error. */
	len = strlen(h1);
	bad = xstrdup(h1);
	bad[len - 3] = bad[len - 3] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(crypto_password_verify("correct horse", bad),
			 CINDER_ERR_AUTH);
	free(bad);
	free(h2);
	free(h1);
}
END_TEST

START_TEST(test_crypto_password_verify_malformed)
{
	static const char *const bad[] = {
		"",
		"plain",
		"$pbkdf2-sha1$1000$AAAAAAAAAAAAAAAAAAAAAA==$"
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		/* rounds out of bounds, signed, missing */
		"$pbkdf2-sha256$999$AAAAAAAAAAAAAAAAAAAAAA==$"
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"$pbkdf2-sha256$99999999$AAAAAAAAAAAAAAAAAAAAAA==$"
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"$pbkdf2-sha256$-1$AAAAAAAAAAAAAAAAAAAAAA==$"
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"$pbkdf2-sha256$ 1000$AAAAAAAAAAAAAAAAAAAAAA==$"
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"$pbkdf2-sha256$$AAAAAAAAAAAAAAAAAAAAAA==$"
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		/* wrong lengths, bad base64 */
		"$pbkdf2-sha256$1000$AAAA$AAAA",
		"$pbkdf2-sha256$1000$AAAAAAAAAAAAAAAAAAAAAA==$"
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$pbkdf2-sha256$1000$AAAAAAAAAAAAAAAAAAAA*A==$"
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"$pbkdf2-sha256$1000$AAAAAAAAAAAAAAAAAAAAAA==",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(crypto_password_verify("pw", bad[i]) ==
				      CINDER_ERR_INVAL,
			      "accepted %s", bad[i]);
	ck_assert_int_eq(crypto_password_verify(NULL, "x"), CINDER_ERR_INVAL);
	ck_assert_int_eq(crypto_password_verify("x", NULL), CINDER_ERR_INVAL);
}
END_TEST

START_TEST(test_crypto_random_fills)
{
	uint8_t a[64], b[64], z[64];

	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	memset(z, 0, sizeof(z));
	ck_assert_int_eq(crypto_random(a, sizeof(a)), 0);
	ck_assert_int_eq(crypto_random(b, sizeof(b)), 0);
	/* 2^-512 chance of a false failure. */
	ck_assert_mem_ne(a, b, sizeof(a));
	ck_assert_mem_ne(a, z, sizeof(a));
	ck_assert_int_eq(crypto_random(NULL, 0), 0);
	ck_assert_int_eq(crypto_random(NULL, 1), CINDER_ERR_INVAL);
}
END_TEST

/* Values drawn from the buffer across several refills never repeat and
   are never the wiped zeros; large requests and bad arguments. */
START_TEST(test_crypto_random_public)
{
	enum { N = 3 * CRYPTO_RANDBUF / 40 + 5 };
	static uint8_t v[N][40];
	uint8_t z[40], big[CRYPTO_RANDBUF], mid[2];
	size_t i, j;

	memset(z, 0, sizeof(z));
	for (i = 0; i < N; i++) {
		ck_assert_int_eq(crypto_random_public(v[i], sizeof(v[i])), 0);
		ck_assert_mem_ne(v[i], z, sizeof(z));
		for (j = 0; j < i; j++)
			ck_assert_mem_ne(v[i], v[j], sizeof(v[i]));
	}
	ck_assert_int_eq(crypto_random_public(mid, sizeof(mid)), 0);
	memset(big, 0, sizeof(big));
	ck_assert_int_eq(crypto_random_public(big, sizeof(big)), 0);
	ck_assert_mem_ne(big, v[0], sizeof(v[0]));
	ck_assert_int_eq(crypto_random_public(NULL, 0), 0);
	ck_assert_int_eq(crypto_random_public(NULL, 1), CINDER_ERR_INVAL);
	crypto_thread_cleanup();
	ck_assert_int_eq(crypto_random_public(v[0], sizeof(v[0])), 0);
	ck_assert_mem_ne(v[0], z, sizeof(z));
}
END_TEST

/* A forked child does not hand out the bytes its parent will. */
START_TEST(test_crypto_random_public_fork)
{
	uint8_t a[40], b[40];
	int fds[2], st = 0;
	pid_t pid;

	ck_assert_int_eq(crypto_random_public(a, sizeof(a)), 0); /* filled */
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		if (crypto_random_public(b, sizeof(b)) != 0 ||
		    write(fds[1], b, sizeof(b)) != (ssize_t)sizeof(b))
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	ck_assert_int_eq(read(fds[0], b, sizeof(b)), (ssize_t)sizeof(b));
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_int_eq(crypto_random_public(a, sizeof(a)), 0);
	ck_assert_mem_ne(a, b, sizeof(a));
}
END_TEST

START_TEST(test_crypto_mem_eq_and_wipe)
{
	uint8_t a[32], b[32];

	memset(a, 7, sizeof(a));
	memset(b, 7, sizeof(b));
	ck_assert(crypto_mem_eq(a, b, sizeof(a)));
	b[31] = 8;
	ck_assert(!crypto_mem_eq(a, b, sizeof(a)));
	ck_assert(crypto_mem_eq(a, b, 31));
	ck_assert(crypto_mem_eq(a, b, 0));
	crypto_wipe(a, sizeof(a));
	memset(b, 0, sizeof(b));
	ck_assert_mem_eq(a, b, sizeof(a));
	crypto_wipe(NULL, 5);
}
END_TEST

/*
 * Channel
 */

static void
channel_from_hex(struct crypto_channel *ch, const char *key, const char *iv)
{
	uint8_t s[CRYPTO_SESSION_LEN];

	memset(s, 0, sizeof(s));
	unhex(key, s, 16);
	unhex(iv, s + 16, 16);
	crypto_channel_init(ch, s);
}

START_TEST(test_crypto_channel_seal_sp800_38a)
{
	struct crypto_channel ch;
	uint8_t pt[16], ct[32], want[16], back[32];
	size_t n = 0, m = 0;

	/* NIST SP 800-38A F.2.1, first block; PKCS#7 adds a second. */
	channel_from_hex(&ch, "2b7e151628aed2a6abf7158809cf4f3c",
			 "000102030405060708090a0b0c0d0e0f");
	unhex("6bc1bee22e409f96e93d7e117393172a", pt, 16);
	ck_assert_int_eq(crypto_channel_seal(&ch, pt, 16, ct, sizeof(ct), &n),
			 0);
	ck_assert_uint_eq(n, 32);
	unhex("7649abac8119b246cee98e9b12e9197d", want, 16);
	ck_assert_mem_eq(ct, want, 16);
	/* §1.4: the next send IV is the first ciphertext block. */
	ck_assert_mem_eq(ch.send_iv, want, 16);
	ck_assert_mem_ne(ch.send_iv, ct + 16, 16);
	unhex("000102030405060708090a0b0c0d0e0f", want, 16);
	ck_assert_mem_eq(ch.recv_iv, want, 16);
	ck_assert_int_eq(
		crypto_channel_open(&ch, ct, n, back, sizeof(back), &m), 0);
	ck_assert_uint_eq(m, 16);
	ck_assert_mem_eq(back, pt, 16);
	ck_assert_mem_eq(ch.recv_iv, ct, 16);
	crypto_channel_cleanup(&ch);
	memset(want, 0, sizeof(want));
	ck_assert_mem_eq(ch.key, want, 16);
}
END_TEST

START_TEST(test_crypto_channel_chain_roundtrip)
{
	struct crypto_channel a, b;
	uint8_t s[CRYPTO_SESSION_LEN], pt[100], ct[128], back[128];
	size_t len, n = 0, m = 0;

	for (len = 0; len < sizeof(s); len++)
		s[len] = (uint8_t)(len * 7 + 1);
	crypto_channel_init(&a, s);
	crypto_channel_init(&b, s);
	ck_assert_mem_eq(a.salt, s + 32, 8);
	for (len = 0; len <= sizeof(pt); len++) {
		memset(pt, (int)len, sizeof(pt));
		ck_assert_int_eq(
			crypto_channel_seal(&a, pt, len, ct, sizeof(ct), &n),
			0);
		ck_assert_uint_eq(n, crypto_channel_sealed_len(len));
		ck_assert_uint_eq(n % 16, 0);
		ck_assert_uint_gt(n, len);
		ck_assert_int_eq(
			crypto_channel_open(&b, ct, n, back, sizeof(back), &m),
			0);
		ck_assert_uint_eq(m, len);
		ck_assert_mem_eq(back, pt, len);
		ck_assert_mem_eq(a.send_iv, b.recv_iv, 16);
	}
	ck_assert_uint_eq(crypto_channel_sealed_len(0), 16);
	ck_assert_uint_eq(crypto_channel_sealed_len(15), 16);
	ck_assert_uint_eq(crypto_channel_sealed_len(16), 32);
	ck_assert_uint_eq(crypto_channel_sealed_len(767), 768);
}
END_TEST

/*
 * Make a 32-byte ciphertext whose second plaintext block is last16, by
 * sealing 32 bytes and dropping the padding block (CBC truncates freely).
 */
static void
craft(const struct crypto_channel *ch0, const uint8_t last16[16],
      uint8_t ct[48])
{
	struct crypto_channel ch = *ch0;
	uint8_t pt[32];
	size_t n = 0;

	memset(pt, 0x41, 16);
	memcpy(pt + 16, last16, 16);
	ck_assert_int_eq(crypto_channel_seal(&ch, pt, 32, ct, 48, &n), 0);
	ck_assert_uint_eq(n, 48);
}

/* A busy channel decrypts on its own keyed context: same results. */
START_TEST(test_crypto_channel_busy_cache)
{
	struct crypto_channel a, b;
	uint8_t s[CRYPTO_SESSION_LEN], pt[100], ct[128], back[128], iv[16];
	uint8_t zero16[16] = {0};
	size_t len, n = 0, m = 0, round;

	for (len = 0; len < sizeof(s); len++)
		s[len] = (uint8_t)(len * 5 + 3);
	crypto_channel_init(&a, s);
	crypto_channel_init(&b, s);
	crypto_channel_busy_cache(&b);
	for (round = 0; round < 3; round++)
		for (len = 0; len <= sizeof(pt); len++) {
			memset(pt, (int)(len + round), sizeof(pt));
			ck_assert_int_eq(crypto_channel_seal(&a, pt, len, ct,
							     sizeof(ct), &n),
					 0);
			ck_assert_int_eq(crypto_channel_open(&b, ct, n, back,
							     sizeof(back), &m),
					 0);
			ck_assert_uint_eq(m, len);
			ck_assert_mem_eq(back, pt, len);
			ck_assert_mem_eq(a.send_iv, b.recv_iv, 16);
		}
	/* 303 messages within at most two seconds: it is cached */
	ck_assert_ptr_nonnull(b.rx_ecb);
	/* a bad pad byte (0) is refused, the IV kept, the output wiped */
	craft(&a, zero16, ct);
	memcpy(iv, b.recv_iv, 16);
	ck_assert_int_eq(
		crypto_channel_open(&b, ct, 32, back, sizeof(back), &m),
		CINDER_ERR_CRYPTO);
	ck_assert_mem_eq(b.recv_iv, iv, 16);
	ck_assert_mem_eq(back, zero16, 16);
	crypto_channel_cleanup(&a);
	crypto_channel_cleanup(&b);
}
END_TEST

START_TEST(test_crypto_channel_open_bad_padding)
{
	struct crypto_channel ch;
	uint8_t s[CRYPTO_SESSION_LEN], last[16], ct[48], out[48], iv[16];
	size_t m = 0;
	static const struct {
		uint8_t tail[3]; /* last three plaintext bytes */
		int want;
		size_t len; /* plaintext length when OK */
	} cases[] = {
		{{0x41, 0x41, 0x01}, 0, 31},
		{{0x41, 0x02, 0x02}, 0, 30},
		{{0x03, 0x03, 0x03}, 0, 29},
		{{0x41, 0x41, 0x00}, CINDER_ERR_CRYPTO, 0},
		{{0x41, 0x41, 0x11}, CINDER_ERR_CRYPTO, 0},
		{{0x41, 0x41, 0xff}, CINDER_ERR_CRYPTO, 0},
		{{0x41, 0x41, 0x02}, CINDER_ERR_CRYPTO, 0},
		{{0x41, 0x03, 0x03}, CINDER_ERR_CRYPTO, 0},
		{{0x02, 0x03, 0x03}, CINDER_ERR_CRYPTO, 0},
	};
	size_t i;

	memset(s, 0x5a, sizeof(s));
	crypto_channel_init(&ch, s);
	memcpy(iv, ch.recv_iv, 16);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct crypto_channel rx = ch;

		memset(last, 0x41, 16);
		memcpy(last + 13, cases[i].tail, 3);
		craft(&ch, last, ct);
		ck_assert_int_eq(
			crypto_channel_open(&rx, ct, 32, out, sizeof(out), &m),
			cases[i].want);
		if (cases[i].want == 0) {
			ck_assert_uint_eq(m, cases[i].len);
			ck_assert_mem_eq(rx.recv_iv, ct, 16);
		} else {
			/* Failure leaves the IV alone and hides the data. */
			ck_assert_uint_eq(m, 0);
			ck_assert_mem_eq(rx.recv_iv, iv, 16);
			ck_assert_uint_eq(out[0], 0);
		}
	}
	/* A full block of 0x10 is valid: empty plaintext after 16 bytes. */
	memset(last, 0x10, 16);
	craft(&ch, last, ct);
	ck_assert_int_eq(crypto_channel_open(&ch, ct, 32, out, sizeof(out), &m),
			 0);
	ck_assert_uint_eq(m, 16);
}
END_TEST

START_TEST(test_crypto_channel_bad_sizes)
{
	struct crypto_channel ch;
	uint8_t s[CRYPTO_SESSION_LEN], buf[64], out[64];
	size_t m = 7;

	memset(s, 1, sizeof(s));
	memset(buf, 2, sizeof(buf));
	crypto_channel_init(&ch, s);
	ck_assert_int_eq(crypto_channel_open(&ch, buf, 0, out, sizeof(out), &m),
			 CINDER_ERR_INVAL);
	ck_assert_uint_eq(m, 0);
	ck_assert_int_eq(
		crypto_channel_open(&ch, buf, 17, out, sizeof(out), &m),
		CINDER_ERR_INVAL);
	ck_assert_int_eq(crypto_channel_open(&ch, buf, 32, out, 31, &m),
			 CINDER_ERR_TOO_BIG);
	ck_assert_int_eq(crypto_channel_seal(&ch, buf, 16, out, 31, &m),
			 CINDER_ERR_TOO_BIG);
	ck_assert_int_eq(crypto_channel_seal(&ch, buf, 15, out, 15, &m),
			 CINDER_ERR_TOO_BIG);
	ck_assert_int_eq(crypto_channel_seal(&ch, NULL, 3, out, 64, &m),
			 CINDER_ERR_INVAL);
	/* IVs untouched by all of that. */
	ck_assert_mem_eq(ch.send_iv, s + 16, 16);
	ck_assert_mem_eq(ch.recv_iv, s + 16, 16);
}
END_TEST

/*
 * Handshake
 */

static const uint8_t dev_id[12] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
				   0xcd, 0xef, 0x01, 0x23, 0x45, 0x67};

START_TEST(test_crypto_handshake_step2_roundtrip)
{
	uint8_t nonce[40], block[256], der[CRYPTO_PUB_DER_MAX];
	size_t der_len = 0;
	struct crypto_step2 st;

	ck_assert_int_eq(crypto_random(nonce, sizeof(nonce)), 0);
	ck_assert_int_eq(
		crypto_key_public_der(device, der, sizeof(der), &der_len), 0);
	ck_assert_int_eq(crypto_handshake_step2_build(server_pub, nonce, dev_id,
						      der, der_len, block),
			 0);
	ck_assert_int_eq(crypto_handshake_step2_open(server, nonce, block,
						     sizeof(block), &st),
			 0);
	ck_assert_mem_eq(st.device_id, dev_id, 12);
	ck_assert_uint_eq(st.key_der_len, CRYPTO_DEVICE_PUB_DER_LEN);
	ck_assert_mem_eq(st.key_der, der, der_len);
	/* The original Core library sends no key: 52 bytes. */
	ck_assert_int_eq(crypto_handshake_step2_build(server_pub, nonce, dev_id,
						      NULL, 0, block),
			 0);
	ck_assert_int_eq(crypto_handshake_step2_open(server, nonce, block,
						     sizeof(block), &st),
			 0);
	ck_assert_uint_eq(st.key_der_len, 0);
	ck_assert_mem_eq(st.device_id, dev_id, 12);
}
END_TEST

START_TEST(test_crypto_handshake_step2_bad)
{
	uint8_t nonce[40], block[256], plain[245];
	struct crypto_step2 st;

	memset(nonce, 0x11, sizeof(nonce));
	ck_assert_int_eq(crypto_handshake_step2_build(server_pub, nonce, dev_id,
						      NULL, 0, block),
			 0);
	/* Wrong nonce (last byte differs). */
	nonce[39] ^= 1;
	ck_assert_int_eq(crypto_handshake_step2_open(server, nonce, block,
						     sizeof(block), &st),
			 CINDER_ERR_CRYPTO);
	ck_assert_uint_eq(st.device_id[0], 0);
	nonce[39] ^= 1;
	/* Wrong sizes and keys. */
	ck_assert_int_eq(
		crypto_handshake_step2_open(server, nonce, block, 255, &st),
		CINDER_ERR_INVAL);
	ck_assert_int_eq(
		crypto_handshake_step2_open(device, nonce, block, 256, &st),
		CINDER_ERR_INVAL);
	ck_assert_int_eq(
		crypto_handshake_step2_open(server_pub, nonce, block, 256, &st),
		CINDER_ERR_INVAL);
	/* Corrupted block. */
	block[7] ^= 0x80;
	ck_assert_int_eq(
		crypto_handshake_step2_open(server, nonce, block, 256, &st),
		CINDER_ERR_CRYPTO);
	/* Plaintext checks. */
	memcpy(plain, nonce, 40);
	memcpy(plain + 40, dev_id, 12);
	ck_assert_int_eq(crypto_handshake_step2_parse(nonce, plain, 51, &st),
			 CINDER_ERR_CRYPTO);
	ck_assert_int_eq(crypto_handshake_step2_parse(nonce, plain, 52, &st),
			 0);
	ck_assert_int_eq(crypto_handshake_step2_parse(nonce, plain, 245, &st),
			 0);
	ck_assert_uint_eq(st.key_der_len, CRYPTO_STEP2_KEY_MAX);
	ck_assert_int_eq(crypto_handshake_step2_parse(nonce, plain, 246, &st),
			 CINDER_ERR_CRYPTO);
	/* Build refuses keys that cannot fit. */
	ck_assert_int_eq(crypto_handshake_step2_build(server_pub, nonce, dev_id,
						      plain, 194, block),
			 CINDER_ERR_INVAL);
	ck_assert_int_eq(crypto_handshake_step2_build(device_pub, nonce, dev_id,
						      NULL, 0, block),
			 CINDER_ERR_INVAL);
}
END_TEST

static void
step2_mutant(const uint8_t *buf, size_t len, void *arg)
{
	const uint8_t *nonce = arg;
	struct crypto_step2 st;
	int r = crypto_handshake_step2_parse(nonce, buf, len, &st);

	if (r == 0) {
		ck_assert_uint_ge(len, 52);
		ck_assert_uint_eq(st.key_der_len, len - 52);
		ck_assert_mem_eq(buf, nonce, 40);
	}
}

START_TEST(test_crypto_handshake_step2_parse_mutants)
{
	uint8_t nonce[40], plain[214];
	size_t der_len = 0;

	memset(nonce, 0x22, sizeof(nonce));
	memcpy(plain, nonce, 40);
	memcpy(plain + 40, dev_id, 12);
	ck_assert_int_eq(
		crypto_key_public_der(device, plain + 52, 162, &der_len), 0);
	mutate_run(plain, sizeof(plain), 42, 3000, step2_mutant, nonce);
}
END_TEST

START_TEST(test_crypto_handshake_step3_roundtrip)
{
	uint8_t session[40], got[40], block[384], block2[384];

	ck_assert_int_eq(crypto_random(session, sizeof(session)), 0);
	ck_assert_int_eq(crypto_handshake_step3_build(server, device_pub,
						      session, block),
			 0);
	ck_assert_int_eq(crypto_handshake_step3_open(device, server_pub, block,
						     sizeof(block), got),
			 0);
	ck_assert_mem_eq(got, session, 40);
	/* Random RSA padding: two blocks for the same session differ. */
	ck_assert_int_eq(crypto_handshake_step3_build(server, device_pub,
						      session, block2),
			 0);
	ck_assert_mem_ne(block, block2, 128);
	ck_assert_int_eq(crypto_handshake_step3_open(device, server, block2,
						     sizeof(block2), got),
			 0);
	ck_assert_mem_eq(got, session, 40);
}
END_TEST

START_TEST(test_crypto_handshake_step3_bad)
{
	uint8_t session[40], got[40], block[384], zero[40];
	struct crypto_key *big = NULL, *other = NULL;
	size_t n = 0;

	memset(zero, 0, sizeof(zero));
	memset(session, 0x77, sizeof(session));
	ck_assert_int_eq(crypto_handshake_step3_build(server, device_pub,
						      session, block),
			 0);
	/* Tampered signature. */
	block[300] ^= 4;
	ck_assert_int_eq(crypto_handshake_step3_open(device, server_pub, block,
						     384, got),
			 CINDER_ERR_CRYPTO);
	ck_assert_mem_eq(got, zero, 40);
	block[300] ^= 4;
	/* Tampered ciphertext: decryption or the HMAC check fails. */
	block[5] ^= 4;
	ck_assert_int_eq(crypto_handshake_step3_open(device, server_pub, block,
						     384, got),
			 CINDER_ERR_CRYPTO);
	block[5] ^= 4;
	/* Signed by another server. */
	ck_assert_int_eq(crypto_privkey_parse(pkcs8_2048_pem,
					      strlen(pkcs8_2048_pem), &other),
			 0);
	ck_assert_int_eq(
		crypto_handshake_step3_open(device, other, block, 384, got),
		CINDER_ERR_CRYPTO);
	/* Wrong block length, wrong key roles. */
	ck_assert_int_eq(crypto_handshake_step3_open(device, server_pub, block,
						     383, got),
			 CINDER_ERR_INVAL);
	ck_assert_int_eq(crypto_handshake_step3_open(device_pub, server_pub,
						     block, 384, got),
			 CINDER_ERR_INVAL);
	ck_assert_int_eq(crypto_handshake_step3_open(server, device_pub, block,
						     384, got),
			 CINDER_ERR_INVAL);
	/* A 2048-bit device key does not fit the 384-byte layout. */
	ck_assert_int_eq(
		crypto_handshake_step3_build(server, other, session, block),
		CINDER_ERR_INVAL);
	ck_assert_int_eq(crypto_handshake_step3_build(device, device_pub,
						      session, block),
			 CINDER_ERR_INVAL);
	ck_assert_int_eq(crypto_handshake_step3_build(server_pub, device_pub,
						      session, block),
			 CINDER_ERR_INVAL);
	/* A validly signed block whose ciphertext holds 39 bytes. */
	ck_assert_int_eq(
		crypto_rsa_encrypt(device_pub, session, 39, block, 128, &n), 0);
	ck_assert_int_eq(crypto_handshake_step3_open(device, server_pub, block,
						     384, got),
			 CINDER_ERR_CRYPTO);
	(void)big;
	crypto_key_free(other);
}
END_TEST

static Suite *
crypto_suite(void)
{
	Suite *s = suite_create("crypto");
	TCase *tc;

	tc = tcase_create("keys");
	tcase_add_checked_fixture(tc, load_keys, free_keys);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_crypto_server_key_load_ok);
	tcase_add_test(tc, test_crypto_server_key_load_pkcs8);
	tcase_add_test(tc, test_crypto_server_key_load_bad);
	tcase_add_test(tc, test_crypto_server_key_generate_ok);
	tcase_add_test(tc, test_crypto_server_key_generate_conflict);
	tcase_add_test(tc, test_crypto_privkey_parse_encrypted);
	tcase_add_test(tc, test_crypto_pubkey_parse_formats);
	tcase_add_test(tc, test_crypto_pubkey_parse_der_fast_path);
	tcase_add_test(tc, test_crypto_pubkey_parse_pem_fast_path);
	tcase_add_test(tc, test_crypto_pubkey_parse_bad);
	tcase_add_test(tc, test_crypto_pubkey_parse_mutants);
	tcase_add_test(tc, test_crypto_pubkey_der_pem_roundtrip);
	tcase_add_test(tc, test_crypto_pubkey_pem_to_der_forms);
	tcase_add_test(tc, test_crypto_key_public_eq_cases);
	tcase_add_test(tc, test_crypto_key_dup_shares);
	tcase_add_test(tc, test_crypto_key_generate_sizes);
	suite_add_tcase(s, tc);

	tc = tcase_create("rsa");
	tcase_add_checked_fixture(tc, load_keys, free_keys);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_crypto_rsa_roundtrip);
	tcase_add_test(tc, test_crypto_rsa_bad_input);
	tcase_add_test(tc, test_crypto_rsa_sign_raw_roundtrip);
	tcase_add_test(tc, test_crypto_rsa_verify_raw_tampered);
	suite_add_tcase(s, tc);

	tc = tcase_create("hash");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_crypto_hmac_sha1_rfc2202);
	tcase_add_test(tc, test_crypto_hmac_sha256_rfc4231);
	tcase_add_test(tc, test_crypto_sha256_known);
	tcase_add_test(tc, test_crypto_password_hash_verify);
	tcase_add_test(tc, test_crypto_password_verify_malformed);
	tcase_add_test(tc, test_crypto_random_fills);
	tcase_add_test(tc, test_crypto_random_public);
	tcase_add_test(tc, test_crypto_random_public_fork);
	tcase_add_test(tc, test_crypto_mem_eq_and_wipe);
	suite_add_tcase(s, tc);

	tc = tcase_create("channel");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_crypto_channel_seal_sp800_38a);
	tcase_add_test(tc, test_crypto_channel_chain_roundtrip);
	tcase_add_test(tc, test_crypto_channel_open_bad_padding);
	tcase_add_test(tc, test_crypto_channel_busy_cache);
	tcase_add_test(tc, test_crypto_channel_bad_sizes);
	suite_add_tcase(s, tc);

	tc = tcase_create("handshake");
	tcase_add_checked_fixture(tc, load_keys, free_keys);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_crypto_handshake_step2_roundtrip);
	tcase_add_test(tc, test_crypto_handshake_step2_bad);
	tcase_add_test(tc, test_crypto_handshake_step2_parse_mutants);
	tcase_add_test(tc, test_crypto_handshake_step3_roundtrip);
	tcase_add_test(tc, test_crypto_handshake_step3_bad);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(crypto_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
