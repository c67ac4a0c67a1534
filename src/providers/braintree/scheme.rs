//! Braintree's signature: `bt_signature` pairs over the `bt_payload` text,
//! both form fields of the body (see the provider's module doc).

use subtle::ConstantTimeEq;

use crate::providers::prelude::*;

/// A Braintree gateway's signature (one API key pair).
#[derive(Debug)]
pub(super) struct BraintreeSignature {
    pub(super) public_key: String,
    /// SHA-1 of the private key: the HMAC key.
    pub(super) key: SigningKeys,
}

// ---- Form parsing ---------------------------------------------------------

/// The two fields of a notification form (the first of each, if repeated).
#[derive(Debug, Default, PartialEq)]
pub(super) struct Form {
    pub(super) signature: Option<String>,
    pub(super) payload: Option<String>,
}

impl Form {
    /// Form-decodes `body`; any bytes parse, unknown fields are skipped.
    pub(super) fn parse(body: &[u8]) -> Self {
        let mut form = Self::default();
        for (name, value) in form_urlencoded::parse(body) {
            let slot = match name.as_ref() {
                "bt_signature" => &mut form.signature,
                "bt_payload" => &mut form.payload,
                _ => continue,
            };
            slot.get_or_insert_with(|| value.into_owned());
        }
        form
    }
}

/// The hex MAC of the first `public_key|hex` pair naming `public_key`.
fn signature_for<'a>(bt_signature: &'a str, public_key: &str) -> Option<&'a str> {
    bt_signature
        .split('&')
        .filter_map(|pair| pair.split_once('|'))
        .find(|(key, _)| *key == public_key)
        .map(|(_, mac)| mac)
}

/// Only what base64 text with line breaks may hold (the SDKs' own check).
fn is_payload_text(payload: &str) -> bool {
    payload.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'=' | b'/' | b'\n'))
}

// ---- Verification ---------------------------------------------------------

impl BraintreeSignature {
    /// Lowercase hex HMAC-SHA1 of `parts` under SHA-1(private key).
    fn hex_mac(&self, parts: &[&[u8]]) -> String {
        hex::encode(Algorithm::Sha1.mac(self.key.first(), parts))
    }
}

impl Scheme for BraintreeSignature {
    /// None: the signature and the notification are both in the body.
    fn headers(&self) -> Vec<String> {
        Vec::new()
    }

    fn check(&self, request: &WebhookRequest) -> Result<Verified, Rejection> {
        let form = Form::parse(&request.body);
        let bt_signature = form.signature.ok_or(Rejection::MissingSignature)?;
        let payload = form.payload.filter(|p| is_payload_text(p)).ok_or(Rejection::InvalidSignature)?;
        let mac = signature_for(&bt_signature, &self.public_key).ok_or(Rejection::InvalidSignature)?;
        // Both candidates are always computed, so timing says nothing about
        // which one matched.
        let plain = self.hex_mac(&[payload.as_bytes()]);
        let with_newline = self.hex_mac(&[payload.as_bytes(), b"\n"]);
        let matches = plain.as_bytes().ct_eq(mac.as_bytes()) | with_newline.as_bytes().ct_eq(mac.as_bytes());
        if bool::from(matches) {
            Ok(SignatureMatch { secret_index: 0 }.into())
        } else {
            Err(Rejection::InvalidSignature)
        }
    }

    // ---- Signing ----------------------------------------------------------

    /// Only the form content type: the signature is the `bt_signature` form
    /// field, so a body is sent as it is.
    fn sign(&self, _body: &[u8], _at: DateTime<Utc>) -> Vec<(String, String)> {
        vec![("Content-Type".into(), "application/x-www-form-urlencoded".into())]
    }

