//! W3C trace context (`traceparent`), carried from the delivery into the event.

use std::fmt;

use rand::RngCore;

/// A parsed `traceparent`: `00-<trace id>-<parent id>-<flags>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

impl TraceContext {
    /// Parses version 00; anything else (or an all-zero id, which the
    /// specification forbids) is not a trace context.
    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || version != "00" || trace.len() != 32 || parent.len() != 16 || flags.len() != 2 {
            return None;
        }
        let lower_hex = |s: &str| s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ![trace, parent, flags].iter().all(|p| lower_hex(p)) {
            return None;
        }
        let mut context = Self { trace_id: [0; 16], parent_id: [0; 8], flags: 0 };
        hex::decode_to_slice(trace, &mut context.trace_id).ok()?;
        hex::decode_to_slice(parent, &mut context.parent_id).ok()?;
        context.flags = u8::from_str_radix(flags, 16).ok()?;
        let valid = context.trace_id != [0; 16] && context.parent_id != [0; 8];
        valid.then_some(context)
    }

    /// A new trace (sampled), for a delivery that brings none: every event
    /// can then be followed from its arrival.
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let mut context = Self { trace_id: [0; 16], parent_id: [0; 8], flags: 1 };
        rng.fill_bytes(&mut context.trace_id);
        rng.fill_bytes(&mut context.parent_id);
        context
    }

    /// The same trace with a new span id: the step that continues it.
    pub fn child(self) -> Self {
        let mut parent_id = [0u8; 8];
        rand::rng().fill_bytes(&mut parent_id);
        Self { parent_id, ..self }
    }

    /// Whether both are spans of one trace.
    pub fn same_trace(&self, other: &Self) -> bool {
        self.trace_id == other.trace_id
    }

    /// The trace id as hex, for logs.
    pub fn trace_id(&self) -> String {
        hex::encode(self.trace_id)
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{}-{}-{:02x}", hex::encode(self.trace_id), hex::encode(self.parent_id), self.flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn w3c_traceparents_round_trip() {
        assert_eq!(TraceContext::parse(EXAMPLE).unwrap().to_string(), EXAMPLE);
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-xyz-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_child_keeps_the_trace_and_changes_the_span() {
        let parent = TraceContext::parse(EXAMPLE).unwrap();
        let child = parent.child();
        assert_eq!(child.trace_id(), parent.trace_id());
        assert!(child.same_trace(&parent) && !child.same_trace(&TraceContext::generate()));
        assert_ne!(child.to_string(), parent.to_string());
        assert!(TraceContext::parse(&TraceContext::generate().to_string()).is_some());
    }
}
