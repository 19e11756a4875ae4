/* SPDX-License-Identifier: MIT */
/*
 * Device-protocol cryptography on top of OpenSSL 3 EVP: RSA keys and
 * PKCS#1 v1.5, the handshake blocks of protocol.md §2.3, the AES-128-CBC
 * channel with Particle's IV chaining (§1.4), HMAC, SHA-256, RNG, wiping.
 * This is the only file that includes OpenSSL headers; the OpenSSL error
 * queue is drained here and turned into CINDER_ERR_CRYPTO (logged at debug
 * level for peer input, at error level for local key files). No libevent,
 * no global mutable state except the fetched AES cipher (set up once).
 */
#include "config.h"

#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Hide every deprecated declaration: using one fails to compile. */
#define OPENSSL_API_COMPAT 30000
#define OPENSSL_NO_DEPRECATED 1

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "crypto.h"
#include "err.h"
#include "log.h"
#include "xmalloc.h"

struct crypto_key {
	EVP_PKEY *pkey; /* owned; RSA, private or public only */
	bool priv;	/* has the private half (found once, at wrap) */
	size_t size;	/* modulus bytes */
};

/* The fixed 33-byte prefix of a 2048-bit, e = 65537 SPKI (§2.1). */
static const uint8_t server_spki_head[33] = {
	0x30, 0x82, 0x01, 0x22, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48,
	0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00, 0x03, 0x82, 0x01,
	0x0f, 0x00, 0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00,
};
static const uint8_t spki_e65537[5] = {0x02, 0x03, 0x01, 0x00, 0x01};

/*
 * Empty the thread's OpenSSL error queue, logging each entry. Peer input
 * failures log at debug so a noisy device cannot flood the log.
 */
static void
crypto_drain(enum log_level level, const char *what)
{
	unsigned long e;
	char buf[256];

	while ((e = ERR_get_error()) != 0) {
		if (log_enabled(level)) {
			ERR_error_string_n(e, buf, sizeof(buf));
			log_write(level, NULL, "crypto: %s: %s", what, buf);
		}
	}
}

static bool crypto_pkey_has_private(EVP_PKEY *pkey);

static struct crypto_key *
crypto_key_wrap_known(EVP_PKEY *pkey, bool priv)
{
	struct crypto_key *k = xcalloc(1, sizeof(*k));
	int n = EVP_PKEY_get_size(pkey);

	k->pkey = pkey;
	k->priv = priv;
	k->size = n > 0 ? (size_t)n : 0;
	return k;
}

/* Asking OpenSSL whether a key is private exports d as a BIGNUM: done
 * once here, not on every handshake. */
static struct crypto_key *
crypto_key_wrap(EVP_PKEY *pkey)
{
	return crypto_key_wrap_known(pkey, crypto_pkey_has_private(pkey));
}

/*
 * The private-key operations (the server key: decrypt the device's
 * block, sign the reply) keep their EVP_PKEY_CTX per thread, made and
 * initialised once per key: OpenSSL 3 fetches the RSA implementation and
 * builds a provider context for every new EVP_PKEY_CTX. The context holds
 * a reference on its key, so a cached pointer never names a freed key.
 */
enum { PK_DECRYPT = 0, PK_SIGN = 1 };
static __thread struct {
	EVP_PKEY *key;
	EVP_PKEY_CTX *ctx;
} pk_tl[2];

static void
crypto_pk_drop(int op)
{
	EVP_PKEY_CTX_free(pk_tl[op].ctx);
	pk_tl[op].ctx = NULL;
	pk_tl[op].key = NULL;
}

static EVP_PKEY_CTX *
crypto_pk_ctx(const struct crypto_key *k, int op)
{
	EVP_PKEY_CTX *ctx;

	if (pk_tl[op].key == k->pkey && pk_tl[op].ctx != NULL)
		return pk_tl[op].ctx;
	crypto_pk_drop(op);
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
	if (ctx == NULL ||
	    (op == PK_DECRYPT ? EVP_PKEY_decrypt_init(ctx)
			      : EVP_PKEY_sign_init(ctx)) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1) {
		EVP_PKEY_CTX_free(ctx);
		return NULL;
	}
	pk_tl[op].ctx = ctx;
	pk_tl[op].key = k->pkey;
	return ctx;
}

void
crypto_key_free(struct crypto_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

static bool
crypto_looks_pem(const void *buf, size_t len)
{
	static const char tag[] = "-----BEGIN ";

	return memmem(buf, len, tag, sizeof(tag) - 1) != NULL;
}

/*
 * Encrypted keys are not supported: refuse to get a passphrase, or
 * OpenSSL would prompt on the controlling terminal.
 */
static int
crypto_no_passphrase(char *pass, size_t size, size_t *len,
		     const OSSL_PARAM params[], void *arg)
{
	(void)pass;
	(void)size;
	(void)params;
	(void)arg;
	*len = 0;
	return 0;
}

static int
crypto_no_pem_password(char *buf, int size, int rwflag, void *arg)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)arg;
	return -1;
}

/*
 * Decode an RSA key with the OSSL_DECODER machinery; selection tells it
 * whether a private key is required.
 */
static int
crypto_decode(const void *buf, size_t len, int selection, EVP_PKEY **out)
{
	OSSL_DECODER_CTX *dctx = NULL;
	EVP_PKEY *pkey = NULL;
	const unsigned char *p = buf;
	size_t left = len;
	int r = CINDER_ERR_INTERNAL;

	*out = NULL;
	dctx = OSSL_DECODER_CTX_new_for_pkey(
		&pkey, crypto_looks_pem(buf, len) ? "PEM" : "DER", NULL, "RSA",
		selection, NULL, NULL);
	if (dctx == NULL || OSSL_DECODER_CTX_set_passphrase_cb(
				    dctx, crypto_no_passphrase, NULL) != 1) {
		r = CINDER_ERR_CRYPTO;
		goto out;
	}
	if (OSSL_DECODER_from_data(dctx, &p, &left) != 1 || pkey == NULL) {
		r = CINDER_ERR_CRYPTO;
		goto out;
	}
	if (!EVP_PKEY_is_a(pkey, "RSA")) {
		r = CINDER_ERR_CRYPTO;
		goto out;
	}
	r = 0;
	*out = pkey;
	pkey = NULL;
out:
	EVP_PKEY_free(pkey);
	OSSL_DECODER_CTX_free(dctx);
	return r;
}

static bool
crypto_pkey_has_private(EVP_PKEY *pkey)
{
	BIGNUM *d = NULL;
	int ok = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_D, &d);

	BN_clear_free(d);
	ERR_clear_error(); /* absence of d is not an error */
	return ok == 1;
}

static bool
crypto_pkey_e_is_65537(EVP_PKEY *pkey)
{
	BIGNUM *e = NULL;
	bool ok = false;

	if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) == 1)
		ok = BN_is_word(e, 65537);
	BN_free(e);
	ERR_clear_error();
	return ok;
}

int
crypto_privkey_parse(const void *buf, size_t len, struct crypto_key **out)
{
	EVP_PKEY *pkey = NULL;
	int r = CINDER_ERR_INTERNAL;

	if (out != NULL)
		*out = NULL;
	if (buf == NULL || len == 0 || out == NULL)
		return CINDER_ERR_INVAL;
	if (len > CRYPTO_KEYFILE_MAX)
		return CINDER_ERR_TOO_BIG;
	if ((r = crypto_decode(buf, len, EVP_PKEY_KEYPAIR, &pkey)) != 0)
		goto out;
	if (!crypto_pkey_has_private(pkey)) {
		r = CINDER_ERR_CRYPTO;
		goto out;
	}
	r = 0;
	*out = crypto_key_wrap(pkey);
	pkey = NULL;
out:
	if (r != 0)
		crypto_drain(LOG_LEVEL_DEBUG, "could not decode private key");
	EVP_PKEY_free(pkey);
	return r;
}

