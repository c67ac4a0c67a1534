"""Standard Webhooks: signed by `standardwebhooks.Webhook.sign`, judged by
`standardwebhooks.Webhook.verify` (webhook-* headers) or the `svix` SDK's
`Webhook.verify` (svix-* headers, which standardwebhooks does not read)."""
import datetime as dt
import json
import time
from importlib.metadata import version

import standardwebhooks
import svix.webhooks

from _common import case

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER = "whsec_b3RoZXItc2VjcmV0LW9mLWF0LWxlYXN0LTI0LWJ5dGVz"
MAPPING = {
    "event_type": "/type",
    "succeeded_types": ["payment.succeeded"],
    "payment_id": "/data/payment_id",
    "amount": "/data/total_amount",
    "currency": "/data/currency",
}


def verdict(secrets: list, body: str, headers: dict) -> bool:
    for secret in secrets:
        try:
            if "svix-id" in headers:
                svix.webhooks.Webhook(secret).verify(body, headers)
            else:
                standardwebhooks.Webhook(secret).verify(body, headers)
            return True
        except (standardwebhooks.WebhookVerificationError, svix.webhooks.WebhookVerificationError):
            pass
    return False


def generate():
    # The SDK verifiers enforce +/-5 minutes against the wall clock, so the
    # cases are signed "now"; payhook's tests pin their clock to that time.
    ts = int(time.time())
    when = dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc)
    body = json.dumps({"type": "payment.succeeded", "timestamp": when.isoformat(),
                       "data": {"payment_id": "pay_2Nx8", "total_amount": 2000, "currency": "EUR",
                                "metadata": {"order_id": "ord_77"}}}, separators=(",", ":"))
    cases = []

    def add(name, payload, msg_id, timestamp, signature, secrets, spelling="webhook", judged=None):
        headers = {f"{spelling}-id": msg_id, f"{spelling}-timestamp": str(timestamp),
                   f"{spelling}-signature": signature}
        valid = verdict(secrets, payload, headers) if judged is None else judged
        settings = {"secrets": secrets, "mapping": MAPPING}
        cases.append(case(name, settings, ts if judged is None else timestamp, payload, headers, valid))

    good = standardwebhooks.Webhook(SECRET).sign("msg_1", when, body)
    old = standardwebhooks.Webhook(OTHER).sign("msg_1", when, body)
    add("payment with webhook-* headers", body, "msg_1", ts, good, [SECRET])
    add("payment with svix-* headers", body, "msg_1", ts, good, [SECRET], "svix")
    add("several signatures, one matches", body, "msg_1", ts, f"{old} {good}", [SECRET])
    add("rotation: source holds new and old secrets", body, "msg_1", ts, old, [SECRET, OTHER])
    add("wrong secret", body, "msg_1", ts, old, [SECRET])
    add("tampered body", body.replace("2000", "2001"), "msg_1", ts, good, [SECRET])
    add("message id changed", body, "msg_2", ts, good, [SECRET])
    add("timestamp changed", body, "msg_1", ts + 1, good, [SECRET])
    add("v1a scheme is not v1", body, "msg_1", ts, good.replace("v1,", "v1a,"), [SECRET])
    # The specification's published vector. The SDK refuses it today (too old),
    # so its verdict is the specification's, checked here by re-signing it with
    # the SDK's own signer.
    pub_body, pub_ts, pub_id = '{"test": 2432232314}', 1614265330, "msg_p5jXN8AQM9LWM0D4loKWxJek"
    pub_sig = standardwebhooks.Webhook(SECRET).sign(pub_id, dt.datetime.fromtimestamp(pub_ts, tz=dt.timezone.utc), pub_body)
    assert pub_sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", pub_sig
    add("specification vector", pub_body, pub_id, pub_ts, pub_sig, [SECRET], judged=True)
    sdk = f"standardwebhooks (PyPI) {version('standardwebhooks')}, svix (PyPI) {version('svix')}"
    return "standard-webhooks", sdk, cases
