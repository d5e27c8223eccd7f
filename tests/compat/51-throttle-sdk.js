// @azure/keyvault-secrets SecretClient against a vault limited to 2 secret transactions per 10 s:
// every call must succeed, the throttled ones after the SDK waited the server's Retry-After.
// Environment: the server's env file plus CLIENT_ID, CLIENT_SECRET, VAULT_URL.
"use strict";
const { ClientSecretCredential } = require("@azure/identity");
const { SecretClient } = require("@azure/keyvault-secrets");

const env = process.env;
const cred = new ClientSecretCredential(env.BADGE_TENANT_ID, env.CLIENT_ID, env.CLIENT_SECRET,
  { authorityHost: env.BADGE_LOGIN_URL, disableInstanceDiscovery: true });

let statuses = [];
const client = new SecretClient(env.VAULT_URL, cred, {
  additionalPolicies: [{
    position: "perRetry",
    policy: {
      name: "record-status",
      async sendRequest(req, next) {
        const res = await next(req);
        statuses.push({ status: res.status, retryAfter: res.headers.get("retry-after") });
        return res;
      },
    },
  }],
});

function fail(msg) {
  console.error("FAIL: " + msg);
  process.exit(1);
}

(async () => {
  const t0 = Date.now();
  await client.setSecret("s1", "v1");
  for (let i = 0; i < 3; i++) {
    const s = await client.getSecret("s1");
    if (s.value !== "v1") fail(`get ${i}: value ${s.value}`);
  }
  const elapsed = Date.now() - t0;
  const throttled = statuses.filter((s) => s.status === 429);
  if (throttled.length < 2) fail(`expected 429s, saw ${JSON.stringify(statuses)}`);
  for (const t of throttled)
    if (!/^[1-9][0-9]*$/.test(t.retryAfter || "")) fail(`429 without a Retry-After in seconds: ${t.retryAfter}`);
  // 2 per 10 s: the 3rd and 4th transactions wait about 5 s each
  if (elapsed < 8000) fail(`finished in ${elapsed} ms: the client did not wait for Retry-After`);
  console.log(`ok: ${statuses.length} responses, ${throttled.length} throttled, ${elapsed} ms`);
})().catch((e) => fail(`${e.statusCode || ""} ${e.code || ""} ${e.message}`));
