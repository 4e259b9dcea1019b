/*
 * The TLS stream as it is: what the session sends goes into TLS unframed,
 * and what TLS brings up is the stream. That is MQTT over mutual TLS, AWS
 * IoT's "mqtts" on port 8883 and "mqtts-alpn" on 443 (the same, with the
 * ALPN protocol x-amzn-mqtt-ca, which tells AWS's 443 that MQTT follows
 * rather than HTTP), and it is the credentials provider's HTTPS exchange,
 * whose payload is one HTTP request and its answer (credfetch.c). The
 * client certificate is in the TLS context the shared steps use; nothing is
 * signed, so no clock is involved here.
 */
#include "daemon/aws/transport_impl.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#define RAW_ALPN	"x-amzn-mqtt-ca"
/* AWS takes the certificate in the handshake and may still close at once:
 * an inactive certificate, a policy without iot:Connect, MQTT on 443
 * without the ALPN. */
#define RAW_CHECK	"check that the certificate is active and its " \
			"policy allows iot:Connect for this client id"

struct raw {
	struct evbuffer	*stream;	/* the bytes for the session */
};

static void *
raw_create(struct transport *t, const struct cfg *cfg)
{
	struct raw *r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	if ((r->stream = evbuffer_new()) == NULL) {
		free(r);
		return NULL;
	}
	return r;
}

/* What the session left unread may be a secret (an answer of the
 * credentials provider): wiped, not just dropped. */
static void
raw_reset(void *st)
{
	struct raw *r = st;

	transport_wipe(r->stream);
}

static void
raw_destroy(void *st)
{
	struct raw *r = st;

	raw_reset(r);
	evbuffer_free(r->stream);
	free(r);
}

static bool
raw_differs(const struct cfg *a, const struct cfg *b)
{
	return false;		/* nothing of the config is its own */
}

/* Nothing to say first. A server that ignored the ALPN we offered is no
 * AWS IoT 443 that will take MQTT (a TLS-inspecting middlebox, most
 * likely): better to say so now than to see the connection close later. */
static void
raw_handshake(struct transport *t, void *st, struct evbuffer *wire)
{
	const char *want = transport_alpn_offered(t), *got;

	if (want != NULL && ((got = transport_alpn(t)) == NULL ||
	    strcmp(got, want) != 0)) {
		transport_fail(t, TRANSPORT_FAILED, "TLS: the server did not "
		    "take ALPN %s (a proxy or firewall that inspects TLS?)",
		    want);
		return;
	}
	(void)transport_opened(t);
}

/* The chains move, no byte is copied: the session reads them where TLS
 * put them. */
static void
raw_input(struct transport *t, void *st, struct evbuffer *in,
    struct evbuffer *out)
{
	struct raw *r = st;
	size_t n = evbuffer_get_length(in);

	if (evbuffer_add_buffer(r->stream, in) != 0) {
		transport_fail(t, TRANSPORT_LOST, "out of memory");
		return;
	}
	transport_count(t, n, 0);
	transport_deliver(t, r->stream);
}

static int
raw_send(struct transport *t, void *st, struct evbuffer *wire,
    const void *head, size_t hlen, const void *body, size_t blen)
{
	/* room first: all of it goes, or nothing */
	if (evbuffer_expand(wire, hlen + blen) != 0 ||
	    (hlen > 0 && evbuffer_add(wire, head, hlen) != 0) ||
	    (blen > 0 && evbuffer_add(wire, body, blen) != 0))
		return -1;
	transport_count(t, 0, hlen + blen);
	return 0;
}

static int64_t
raw_clock_offset(const void *st)
{
	return 0;
}

#define RAW_IMPL(name, proto, check)					\
	{								\
		.kind = (name),						\
		.alpn = (proto),					\
		.closed_early = (check),				\
		.create = raw_create,					\
		.destroy = raw_destroy,					\
		.differs = raw_differs,					\
		.handshake = raw_handshake,				\
		.input = raw_input,					\
		.send = raw_send,					\
		.reset = raw_reset,					\
		.clock_offset = raw_clock_offset,			\
	}

const struct transport_impl transport_mqtts = RAW_IMPL("mqtts", NULL,
    RAW_CHECK "; AWS's port 443 takes MQTT only with ALPN (transport "
    "mqtts-alpn)");
const struct transport_impl transport_mqtts_alpn = RAW_IMPL("mqtts-alpn",
    RAW_ALPN, RAW_CHECK);
const struct transport_impl transport_https = RAW_IMPL("https", NULL, NULL);
