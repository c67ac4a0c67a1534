#!/usr/bin/env python3
"""Pre-signs unique Stripe deliveries for load-tests/bench, so wrk spends no
CPU on HMAC.

Writes (or extends) DIR/reqs.<thread>: raw HTTP requests back to back, each
exactly the same number of bytes (printed on stdout, then the body's), which load.lua reads
one at a time. Every request is a unique `payment_intent.succeeded` event
(unique `evt_` and `pi_` ids, so each is its own payment) based on the Stripe
sample in tests/fixtures, compacted (about 1.3 KB), signed as Stripe signs:
`Stripe-Signature: t=<now>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.

The delivery key `<thread:3><sequence:16>` appears in the event id, the
payment id and the `x-request-id`, which payhook echoes and puts into the
event as `correlationid`: the exactly-once check maps both ways with it.

Run one process per wrk thread; each appends to its own file until it holds
--count requests, so a later, larger run reuses what an earlier one made.
"""

import argparse
import hmac
import json
import os
import sys
import time

EVT = "@@EVT@@"
PI = "@@PI@@"
KEY_DIGITS = (3, 16)
# Prefixes chosen so the ids keep the sample's lengths (evt_/pi_ plus 24).
PREFIX = "bench"


def body_parts(template_path, now):
    """The compact body split around the places where the delivery key goes."""
    with open(template_path, encoding="utf-8") as f:
        event = json.load(f)
    intent = event["data"]["object"]
    secret_suffix = intent["client_secret"].split("_secret_", 1)[1]
    event["id"] = EVT
    event["created"] = now
    intent["id"] = PI
    intent["client_secret"] = PI + "_secret_" + secret_suffix
    intent["created"] = now
    text = json.dumps(event, separators=(",", ":"))
    parts = []
    for piece in text.split(EVT):
        parts.extend(piece.split(PI))
    # The order of the keys in the sample: event id first, then the payment id twice.
    return [p.encode() for p in parts], "evt_" + PREFIX, "pi_" + PREFIX


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--thread", type=int, required=True)
    parser.add_argument("--count", type=int, required=True, help="requests the file must hold")
    args = parser.parse_args()

    now = int(time.time())
    parts, evt_prefix, pi_prefix = body_parts(args.template, now)
    if len(parts) != 4:
        sys.exit("gen.py: the template must hold one event id and the payment id twice")
    key = args.secret.encode()
    stamp = str(now).encode()

    def record(sequence):
        delivery = f"{args.thread:0{KEY_DIGITS[0]}d}{sequence:0{KEY_DIGITS[1]}d}".encode()
        body = b"".join(
            (parts[0], evt_prefix.encode(), delivery, parts[1], pi_prefix.encode(), delivery,
             parts[2], pi_prefix.encode(), delivery, parts[3])
        )
        mac = hmac.digest(key, stamp + b"." + body, "sha256").hex().encode()
        return b"".join((
            b"POST /webhooks/stripe HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n",
            b"Stripe-Signature: t=", stamp, b",v1=", mac, b"\r\n",
            b"X-Request-Id: ", PREFIX.encode(), delivery, b"\r\n",
            b"Content-Length: ", str(len(body)).encode(), b"\r\n\r\n", body,
        ))

    size = len(record(0))
    body_bytes = size - record(0).index(b"\r\n\r\n") - 4
    path = os.path.join(args.dir, f"reqs.{args.thread}")
    have = os.path.getsize(path) // size if os.path.exists(path) else 0
    with open(path, "ab", buffering=1 << 20) as out:
        out.truncate(have * size)  # drop a partial record a killed run may have left
        for sequence in range(have, args.count):
            out.write(record(sequence))
    print(size, body_bytes)


if __name__ == "__main__":
    main()