/* Read a whole (small) file; the caller wipes and frees *buf. */
static int
crypto_read_file(const char *path, uint8_t **bufp, size_t *lenp)
{
	uint8_t *buf = NULL;
	size_t len = 0, cap = CRYPTO_KEYFILE_MAX + 1;
	ssize_t n;
	int fd = -1, r = CINDER_ERR_INTERNAL;

	*bufp = NULL;
	*lenp = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		log_err("could not open key file %s: %s", path,
			strerror(errno));
		r = CINDER_ERR_IO;
		goto out;
	}
	buf = xmalloc(cap);
	for (;;) {
		n = read(fd, buf + len, cap - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			log_err("could not read key file %s: %s", path,
				strerror(errno));
			r = CINDER_ERR_IO;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == cap) {
			log_err("could not read key file %s: larger than %d "
				"bytes",
				path, CRYPTO_KEYFILE_MAX);
			r = CINDER_ERR_TOO_BIG;
			goto out;
		}
	}
	r = 0;
	*bufp = buf;
	*lenp = len;
	buf = NULL;
out:
	freezero(buf, cap);
	if (fd != -1)
		close(fd);
	return r;
}

int
crypto_privkey_load(const char *path, struct crypto_key **out)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r = CINDER_ERR_INTERNAL;

	if (out != NULL)
		*out = NULL;
	if (path == NULL || out == NULL)
		return CINDER_ERR_INVAL;
	if ((r = crypto_read_file(path, &buf, &len)) != 0)
		goto out;
	if (len == 0) {
		r = CINDER_ERR_CRYPTO;
		goto out;
	}
	if ((r = crypto_privkey_parse(buf, len, out)) != 0)
		log_err("could not decode private key %s: not an unencrypted "
			"RSA key in PEM or DER",
			path);
out:
	freezero(buf, CRYPTO_KEYFILE_MAX + 1);
	return r;
}

int
crypto_server_key_check(const struct crypto_key *k)
{
	uint8_t der[CRYPTO_PUB_DER_MAX];
	size_t len = 0;

	if (k == NULL || !crypto_key_is_private(k))
		return CINDER_ERR_INVAL;
	if (EVP_PKEY_get_bits(k->pkey) != 2048 ||
	    !crypto_pkey_e_is_65537(k->pkey))
		return CINDER_ERR_INVAL;
	/* Devices read the modulus at a fixed offset; make sure it is there. */
	if (crypto_key_public_der(k, der, sizeof(der), &len) != 0 ||
	    len != CRYPTO_SERVER_PUB_DER_LEN ||
	    memcmp(der, server_spki_head, sizeof(server_spki_head)) != 0 ||
	    memcmp(der + len - sizeof(spki_e65537), spki_e65537,
		   sizeof(spki_e65537)) != 0)
		return CINDER_ERR_INVAL;
	return 0;
}

int
crypto_server_key_load(const char *path, struct crypto_key **out)
{
	struct crypto_key *k = NULL;
	int r = CINDER_ERR_INTERNAL;

	if (out != NULL)
		*out = NULL;
	if (path == NULL || out == NULL)
		return CINDER_ERR_INVAL;
	if ((r = crypto_privkey_load(path, &k)) != 0)
		goto out;
	if ((r = crypto_server_key_check(k)) != 0) {
		log_err("server key %s is unusable: devices need RSA-2048 "
			"with e=65537 (it has %u bits)",
			path, crypto_key_bits(k));
		goto out;
	}
	r = 0;
	*out = k;
	k = NULL;
out:
	crypto_key_free(k);
	return r;
}

int
crypto_key_generate(unsigned bits, struct crypto_key **out)
{
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	int r = CINDER_ERR_INTERNAL;

	if (out != NULL)
		*out = NULL;
	if (out == NULL || bits < 1024 || bits > 4096)
		return CINDER_ERR_INVAL;
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_keygen_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) != 1 ||
	    EVP_PKEY_generate(ctx, &pkey) != 1) {
		crypto_drain(LOG_LEVEL_ERR, "could not generate RSA key");
		r = CINDER_ERR_CRYPTO;
		goto out;
	}
	r = 0;
	*out = crypto_key_wrap(pkey);
	pkey = NULL;
out:
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	return r;
}

/* Create a new file, never replacing one. */
static int
crypto_file_create(const char *path, mode_t mode, int *fdp)
{
	int fd;

	*fdp = -1;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd == -1) {
		if (errno == EEXIST) {
			log_err("could not create %s: file exists", path);
			return CINDER_ERR_CONFLICT;
		}
		log_err("could not create %s: %s", path, strerror(errno));
		return CINDER_ERR_IO;
	}
	if (fchmod(fd, mode) == -1) {
		log_err("could not chmod %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return CINDER_ERR_IO;
	}
	*fdp = fd;
	return 0;
}

static int
crypto_file_write(int fd, const char *path, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			log_err("could not write %s: %s", path,
				strerror(errno));
			return CINDER_ERR_IO;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) == -1) {
		log_err("could not write %s: %s", path, strerror(errno));
		return CINDER_ERR_IO;
	}
	return 0;
}

int
crypto_server_key_generate(const char *key_pem_path, const char *pub_der_path,
			   const char *pub_pem_path)
{
	const char *paths[3] = {key_pem_path, pub_der_path, pub_pem_path};
	static const mode_t modes[3] = {0600, 0644, 0644};
	int fds[3] = {-1, -1, -1};
	bool created[3] = {false, false, false};
	struct crypto_key *k = NULL;
	OSSL_ENCODER_CTX *ectx = NULL;
	unsigned char *priv = NULL;
	size_t priv_len = 0, der_len = 0;
	uint8_t der[CRYPTO_PUB_DER_MAX];
	char *pem = NULL;
	int i, r = CINDER_ERR_INTERNAL;

	if (key_pem_path == NULL)
		return CINDER_ERR_INVAL;
	/* Claim every path first so a conflict leaves nothing behind. */
	for (i = 0; i < 3; i++) {
		if (paths[i] == NULL)
			continue;
		if ((r = crypto_file_create(paths[i], modes[i], &fds[i])) != 0)
			goto out;
		created[i] = true;
	}
	if ((r = crypto_key_generate(2048, &k)) != 0)
		goto out;
	if ((r = crypto_server_key_check(k)) != 0) {
		r = CINDER_ERR_CRYPTO;
		goto out;
	}
	/* "type-specific" gives PKCS#1 "RSA PRIVATE KEY", as Node servers. */
	ectx = OSSL_ENCODER_CTX_new_for_pkey(k->pkey, EVP_PKEY_KEYPAIR, "PEM",
					     "type-specific", NULL);
	if (ectx == NULL || OSSL_ENCODER_to_data(ectx, &priv, &priv_len) != 1) {
		crypto_drain(LOG_LEVEL_ERR, "could not encode private key");
		r = CINDER_ERR_CRYPTO;
		goto out;
	}
	if ((r = crypto_file_write(fds[0], paths[0], priv, priv_len)) != 0)
		goto out;
	if (fds[1] != -1) {
		if ((r = crypto_key_public_der(k, der, sizeof(der),
					       &der_len)) != 0 ||
		    (r = crypto_file_write(fds[1], paths[1], der, der_len)) !=
			    0)
			goto out;
	}
	if (fds[2] != -1) {
		if ((r = crypto_key_public_pem(k, &pem)) != 0 ||
		    (r = crypto_file_write(fds[2], paths[2], pem,
					   strlen(pem))) != 0)
			goto out;
	}
	r = 0;
out:
	for (i = 0; i < 3; i++) {
		if (fds[i] != -1 && close(fds[i]) == -1 && r == 0) {
			log_err("could not write %s: %s", paths[i],
				strerror(errno));
			r = CINDER_ERR_IO;
		}
	}
	if (r != 0) {
		for (i = 0; i < 3; i++) {
			if (created[i])
				unlink(paths[i]);
		}
	}
	if (priv != NULL)
		OPENSSL_clear_free(priv, priv_len);
	free(pem);
	OSSL_ENCODER_CTX_free(ectx);
	crypto_key_free(k);
	return r;
}

/* Keep only the public half of pkey (drops d, p, q, ...). */
static int
crypto_pkey_public_only(EVP_PKEY *pkey, EVP_PKEY **out)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	int len;

	*out = NULL;
	if ((len = i2d_PUBKEY(pkey, &der)) <= 0)
		return CINDER_ERR_CRYPTO;
	p = der;
	*out = d2i_PUBKEY(NULL, &p, len);
	OPENSSL_free(der);
	return *out == NULL ? CINDER_ERR_CRYPTO : 0;
}

