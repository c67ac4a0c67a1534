"""Checkout.com: no official SDK signs or verifies webhooks (providers.md
section 18), so cases are signed by the documented scheme (hex HMAC-SHA256 of
the raw body, signature key as UTF-8), cross-checked with the published
generic vector. The Authorization-key cases follow the documented rule: the
configured key must be sent verbatim."""
import json

from _common import case, payload
from _hmac_body import sign, standard_cases

T = 1700000000
SECRETS = ("cko_signature_key_new", "cko_signature_key_old", "cko_signature_key_other")


def generate():
    captured = payload("checkout-payment_captured.json")
    approved = payload("checkout-payment_approved.json")
    bodies = {"documented payment_captured": captured, "documented payment_approved": approved,
              "compact body": json.dumps(json.loads(captured), separators=(",", ":"))}
    cases = standard_cases("sha256", "Cko-Signature", SECRETS, bodies, case, T)
    auth = {"authorization_key": "cko_authorization_header_key"}
    sig = sign("sha256", SECRETS[0], captured)
    base = {"secrets": [SECRETS[0]], **auth}
    cases += [
        case("authorization key: sent", base, T, captured,
             {"Cko-Signature": sig, "Authorization": "cko_authorization_header_key"}, True),
        case("authorization key: missing", base, T, captured, {"Cko-Signature": sig}, False),
        case("authorization key: wrong", base, T, captured,
             {"Cko-Signature": sig, "Authorization": "cko_authorization_header_kex"}, False),
    ]
    return "checkout", "none (documented scheme; Python hmac, cross-checked with providers.md generic vectors)", cases
