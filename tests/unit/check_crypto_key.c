/* SPDX-License-Identifier: MIT */
/*
 * Tests for crypto's keys and their encodings (crypto_key.c): key loading,
 * checks and conversions, key generation, public-key formats and the
 * hand-read SPKI paths, every truncation and mutants of a device key.
 * Keys come from tests/data/vectors ($top_srcdir, see crypto_test.h) and
 * literals below.
 */
#include "config.h"

#include <sys/stat.h>
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "crypto_int.h"
#include "crypto_test.h"
#include "ossl_oracle.h"
#include "err.h"
#include "mutate.h"
#include "xmalloc.h"

/* More throwaway keys generated with openssl for these tests only. */
/* pkcs8_2048_pem (crypto_test.h), encrypted (passphrase "secret"). */
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

/* The PEM body decoder of the handshake's key lookup: the form OpenSSL
 * writes, with LF or CRLF and any line length, and nothing else. */
START_TEST(test_crypto_spki_pem_body_forms)
{
	static const struct {
		const char *body; /* between the header and the footer */
		const char *want; /* decoded, or NULL: not taken */
	} cases[] = {
		{"TWFu\n", "Man"},
		{"TWE=\n", "Ma"},
		{"TQ==\n", "M"},
		{"TW\nFu\n", "Man"}, /* a digit group across lines */
		{"TWFu\r\n", "Man"},
		{"TR==\n", NULL}, /* bits left over */
		{"TWF=\n", NULL},
		{"TQ=\n", NULL}, /* padding short */
		{"T===\n", NULL},
		{"TQ==\nTWFu\n", NULL}, /* padding before the end */
		{"TQ=\n=\n", NULL},
		{"TW Fu\n", NULL},
		{"TWFu\n\n", NULL}, /* an empty line */
		{"TW-u\n", NULL},
		{"TWFu\r", NULL},
		{"", NULL},
	};
	static const char head[] = "-----BEGIN PUBLIC KEY-----\n",
			  foot[] = "-----END PUBLIC KEY-----\n";
	uint8_t der[CRYPTO_PUB_DER_MAX], out[CRYPTO_PUB_DER_MAX];
	char pem[1024], *crlf, *one, *q;
	const char *p, *stored;
	size_t i, len = 0, slen;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n;

		snprintf(pem, sizeof(pem), "%s%s%s", head, cases[i].body, foot);
		n = crypto_spki_pem_body(pem, strlen(pem), out, sizeof(out));
		if (cases[i].want == NULL) {
			ck_assert_msg(n == 0, "case %zu taken", i);
			continue;
		}
		ck_assert_uint_eq(n, strlen(cases[i].want));
		ck_assert_mem_eq(out, cases[i].want, n);
		/* no room for the last group */
		ck_assert_uint_eq(
			crypto_spki_pem_body(pem, strlen(pem), out, n - 1), 0);
	}
	/* the device key as cinderd stores it, and the same with CRLF line
	   ends, as one line, and without the last line end */
	ck_assert_int_eq(
		crypto_key_public_der(device_pub, der, sizeof(der), &len), 0);
	stored = (char *)vec_read("device_pub.pem", &slen);
	crlf = xmalloc(2 * slen + 1);
	one = xmalloc(slen + 1);
	for (p = stored, q = crlf; *p != '\0'; p++) {
		if (*p == '\n')
			*q++ = '\r';
		*q++ = *p;
	}
	*q = '\0';
	memcpy(one, stored, strlen(head));
	for (p = stored + strlen(head), q = one + strlen(head);
	     strncmp(p, "-----END", 8) != 0; p++)
		if (*p != '\n')
			*q++ = *p;
	snprintf(q, slen + 1 - (size_t)(q - one), "\n%s", p);
	for (i = 0; i < 3; i++) {
		const char *forms[] = {stored, crlf, one};

		ck_assert_uint_eq(crypto_spki_pem_body(forms[i],
						       strlen(forms[i]), out,
						       sizeof(out)),
				  len);
		ck_assert_mem_eq(out, der, len);
	}
	ck_assert_uint_eq(
		crypto_spki_pem_body(stored, slen - 1, out, sizeof(out)), len);
	/* another label, a header line, text before it: not taken */
	ck_assert_uint_eq(crypto_spki_pem_body(device_pkcs1_pub_pem,
					       strlen(device_pkcs1_pub_pem),
					       out, sizeof(out)),
			  0);
	snprintf(pem, sizeof(pem), "%sProc-Type: 4,ENCRYPTED\n%s", head,
		 stored + strlen(head));
	ck_assert_uint_eq(
		crypto_spki_pem_body(pem, strlen(pem), out, sizeof(out)), 0);
	snprintf(pem, sizeof(pem), "key:\n%s", stored);
	ck_assert_uint_eq(
		crypto_spki_pem_body(pem, strlen(pem), out, sizeof(out)), 0);
	free(crlf);
	free(one);
	free((char *)stored);
}
END_TEST

/* PEM to DER on mutants of the stored form. crypto_pubkey_pem_to_der()
 * and crypto_pubkey_parse() answer alike, and both answer as OpenSSL's
 * generic decoders do (ossl_oracle.h): the two share the hand-written
 * PEM body decoder, so only the oracle would see it take a text that
 * OpenSSL refuses, or read other bytes from it. */
static void
pem_mutant(const uint8_t *buf, size_t len, void *arg)
{
	uint8_t der[CRYPTO_PUB_DER_MAX], der2[CRYPTO_PUB_DER_MAX],
		der3[CRYPTO_PUB_DER_MAX];
	size_t n = 0, n2 = 0, n3 = 0;
	struct crypto_key *k = NULL;
	int r = crypto_pubkey_pem_to_der((const char *)buf, len, der,
					 sizeof(der), &n);
	int g = crypto_pubkey_parse(buf, len, &k);
	int o = ossl_oracle_pub_der(buf, len, der3, sizeof(der3), &n3);

	if (g == 0)
		g = crypto_key_public_der(k, der2, sizeof(der2), &n2);
	crypto_key_free(k);
	ck_assert_int_eq(r, g);
	ck_assert_uint_eq(n, n2);
	ck_assert_msg((r == 0) == (o == 0), "cinderd %d, OpenSSL %d", r, o);
	if (o == 1) /* an empty text is a bad argument */
		ck_assert_int_eq(r, len == 0 ? CINDER_ERR_INVAL
					     : CINDER_ERR_CRYPTO);
	else if (o == 2)
		ck_assert_int_eq(r, CINDER_ERR_INVAL);
	if (r == 0) {
		ck_assert_mem_eq(der, der2, n);
		ck_assert_uint_eq(n, n3);
		ck_assert_mem_eq(der, der3, n);
	}
	(*(unsigned *)arg)++;
}

START_TEST(test_crypto_pubkey_pem_to_der_mutants)
{
	unsigned n = 0;
	size_t len = 0;
	uint8_t *stored = vec_read("device_pub.pem", &len);

	mutate_run(stored, len, 0x9e3, 2000, pem_mutant, &n);
	ck_assert_uint_eq(n, 2000 + len);
	free(stored);
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

static Suite *
crypto_key_suite(void)
{
	Suite *s = suite_create("crypto_key");
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
	tcase_add_test(tc, test_crypto_spki_pem_body_forms);
	tcase_add_test(tc, test_crypto_pubkey_pem_to_der_mutants);
	tcase_add_test(tc, test_crypto_key_public_eq_cases);
	tcase_add_test(tc, test_crypto_key_dup_shares);
	tcase_add_test(tc, test_crypto_key_generate_sizes);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(crypto_key_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
