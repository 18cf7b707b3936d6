"""Basic auth on every endpoint but /health, the webhook's own secret, and no secret ever in a
log line or an error message (gunicorn's and the RQ worker's output captured while requests fail)."""

from __future__ import annotations

import requests

from tests.conftest import free_port, load_fixture, wait_for

USER = "dalt-admin"
SECRETS = {
    "BASIC_AUTH_PASS": "pw-SECRET-basic-7f3a",
    "DALT_WEBHOOK_SECRET": "hook-SECRET-webhook-91c2",
    "LABEL_STUDIO_API_KEY": "key-SECRET-lsapi-4d8e",
}
ACCESS_TOKEN = "tok-SECRET-setup-0b6f"  # what Label Studio sends in /setup
SETUP = dict(load_fixture("setup")["body"], access_token=ACCESS_TOKEN)
WEBHOOK = load_fixture("webhook_annotation_created")["body"]
AUTH = (USER, SECRETS["BASIC_AUTH_PASS"])
HOOK = {"X-DALT-Webhook-Secret": SECRETS["DALT_WEBHOOK_SECRET"]}


def test_basic_auth_webhook_secret_and_no_secret_in_logs_or_errors(procs, redis_server, store):
    closed = f"http://127.0.0.1:{free_port()}"  # Label Studio down: every call to it fails
    env = dict(SECRETS, BASIC_AUTH_USER=USER, LABEL_STUDIO_URL=closed, LOG_LEVEL="DEBUG",
               DALT_RECONCILE_DELAY="0", DALT_RECONCILE_INTERVAL="0")
    web = procs("gunicorn", redis_server, workers=2, **env)
    worker = procs("worker", redis_server, **env)
    url = web.url
    bodies: list[str] = []

    def call(method: str, path: str, **kw) -> requests.Response:
        r = requests.request(method, url + path, timeout=15, **kw)
        bodies.append(r.text + repr(dict(r.headers)))
        return r

    # /health is open (Label Studio and orchestrators probe it without credentials) ...
    assert call("GET", "/health").status_code == 200
    # ... everything else needs basic auth: missing, wrong user, wrong password, other scheme all 401.
    for method, path, body, status in [("GET", "/", None, 200), ("POST", "/setup", SETUP, 200),
                                       ("POST", "/predict", {}, 400), ("GET", "/versions", None, 200),
                                       ("GET", "/metrics", None, 200)]:
        for auth in (None, ("intruder", AUTH[1]), (USER, AUTH[1] + "x"), (USER, "")):
            r = call(method, path, json=body, auth=auth)
            assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic"), (path, auth)
        r = call(method, path, json=body, headers={"Authorization": f"Bearer {AUTH[1]}"})
        assert r.status_code == 401, path
        assert call(method, path, json=body, auth=AUTH).status_code == status, path  # past auth: the route's answer
    assert call("POST", "/setup", json=SETUP, auth=AUTH).status_code == 200

    # The webhook: Label Studio's auto-created one carries no basic auth, so it has its own secret,
    # in a header (a webhook created by hand in Label Studio) or in the URL; basic auth works too.
    assert call("POST", "/webhook", json=WEBHOOK).status_code == 401
    assert call("POST", "/webhook", json=WEBHOOK, headers={"X-DALT-Webhook-Secret": "guess"}).status_code == 401
    assert call("POST", "/webhook?secret=guess-SECRET-wrong", json=WEBHOOK).status_code == 401
    assert call("POST", "/webhook", json=WEBHOOK, headers=HOOK).status_code == 200
    assert call("POST", f"/webhook?secret={SECRETS['DALT_WEBHOOK_SECRET']}", json=WEBHOOK).status_code == 200
    assert call("POST", "/webhook", json=WEBHOOK, auth=AUTH).status_code == 200

    # Failing requests that handle the secrets: bad JSON, unsupported config with the access token,
    # a webhook whose counters disagree (a reconcile job then fails against the unreachable Label Studio).
    bad_json = {**HOOK, "Content-Type": "application/json"}
    assert call("POST", "/webhook", data=b"{bad", headers=bad_json).status_code == 400
    bad_setup = dict(SETUP, schema="<View><Text name='t' value='$t'/></View>")
    assert call("POST", "/setup", json=bad_setup, auth=AUTH).status_code == 422
    lost = dict(WEBHOOK, project=dict(WEBHOOK["project"], total_annotations_number=99))
    r = call("POST", "/webhook", json=lost, headers=HOOK)
    assert r.status_code == 200 and r.json()["detail"]["reconcile"] in ("queued", "pending")
    wait_for(lambda: "reconcile" in worker.log() and ("Traceback" in worker.log() or "failed" in worker.log()),
             timeout=60)

    logs = web.log() + worker.log()
    assert "POST /webhook" in logs and "401" in logs  # the logs were captured
    for name, secret in [*SECRETS.items(), ("access_token", ACCESS_TOKEN), ("wrong guesses", "SECRET")]:
        assert secret not in logs, f"{name} appears in a log"
        assert not any(secret in b for b in bodies), f"{name} appears in a response"
