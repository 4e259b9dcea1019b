/*
 * The one place that knows mbedTLS 2.28 (Debian 12) from 3.6 (Debian 13).
 * Everything else calls these instead of the few functions whose names,
 * arguments or defaults changed between them, and reads no structure field
 * that 3.x made private. meson.build admits 2.28.x and 3.6.1 and later 3.x.
 *
 * What differs, and how it is bridged:
 *  - hashes: 2.28's int-returning functions end in _ret; 3.x's do not.
 *  - PBKDF2: 3.x deprecates the md-context form for _ext, which 2.28 lacks.
 *  - keys: 3.x's key parsing and pair check take an RNG (blinding).
 *  - protocol versions: 3.x sets them as one number (0x0303, 0x0304);
 *    2.28 as major/minor pairs. TLS 1.3 exists when the library was built
 *    with MBEDTLS_SSL_PROTO_TLS1_3 (Debian 13's is): then it is offered,
 *    TLS 1.2 stays the minimum.
 *  - TLS 1.3 tickets arrive after the handshake; a 3.6 client only reports
 *    them (MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) when asked to.
 *  - PSA crypto: 3.6 does TLS 1.3 through PSA, which must be initialised
 *    once per process before any TLS or crypto use.
 *  - 3.6.6 offers RSA-PSS signatures when it offers TLS 1.3, then refuses
 *    them when the server answers TLS 1.2 (fixed upstream after 3.6.6); a
 *    client offering TLS 1.2 only does not offer them.
 * Header only: static inline functions, no state.
 */
#ifndef IOTB_MBEDCOMPAT_H
#define IOTB_MBEDCOMPAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mbedtls/version.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <mbedtls/pkcs5.h>
#include <mbedtls/sha1.h>
#include <mbedtls/sha256.h>
#include <mbedtls/ssl.h>

#if MBEDTLS_VERSION_MAJOR >= 3
#include <psa/crypto.h>
#define MBEDCOMPAT_3X		1
#else
#define MBEDCOMPAT_3X		0
#endif

#if MBEDCOMPAT_3X && defined(MBEDTLS_SSL_PROTO_TLS1_3)
#define MBEDCOMPAT_TLS13	1
#else
#define MBEDCOMPAT_TLS13	0
#endif

/* --- process start and end ------------------------------------------------ */

/*
 * Call once at start-up, before any TLS or crypto use (3.x: psa_crypto_init).
 * Returns 0, or the library's nonzero status (then nothing TLS will work).
 */
static inline int
mbedcompat_crypto_init(void)
{
#if MBEDCOMPAT_3X
	psa_status_t st = psa_crypto_init();

	return st == PSA_SUCCESS ? 0 : (int)st;
#else
	return 0;
#endif
}

/* What mbedcompat_crypto_init() allocated; for atexit(). */
static inline void
mbedcompat_crypto_free(void)
{
#if MBEDCOMPAT_3X
	mbedtls_psa_crypto_free();
#endif
}

/* --- hashes and key derivation (lib/) -------------------------------------- */

static inline int
mbedcompat_sha256_starts(mbedtls_sha256_context *ctx)
{
#if MBEDCOMPAT_3X
	return mbedtls_sha256_starts(ctx, 0);
#else
	return mbedtls_sha256_starts_ret(ctx, 0);
#endif
}

static inline int
mbedcompat_sha256_update(mbedtls_sha256_context *ctx, const void *p,
    size_t n)
{
#if MBEDCOMPAT_3X
	return mbedtls_sha256_update(ctx, p, n);
#else
	return mbedtls_sha256_update_ret(ctx, p, n);
#endif
}

static inline int
mbedcompat_sha256_finish(mbedtls_sha256_context *ctx, unsigned char out[32])
{
#if MBEDCOMPAT_3X
	return mbedtls_sha256_finish(ctx, out);
#else
	return mbedtls_sha256_finish_ret(ctx, out);
#endif
}

static inline int
mbedcompat_sha1(const void *p, size_t n, unsigned char out[20])
{
#if MBEDCOMPAT_3X
	return mbedtls_sha1(p, n, out);
#else
	return mbedtls_sha1_ret(p, n, out);
#endif
}

/* PBKDF2-HMAC-SHA512 of pw and salt into out (outlen bytes). The HMAC state
 * is wiped by the library on both versions. Returns 0 or an mbedTLS error. */
static inline int
mbedcompat_pbkdf2_sha512(const void *pw, size_t pwlen, const void *salt,
    size_t saltlen, uint32_t iterations, void *out, uint32_t outlen)
{
#if MBEDCOMPAT_3X
	return mbedtls_pkcs5_pbkdf2_hmac_ext(MBEDTLS_MD_SHA512, pw, pwlen, salt,
	    saltlen, iterations, outlen, out);
#else
	mbedtls_md_context_t md;
	int rc;

	mbedtls_md_init(&md);
	rc = mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA512),
	    1);
	if (rc == 0)
		rc = mbedtls_pkcs5_pbkdf2_hmac(&md, pw, pwlen, salt, saltlen,
		    iterations, outlen, out);
	mbedtls_md_free(&md);	/* zeroizes the HMAC pads */
	return rc;
