// Real management clients against badge's resource manager: @azure/arm-msi creates, lists (by
// group and by subscription) and deletes user-assigned identities; @azure/arm-keyvault creates a
// vault, updates its access policies (add, replace, remove) and reads them back, deletes it
// (soft delete: listDeleted, getDeleted, recover, purge). Both use a
// ClientSecretCredential against badge's directory.
// Usage: node 30-arm-sdk.mjs ; environment from the server's env file plus CLIENT_ID,
// CLIENT_SECRET (an Owner of the subscription), GROUP (an existing resource group), OTHER_OID (a
// principal to grant), VAULT (a vault name).
import { ClientSecretCredential } from "@azure/identity";
import { ManagedServiceIdentityClient } from "@azure/arm-msi";
import { KeyVaultManagementClient } from "@azure/arm-keyvault";

const env = process.env;
const tenant = env.BADGE_TENANT_ID;
const sub = env.BADGE_SUBSCRIPTION_ID;
const group = env.GROUP;
const scope = env.BADGE_MANAGEMENT_RESOURCE + ".default";

function fail(msg) {
  console.error("FAIL: " + msg);
  process.exit(1);
}
function check(cond, msg) {
  if (!cond) fail(msg);
}
async function collect(it) {
  const out = [];
  for await (const x of it) out.push(x);
  return out;
}
async function expectError(p, status, code, label) {
  try {
    await p;
  } catch (e) {
    const got = e.code ?? e.details?.error?.code;
    check(e.statusCode === status, `${label}: status ${e.statusCode}, expected ${status} (${e.message})`);
    if (code) check(got === code, `${label}: code ${got}, expected ${code}`);
    console.log(`${label}: ${status} ${got}`);
    return;
  }
  fail(`${label}: succeeded, expected ${status}`);
}

const cred = new ClientSecretCredential(tenant, env.CLIENT_ID, env.CLIENT_SECRET, {
  authorityHost: env.BADGE_LOGIN_URL,
  disableInstanceDiscovery: true,
});

// ---- @azure/arm-msi ----
const msi = new ManagedServiceIdentityClient(cred, sub, {
  endpoint: env.BADGE_MANAGEMENT_URL,
  credentialScopes: [scope],
});
const made = {};
for (const name of ["compat-uai-1", "compat-uai-2"]) {
  const r = await msi.userAssignedIdentities.createOrUpdate(group, name, { location: "local", tags: { t: name } });
  check(r.name === name, `create ${name}: name ${r.name}`);
  check(r.type === "Microsoft.ManagedIdentity/userAssignedIdentities", `create ${name}: type ${r.type}`);
  check(/^[0-9a-f-]{36}$/.test(r.principalId ?? ""), `create ${name}: principalId ${r.principalId}`);
  check(/^[0-9a-f-]{36}$/.test(r.clientId ?? ""), `create ${name}: clientId ${r.clientId}`);
  check(r.tenantId === tenant, `create ${name}: tenantId ${r.tenantId}`);
  check(r.id.toLowerCase() ===
    `/subscriptions/${sub}/resourcegroups/${group}/providers/microsoft.managedidentity/userassignedidentities/${name}`.toLowerCase(),
    `create ${name}: id ${r.id}`);
  made[name] = r;
}
// a second PUT keeps the identity (same principal), updates the tags
const again = await msi.userAssignedIdentities.createOrUpdate(group, "compat-uai-1", { location: "local", tags: { t: "x" } });
check(again.principalId === made["compat-uai-1"].principalId, "re-PUT changed the principal");
check(again.tags?.t === "x", "re-PUT did not update tags");
const got = await msi.userAssignedIdentities.get(group, "compat-uai-2");
check(got.clientId === made["compat-uai-2"].clientId, "get: clientId differs");
const byGroup = (await collect(msi.userAssignedIdentities.listByResourceGroup(group))).map((x) => x.name).sort();
check(JSON.stringify(byGroup) === '["compat-uai-1","compat-uai-2"]', `listByResourceGroup: ${byGroup}`);
const bySub = (await collect(msi.userAssignedIdentities.listBySubscription())).map((x) => x.name);
check(bySub.includes("compat-uai-1") && bySub.includes("compat-uai-2"), `listBySubscription: ${bySub}`);
console.log(`arm-msi: created, got and listed ${byGroup.length} identities (by group and subscription)`);
await msi.userAssignedIdentities.delete(group, "compat-uai-1");
await expectError(msi.userAssignedIdentities.get(group, "compat-uai-1"), 404, "ResourceNotFound", "arm-msi get after delete");
// deleting what is gone is not an error in ARM (204)
await msi.userAssignedIdentities.delete(group, "compat-uai-1");
const left = (await collect(msi.userAssignedIdentities.listByResourceGroup(group))).map((x) => x.name);
check(JSON.stringify(left) === '["compat-uai-2"]', `after delete: ${left}`);
await expectError(msi.userAssignedIdentities.createOrUpdate(group, "bad name!", { location: "local" }), 400, null,
  "arm-msi invalid name");
