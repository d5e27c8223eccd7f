// Workload identity federation with real clients: an OIDC issuer of the test's own (HTTPS on
// 127.0.0.1, a certificate from a test CA that the badge server is told to trust) signs a
// Kubernetes-style service-account token; @azure/identity's WorkloadIdentityCredential (the token
// in a file, as AZURE_FEDERATED_TOKEN_FILE gives it) and ClientAssertionCredential exchange it at
// badge for tokens of a user-assigned identity.
// Usage: node workload-identity.mjs issuer PORT DIR   (serves until killed)
//        node workload-identity.mjs client DIR        (environment: the server's env file plus
//                                                       AUTHORITY, UAI_CLIENT_ID, UAI_PRINCIPAL_ID)
import * as jose from "jose";
import https from "node:https";
import { readFileSync, writeFileSync, renameSync } from "node:fs";

function fail(msg) {
  console.error("FAIL: " + msg);
  process.exit(1);
}

const [step, a1, a2] = process.argv.slice(2);

if (step === "issuer") {
  const port = Number(a1), dir = a2, issuer = `https://127.0.0.1:${port}`;
  const { publicKey, privateKey } = await jose.generateKeyPair("RS256", { extractable: true });
  const pub = { ...(await jose.exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" };
  const priv = { ...(await jose.exportJWK(privateKey)), kid: "k1", alg: "RS256" };
  const server = https.createServer(
    { key: readFileSync(`${dir}/issuer.key`), cert: readFileSync(`${dir}/issuer.crt`) },
    (req, res) => {
      const send = (o) => { res.writeHead(200, { "content-type": "application/json" }); res.end(JSON.stringify(o)); };
      if (req.url === "/.well-known/openid-configuration")
        send({ issuer, jwks_uri: `${issuer}/openid/v1/jwks`, response_types_supported: ["id_token"],
               subject_types_supported: ["public"], id_token_signing_alg_values_supported: ["RS256"] });
      else if (req.url === "/openid/v1/jwks") send({ keys: [pub] });
      else { res.writeHead(404); res.end(); }
    });
  server.listen(port, "127.0.0.1", () => {
    writeFileSync(`${dir}/issuer-key.tmp`, JSON.stringify({ issuer, priv }));
    renameSync(`${dir}/issuer-key.tmp`, `${dir}/issuer-key.json`); // ready
  });
} else if (step === "client") {
  const { WorkloadIdentityCredential, ClientAssertionCredential } = await import("@azure/identity");
  const dir = a1, env = process.env;
  const { issuer, priv } = JSON.parse(readFileSync(`${dir}/issuer-key.json`, "utf8"));
  const key = await jose.importJWK(priv, "RS256");
  const sa = async (sub, aud = "api://AzureADTokenExchange") =>
    new jose.SignJWT({ "kubernetes.io": { namespace: "apps", serviceaccount: { name: "web" } } })
      .setProtectedHeader({ alg: "RS256", kid: "k1" }).setIssuer(issuer).setSubject(sub).setAudience(aud)
      .setIssuedAt().setNotBefore("0s").setExpirationTime("10m").setJti(crypto.randomUUID()).sign(key);
  const opts = { authorityHost: env.AUTHORITY, disableInstanceDiscovery: true };
  const claims = (t) => JSON.parse(Buffer.from(t.split(".")[1], "base64url"));
  const mgmt = env.BADGE_MANAGEMENT_RESOURCE + ".default", vault = env.BADGE_VAULT_RESOURCE + "/.default";

  // the token file, as the kubelet projects it; one token serves both scopes
  const file = `${dir}/sa-token`;
  writeFileSync(file, await sa("system:serviceaccount:apps:web"));
  const wic = new WorkloadIdentityCredential({ tenantId: env.BADGE_TENANT_ID, clientId: env.UAI_CLIENT_ID,
                                               tokenFilePath: file, ...opts });
  for (const scope of [mgmt, vault]) {
    const t = await wic.getToken(scope);
    if (!t?.token) fail(`WorkloadIdentityCredential ${scope}: no token`);
    const c = claims(t.token);
    if (c.oid !== env.UAI_PRINCIPAL_ID) fail(`${scope}: oid ${c.oid}, want the identity's ${env.UAI_PRINCIPAL_ID}`);
    if (c.appid !== env.UAI_CLIENT_ID) fail(`${scope}: appid ${c.appid}`);
    console.log(`WorkloadIdentityCredential: token for ${scope} (oid ${c.oid})`);
  }

  // ClientAssertionCredential with the assertion from a callback
  const cac = new ClientAssertionCredential(env.BADGE_TENANT_ID, env.UAI_CLIENT_ID,
                                            () => sa("system:serviceaccount:apps:web"), opts);
  const t3 = await cac.getToken(mgmt);
  if (claims(t3.token).oid !== env.UAI_PRINCIPAL_ID) fail("ClientAssertionCredential: wrong oid");
  console.log("ClientAssertionCredential: token");

  // another service account of the same issuer has no federated credential: Entra's AADSTS70021
  const other = new ClientAssertionCredential(env.BADGE_TENANT_ID, env.UAI_CLIENT_ID,
                                              () => sa("system:serviceaccount:apps:other"), opts);
  try {
    await other.getToken(mgmt);
    fail("a subject without a federated credential got a token");
  } catch (e) {
    if (!String(e.message).includes("AADSTS70021")) fail("unmatched subject: " + e.message);
    console.log("unmatched subject: refused with AADSTS70021");
  }
  // a token for another audience is refused too
  const wrongAud = new ClientAssertionCredential(env.BADGE_TENANT_ID, env.UAI_CLIENT_ID,
                                                 () => sa("system:serviceaccount:apps:web", "api://other"), opts);
  try {
    await wrongAud.getToken(mgmt);
    fail("an assertion for another audience got a token");
  } catch (e) {
    if (!String(e.message).includes("AADSTS70021")) fail("wrong audience: " + e.message);
    console.log("wrong audience: refused with AADSTS70021");
  }
} else {
  fail("usage: workload-identity.mjs issuer PORT DIR | client DIR");
}
