"""Braintree: notifications signed by the SDK's
`gateway.webhook_testing.sample_notification(kind, id)` (no network call),
judged by `gateway.webhook_notification.parse(bt_signature, bt_payload)` on
the form-decoded fields, as a web framework would hand them over. Bodies are
form-encoded as Braintree posts them. Variants the sampler cannot make (a
payload on one line as the Node SDK writes it, several key pairs) are signed
by the documented scheme with the SDK's own `Crypto.sha1_hmac_hash`."""
import base64
import time
import urllib.parse
from importlib.metadata import version

import braintree
from braintree.exceptions.invalid_signature_error import InvalidSignatureError
from braintree.util.crypto import Crypto

from _common import case

PUBLIC, PRIVATE = "public_key_123", "private_key_123"
OTHER_PUBLIC, OTHER_PRIVATE = "public_key_new", "private_key_new"
Kind = braintree.WebhookNotification.Kind


def gateway(public: str, private: str) -> braintree.BraintreeGateway:
    config = braintree.Configuration(environment=braintree.Environment.Sandbox, merchant_id="payhook_merchant",
                                     public_key=public, private_key=private)
    return braintree.BraintreeGateway(config)


def form(fields: dict) -> str:
    return urllib.parse.urlencode({k: v for k, v in fields.items() if v is not None})


def verdict(body: str, public: str, private: str) -> bool:
    fields = {k: v[0] for k, v in urllib.parse.parse_qs(body, keep_blank_values=True).items()}
    try:
        gateway(public, private).webhook_notification.parse(fields.get("bt_signature"), fields.get("bt_payload"))
        return True
    except InvalidSignatureError:
        return False


def generate():
    now = int(time.time())
    cases = []

    def add(name, body, public=PUBLIC, private=PRIVATE):
        settings = {"public_key": public, "private_key": private}
        cases.append(case(name, settings, now, body, {}, verdict(body, public, private)))

    def sample(kind, id, public=PUBLIC, private=PRIVATE):
        signed = gateway(public, private).webhook_testing.sample_notification(kind, id)
        return signed["bt_signature"], signed["bt_payload"].decode("ascii")

    for kind, id in [(Kind.TransactionSettled, "txn_settled_1"), (Kind.TransactionDisbursed, "txn_disbursed_1"),
                     (Kind.SubscriptionChargedSuccessfully, "sub_1"), (Kind.LocalPaymentCompleted, "lp_1"),
                     (Kind.TransactionSettlementDeclined, "txn_declined_1"),
                     (Kind.SubscriptionChargedUnsuccessfully, "sub_2"), (Kind.DisputeOpened, "dispute_1"),
                     (Kind.Check, "check_1")]:
        signature, payload = sample(kind, id)
        add(f"sdk sample {kind}", form({"bt_signature": signature, "bt_payload": payload}))

    # The deterministic vector of providers.md section 5.
    published = ("PG5vdGlmaWNhdGlvbj48dGltZXN0YW1wIHR5cGU9ImRhdGV0aW1lIj4yMDI0LTAxLTAxVDAwOjAw\n"
                 "OjAwWjwvdGltZXN0YW1wPjxraW5kPmNoZWNrPC9raW5kPjxzdWJqZWN0PjxjaGVjayB0eXBlPSJi\n"
                 "b29sZWFuIj50cnVlPC9jaGVjaz48L3N1YmplY3Q+PC9ub3RpZmljYXRpb24+\n")
    add("published check vector",
        form({"bt_signature": f"{PUBLIC}|63e53f92c1dc582f174e7fc3d459c3b4ae83677c", "bt_payload": published}))

    signature, payload = sample(Kind.TransactionSettled, "txn_settled_2")
    mac = signature.split("|", 1)[1]
    new_mac = Crypto.sha1_hmac_hash(OTHER_PRIVATE, payload)
    both = f"{OTHER_PUBLIC}|{new_mac}&{PUBLIC}|{mac}"
    add("rotation: two key pairs signed, source holds the old pair", form({"bt_signature": both, "bt_payload": payload}))
    add("rotation: two key pairs signed, source holds the new pair",
        form({"bt_signature": both, "bt_payload": payload}), OTHER_PUBLIC, OTHER_PRIVATE)
    add("another account's public key only",
        form({"bt_signature": f"{OTHER_PUBLIC}|{new_mac}", "bt_payload": payload}))
    wrong_sig, wrong_payload = sample(Kind.TransactionSettled, "txn_settled_3", PUBLIC, "private_key_wrong")
    add("wrong private key", form({"bt_signature": wrong_sig, "bt_payload": wrong_payload}))
    i = payload.index("A", 10)
    tampered = payload[:i] + "B" + payload[i + 1:]
    add("tampered payload", form({"bt_signature": signature, "bt_payload": tampered}))
    add("payload without its final line break", form({"bt_signature": signature, "bt_payload": payload.rstrip("\n")}))
    add("payload with its line breaks removed",
        form({"bt_signature": signature, "bt_payload": payload.replace("\n", "")}))
    add("payload with a character outside base64",
        form({"bt_signature": signature, "bt_payload": payload.replace("\n", " \n", 1)}))
    add("uppercase hex", form({"bt_signature": f"{PUBLIC}|{mac.upper()}", "bt_payload": payload}))
    add("signature without a public key", form({"bt_signature": mac, "bt_payload": payload}))
    add("bt_signature missing", form({"bt_payload": payload}))
    add("bt_payload missing", form({"bt_signature": signature}))

    xml = base64.b64decode(payload)
    one_line = base64.b64encode(xml).decode("ascii") + "\n"
    add("one-line payload, as the Node SDK writes it",
        form({"bt_signature": f"{PUBLIC}|{Crypto.sha1_hmac_hash(PRIVATE, one_line)}", "bt_payload": one_line}))
    return "braintree", f"braintree (PyPI) {version('braintree')}", cases