#endif
}

/* --- keys and TLS (daemon/util/tls.c) ------------------------------------------- */

typedef int (*mbedcompat_rng_cb)(void *, unsigned char *, size_t);

/* An unencrypted PEM or DER private key from path. */
static inline int
mbedcompat_pk_parse_keyfile(mbedtls_pk_context *pk, const char *path,
    mbedcompat_rng_cb f_rng, void *p_rng)
{
#if MBEDCOMPAT_3X
	return mbedtls_pk_parse_keyfile(pk, path, NULL, f_rng, p_rng);
#else
	return mbedtls_pk_parse_keyfile(pk, path, NULL);
#endif
}

static inline int
mbedcompat_pk_check_pair(const mbedtls_pk_context *pub,
    const mbedtls_pk_context *prv, mbedcompat_rng_cb f_rng, void *p_rng)
{
#if MBEDCOMPAT_3X
	return mbedtls_pk_check_pair(pub, prv, f_rng, p_rng);
#else
	return mbedtls_pk_check_pair(pub, prv);
#endif
}

/* TLS 1.2 at least; TLS 1.3 too when the library has it. */
static inline void
mbedcompat_ssl_conf_versions(mbedtls_ssl_config *conf)
{
#if MBEDCOMPAT_3X
	mbedtls_ssl_conf_min_tls_version(conf, MBEDTLS_SSL_VERSION_TLS1_2);
	mbedtls_ssl_conf_max_tls_version(conf, MBEDCOMPAT_TLS13 ?
	    MBEDTLS_SSL_VERSION_TLS1_3 : MBEDTLS_SSL_VERSION_TLS1_2);
#else
	mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3,
	    MBEDTLS_SSL_MINOR_VERSION_3);
#endif
}

/* TLS 1.2 only: an old peer, for tests. */
static inline void
mbedcompat_ssl_conf_tls12_only(mbedtls_ssl_config *conf)
{
#if MBEDCOMPAT_3X
	mbedtls_ssl_conf_min_tls_version(conf, MBEDTLS_SSL_VERSION_TLS1_2);
	mbedtls_ssl_conf_max_tls_version(conf, MBEDTLS_SSL_VERSION_TLS1_2);
#else
	mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3,
	    MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_max_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3,
	    MBEDTLS_SSL_MINOR_VERSION_3);
#endif
}

/* Client: session tickets, TLS 1.2's in the handshake and TLS 1.3's after
 * it (then reported by mbedcompat_ssl_is_new_ticket()). */
static inline void
mbedcompat_ssl_conf_client_tickets(mbedtls_ssl_config *conf)
{
	mbedtls_ssl_conf_session_tickets(conf,
	    MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
#if MBEDCOMPAT_TLS13
	mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets(conf,
	    MBEDTLS_SSL_TLS1_3_SIGNAL_NEW_SESSION_TICKETS_ENABLED);
#endif
}

/* Did mbedtls_ssl_read() return because a TLS 1.3 ticket came? The ticket
 * can then be exported with mbedtls_ssl_get_session() and reading goes on. */
static inline bool
mbedcompat_ssl_is_new_ticket(int ret)
{
#if MBEDCOMPAT_TLS13
	return ret == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET;
#else
	(void)ret;
	return false;
#endif
}

/*
 * Did a client's handshake that offered TLS 1.3 fail because the server
 * answered TLS 1.2 and signed with RSA-PSS, which 3.6.6 offered and then
 * refused? Then that server can be reached by offering TLS 1.2 only.
 */
static inline bool
mbedcompat_ssl_needs_tls12_only(const mbedtls_ssl_context *ssl, int ret)
{
#if MBEDCOMPAT_TLS13
	return ret == MBEDTLS_ERR_SSL_ILLEGAL_PARAMETER &&
	    mbedtls_ssl_get_version_number(ssl) == MBEDTLS_SSL_VERSION_TLS1_2;
#else
	(void)ssl;
	(void)ret;
	return false;
#endif
}

/* Is the connection (handshake far enough to know) TLS 1.3? */
static inline bool
mbedcompat_ssl_is_tls13(const mbedtls_ssl_context *ssl)
{
#if MBEDCOMPAT_TLS13
	return mbedtls_ssl_get_version_number(ssl) ==
	    MBEDTLS_SSL_VERSION_TLS1_3;
#else
	(void)ssl;
	return false;
#endif
}

#endif
