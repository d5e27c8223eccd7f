// Real Key Vault clients against badge's vault: @azure/keyvault-secrets SecretClient,
// @azure/keyvault-keys KeyClient and CryptographyClient, every operation, with the challenge
// flow and ClientSecretCredential. Environment: the server's env file plus CLIENT_ID,
// CLIENT_SECRET, VAULT_URL (https://NAME.vault.D:P).
"use strict";
const { ClientSecretCredential } = require("@azure/identity");
const { SecretClient } = require("@azure/keyvault-secrets");
const { KeyClient, CryptographyClient } = require("@azure/keyvault-keys");
const { createHash, generateKeyPairSync, verify: cverify } = require("node:crypto");

const env = process.env;
const cred = new ClientSecretCredential(env.BADGE_TENANT_ID, env.CLIENT_ID, env.CLIENT_SECRET,
  { authorityHost: env.BADGE_LOGIN_URL, disableInstanceDiscovery: true });
const vaultUrl = env.VAULT_URL;
const poll = { intervalInMs: 50 };
let checks = 0;

function fail(msg) {
  console.error("FAIL: " + msg);
  process.exit(1);
}
function ok(cond, msg) {
  if (!cond) fail(msg);
  checks++;
}
async function rejects(p, status, code, msg) {
  try {
    await p;
  } catch (e) {
    ok(e.statusCode === status, `${msg}: status ${e.statusCode} (${e.message})`);
    if (code) ok(e.code === code, `${msg}: code ${e.code}`);
    return;
  }
  fail(`${msg}: did not fail`);
}
async function all(iter) {
  const out = [];
  for await (const x of iter) out.push(x);
  return out;
}

async function secrets() {
  const sc = new SecretClient(vaultUrl, cred);
  const s1 = await sc.setSecret("js-s1", "value-1", { tags: { a: "b" }, contentType: "text/plain",
    expiresOn: new Date("2035-01-01T00:00:00Z") });
  ok(s1.value === "value-1" && s1.properties.version.length === 32, "setSecret");
  ok(s1.properties.id.startsWith(vaultUrl + "/secrets/js-s1/"), `id ${s1.properties.id}`);
  ok(s1.properties.recoveryLevel === "Recoverable+Purgeable" && s1.properties.recoverableDays === 90, "recovery");
  const g = await sc.getSecret("js-s1");
  ok(g.value === "value-1" && g.properties.tags.a === "b" && g.properties.contentType === "text/plain", "getSecret");
  ok(g.properties.expiresOn.getTime() === Date.parse("2035-01-01T00:00:00Z"), "expiresOn");
  const s2 = await sc.setSecret("js-s1", "value-2");
  const gv = await sc.getSecret("js-s1", { version: s1.properties.version });
  ok(gv.value === "value-1", "getSecret by version");
  ok((await sc.getSecret("js-s1")).value === "value-2", "latest");
  const up = await sc.updateSecretProperties("js-s1", s1.properties.version, { enabled: false, tags: { c: "d" } });
  ok(up.enabled === false && up.tags.c === "d", "updateSecretProperties");
  await rejects(sc.getSecret("js-s1", { version: s1.properties.version }), 403, "Forbidden", "disabled version");
  const up2 = await sc.updateSecretProperties("js-s1", "", { contentType: "application/json" });
  ok(up2.version === s2.properties.version && up2.contentType === "application/json", "update latest via empty version");

  for (let i = 0; i < 5; i++) await sc.setSecret(`js-page-${i}`, `p${i}`);
  let pages = 0, items = 0;
  for await (const page of sc.listPropertiesOfSecrets().byPage({ maxPageSize: 2 })) {
    pages++;
    items += page.length;
    ok(page.length <= 2, "page size");
  }
  ok(pages >= 3 && items >= 6, `paging: ${pages} pages, ${items} items`);
  const versions = await all(sc.listPropertiesOfSecretVersions("js-s1"));
  ok(versions.length === 2, "listPropertiesOfSecretVersions");

  const del = await (await sc.beginDeleteSecret("js-page-0", poll)).pollUntilDone();
  ok(del.name === "js-page-0" && del.recoveryId.endsWith("/deletedsecrets/js-page-0") && del.scheduledPurgeDate, "delete");
  await rejects(sc.getSecret("js-page-0"), 404, "SecretNotFound", "deleted secret");
  ok((await sc.getDeletedSecret("js-page-0")).name === "js-page-0", "getDeletedSecret");
  ok((await all(sc.listDeletedSecrets())).some((d) => d.name === "js-page-0"), "listDeletedSecrets");
  await rejects(sc.setSecret("js-page-0", "again"), 409, "Conflict", "set on a deleted name");
  const rec = await (await sc.beginRecoverDeletedSecret("js-page-0", poll)).pollUntilDone();
  ok(rec.name === "js-page-0", "recover");
  ok((await sc.getSecret("js-page-0")).value === "p0", "recovered value");

  const backup = await sc.backupSecret("js-page-1");
  ok(backup instanceof Uint8Array && backup.length > 32, "backupSecret");
  await (await sc.beginDeleteSecret("js-page-1", poll)).pollUntilDone();
  await sc.purgeDeletedSecret("js-page-1");
  await rejects(sc.getDeletedSecret("js-page-1"), 404, "SecretNotFound", "purged");
  const restored = await sc.restoreSecretBackup(backup);
  ok(restored.name === "js-page-1", "restoreSecretBackup");
  ok((await sc.getSecret("js-page-1")).value === "p1", "restored value");
  await rejects(sc.setSecret("js-big", "x".repeat(25 * 1024 + 1)), 400, "BadParameter", "oversized value");
  console.log("secrets: ok");
}

