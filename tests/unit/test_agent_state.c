/* Certificate renewal points: half-way between the time a certificate reached the host and its
 * expiry, not between its notBefore (backdated by the CA) and its expiry. Uses a real CA and an
 * injected clock. */
#include <stdlib.h>
#include <string.h>
#include "agent/agentint.h"
#include "core/pki.h"
#include "core/util.h"
#include "test.h"

static int64_t fake_now;
static int64_t fake_clock(void *ctx)
{
	(void)ctx;
	return fake_now;
}

/* A certificate with the given lifetime from a fresh CA, issued at the real time. */
static void issue(int64_t lifetime, char **out)
{
	struct bc_error err = {0};
	struct bc_ca *ca = NULL;
	struct bc_jwk *key = NULL;
	struct bc_buf csr = {0}, cert = {0};
	char dir[] = "/tmp/badge-test-agent-state.XXXXXX";
	REQUIRE(mkdtemp(dir) != NULL);
	REQUIRE(bc_ca_load_or_create(dir, "test ca", &ca, &err) == BC_OK);
	REQUIRE(bc_jwk_generate(&key, "EC", 256, &err) == BC_OK);
	REQUIRE(bc_csr_create(key, "id", &csr, &err) == BC_OK);
	REQUIRE(bc_ca_sign_csr(ca, bc_buf_cstr(&csr), csr.len, "id", lifetime, &cert, &err) == BC_OK);
	*out = strdup(bc_buf_cstr(&cert));
	bc_buf_release(&csr);
	bc_buf_release(&cert);
	bc_jwk_free(key);
	bc_ca_free(ca);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	REQUIRE(system(cmd) == 0);
}

TEST(renewal_is_half_way_from_issue_not_from_backdated_not_before)
{
	struct bc_error err = {0};
	struct agent_cred c = {0};
	int64_t t0 = bc_now();
	char *pem = NULL;
	issue(20, &pem);
	REQUIRE(pem != NULL);
	fake_now = t0;
	bc_clock_set(fake_clock, NULL);
	REQUIRE(agent_cred_set_cert(&c, pem, &err) == BC_OK);
	bc_clock_set(NULL, NULL);
	CHECK(c.not_before < t0 - 60);               /* the CA backdates */
	CHECK(c.not_after >= t0 + 19 && c.not_after <= t0 + 21);
	CHECK_EQ_INT(c.issued_at, t0);
	int64_t r = agent_cred_renew_at(&c);
	CHECK(r >= t0 + 9 && r <= t0 + 11);           /* half of 20 s after issue */
	CHECK(r < c.not_after);
	agent_cred_release(&c);
	free(pem);
}

TEST(issue_time_is_clamped_into_the_validity)
{
	struct bc_error err = {0};
	struct agent_cred c = {0};
	char *pem = NULL;
	issue(20, &pem);
	REQUIRE(pem != NULL);
	fake_now = bc_now() + 3600; /* a clock far ahead: the issue time cannot pass notAfter */
	bc_clock_set(fake_clock, NULL);
	REQUIRE(agent_cred_set_cert(&c, pem, &err) == BC_OK);
	bc_clock_set(NULL, NULL);
	CHECK_EQ_INT(c.issued_at, c.not_after);
	CHECK_EQ_INT(agent_cred_renew_at(&c), c.not_after);
	agent_cred_release(&c);
	struct agent_cred none = {0};
	CHECK_EQ_INT(agent_cred_renew_at(&none), 0); /* no certificate: due now */
	free(pem);
}

TEST_MAIN(T(renewal_is_half_way_from_issue_not_from_backdated_not_before), T(issue_time_is_clamped_into_the_validity))
