"""Traffic for tests/integration/65-drain.sh: requests in flight while `badge server` drains.

Run with /usr/bin/python3; settings come from the environment (see main). It puts in flight,
each on a connection of its own:
  - POLLS parked long polls (the agent's host sync, authenticated as the host with its key),
  - UPLOADS vault secret PUTs whose bodies are sent slowly (UPLOAD_S seconds), so that they
    are still being received when SIGTERM comes,
  - LOOPS loops of client-credentials token requests, until a connection is refused,
  - one keep-alive connection asking /readyz, which must turn 503 while the server drains,
then writes STATE/ready. The test sends SIGTERM and writes STATE/term. At the end it prints a
JSON report and exits 1 if any request that reached the server (TLS handshake done, request
sent) did not get a complete, well-formed answer; refusals are counted, and so are failed TLS
handshakes after SIGTERM (connections the kernel queued but the server never accepted).
"""
import base64
import hashlib
import http.client
import json
import os
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import uuid

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

E = os.environ
URL = urllib.parse.urlsplit(E["BADGE_URL"])
HOST, PORT = URL.hostname, URL.port
STATE = E["STATE"]
POLLS, UPLOADS, LOOPS = int(E.get("POLLS", "4")), int(E.get("UPLOADS", "3")), int(E.get("LOOPS", "4"))
UPLOAD_S = float(E.get("UPLOAD_S", "3"))
DEADLINE = time.monotonic() + float(E.get("DRIVER_TIMEOUT", "120"))
CTX = ssl.create_default_context(cafile=E["BADGE_CA_FILE"])

lock = threading.Lock()
report = {"failures": [], "refused": 0, "not_accepted": 0, "tokens_before": 0, "tokens_after": 0,
          "polls": [], "uploads": [], "readyz": None}


def fail(what):
    with lock:
        report["failures"].append(what)


def term_time():
    try:
        with open(os.path.join(STATE, "term")) as f:
            return float(f.read().strip() or "0")
    except (FileNotFoundError, ValueError):
        return None


class Refused(Exception):
    pass


class NotAccepted(Exception):
    pass


def connect(timeout=90):
    """A connection with the TLS handshake done, or Refused / NotAccepted."""
    c = http.client.HTTPSConnection(HOST, PORT, context=CTX, timeout=timeout)
    try:
        c.connect()
    except ConnectionRefusedError as e:
        raise Refused() from e
    except (OSError, ssl.SSLError) as e:
        raise NotAccepted(repr(e)) from e
    return c


def answer(c, what):
    """Reads one complete response; a JSON body is parsed. Any failure here is a cut request."""
    try:
        r = c.getresponse()
        body = r.read()
    except Exception as e:  # noqa: BLE001 -- whatever broke, the request was in flight
        raise RuntimeError(f"{what}: no complete answer: {e!r}") from e
    n = r.getheader("Content-Length")
    if n is not None and int(n) != len(body):
        raise RuntimeError(f"{what}: body of {len(body)} bytes, Content-Length {n}")
    try:
        doc = json.loads(body) if body else None
    except ValueError as e:
        raise RuntimeError(f"{what}: {r.status} with a body that is not JSON: {body[:200]!r}") from e
    return r, doc


def request(method, path, headers=None, body=None, what=""):
    c = connect()
    try:
        h = {"Connection": "close"}
        h.update(headers or {})
        try:
            c.request(method, path, body=body, headers=h)
        except Exception as e:  # noqa: BLE001
            raise RuntimeError(f"{what}: request not sent: {e!r}") from e
        return answer(c, what)
    finally:
        c.close()


def form(d):
    return urllib.parse.urlencode(d)


# ---- the host's management token, from the agent's own key (docs/agent-protocol.md, 2) ----

