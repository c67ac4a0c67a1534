"""Lemon Squeezy: no official SDK signs or verifies webhooks (providers.md
section 18; the official Laravel package computes `hash_hmac('sha256', $body,
$secret)`), so cases are signed by that scheme (hex HMAC-SHA256 of the raw
body), cross-checked with the published generic vector. The body is the
documented `order_created` shape."""
import json

from _common import case
from _hmac_body import standard_cases

T = 1700000000
SECRETS = ("ls_signing_secret_new", "ls_signing_secret_old", "ls_signing_secret_other")

ORDER = {
    "meta": {"event_name": "order_created", "test_mode": True, "custom_data": {"order_id": "ord_1001"}},
    "data": {
        "type": "orders", "id": "1",
        "attributes": {
            "store_id": 1, "customer_id": 1, "identifier": "104e18a2-d755-4d4b-80c4-a6c1dcbe1c10",
            "order_number": 1, "currency": "USD", "currency_rate": "1.0000", "subtotal": 999,
            "discount_total": 0, "tax": 200, "total": 1199, "subtotal_usd": 999, "total_usd": 1199,
            "status": "paid", "status_formatted": "Paid", "refunded": False, "refunded_at": None,
            "test_mode": True, "created_at": "2021-08-17T09:45:53.000000Z",
            "updated_at": "2021-08-17T09:45:53.000000Z",
        },
        "links": {"self": "https://api.lemonsqueezy.com/v1/orders/1"},
    },
}


def generate():
    bodies = {"order_created": json.dumps(ORDER, indent=2),
              "order_created, compact": json.dumps(ORDER, separators=(",", ":"))}
    cases = standard_cases("sha256", "X-Signature", SECRETS, bodies, case, T,
                           extra_headers={"X-Event-Name": "order_created"})
    return "lemonsqueezy", "none (documented scheme; Python hmac, cross-checked with providers.md generic vectors)", cases
