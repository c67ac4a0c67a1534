"""PayPal: PayPal's SDK cannot sign (the private key is PayPal's), so the
cases are signed by the documented scheme with a test RSA key and a
self-signed test certificate, and judged by `paypalrestsdk`'s offline
verifier `WebhookEvent._verify_signature` given that certificate (its
`verify` would fetch the certificate and check a DigiCert chain, which a
test certificate cannot have).

The key and certificate are written to tests/fixtures/vectors/ (test-only
material, signing nothing real) and reused on later runs so the vectors stay
stable. payhook's PayPal sources pin the certificate with `cert_path`.
"""
import base64
import contextlib
import datetime
import io
import zlib
from importlib.metadata import version

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from OpenSSL import crypto
from paypalrestsdk import WebhookEvent

from _common import OUT, case, payload

T = 1700000000
TIME = "2023-11-14T22:13:20Z"  # T in PayPal's RFC 3339 form
WEBHOOK_ID = "1JE4291016473214C"
TX_ID = "dfb3be50-fd74-11e4-8bf3-77339302725b"
CERT_URL = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77"
CERT_PATH = "tests/fixtures/vectors/paypal-cert.pem"
KEY_FILE, CERT_FILE = OUT / "paypal-key.pem", OUT / "paypal-cert.pem"
# The SDK's own mapping of PAYPAL-AUTH-ALGO to an OpenSSL digest name.
ALGOS = {"SHA256withRSA": "sha256WithRSAEncryption", "SHA1withRSA": "sha1WithRSAEncryption"}


def test_key():
    """The fixture key, made once."""
    if KEY_FILE.exists():
        return serialization.load_pem_private_key(KEY_FILE.read_bytes(), password=None)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    KEY_FILE.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return key


def test_cert(key):
    """A self-signed certificate for the key, valid 2020-2100, CN under .paypal.com."""
    if CERT_FILE.exists():
        return CERT_FILE.read_bytes()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "payhook-test.paypal.com"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "payhook test fixture (not PayPal)")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc))
            .not_valid_after(datetime.datetime(2100, 1, 1, tzinfo=datetime.timezone.utc))
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    CERT_FILE.write_bytes(pem)
    return pem


def sign(key, tx_id, time, webhook_id, body):
    """The documented scheme: RSA PKCS#1 v1.5 SHA-256 over id|time|webhook_id|crc32."""
    crc = zlib.crc32(body.encode("utf-8")) & 0xFFFFFFFF
    message = f"{tx_id}|{time}|{webhook_id}|{crc}".encode("utf-8")
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def verdict(cert, webhook_id, body, headers):
    algo = ALGOS.get(headers["PAYPAL-AUTH-ALGO"])
    if algo is None:
        return False
    with contextlib.redirect_stdout(io.StringIO()):  # the SDK prints every failure
        return WebhookEvent._verify_signature(headers["PAYPAL-TRANSMISSION-ID"], headers["PAYPAL-TRANSMISSION-TIME"],
                                              webhook_id, body, cert, headers["PAYPAL-TRANSMISSION-SIG"], algo)


def generate():
    key = test_key()
    cert = crypto.load_certificate(crypto.FILETYPE_PEM, test_cert(key))
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    capture = payload("paypal-PAYMENT.CAPTURE.COMPLETED.json")
    small = '{"id":"evt_1","amount":1000}'
    cases = []

    def headers(sig, tx_id=TX_ID, time=TIME, algo="SHA256withRSA"):
        return {"PAYPAL-TRANSMISSION-ID": tx_id, "PAYPAL-TRANSMISSION-TIME": time, "PAYPAL-TRANSMISSION-SIG": sig,
                "PAYPAL-CERT-URL": CERT_URL, "PAYPAL-AUTH-ALGO": algo}

    def add(name, body, hdrs, webhook_id=WEBHOOK_ID):
        settings = {"webhook_id": webhook_id, "cert_path": CERT_PATH}
        cases.append(case(name, settings, T, body, hdrs, verdict(cert, webhook_id, body, hdrs)))

    def signed(body, webhook_id=WEBHOOK_ID, signer=key):
        return sign(signer, TX_ID, TIME, webhook_id, body)

    add("documented PAYMENT.CAPTURE.COMPLETED", capture, headers(signed(capture)))
    add("generic body (crc32 532830668)", small, headers(signed(small)))
    add("simulator webhook id WEBHOOK_ID", capture, headers(signed(capture, "WEBHOOK_ID")), "WEBHOOK_ID")
    unicode = capture.replace("Payment completed", "Paiement effectué ✓")
    add("non-ASCII body (crc32 over UTF-8 bytes)", unicode, headers(signed(unicode)))
    add("signed for another webhook id", capture, headers(signed(capture, "WH-OTHER")))
    add("signed by another key", capture, headers(signed(capture, signer=other_key)))
    add("tampered body", capture.replace("2.51", "2.52"), headers(signed(capture)))
    add("transmission time changed", capture, headers(signed(capture), time="2023-11-14T22:13:21Z"))
    add("transmission id changed", capture, headers(signed(capture), tx_id=TX_ID.replace("d", "e", 1)))
    add("auth algo SHA1withRSA", capture, headers(signed(capture), algo="SHA1withRSA"))
    add("signature not base64", capture, headers("not*base64!"))
    add("signature truncated", capture, headers(signed(capture)[:200]))
    add("body with trailing newline", capture + "\n", headers(signed(capture)))
    return "paypal", f"paypalrestsdk (PyPI) {version('paypalrestsdk')} with pyOpenSSL {version('pyOpenSSL')}", cases
