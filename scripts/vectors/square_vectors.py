"""Square: the SDK cannot sign, so cases are signed by the documented scheme
(base64 HMAC-SHA256 of notification_url + body) and judged by
`square.utils.webhooks_helper.verify_signature`."""
import base64
import hashlib
import hmac
from importlib.metadata import version

from square.utils.webhooks_helper import verify_signature

from _common import case, payload

T = 1700000000
URL = "https://example.com/webhooks/square"
KEY, PREVIOUS = "test_secret_123", "previous_secret_456"


def sign(url, body, key):
    return base64.b64encode(hmac.new(key.encode(), (url + body).encode(), hashlib.sha256).digest()).decode()


def verdict(body, header, keys, url):
    return any(verify_signature(request_body=body, signature_header=header, signature_key=k, notification_url=url)
               for k in keys)


def generate():
    updated = payload("square-payment.updated.json")
    small = '{"id":"evt_1","amount":1000}'
    cases = []

    def add(name, body, header, keys=(KEY,), url=URL):
        settings = {"secrets": list(keys), "notification_url": url}
        headers = {"x-square-hmacsha256-signature": header}
        cases.append(case(name, settings, T, body, headers, verdict(body, header, keys, url)))

    # Square's own SDK test vectors.
    sdk_body = ('{"merchant_id":"MLEFBHHSJGVHD","type":"webhooks.test_notification","event_id":'
                '"ac3ac95b-f97d-458c-a6e6-18981597e05f","created_at":"2022-07-13T20:30:59.037339943Z",'
                '"data":{"type":"webhooks","id":"bc368e64-01aa-407e-b46e-3231809b1129"}}')
    add("Square SDK test vector", sdk_body, "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4=",
        ["Ibxx_5AKakO-3qeNVR61Dw"], "https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9")
    add("Square SDK test vector: < and > are not escaped", '{"data":{"type":"webhooks","id":">id<"}}',
        "Cxt7+aTi4rKgcA0bC4g9EHdVtLSDWdqccmL5MvihU4U=", ["signature-key"], "https://webhook.site/webhooks")
    add("generic body", small, sign(URL, small, KEY))
    add("documented payment.updated", updated, sign(URL, updated, KEY))
    add("rotation: source holds new and old keys, signed by old", updated, sign(URL, updated, PREVIOUS),
        (KEY, PREVIOUS))
    add("wrong key", updated, sign(URL, updated, "other_key"))
    add("tampered body", updated.replace('"amount": 100', '"amount": 101', 1), sign(URL, updated, KEY))
    add("signed for another notification URL", updated, sign(URL + "/", updated, KEY))
    add("signed over the body alone", updated, sign("", updated, KEY))
    add("signature not base64", updated, "not*base64!")
    add("signature truncated", updated, sign(URL, updated, KEY)[:20])
    add("body with trailing newline", updated + "\n", sign(URL, updated, KEY))
    return "square", f"squareup (PyPI) {version('squareup')}", cases
