"""What a reachable port exposes: events without a label config create nothing, the status page and metrics
stay small and cheap whatever the number of projects, and ``dalt run`` listens on loopback unless told
otherwise and says who can reach it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import replace

import redis

from backend.app import create_app
from backend.processes import ROOT, exposure_note, free_port, venv_bin
from backend.store import Store
from tests.backend.test_ledger import CountingConnection
from tests.conftest import CONFIG_XML, worker_env


def test_events_without_a_label_config_never_create_a_project(client, store, ls_payload):
    """2,000 webhooks for 2,000 unknown projects (no config, an unsupported config, Train, deletes, new tasks):
    all acknowledged, and not one key is written."""
    unsupported = '<View><Image name="i" value="$i"/></View>'
    bodies = [
        lambda pid: {"action": "PROJECT_UPDATED", "project": {"id": pid, "title": "x", "task_number": 3}},
        lambda pid: {"action": "PROJECT_UPDATED", "project": {"id": pid, "label_config": unsupported}},
        lambda pid: dict(ls_payload("webhook_start_training"), project={"id": pid}),
        lambda pid: dict(ls_payload("webhook_annotation_deleted"), project={"id": pid}),
        lambda pid: {"action": "TASKS_CREATED", "project": {"id": pid}, "tasks": [{"id": 1, "data": {}}]},
        lambda pid: {"action": "TASKS_DELETED", "project": {"id": pid, "title": "t"}, "tasks": [{"id": 1}]},
    ]
    for pid in range(1, 2001):
        resp = client.post("/webhook", json=bodies[pid % len(bodies)](pid))
        assert resp.status_code == 200 and resp.json["status"] == "ignored", resp.json
    assert store.projects() == [] and store.r.keys("dalt:*") == [] and store.r.keys("rq:*") == []
    assert client.get("/").json["projects"] == {}


def seed_projects(store: Store, n: int, versions: int = 6) -> None:
    for pid in range(1, n + 1):
        store.save_settings(pid, {"label_config": CONFIG_XML}, create=True)
        for v in range(1, versions + 1):
            store.r.hset(f"dalt:{{p{pid}}}:eval", mapping={f"v{v}:accepted": 3, f"v{v}:corrected": 1})


def test_metrics_cardinality_is_bounded(config, store):
    """300 projects with 6 evaluated versions each: /metrics lists the 20 most recently active projects, with
    per-version series for their 3 newest versions only; dalt_projects counts all 300."""
    seed_projects(store, 300)
    client = create_app(replace(config, metrics_projects=20, metrics_versions=3), store=store).test_client()
    text = client.get("/metrics").get_data(as_text=True)
    series = [line for line in text.splitlines() if line.startswith("dalt_") and "project=" in line]
    projects = {line.split('project="')[1].split('"')[0] for line in series}
    assert projects == {str(p) for p in range(281, 301)}  # the newest 20 (created last)
    rates = [line for line in series if line.startswith("dalt_acceptance_rate{")]
    assert len(rates) == 20 * (3 + 1)  # 3 versions + "all"
    assert "dalt_projects 300.0" in text
    index = client.get("/").json
    assert len(index["projects"]) == 20 and index["projects_total"] == 300


def test_status_page_and_metrics_cost_the_same_round_trips_for_2_or_60_projects(config, redis_client, redis_server):
    pool = redis.ConnectionPool.from_url(redis_server, connection_class=CountingConnection, health_check_interval=0)
    store = Store(redis.Redis(connection_pool=pool))
    client = create_app(config, store=store).test_client()
    trips = {}
    for n in (2, 60):
        redis_client.flushall()
        seed_projects(store, n)
        for path in ("/", "/metrics"):
            CountingConnection.trips = 0
            assert client.get(path).status_code == 200
            trips[(n, path)] = CountingConnection.trips
    assert trips[(2, "/")] == trips[(60, "/")] <= 3
    assert trips[(2, "/metrics")] == trips[(60, "/metrics")] <= 4
    pool.disconnect()


def test_exposure_note_says_who_can_reach_the_backend_and_how_to_protect_it():
    assert "this machine only" in exposure_note("127.0.0.1", 9090, {})
    open_note = exposure_note("0.0.0.0", 9090, {})
    assert all(w in open_note for w in ("WITHOUT authentication", "BASIC_AUTH_USER", "DALT_WEBHOOK_SECRET"))
    assert "basic auth is on" in exposure_note("0.0.0.0", 9090, {"BASIC_AUTH_USER": "u", "BASIC_AUTH_PASS": "p"})


def listening_addresses(port: int) -> set[str]:
    """Local addresses of sockets listening on ``port`` (from /proc/net/tcp and tcp6)."""
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for line in fh.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.rsplit(":", 1)
                if state == "0A" and int(hex_port, 16) == port:
                    out.add(address)
    return out


def test_dalt_run_listens_on_loopback_unless_host_is_set(redis_server, tmp_path):
    """The real entry point (``dalt run`` = ``make run``) with the suite's Redis and no HOST: gunicorn binds
    127.0.0.1 only, and the first lines say so and how to open it safely."""
    port = free_port()
    env = worker_env(redis_server, PORT=str(port), DALT_RQ_WORKERS="1", DALT_HTTP_WORKERS="1")
    env.pop("HOST", None)
    proc = subprocess.Popen([venv_bin("dalt"), "run"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any("reachable" in line for line in lines):
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
        assert any(f"reachable from this machine only (127.0.0.1:{port})" in line for line in lines), lines
        assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1, nothing else
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
