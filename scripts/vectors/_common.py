"""What every vector module shares: paths, sample payloads, the case format.

A vector file is `tests/fixtures/vectors/<provider>.json`:

    {"provider": "stripe", "sdk": "stripe (PyPI) 16.1.0", "cases": [
        {"name": "...",
         "settings": {"secrets": [...], ...},   # the source's keys (no name/provider)
         "received_at": 1700000000,             # the arrival time to verify at
         "body": "...",                         # the exact raw body
         "headers": {"Stripe-Signature": "..."},
         "valid": true}                         # the SDK's own verdict
    ]}

payhook's unit tests verify each case at `received_at`; an integration test
posts each case over HTTP to a source built from `settings`.
"""
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAYLOADS = ROOT / "tests" / "fixtures" / "payloads"
OUT = ROOT / "tests" / "fixtures" / "vectors"


def payload(name: str) -> str:
    """A sample payload from tests/fixtures/payloads, as text."""
    return (PAYLOADS / name).read_text()


def case(name: str, settings: dict, received_at: int, body: str, headers: dict, valid: bool) -> dict:
    return {"name": name, "settings": settings, "received_at": received_at,
            "body": body, "headers": headers, "valid": bool(valid)}


def write(provider: str, sdk: str, cases: list) -> pathlib.Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{provider}.json"
    path.write_text(json.dumps({"provider": provider, "sdk": sdk, "cases": cases}, indent=2) + "\n")
    return path
