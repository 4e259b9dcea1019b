/*
 * Cross-field checks: what no single key's type can say. Each runs after its
 * section was walked, sees which keys were given and which were refused, and
 * stays quiet about a value that was already refused, so that one mistake is
 * one message. Positions point at the value that has to change.
 */
#include "config/cfg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config/cfg_int.h"
#include "creds/iotcreds.h"
#include "topic/topic.h"

#define QBUF	200

static bool
addr_equal(const struct cfg_addr *a, const struct cfg_addr *b)
{
	if (a->family != b->family)
		return false;
	if (a->family == AF_UNIX)
		return strcmp(a->path, b->path) == 0;
	return a->port == b->port &&
	    memcmp(a->ip, b->ip, a->family == AF_INET ? 4 : 16) == 0;
}

/* 0.0.0.0:1883 holds the port on every IPv4 address: Linux refuses to bind
 * 127.0.0.1:1883 next to it. */
static bool
addr_overlap(const struct cfg_addr *a, const struct cfg_addr *b)
{
	static const uint8_t any[16];
	size_t n = a->family == AF_INET ? 4 : 16;

	if (a->family != b->family || a->family == AF_UNIX ||
	    a->port != b->port)
		return false;
	return memcmp(a->ip, any, n) == 0 || memcmp(b->ip, any, n) == 0;
}

static void
check_binds(const struct cfg_ctx *ctx, const struct cfg *cfg)
{
	const struct cfg_node *seq = cfg_given(ctx, "listeners"), *at;
	const struct cfg_keydef *kd = cfg_section_key(ctx->sec, "listeners", 9);
	const struct cfg_keydef *bind = &kd->sub->keys[0];
	char path[64], a[CFG_VALUE_BUF], b[CFG_VALUE_BUF];

	if (seq == NULL || seq->kind != CFG_N_SEQ)
		return;
	for (size_t j = 1; j < cfg->nlisteners && j < seq->nkids; j++) {
		const struct cfg_addr *aj = &cfg->listeners[j].bind;

		if (aj->family == AF_UNSPEC ||
		    (at = cfg_node_get(seq->kids[j], "bind")) == NULL)
			continue;
		for (size_t i = 0; i < j; i++) {
			const struct cfg_addr *ai = &cfg->listeners[i].bind;

			if (ai->family == AF_UNSPEC)
				continue;
			snprintf(path, sizeof(path), "listeners[%zu].bind", j);
			cfg_value_text(bind, &cfg->listeners[j], a, sizeof(a));
			cfg_value_text(bind, &cfg->listeners[i], b, sizeof(b));
			if (addr_equal(ai, aj)) {
				cfg_error(ctx->ld, at, path, "%s is already "
				    "listeners[%zu].bind (expected each address "
				    "once)", a, i);
				break;
			}
			if (addr_overlap(ai, aj)) {
				cfg_error(ctx->ld, at, path, "%s overlaps "
				    "listeners[%zu].bind %s (expected another "
				    "port: a wildcard address takes the port on "
				    "every address)", a, i, b);
				break;
			}
		}
	}
}

void
cfg_check_root(const struct cfg_ctx *ctx)
{
	const struct cfg *cfg = ctx->obj;
	const struct cfg_node *bridge = cfg_given(ctx, "bridge");
	size_t subs = 0;

	check_binds(ctx, cfg);
	if (!cfg->aws.present || bridge == NULL)
		return;
	for (size_t i = 0; i < cfg->nbridge; i++)
		subs += cfg->bridge[i].direction != CFG_DIR_OUT;
	if (subs > (size_t)cfg->aws.limits.max_subscriptions)
		cfg_error(ctx->ld, bridge, NULL, "%zu rules with direction in "
		    "or both, one AWS subscription each (expected at most "
		    "aws.limits.max_subscriptions, %lld)", subs,
		    (long long)cfg->aws.limits.max_subscriptions);
}

void
cfg_check_listener(const struct cfg_ctx *ctx)
{
	const struct cfg_listener *l = ctx->obj;
	const struct cfg_node *auth = cfg_given(ctx, "auth"), *anon;

	if (auth == NULL || l->auth.anonymous || l->auth.password_file ||
	    l->tls.client_ca || !cfg_usable(ctx, "auth") ||
	    !cfg_usable(ctx, "tls"))
		return;
	anon = cfg_node_get(auth, "anonymous");
	cfg_error(ctx->ld, anon ? anon : auth, "auth.anonymous", "false, and "
	    "neither auth.password_file nor tls.client_ca is set (expected a "
	    "way for clients to log in)");
}

/*
 * The device certificate and the transport: cert_file and key_file go
 * together; the mutual TLS transports and the credentials provider need
 * them. Without a transport given, a config that names SigV4 credentials
 * (a credentials section of another source) stays on wss as it was before
 * there were others; one with a certificate and no such credentials gets
 * auto.
 */
