//! Validated string types shared by the kinds: each carries its own OpenAPI pattern/length and
//! CEL rule, so the API server rejects a bad value with a message naming the value and the fix.
//! Written by hand because a derived schema cannot attach `x-kubernetes-validations` to list items.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

macro_rules! validated_string {
    ($(#[$doc:meta])* $name:ident, $schema:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_string())
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn inline_schema() -> bool {
                true
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                $schema
            }
        }
    };
}

validated_string!(
    /// A CIDR with zero host bits (`198.18.10.0/24`) or an inclusive range (`198.18.10.5-198.18.10.9`)
    /// of addresses that can be announced (none of [`crate::address::UNUSABLE`]).
    AddressBlock,
    {
        let (usable, usable_message) = usable_address_rule();
        json_schema!({
            "type": "string",
            "minLength": 1,
            "maxLength": 100,
            "x-kubernetes-validations": [{
                "rule": "isCIDR(self) ? cidr(self) == cidr(self).masked() : (self.split('-').size() == 2 && isIP(self.split('-')[0].trim()) && isIP(self.split('-')[1].trim()) && ip(self.split('-')[0].trim()).family() == ip(self.split('-')[1].trim()).family())",
                "messageExpression": "\"'\" + self + \"' must be a CIDR with zero host bits (198.18.10.0/24) or a range of one family (198.18.10.5-198.18.10.9)\"",
                "reason": "FieldValueInvalid"
            }, {
                "rule": usable,
                "messageExpression": usable_message,
                "reason": "FieldValueInvalid"
            }]
        })
    }
);

/// CEL rule and message: an address block overlaps none of [`crate::address::UNUSABLE`]. CIDRs
/// are checked whole; ranges by their two ends, since CEL cannot order addresses (a range that
/// spans a whole unusable block is refused by validation: the pool's `Valid` condition).
/// IPv4-mapped IPv6 blocks are left out: CEL's `cidr()` cannot parse them, and the rule above
/// refuses such blocks already.
fn usable_address_rule() -> (String, String) {
    let blocks: Vec<String> = crate::address::UNUSABLE
        .iter()
        .filter(|(b, _)| !b.starts_with("::ffff:"))
        .map(|(b, what)| format!("'{b}': '{}'", what.replace('\'', "")))
        .collect();
    let blocks = format!("{{{}}}", blocks.join(", "));
    let (lo, hi) = ("self.split('-')[0].trim()", "self.split('-')[1].trim()");
    let overlaps = format!(
        "(isCIDR(self) ? (cidr(b).containsCIDR(cidr(self)) || cidr(self).containsCIDR(cidr(b))) : (cidr(b).containsIP({lo}) || cidr(b).containsIP({hi})))"
    );
    let parses =
        format!("(isCIDR(self) || (self.split('-').size() == 2 && isIP({lo}) && isIP({hi})))");
    let rule = format!("!{parses} || !{blocks}.exists(b, {overlaps})");
    // Static but for the value: CEL's cost estimate rejects a message that filters the blocks.
    let named: Vec<String> = crate::address::UNUSABLE
        .iter()
        .map(|(b, what)| format!("{b} ({})", what.replace('"', "")))
        .collect();
    let message = format!(
        "\"'\" + self + \"' overlaps addresses that cannot be announced or reached: {}; list only unicast addresses outside these blocks\"",
        named.join(", ")
    );
    (rule, message)
}

validated_string!(
    /// A CIDR with zero host bits (`198.19.0.0/16`, `fd00:19::/112`).
    Cidr,
    json_schema!({
        "type": "string",
        "minLength": 1,
        "maxLength": 64,
        "x-kubernetes-validations": [{
            "rule": "isCIDR(self) && cidr(self) == cidr(self).masked()",
            "messageExpression": "\"'\" + self + \"' must be a CIDR with zero host bits (198.19.0.0/16 or fd00:19::/112)\"",
            "reason": "FieldValueInvalid"
        }]
    })
);

impl Cidr {
    /// The network, if the text is a CIDR (the API server has checked it; a hand-made object
    /// may not have been).
    pub fn net(&self) -> Option<ipnet::IpNet> {
        self.0.trim().parse().ok()
    }
}

validated_string!(
    /// A BGP community value: standard `65000:100` (two 16-bit numbers) or large
    /// `large:65000:1:2` (three 32-bit numbers).
    CommunityValue,
    json_schema!({
        "type": "string",
        "maxLength": 40,
        "x-kubernetes-validations": [{
            "rule": "self.matches('^[0-9]{1,5}:[0-9]{1,5}$') ? (int(self.split(':')[0]) <= 65535 && int(self.split(':')[1]) <= 65535) : (self.matches('^large:[0-9]{1,10}:[0-9]{1,10}:[0-9]{1,10}$') && int(self.split(':')[1]) <= 4294967295 && int(self.split(':')[2]) <= 4294967295 && int(self.split(':')[3]) <= 4294967295)",
            "messageExpression": "\"'\" + self + \"' is not a community: write 65000:100 (each part 0-65535) or large:65000:1:2 (each part 0-4294967295)\"",
            "reason": "FieldValueInvalid"
        }]
    })
);

