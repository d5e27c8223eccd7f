"""Debian's azure.keyvault.secrets and azure.keyvault.keys against badge's vault (the challenge
flow with the port in the resource, ClientSecretCredential). Environment: the server's env file
plus CLIENT_ID, CLIENT_SECRET, VAULT_URL. Run with /usr/bin/python3."""
import hashlib
import os
import sys

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.identity import ClientSecretCredential
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import CryptographyClient, EncryptionAlgorithm, KeyWrapAlgorithm, SignatureAlgorithm
from azure.keyvault.secrets import SecretClient

env = os.environ
login = env["BADGE_LOGIN_URL"]
cred = ClientSecretCredential(env["BADGE_TENANT_ID"], env["CLIENT_ID"], env["CLIENT_SECRET"],
                              authority=login, instance_discovery=False)
url = env["VAULT_URL"]
checks = 0


def ok(cond, msg):
    global checks
    if not cond:
        print("FAIL: " + msg, file=sys.stderr)
        sys.exit(1)
    checks += 1


def raises(fn, exc, status, msg):
    try:
        fn()
    except exc as e:
        ok(getattr(e, "status_code", status) == status, "%s: status %s" % (msg, getattr(e, "status_code", None)))
        return
    ok(False, msg + ": did not fail")


sc = SecretClient(url, cred)
s = sc.set_secret("py-s1", "hunter2", tags={"a": "b"}, content_type="text/plain")
ok(s.value == "hunter2" and s.id.startswith(url + "/secrets/py-s1/"), "set_secret " + s.id)
g = sc.get_secret("py-s1")
ok(g.value == "hunter2" and g.properties.tags == {"a": "b"}, "get_secret")
s2 = sc.set_secret("py-s1", "hunter3")
ok(sc.get_secret("py-s1", s.properties.version).value == "hunter2", "get_secret by version")
ok(len(list(sc.list_properties_of_secret_versions("py-s1"))) == 2, "versions")
up = sc.update_secret_properties("py-s1", s2.properties.version, enabled=False)
ok(up.enabled is False, "update")
raises(lambda: sc.get_secret("py-s1"), HttpResponseError, 403, "disabled")
sc.update_secret_properties("py-s1", s2.properties.version, enabled=True)
for i in range(4):
    sc.set_secret("py-page-%d" % i, "p%d" % i)
ok(len([p for p in sc.list_properties_of_secrets(max_page_size=2) if p.name.startswith("py-")]) == 5, "list paged")
d = sc.begin_delete_secret("py-page-0").result()
ok(d.recovery_id.endswith("/deletedsecrets/py-page-0"), "delete")
raises(lambda: sc.get_secret("py-page-0"), ResourceNotFoundError, 404, "deleted is gone")
ok(sc.get_deleted_secret("py-page-0").name == "py-page-0", "get_deleted_secret")
ok(any(x.name == "py-page-0" for x in sc.list_deleted_secrets()), "list_deleted_secrets")
sc.begin_recover_deleted_secret("py-page-0").result()
ok(sc.get_secret("py-page-0").value == "p0", "recover")
blob = sc.backup_secret("py-page-1")
sc.begin_delete_secret("py-page-1").result()
sc.purge_deleted_secret("py-page-1")
ok(sc.restore_secret_backup(blob).name == "py-page-1", "restore")
raises(lambda: sc.restore_secret_backup(blob), ResourceExistsError, 409, "restore over an existing secret")
print("secrets: ok")

kc = KeyClient(url, cred)
rsa = kc.create_rsa_key("py-rsa", size=2048)
ok(rsa.key_type == "RSA" and rsa.key.n and not rsa.key.d, "create_rsa_key")
ec = kc.create_ec_key("py-ec", curve="P-384")
ok(ec.key.crv == "P-384", "create_ec_key")
ok(kc.get_key("py-rsa").properties.version == rsa.properties.version, "get_key")
cc = CryptographyClient(rsa, cred)
digest = hashlib.sha256(b"data").digest()
for alg in (SignatureAlgorithm.rs256, SignatureAlgorithm.ps256):
    sig = cc.sign(alg, digest)
    ok(cc.verify(alg, digest, sig.signature).is_valid, "rsa %s" % alg)
for alg in (EncryptionAlgorithm.rsa1_5, EncryptionAlgorithm.rsa_oaep, EncryptionAlgorithm.rsa_oaep_256):
    ct = cc.encrypt(alg, b"plain")
    ok(cc.decrypt(alg, ct.ciphertext).plaintext == b"plain", "encrypt %s" % alg)
for alg in (KeyWrapAlgorithm.rsa_oaep, KeyWrapAlgorithm.rsa_oaep_256):
    w = cc.wrap_key(alg, b"k" * 32)
    ok(cc.unwrap_key(alg, w.encrypted_key).key == b"k" * 32, "wrap %s" % alg)
ecc = CryptographyClient(ec, cred)
d384 = hashlib.sha384(b"data").digest()
sig = ecc.sign(SignatureAlgorithm.es384, d384)
ok(len(sig.signature) == 96 and ecc.verify(SignatureAlgorithm.es384, d384, sig.signature).is_valid, "es384")
upd = kc.update_key_properties("py-rsa", key_operations=["sign", "verify"], tags={"t": "1"})
ok(upd.key_operations == ["sign", "verify"], "update_key_properties")
rot = kc.rotate_key("py-rsa") if hasattr(kc, "rotate_key") else None
ok(rot is None or rot.properties.version != rsa.properties.version, "rotate_key")
kb = kc.backup_key("py-ec")
kc.begin_delete_key("py-ec").result()
ok(kc.get_deleted_key("py-ec").name == "py-ec", "get_deleted_key")
kc.purge_deleted_key("py-ec")
ok(kc.restore_key_backup(kb).name == "py-ec", "restore_key_backup")
print("keys: ok")
print("PASS (%d checks)" % checks)
