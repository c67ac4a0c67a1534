"""Adyen: items signed by `Adyen.util.generate_notification_sig` (PyPI
`Adyen`), judged item by item by `Adyen.util.is_valid_hmac_notification`.

payhook requires *every* item of a batch to carry a valid signature; the
Python SDK checks only `notificationItems[0]` and returns None when an item
has no `additionalData`. So the verdict here is the SDK's verdict applied to
each item, with a missing signature counting as invalid (stricter than the
SDK, as providers.md section 3 asks).

The Python SDK signs a JSON null as the text "None"; Adyen and the Node SDK
sign it as the empty string. The null cases are therefore signed and judged
by the Node SDK `@adyen/api-library` (`hmacValidator.calculateHmac` /
`validateHMAC`), installed at the pinned version into a temporary folder with
npm. Without node/npm those cases are skipped with a warning.

HTTP Basic auth is not part of either SDK: the Basic auth cases carry a
correctly SDK-signed body and their verdict is the documented rule (the
configured credentials must be present and equal).
"""
import base64
import copy
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import version

import Adyen.util as util

from _common import case, payload

T = 1700000000
# The key of Adyen's own SDK test vectors, and a second one for rotation.
KEY = "DFB1EB5485895CFA84146406857104ABB4CBCABDC8AAF103A624C8F6A3EAAB00"
OLD = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
OTHER = "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF"
NODE_SDK = "@adyen/api-library@32.1.0"


def sdk_valid(body: str, keys: list) -> bool:
    """Every item valid under one key, per the Python SDK's item check."""
    try:
        items = [i["NotificationRequestItem"] for i in json.loads(body)["notificationItems"]]
    except (ValueError, KeyError, TypeError):
        return False
    if not items:
        return False
    for key in keys:
        if all(item.get("additionalData", {}).get("hmacSignature")
               and util.is_valid_hmac_notification(item, key) for item in items):
            return True
    return False


def sign_items(doc: dict, key: str) -> dict:
    doc = copy.deepcopy(doc)
    for wrapper in doc["notificationItems"]:
        item = wrapper["NotificationRequestItem"]
        unsigned = {k: v for k, v in item.items() if k != "additionalData"}
        sig = util.generate_notification_sig(unsigned, key).decode()
        item.setdefault("additionalData", {})["hmacSignature"] = sig
    return doc


def item(event_code: str, psp: str, value: int = 1000, currency: str = "EUR", **extra) -> dict:
    fields = {"pspReference": psp, "merchantAccountCode": "TestMerchant",
              "merchantReference": f"order-{psp}", "amount": {"value": value, "currency": currency},
              "eventCode": event_code, "eventDate": "2024-05-01T10:00:00+02:00", "success": "true"}
    fields.update(extra)
    return fields


def batch(*items, live="false") -> dict:
    return {"live": live, "notificationItems": [{"NotificationRequestItem": i} for i in items]}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def node_cases():
    """Signatures and verdicts for null-valued fields from the Node SDK."""
    if not (shutil.which("node") and shutil.which("npm")):
        print("adyen: node/npm not found; null-field cases skipped", file=sys.stderr)
        return []
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", tmp, NODE_SDK],
                       check=True, stdout=subprocess.DEVNULL)
        script = pathlib.Path(tmp) / "sign.js"
        script.write_text("""
const { hmacValidator } = require("@adyen/api-library");
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const v = new hmacValidator();
const out = input.items.map(({ item, key, judge }) => {
  const signature = v.calculateHmac(item, key);
  const signedItem = { ...item, additionalData: { hmacSignature: signature } };
  let valid;
  try { valid = v.validateHMAC(judge ? { ...item, additionalData: judge } : signedItem, key); }
  catch (e) { valid = false; }
  return { signature, valid };
});
console.log(JSON.stringify(out));
""")
        null_orig = item("AUTHORISATION", "7914073381342284", 1130, originalReference=None,
                         merchantReference="TestPayment-1407325143704")
        python_sig = util.generate_notification_sig(null_orig, KEY).decode()
        request = {"items": [
            {"item": null_orig, "key": KEY},
            {"item": null_orig, "key": KEY, "judge": {"hmacSignature": python_sig}},
        ]}
        result = subprocess.run(["node", str(script)], input=json.dumps(request), text=True,
                                capture_output=True, check=True, cwd=tmp,
                                env={"NODE_PATH": str(pathlib.Path(tmp) / "node_modules"), "PATH": os.environ.get("PATH", "")})
        (node_signed, python_judged) = json.loads(result.stdout)
    with_node_sig = copy.deepcopy(null_orig)
    with_node_sig["additionalData"] = {"hmacSignature": node_signed["signature"]}
    with_python_sig = copy.deepcopy(null_orig)
    with_python_sig["additionalData"] = {"hmacSignature": python_sig}
    settings = {"secrets": [KEY]}
    return [
        case("null originalReference signs as empty (Node SDK)", settings, T,
             json.dumps(batch(with_node_sig), indent=2), {}, node_signed["valid"]),
        case("null originalReference signed as 'None' (Python SDK bug) is refused by the Node SDK", settings, T,
             json.dumps(batch(with_python_sig), indent=2), {}, python_judged["valid"]),
    ]


