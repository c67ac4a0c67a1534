#!/usr/bin/env python3
"""Reads payhook's Redis for load-tests/bench, through the documented key
layout only (payhook:arrivals with group `processors`, the partition-0 event
stream): memory, backlog, and the exactly-once check.

PORT is one redis-server's port, or a Redis Cluster's masters' ports
separated by commas: then every arrival shard's stream (`payhook:arrivals*`)
and DLQ are found on the masters, and memory is summed over them.

    probe.py PORT memory                  used_memory in bytes
    probe.py PORT arrivals                XLEN payhook:arrivals
    probe.py PORT backlog                 entries not yet settled: lag + pending
    probe.py PORT drain SECONDS           waits until the backlog is 0; exit 1 if it is not in time
    probe.py PORT check OK_FILE SENT ANSWERED NON2XX
                                          compares the events with the acknowledged deliveries

A small RESP client on the standard library, so the benchmark needs no
Python packages. Loopback only.
"""

import socket
import sys
import time

ARRIVALS = "payhook:arrivals"
GROUP = "processors"
EVENTS = "payhook:events:payment.succeeded.v1:{0}"
DLQ = "payhook:dlq"
# gen.py puts the delivery key after this prefix in the payment id and the request id.
PAYMENT_PREFIX = "stripe:pi_bench"
REQUEST_PREFIX = "bench"

# Reads a page of the event stream inside Redis and returns only the
# idempotency keys, so the check moves a few bytes per event instead of the
# whole CloudEvent. ARGV[1]: exclusive start id ("-" for the first page).
EVENT_KEYS_PAGE = """
local page = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])
local keys = {}
for _, entry in ipairs(page) do
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'idempotencykey' then
      keys[#keys + 1] = fields[i + 1]
      break
    end
  end
end
local last = page[#page] and page[#page][1] or false
return {last, keys}
"""


class Redis:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.file = self.sock.makefile("rb")

    def __call__(self, *args):
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(parts))
        return self._reply()

    def _reply(self):
        line = self.file.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.file.read(n + 2)[:-2]
            return data.decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError(f"unexpected reply {line!r}")


def pairs(flat):
    return dict(zip(flat[::2], flat[1::2]))


def masters(known):
    """The ports of a cluster's masters that are not failing, asked of the
    first of `known` that answers (waiting up to a minute)."""
    deadline = time.monotonic() + 60
    while True:
        for port in known:
            try:
                nodes = Redis(port)("CLUSTER", "NODES")
            except (OSError, RuntimeError):
                continue
            ports = masters_in(nodes)
            if ports:
                return ports
        if time.monotonic() > deadline:
            raise RuntimeError("no node of the cluster answers CLUSTER NODES")
        time.sleep(0.2)


def masters_in(nodes):
    ports = []
    for line in nodes.splitlines():
        fields = line.split()
        if "master" in fields[2].split(",") and "fail" not in fields[2]:
            ports.append(int(fields[1].split("@")[0].rsplit(":", 1)[1]))
    return ports


class Nodes:
    """One node, or a cluster's masters: where each key lives."""

    def __init__(self, ports):
        ports = [int(p) for p in ports.split(",")]
        self.cluster = len(ports) > 1
        if self.cluster:
            # The masters now: a replica may have taken over since the run
            # began, and a demoted master may be loading its new master's data.
            ports = masters(ports)
        self.nodes = [Redis(p) for p in ports]

    def streams(self, prefix):
        """(node, key) of every stream named `prefix` or `prefix:{tag}`."""
        if not self.cluster:
            return [(self.nodes[0], prefix)]
        found = []
        for node in self.nodes:
            cursor = "0"
            while True:
                cursor, keys = node("SCAN", cursor, "MATCH", prefix + "*", "TYPE", "stream", "COUNT", 1000)
                found.extend((node, k) for k in keys if k == prefix or k.startswith(prefix + ":"))
                if cursor == "0":
                    break
        return found

    def owner(self, key):
        """The node holding `key` (the others answer MOVED)."""
        for node in self.nodes:
            try:
                node("EXISTS", key)
                return node
            except RuntimeError:
                continue
        raise RuntimeError(f"no node holds {key}")


