"""Real servers for the tests: `eric serve` processes (on the default disk
engine in a private data directory, or nodes sharing a private
`redis-server`), started on free loopback ports and
waited for by reading their logs, never by sleeping."""

from __future__ import annotations

import collections
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

#: How long a process may take to come up or go away.
START_DEADLINE = 20.0

#: The admin token of the tests' node that wants one.
TOKEN = "a-token-of-at-least-16-bytes"

#: The HS256 secret of the tests' node that takes scoped JWTs.
JWT_SECRET = "a-jwt-secret-of-at-least-32-bytes!!"

REPO = Path(__file__).resolve().parents[3]


def eric_binary() -> str:
    """`ERIC_BIN`, else the workspace's debug build."""
    path = os.environ.get("ERIC_BIN") or str(REPO / "target" / "debug" / "eric")
    if not Path(path).exists():
        raise RuntimeError(f"{path} is missing: run `cargo build --workspace` or set ERIC_BIN")
    return path


def mint(*rights: str) -> str:
    """A JWT for JWT_SECRET with `rights` (`eric token` flags, such as
    `--subscribe C`), made by the eric binary as a developer would."""
    done = subprocess.run(
        [eric_binary(), "token", *rights],
        env={**os.environ, "ERIC__HTTP__JWT_SECRET": JWT_SECRET},
        capture_output=True,
        text=True,
        check=True,
        timeout=START_DEADLINE,
    )
    return done.stdout.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class _Process:
    """A child whose output lines are kept (shown when a test fails) and
    scanned for the line that says it is ready."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], ready) -> None:
        self.name = name
        self.log: collections.deque[str] = collections.deque(maxlen=200)
        self._ready: queue.Queue[object] = queue.Queue()
        self.proc = subprocess.Popen(
            argv,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, args=(ready,), daemon=True).start()
        try:
            found = self._ready.get(timeout=START_DEADLINE)
        except queue.Empty:
            found = None
        if found is None:
            self.kill()
            raise RuntimeError(f"{name} did not start; its log:\n" + "\n".join(self.log))
        self.ready_value = found

    def _read(self, ready) -> None:
        assert self.proc.stdout is not None
        waiting = True
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.log.append(line)
            if waiting:
                value = ready(line)
                if value is not None:
                    waiting = False
                    self._ready.put(value)
        self.proc.stdout.close()
        if waiting:
            self._ready.put(None)

    def kill(self) -> None:
        """SIGKILL: a crash."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(START_DEADLINE)

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(START_DEADLINE)
            except subprocess.TimeoutExpired:
                self.kill()


def _served_addr(line: str) -> str | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    fields = entry.get("fields", {}) if isinstance(entry, dict) else {}
    if fields.get("message") == "eric is serving":
        return fields.get("addr")
    return None


class Node(_Process):
    """One `eric serve`; `addr` is the address it serves."""

    def __init__(
        self,
        *,
        redis_url: str | None = None,
        prefix: str | None = None,
        port: int = 0,
        env: dict[str, str] | None = None,
        data_dir: str | None = None,
    ) -> None:
        argv = [eric_binary(), "serve", "--http", f"127.0.0.1:{port}", "--log-json"]
        settings = {"RUST_LOG": "info", **(env or {})}
        if redis_url is not None:
            argv += ["--redis", redis_url]
            settings["ERIC__REDIS__PREFIX"] = prefix or unique("juice")
            settings["ERIC__REDIS__COMMAND_TIMEOUT_MS"] = "2000"
        else:
            # The default engine, on disk: a directory per node (one
            # process per data directory), kept by a restart.
            data_dir = data_dir or tempfile.mkdtemp(prefix="eric-data-")
            argv += ["--data-dir", data_dir]
        self.data_dir = data_dir
        self.redis_url = redis_url
        self.env = env or {}
        self.settings = settings
        super().__init__("eric serve", argv, settings, _served_addr)
        self.addr: str = self.ready_value  # type: ignore[assignment]
        self.port = int(self.addr.rsplit(":", 1)[1])

    def uri(self, channel: str) -> str:
        return f"http://{self.addr}/{channel}"

    def restarted(self) -> Node:
        """A new node on this one's port, Redis and prefix (after `kill`)."""
        return Node(
            redis_url=self.redis_url,
            prefix=self.settings.get("ERIC__REDIS__PREFIX"),
            port=self.port,
            env=self.env,
            data_dir=self.data_dir,
        )


class Redis(_Process):
    """A private `redis-server` on a free port, persisting nothing."""

    def __init__(self) -> None:
        binary = os.environ.get("REDIS_SERVER_BIN") or shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "no redis-server: install it (scripts/install-test-deps) or set REDIS_SERVER_BIN"
            )
        self.dir = tempfile.mkdtemp(prefix="eric-juice-redis-")
        port = free_port()
        argv = [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self.dir,
        ]
        super().__init__(
            "redis-server",
            argv,
            {},
            lambda line: True if "Ready to accept connections" in line else None,
        )
        self.url = f"redis://127.0.0.1:{port}"

    def terminate(self) -> None:
        super().terminate()
        shutil.rmtree(self.dir, ignore_errors=True)
