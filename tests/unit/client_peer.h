/* A scripted HTTP peer for libbadge's unit tests: one bc_http server with a plain listener (the
 * managed-identity endpoints) and an HTTPS listener (vault and directory, certificate for
 * localhost, *.vault.localhost and 127.0.0.1 from a throwaway CA). Every request is recorded;
 * answers come from two queues (identity endpoints: paths under /metadata or /msi; everything
 * else), the last entry of a queue repeating once the queue is spent. Plus a fake clock whose
 * sleep advances it and records each delay. Include once per test program. */
#ifndef BADGE_CLIENT_PEER_H
#define BADGE_CLIENT_PEER_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/http.h"
#include "core/pki.h"
#include "core/util.h"

/* answers are written positionally, {status, body}: the rest is zero on purpose */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#define PEER_MAX 128

struct peer_answer {
	int status;
	const char *body;
	const char *hname, *hvalue; /* one extra response header, may be NULL */
	int delay_ms;               /* hold the answer (to make threads overlap) */
	const char *hname2, *hvalue2, *hname3, *hvalue3; /* more headers, may be NULL */
};

struct peer_rec {
	char method[8];
	char target[1024];
	char metadata[32], identity_header[64], authorization[4096], content_length[16];
	char body[8192];
	int tls;
};

struct peer {
	struct bc_http_server *srv;
	int port, tls_port;
	char dir[64];
	char ca_file[128];
	pthread_mutex_t mu;
	struct peer_answer mi[PEER_MAX], other[PEER_MAX];
	size_t nmi, nother, next_mi, next_other;
	struct peer_rec rec[PEER_MAX];
	size_t nrec;
};

static inline void peer_copy(char *dst, size_t n, const char *s)
{
	snprintf(dst, n, "%s", s ? s : "");
}

static inline void peer_handle(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct peer *p = ctx;
	bool mi = strncmp(req->path, "/metadata", 9) == 0 || strncmp(req->path, "/msi", 4) == 0;
	struct peer_answer a = {.status = 599, .body = "{}"};
	pthread_mutex_lock(&p->mu);
	if (p->nrec < PEER_MAX) {
		struct peer_rec *r = &p->rec[p->nrec++];
		peer_copy(r->method, sizeof(r->method), req->method);
		peer_copy(r->target, sizeof(r->target), req->raw_target);
		peer_copy(r->metadata, sizeof(r->metadata), bc_http_header(req, "Metadata"));
		peer_copy(r->identity_header, sizeof(r->identity_header),
			  bc_http_header(req, "X-IDENTITY-HEADER"));
		peer_copy(r->authorization, sizeof(r->authorization), bc_http_header(req, "Authorization"));
		peer_copy(r->content_length, sizeof(r->content_length),
			  bc_http_header(req, "Content-Length"));
		peer_copy(r->body, sizeof(r->body), req->body);
		r->tls = req->listener_tag;
	}
	if (mi && p->nmi)
		a = p->mi[p->next_mi < p->nmi ? p->next_mi++ : p->nmi - 1];
	else if (!mi && p->nother)
		a = p->other[p->next_other < p->nother ? p->next_other++ : p->nother - 1];
	pthread_mutex_unlock(&p->mu);
	if (a.delay_ms)
		usleep((useconds_t)a.delay_ms * 1000); /* overlap for the thread tests, not a wait for time */
	json_t *j = NULL;
	if (a.body && *a.body)
		j = json_loads(a.body, 0, NULL);
	bc_http_res_json(res, a.status, j);
	if (a.hname)
		(void)bc_http_res_header(res, a.hname, a.hvalue);
	if (a.hname2)
		(void)bc_http_res_header(res, a.hname2, a.hvalue2);
	if (a.hname3)
		(void)bc_http_res_header(res, a.hname3, a.hvalue3);
}

static inline void peer_reset(struct peer *p)
{
	pthread_mutex_lock(&p->mu);
	p->nmi = p->nother = p->next_mi = p->next_other = p->nrec = 0;
	pthread_mutex_unlock(&p->mu);
}

