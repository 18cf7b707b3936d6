"""No process the suite starts ever connects to the Redis on port 6379 (a user's, or the machine's).

Label Studio Community hard-codes its django-rq queues to ``localhost:6379`` DB 0 and pings them when it
loads; :mod:`backend.labelstudio_server` moves them to the suite's own redis-server (DB 1). The proof reads
the kernel's tables while everything works: which TCP connections (``/proc/net/tcp*``) belong to which
process (the ``socket:[inode]`` links in ``/proc/PID/fd``). It is positive, too: Label Studio's connection
is found on the suite's Redis, in DB 1, so the settings module took effect.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from backend import demo
from backend.labelstudio_server import LabelStudio
from backend.processes import ManagedProcess, RedisServer, descendants, wait_for
from tests.e2e.conftest import LABEL_STUDIO_REDIS_DB, Dalt

pytestmark = pytest.mark.e2e

USERS_REDIS_PORT = 6379


@dataclass(frozen=True)
class Connection:
    pid: int
    local_port: int
    remote_port: int


def _tcp_table() -> dict[int, tuple[int, int]]:
    """Socket inode -> (local port, remote port) of every TCP socket on this machine (IPv4 and IPv6)."""
    table: dict[int, tuple[int, int]] = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as fh:
            next(fh)  # header
            for line in fh:
                fields = line.split()
                local, remote, inode = fields[1], fields[2], int(fields[9])
                table[inode] = (int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16))
    return table


def tcp_connections(processes: list[ManagedProcess]) -> list[Connection]:
    """The TCP sockets held by these processes and all their descendants (listening ones have port 0 remote)."""
    table = _tcp_table()
    pids = {p for proc in processes if proc.alive for p in (proc.pid, *descendants(proc.pid))}
    out = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:  # exited meanwhile
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and int(link[8:-1]) in table:
                out.append(Connection(pid, *table[int(link[8:-1])]))
    return out


def test_no_process_started_by_the_suite_connects_to_port_6379(
    label_studio: LabelStudio, dalt: Dalt, e2e_redis_server: RedisServer, tmp_path: Path
) -> None:
    # Make Label Studio work: a project, uploads, a task listing, a backend connection (/health, /setup).
    client = label_studio.sdk()
    pid = client.projects.create(title="isolation", label_config=demo.DIGITS_LABEL_CONFIG).id
    images = demo.write_mnist_pngs(tmp_path, 5, offset=3000)
    demo.upload_images(label_studio, pid, [path for path, _ in images])
    assert len(list(client.tasks.list(project=pid))) == 5
    demo.connect_backend(client, pid, dalt.url)

    # Positive: Label Studio holds a connection to the suite's Redis, on its own database.
    r = redis.Redis.from_url(e2e_redis_server.url)

    def label_studio_clients() -> list[dict]:
        ports = {c.local_port for c in tcp_connections([label_studio.process])
                 if c.remote_port == e2e_redis_server.port}
        return [c for c in r.client_list() if int(c["addr"].rsplit(":", 1)[1]) in ports]

    found = wait_for(label_studio_clients, timeout=60, what="Label Studio's connection to the suite's Redis")
    assert {int(c["db"]) for c in found} == {LABEL_STUDIO_REDIS_DB}

    # Negative: no socket of Label Studio, DALT's backend and worker, or the Redis goes to port 6379.
    started = [label_studio.process, e2e_redis_server.process, *dalt.processes]
    connections = tcp_connections(started)
    assert connections, "no sockets found: the check would prove nothing"
    assert [c for c in connections if c.remote_port == USERS_REDIS_PORT] == []
    print(f"\n{len(connections)} TCP sockets of {len(started)} process trees; none to port {USERS_REDIS_PORT}; "
          f"Label Studio on the suite's Redis DB {LABEL_STUDIO_REDIS_DB} ({len(found)} connection(s))")