await expectError(msi.userAssignedIdentities.createOrUpdate("no-such-group", "xx1", { location: "local" }), 404, null,
  "arm-msi missing group");
console.log("arm-msi: deleted; errors are ARM-shaped");

// ---- @azure/arm-keyvault ----
const kv = new KeyVaultManagementClient(cred, sub, {
  endpoint: env.BADGE_MANAGEMENT_URL,
  credentials: { scopes: [scope] },
});
const vaultName = env.VAULT;
const uaiOid = made["compat-uai-2"].principalId;
const vault = await kv.vaults.createOrUpdate(group, vaultName, {
  location: "local",
  properties: {
    tenantId: tenant,
    sku: { family: "A", name: "standard" },
    accessPolicies: [{ tenantId: tenant, objectId: env.OTHER_OID, permissions: { secrets: ["get"] } }],
    enableSoftDelete: true,
    softDeleteRetentionInDays: 7,
  },
}, { updateIntervalInMs: 100 });
check(vault.name === vaultName, `vault name ${vault.name}`);
check(vault.properties?.vaultUri?.startsWith(`https://${vaultName}.`), `vaultUri ${vault.properties?.vaultUri}`);
check(vault.properties?.tenantId === tenant, `vault tenantId ${vault.properties?.tenantId}`);
check(vault.properties?.accessPolicies?.length === 1, "vault: one access policy expected");
console.log(`arm-keyvault: created ${vault.name} at ${vault.properties.vaultUri}`);

const policyOf = (v, oid) => v.properties.accessPolicies.find((p) => p.objectId === oid);
const sorted = (a) => JSON.stringify([...(a ?? [])].map((s) => s.toLowerCase()).sort());
// add: a new entry for the identity, then merged permissions for it
let up = await kv.vaults.updateAccessPolicy(group, vaultName, "add", {
  properties: { accessPolicies: [{ tenantId: tenant, objectId: uaiOid, permissions: { secrets: ["get", "list"] } }] },
});
check(up.properties?.accessPolicies?.length >= 1, "updateAccessPolicy(add): no policies in the answer");
up = await kv.vaults.updateAccessPolicy(group, vaultName, "add", {
  properties: { accessPolicies: [{ tenantId: tenant, objectId: uaiOid, permissions: { secrets: ["set"], keys: ["get"] } }] },
});
let v = await kv.vaults.get(group, vaultName);
check(v.properties.accessPolicies.length === 2, `after add: ${v.properties.accessPolicies.length} policies`);
let p = policyOf(v, uaiOid);
check(sorted(p?.permissions?.secrets) === '["get","list","set"]', `add merges secrets: ${sorted(p?.permissions?.secrets)}`);
check(sorted(p?.permissions?.keys) === '["get"]', `add merges keys: ${sorted(p?.permissions?.keys)}`);
console.log("arm-keyvault: updateAccessPolicy(add) adds and merges; vaults.get shows it");
// replace: the entry's permissions become exactly those given
await kv.vaults.updateAccessPolicy(group, vaultName, "replace", {
  properties: { accessPolicies: [{ tenantId: tenant, objectId: uaiOid, permissions: { secrets: ["delete"] } }] },
});
v = await kv.vaults.get(group, vaultName);
p = policyOf(v, uaiOid);
check(sorted(p?.permissions?.secrets) === '["delete"]', `replace: secrets ${sorted(p?.permissions?.secrets)}`);
check(sorted(p?.permissions?.keys) === "[]", `replace: keys ${sorted(p?.permissions?.keys)}`);
// remove: the permissions given leave the entry; an entry left with none is dropped
await kv.vaults.updateAccessPolicy(group, vaultName, "remove", {
  properties: { accessPolicies: [{ tenantId: tenant, objectId: uaiOid, permissions: { secrets: ["delete"] } }] },
});
v = await kv.vaults.get(group, vaultName);
check(!policyOf(v, uaiOid), "remove: the identity's policy is still there");
check(policyOf(v, env.OTHER_OID), "remove: the other policy went too");
console.log("arm-keyvault: replace and remove; vaults.get shows them");
await expectError(kv.vaults.updateAccessPolicy(group, vaultName, "add", {
  properties: { accessPolicies: [{ tenantId: tenant, objectId: uaiOid, permissions: { secrets: ["fly"] } }] },
}), 400, null, "arm-keyvault unknown permission");