def generate():
    cases = []

    def add(name, doc_or_body, keys, headers=None, settings_extra=None, valid=None):
        body = doc_or_body if isinstance(doc_or_body, str) else json.dumps(doc_or_body, indent=2)
        settings = {"secrets": keys, **(settings_extra or {})}
        verdict = sdk_valid(body, keys) if valid is None else valid
        cases.append(case(name, settings, T, body, headers or {}, verdict))

    published = batch({"pspReference": "7914073381342284", "merchantAccountCode": "TestMerchant",
                       "merchantReference": "TestPayment-1407325143704",
                       "amount": {"value": 1130, "currency": "EUR"}, "eventCode": "AUTHORISATION",
                       "success": "true", "eventDate": "2014-08-06T13:39:03+02:00"})
    published = sign_items(published, KEY)
    assert published["notificationItems"][0]["NotificationRequestItem"]["additionalData"]["hmacSignature"] \
        == "Ny9gS2veKo5E4w8/OL6xz1/wvT/hYkAXy1xNc/QvO4I=", "the SDK reproduces Adyen's published vector"
    add("published vector (no originalReference)", published, [KEY])

    authorisation = sign_items(json.loads(payload("adyen-AUTHORISATION.json")), KEY)
    capture = sign_items(json.loads(payload("adyen-CAPTURE.json")), KEY)
    add("documented AUTHORISATION", authorisation, [KEY])
    add("documented CAPTURE", capture, [KEY], settings_extra={"succeeded_on": ["AUTHORISATION", "CAPTURE"]})
    add("documented AUTHORISATION, compact JSON (fields are signed, not bytes)",
        json.dumps(authorisation, separators=(",", ":")), [KEY])

    two = sign_items(batch(item("AUTHORISATION", "8815000000000001"),
                           item("REFUND", "8815000000000002", originalReference="8815000000000001")), KEY)
    add("batch of two, both signed", two, [KEY])
    unsigned_second = copy.deepcopy(two)
    del unsigned_second["notificationItems"][1]["NotificationRequestItem"]["additionalData"]
    add("batch of two, second item unsigned", unsigned_second, [KEY])
    mixed = copy.deepcopy(two)
    mixed["notificationItems"][1] = sign_items(batch(two["notificationItems"][1]["NotificationRequestItem"]),
                                               OTHER)["notificationItems"][0]
    add("batch of two, second item signed with another key", mixed, [KEY])

    add("rotation: signed with the old key, source holds new and old", sign_items(batch(
        item("AUTHORISATION", "8815000000000003")), OLD), [KEY, OLD])
    add("wrong key", sign_items(batch(item("AUTHORISATION", "8815000000000004")), OTHER), [KEY])
    tampered = copy.deepcopy(authorisation)
    tampered["notificationItems"][0]["NotificationRequestItem"]["amount"]["value"] = 100000
    add("tampered amount", tampered, [KEY])
    malformed = copy.deepcopy(authorisation)
    malformed["notificationItems"][0]["NotificationRequestItem"]["additionalData"]["hmacSignature"] = "%%not-base64%%"
    add("malformed signature", malformed, [KEY])
    add("no signature at all", json.loads(payload("adyen-AUTHORISATION.json")), [KEY])

    auth = {"basic_auth_username": "adyen_webhook", "basic_auth_password": "Pa55:word"}
    add("basic auth: correct credentials", authorisation, [KEY], {"Authorization": basic("adyen_webhook", "Pa55:word")},
        auth, valid=sdk_valid(json.dumps(authorisation), [KEY]))
    add("basic auth: missing", authorisation, [KEY], {}, auth, valid=False)
    add("basic auth: wrong password", authorisation, [KEY], {"Authorization": basic("adyen_webhook", "guess")},
        auth, valid=False)

    cases.extend(node_cases())
    return "adyen", f"Adyen (PyPI) {version('Adyen')}; {NODE_SDK} (npm) for null fields", cases