/*
 * Fastest path, for the DER a device sends at every handshake: read an RSA
 * SubjectPublicKeyInfo with e = 65537 by hand and import n and e. In
 * OpenSSL 3.0 d2i_PUBKEY builds an OSSL_DECODER chain per call, which
 * perf showed as 40% of the loop thread's time in a handshake storm.
 * Anything but strict, minimal DER of exactly that shape returns NULL
 * and goes the generic way, so what is accepted does not change.
 */
static bool
der_take(const uint8_t **p, const uint8_t *end, uint8_t tag,
	 const uint8_t **val, size_t *vlen)
{
	const uint8_t *q = *p;
	size_t len, nb;

	if (end - q < 2 || q[0] != tag)
		return false;
	q++;
	if (*q < 0x80) {
		len = *q++;
	} else {
		nb = *q++ & 0x7fu;
		if (nb == 0 || nb > 2 || (size_t)(end - q) < nb)
			return false;
		len = nb == 1 ? q[0] : (size_t)q[0] << 8 | q[1];
		q += nb;
		if (len < (nb == 1 ? 0x80u : 0x100u))
			return false; /* not minimal */
	}
	if ((size_t)(end - q) < len)
		return false;
	*val = q;
	*vlen = len;
	*p = q + len;
	return true;
}

static __thread EVP_PKEY_CTX *rsa_import_ctx; /* fromdata, per thread */

static bool
host_is_le(void)
{
	const uint16_t one = 1;

	return *(const uint8_t *)&one == 1;
}

/*
 * The strict shape check alone: on success *np, *nlp is the modulus
 * (big-endian, no leading zero) and *bits its size.
 */
static bool
crypto_spki_der_rsa_check(const uint8_t *buf, size_t len, const uint8_t **np,
			  size_t *nlp, int *bits)
{
	static const uint8_t alg[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7,
				      0x0d, 0x01, 0x01, 0x01, 0x05, 0x00};
	const uint8_t *p = buf, *end = buf + len, *v, *n, *e;
	size_t vl, nl, el, i;

	if (!der_take(&p, end, 0x30, &v, &vl) || p != end)
		return false;
	p = v;
	end = v + vl;
	if (!der_take(&p, end, 0x30, &v, &vl) || vl != sizeof(alg) ||
	    memcmp(v, alg, sizeof(alg)) != 0 ||
	    !der_take(&p, end, 0x03, &v, &vl) || p != end || vl < 1 ||
	    v[0] != 0)
		return false;
	p = v + 1;
	end = v + vl;
	if (!der_take(&p, end, 0x30, &v, &vl) || p != end)
		return false;
	p = v;
	end = v + vl;
	if (!der_take(&p, end, 0x02, &n, &nl) ||
	    !der_take(&p, end, 0x02, &e, &el) || p != end)
		return false;
	/* positive and minimal; e exactly 65537 */
	if (nl < 2 || (n[0] & 0x80) != 0 || (n[0] == 0 && (n[1] & 0x80) == 0))
		return false;
	if (n[0] == 0) {
		n++;
		nl--;
	}
	if (nl > CRYPTO_RSA_MAX_BYTES || el != 3 ||
	    memcmp(e, "\x01\x00\x01", 3) != 0)
		return false;
	*bits = (int)(nl * 8);
	for (i = 0x80; i > 0 && (n[0] & i) == 0; i >>= 1)
		(*bits)--;
	*np = n;
	*nlp = nl;
	return true;
}

static EVP_PKEY *
crypto_spki_der_rsa(const uint8_t *buf, size_t len, int *bits)
{
	const uint8_t *n;
	size_t nl, i;
	OSSL_PARAM params[3];
	EVP_PKEY *pkey = NULL;
	uint8_t nle[CRYPTO_RSA_MAX_BYTES],
		ele[3] = {0x01, 0x00, 0x01}; /* 65537 */

	if (!crypto_spki_der_rsa_check(buf, len, &n, &nl, bits))
		return NULL;
	/* OSSL_PARAM integers are in the host's byte order */
	for (i = 0; i < nl; i++)
		nle[i] = host_is_le() ? n[nl - 1 - i] : n[i];
	params[0] = OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_RSA_N, nle, nl);
	params[1] = OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_RSA_E, ele, 3);
	params[2] = OSSL_PARAM_construct_end();
	if (rsa_import_ctx == NULL) {
		rsa_import_ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
		if (rsa_import_ctx == NULL ||
		    EVP_PKEY_fromdata_init(rsa_import_ctx) != 1) {
			EVP_PKEY_CTX_free(rsa_import_ctx);
			rsa_import_ctx = NULL;
			ERR_clear_error();
			return NULL;
		}
	}
	if (EVP_PKEY_fromdata(rsa_import_ctx, &pkey, EVP_PKEY_PUBLIC_KEY,
			      params) != 1) {
		ERR_clear_error();
		return NULL;
	}
	return pkey;
}

/*
 * The same for the PEM the database holds (the first handshake of every
 * device after a start parses it): PEM_read_bio only undoes the base64,
 * the DER goes the hand-read way. NULL sends it the generic way.
 */
static EVP_PKEY *
crypto_spki_pem_rsa(const void *buf, size_t len, int *bits)
{
	BIO *bio;
	char *name = NULL, *header = NULL;
	unsigned char *der = NULL;
	long dlen = 0;
	EVP_PKEY *pkey = NULL;

	if (len > INT_MAX || (bio = BIO_new_mem_buf(buf, (int)len)) == NULL)
		return NULL;
	ERR_set_mark();
	if (PEM_read_bio(bio, &name, &header, &der, &dlen) == 1 &&
	    strcmp(name, "PUBLIC KEY") == 0 && header[0] == '\0' && dlen > 0)
		pkey = crypto_spki_der_rsa(der, (size_t)dlen, bits);
	ERR_pop_to_mark(); /* a miss is not an error */
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(der);
	BIO_free(bio);
	return pkey;
}

/* Fast path: an RSA SubjectPublicKeyInfo in DER or "PUBLIC KEY" PEM. */
static EVP_PKEY *
crypto_spki_decode(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	EVP_PKEY *pkey = NULL;
	BIO *bio = NULL;

	if (len > INT_MAX)
		return NULL;
	ERR_set_mark();
	if (!crypto_looks_pem(buf, len)) {
		pkey = d2i_PUBKEY(NULL, &p, (long)len);
	} else if ((bio = BIO_new_mem_buf(buf, (int)len)) != NULL) {
		pkey = PEM_read_bio_PUBKEY(bio, NULL, crypto_no_pem_password,
					   NULL);
		BIO_free(bio);
	}
	if (pkey != NULL && !EVP_PKEY_is_a(pkey, "RSA")) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	/* A miss is not an error: the generic decoder gets its turn. */
	ERR_pop_to_mark();
	return pkey;
}

int
crypto_pubkey_parse(const void *buf, size_t len, struct crypto_key **out)
{
	EVP_PKEY *pkey = NULL, *pub = NULL;
	int bits, r = CINDER_ERR_INTERNAL;

	if (out != NULL)
		*out = NULL;
	if (buf == NULL || len == 0 || out == NULL)
		return CINDER_ERR_INVAL;
	if (len > CRYPTO_KEYFILE_MAX)
		return CINDER_ERR_TOO_BIG;
	if ((crypto_looks_pem(buf, len)
		     ? (pub = crypto_spki_pem_rsa(buf, len, &bits))
		     : (pub = crypto_spki_der_rsa(buf, len, &bits))) != NULL) {
		if (bits < 1024 || bits > 2048) {
			EVP_PKEY_free(pub);
			return CINDER_ERR_INVAL;
		}
		*out = crypto_key_wrap_known(pub, false);
		return 0;
	}
	/*
	 * SPKI, the common case (device DER, stored PEM), has a direct
	 * decoder that is much cheaper than the generic OSSL_DECODER chain.
	 * Other forms (PKCS#1, or a private key, which also carries the
	 * public one) go through the generic decoder.
	 */
	if ((pub = crypto_spki_decode(buf, len)) == NULL) {
		if ((r = crypto_decode(buf, len, EVP_PKEY_PUBLIC_KEY, &pkey)) !=
			    0 &&
		    (r = crypto_decode(buf, len, EVP_PKEY_KEYPAIR, &pkey)) != 0)
			goto out;
		if ((r = crypto_pkey_public_only(pkey, &pub)) != 0)
			goto out;
	}
	bits = EVP_PKEY_get_bits(pub);
	if (bits < 1024 || bits > 2048 || !crypto_pkey_e_is_65537(pub)) {
		r = CINDER_ERR_INVAL;
		goto out;
	}
	r = 0;
	*out = crypto_key_wrap(pub);
	pub = NULL;
out:
	if (r != 0)
		crypto_drain(LOG_LEVEL_DEBUG, "could not decode public key");
	EVP_PKEY_free(pkey);
	EVP_PKEY_free(pub);
	return r;
}