static void
check_transport(const struct cfg_ctx *ctx, struct cfg_aws *aws)
{
	const struct cfg_keydef *kd = cfg_section_key(ctx->sec, "transport", 9);
	const struct cfg_node *creds = cfg_given(ctx, "credentials");
	bool iot = aws->credentials.source == CFG_CRED_IOT;

	if (aws->cert_file != NULL && aws->key_file == NULL &&
	    cfg_usable(ctx, "cert_file"))
		cfg_error(ctx->ld, ctx->map, "key_file", "missing (required "
		    "with cert_file)");
	if (aws->key_file != NULL && aws->cert_file == NULL &&
	    cfg_usable(ctx, "key_file"))
		cfg_error(ctx->ld, ctx->map, "cert_file", "missing (required "
		    "with key_file)");
	if (!cfg_usable(ctx, "transport") || !cfg_usable(ctx, "credentials"))
		return;
	if (cfg_given(ctx, "transport") == NULL)
		aws->transport = aws->cert_file != NULL &&
		    (creds == NULL || iot) ? CFG_TRANSPORT_AUTO :
		    CFG_TRANSPORT_WSS;
	if (aws->cert_file != NULL || aws->key_file != NULL)
		return;
	if (aws->transport != CFG_TRANSPORT_WSS)
		cfg_error(ctx->ld, ctx->map, "cert_file", "missing (required "
		    "with transport: %s)", kd->values[aws->transport]);
	else if (iot)
		cfg_error(ctx->ld, ctx->map, "cert_file", "missing (required "
		    "with credentials.source: iot)");
}

void
cfg_check_aws(const struct cfg_ctx *ctx)
{
	struct cfg_aws *aws = ctx->obj;
	const struct cfg_node *region = cfg_given(ctx, "region");
	char derived[64], q[QBUF];

	check_transport(ctx, aws);
	if (aws->endpoint.host == NULL || !cfg_usable(ctx, "endpoint") ||
	    !cfg_usable(ctx, "region"))
		return;
	cfg_quote(aws->endpoint.host, strlen(aws->endpoint.host), q,
	    sizeof(q));
	if (!cfg_region_from_host(aws->endpoint.host, derived,
	    sizeof(derived))) {
		/* only SigV4 signs with it */
		if (region == NULL && (aws->transport == CFG_TRANSPORT_WSS ||
		    aws->transport == CFG_TRANSPORT_AUTO))
			cfg_error(ctx->ld, cfg_at(ctx, "endpoint"), "region",
			    "missing, and the endpoint %s does not name one "
			    "(expected region, such as eu-west-1)", q);
		return;
	}
	if (region == NULL) {
		if ((aws->region = strdup(derived)) == NULL)
			cfg_oom(ctx->ld);
		return;
	}
	if (strcmp(aws->region, derived) != 0)
		cfg_error(ctx->ld, region, "region", "%s differs from the "
		    "endpoint's %s (expected %s, or no region)", aws->region,
		    derived, derived);
}

/* Keys that belong to one source: missing with it, refused with another. */
static const struct {
	const char		*key;
	enum cfg_cred_source	 source;
	bool			 required;
	bool			 secret;
} source_keys[] = {
	{ "access_key_id", CFG_CRED_STATIC, true, true },
	{ "secret_access_key", CFG_CRED_STATIC, true, true },
	{ "session_token", CFG_CRED_STATIC, false, true },
	{ "endpoint", CFG_CRED_IOT, true, false },
	{ "role_alias", CFG_CRED_IOT, true, false },
	{ "thing_name", CFG_CRED_IOT, true, false },
};

/* The credentials provider's names as AWS defines them (lib/creds). */
static void
check_iot_names(const struct cfg_ctx *ctx, const struct cfg_credentials *c)
{
	if (c->endpoint.host != NULL && cfg_usable(ctx, "endpoint") &&
	    !iotcreds_host_ok(c->endpoint.host))
		cfg_error(ctx->ld, cfg_at(ctx, "endpoint"), "endpoint", "not a "
		    "DNS name (expected the credentials endpoint, aws iot "
		    "describe-endpoint --endpoint-type iot:CredentialProvider)");
	if (c->role_alias != NULL && cfg_usable(ctx, "role_alias") &&
	    !iotcreds_role_alias_ok(c->role_alias))
		cfg_error(ctx->ld, cfg_at(ctx, "role_alias"), "role_alias",
		    "has a character a role alias cannot have (expected "
		    "A-Z a-z 0-9 _ = , @ -)");
	if (c->thing_name != NULL && cfg_usable(ctx, "thing_name") &&
	    !iotcreds_thing_name_ok(c->thing_name))
		cfg_error(ctx->ld, cfg_at(ctx, "thing_name"), "thing_name",
		    "has a character a thing name cannot have (expected "
		    "A-Z a-z 0-9 : _ -)");
}

