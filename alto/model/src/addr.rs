//! Endpoint addresses and prefixes, RFC 7285 §10.4: typed endpoint addresses
//! (`ipv4:192.0.2.34`, §10.4.1), IPv4 and IPv6 addresses (§10.4.3) and prefixes (§10.4.4).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The address types of RFC 7285 §10.4.2 that this implementation knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddressType {
    /// `ipv4`
    Ipv4,
    /// `ipv6`
    Ipv6,
}

impl AddressType {
    /// The registered name.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressType::Ipv4 => "ipv4",
            AddressType::Ipv6 => "ipv6",
        }
    }

    /// Parses a registered name; unknown types are `None` (callers ignore them, §11.2.1.7).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ipv4" => Some(AddressType::Ipv4),
            "ipv6" => Some(AddressType::Ipv6),
            _ => None,
        }
    }

    /// The highest address of the type, right-aligned in a `u128`.
    pub fn all_ones(self) -> u128 {
        match self {
            AddressType::Ipv4 => u32::MAX as u128,
            AddressType::Ipv6 => u128::MAX,
        }
    }

    /// Address width in bits.
    pub fn bits(self) -> u8 {
        match self {
            AddressType::Ipv4 => 32,
            AddressType::Ipv6 => 128,
        }
    }
}

/// Parses a typed endpoint address (§10.4.1) such as `ipv4:192.0.2.34` or `ipv6:2001:db8::1`.
pub fn parse_typed_addr(s: &str) -> Option<IpAddr> {
    let (ty, addr) = s.split_once(':')?;
    match AddressType::parse(ty)? {
        AddressType::Ipv4 => addr.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
        AddressType::Ipv6 => addr.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
    }
}

/// `::ffff:a.b.c.d` (an IPv4-mapped IPv6 address, RFC 4291 §2.5.5.2) as `a.b.c.d`, so one
/// client has one address; every other address as it is.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// A source as limits count it: the address family (4 or 6) and the bits of its prefix.
pub type SourceKey = (u8, u128);

/// The key of `ip`'s prefix of `v4_bits` (IPv4) or `v6_bits` (IPv6) bits, IPv4-mapped
/// addresses counted as IPv4.
pub fn prefix_key(ip: IpAddr, v4_bits: u8, v6_bits: u8) -> SourceKey {
    let mask = |bits: u8, width: u32| -> u128 {
        match u32::from(bits).min(width) {
            0 => 0,
            bits => (u128::MAX << (128 - bits)) >> (128 - width),
        }
    };
    match canonical(ip) {
        IpAddr::V4(v4) => (4, u128::from(u32::from(v4)) & mask(v4_bits, 32)),
        IpAddr::V6(v6) => (6, u128::from(v6) & mask(v6_bits, 128)),
    }
}

/// The source of `ip` as one subscriber: an IPv4 address, or an IPv6 /64 (the prefix a
/// subscriber is given, RFC 6177). Every per-source bound of the workspace counts this.
pub fn subscriber(ip: IpAddr) -> SourceKey {
    prefix_key(ip, 32, 64)
}

/// Formats an address as a typed endpoint address; IPv6 in the RFC 5952 form that
/// `Ipv6Addr`'s `Display` writes.
pub fn typed_addr(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => format!("ipv4:{a}"),
        IpAddr::V6(a) => format!("ipv6:{a}"),
    }
}

/// An IPv4 or IPv6 prefix with its host bits zero (RFC 4632 §3.1, RFC 5952 §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    /// Address type.
    pub ty: AddressType,
    /// The network address, right-aligned in a `u128` (IPv4 in the low 32 bits).
    pub addr: u128,
    /// Prefix length in bits.
    pub len: u8,
}

/// Why a prefix string was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// Not of the form `address/length` for the address type.
    #[error("`{0}` is not an {1} prefix")]
    Syntax(String, &'static str),
    /// Host bits set below the prefix length, e.g. `192.0.2.1/24`.
    #[error("`{0}` has host bits set below its length")]
    HostBits(String),
}

