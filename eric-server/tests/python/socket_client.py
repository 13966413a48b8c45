"""Drives eric's Unix socket with the reference's own client, unchanged.

Usage: python3 socket_client.py <socket path>

Run by `eric-server/tests/socket.rs` against a server it started. Exits 0 when
every check holds; an assertion names the first one that does not.
"""

import asyncio
import importlib.metadata
import json
import sys

from eric_sse.clients import SocketClient

EXPECTED_VERSION = "2.1.1.2"


async def main(path: str) -> None:
    version = importlib.metadata.version("eric-sse")
    assert version == EXPECTED_VERSION, f"eric-sse {version} installed, {EXPECTED_VERSION} expected"
    client = SocketClient(path)

    channel = await client.create_channel()
    assert len(channel) == 36, channel
    listener = await client.register(channel)
    assert len(listener) == 36, listener

    assert await client.broadcast_message(channel, "all", "hi") == "ack"
    assert await client.dispatch(channel, listener, "greet", {"a": 1, "b": [True, None]}) == "ack"
    assert await client.dispatch(channel, listener, "num", 1.5) == "ack"
    assert await client.dispatch(channel, listener, "ü", "é€") == "ack"

    stream = client.stream(channel, listener)
    lines = [await stream.__anext__() for _ in range(4)]
    assert all(line.endswith("\n") for line in lines), lines
    assert lines[3] == '{"event": "\\u00fc", "retry": 5, "data": "\\u00e9\\u20ac"}\n', lines[3]
    assert [json.loads(line) for line in lines] == [
        {"event": "all", "retry": 5, "data": "hi"},
        {"event": "greet", "retry": 5, "data": {"a": 1, "b": [True, None]}},
        {"event": "num", "retry": 5, "data": 1.5},
        {"event": "ü", "retry": 5, "data": "é€"},
    ], lines

    # Removing the streamed listener ends its stream with one error text.
    assert await client.remove_listener(channel, listener) == "ack"
    rest = "".join([line async for line in stream])
    assert rest == f"InvalidListenerException('{listener}')", rest

    assert await client.remove_channel(channel) == "ack"

    missing = await client.register(channel)
    assert "InvalidChannelException" in missing, missing
    assert missing == f"InvalidChannelException('No channel with id {channel}')", missing
    other = await client.create_channel()
    wrong = await client.dispatch(other, "nobody", "t", 1)
    assert wrong == "InvalidListenerException('Invalid listener nobody')", wrong
    gone = await client.remove_listener(other, "nobody")
    assert gone == "InvalidListenerException('nobody')", gone
    print("python SocketClient: all checks passed")


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(sys.argv[1]), timeout=60))
