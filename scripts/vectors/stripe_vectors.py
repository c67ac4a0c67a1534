"""Stripe: signed by `stripe.WebhookSignature.generate_signature_header`,
judged by `stripe.WebhookSignature.verify_header`."""
from importlib.metadata import version

import stripe

from _common import case, payload

T = 1700000000
SECRET, PREVIOUS = "whsec_test_secret", "whsec_previous_secret"


def verdict(body: str, header: str, secrets: list) -> bool:
    # tolerance=None: the SDK checks the signature only; payhook's tests pin
    # the clock to T, so time is tested separately.
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(body, header, secret, tolerance=None)
            return True
        except stripe.SignatureVerificationError:
            pass
    return False


def generate():
    sign = stripe.WebhookSignature.generate_signature_header
    pi = payload("stripe-payment_intent.succeeded.json")
    small = '{"id":"evt_test_webhook","object":"event"}'
    cases = []

    def add(name, body, header, secrets):
        settings = {"secrets": secrets}
        cases.append(case(name, settings, T, body, {"Stripe-Signature": header}, verdict(body, header, secrets)))

    add("published vector", small, sign(small, SECRET, T), [SECRET])
    add("documented payment_intent.succeeded", pi, sign(pi, SECRET, T), [SECRET])
    new_sig = sign(pi, SECRET, T).split(",")[1]
    old_sig = sign(pi, PREVIOUS, T).split(",")[1]
    add("rotation: two v1 signatures, new secret configured", pi, f"t={T},{old_sig},{new_sig}", [SECRET])
    add("rotation: one signature, source holds new and old secrets", pi, sign(pi, PREVIOUS, T), [SECRET, PREVIOUS])
    add("v0 scheme alone is not accepted", pi, f"t={T},v0=" + sign(pi, SECRET, T).split("v1=")[1], [SECRET])
    add("wrong secret", pi, sign(pi, "whsec_other", T), [SECRET])
    add("tampered body", pi.replace("1099", "1098"), sign(pi, SECRET, T), [SECRET])
    add("timestamp changed after signing", pi, sign(pi, SECRET, T).replace(f"t={T}", f"t={T + 1}"), [SECRET])
    add("body with trailing newline", pi + "\n", sign(pi, SECRET, T), [SECRET])
    return "stripe", f"stripe (PyPI) {version('stripe')}", cases