impl Prefix {
    /// Parses a prefix of the given type. A bare address is refused: network map entries are
    /// prefixes (§10.4.4).
    pub fn parse(ty: AddressType, s: &str) -> Result<Self, PrefixError> {
        let syntax = || PrefixError::Syntax(s.to_owned(), ty.as_str());
        let (a, l) = s.split_once('/').ok_or_else(syntax)?;
        if l.is_empty() || l.len() > 3 || !l.bytes().all(|b| b.is_ascii_digit()) {
            return Err(syntax());
        }
        let len: u8 = l.parse().map_err(|_| syntax())?;
        if len > ty.bits() {
            return Err(syntax());
        }
        let addr = match ty {
            AddressType::Ipv4 => u32::from(a.parse::<Ipv4Addr>().map_err(|_| syntax())?) as u128,
            AddressType::Ipv6 => u128::from(a.parse::<Ipv6Addr>().map_err(|_| syntax())?),
        };
        let p = Prefix { ty, addr, len };
        if addr & !p.mask() != 0 {
            return Err(PrefixError::HostBits(s.to_owned()));
        }
        Ok(p)
    }

    /// Parses a prefix of either type, e.g. `10.0.0.0/8` or `2001:db8::/32`; a bare address
    /// is a host prefix (`/32`, `/128`). For configuration, not for network map files.
    pub fn parse_any(s: &str) -> Result<Self, PrefixError> {
        let ty = if s.contains(':') {
            AddressType::Ipv6
        } else {
            AddressType::Ipv4
        };
        if s.contains('/') {
            Prefix::parse(ty, s)
        } else {
            Prefix::parse(ty, &format!("{s}/{}", ty.bits()))
        }
    }

    /// The network mask within the type's width.
    pub fn mask(&self) -> u128 {
        let all = self.ty.all_ones();
        all & !all.checked_shr(self.len as u32).unwrap_or(0)
    }

    /// The last address of the prefix.
    pub fn last(&self) -> u128 {
        self.addr | (self.ty.all_ones() & !self.mask())
    }

    /// Whether the prefix holds `ip`.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.ty, ip) {
            (AddressType::Ipv4, IpAddr::V4(a)) => (u32::from(a) as u128) & self.mask() == self.addr,
            (AddressType::Ipv6, IpAddr::V6(a)) => u128::from(a) & self.mask() == self.addr,
            _ => false,
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ty {
            AddressType::Ipv4 => write!(f, "{}/{}", Ipv4Addr::from(self.addr as u32), self.len),
            AddressType::Ipv6 => write!(f, "{}/{}", Ipv6Addr::from(self.addr), self.len),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse_and_print_canonically() {
        let p = Prefix::parse(AddressType::Ipv4, "198.51.100.128/25").unwrap();
        assert_eq!(p.to_string(), "198.51.100.128/25");
        assert_eq!(
            p.last(),
            u32::from(Ipv4Addr::new(198, 51, 100, 255)) as u128
        );
        let d = Prefix::parse(AddressType::Ipv4, "0.0.0.0/0").unwrap();
        assert_eq!(d.last(), u32::MAX as u128);
        let v6 = Prefix::parse(AddressType::Ipv6, "2001:DB8:0:1::/64").unwrap();
        assert_eq!(v6.to_string(), "2001:db8:0:1::/64");
        assert_eq!(
            Prefix::parse(AddressType::Ipv6, "::/0").unwrap().last(),
            u128::MAX
        );
    }

    #[test]
    fn bad_prefixes_are_refused_with_the_reason() {
        for bad in [
            "192.0.2.0",
            "192.0.2.0/33",
            "192.0.2.0/",
            "192.0.2/24",
            "x/1",
            "1.2.3.4/+1",
        ] {
            assert!(
                matches!(
                    Prefix::parse(AddressType::Ipv4, bad),
                    Err(PrefixError::Syntax(..))
                ),
                "{bad}"
            );
        }
        assert_eq!(
            Prefix::parse(AddressType::Ipv4, "192.0.2.1/24"),
            Err(PrefixError::HostBits("192.0.2.1/24".into()))
        );
        assert!(Prefix::parse(AddressType::Ipv6, "192.0.2.0/24").is_err());
    }

    #[test]
    fn typed_addresses_follow_section_10_4_1() {
        assert_eq!(
            parse_typed_addr("ipv4:192.0.2.34"),
            Some("192.0.2.34".parse().unwrap())
        );
        assert_eq!(
            parse_typed_addr("ipv6:2001:db8::1"),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(parse_typed_addr("ipv4:2001:db8::1"), None);
        assert_eq!(parse_typed_addr("ipv5:1.2.3.4"), None);
        assert_eq!(parse_typed_addr("192.0.2.34"), None);
        assert_eq!(
            typed_addr("2001:DB8::1".parse().unwrap()),
            "ipv6:2001:db8::1"
        );
    }
}
