"""The Python reference's in-memory hot paths (eric-sse 2.1.1.2), timed as
eric's criterion bench times its own: 10,000 operations on one channel, the
median of 20 rounds. Run: `python3 eric-core/benches/python_reference.py`."""
import statistics
import time
from eric_sse.prefabs import SSEChannel
from eric_sse.message import Message

N = 10_000
ROUNDS = 20

def rate(f):
    return N / statistics.median(f() for _ in range(ROUNDS))

ch = SSEChannel()
l = ch.add_listener()
l.start()
msg = Message(msg_type="bench", msg_payload={"n": 1, "text": "hello"})

def dispatch():
    t = time.perf_counter()
    for _ in range(N):
        ch.dispatch(l.id, msg)
    e = time.perf_counter() - t
    for _ in range(N):
        ch.deliver_next(l.id)
    return e

def deliver():
    for _ in range(N):
        ch.dispatch(l.id, msg)
    t = time.perf_counter()
    for _ in range(N):
        ch.deliver_next(l.id)
    return time.perf_counter() - t

fan = SSEChannel()
fl = [fan.add_listener() for _ in range(1000)]
def broadcast():
    t = time.perf_counter()
    for _ in range(10):
        fan.broadcast(msg)
    e = time.perf_counter() - t
    for x in fl:
        for _ in range(10):
            fan._get_queue(x.id).pop()
    return e

print(f"dispatch {rate(dispatch)/1e6:.2f} M/s")
print(f"deliver_next {rate(deliver)/1e6:.2f} M/s")
print(f"broadcast_1000 {rate(broadcast)/1e6:.2f} M deliveries/s")
