//! The address a request comes from: the connection's, with IPv4-mapped IPv6 addresses
//! (RFC 4291 §2.5.5.2) made plain IPv4 so one client has one address; or, for a connection
//! from a trusted proxy, the right-most `X-Forwarded-For` entry (the one that proxy added).

pub use alto_model::addr::canonical;
use alto_model::addr::Prefix;
use http::HeaderMap;
use std::net::IpAddr;

/// Where a request comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr {
    /// The client's address.
    pub ip: IpAddr,
    /// Whether the connection came from a trusted proxy (which may speak for others).
    pub via_trusted_proxy: bool,
}

/// The client behind a connection from `conn` that sent `headers`, believing
/// `X-Forwarded-For` only from addresses in `trusted_proxies`.
pub fn client_addr(trusted_proxies: &[Prefix], conn: IpAddr, headers: &HeaderMap) -> ClientAddr {
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    client_of(trusted_proxies, conn, forwarded)
}

/// The client behind a connection from `conn` with this `X-Forwarded-For` value.
pub fn client_of(
    trusted_proxies: &[Prefix],
    conn: IpAddr,
    forwarded_for: Option<&str>,
) -> ClientAddr {
    let conn = canonical(conn);
    if !trusted_proxies.iter().any(|p| p.contains(conn)) {
        return ClientAddr {
            ip: conn,
            via_trusted_proxy: false,
        };
    }
    let ip = forwarded_for
        .and_then(|v| v.rsplit(',').next())
        .and_then(|s| s.trim().parse::<IpAddr>().ok())
        .map_or(conn, canonical);
    ClientAddr {
        ip,
        via_trusted_proxy: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies() -> Vec<Prefix> {
        vec![Prefix::parse_any("127.9.0.0/16").unwrap()]
    }

    #[test]
    fn ipv4_mapped_addresses_are_plain_ipv4() {
        let ip: IpAddr = "::ffff:127.1.0.9".parse().unwrap();
        assert_eq!(canonical(ip), "127.1.0.9".parse::<IpAddr>().unwrap());
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(canonical(v6), v6);
    }

    #[test]
    fn forwarded_for_is_believed_from_trusted_proxies_only() {
        let p = proxies();
        let stranger = client_of(&p, "127.1.0.5".parse().unwrap(), Some("127.2.0.1"));
        assert_eq!(stranger.ip, "127.1.0.5".parse::<IpAddr>().unwrap());
        assert!(!stranger.via_trusted_proxy);
        let proxied = client_of(
            &p,
            "::ffff:127.9.0.1".parse().unwrap(),
            Some("10.0.0.1, ::ffff:127.2.0.1"),
        );
        assert_eq!(proxied.ip, "127.2.0.1".parse::<IpAddr>().unwrap());
        assert!(proxied.via_trusted_proxy);
        let junk = client_of(&p, "127.9.0.1".parse().unwrap(), Some("not an address"));
        assert_eq!(junk.ip, "127.9.0.1".parse::<IpAddr>().unwrap());
    }
}