function sha(alg, data) {
  return createHash(alg).update(data).digest();
}

async function keys() {
  const kc = new KeyClient(vaultUrl, cred);
  const rsa = await kc.createRsaKey("js-rsa", { keySize: 2048 });
  ok(rsa.key.kty === "RSA" && rsa.key.n && !rsa.key.d && rsa.id.startsWith(vaultUrl + "/keys/js-rsa/"), "createRsaKey");
  ok(JSON.stringify(rsa.keyOperations) === JSON.stringify(["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]),
    `key_ops ${rsa.keyOperations}`);
  const ecs = {};
  for (const [crv, alg, h] of [["P-256", "ES256", "sha256"], ["P-384", "ES384", "sha384"], ["P-521", "ES512", "sha512"]]) {
    ecs[crv] = await kc.createEcKey(`js-ec-${crv.slice(2)}`, { curve: crv });
    ok(ecs[crv].key.crv === crv, `createEcKey ${crv}`);
    const cc = new CryptographyClient(ecs[crv], cred);
    const data = Buffer.from("hello " + crv);
    const sig = await cc.signData(alg, data);
    ok(sig.result.length === { "P-256": 64, "P-384": 96, "P-521": 132 }[crv], `${alg} raw r||s length ${sig.result.length}`);
    ok((await cc.verifyData(alg, data, sig.result)).result === true, `${alg} verifyData`);
    ok((await cc.verifyData(alg, Buffer.from("other"), sig.result)).result === false, `${alg} verifyData false`);
    // and outside the vault: IEEE P1363 signature over the data
    const pub = { key: { kty: "EC", crv, x: Buffer.from(ecs[crv].key.x).toString("base64url"),
      y: Buffer.from(ecs[crv].key.y).toString("base64url") }, format: "jwk", dsaEncoding: "ieee-p1363" };
    ok(cverify(h, data, pub, Buffer.from(sig.result)), `${alg} verified by node`);
  }
  const hsm = await kc.createKey("js-rsa-hsm", "RSA-HSM", { keySize: 3072 });
  ok(hsm.key.kty === "RSA-HSM", "RSA-HSM");

  // remote sign with every RSA alg, checked by the vault's verify and by node for RS*
  const crypto = kc.getCryptographyClient("js-rsa");
  for (const [alg, h] of [["RS256", "sha256"], ["RS384", "sha384"], ["RS512", "sha512"], ["PS256", "sha256"],
    ["PS384", "sha384"], ["PS512", "sha512"]]) {
    const digest = sha(h, "payload");
    const s = await crypto.sign(alg, digest);
    ok((await crypto.verify(alg, digest, s.result)).result === true, `${alg} verify`);
    if (alg.startsWith("RS")) ok((await crypto.verifyData(alg, Buffer.from("payload"), s.result)).result, `${alg} local verify`);
  }
  // encrypt locally (RSA1_5, RSA-OAEP) or remotely (RSA-OAEP-256); decrypt always remote
  for (const alg of ["RSA1_5", "RSA-OAEP", "RSA-OAEP-256"]) {
    const pt = Buffer.from("secret " + alg);
    const ct = await crypto.encrypt({ algorithm: alg, plaintext: pt });
    const d = await crypto.decrypt({ algorithm: alg, ciphertext: ct.result });
    ok(Buffer.from(d.result).equals(pt), `${alg} round trip`);
    const w = await crypto.wrapKey(alg, pt);
    ok(Buffer.from((await crypto.unwrapKey(alg, w.result)).result).equals(pt), `${alg} wrap round trip`);
  }
  // a versionless key id: the remote operations go to /keys/NAME//sign
  const byId = new CryptographyClient(`${vaultUrl}/keys/js-rsa`, cred);
  const s = await byId.sign("RS256", sha("sha256", "x"));
  ok((await byId.verify("RS256", sha("sha256", "x"), s.result)).result, "versionless key id");

  // import a JWK (capital Hsm in the body), get, versions, update, rotate
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = privateKey.export({ format: "jwk" });
  const b = (s) => Buffer.from(s, "base64url");
  const imp = await kc.importKey("js-imported", { kty: "RSA", n: b(jwk.n), e: b(jwk.e), d: b(jwk.d), p: b(jwk.p),
    q: b(jwk.q), dp: b(jwk.dp), dq: b(jwk.dq), qi: b(jwk.qi), keyOps: ["sign", "verify"] }, { hardwareProtected: false });
  ok(imp.key.kty === "RSA" && Buffer.from(imp.key.n).toString("base64url") === jwk.n && !imp.key.d, "importKey");
  ok(JSON.stringify(imp.keyOperations) === JSON.stringify(["sign", "verify"]), "import key_ops");
  // the client checks key_ops itself from the key_ops the vault returned (the vault's own check is
  // in test_vault_http)
  try {
    await kc.getCryptographyClient("js-imported").decrypt({ algorithm: "RSA-OAEP-256", ciphertext: Buffer.alloc(256) });
    fail("decrypt with a sign-only key");
  } catch (e) {
    ok(e.statusCode === 403 || /not supported/.test(e.message), `key_ops: ${e.message}`);
  }
  const got = await kc.getKey("js-imported");
  ok(got.properties.version === imp.properties.version, "getKey");
  const upd = await kc.updateKeyProperties("js-imported", "", { enabled: false, tags: { t: "1" } });
  ok(upd.properties.enabled === false && upd.properties.tags.t === "1", "updateKeyProperties");
  await kc.updateKeyProperties("js-imported", imp.properties.version, { enabled: true });
  const rot = await kc.rotateKey("js-rsa");
  ok(rot.properties.version !== rsa.properties.version && rot.key.kty === "RSA", "rotateKey");
  ok((await all(kc.listPropertiesOfKeyVersions("js-rsa"))).length === 2, "listPropertiesOfKeyVersions");
  ok((await all(kc.listPropertiesOfKeys())).length >= 6, "listPropertiesOfKeys");

  // delete, deleted, recover, backup, purge, restore
  const bk = await kc.backupKey("js-ec-256");
  const dk = await (await kc.beginDeleteKey("js-ec-256", poll)).pollUntilDone();
  ok((dk.properties.recoveryId ?? "").endsWith("/deletedkeys/js-ec-256") && dk.properties.scheduledPurgeDate, "beginDeleteKey");
  await rejects(kc.getKey("js-ec-256"), 404, "KeyNotFound", "deleted key");
  ok((await kc.getDeletedKey("js-ec-256")).name === "js-ec-256", "getDeletedKey");
  ok((await all(kc.listDeletedKeys())).some((k) => k.name === "js-ec-256"), "listDeletedKeys");
  await (await kc.beginRecoverDeletedKey("js-ec-256", poll)).pollUntilDone();
  ok((await kc.getKey("js-ec-256")).name === "js-ec-256", "recovered key");
  await (await kc.beginDeleteKey("js-ec-256", poll)).pollUntilDone();
  await kc.purgeDeletedKey("js-ec-256");
  const rk = await kc.restoreKeyBackup(bk);
  ok(rk.name === "js-ec-256" && Buffer.from(rk.key.x).equals(Buffer.from(ecs["P-256"].key.x)), "restoreKeyBackup");
  if (typeof kc.getRandomBytes === "function") {
    const r = await kc.getRandomBytes(32);
    ok(r.length === 32, "getRandomBytes");
  }
  console.log("keys: ok");
}

(async () => {
  await secrets();
  await keys();
  console.log(`PASS (${checks} checks)`);
})().catch((e) => fail(e.stack || String(e)));
