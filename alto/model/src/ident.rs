//! Identifier syntax of RFC 7285 §10: PID names (§10.1), resource IDs (§10.2), version tag
//! strings (§10.3), cost metrics (§10.6) and endpoint property types (§10.8).

fn chars_ok(s: &str, max: usize, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

/// A valid PID name (§10.1): 1 to 64 of `[A-Za-z0-9-:@_]`; the reserved `.` is refused.
pub fn is_pid_name(s: &str) -> bool {
    chars_ok(s, 64, b"-:@_")
}

/// A valid resource ID (§10.2): the same format as a PID name.
pub fn is_resource_id(s: &str) -> bool {
    is_pid_name(s)
}

/// A valid version tag string (§10.3): 1 to 64 characters in U+0021..U+007E.
pub fn is_tag(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// A valid cost metric (§10.6): 1 to 32 of `[A-Za-z0-9-:_]`, and `priv:` must be followed by
/// more characters.
pub fn is_cost_metric(s: &str) -> bool {
    chars_ok(s, 32, b"-:_") && s != "priv:"
}

/// A valid global endpoint property name (§10.8.2): 1 to 32 of `[A-Za-z0-9-:_]`.
pub fn is_global_property(s: &str) -> bool {
    chars_ok(s, 32, b"-:_") && s != "priv:"
}

/// A valid endpoint property type (§10.8): a global property, or `resource-id.property`.
pub fn is_property_type(s: &str) -> bool {
    match s.split_once('.') {
        Some((rid, name)) => is_resource_id(rid) && is_global_property(name),
        None => is_global_property(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_names_follow_section_10_1() {
        assert!(is_pid_name("PID1"));
        assert!(is_pid_name("mine:a@b_c-d"));
        assert!(!is_pid_name(""));
        assert!(!is_pid_name("a.b"));
        assert!(!is_pid_name("has space"));
        assert!(!is_pid_name(&"x".repeat(65)));
        assert!(is_pid_name(&"x".repeat(64)));
    }

    #[test]
    fn property_types_follow_section_10_8() {
        assert!(is_property_type("my-default-network-map.pid"));
        assert!(is_property_type("priv:ietf-example-prop"));
        assert!(!is_property_type("priv:"));
        assert!(!is_property_type("a.b.c"));
        assert!(is_cost_metric("routingcost"));
        assert!(!is_cost_metric("routing cost"));
        assert!(is_tag("da65eca2eb7a10ce8b059740b0b2e3f8eb1d4785"));
        assert!(!is_tag("has space"));
    }
}
