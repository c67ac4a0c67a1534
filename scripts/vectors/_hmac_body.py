"""Shared by providers with no official signer or verifier (providers.md
section 18: Checkout.com, Paystack, Lemon Squeezy): the documented scheme is
an HMAC of the raw body in hex, computed here with Python's standard library,
and cross-checked against the generic vectors published in providers.md
section 18 before any case is produced."""
import hashlib
import hmac

# providers.md section 18, "Generic vectors".
GENERIC_SECRET = "test_secret_123"
GENERIC_BODY = '{"id":"evt_1","amount":1000}'
GENERIC = {
    "sha256": "6adb79c9a71772e577593ec425d6ca66a824895f89e0f3591b774d8e7ae56552",
    "sha512": "f2760f4078b7f3fb9737b7e75182b5d47ef3aa1a7d1e9b7610dab33a34000b318d70393bdd445ffcc4c1396497da469f670104d06f05cfd3829c7a984bae8fc2",
}


def sign(algorithm: str, secret: str, body: str) -> str:
    return hmac.new(secret.encode(), body.encode(), getattr(hashlib, algorithm)).hexdigest()


def cross_check(algorithm: str) -> None:
    """Refuses to produce vectors if the signer disagrees with the published one."""
    got = sign(algorithm, GENERIC_SECRET, GENERIC_BODY)
    assert got == GENERIC[algorithm], f"{algorithm}: {got} differs from the published generic vector"


def valid(algorithm: str, secrets: list, body: str, header) -> bool:
    """The documented verdict: the header is the hex HMAC of the body under
    one of the secrets (compared case-insensitively, in constant time)."""
    if header is None:
        return False
    return any(hmac.compare_digest(sign(algorithm, s, body), header.strip().lower()) for s in secrets)


def standard_cases(algorithm: str, header: str, secrets: tuple, bodies: dict, case, T: int,
                   extra_settings: dict | None = None, extra_headers: dict | None = None) -> list:
    """The cases every body-HMAC provider gets: the generic vector, each
    sample body, rotation, wrong secret, tampered body, malformed and missing
    signatures, uppercase hex."""
    cross_check(algorithm)
    new, old, other = secrets
    settings = {"secrets": [new], **(extra_settings or {})}
    extra_headers = extra_headers or {}
    cases = []

    def add(name, body, value, keys=None):
        keys = keys or [new]
        headers = {**extra_headers, **({header: value} if value is not None else {})}
        cases.append(case(name, {**settings, "secrets": keys}, T, body, headers,
                          valid(algorithm, keys, body, value)))

    add("published generic vector", GENERIC_BODY, GENERIC[algorithm], [GENERIC_SECRET])
    for name, body in bodies.items():
        add(name, body, sign(algorithm, new, body))
    first = next(iter(bodies.values()))
    add("rotation: signed with the old secret, source holds new and old", first, sign(algorithm, old, first),
        [new, old])
    add("wrong secret", first, sign(algorithm, other, first))
    add("tampered body", first.replace("1", "2", 1), sign(algorithm, new, first))
    add("body with trailing newline", first + "\n", sign(algorithm, new, first))
    add("uppercase hex", first, sign(algorithm, new, first).upper())
    add("malformed signature (not hex)", first, "not-a-hex-signature")
    add("truncated signature", first, sign(algorithm, new, first)[:32])
    add("missing signature", first, None)
    return cases