def host_token():
    a = E["AGENT_DIR"]
    with open(os.path.join(a, "host.json")) as f:
        host = json.load(f)
    with open(os.path.join(a, "host.key"), "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    with open(os.path.join(a, "host.pem"), "rb") as f:
        der = x509.load_pem_x509_certificate(f.read()).public_bytes(serialization.Encoding.DER)
    x5t = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    path = f"/{host['tenantId']}/oauth2/v2.0/token"
    now = int(time.time())
    claims = {"aud": E["BADGE_URL"] + path, "iss": host["clientId"], "sub": host["clientId"],
              "jti": str(uuid.uuid4()), "iat": now, "nbf": now, "exp": now + 300}
    assertion = jwt.encode(claims, key, algorithm="ES256", headers={"typ": "JWT", "x5t#S256": x5t})
    r, doc = request("POST", path, {"Content-Type": "application/x-www-form-urlencoded"}, form({
        "grant_type": "client_credentials", "client_id": host["clientId"],
        "scope": (host.get("managementResource") or E["BADGE_MANAGEMENT_RESOURCE"]) + ".default",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion}), "host token")
    if r.status != 200:
        raise RuntimeError(f"host token: {r.status} {doc}")
    return doc["access_token"]


# ---- the traffic ----

def long_poll(i, tok, rev, started):
    what = f"long poll {i}"
    c = None
    try:
        c = connect()
        c.request("GET", f"/badge/agent/v1/sync?since={rev}&timeout=60",
                  headers={"Authorization": "Bearer " + tok, "Accept": "application/json"})
        started.release()
        r, doc = answer(c, what)
        at = time.time()
        t = term_time()
        if r.status != 200 or not isinstance(doc, dict) or "revision" not in doc:
            fail(f"{what}: answered {r.status} {doc}")
        elif t is None or at < t:
            fail(f"{what}: answered before SIGTERM (it was not parked)")
        with lock:
            report["polls"].append({"status": r.status, "after_term_s": round(at - (t or at), 3)})
    except (Refused, NotAccepted) as e:
        fail(f"{what}: could not connect before SIGTERM: {e!r}")
        started.release()
    except Exception as e:  # noqa: BLE001
        fail(str(e))
    finally:
        if c:
            c.close()


def slow_upload(i, vtok, started):
    name, value = f"drain-{i}", f"value-{i}-" + "x" * 4000
    what = f"upload {name}"
    body = json.dumps({"value": value}).encode()
    pieces = 20
    step = (len(body) + pieces - 1) // pieces
    c = None
    try:
        c = connect()
        c.putrequest("PUT", f"/vaults/kv1/secrets/{name}?api-version=7.4")
        for k, v in (("Authorization", "Bearer " + vtok), ("Content-Type", "application/json"),
                     ("Content-Length", str(len(body))), ("Connection", "close")):
            c.putheader(k, v)
        c.endheaders()
        for k in range(pieces):
            try:
                c.send(body[k * step:(k + 1) * step])
            except Exception as e:  # noqa: BLE001
                raise RuntimeError(f"{what}: the server stopped reading the body: {e!r}") from e
            if k == 0:
                started.release()
            time.sleep(UPLOAD_S / pieces)  # the pace of a slow client, not a wait for an event
        r, doc = answer(c, what)
        if r.status != 200 or not isinstance(doc, dict) or doc.get("value") != value:
            fail(f"{what}: answered {r.status} {str(doc)[:200]}")
        else:
            with lock:
                report["uploads"].append({"name": name, "value": value, "done": time.time()})
    except (Refused, NotAccepted) as e:
        fail(f"{what}: could not connect before SIGTERM: {e!r}")
        started.release()
    except Exception as e:  # noqa: BLE001
        fail(str(e))
    finally:
        if c:
            c.close()


def token_loop(i, started):
    path = f"/{E['BADGE_TENANT_ID']}/oauth2/v2.0/token"
    body = form({"grant_type": "client_credentials", "client_id": E["ADMIN_ID"],
                 "client_secret": E["ADMIN_SECRET"], "scope": E["BADGE_MANAGEMENT_RESOURCE"] + ".default"})
    n = 0
    while time.monotonic() < DEADLINE:
        before = term_time() is None
        try:
            r, doc = request("POST", path, {"Content-Type": "application/x-www-form-urlencoded"}, body,
                             f"token loop {i}")
        except Refused:
            if before:
                fail(f"token loop {i}: connection refused before SIGTERM")
            with lock:
                report["refused"] += 1
            break
        except NotAccepted as e:
            if before:
                fail(f"token loop {i}: TLS handshake failed before SIGTERM: {e}")
                break
            with lock:
                report["not_accepted"] += 1
            continue
        except Exception as e:  # noqa: BLE001
            fail(str(e))
            break
        if r.status != 200 or not isinstance(doc, dict) or not doc.get("access_token"):
            fail(f"token loop {i}: answered {r.status} {str(doc)[:200]}")
            break
        with lock:
            report["tokens_before" if before else "tokens_after"] += 1
        n += 1
        if n == 3:
            started.release()
    else:
        fail(f"token loop {i}: never refused")
    if n < 3:
        started.release()


def readyz_probe(started):
    """One keep-alive connection opened before SIGTERM: /readyz on it turns 503 while draining."""
    what = "readyz on a kept-alive connection"
    c = None
    try:
        c = connect()
        c.request("GET", "/readyz")
        r, doc = answer(c, what)
        if r.status != 200:
            fail(f"{what}: {r.status} before SIGTERM")
        started.release()
        while term_time() is None and time.monotonic() < DEADLINE:
            time.sleep(0.02)  # poll for the test's SIGTERM
        while time.monotonic() < DEADLINE:
            c.request("GET", "/readyz")
            r, doc = answer(c, what)
            if r.status == 503:
                report["readyz"] = doc
                return
            if r.getheader("Connection", "").lower() == "close":
                fail(f"{what}: closed after a {r.status} before any 503")
                return
            time.sleep(0.02)
        fail(f"{what}: never 503")
    except Exception as e:  # noqa: BLE001
        fail(f"{what}: {e!r}")
        started.release()
    finally:
        if c:
            c.close()


def main():
    tok = host_token()
    _, doc = request("GET", "/badge/agent/v1/sync?timeout=0", {"Authorization": "Bearer " + tok},
                     what="first sync")
    rev = doc["revision"]
    vtok = E["VAULT_TOKEN"]
    started = threading.Semaphore(0)
    threads = [threading.Thread(target=long_poll, args=(i, tok, rev, started)) for i in range(POLLS)]
    threads += [threading.Thread(target=token_loop, args=(i, started)) for i in range(LOOPS)]
    threads += [threading.Thread(target=readyz_probe, args=(started,))]
    for t in threads:
        t.start()
    for _ in threads:
        started.acquire()
    # the uploads last UPLOAD_S from here: started last, just before the signal
    ups = [threading.Thread(target=slow_upload, args=(i, vtok, started)) for i in range(UPLOADS)]
    for t in ups:
        t.start()
    for _ in ups:
        started.acquire()
    with open(os.path.join(STATE, "ready"), "w") as f:
        f.write("ready\n")
    for t in threads + ups:
        t.join(max(1.0, DEADLINE - time.monotonic()))
        if t.is_alive():
            fail(f"{t.name} still running at the deadline")
    print(json.dumps(report, indent=1))
    sys.exit(1 if report["failures"] else 0)


if __name__ == "__main__":
    main()