    /// The form with this key pair's `bt_signature` over its `bt_payload`; a
    /// body without a payload is left as it is.
    fn sign_body(&self, body: Vec<u8>) -> Vec<u8> {
        let Some(payload) = Form::parse(&body).payload else { return body };
        let bt_signature = format!("{}|{}", self.public_key, self.hex_mac(&[payload.as_bytes()]));
        form_urlencoded::Serializer::new(String::new())
            .append_pair("bt_signature", &bt_signature)
            .append_pair("bt_payload", &payload)
            .finish()
            .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testing::{self, verify_now};

    use crate::providers::braintree::tests::{braintree, form};

    fn verify(body: &[u8]) -> Result<SignatureMatch, Rejection> {
        let source = braintree();
        verify_now(&source, &testing::request(&source, &[], body, 1_700_000_000))
    }

    /// The published `check` vector (providers.md section 5).
    const CHECK_PAYLOAD: &str = concat!(
        "PG5vdGlmaWNhdGlvbj48dGltZXN0YW1wIHR5cGU9ImRhdGV0aW1lIj4yMDI0LTAxLTAxVDAwOjAw\n",
        "OjAwWjwvdGltZXN0YW1wPjxraW5kPmNoZWNrPC9raW5kPjxzdWJqZWN0PjxjaGVjayB0eXBlPSJi\n",
        "b29sZWFuIj50cnVlPC9jaGVjaz48L3N1YmplY3Q+PC9ub3RpZmljYXRpb24+\n",
    );
    const CHECK_SIGNATURE: &str = "public_key_123|63e53f92c1dc582f174e7fc3d459c3b4ae83677c";

    #[test]
    fn the_published_check_vector_verifies_and_is_ignored() {
        let body = form(Some(CHECK_SIGNATURE), Some(CHECK_PAYLOAD));
        assert_eq!(verify(&body), Ok(SignatureMatch { secret_index: 0 }));
        let normalized = testing::normalize(&braintree(), &[], &body).unwrap();
        assert_eq!(normalized, vec![crate::domain::Normalized::Ignored { event_type: "check".into() }]);
    }

    #[test]
    fn the_payload_may_be_signed_with_or_without_its_final_line_break() {
        let trimmed = CHECK_PAYLOAD.trim_end_matches('\n');
        assert!(verify(&form(Some(CHECK_SIGNATURE), Some(trimmed))).is_ok(), "signed over trimmed + \\n");
        let doubled = format!("{CHECK_PAYLOAD}\n");
        assert_eq!(verify(&form(Some(CHECK_SIGNATURE), Some(&doubled))), Err(Rejection::InvalidSignature));
        let unwrapped = CHECK_PAYLOAD.replace('\n', "");
        assert_eq!(verify(&form(Some(CHECK_SIGNATURE), Some(&unwrapped))), Err(Rejection::InvalidSignature));
    }

    #[test]
    fn the_pair_with_our_public_key_is_the_one_checked() {
        let mac = CHECK_SIGNATURE.split_once('|').unwrap().1;
        let several = format!("other_key|{}&public_key_123|{mac}", "0".repeat(40));
        assert!(verify(&form(Some(&several), Some(CHECK_PAYLOAD))).is_ok());
        let ours_wrong_first = format!("public_key_123|{}&public_key_123|{mac}", "0".repeat(40));
        assert_eq!(verify(&form(Some(&ours_wrong_first), Some(CHECK_PAYLOAD))), Err(Rejection::InvalidSignature));
        let only_others = format!("other_key|{mac}");
        assert_eq!(verify(&form(Some(&only_others), Some(CHECK_PAYLOAD))), Err(Rejection::InvalidSignature));
    }

    #[test]
    fn malformed_forms_are_refused_without_panicking() {
        let mac = CHECK_SIGNATURE.split_once('|').unwrap().1;
        let upper = format!("public_key_123|{}", mac.to_uppercase());
        for signature in ["", "|", "public_key_123", "public_key_123|", "public_key_123|zz", &upper] {
            assert_eq!(
                verify(&form(Some(signature), Some(CHECK_PAYLOAD))),
                Err(Rejection::InvalidSignature),
                "{signature:?}"
            );
        }
        assert_eq!(verify(&form(Some(CHECK_SIGNATURE), None)), Err(Rejection::InvalidSignature));
        let with_space = CHECK_PAYLOAD.replacen('G', " ", 1);
        assert_eq!(verify(&form(Some(CHECK_SIGNATURE), Some(&with_space))), Err(Rejection::InvalidSignature));
        assert_eq!(verify(&form(None, Some(CHECK_PAYLOAD))), Err(Rejection::MissingSignature));
        for body in [&b""[..], b"{\"bt_payload\": 1}", b"\xff\xfe=%%%&&==", b"bt_signature"] {
            assert!(verify(body).is_err(), "{body:?}");
        }
        assert_eq!(
            Form::parse(b"bt_signature=a&bt_signature=b&x=1"),
            Form { signature: Some("a".into()), payload: None }
        );
    }

    #[test]
    fn signing_a_body_adds_the_signature_of_its_payload() {
        let source = braintree();
        let signed = source.sample(Utc::now());
        assert!(verify(&signed).is_ok());
        let form = Form::parse(&signed);
        assert!(form.signature.is_some_and(|s| s.starts_with("public_key_123|")));
        let scheme = BraintreeSignature { public_key: "k".into(), key: SigningKeys::new(vec![b"x".to_vec()]) };
        assert_eq!(scheme.sign_body(b"no=payload".to_vec()), b"no=payload");
    }
}
