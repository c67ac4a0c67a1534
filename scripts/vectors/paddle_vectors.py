"""Paddle Billing: h1 computed by `PaddleSignature.calculate_hmac` (the SDK has
no header builder, so `ts=…;h1=…` is assembled by hand), judged by
`paddle_billing.Notifications.Verifier` with its clock check off
(`verify_time_drift=False`): payhook's tests pin the clock to each case's
`received_at`, and time is tested separately."""
import os
from importlib.metadata import version

from paddle_billing.Notifications import Secret, Verifier
from paddle_billing.Notifications.PaddleSignature import PaddleSignature

from _common import case, payload

T = 1700000000
SECRET = "pdl_ntfset_01hs0t3tw21j988db1pam5xg8m_GrOWLNef+vmtjJYq4mSnHNzvc8uWoJ1I"
PREVIOUS = "pdl_ntfset_01hs0t0000000000000000000_previousSecretForRotationTests"


class Request:
    """What `Verifier.verify` reads: `.headers` and `.body` (bytes)."""

    def __init__(self, header: str, body: str):
        self.headers = {"Paddle-Signature": header}
        self.body = body.encode("utf-8")


def h1(secret: str, ts: int, body: str) -> str:
    return PaddleSignature.calculate_hmac(secret, f"{ts}:{body}".encode("utf-8")).hexdigest()


def verdict(body: str, header: str, secrets: list) -> bool:
    try:
        return bool(Verifier().verify(Request(header, body), [Secret(s) for s in secrets], verify_time_drift=False))
    except (ConnectionRefusedError, ValueError):
        return False


def generate():
    os.environ.pop("TEST_MODE", None)  # it would override verify_time_drift
    txn = payload("paddle-transaction.completed.json")
    cases = []

    def add(name, body, header, secrets, at=T):
        cases.append(case(name, {"secrets": secrets}, at, body, {"Paddle-Signature": header},
                          verdict(body, header, secrets)))

    # The SDK's own test vectors (providers.md section 8), checked against the
    # published digests before use.
    sdk_secret = "pdl_ntf_01hbpjmytsa32fhr36nqgc3kgb_WvRO0eL4Bj9rgYYIBZY6wZhG4EHy9jzh"
    assert h1(sdk_secret, 1696195954, "hello-world") == \
        "d96299976a6eb066f484d7fde011ac56fc32b38fc9940bc419d6e537fdc6ef02"
    add("SDK test vector: hello-world", "hello-world",
        f"ts=1696195954;h1={h1(sdk_secret, 1696195954, 'hello-world')}", [sdk_secret], 1696195954)
    real = ('{"data":{"id":"ctm_01hs0tqf76sxmp7ba5e4mw1sc8","name":"John Doe","email":"blackhole+verification2@paddle.com",'
            '"locale":"en","status":"active","created_at":"2024-03-15T10:32:37.862Z","updated_at":"2024-03-15T10:32:37.862Z",'
            '"custom_data":null,"import_meta":null,"marketing_consent":false},"event_id":"evt_01hs0tqfme2xwb2hvwv87p8y3w",'
            '"event_type":"customer.created","occurred_at":"2024-03-15T10:32:38.286848Z",'
            '"notification_id":"ntf_01hs0tqfrhgkyp39x4wyvy7h6n"}')
    assert h1(SECRET, 1710498758, real) == "558bf93944dbeb4790c7a8af6cb2ea435c8ca9c8396aafc1a4e37424ac132744"
    add("SDK test vector: a real Paddle-signed customer.created", real,
        f"ts=1710498758;h1={h1(SECRET, 1710498758, real)}", [SECRET], 1710498758)
    generic = '{"id":"evt_1","amount":1000}'
    assert h1(SECRET, T, generic) == "af98d7f613a12d628d791f1281f8d5a7bc7d09d372c339200dc8accd78026491"
    add("generic vector", generic, f"ts={T};h1={h1(SECRET, T, generic)}", [SECRET])

    good = f"ts={T};h1={h1(SECRET, T, txn)}"
    add("documented transaction.completed", txn, good, [SECRET])
    add("rotation: two h1, new secret configured", txn,
        f"ts={T};h1={h1(PREVIOUS, T, txn)};h1={h1(SECRET, T, txn)}", [SECRET])
    add("rotation: one h1, source holds new and old secrets", txn,
        f"ts={T};h1={h1(PREVIOUS, T, txn)}", [SECRET, PREVIOUS])
    add("wrong secret", txn, f"ts={T};h1={h1(PREVIOUS, T, txn)}", [SECRET])
    add("tampered body", txn.replace("65215", "65216"), good, [SECRET])
    add("timestamp changed after signing", txn, good.replace(f"ts={T}", f"ts={T + 1}"), [SECRET])
    add("uppercase hex", txn, f"ts={T};h1={h1(SECRET, T, txn).upper()}", [SECRET])
    add("unknown key in the header", txn, f"{good};h2=00", [SECRET])
    add("h1 without ts", txn, f"h1={h1(SECRET, T, txn)}", [SECRET])
    add("body with trailing newline", txn + "\n", good, [SECRET])
    sdk = f"paddle-python-sdk (PyPI) {version('paddle-python-sdk')}"
    return "paddle", sdk, cases
