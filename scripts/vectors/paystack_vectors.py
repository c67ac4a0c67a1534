"""Paystack: no official SDK signs or verifies webhooks (providers.md section
18), so cases are signed by the documented scheme (hex HMAC-SHA512 of the raw
body, secret API key as UTF-8), cross-checked with the published generic
vector. The body is the documented `charge.success` shape."""
import json

from _common import case
from _hmac_body import standard_cases

T = 1700000000
SECRETS = ("sk_test_4e1a0c9d2b7f6a3e5d8c1b0a9f7e6d5c4b3a2918", "sk_test_previous_key", "sk_test_other_key")

CHARGE = {
    "event": "charge.success",
    "data": {
        "id": 302961, "domain": "test", "status": "success", "reference": "qTPrJoy9Bx",
        "amount": 10000, "message": None, "gateway_response": "Approved by Financial Institution",
        "paid_at": "2016-09-30T21:10:19.000Z", "created_at": "2016-09-30T21:09:56.000Z",
        "channel": "card", "currency": "NGN", "ip_address": "41.242.49.37", "metadata": 0,
        "fees": None, "customer": {"id": 68324, "customer_code": "CUS_qo38as2hpsgk2r0"},
        "authorization": {"authorization_code": "AUTH_f5rnfq9p", "bin": "539999", "last4": "8877",
                          "channel": "card", "card_type": "mastercard DEBIT", "reusable": True},
    },
}


def generate():
    bodies = {"charge.success": json.dumps(CHARGE, indent=2),
              "charge.success, compact": json.dumps(CHARGE, separators=(",", ":"))}
    cases = standard_cases("sha512", "x-paystack-signature", SECRETS, bodies, case, T)
    return "paystack", "none (documented scheme; Python hmac, cross-checked with providers.md generic vectors)", cases
