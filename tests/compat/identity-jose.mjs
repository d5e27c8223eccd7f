// Real clients against badge's directory: @azure/identity's ClientSecretCredential and
// ClientCertificateCredential obtain tokens from badge (authority host = badge over HTTPS), and
// jose verifies them through badge's OpenID configuration and JWKS, before and after a rotation.
// Usage: node identity-jose.mjs <step> ; environment from the server's env file plus
// SECRET_CLIENT_ID, SECRET_VALUE, CERT_CLIENT_ID, CERT_PEM_FILE, AUTHORITY, TOKENS_FILE.
import { ClientSecretCredential, ClientCertificateCredential } from "@azure/identity";
import * as jose from "jose";
import { readFileSync, writeFileSync, existsSync } from "node:fs";

const env = process.env;
const tenant = env.BADGE_TENANT_ID;
const resource = env.BADGE_MANAGEMENT_RESOURCE;
const opts = { authorityHost: env.AUTHORITY, disableInstanceDiscovery: true };

function fail(msg) {
  console.error("FAIL: " + msg);
  process.exit(1);
}

async function discovery(version) {
  const path = version === 2 ? `/${tenant}/v2.0/.well-known/openid-configuration`
                             : `/${tenant}/.well-known/openid-configuration`;
  const res = await fetch(env.AUTHORITY + path);
  if (res.status !== 200) fail(`openid configuration: HTTP ${res.status}`);
  return res.json();
}

async function verify(token, label, jwks) {
  const cfg = await discovery(1);
  const set = jwks ?? jose.createRemoteJWKSet(new URL(cfg.jwks_uri));
  const { payload, protectedHeader } = await jose.jwtVerify(token, set, {
    issuer: cfg.issuer, audience: resource, algorithms: ["RS256"],
  });
  if (payload.tid !== tenant) fail(`${label}: tid ${payload.tid}`);
  if (payload.ver !== "1.0") fail(`${label}: ver ${payload.ver}`);
  for (const c of ["aud", "iss", "iat", "nbf", "exp", "appid", "appidacr", "idp", "idtyp", "oid", "sub", "tid", "uti", "ver"])
    if (!(c in payload)) fail(`${label}: claim ${c} missing`);
  // a token for another audience is refused by the same verifier
  try {
    await jose.jwtVerify(token, set, { issuer: cfg.issuer, audience: "https://other.example/" });
    fail(`${label}: verified with a wrong audience`);
  } catch (e) {
    if (e.code !== "ERR_JWT_CLAIM_VALIDATION_FAILED") throw e;
  }
  console.log(`${label}: verified by jose (kid ${protectedHeader.kid}, appidacr ${payload.appidacr})`);
  return { kid: protectedHeader.kid, payload };
}

async function tokens() {
  const scope = resource + ".default";
  const sc = new ClientSecretCredential(tenant, env.SECRET_CLIENT_ID, env.SECRET_VALUE, opts);
  const t1 = await sc.getToken(scope);
  if (!t1?.token || !(t1.expiresOnTimestamp > Date.now())) fail("ClientSecretCredential: no usable token");
  const cc = new ClientCertificateCredential(tenant, env.CERT_CLIENT_ID, { certificatePath: env.CERT_PEM_FILE }, opts);
  const t2 = await cc.getToken(scope);
  if (!t2?.token) fail("ClientCertificateCredential: no token");
  // the v2 discovery document is what MSAL used; check its shape too
  const v2 = await discovery(2);
  if (!v2.issuer.endsWith("/v2.0") || !v2.token_endpoint.endsWith("/oauth2/v2.0/token")) fail("v2 discovery shape");
  return [t1.token, t2.token];
}

const step = process.argv[2];
if (step === "before") {
  const [a, b] = await tokens();
  const va = await verify(a, "ClientSecretCredential");
  const vb = await verify(b, "ClientCertificateCredential");
  if (va.payload.appidacr !== "1" || vb.payload.appidacr !== "2") fail("appidacr should be 1 (secret) and 2 (certificate)");
  if (va.kid !== vb.kid) fail("one signing key expected before rotation");
  writeFileSync(env.TOKENS_FILE, JSON.stringify({ old: a, kid: va.kid }));
  // a wrong secret is refused with Entra's error
  try {
    await new ClientSecretCredential(tenant, env.SECRET_CLIENT_ID, "wrong-secret", opts).getToken(resource + ".default");
    fail("a wrong secret got a token");
  } catch (e) {
    if (!String(e.message).includes("AADSTS7000215")) fail("wrong secret: unexpected error " + e.message);
    console.log("wrong secret: refused with AADSTS7000215");
  }
} else if (step === "after") {
  if (!existsSync(env.TOKENS_FILE)) fail("run 'before' first");
  const saved = JSON.parse(readFileSync(env.TOKENS_FILE, "utf8"));
  const [a, b] = await tokens();
  const va = await verify(a, "ClientSecretCredential after rotation");
  await verify(b, "ClientCertificateCredential after rotation");
  if (va.kid === saved.kid) fail("the new key should sign after the rotation");
  // the token signed by the old key still verifies: the old key stays published
  await verify(saved.old, "token signed before the rotation");
  const cfg = await discovery(1);
  const keys = (await (await fetch(cfg.jwks_uri)).json()).keys;
  if (!keys.some((k) => k.kid === saved.kid) || !keys.some((k) => k.kid === va.kid)) fail("JWKS should hold both keys");
  if (keys.some((k) => "d" in k || "p" in k)) fail("JWKS holds private members");
  console.log(`rotation: ${saved.kid} -> ${va.kid}, both published`);
} else {
  fail("usage: identity-jose.mjs before|after");
}