static inline void peer_mi(struct peer *p, struct peer_answer a)
{
	pthread_mutex_lock(&p->mu);
	if (p->nmi < PEER_MAX)
		p->mi[p->nmi++] = a;
	pthread_mutex_unlock(&p->mu);
}

static inline void peer_other(struct peer *p, struct peer_answer a)
{
	pthread_mutex_lock(&p->mu);
	if (p->nother < PEER_MAX)
		p->other[p->nother++] = a;
	pthread_mutex_unlock(&p->mu);
}

static inline size_t peer_count(struct peer *p)
{
	pthread_mutex_lock(&p->mu);
	size_t n = p->nrec;
	pthread_mutex_unlock(&p->mu);
	return n;
}

static inline int peer_start(struct peer *p)
{
	struct bc_error err = {0};
	struct bc_ca *ca = NULL;
	struct bc_buf cert = {0}, key = {0};
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	snprintf(p->dir, sizeof(p->dir), "/tmp/badge-client-test.XXXXXX");
	if (!mkdtemp(p->dir))
		return -1;
	const char *names[] = {"localhost", "*.vault.localhost", "127.0.0.1"};
	if (bc_ca_load_or_create(p->dir, "libbadge test CA", &ca, &err) != BC_OK ||
	    bc_ca_issue_server(ca, names, 3, 1, &cert, &key, &err) != BC_OK) {
		fprintf(stderr, "peer: %s\n", err.msg);
		bc_ca_free(ca);
		return -1;
	}
	snprintf(p->ca_file, sizeof(p->ca_file), "%s/ca.pem", p->dir);
	p->srv = bc_http_server_new();
	bc_http_set_fallback(p->srv, peer_handle, p);
	struct bc_http_listener plain = {.address = "127.0.0.1:0", .fd = -1, .threads = 8, .tag = 0};
	struct bc_http_listener tls = {.address = "127.0.0.1:0",
				       .fd = -1,
				       .threads = 4,
				       .tag = 1,
				       .tls_cert_pem = bc_buf_cstr(&cert),
				       .tls_key_pem = bc_buf_cstr(&key)};
	int rc = bc_http_listen(p->srv, &plain, &p->port, &err) == BC_OK &&
				 bc_http_listen(p->srv, &tls, &p->tls_port, &err) == BC_OK
			 ? 0
			 : -1;
	if (rc)
		fprintf(stderr, "peer: %s\n", err.msg);
	bc_buf_wipe(&key);
	bc_buf_release(&cert);
	bc_ca_free(ca);
	return rc;
}

static inline void peer_stop(struct peer *p)
{
	bc_http_server_stop(p->srv);
	bc_http_server_free(p->srv);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "peer: could not remove %s\n", p->dir);
	pthread_mutex_destroy(&p->mu);
}

/* ---- the fake clock ---- */

struct fake_clock {
	int64_t now_ms;
	int64_t sleeps[64];
	size_t nsleeps;
	pthread_mutex_t mu;
};

static inline int64_t fake_now(void *ctx)
{
	struct fake_clock *c = ctx;
	pthread_mutex_lock(&c->mu);
	int64_t n = c->now_ms;
	pthread_mutex_unlock(&c->mu);
	return n;
}

static inline void fake_sleep(void *ctx, int64_t ms)
{
	struct fake_clock *c = ctx;
	pthread_mutex_lock(&c->mu);
	if (c->nsleeps < 64)
		c->sleeps[c->nsleeps++] = ms;
	c->now_ms += ms;
	pthread_mutex_unlock(&c->mu);
}

static inline void fake_init(struct fake_clock *c, int64_t now_s)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->mu, NULL);
	c->now_ms = now_s * 1000;
}

static inline void fake_advance(struct fake_clock *c, int64_t s)
{
	pthread_mutex_lock(&c->mu);
	c->now_ms += s * 1000;
	pthread_mutex_unlock(&c->mu);
}

#endif