// update (PATCH) and lists
const patched = await kv.vaults.update(group, vaultName, { tags: { env: "compat" }, properties: { enablePurgeProtection: true } });
check(patched.tags?.env === "compat", "PATCH: tags");
check(patched.properties?.enablePurgeProtection === true, "PATCH: purge protection");
const vlist = (await collect(kv.vaults.listByResourceGroup(group))).map((x) => x.name);
check(vlist.includes(vaultName), `listByResourceGroup: ${vlist}`);
const vsub = (await collect(kv.vaults.listBySubscription())).map((x) => x.name);
check(vsub.includes(vaultName), `listBySubscription: ${vsub}`);
console.log("arm-keyvault: update and lists");

await msi.userAssignedIdentities.delete(group, "compat-uai-2");
await kv.vaults.delete(group, vaultName);
await expectError(kv.vaults.get(group, vaultName), 404, null, "arm-keyvault get after delete");

// soft delete: the deleted vault is listed and read back, its name stays taken, purge
// protection (set by the PATCH above) refuses the purge
const lro = { updateIntervalInMs: 100 };
const vaultParams = (extra = {}) => ({
  location: "local",
  properties: { tenantId: tenant, sku: { family: "A", name: "standard" }, accessPolicies: [], ...extra },
});
const deleted = (await collect(kv.vaults.listDeleted())).find((x) => x.name === vaultName);
check(deleted, "listDeleted: the deleted vault is missing");
check(deleted.type === "Microsoft.KeyVault/deletedVaults", `listDeleted: type ${deleted.type}`);
check(deleted.properties?.vaultId?.endsWith(`/providers/Microsoft.KeyVault/vaults/${vaultName}`),
  `listDeleted: vaultId ${deleted.properties?.vaultId}`);
check(deleted.properties?.location === "local", `listDeleted: location ${deleted.properties?.location}`);
check(deleted.properties?.purgeProtectionEnabled === true, "listDeleted: purgeProtectionEnabled");
check(deleted.properties?.deletionDate instanceof Date && deleted.properties?.scheduledPurgeDate instanceof Date,
  "listDeleted: dates");
check(deleted.properties.scheduledPurgeDate - deleted.properties.deletionDate === 7 * 86400 * 1000,
  "listDeleted: scheduledPurgeDate is the retention (7 days) after deletionDate");
const dv = await kv.vaults.getDeleted(vaultName, "local");
check(dv.id === deleted.id && dv.properties?.tags?.env === "compat", `getDeleted: ${JSON.stringify(dv)}`);
await expectError(kv.vaults.getDeleted(vaultName, "elsewhere"), 404, "ResourceNotFound", "arm-keyvault getDeleted elsewhere");
await expectError(kv.vaults.createOrUpdate(group, vaultName, vaultParams(), lro), 409, "ConflictError",
  "arm-keyvault create while deleted");
await expectError(kv.vaults.purgeDeleted(vaultName, "local", lro), 409, null, "arm-keyvault purge under protection");
console.log("arm-keyvault: listDeleted, getDeleted; the name is taken; purge protection holds");

// recover (createMode recover), then delete and purge for good: the name is free again
const second = vaultName + "b";
await kv.vaults.createOrUpdate(group, second, vaultParams({
  accessPolicies: [{ tenantId: tenant, objectId: env.OTHER_OID, permissions: { secrets: ["get"] } }],
}), lro);
await kv.vaults.delete(group, second);
const back = await kv.vaults.createOrUpdate(group, second, vaultParams({ createMode: "recover" }), lro);
check(back.properties?.accessPolicies?.length === 1, "recover: the access policy came back");
await kv.vaults.delete(group, second);
await kv.vaults.beginPurgeDeletedAndWait(second, "local", lro);
await expectError(kv.vaults.getDeleted(second, "local"), 404, "ResourceNotFound", "arm-keyvault getDeleted after purge");
check(!(await collect(kv.vaults.listDeleted())).some((x) => x.name === second), "listDeleted after purge");
const fresh = await kv.vaults.createOrUpdate(group, second, vaultParams(), lro);
check(fresh.properties?.accessPolicies?.length === 0, "a new vault of a purged name starts empty");
await kv.vaults.delete(group, second);
await kv.vaults.purgeDeleted(second, "local", lro);
console.log("arm-keyvault: recover, purge (beginPurgeDeletedAndWait, purgeDeleted), the name reused");
console.log("OK");