def memory(nodes):
    total = 0
    for r in nodes.nodes:
        line = next(l for l in r("INFO", "memory").splitlines() if l.startswith("used_memory:"))
        total += int(line.split(":", 1)[1])
    return total


def arrivals(nodes):
    return sum(r("XLEN", key) for r, key in nodes.streams(ARRIVALS))


def backlog(nodes):
    return sum(stream_backlog(r, key) for r, key in nodes.streams(ARRIVALS))


def stream_backlog(r, stream):
    """Entries the group has not settled: not yet delivered (lag) plus
    delivered and not acknowledged (pending)."""
    groups = [pairs(g) for g in r("XINFO", "GROUPS", stream)]
    group = next((g for g in groups if g["name"] == GROUP), None)
    if group is None:
        return r("XLEN", stream)
    lag = group.get("lag")
    if lag is None:
        # Redis cannot count the lag (entries were deleted): nothing is
        # undelivered exactly when the group has reached the last id.
        last = pairs(r("XINFO", "STREAM", stream))["last-generated-id"]
        lag = 0 if group["last-delivered-id"] == last else 1
    return lag + group["pending"]


def drain(r, seconds):
    deadline = time.monotonic() + seconds
    while True:
        left = backlog(r)
        if left == 0:
            return 0
        if time.monotonic() > deadline:
            print(left)
            return 1
        time.sleep(0.2)


def event_keys(nodes):
    r = nodes.owner(EVENTS)
    start, keys = "-", []
    while True:
        last, page = r("EVAL", EVENT_KEYS_PAGE, 1, EVENTS, start, 10000)
        keys.extend(page)
        if not last:
            return keys
        start = "(" + last


def check(r, ok_file, sent, answered, non2xx):
    """Every delivery answered 2xx became exactly one event.

    Each delivery is its own payment, so its event is found by its payment id.
    Requests still in flight when wrk stopped (sent, never answered) or
    answered with an error may have been stored too, and then rightly became
    events; only those may have an event without a 2xx.
    """
    with open(ok_file, encoding="ascii") as f:
        acknowledged = {line[len(REQUEST_PREFIX):].strip() for line in f if line.startswith(REQUEST_PREFIX)}
    delivered = [k[len(PAYMENT_PREFIX):] for k in event_keys(r)]
    published = set(delivered)
    duplicates = len(delivered) - len(published)
    lost = len(acknowledged - published)
    unacknowledged = len(published - acknowledged)
    may_be_stored = (sent - answered) + non2xx
    unanswered = "in flight at stop" + (" or answered non-2xx" if non2xx else "")
    if duplicates == 0 and lost == 0 and unacknowledged <= may_be_stored:
        extra = f" + {unacknowledged} {unanswered}" if unacknowledged else ""
        print(f"PASS ({len(delivered):,} events = {len(acknowledged):,} 2xx{extra})")
        return 0
    problems = [f"{lost} 2xx without an event"] if lost else []
    problems += [f"{duplicates} duplicate events"] if duplicates else []
    if unacknowledged > may_be_stored:
        problems.append(f"{unacknowledged} events without a 2xx, but only {may_be_stored} requests {unanswered}")
    dead = sum(node("XLEN", key) for node, key in r.streams(DLQ))
    problems += [f"{dead} dead letters"] if dead else []
    print(f"FAIL ({len(delivered):,} events for {len(acknowledged):,} 2xx: {'; '.join(problems)})")
    return 1


def main(argv):
    r = Nodes(argv[1])
    command, rest = argv[2], argv[3:]
    if command == "memory":
        print(memory(r))
    elif command == "arrivals":
        print(arrivals(r))
    elif command == "backlog":
        print(backlog(r))
    elif command == "drain":
        return drain(r, float(rest[0]))
    elif command == "check":
        return check(r, rest[0], *map(int, rest[1:4]))
    else:
        sys.exit(f"probe.py: unknown command {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