void
cfg_check_credentials(const struct cfg_ctx *ctx)
{
	const struct cfg_credentials *c = ctx->obj;
	const struct cfg_keydef *kd = cfg_section_key(ctx->sec, "source", 6);
	const struct cfg_node *v;

	if (!cfg_usable(ctx, "source"))
		return;
	for (size_t i = 0; i < sizeof(source_keys) / sizeof(source_keys[0]);
	    i++) {
		v = cfg_given(ctx, source_keys[i].key);
		if (c->source == source_keys[i].source &&
		    source_keys[i].required && v == NULL)
			cfg_error(ctx->ld, ctx->map, source_keys[i].key,
			    "missing (required with source: %s)",
			    kd->values[c->source]);
		if (c->source != source_keys[i].source && v != NULL)
			cfg_error(ctx->ld, v, source_keys[i].key, "given with "
			    "source: %s (expected only with source: %s%s)",
			    kd->values[c->source],
			    kd->values[source_keys[i].source],
			    source_keys[i].secret ? "; value hidden" : "");
	}
	if (c->source == CFG_CRED_IOT)
		check_iot_names(ctx, c);
}

void
cfg_check_proxy(const struct cfg_ctx *ctx)
{
	const struct cfg_node *user = cfg_given(ctx, "username");
	const struct cfg_node *pass = cfg_given(ctx, "password");

	if (user != NULL && pass == NULL)
		cfg_error(ctx->ld, ctx->map, "password", "missing (required "
		    "with username)");
	if (pass != NULL && user == NULL)
		cfg_error(ctx->ld, ctx->map, "username", "missing (required "
		    "with password)");
}

void
cfg_check_reconnect(const struct cfg_ctx *ctx)
{
	const struct cfg_reconnect *r = ctx->obj;
	char base[32], max[32];

	if (r->base_ms <= r->max_ms || !cfg_usable(ctx, "base") ||
	    !cfg_usable(ctx, "max"))
		return;
	cfg_fmt_duration(r->base_ms, base, sizeof(base));
	cfg_fmt_duration(r->max_ms, max, sizeof(max));
	cfg_error(ctx->ld, cfg_at(ctx, "base"), "base", "%s is more than "
	    "reconnect.max %s (expected base <= max)", base, max);
}

void
cfg_check_queue(const struct cfg_ctx *ctx)
{
	const struct cfg_queue *q = ctx->obj;
	char seg[32], max[32];
	const char *key;

	if (q->segment_size <= q->max_bytes ||
	    !cfg_usable(ctx, "segment_size") || !cfg_usable(ctx, "max_bytes"))
		return;
	cfg_fmt_size(q->segment_size, seg, sizeof(seg));
	cfg_fmt_size(q->max_bytes, max, sizeof(max));
	key = cfg_given(ctx, "segment_size") ? "segment_size" : "max_bytes";
	cfg_error(ctx->ld, cfg_at(ctx, key), key, "segment_size %s is more "
	    "than max_bytes %s (expected segment_size <= max_bytes)", seg,
	    max);
}

/* "gw01" + "#" is "gw01#": a prefix is glued to the filter as is. */
static void
check_prefixed(const struct cfg_ctx *ctx, const char *key,
    const char *prefix, const char *topic)
{
	size_t plen = strlen(prefix), tlen = strlen(topic);
	char qp[QBUF], qt[QBUF], *joined;
	enum topic_status ts;

	if (plen == 0 || !cfg_usable(ctx, key))
		return;
	if ((joined = malloc(plen + tlen + 1)) == NULL) {
		cfg_oom(ctx->ld);
		return;
	}
	memcpy(joined, prefix, plen);
	memcpy(joined + plen, topic, tlen + 1);
	ts = topic_filter_check(joined, plen + tlen);
	free(joined);
	if (ts == TOPIC_OK)
		return;
	cfg_quote(prefix, plen, qp, sizeof(qp));
	cfg_quote(topic, tlen, qt, sizeof(qt));
	if (ts == TOPIC_TOO_LONG)
		cfg_error(ctx->ld, cfg_at(ctx, key), key, "%s + topic %s is "
		    "too long (expected at most %d bytes together)", qp, qt,
		    TOPIC_MAX_LEN);
	else
		cfg_error(ctx->ld, cfg_at(ctx, key), key, "%s + topic %s is "
		    "not a valid topic filter (expected a prefix ending in /, "
		    "such as gw01/)", qp, qt);
}

void
cfg_check_bridge(const struct cfg_ctx *ctx)
{
	const struct cfg_bridge_rule *b = ctx->obj;

	if (b->topic == NULL || !cfg_usable(ctx, "topic"))
		return;
	check_prefixed(ctx, "local_prefix", b->local_prefix, b->topic);
	check_prefixed(ctx, "remote_prefix", b->remote_prefix, b->topic);
}
