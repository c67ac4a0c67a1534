"""Coinbase Commerce: signed by `WebhookSignature._compute_signature`, judged
by `WebhookSignature.verify_sig_header` (PyPI `coinbase-commerce`, archived
but the official SDK). There is no shared sample payload: the charge body is
built after Coinbase's documented webhook example."""
import json
from importlib.metadata import version

from coinbase_commerce.error import SignatureVerificationError
from coinbase_commerce.webhook import WebhookSignature

from _common import case

T = 1700000000
SECRET, PREVIOUS = "test_secret_123", "previous_secret_456"

CONFIRMED = json.dumps({
    "id": 1, "scheduled_for": "2023-11-14T22:13:20Z", "attempt_number": 1,
    "event": {
        "id": "24934862-d980-46cb-9402-43c81b0cdba6", "resource": "event", "type": "charge:confirmed",
        "api_version": "2018-03-22", "created_at": "2023-11-14T22:13:20Z",
        "data": {
            "id": "f765421f-2a13-4b55-a1ea-5a8c01e4b1d4", "resource": "charge", "code": "66BEOV2A",
            "name": "The Sovereign Individual", "description": "Mastering the Transition to the Information Age",
            "hosted_url": "https://commerce.coinbase.com/charges/66BEOV2A", "pricing_type": "fixed_price",
            "created_at": "2023-11-14T22:03:20Z", "confirmed_at": "2023-11-14T22:13:20Z",
            "metadata": {"order_id": "6735"},
            "pricing": {"local": {"amount": "100.00", "currency": "USD"},
                        "bitcoin": {"amount": "0.00270000", "currency": "BTC"}},
            "timeline": [{"time": "2023-11-14T22:03:20Z", "status": "NEW"},
                         {"time": "2023-11-14T22:13:20Z", "status": "COMPLETED"}],
            "payments": [],
        },
    },
}, indent=2)


def verdict(body, header, secrets):
    for secret in secrets:
        try:
            if WebhookSignature.verify_sig_header(body, header, secret):
                return True
        except SignatureVerificationError:
            pass
    return False


def generate():
    sign = WebhookSignature._compute_signature
    small = '{"id":"evt_1","amount":1000}'
    cases = []

    def add(name, body, header, secrets=(SECRET,)):
        headers = {"X-CC-Webhook-Signature": header}
        cases.append(case(name, {"secrets": list(secrets)}, T, body, headers, verdict(body, header, secrets)))

    add("generic body", small, sign(small, SECRET))
    add("charge:confirmed", CONFIRMED, sign(CONFIRMED, SECRET))
    add("rotation: source holds new and old secrets, signed by old", CONFIRMED, sign(CONFIRMED, PREVIOUS),
        (SECRET, PREVIOUS))
    add("wrong secret", CONFIRMED, sign(CONFIRMED, "other_secret"))
    add("tampered body", CONFIRMED.replace("100.00", "100.01"), sign(CONFIRMED, SECRET))
    add("signature not hex", CONFIRMED, "not-hex-at-all")
    add("signature truncated", CONFIRMED, sign(CONFIRMED, SECRET)[:32])
    add("body with trailing newline", CONFIRMED + "\n", sign(CONFIRMED, SECRET))
    return "coinbase", f"coinbase-commerce (PyPI) {version('coinbase-commerce')}", cases
