"""Events per second one `SubscriberBlocking` receives from a local eric.

    python3 clients/python/bench/receive.py --serve target/release/eric
    python3 clients/python/bench/receive.py --uri http://127.0.0.1:8080/bench

Two figures:

- backlog: N events are published while the subscriber holds its
  subscription, and then drained: the clock runs from the first `get` to the
  N-th. The subscriber's reader thread has read ahead into its bounded queue
  (4096 events) while the backlog was made; eric holds the rest.
- live: the same while another process publishes, so the subscriber
  receives as the events come (the figure is the slower of the publishing
  and the receiving rates: both are printed).

The publisher pipelines its requests on raw HTTP/1.1 connections (a batch of
requests written at once, then their answers read) so that publishing keeps
ahead of the subscriber; its events are `eric_juice`'s wire form, from the
same `message_body` `PublisherBlocking` sends. Half the events are about a
topic the subscriber filters out, so eric's filtering is part of the path.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

from eric_juice import Event, SubscriberBlocking
from eric_juice.endpoint import Endpoint
from eric_juice.event import message_body


class Reading(Event):
    """A typical small event: a few fields, a topic."""

    sensor: str
    value: float
    n: int

    def topic(self) -> str:
        return f"lab.{self.sensor}"


def publish_pipelined(uri: str, count: int, batch: int = 256) -> float:
    """Publishes `count` matching events (and as many filtered out,
    interleaved); returns matching events published per second."""
    endpoint = Endpoint(uri)
    target = urlsplit(endpoint.base)
    path = urlsplit(endpoint.url("messages")).path
    conn = socket.create_connection((target.hostname, target.port or 80))
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    head = f"POST {path} HTTP/1.1\r\nHost: {target.netloc}\r\nContent-Type: application/json\r\n"
    if "Authorization" in endpoint.headers:
        head += f"Authorization: {endpoint.headers['Authorization']}\r\n"

    def request(event: Event) -> bytes:
        body = json.dumps(message_body(event), separators=(",", ":")).encode()
        return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body

    start = time.perf_counter()
    reader = _Answers(conn)
    sent = 0
    while sent < count:
        n = min(batch, count - sent)
        requests = []
        for i in range(sent, sent + n):
            requests.append(request(Reading(sensor="fridge", value=i * 0.5, n=i)))
            requests.append(request(Reading(sensor="pump", value=i * 0.5, n=i)))
        conn.sendall(b"".join(requests))
        reader.expect(2 * n)
        sent += n
    elapsed = time.perf_counter() - start
    conn.close()
    return count / elapsed


class _Answers:
    """Reads pipelined HTTP/1.1 answers, insisting each is 202."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buf = b""

    def expect(self, n: int) -> None:
        while n:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                self._more()
                continue
            head = self.buf[:end].decode("latin-1")
            if not head.startswith("HTTP/1.1 202"):
                raise SystemExit(
                    f"publish refused: {head.splitlines()[0]} {self.buf[end + 4 : end + 200]!r}"
                )
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            while len(self.buf) < end + 4 + length:
                self._more()
            self.buf = self.buf[end + 4 + length :]
            n -= 1

    def _more(self) -> None:
        chunk = self.conn.recv(1 << 16)
        if not chunk:
            raise SystemExit("the server closed the connection")
        self.buf += chunk


def receive(subscriber: SubscriberBlocking, count: int) -> float:
    first = subscriber.get(timeout=30)
    start = time.perf_counter()
    last = first
    for _ in range(count - 1):
        last = subscriber.get(timeout=30)
    elapsed = time.perf_counter() - start
    assert (first.n, last.n) == (0, count - 1), (first, last)
    return (count - 1) / elapsed


def serve(binary: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [binary, "serve", "--http", "127.0.0.1:0", "--log-json"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RUST_LOG": "info"},
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        try:
            fields = json.loads(line).get("fields", {})
        except ValueError:
            continue
        if fields.get("message") == "eric is serving":
            return proc, fields["addr"]
    raise SystemExit("eric serve exited before serving")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--uri", help="a running server and channel, http://HOST:PORT/CHANNEL")
    where.add_argument(
        "--serve", metavar="ERIC", help="start this eric binary in memory on a free port"
    )
    parser.add_argument(
        "--events", type=int, default=100_000, help="matching events per figure (default 100000)"
    )
    args = parser.parse_args()

    proc = None
    uri = args.uri
    if args.serve:
        proc, addr = serve(args.serve)
        uri = f"http://{addr}/bench"
    try:
        for mode in ["backlog", "live"]:
            channel_uri = f"{uri.rstrip('/')}-{mode}-{os.getpid()}"
            subscriber = SubscriberBlocking(channel_uri)
            subscriber.subscribe(Reading, topic="lab.fridge")
            if mode == "backlog":
                published = publish_pipelined(channel_uri, args.events)
                received = receive(subscriber, args.events)
            else:
                with multiprocessing.get_context("spawn").Pool(1) as pool:
                    publishing = pool.apply_async(publish_pipelined, (channel_uri, args.events))
                    received = receive(subscriber, args.events)
                    published = publishing.get()
            subscriber.close()
            print(
                f"{mode}: received {received:,.0f} events/s "
                f"(published {published:,.0f} matching events/s, as many filtered out; {args.events:,} events)"
            )
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    sys.exit(main())
