use super::*;

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

#[test]
fn prefix_parsing_and_masking() {
    assert_eq!(p("198.18.1.7/24").to_string(), "198.18.1.0/24");
    assert_eq!(p("198.18.1.7").to_string(), "198.18.1.7/32");
    assert_eq!(p("fd00::1").to_string(), "fd00::1/128");
    assert_eq!(p("fd00::1:2/64").to_string(), "fd00::/64");
    assert_eq!(p("0.0.0.0/0").to_string(), "0.0.0.0/0");
    assert!("198.18.0.0/33".parse::<Prefix>().is_err());
    assert!("fd00::/129".parse::<Prefix>().is_err());
    assert!("nope/1".parse::<Prefix>().is_err());
    assert!("198.18.0.0/x".parse::<Prefix>().is_err());
    assert_eq!(p("198.18.0.0/17").wire_len(), 4);
    assert_eq!(p("0.0.0.0/0").wire_len(), 1);
    assert_eq!(p("fd00::/128").wire_len(), 17);
}
