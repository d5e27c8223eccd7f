// @azure/arm-resources' ResourceManagementClient against badge's generic resource list:
// resources.list() and listByResourceGroup() see every kind of resource badge keeps (instances
// with their identity, user-assigned identities, vaults, hosts), filter by type, name and tag,
// page with `top` through nextLink, and get Azure's errors for a bad filter and a missing group.
// Usage: node 32-resource-list.mjs ; environment from the server's env file plus CLIENT_ID,
// CLIENT_SECRET (an Owner of the subscription), GROUP_A, GROUP_B, VAULT (what 32-resource-list.sh made).
import { ClientSecretCredential } from "@azure/identity";
import { ResourceManagementClient } from "@azure/arm-resources";
import { ManagedServiceIdentityClient } from "@azure/arm-msi";

const env = process.env;
const sub = env.BADGE_SUBSCRIPTION_ID;

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
const names = (list) => list.map((r) => r.name).join(",");
async function expectError(p, status, code, label) {
  try {
    await p;
  } catch (e) {
    const got = e.code ?? e.details?.error?.code;
    check(e.statusCode === status, `${label}: status ${e.statusCode}, expected ${status} (${e.message})`);
    check(got === code, `${label}: code ${got}, expected ${code}`);
    console.log(`${label}: ${status} ${got}`);
    return;
  }
  fail(`${label}: succeeded, expected ${status}`);
}

const cred = new ClientSecretCredential(env.BADGE_TENANT_ID, env.CLIENT_ID, env.CLIENT_SECRET, {
  authorityHost: env.BADGE_LOGIN_URL,
  disableInstanceDiscovery: true,
});
const opts = { endpoint: env.BADGE_MANAGEMENT_URL, credentialScopes: [env.BADGE_MANAGEMENT_RESOURCE + ".default"] };
const client = new ResourceManagementClient(cred, sub, opts);

// tags (badge's CLI sets none): a re-PUT through @azure/arm-msi keeps each identity's principal
const msi = new ManagedServiceIdentityClient(cred, sub, opts);
await msi.userAssignedIdentities.createOrUpdate(env.GROUP_A, "ida", { location: "local", tags: { env: "prod" } });
await msi.userAssignedIdentities.createOrUpdate(env.GROUP_B, "idb", { location: "local", tags: { env: "dev" } });

// the whole subscription: every type, no resource group among them
const all = await collect(client.resources.list());
check(names(all) === `h1,vm1,ida,${env.VAULT},idb`, `list: ${names(all)}`);
const byName = Object.fromEntries(all.map((r) => [r.name, r]));
const vm = byName.vm1;
check(vm.type === "Microsoft.Compute/virtualMachines", `vm type ${vm.type}`);
check(vm.id === `/subscriptions/${sub}/resourceGroups/${env.GROUP_A}/providers/Microsoft.Compute/virtualMachines/vm1`,
  `vm id ${vm.id}`);
check(vm.location === "local", `vm location ${vm.location}`);
check(vm.identity?.type === "SystemAssigned, UserAssigned", `vm identity type ${vm.identity?.type}`);
check(/^[0-9a-f-]{36}$/.test(vm.identity?.principalId ?? ""), `vm principalId ${vm.identity?.principalId}`);
check(vm.identity?.tenantId === env.BADGE_TENANT_ID, `vm tenantId ${vm.identity?.tenantId}`);
const uas = Object.values(vm.identity?.userAssignedIdentities ?? {});
check(uas.length === 1 && /^[0-9a-f-]{36}$/.test(uas[0].principalId ?? "") && /^[0-9a-f-]{36}$/.test(uas[0].clientId ?? ""),
  `vm userAssignedIdentities ${JSON.stringify(vm.identity?.userAssignedIdentities)}`);
check(byName.ida.type === "Microsoft.ManagedIdentity/userAssignedIdentities", `ida type ${byName.ida.type}`);
check(byName.ida.tags?.env === "prod", `ida tags ${JSON.stringify(byName.ida.tags)}`);
check(byName[env.VAULT].type === "Microsoft.KeyVault/vaults", `vault type ${byName[env.VAULT].type}`);
check(byName.h1.type === "Badge.Compute/hosts", `host type ${byName.h1.type}`);
console.log(`resources.list: ${names(all)}`);

// by group, and $expand
const a = await collect(client.resources.listByResourceGroup(env.GROUP_A, { expand: "createdTime,changedTime,provisioningState" }));
check(names(a) === "vm1,ida", `listByResourceGroup(${env.GROUP_A}): ${names(a)}`);
check(a[0].createdTime instanceof Date && !isNaN(a[0].createdTime), `createdTime ${a[0].createdTime}`);
check(a[0].provisioningState === "Succeeded", `provisioningState ${a[0].provisioningState}`);
const b = await collect(client.resources.listByResourceGroup(env.GROUP_B));
check(names(b) === `${env.VAULT},idb`, `listByResourceGroup(${env.GROUP_B}): ${names(b)}`);
console.log(`resources.listByResourceGroup: ${names(a)} / ${names(b)}`);

// filters
const f = async (filter, rg) => names(await collect(rg ? client.resources.listByResourceGroup(rg, { filter })
  : client.resources.list({ filter })));
let got;
check((got = await f("resourceType eq 'microsoft.keyvault/VAULTS'")) === env.VAULT, `type filter: ${got}`);
check((got = await f("resourceType eq 'Microsoft.ManagedIdentity/userAssignedIdentities'")) === "ida,idb", `uai filter: ${got}`);
check((got = await f("resourceType eq 'Microsoft.ManagedIdentity/userAssignedIdentities'", env.GROUP_B)) === "idb",
  `uai filter in group: ${got}`);
check((got = await f("name eq 'VM1'")) === "vm1", `name filter: ${got}`);
check((got = await f("substringof('id', name)")) === "ida,idb", `substringof: ${got}`);
check((got = await f("tagName eq 'env' and tagValue eq 'prod'")) === "ida", `tag filter: ${got}`);
console.log("resources.list with $filter: type, name, substringof, tag");

// paging: top is the page size; the SDK follows nextLink
const pages = [];
for await (const page of client.resources.list({ top: 2 }).byPage()) pages.push(page.map((r) => r.name));
check(pages.length === 3 && pages.flat().join(",") === names(all), `pages of 2: ${JSON.stringify(pages)}`);
console.log(`resources.list({top: 2}): ${pages.length} pages`);

await expectError(collect(client.resources.list({ filter: "resourceType eq" })), 400, "InvalidFilterInQueryString",
  "bad filter");
await expectError(collect(client.resources.list({ top: 5000 })), 400, "InvalidTopInQueryString", "top 5000");
await expectError(collect(client.resources.listByResourceGroup("no-such-group")), 404, "ResourceGroupNotFound",
  "missing group");
console.log("PASS (arm-resources)");
