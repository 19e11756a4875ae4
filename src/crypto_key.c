/* SPDX-License-Identifier: MIT */
/*
 * RSA keys and their encodings: reading, decoding and checking private and
 * public keys (PEM or DER; PKCS#1, PKCS#8, SPKI, with a hand-read fast
 * path for the strict RSA SPKI devices send and the database holds), the
 * server key's checks and generation (cinderd keygen), the public half as
 * DER or PEM and the conversions between them, duplication, comparison.
 * OpenSSL errors go through crypto_drain() (crypto.c).
 */
#include "config.h"

#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
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
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "crypto.h"
#include "crypto_int.h"
#include "err.h"
#include "log.h"
#include "xmalloc.h"

/* The fixed 33-byte prefix of a 2048-bit, e = 65537 SPKI (§2.1). */
static const uint8_t server_spki_head[33] = {
	0x30, 0x82, 0x01, 0x22, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48,
	0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00, 0x03, 0x82, 0x01,
	0x0f, 0x00, 0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00,
};
static const uint8_t spki_e65537[5] = {0x02, 0x03, 0x01, 0x00, 0x01};

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

/* This file's share of crypto_thread_cleanup(). */
void
crypto_rsa_import_drop(void)
{
	EVP_PKEY_CTX_free(rsa_import_ctx);
	rsa_import_ctx = NULL;
}

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
 * The same for "PUBLIC KEY" PEM of the usual form (the API's and the
 * CLI's keys, a stored key read back): crypto_spki_pem_body() undoes the
 * base64, the DER goes the hand-read way. NULL sends it the generic way.
 */
static EVP_PKEY *
crypto_spki_pem_rsa(const void *buf, size_t len, int *bits)
{
	uint8_t der[CRYPTO_PUB_DER_MAX];
	size_t dlen = crypto_spki_pem_body(buf, len, der, sizeof(der));

	return dlen == 0 ? NULL : crypto_spki_der_rsa(der, dlen, bits);
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

/* A base64 digit's value (RFC 4648 §4), or -1. */
static int
b64_digit(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

/* A line end at *pp (LF or CRLF), stepped over. */
static bool
pem_eol(const char **pp, const char *end)
{
	const char *p = *pp;

	if (p < end && *p == '\r')
		p++;
	if (p >= end || *p != '\n')
		return false;
	*pp = p + 1;
	return true;
}

/*
 * The body of a "PUBLIC KEY" PEM written as crypto_key_public_pem() (and
 * OpenSSL) writes it: the header line, lines of base64 digits with "="
 * padding only at the very end and no bits left over, the footer line,
 * then nothing but line ends. PEM in any other form (headers, another
 * label, spaces, a comment before it) is not taken here.
 * @return the DER's length in out (at most cap), or 0: not that form.
 */
size_t
crypto_spki_pem_body(const char *pem, size_t len, uint8_t *out, size_t cap)
{
	static const char head[] = "-----BEGIN PUBLIC KEY-----",
			  foot[] = "-----END PUBLIC KEY-----";
	const size_t hl = sizeof(head) - 1, fl = sizeof(foot) - 1;
	const char *p = pem, *end = pem + len, *line;
	uint32_t acc = 0;
	size_t n = 0, digits = 0, pad = 0;
	int v;

	if (len < hl || memcmp(p, head, hl) != 0)
		return 0;
	p += hl;
	for (;;) {
		if (!pem_eol(&p, end))
			return 0;
		if ((size_t)(end - p) >= fl && memcmp(p, foot, fl) == 0)
			break;
		if (pad > 0)
			return 0; /* padding ends the last line */
		for (line = p; p < end && *p != '\r' && *p != '\n'; p++) {
			if (*p == '=') {
				if (++pad > 2)
					return 0;
				continue;
			}
			if (pad > 0 || (v = b64_digit((unsigned char)*p)) < 0)
				return 0;
			acc = acc << 6 | (uint32_t)v;
			if (++digits % 4 != 0)
				continue;
			if (cap - n < 3)
				return 0;
			out[n++] = (uint8_t)(acc >> 16);
			out[n++] = (uint8_t)(acc >> 8);
			out[n++] = (uint8_t)acc;
			acc = 0;
		}
		if (p == line)
			return 0; /* an empty line */
	}
	for (p += fl; p < end && (*p == '\r' || *p == '\n'); p++)
		;
	if (p != end || (digits + pad) % 4 != 0)
		return 0;
	if (pad == 2) { /* 12 bits: one byte and four zero bits */
		if ((acc & 0xf) != 0 || cap - n < 1)
			return 0;
		out[n++] = (uint8_t)(acc >> 4);
	} else if (pad == 1) { /* 18 bits: two bytes and two zero bits */
		if ((acc & 0x3) != 0 || cap - n < 2)
			return 0;
		out[n++] = (uint8_t)(acc >> 10);
		out[n++] = (uint8_t)(acc >> 2);
	}
	return n;
}

/*
 * A strict RSA SPKI in "PUBLIC KEY" PEM of the usual form is already the
 * DER that i2d_PUBKEY would write: undo the base64 and check it.
 * PEM_read_bio did it in ~22k instructions a handshake (a BIO, line reads,
 * EVP_DecodeUpdate; callgrind of B1's loop thread), this in a few k.
 * @return 0 with the DER copied out, CINDER_ERR_TOO_BIG, or 1: not that
 *     form, take the generic way
 */
static int
crypto_spki_pem_der(const char *pem, size_t pem_len, uint8_t *der, size_t cap,
		    size_t *lenp)
{
	uint8_t d[CRYPTO_PUB_DER_MAX];
	const uint8_t *n;
	size_t dlen, nl;
	int bits;

	if (pem == NULL ||
	    (dlen = crypto_spki_pem_body(pem, pem_len, d, sizeof(d))) == 0 ||
	    !crypto_spki_der_rsa_check(d, dlen, &n, &nl, &bits) ||
	    bits < 1024 || bits > 2048)
		return 1;
	if (dlen > cap)
		return CINDER_ERR_TOO_BIG;
	memcpy(der, d, dlen);
	*lenp = dlen;
	return 0;
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
	/* the usual form without OpenSSL's decoders (OpenSSL 3.0 builds an
	   encoder chain per call for i2d_PUBKEY) */
	if ((r = crypto_spki_pem_der(pem, pem_len, der, cap, len)) <= 0)
		return r;
	if ((r = crypto_pubkey_parse(pem, pem_len, &k)) == 0)
		r = crypto_key_public_der(k, der, cap, len);
	crypto_key_free(k);
	return r;
}
