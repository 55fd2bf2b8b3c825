//! The `application/alto-*` media types of RFC 7285 §14.1.

/// Information Resource Directory (§9.2.1).
pub const DIRECTORY: &str = "application/alto-directory+json";
/// Network map and filtered network map responses (§11.2.1.1).
pub const NETWORK_MAP: &str = "application/alto-networkmap+json";
/// Filtered network map request body (§11.3.1.3).
pub const NETWORK_MAP_FILTER: &str = "application/alto-networkmapfilter+json";
/// Cost map and filtered cost map responses (§11.2.3.1).
pub const COST_MAP: &str = "application/alto-costmap+json";
/// Filtered cost map request body (§11.3.2.3).
pub const COST_MAP_FILTER: &str = "application/alto-costmapfilter+json";
/// Endpoint property response (§11.4.1.1).
pub const ENDPOINT_PROP: &str = "application/alto-endpointprop+json";
/// Endpoint property request body (§11.4.1.3).
pub const ENDPOINT_PROP_PARAMS: &str = "application/alto-endpointpropparams+json";
/// Endpoint cost response (§11.5.1.1).
pub const ENDPOINT_COST: &str = "application/alto-endpointcost+json";
/// Endpoint cost request body (§11.5.1.3).
pub const ENDPOINT_COST_PARAMS: &str = "application/alto-endpointcostparams+json";
/// Error response (§8.5.1).
pub const ERROR: &str = "application/alto-error+json";

/// The bare media type of a `Content-Type` or `Accept` element: parameters dropped,
/// surrounding space trimmed, lower-cased (media types are case-insensitive, RFC 7231 §3.1.1.1).
pub fn essence(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether an `Accept` header value admits `media_type` (exact, `type/*` or `*/*`, with a
/// non-zero `q`). A missing header admits everything and is handled by the caller.
pub fn accepts(accept: &str, media_type: &str) -> bool {
    let (ty, _) = media_type.split_once('/').unwrap_or((media_type, ""));
    accept.split(',').any(|item| {
        let mut parts = item.split(';');
        let range = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q_zero = parts.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        !q_zero
            && (range == "*/*"
                || range == media_type
                || range.strip_suffix("/*").is_some_and(|t| t == ty))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_matching_follows_rfc_7231_ranges() {
        assert!(accepts(
            "application/alto-networkmap+json,application/alto-error+json",
            NETWORK_MAP
        ));
        assert!(accepts("application/*", NETWORK_MAP));
        assert!(accepts("*/*;q=0.1", NETWORK_MAP));
        assert!(!accepts("text/html", NETWORK_MAP));
        assert!(!accepts(
            "application/alto-networkmap+json;q=0",
            NETWORK_MAP
        ));
        assert_eq!(
            essence(" Application/ALTO-costmap+json ; charset=utf-8"),
            COST_MAP
        );
    }
}
