"""Razorpay: the SDK cannot sign, so cases are signed by the documented
scheme (hex HMAC-SHA256 of the body) and judged by
`razorpay.Client(...).utility.verify_webhook_signature`."""
import hashlib
import hmac
from importlib.metadata import version

import razorpay

from _common import case, payload

T = 1700000000
SECRET, PREVIOUS = "test_secret_123", "previous_secret_456"
EVENT_ID = "KXNmP1gvAmRJr3"
CLIENT = razorpay.Client(auth=("rzp_test_key_id", "rzp_test_key_secret"))


def sign(body, secret):
    return hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()


def verdict(body, header, secrets):
    for secret in secrets:
        try:
            if CLIENT.utility.verify_webhook_signature(body, header, secret):
                return True
        except razorpay.errors.SignatureVerificationError:
            pass
    return False


def generate():
    captured = payload("razorpay-payment.captured.json")
    small = '{"id":"evt_1","amount":1000}'
    cases = []

    def add(name, body, header, secrets=(SECRET,)):
        headers = {"X-Razorpay-Signature": header, "x-razorpay-event-id": EVENT_ID}
        cases.append(case(name, {"secrets": list(secrets)}, T, body, headers, verdict(body, header, secrets)))

    add("generic body", small, sign(small, SECRET))
    add("documented payment.captured", captured, sign(captured, SECRET))
    add("rotation: source holds new and old secrets, signed by old", captured, sign(captured, PREVIOUS),
        (SECRET, PREVIOUS))
    add("wrong secret", captured, sign(captured, "other_secret"))
    add("tampered body", captured.replace('"amount": 100', '"amount": 101', 1), sign(captured, SECRET))
    add("signature not hex", captured, "not-hex-at-all")
    add("signature truncated", captured, sign(captured, SECRET)[:32])
    add("empty signature", captured, "")
    add("body with trailing newline", captured + "\n", sign(captured, SECRET))
    return "razorpay", f"razorpay (PyPI) {version('razorpay')}", cases
