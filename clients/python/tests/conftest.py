"""Fixtures: the servers every test talks to, and the two setups each
end-to-end test runs on: one `eric serve` in memory, and two nodes on one
Redis with the publisher on one and the subscriber on the other. Each test
has a channel of its own."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from servers import JWT_SECRET, TOKEN, Node, Redis, unique


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def memory_node():
    node = Node()
    yield node
    node.terminate()


@pytest.fixture(scope="session")
def guarded_node():
    """A node in memory that wants a token on every request."""
    node = Node(env={"ERIC__HTTP__ADMIN_TOKENS": f'["{TOKEN}"]'})
    yield node
    node.terminate()


@pytest.fixture(scope="session")
def jwt_node():
    """A node in memory with an admin token and scoped JWTs."""
    node = Node(
        env={"ERIC__HTTP__ADMIN_TOKENS": f'["{TOKEN}"]', "ERIC__HTTP__JWT_SECRET": JWT_SECRET}
    )
    yield node
    node.terminate()


@pytest.fixture(scope="session")
def redis():
    server = Redis()
    yield server
    server.terminate()


@pytest.fixture(scope="session")
def redis_nodes(redis):
    prefix = unique("juice")
    nodes = (Node(redis_url=redis.url, prefix=prefix), Node(redis_url=redis.url, prefix=prefix))
    yield nodes
    for node in nodes:
        node.terminate()


@dataclass
class Setup:
    """Where a test publishes and where it subscribes: one channel, on the
    same node (memory) or on two nodes sharing Redis."""

    name: str
    pub: str
    sub: str
    base_pub: str
    base_sub: str
    channel: str


@pytest.fixture(params=["memory", "redis"])
def setup(request) -> Setup:
    channel = unique("t")
    if request.param == "memory":
        node = request.getfixturevalue("memory_node")
        pub_node = sub_node = node
    else:
        pub_node, sub_node = request.getfixturevalue("redis_nodes")
    return Setup(
        request.param,
        pub_node.uri(channel),
        sub_node.uri(channel),
        f"http://{pub_node.addr}",
        f"http://{sub_node.addr}",
        channel,
    )