int
crypto_pubkey_load(const char *path, struct crypto_key **out)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r = CINDER_ERR_INTERNAL;

	if (out != NULL)
		*out = NULL;
	if (path == NULL || out == NULL)
		return CINDER_ERR_INVAL;
	if ((r = crypto_read_file(path, &buf, &len)) != 0)
		goto out;
	if (len == 0) {
		r = CINDER_ERR_CRYPTO;
		goto out;
	}
	r = crypto_pubkey_parse(buf, len, out);
out:
	freezero(buf, CRYPTO_KEYFILE_MAX + 1);
	return r;
}

struct crypto_key *
crypto_key_dup(const struct crypto_key *k)
{
	struct crypto_key *d;

	if (k == NULL)
		return NULL;
	if (EVP_PKEY_up_ref(k->pkey) != 1)
		abort(); /* only fails when a lock cannot be taken */
	d = xcalloc(1, sizeof(*d));
	*d = *k; /* the same key: no need to ask OpenSSL again */
	return d;
}

unsigned
crypto_key_bits(const struct crypto_key *k)
{
	int bits;

	if (k == NULL)
		return 0;
	bits = EVP_PKEY_get_bits(k->pkey);
	return bits > 0 ? (unsigned)bits : 0;
}

bool
crypto_key_is_private(const struct crypto_key *k)
{
	return k != NULL && k->priv;
}

bool
crypto_key_public_eq(const struct crypto_key *a, const struct crypto_key *b)
{
	int eq;

	if (a == NULL || b == NULL)
		return false;
	eq = EVP_PKEY_eq(a->pkey, b->pkey);
	ERR_clear_error();
	return eq == 1;
}

int
crypto_key_public_der(const struct crypto_key *k, uint8_t *der, size_t cap,
		      size_t *lenp)
{
	unsigned char *p;
	int len;

	if (lenp != NULL)
		*lenp = 0;
	if (k == NULL || der == NULL || lenp == NULL)
		return CINDER_ERR_INVAL;
	if ((len = i2d_PUBKEY(k->pkey, NULL)) <= 0) {
		crypto_drain(LOG_LEVEL_DEBUG, "could not encode public key");
		return CINDER_ERR_CRYPTO;
	}
	if ((size_t)len > cap)
		return CINDER_ERR_TOO_BIG;
	p = der;
	if (i2d_PUBKEY(k->pkey, &p) != len) {
		crypto_drain(LOG_LEVEL_DEBUG, "could not encode public key");
		return CINDER_ERR_CRYPTO;
	}
	*lenp = (size_t)len;
	return 0;
}

int
crypto_key_public_pem(const struct crypto_key *k, char **pem)
{
	BIO *bio = NULL;
	char *data = NULL;
	long len;
	int r = CINDER_ERR_INTERNAL;

	if (pem != NULL)
		*pem = NULL;
	if (k == NULL || pem == NULL)
		return CINDER_ERR_INVAL;
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PUBKEY(bio, k->pkey) != 1) {
		crypto_drain(LOG_LEVEL_DEBUG, "could not encode public key");
		r = CINDER_ERR_CRYPTO;
		goto out;
	}
	len = BIO_get_mem_data(bio, &data);
	if (len <= 0 || data == NULL) {
		r = CINDER_ERR_CRYPTO;
		goto out;
	}
	r = 0;
	*pem = xstrndup(data, (size_t)len);
out:
	BIO_free(bio);
	return r;
}

int
crypto_pubkey_der_to_pem(const uint8_t *der, size_t len, char **pem)
{
	struct crypto_key *k = NULL;
	int r;

	if (pem != NULL)
		*pem = NULL;
	if (pem == NULL)
		return CINDER_ERR_INVAL;
	if ((r = crypto_pubkey_parse(der, len, &k)) == 0)
		r = crypto_key_public_pem(k, pem);
	crypto_key_free(k);
	return r;
}

/*
 * @return 0 with the DER copied out, CINDER_ERR_TOO_BIG, or 1: not that
 *     shape, take the generic way
 */
static int
crypto_spki_pem_der(const char *pem, size_t pem_len, uint8_t *der, size_t cap,
		    size_t *lenp)
{
	BIO *bio;
	char *name = NULL, *header = NULL;
	unsigned char *d = NULL;
	const uint8_t *n;
	size_t nl;
	long dlen = 0;
	int bits, r = 1;

	if (pem == NULL || pem_len > CRYPTO_KEYFILE_MAX || pem_len > INT_MAX ||
	    !crypto_looks_pem(pem, pem_len) ||
	    (bio = BIO_new_mem_buf(pem, (int)pem_len)) == NULL)
		return 1;
	ERR_set_mark();
	if (PEM_read_bio(bio, &name, &header, &d, &dlen) == 1 &&
	    strcmp(name, "PUBLIC KEY") == 0 && header[0] == '\0' && dlen > 0 &&
	    crypto_spki_der_rsa_check(d, (size_t)dlen, &n, &nl, &bits) &&
	    bits >= 1024 && bits <= 2048) {
		if ((size_t)dlen > cap) {
			r = CINDER_ERR_TOO_BIG;
		} else {
			memcpy(der, d, (size_t)dlen);
			*lenp = (size_t)dlen;
			r = 0;
		}
	}
	ERR_pop_to_mark(); /* a miss is not an error */
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(d);
	BIO_free(bio);
	return r;
}

int
crypto_pubkey_pem_to_der(const char *pem, size_t pem_len, uint8_t *der,
			 size_t cap, size_t *len)
{
	struct crypto_key *k = NULL;
	int r;

	if (len != NULL)
		*len = 0;
	if (der == NULL || len == NULL)
		return CINDER_ERR_INVAL;
	/* A strict RSA SPKI in "PUBLIC KEY" PEM is already the DER that
	   i2d_PUBKEY would write (OpenSSL 3.0 builds an encoder chain for
	   that, per call): undo the base64 and check it. */
	if ((r = crypto_spki_pem_der(pem, pem_len, der, cap, len)) <= 0)
		return r;
	if ((r = crypto_pubkey_parse(pem, pem_len, &k)) == 0)
		r = crypto_key_public_der(k, der, cap, len);
	crypto_key_free(k);
	return r;
}

/*
 * RSA primitives
 */

static size_t
crypto_key_size(const struct crypto_key *k)
{
	return k->size;
}

static EVP_PKEY_CTX *
crypto_pkey_ctx(const struct crypto_key *k)
{
	return EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
}

int
crypto_rsa_decrypt(const struct crypto_key *priv, const uint8_t *in,
		   size_t in_len, uint8_t *out, size_t cap, size_t *out_len)
{
	EVP_PKEY_CTX *ctx = NULL;
	uint8_t tmp[CRYPTO_RSA_MAX_BYTES];
	size_t n = sizeof(tmp), size;
	int r = CINDER_ERR_INTERNAL;

	if (out_len != NULL)
		*out_len = 0;
	if (priv == NULL || in == NULL || out == NULL || out_len == NULL)
		return CINDER_ERR_INVAL;
	size = crypto_key_size(priv);
	if (size == 0 || size > sizeof(tmp) || in_len != size ||
	    !crypto_key_is_private(priv))
		return CINDER_ERR_INVAL;
	/* OpenSSL wants room for a whole modulus; decrypt into tmp first. */
	if ((ctx = crypto_pk_ctx(priv, PK_DECRYPT)) == NULL ||
	    EVP_PKEY_decrypt(ctx, tmp, &n, in, in_len) != 1) {
		crypto_drain(LOG_LEVEL_DEBUG, "could not decrypt RSA block");
		crypto_pk_drop(PK_DECRYPT);
		r = CINDER_ERR_CRYPTO;
		goto out;
	}
	if (n > cap) {
		r = CINDER_ERR_TOO_BIG;
		goto out;
	}
	memcpy(out, tmp, n);
	*out_len = n;
	r = 0;
out:
	if (r != 0)
		OPENSSL_cleanse(out, cap);
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return r;
}

