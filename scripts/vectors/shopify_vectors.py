"""Shopify: signed by `getHmac` from `@shopify/shopify-api/test-helpers` and
judged by `shopifyApi(...).webhooks.validate`, both from npm (the PyPI
`ShopifyAPI` package has no webhook code). The npm package is installed into a
temporary folder and driven by node through `shopify_vectors.js`.

The order is synthetic but shaped like Shopify's Order resource (the ids,
`#1001` and the amounts of Shopify's REST reference example), and it carries
the personal data a real order does so payhook's tests can check none of it is
read."""
import json
import pathlib
import shutil
import subprocess
import tempfile

from _common import case

PACKAGE = "@shopify/shopify-api@13.1.0"
SCRIPT = pathlib.Path(__file__).with_name("shopify_vectors.js")
T = 1700000000
SECRET, PREVIOUS = "test_secret_123", "previous_client_secret_456"

ORDER = {
    "id": 820982911946154508, "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
    "name": "#1001", "order_number": 1001, "email": "bob.norman@mail.example.com", "test": True,
    "financial_status": "paid", "fulfillment_status": None, "confirmed": True,
    "currency": "USD", "presentment_currency": "USD",
    "subtotal_price": "597.00", "total_tax": "0.00", "total_discounts": "0.00", "total_price": "598.00",
    "current_total_price": "598.00",
    "total_price_set": {"shop_money": {"amount": "598.00", "currency_code": "USD"},
                        "presentment_money": {"amount": "598.00", "currency_code": "USD"}},
    "created_at": "2024-05-01T05:59:50-00:00", "processed_at": "2024-05-01T05:59:50-00:00",
    "updated_at": "2024-05-01T06:00:00-00:00",
    "payment_gateway_names": ["bogus"],
    "customer": {"id": 115310627314723954, "email": "bob.norman@mail.example.com", "first_name": "Bob",
                 "last_name": "Norman", "admin_graphql_api_id": "gid://shopify/Customer/115310627314723954"},
    "billing_address": {"first_name": "Bob", "last_name": "Norman", "address1": "Chestnut Street 92",
                        "city": "Louisville", "zip": "40202", "country_code": "US", "phone": "+1(502)-459-2181"},
    "line_items": [{"id": 866550311766439020, "title": "IPod Nano - 8GB", "quantity": 1, "price": "199.00"},
                   {"id": 141249953214522974, "title": "IPod Nano - 8GB", "quantity": 2, "price": "199.00"}],
    "shipping_lines": [{"title": "Generic Shipping", "price": "1.00"}],
}


def headers(hmac: str, topic: str = "orders/paid", events: bool = False) -> dict:
    """The headers of a delivery: classic `X-Shopify-*`, or the Events family."""
    names = {"Hmac-Sha256": hmac, "Topic": topic, "Shop-Domain": "payhook-test.myshopify.com",
             "API-Version": "2025-07", "Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
             "Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
             "Triggered-At": "2024-05-01T10:00:00.123456Z"}
    if events:
        return {f"shopify-{name.lower()}": value for name, value in names.items()}
    return {f"X-Shopify-{name}": value for name, value in names.items()}


def run_node(folder: str, job: dict) -> dict:
    done = subprocess.run(["node", SCRIPT.name], cwd=folder, input=json.dumps(job), text=True,
                          capture_output=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"node failed: {done.stderr}")
    return json.loads(done.stdout)


def install(folder: str) -> None:
    """The pinned npm package and the driver script, in `folder`."""
    if not shutil.which("node") or not shutil.which("npm"):
        raise SystemExit("shopify vectors need node and npm on PATH")
    subprocess.run(["npm", "init", "-y"], cwd=folder, check=True, capture_output=True)
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", PACKAGE],
                   cwd=folder, check=True, capture_output=True)
    shutil.copy(SCRIPT, folder)


def generate():
    with tempfile.TemporaryDirectory(prefix="payhook-shopify-") as folder:
        install(folder)
        return cases(folder)


def cases(folder: str):
    order = json.dumps(ORDER)
    generic = '{"id":"evt_1","amount":1000}'
    created = json.dumps({**ORDER, "financial_status": "pending"})
    to_sign = [(order, SECRET), (generic, SECRET), (order, PREVIOUS), (created, SECRET)]
    signed = run_node(folder, {"sign": to_sign, "validate": []})["sign"]
    mac, generic_mac, old_mac, created_mac = signed
    assert generic_mac == "att5yacXcuV3WT7EJdbKZqgkiV+J4PNZG3dNjnrlZVI=", generic_mac

    planned = [
        # The first case is the order payhook's unit tests normalize.
        ("orders/paid, classic X-Shopify-* headers", order, headers(mac), [SECRET]),
        ("generic vector (providers.md section 18)", generic, headers(generic_mac), [SECRET]),
        ("orders/paid, Events headers without X-", order, headers(mac, events=True), [SECRET]),
        ("orders/create, signed (verified, then ignored)", created, headers(created_mac, "orders/create"), [SECRET]),
        ("rotation: source holds new and old secrets", order, headers(old_mac), [SECRET, PREVIOUS]),
        ("wrong secret", order, headers(old_mac), [SECRET]),
        ("tampered body", order.replace("598.00", "598.01", 1), headers(mac), [SECRET]),
        ("body with trailing newline", order + "\n", headers(mac), [SECRET]),
        ("signature is hex, not base64", order, headers(bytes.fromhex("00" * 32).hex()), [SECRET]),
        ("signature truncated", order, headers(mac[:-4]), [SECRET]),
        ("signature header missing", order,
         {k: v for k, v in headers(mac).items() if k != "X-Shopify-Hmac-Sha256"}, [SECRET]),
    ]
    verdicts = run_node(folder, {"sign": [], "validate": [[b, h, s] for _, b, h, s in planned]})["validate"]
    judged = [case(name, {"secrets": secrets}, T, body, hdrs, ok)
              for (name, body, hdrs, secrets), ok in zip(planned, verdicts)]
    return "shopify", f"@shopify/shopify-api (npm) {PACKAGE.rsplit('@', 1)[1]}", judged