validated_string!(
    /// A community as used by a BGPAdvertisement: a value (`65000:100`, `large:65000:1:2`) or the
    /// name of an alias defined in a `Community` object.
    CommunityRef,
    json_schema!({
        "type": "string",
        "minLength": 1,
        "maxLength": 63,
        "x-kubernetes-validations": [{
            "rule": "self.matches('^[0-9]') || self.startsWith('large:') ? (self.matches('^[0-9]{1,5}:[0-9]{1,5}$') ? (int(self.split(':')[0]) <= 65535 && int(self.split(':')[1]) <= 65535) : (self.matches('^large:[0-9]{1,10}:[0-9]{1,10}:[0-9]{1,10}$') && int(self.split(':')[1]) <= 4294967295 && int(self.split(':')[2]) <= 4294967295 && int(self.split(':')[3]) <= 4294967295)) : self.matches('^[a-zA-Z][-a-zA-Z0-9_.]*$')",
            "messageExpression": "\"'\" + self + \"' is neither a community value (65000:100, large:65000:1:2) nor an alias name from a Community object\"",
            "reason": "FieldValueInvalid"
        }]
    })
);

validated_string!(
    /// A duration as Kubernetes writes them: `90s`, `1m30s`, `500ms`.
    Duration,
    json_schema!({
        "type": "string",
        "maxLength": 32,
        "pattern": "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
    })
);

validated_string!(
    /// An IPv4 or IPv6 address.
    IpAddress,
    json_schema!({
        "type": "string",
        "maxLength": 45,
        "x-kubernetes-validations": [{
            "rule": "isIP(self)",
            "messageExpression": "\"'\" + self + \"' is not an IP address\"",
            "reason": "FieldValueInvalid"
        }]
    })
);

validated_string!(
    /// A BGP router ID, written as an IPv4 address.
    RouterId,
    json_schema!({
        "type": "string",
        "maxLength": 15,
        "x-kubernetes-validations": [{
            "rule": "isIP(self) && ip(self).family() == 4",
            "messageExpression": "\"'\" + self + \"' is not a router ID: write it as an IPv4 address (198.18.0.11)\"",
            "reason": "FieldValueInvalid"
        }]
    })
);

impl Duration {
    /// Parses Go-style durations (`1m30s`, `500ms`, `1.5s`) as used in Kubernetes objects.
    pub fn parse(&self) -> Option<std::time::Duration> {
        parse_duration(&self.0)
    }
}

/// Go-style duration parser for the subset our schema admits (`h`, `m`, `s`, `ms`).
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    if s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += value * scale;
    }
    (total.is_finite() && total < 1e12).then(|| std::time::Duration::from_secs_f64(total))
}

/// A parsed BGP community.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Community {
    Standard(u32),
    Large(u32, u32, u32),
}

impl Community {
    /// Parses `65000:100` or `large:65000:1:2`; `None` for anything else (aliases included).
    pub fn parse(s: &str) -> Option<Community> {
        if let Some(rest) = s.strip_prefix("large:") {
            let mut it = rest.split(':').map(|p| p.parse::<u32>());
            let (a, b, c) = (it.next()?.ok()?, it.next()?.ok()?, it.next()?.ok()?);
            return it.next().is_none().then_some(Community::Large(a, b, c));
        }
        let (hi, lo) = s.split_once(':')?;
        let (hi, lo): (u16, u16) = (hi.parse().ok()?, lo.parse().ok()?);
        Some(Community::Standard(u32::from(hi) << 16 | u32::from(lo)))
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Community::Standard(v) => write!(f, "{}:{}", v >> 16, v & 0xffff),
            Community::Large(a, b, c) => write!(f, "large:{a}:{b}:{c}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cel_rule_lists_every_unusable_block() {
        let (rule, message) = usable_address_rule();
        for (block, _) in crate::address::UNUSABLE {
            if !block.starts_with("::ffff:") {
                assert!(rule.contains(&format!("'{block}'")), "{block}: {rule}");
            }
        }
        assert!(message.contains("cannot be announced"));
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("90s"),
            Some(std::time::Duration::from_secs(90))
        );
        assert_eq!(
            parse_duration("1m30s"),
            Some(std::time::Duration::from_secs(90))
        );
        assert_eq!(
            parse_duration("300ms"),
            Some(std::time::Duration::from_millis(300))
        );
        assert_eq!(
            parse_duration("1.5s"),
            Some(std::time::Duration::from_millis(1500))
        );
        for bad in ["", "s", "10", "10x", "1..2s", "99999999999999h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn communities() {
        assert_eq!(
            Community::parse("65000:100"),
            Some(Community::Standard(65000 << 16 | 100))
        );
        assert_eq!(
            Community::parse("large:1:2:3"),
            Some(Community::Large(1, 2, 3))
        );
        for bad in [
            "65536:1",
            "1:2:3",
            "large:1:2",
            "large:1:2:3:4",
            "x",
            "vpn-only",
        ] {
            assert_eq!(Community::parse(bad), None, "{bad}");
        }
        for ok in ["0:0", "65535:65535", "large:4294967295:0:1"] {
            assert_eq!(Community::parse(ok).unwrap().to_string(), ok);
        }
    }
}