int
crypto_rsa_encrypt(const struct crypto_key *pub, const uint8_t *in,
		   size_t in_len, uint8_t *out, size_t cap, size_t *out_len)
{
	EVP_PKEY_CTX *ctx = NULL;
	size_t n = cap, size;
	int r = CINDER_ERR_INTERNAL;

	if (out_len != NULL)
		*out_len = 0;
	if (pub == NULL || (in == NULL && in_len != 0) || out == NULL ||
	    out_len == NULL)
		return CINDER_ERR_INVAL;
	size = crypto_key_size(pub);
	if (size < 11 || in_len > size - 11 || cap < size)
		return CINDER_ERR_INVAL;
	if ((ctx = crypto_pkey_ctx(pub)) == NULL ||
	    EVP_PKEY_encrypt_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_encrypt(ctx, out, &n, in_len ? in : out, in_len) != 1) {
		crypto_drain(LOG_LEVEL_DEBUG, "could not encrypt RSA block");
		r = CINDER_ERR_CRYPTO;
		goto out;
	}
	*out_len = n;
	r = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	return r;
}

int
crypto_rsa_sign_raw(const struct crypto_key *priv, const uint8_t *msg,
		    size_t msg_len, uint8_t *sig, size_t cap, size_t *sig_len)
{
	EVP_PKEY_CTX *ctx = NULL;
	size_t n = cap, size;

	if (sig_len != NULL)
		*sig_len = 0;
	if (priv == NULL || msg == NULL || sig == NULL || sig_len == NULL)
		return CINDER_ERR_INVAL;
	size = crypto_key_size(priv);
	if (size < 11 || msg_len == 0 || msg_len > size - 11 || cap < size ||
	    !crypto_key_is_private(priv))
		return CINDER_ERR_INVAL;
	/* No signature digest set: OpenSSL pads msg as-is (type 1). */
	if ((ctx = crypto_pk_ctx(priv, PK_SIGN)) == NULL ||
	    EVP_PKEY_sign(ctx, sig, &n, msg, msg_len) != 1) {
		crypto_drain(LOG_LEVEL_DEBUG, "could not sign");
		crypto_pk_drop(PK_SIGN);
		return CINDER_ERR_CRYPTO;
	}
	*sig_len = n;
	return 0;
}

int
crypto_rsa_verify_raw(const struct crypto_key *pub, const uint8_t *msg,
		      size_t msg_len, const uint8_t *sig, size_t sig_len)
{
	EVP_PKEY_CTX *ctx = NULL;
	int r = CINDER_ERR_INTERNAL;

	if (pub == NULL || msg == NULL || msg_len == 0 || sig == NULL)
		return CINDER_ERR_INVAL;
	if (sig_len != crypto_key_size(pub))
		return CINDER_ERR_CRYPTO;
	if ((ctx = crypto_pkey_ctx(pub)) == NULL ||
	    EVP_PKEY_verify_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1) {
		crypto_drain(LOG_LEVEL_DEBUG, "could not set up verify");
		r = CINDER_ERR_CRYPTO;
		goto out;
	}
	if (EVP_PKEY_verify(ctx, sig, sig_len, msg, msg_len) != 1) {
		crypto_drain(LOG_LEVEL_DEBUG, "bad signature");
		r = CINDER_ERR_CRYPTO;
		goto out;
	}
	r = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	return r;
}

/*
 * Hashes, MACs, randomness, memory
 */

/* HMAC contexts per thread and digest ("SHA1", "SHA256"). */
static __thread struct {
	const char *md; /* the caller's digest name (a literal) */
	EVP_MAC_CTX *ctx;
} hmac_tl[2];

static void
crypto_hmac_drop(const char *md)
{
	size_t i;

	for (i = 0; i < sizeof(hmac_tl) / sizeof(hmac_tl[0]); i++) {
		if (md == NULL ||
		    (hmac_tl[i].md != NULL && strcmp(hmac_tl[i].md, md) == 0)) {
			EVP_MAC_CTX_free(hmac_tl[i].ctx);
			hmac_tl[i].ctx = NULL;
			hmac_tl[i].md = NULL;
		}
	}
}

