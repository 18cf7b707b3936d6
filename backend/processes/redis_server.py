"""Private redis-servers for the tests, the benchmarks, the demo and ``dalt run``: one server, or a Redis Cluster.

Part of :mod:`backend.processes`, the one place that starts processes.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from backend.processes.base import ManagedProcess, RedisServerMissing, _started, free_port, wait_for


class RedisServer:
    """A private ``redis-server`` on loopback that can be stopped and started again on the same port and data.

    ``persistent=False`` (the tests): no RDB, no AOF. ``persistent=True`` (``make run``, the demo, the
    Redis-restart test): AOF with ``appendfsync everysec`` and ``noeviction``, as docker compose runs it.
    """

    def __init__(self, data_dir: Path, port: int | None = None, *, persistent: bool = False,
                 args: Iterable[str] = ()):
        exe = shutil.which("redis-server")
        if exe is None:
            raise RedisServerMissing("redis-server is not installed (or not on PATH): install it, e.g. "
                                     "`apt-get install redis-server`; DALT never uses a Redis it did not start")
        self.dir = Path(data_dir)
        self.port = port or free_port()
        mode = (["--appendonly", "yes", "--appendfsync", "everysec", "--maxmemory-policy", "noeviction"]
                if persistent else ["--save", "", "--appendonly", "no"])
        self.argv = [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir), *mode, *args]
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return self.url_for(0)

    def url_for(self, db: int) -> str:
        """URL of one of its databases (Label Studio gets its own, apart from DALT's DB 0)."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 20) -> RedisServer:
        import redis

        self.dir.mkdir(parents=True, exist_ok=True)
        self.process = ManagedProcess("redis", self.argv, log_path=self.dir / "redis.log").start()
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)

        def up() -> bool:
            if not self.process.alive:
                raise RuntimeError(f"redis-server exited on port {self.port}\n{self.process.tail()}")
            try:
                return bool(client.ping())
            except redis.exceptions.RedisError:  # refused, or BusyLoadingError while the AOF is replayed
                return False

        try:
            _started(self.process, lambda: wait_for(up, timeout, f"redis-server on port {self.port}"))
        finally:
            client.close()
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM (the AOF is flushed, as ``docker compose restart`` does) or SIGKILL (a crash)."""
        if self.process is None:
            return
        if sig == signal.SIGTERM:
            self.process.stop(timeout=20)
        else:
            self.process.kill(sig)
            self.process.stop()


def start_redis(data_dir: Path, port: int | None = None, *, persistent: bool = False,
                args: Iterable[str] = (), timeout: float = 20) -> RedisServer:
    """Start a private redis-server and wait until it answers PING.

    Raises:
        RedisServerMissing: redis-server is not installed.
        RuntimeError, TimeoutError: it exited (e.g. the port is taken) or did not answer in time.
    """
    return RedisServer(data_dir, port, persistent=persistent, args=args).start(timeout)


@contextlib.contextmanager
def temporary_redis(prefix: str = "dalt-redis-", timeout: float = 20) -> Iterator[str]:
    """A private, non-persistent redis-server on a free port whose data folder is deleted afterwards.

    Yields:
        Its URL (DB 0). The server is stopped when the block ends.
    """
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        server = start_redis(Path(tmp), timeout=timeout)
        try:
            yield server.url
        finally:
            server.stop()


def _cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    while True:
        port = free_port()
        if port + 10000 <= 65535:
            with contextlib.suppress(OSError), socket.socket() as s:
                s.bind(("127.0.0.1", port + 10000))
                return port


class RedisCluster:
    """A private Redis Cluster of ``masters`` non-persistent ``redis-server --cluster-enabled yes``, no replicas.

    Its :attr:`url` uses the ``redis+cluster://`` scheme that ``backend.store.connection`` opens as a cluster.
    """

    def __init__(self, data_dir: Path, masters: int = 3):
        self.dir = Path(data_dir)
        self.servers = [RedisServer(self.dir / f"node{i}", _cluster_port(), args=[
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"])
            for i in range(masters)]

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.servers[0].port}"

    def start(self, timeout: float = 30) -> RedisCluster:
        """Start the nodes, assign the 16384 slots over them (``redis-cli --cluster create``), wait for state ok."""
        import redis

        try:
            for server in self.servers:
                server.start(timeout)
            cli = shutil.which("redis-cli") or "redis-cli"
            made = subprocess.run([cli, "--cluster", "create", *(f"127.0.0.1:{s.port}" for s in self.servers),
                                   "--cluster-replicas", "0", "--cluster-yes"],
                                  capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
            if made.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed:\n{made.stdout}{made.stderr}")
            for server in self.servers:
                client = redis.Redis(port=server.port, socket_connect_timeout=1)
                try:
                    wait_for(lambda c=client: c.execute_command("CLUSTER INFO").get("cluster_state") == "ok", timeout,
                             f"cluster_state:ok on port {server.port}", interval=0.1)
                finally:
                    client.close()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def start_redis_cluster(data_dir: Path, masters: int = 3, timeout: float = 30) -> RedisCluster:
    """Start a private Redis Cluster and wait until every node says ``cluster_state:ok``.

    Raises:
        RedisServerMissing: redis-server is not installed.
        RuntimeError, TimeoutError: a node or ``redis-cli --cluster create`` failed, or the state stayed not ok.
    """
    return RedisCluster(data_dir, masters).start(timeout)
