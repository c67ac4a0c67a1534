//! Sample payloads, for `payhook send --sample`, the load tests and the
//! tests. Each named provider's is a template in `samples/`: a payload laid
//! out as the provider's documentation shows it, with placeholders where each
//! sample needs fresh ids and the time it is sent.
//!
//! | placeholder | becomes |
//! | --- | --- |
//! | `{{unix}}` | the time, unix seconds |
//! | `{{time}}`, `{{time:ms}}`, `{{time:us}}` | the time, RFC 3339 in UTC with `Z` (seconds, milli-, microseconds) |
//! | `{{time:offset}}` | the time, RFC 3339 with `+00:00` |
//! | `{{hex:NAME}}`, `{{hex:NAME:N}}` | NAME's 32 random hex digits (the first N) |
//! | `{{HEX:NAME:N}}` | the same in upper case |
//! | `{{uuid:NAME}}` | NAME's random UUID |
//! | `{{digits:NAME:N}}` | N random decimal digits from NAME, the first not zero |
//! | `{{VAR}}` | a value the provider passes (its configuration) |
//!
//! A NAME is one random value throughout one sample, so an id can appear in
//! several places (an event and its link).

use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

/// `template` with its placeholders filled in: fresh random values, the time
/// `at`, and the provider's `vars`. An unknown placeholder stays as written
/// (the template test finds it).
pub(super) fn render(template: &str, at: DateTime<Utc>, vars: &[(&str, &str)]) -> Vec<u8> {
    let mut names: Vec<(&str, Uuid)> = Vec::new();
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some((before, after)) = rest.split_once("{{") {
        let Some((placeholder, tail)) = after.split_once("}}") else { break };
        out.push_str(before);
        match fill(placeholder, at, vars, &mut names) {
            Some(value) => out.push_str(&value),
            None => out.push_str(&format!("{{{{{placeholder}}}}}")),
        }
        rest = tail;
    }
    out.push_str(rest);
    out.into_bytes()
}

fn fill<'t>(
    placeholder: &'t str,
    at: DateTime<Utc>,
    vars: &[(&str, &str)],
    names: &mut Vec<(&'t str, Uuid)>,
) -> Option<String> {
    let mut parts = placeholder.split(':');
    let (kind, name, len) = (parts.next()?, parts.next(), parts.next().and_then(|n| n.parse::<usize>().ok()));
    let mut random = || {
        let name = name.unwrap_or(kind);
        if let Some((_, value)) = names.iter().find(|(n, _)| *n == name) {
            return *value;
        }
        let value = Uuid::new_v4();
        names.push((name, value));
        value
    };
    let first = |text: String| text[..len.unwrap_or(text.len()).min(text.len())].to_owned();
    Some(match (kind, name) {
        ("unix", None) => at.timestamp().to_string(),
        ("time", None) => at.to_rfc3339_opts(SecondsFormat::Secs, true),
        ("time", Some("ms")) => at.to_rfc3339_opts(SecondsFormat::Millis, true),
        ("time", Some("us")) => at.to_rfc3339_opts(SecondsFormat::Micros, true),
        ("time", Some("offset")) => at.to_rfc3339_opts(SecondsFormat::Secs, false),
        ("hex", Some(_)) => first(random().simple().to_string()),
        ("HEX", Some(_)) => first(random().simple().to_string().to_ascii_uppercase()),
        ("uuid", Some(_)) => random().to_string(),
        ("digits", Some(_)) => {
            let low = 10u128.pow(u32::try_from(len?.clamp(1, 30)).ok()? - 1);
            (low + random().as_u128() % (9 * low)).to_string()
        }
        (var, None) => vars.iter().find(|(v, _)| *v == var)?.1.to_owned(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, 10, 30, 15).unwrap()
    }

    fn text(template: &str, vars: &[(&str, &str)]) -> String {
        String::from_utf8(render(template, at(), vars)).unwrap()
    }

    #[test]
    fn times_and_variables_are_filled_in() {
        assert_eq!(
            text("{{unix}} {{time}} {{time:offset}}", &[]),
            "1796380215 2026-12-04T10:30:15Z 2026-12-04T10:30:15+00:00"
        );
        assert_eq!(text("{{time:ms}}|{{time:us}}", &[]), "2026-12-04T10:30:15.000Z|2026-12-04T10:30:15.000000Z");
        assert_eq!(text("live={{live}}", &[("live", "true")]), "live=true");
    }

    #[test]
    fn a_name_is_one_value_throughout_and_a_new_one_each_sample() {
        let one = text("{{hex:a}} {{hex:a:8}} {{HEX:a:4}} {{hex:b}}", &[]);
        let words: Vec<&str> = one.split(' ').collect();
        assert_eq!(words[0].len(), 32);
        assert!(words[0].starts_with(words[1]) && words[1].len() == 8);
        assert_eq!(words[2], words[0][..4].to_ascii_uppercase());
        assert_ne!(words[0], words[3]);
        assert_ne!(one, text("{{hex:a}} {{hex:a:8}} {{HEX:a:4}} {{hex:b}}", &[]));
    }

    #[test]
    fn digits_have_their_length_and_no_leading_zero() {
        for _ in 0..100 {
            let digits = text("{{digits:n:9}}", &[]);
            assert_eq!(digits.len(), 9, "{digits}");
            assert!(!digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit()));
        }
        assert_eq!(text("{{uuid:u}}", &[]).len(), 36);
    }

    #[test]
    fn unknown_placeholders_stay_as_written() {
        assert_eq!(text("{{nope}} {{hex}} {{time:x}} {{open", &[]), "{{nope}} {{hex}} {{time:x}} {{open");
    }
}