static EVP_MAC_CTX *
crypto_hmac_ctx(const char *md)
{
	OSSL_PARAM params[2];
	EVP_MAC *mac;
	EVP_MAC_CTX *ctx;
	size_t i, slot = SIZE_MAX;

	for (i = 0; i < sizeof(hmac_tl) / sizeof(hmac_tl[0]); i++) {
		if (hmac_tl[i].md != NULL && strcmp(hmac_tl[i].md, md) == 0)
			return hmac_tl[i].ctx;
		if (hmac_tl[i].md == NULL && slot == SIZE_MAX)
			slot = i;
	}
	if (slot == SIZE_MAX ||
	    (mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL) {
		ERR_clear_error();
		return NULL;
	}
	ctx = EVP_MAC_CTX_new(mac);
	EVP_MAC_free(mac); /* the context keeps its own reference */
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						     (char *)md, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (ctx == NULL || EVP_MAC_CTX_set_params(ctx, params) != 1) {
		EVP_MAC_CTX_free(ctx);
		ERR_clear_error();
		return NULL;
	}
	hmac_tl[slot].md = md;
	hmac_tl[slot].ctx = ctx;
	return ctx;
}

static int
crypto_hmac(const char *md, const void *key, size_t key_len, const void *msg,
	    size_t msg_len, uint8_t *out, size_t out_size)
{
	static const uint8_t empty[1];
	EVP_MAC_CTX *ctx;
	size_t n = 0;

	if (out == NULL || (msg == NULL && msg_len != 0) ||
	    (key == NULL && key_len != 0))
		return CINDER_ERR_INVAL;
	/* The handshake's HMAC-SHA1 (and webhook signatures) reuse the
	   thread's context: EVP_Q_mac fetches HMAC and the digest per
	   call. An empty key keeps the one-shot way. */
	if (key_len > 0 && (ctx = crypto_hmac_ctx(md)) != NULL) {
		if (EVP_MAC_init(ctx, key, key_len, NULL) == 1 &&
		    EVP_MAC_update(ctx, msg ? msg : empty, msg_len) == 1 &&
		    EVP_MAC_final(ctx, out, &n, out_size) == 1 && n == out_size)
			return 0;
		crypto_hmac_drop(md);
		OPENSSL_cleanse(out, out_size);
		crypto_drain(LOG_LEVEL_ERR, "could not compute HMAC");
		return CINDER_ERR_CRYPTO;
	}
	if (EVP_Q_mac(NULL, "HMAC", NULL, md, NULL, key ? key : empty, key_len,
		      msg ? msg : empty, msg_len, out, out_size, &n) == NULL ||
	    n != out_size) {
		crypto_drain(LOG_LEVEL_ERR, "could not compute HMAC");
		return CINDER_ERR_CRYPTO;
	}
	return 0;
}

int
crypto_hmac_sha1(const void *key, size_t key_len, const void *msg,
		 size_t msg_len, uint8_t out[CRYPTO_HMAC_SHA1_LEN])
{
	return crypto_hmac("SHA1", key, key_len, msg, msg_len, out,
			   CRYPTO_HMAC_SHA1_LEN);
}

int
crypto_hmac_sha256(const void *key, size_t key_len, const void *msg,
		   size_t msg_len, uint8_t out[CRYPTO_SHA256_LEN])
{
	return crypto_hmac("SHA256", key, key_len, msg, msg_len, out,
			   CRYPTO_SHA256_LEN);
}

/*
 * SHA-256 hashes every REST request's token: the digest is fetched once
 * and each thread keeps one context, instead of EVP_Digest's implicit
 * fetch and context allocation per call (perf on bench/run B4).
 */
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_fetched; /* set once, never freed */
static __thread EVP_MD_CTX *sha256_tl_ctx;

static void
crypto_sha256_fetch(void)
{
	sha256_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
	ERR_clear_error();
}

static void
crypto_sha256_ctx_drop(void)
{
	EVP_MD_CTX_free(sha256_tl_ctx);
	sha256_tl_ctx = NULL;
}

int
crypto_sha256(const void *msg, size_t len, uint8_t out[CRYPTO_SHA256_LEN])
{
	static const uint8_t empty[1];
	const EVP_MD *md;
	unsigned int n = 0;

	if (out == NULL || (msg == NULL && len != 0))
		return CINDER_ERR_INVAL;
	pthread_once(&sha256_once, crypto_sha256_fetch);
	md = sha256_fetched != NULL ? sha256_fetched : EVP_sha256();
	if (sha256_tl_ctx == NULL)
		sha256_tl_ctx = EVP_MD_CTX_new();
	if (sha256_tl_ctx == NULL ||
	    EVP_DigestInit_ex2(sha256_tl_ctx, md, NULL) != 1 ||
	    EVP_DigestUpdate(sha256_tl_ctx, msg ? msg : empty, len) != 1 ||
	    EVP_DigestFinal_ex(sha256_tl_ctx, out, &n) != 1 ||
	    n != CRYPTO_SHA256_LEN) {
		crypto_drain(LOG_LEVEL_ERR, "could not compute SHA-256");
		crypto_sha256_ctx_drop();
		return CINDER_ERR_CRYPTO;
	}
	return 0;
}

int
crypto_random(void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t n;

	if (buf == NULL && len != 0)
		return CINDER_ERR_INVAL;
	while (len > 0) {
		n = len > INT_MAX ? INT_MAX : len;
		if (RAND_bytes(p, (int)n) != 1) {
			crypto_drain(LOG_LEVEL_ERR,
				     "could not get random bytes");
			return CINDER_ERR_CRYPTO;
		}
		p += n;
		len -= n;
	}
	return 0;
}

/* crypto_random_public()'s bytes: buf[off..CRYPTO_RANDBUF) not yet
   handed out (off == CRYPTO_RANDBUF: empty, as before the first fill) */
static __thread struct {
	uint8_t buf[CRYPTO_RANDBUF];
	size_t off;
} randbuf_tl = {.off = CRYPTO_RANDBUF};
static pthread_once_t randbuf_once = PTHREAD_ONCE_INIT;

static void
randbuf_drop(void)
{
	crypto_wipe(randbuf_tl.buf, sizeof(randbuf_tl.buf));
	randbuf_tl.off = CRYPTO_RANDBUF;
}

/* In the child of fork(), only the forking thread lives on, with a copy
   of its buffer: empty it, or the child would repeat the parent's bytes. */
static void
randbuf_atfork_child(void)
{
	randbuf_drop();
}

static void
randbuf_register(void)
{
	(void)pthread_atfork(NULL, NULL, randbuf_atfork_child);
}

int
crypto_random_public(void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t n;

	if (buf == NULL && len != 0)
		return CINDER_ERR_INVAL;
	if (len > CRYPTO_RANDBUF / 4)
		return crypto_random(buf, len);
	while (len > 0) {
		if (randbuf_tl.off == CRYPTO_RANDBUF) {
			(void)pthread_once(&randbuf_once, randbuf_register);
			if (crypto_random(randbuf_tl.buf,
					  sizeof(randbuf_tl.buf)) != 0)
				return CINDER_ERR_CRYPTO;
			randbuf_tl.off = 0;
		}
		n = CRYPTO_RANDBUF - randbuf_tl.off;
		if (n > len)
			n = len;
		memcpy(p, randbuf_tl.buf + randbuf_tl.off, n);
		crypto_wipe(randbuf_tl.buf + randbuf_tl.off, n);
		randbuf_tl.off += n;
		p += n;
		len -= n;
	}
	return 0;
}

bool
crypto_mem_eq(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

void
crypto_wipe(void *p, size_t n)
{
	if (p != NULL)
		OPENSSL_cleanse(p, n);
}

/*
 * Session channel
 */

static pthread_once_t aes_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *aes_fetched; /* set once, never freed */

static void
crypto_aes_fetch(void)
{
	aes_fetched = EVP_CIPHER_fetch(NULL, "AES-128-CBC", NULL);
	ERR_clear_error();
}

/* The explicitly fetched cipher avoids a provider lookup per message. */
static const EVP_CIPHER *
crypto_aes(void)
{
	pthread_once(&aes_once, crypto_aes_fetch);
	return aes_fetched != NULL ? aes_fetched : EVP_aes_128_cbc();
}

static pthread_once_t ecb_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *ecb_fetched; /* set once, never freed */

static void
crypto_ecb_fetch(void)
{
	ecb_fetched = EVP_CIPHER_fetch(NULL, "AES-128-ECB", NULL);
	ERR_clear_error();
}

void
crypto_channel_init(struct crypto_channel *ch,
		    const uint8_t session[CRYPTO_SESSION_LEN])
{
	ch->may_cache = false;
	ch->rx_n = 0;
	ch->rx_sec = 0;
	ch->rx_ecb = NULL;
	memcpy(ch->key, session, CRYPTO_AES_KEY_LEN);
	memcpy(ch->send_iv, session + 16, CRYPTO_AES_BLOCK);
	memcpy(ch->recv_iv, session + 16, CRYPTO_AES_BLOCK);
	memcpy(ch->salt, session + 32, sizeof(ch->salt));
}

void
crypto_channel_busy_cache(struct crypto_channel *ch)
{
	ch->may_cache = true;
}

void
crypto_channel_cleanup(struct crypto_channel *ch)
{
	if (ch == NULL)
		return;
	EVP_CIPHER_CTX_free(ch->rx_ecb);
	OPENSSL_cleanse(ch, sizeof(*ch));
}

/*
 * The channel's own ECB context once it is busy (NULL otherwise, or if it
 * cannot be made: the per-thread CBC path then serves). The rate is
 * counted on the coarse clock (the last tick, no TSC read).
 */
static EVP_CIPHER_CTX *
channel_ecb(struct crypto_channel *ch)
{
	struct timespec ts;
	EVP_CIPHER_CTX *ctx;

	if (ch->rx_ecb != NULL || !ch->may_cache)
		return ch->rx_ecb;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	if ((uint32_t)ts.tv_sec != ch->rx_sec) {
		ch->rx_sec = (uint32_t)ts.tv_sec;
		ch->rx_n = 0;
	}
	if (++ch->rx_n < CRYPTO_BUSY_PER_S)
		return NULL;
	pthread_once(&ecb_once, crypto_ecb_fetch);
	if (ecb_fetched == NULL || (ctx = EVP_CIPHER_CTX_new()) == NULL)
		return NULL;
	if (EVP_CipherInit_ex2(ctx, ecb_fetched, ch->key, NULL, 0, NULL) != 1 ||
	    EVP_CIPHER_CTX_set_padding(ctx, 0) != 1) {
		crypto_drain(LOG_LEVEL_ERR, "could not key a channel context");
		EVP_CIPHER_CTX_free(ctx);
		ch->may_cache = false; /* do not retry per message */
		return NULL;
	}
	ch->rx_ecb = ctx;
	return ctx;
}

size_t
crypto_channel_sealed_len(size_t len)
{
	return (len & ~(size_t)(CRYPTO_AES_BLOCK - 1)) + CRYPTO_AES_BLOCK;
}

/*
 * One cipher context per thread and direction, made once and re-keyed per
 * message (EVP_*Init_ex2 with a NULL cipher keeps the provider context):
 * no allocation, no provider lookup and no locks on the message path
 * (perf showed the per-message context setup as a third of cinderd's CPU
 * on publish -> SSE). Every call sets the key and IV of its own session,
 * so nothing carries over from one session to the next; a context that
 * failed is dropped and made again.
 */
static __thread EVP_CIPHER_CTX *aes_tl_ctx[2]; /* [0] seal, [1] open */

static EVP_CIPHER_CTX *
crypto_aes_ctx(int open)
{
	EVP_CIPHER_CTX *ctx = aes_tl_ctx[open];

	if (ctx != NULL)
		return ctx;
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
		return NULL;
	if (EVP_CipherInit_ex2(ctx, crypto_aes(), NULL, NULL, !open, NULL) !=
		    1 ||
	    EVP_CIPHER_CTX_set_padding(ctx, !open) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		return NULL;
	}
	aes_tl_ctx[open] = ctx;
	return ctx;
}

static void
crypto_aes_ctx_drop(int open)
{
	EVP_CIPHER_CTX_free(aes_tl_ctx[open]);
	aes_tl_ctx[open] = NULL;
}

void
crypto_thread_cleanup(void)
{
	crypto_aes_ctx_drop(0);
	crypto_aes_ctx_drop(1);
	crypto_sha256_ctx_drop();
	crypto_pk_drop(PK_DECRYPT);
	crypto_pk_drop(PK_SIGN);
	EVP_PKEY_CTX_free(rsa_import_ctx);
	rsa_import_ctx = NULL;
	crypto_hmac_drop(NULL);
	randbuf_drop();
}

int
crypto_channel_seal(struct crypto_channel *ch, const uint8_t *in, size_t len,
		    uint8_t *out, size_t cap, size_t *out_len)
{
	EVP_CIPHER_CTX *ctx = NULL;
	size_t need;
	int n1 = 0, n2 = 0, r = CINDER_ERR_INTERNAL;

	if (out_len != NULL)
		*out_len = 0;
	if (ch == NULL || (in == NULL && len != 0) || out == NULL ||
	    out_len == NULL)
		return CINDER_ERR_INVAL;
	if (len > INT_MAX - CRYPTO_AES_BLOCK)
		return CINDER_ERR_TOO_BIG;
	need = crypto_channel_sealed_len(len);
	if (cap < need)
		return CINDER_ERR_TOO_BIG;
	if ((ctx = crypto_aes_ctx(0)) == NULL ||
	    EVP_EncryptInit_ex2(ctx, NULL, ch->key, ch->send_iv, NULL) != 1 ||
	    EVP_EncryptUpdate(ctx, out, &n1, in, (int)len) != 1 ||
	    EVP_EncryptFinal_ex(ctx, out + n1, &n2) != 1 ||
	    (size_t)n1 + (size_t)n2 != need) {
		crypto_drain(LOG_LEVEL_ERR, "could not encrypt message");
		crypto_aes_ctx_drop(0);
		OPENSSL_cleanse(out, cap);
		r = CINDER_ERR_CRYPTO;
		goto out;
	}
	/* §1.4: the next IV is the FIRST ciphertext block, not the last. */
	memcpy(ch->send_iv, out, CRYPTO_AES_BLOCK);
	*out_len = need;
	r = 0;
out:
	return r;
}

int
crypto_channel_open(struct crypto_channel *ch, const uint8_t *in, size_t len,
		    uint8_t *out, size_t cap, size_t *out_len)
{
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned pad, bad, i, v, in_pad;
	int n1 = 0, n2 = 0, r = CINDER_ERR_INTERNAL;

	if (out_len != NULL)
		*out_len = 0;
	if (ch == NULL || in == NULL || out == NULL || out_len == NULL)
		return CINDER_ERR_INVAL;
	if (len == 0 || len % CRYPTO_AES_BLOCK != 0)
		return CINDER_ERR_INVAL;
	if (len > INT_MAX)
		return CINDER_ERR_TOO_BIG;
	if (cap < len)
		return CINDER_ERR_TOO_BIG;
	/* Padding is checked below so that every pad byte is verified. */
	if ((out + len <= in || in + len <= out) &&
	    (ctx = channel_ecb(ch)) != NULL) {
		/* CBC by hand on the keyed ECB context: P[i] = D(C[i]) xor
		   C[i-1], with the IV before C[0]; no setup per message */
		const uint8_t *prev = ch->recv_iv;
		size_t b, k;

		if (EVP_DecryptUpdate(ctx, out, &n1, in, (int)len) != 1 ||
		    (size_t)n1 != len) {
			crypto_drain(LOG_LEVEL_ERR,
				     "could not decrypt message");
			r = CINDER_ERR_CRYPTO;
			goto out;
		}
		for (b = 0; b < len; b += CRYPTO_AES_BLOCK) {
			for (k = 0; k < CRYPTO_AES_BLOCK; k++)
				out[b + k] ^= prev[k];
			prev = in + b;
		}
	} else if ((ctx = crypto_aes_ctx(1)) == NULL ||
		   EVP_DecryptInit_ex2(ctx, NULL, ch->key, ch->recv_iv, NULL) !=
			   1 ||
		   EVP_DecryptUpdate(ctx, out, &n1, in, (int)len) != 1 ||
		   EVP_DecryptFinal_ex(ctx, out + n1, &n2) != 1 ||
		   (size_t)n1 + (size_t)n2 != len) {
		crypto_drain(LOG_LEVEL_ERR, "could not decrypt message");
		crypto_aes_ctx_drop(1);
		r = CINDER_ERR_CRYPTO;
		goto out;
	}
	/* PKCS#7, checked without data-dependent branches. */
	pad = out[len - 1];
	bad = (unsigned)(pad == 0) | (unsigned)(pad > CRYPTO_AES_BLOCK);
	for (i = 0; i < CRYPTO_AES_BLOCK; i++) {
		v = out[len - 1 - i];
		in_pad = (unsigned)(i < pad);
		bad |= in_pad & (unsigned)(v != pad);
	}
	if (bad) {
		r = CINDER_ERR_CRYPTO;
		goto out;
	}
	memcpy(ch->recv_iv, in, CRYPTO_AES_BLOCK);
	*out_len = len - pad;
	r = 0;
out:
	if (r != 0)
		OPENSSL_cleanse(out, cap < len ? cap : len);
	return r;
}

/*
 * Handshake
 */

int
crypto_handshake_step2_parse(const uint8_t nonce[CRYPTO_NONCE_LEN],
			     const uint8_t *plain, size_t len,
			     struct crypto_step2 *out)
{
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (nonce == NULL || plain == NULL || out == NULL)
		return CINDER_ERR_INVAL;
	if (len < CRYPTO_STEP2_MIN_PLAIN || len > CRYPTO_STEP2_MAX_PLAIN)
		return CINDER_ERR_CRYPTO;
	if (CRYPTO_memcmp(plain, nonce, CRYPTO_NONCE_LEN) != 0)
		return CINDER_ERR_CRYPTO;
	memcpy(out->device_id, plain + CRYPTO_NONCE_LEN, CRYPTO_DEVICE_ID_LEN);
	out->key_der_len = len - CRYPTO_STEP2_MIN_PLAIN;
	memcpy(out->key_der, plain + CRYPTO_STEP2_MIN_PLAIN, out->key_der_len);
	return 0;
}

int
crypto_handshake_step2_open(const struct crypto_key *server,
			    const uint8_t nonce[CRYPTO_NONCE_LEN],
			    const uint8_t *block, size_t block_len,
			    struct crypto_step2 *out)
{
	uint8_t plain[CRYPTO_STEP2_LEN];
	size_t n = 0;
	int r = CINDER_ERR_INTERNAL;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (server == NULL || nonce == NULL || block == NULL || out == NULL)
		return CINDER_ERR_INVAL;
	if (block_len != CRYPTO_STEP2_LEN ||
	    crypto_key_size(server) != CRYPTO_STEP2_LEN)
		return CINDER_ERR_INVAL;
	if ((r = crypto_rsa_decrypt(server, block, block_len, plain,
				    sizeof(plain), &n)) != 0)
		goto out;
	r = crypto_handshake_step2_parse(nonce, plain, n, out);
out:
	if (r != 0)
		memset(out, 0, sizeof(*out));
	OPENSSL_cleanse(plain, sizeof(plain));
	return r;
}

int
crypto_handshake_step3_build(const struct crypto_key *server,
			     const struct crypto_key *device,
			     const uint8_t session[CRYPTO_SESSION_LEN],
			     uint8_t out[CRYPTO_STEP3_LEN])
{
	uint8_t mac[CRYPTO_HMAC_SHA1_LEN];
	size_t n = 0;
	int r = CINDER_ERR_INTERNAL;

	if (server == NULL || device == NULL || session == NULL || out == NULL)
		return CINDER_ERR_INVAL;
	if (crypto_key_size(device) != CRYPTO_STEP3_CT_LEN ||
	    crypto_key_size(server) != CRYPTO_STEP3_LEN - CRYPTO_STEP3_CT_LEN)
		return CINDER_ERR_INVAL;
	if ((r = crypto_rsa_encrypt(device, session, CRYPTO_SESSION_LEN, out,
				    CRYPTO_STEP3_CT_LEN, &n)) != 0)
		goto out;
	if ((r = crypto_hmac_sha1(session, CRYPTO_SESSION_LEN, out,
				  CRYPTO_STEP3_CT_LEN, mac)) != 0)
		goto out;
	if ((r = crypto_rsa_sign_raw(
		     server, mac, sizeof(mac), out + CRYPTO_STEP3_CT_LEN,
		     CRYPTO_STEP3_LEN - CRYPTO_STEP3_CT_LEN, &n)) != 0)
		goto out;
	r = 0;
out:
	if (r != 0)
		OPENSSL_cleanse(out, CRYPTO_STEP3_LEN);
	OPENSSL_cleanse(mac, sizeof(mac));
	return r;
}

int
crypto_handshake_step2_build(const struct crypto_key *server_pub,
			     const uint8_t nonce[CRYPTO_NONCE_LEN],
			     const uint8_t device_id[CRYPTO_DEVICE_ID_LEN],
			     const uint8_t *der, size_t der_len,
			     uint8_t out[CRYPTO_STEP2_LEN])
{
	uint8_t plain[CRYPTO_STEP2_MAX_PLAIN];
	size_t n = 0;
	int r;

	if (server_pub == NULL || nonce == NULL || device_id == NULL ||
	    out == NULL || (der == NULL && der_len != 0) ||
	    der_len > CRYPTO_STEP2_KEY_MAX)
		return CINDER_ERR_INVAL;
	if (crypto_key_size(server_pub) != CRYPTO_STEP2_LEN)
		return CINDER_ERR_INVAL;
	memcpy(plain, nonce, CRYPTO_NONCE_LEN);
	memcpy(plain + CRYPTO_NONCE_LEN, device_id, CRYPTO_DEVICE_ID_LEN);
	if (der_len != 0)
		memcpy(plain + CRYPTO_STEP2_MIN_PLAIN, der, der_len);
	r = crypto_rsa_encrypt(server_pub, plain,
			       CRYPTO_STEP2_MIN_PLAIN + der_len, out,
			       CRYPTO_STEP2_LEN, &n);
	OPENSSL_cleanse(plain, sizeof(plain));
	return r;
}

int
crypto_handshake_step3_open(const struct crypto_key *device,
			    const struct crypto_key *server_pub,
			    const uint8_t *block, size_t block_len,
			    uint8_t session[CRYPTO_SESSION_LEN])
{
	uint8_t plain[CRYPTO_STEP3_CT_LEN];
	uint8_t mac[CRYPTO_HMAC_SHA1_LEN];
	size_t n = 0;
	int r = CINDER_ERR_INTERNAL;

	if (session != NULL)
		memset(session, 0, CRYPTO_SESSION_LEN);
	if (device == NULL || server_pub == NULL || block == NULL ||
	    session == NULL)
		return CINDER_ERR_INVAL;
	if (block_len != CRYPTO_STEP3_LEN ||
	    crypto_key_size(device) != CRYPTO_STEP3_CT_LEN ||
	    crypto_key_size(server_pub) !=
		    CRYPTO_STEP3_LEN - CRYPTO_STEP3_CT_LEN)
		return CINDER_ERR_INVAL;
	if ((r = crypto_rsa_decrypt(device, block, CRYPTO_STEP3_CT_LEN, plain,
				    sizeof(plain), &n)) != 0)
		goto out;
	if (n != CRYPTO_SESSION_LEN) {
		r = CINDER_ERR_CRYPTO;
		goto out;
	}
	if ((r = crypto_hmac_sha1(plain, CRYPTO_SESSION_LEN, block,
				  CRYPTO_STEP3_CT_LEN, mac)) != 0)
		goto out;
	if ((r = crypto_rsa_verify_raw(
		     server_pub, mac, sizeof(mac), block + CRYPTO_STEP3_CT_LEN,
		     CRYPTO_STEP3_LEN - CRYPTO_STEP3_CT_LEN)) != 0)
		goto out;
	memcpy(session, plain, CRYPTO_SESSION_LEN);
	r = 0;
out:
	OPENSSL_cleanse(plain, sizeof(plain));
	OPENSSL_cleanse(mac, sizeof(mac));
	return r;
}

/*
 * Passwords
 */

#define PW_SALT_LEN 16
#define PW_HASH_LEN 32
#define PW_PREFIX "$pbkdf2-sha256$"

static int
pbkdf2(const char *pw, const uint8_t *salt, size_t salt_len, unsigned iter,
       uint8_t out[PW_HASH_LEN])
{
	if (PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, (int)salt_len,
			      (int)iter, EVP_sha256(), PW_HASH_LEN, out) != 1) {
		crypto_drain(LOG_LEVEL_ERR, "pbkdf2");
		return CINDER_ERR_CRYPTO;
	}
	return 0;
}

int
crypto_password_hash(const char *password, char **out)
{
	uint8_t salt[PW_SALT_LEN], hash[PW_HASH_LEN];
	char salt64[4 * ((PW_SALT_LEN + 2) / 3) + 1];
	char hash64[4 * ((PW_HASH_LEN + 2) / 3) + 1];
	int r;

	*out = NULL;
	if (password == NULL || strlen(password) > CRYPTO_PASSWORD_MAX)
		return CINDER_ERR_INVAL;
	if ((r = crypto_random(salt, sizeof(salt))) != 0)
		return r;
	if ((r = pbkdf2(password, salt, sizeof(salt), CRYPTO_PBKDF2_ITER,
			hash)) != 0)
		return r;
	EVP_EncodeBlock((unsigned char *)salt64, salt, sizeof(salt));
	EVP_EncodeBlock((unsigned char *)hash64, hash, sizeof(hash));
	crypto_wipe(hash, sizeof(hash));
	*out = xasprintf(PW_PREFIX "%u$%s$%s", CRYPTO_PBKDF2_ITER, salt64,
			 hash64);
	return 0;
}

int
crypto_password_verify(const char *password, const char *stored)
{
	uint8_t salt[64], want[64], got[PW_HASH_LEN];
	const char *p, *d1, *d2;
	char *end;
	unsigned long iter;
	int n, r;

	if (password == NULL || stored == NULL ||
	    strlen(password) > CRYPTO_PASSWORD_MAX ||
	    strncmp(stored, PW_PREFIX, strlen(PW_PREFIX)) != 0)
		return CINDER_ERR_INVAL;
	p = stored + strlen(PW_PREFIX);
	/* strtoul would accept spaces, signs and "-1" (as ULONG_MAX). */
	if (*p < '1' || *p > '9')
		return CINDER_ERR_INVAL;
	iter = strtoul(p, &end, 10);
	if (end == p || *end != '$' || iter < 1000 || iter > 10000000)
		return CINDER_ERR_INVAL;
	d1 = end + 1;
	if ((d2 = strchr(d1, '$')) == NULL || d2 - d1 != 24 ||
	    strlen(d2 + 1) != 44)
		return CINDER_ERR_INVAL;
	/* 24 base64 chars = 18 bytes with 2 of padding; 44 = 33 with 1. */
	n = EVP_DecodeBlock(salt, (const unsigned char *)d1, 24);
	if (n != 18)
		return CINDER_ERR_INVAL;
	n = EVP_DecodeBlock(want, (const unsigned char *)(d2 + 1), 44);
	if (n != 33)
		return CINDER_ERR_INVAL;
	if ((r = pbkdf2(password, salt, PW_SALT_LEN, (unsigned)iter, got)) != 0)
		return r;
	r = CRYPTO_memcmp(got, want, PW_HASH_LEN) == 0 ? 0 : CINDER_ERR_AUTH;
	crypto_wipe(got, sizeof(got));
	return r;
}
