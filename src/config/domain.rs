//! `[domain]`: the custom domain name the API is reached at (`wss://ws.example.com`),
//! validated before any AWS call: the name's syntax, the zone as a suffix of it, exactly
//! one of `hosted-zone` and `certificate`, the certificate ARN's form, the mapping key.
//! What only a read can tell (the zone exists and is public, the certificate is ISSUED
//! and covers the name, its region is the stack's) is checked by the plan
//! (`deploy::resources::certificate`, `deploy::resources::dns`).

use super::file::DomainFile;
use crate::error::Error;

/// The validated `[domain]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Domain {
    /// Lower case, without a final dot.
    pub name: String,
    /// The API mapping's key: "" maps the stage at the root.
    pub base_path: String,
    pub dns: Dns,
}

/// Who holds the certificate and the DNS records.
#[derive(Debug, Clone, PartialEq)]
pub enum Dns {
    /// A public Route 53 zone of the account (lower case, no final dot): wsconn requests
    /// the certificate, validates it there and writes the alias records.
    Zone(String),
    /// The user's ISSUED certificate (an ACM ARN): DNS is the user's too.
    Certificate(String),
}

impl Domain {
    /// `wss://<name>[/<base-path>]`.
    pub fn websocket_url(&self) -> String {
        if self.base_path.is_empty() {
            format!("wss://{}", self.name)
        } else {
            format!("wss://{}/{}", self.name, self.base_path)
        }
    }
    pub fn zone(&self) -> Option<&str> {
        match &self.dns {
            Dns::Zone(z) => Some(z),
            Dns::Certificate(_) => None,
        }
    }
    pub fn given_certificate(&self) -> Option<&str> {
        match &self.dns {
            Dns::Certificate(c) => Some(c),
            Dns::Zone(_) => None,
        }
    }
}

/// API Gateway's limit on an API mapping key.
const MAX_KEY: usize = 300;

/// Validates `[domain]` of `file` (shown as `shown` in messages).
pub fn resolve(d: &DomainFile, shown: &str) -> Result<Domain, Error> {
    let bad = |key: &str, value: &str, rule: &str| {
        Error::Config(format!("{shown}: domain.{key} = {value:?}: {rule}"))
    };
    let name = dns_name(&d.name).map_err(|rule| bad("name", &d.name, &rule))?;
    if name.split('.').count() < 2 {
        return Err(bad(
            "name",
            &d.name,
            "give a name under a domain you hold, such as ws.example.com",
        ));
    }
    let dns = match (&d.hosted_zone, &d.certificate) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(Error::Config(format!(
                "{shown}: [domain] needs exactly one of hosted-zone (a Route 53 public zone: wsconn requests the certificate and writes the DNS records) and certificate (an ISSUED ACM certificate of yours: DNS is then yours too)"
            )));
        }
        (Some(zone), None) => {
            let z = dns_name(zone).map_err(|rule| bad("hosted-zone", zone, &rule))?;
            if !in_zone(&name, &z) {
                return Err(bad(
                    "hosted-zone",
                    zone,
                    &format!("the zone must hold the name: {name} does not end with .{z}"),
                ));
            }
            Dns::Zone(z)
        }
        (None, Some(arn)) => {
            certificate_arn(arn).map_err(|rule| bad("certificate", arn, &rule))?;
            Dns::Certificate(arn.clone())
        }
    };
    let base_path = d.base_path.clone().unwrap_or_default();
    mapping_key(&base_path).map_err(|rule| bad("base-path", &base_path, &rule))?;
    Ok(Domain {
        name,
        base_path,
        dns,
    })
}

/// A DNS name as API Gateway, ACM and Route 53 all accept it: labels of letters, digits
/// and hyphens (not at either end), 1–63 characters each, 253 in all. Returned in lower
/// case without a final dot.
pub fn dns_name(s: &str) -> Result<String, String> {
    let name = s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 253 {
        return Err(format!("{} characters: at most 253", name.len()));
    }
    if name.contains('*') {
        return Err("wildcard names are not supported for a WebSocket API's domain".into());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("has an empty label (two dots in a row, or a leading dot)".into());
        }
        if label.len() > 63 {
            return Err(format!("the label {label:?} is longer than 63 characters"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!(
                "{c:?} in {label:?}: a DNS name has letters, digits and hyphens (write an internationalised name in its xn-- form)"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("the label {label:?} starts or ends with a hyphen"));
        }
    }
    Ok(name)
}

/// Whether `name` is `zone` or under it (label by label).
pub fn in_zone(name: &str, zone: &str) -> bool {
    name == zone || name.ends_with(&format!(".{zone}"))
}

/// An ACM certificate ARN: `arn:<partition>:acm:<region>:<account>:certificate/<id>`.
/// Returns its region.
pub fn certificate_arn(arn: &str) -> Result<String, String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && !parts[1].is_empty()
        && parts[2] == "acm"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && parts[5]
            .strip_prefix("certificate/")
            .is_some_and(|id| !id.is_empty() && !id.contains('/'));
    if ok {
        Ok(parts[3].to_string())
    } else {
        Err("not an ACM certificate ARN (arn:aws:acm:REGION:ACCOUNT:certificate/ID)".into())
    }
}

/// An API mapping key for a WebSocket API: "" (the root) or one path segment.
pub fn mapping_key(key: &str) -> Result<(), String> {
    if key.len() > MAX_KEY {
        return Err(format!("{} characters: at most {MAX_KEY}", key.len()));
    }
    if key.contains('/') {
        return Err(
            "a WebSocket API's mapping has one path segment (no \"/\"); \"\" maps the root".into(),
        );
    }
    if let Some(c) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-._~".contains(*c)))
    {
        return Err(format!(
            "{c:?}: use letters, digits and - . _ ~ (the key is a URL path segment)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, zone: Option<&str>, cert: Option<&str>, base: Option<&str>) -> DomainFile {
        DomainFile {
            name: name.into(),
            hosted_zone: zone.map(String::from),
            certificate: cert.map(String::from),
            base_path: base.map(String::from),
        }
    }

    const CERT: &str =
        "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012";

    #[test]
    fn a_zone_domain_is_lower_cased_and_its_url_has_the_key() {
        let d = resolve(
            &file("WS.Example.com.", Some("example.com"), None, None),
            "w",
        )
        .unwrap();
        assert_eq!(d.name, "ws.example.com");
        assert_eq!(d.dns, Dns::Zone("example.com".into()));
        assert_eq!(d.websocket_url(), "wss://ws.example.com");
        let d = resolve(
            &file("example.com", Some("example.com"), None, Some("v1")),
            "w",
        )
        .unwrap();
        assert_eq!(d.websocket_url(), "wss://example.com/v1");
        assert_eq!(d.zone(), Some("example.com"));
        assert_eq!(d.given_certificate(), None);
    }

    #[test]
    fn the_zone_must_be_a_suffix_at_a_label_boundary() {
        let e = resolve(
            &file("ws.badexample.com", Some("example.com"), None, None),
            "w.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("domain.hosted-zone = \"example.com\"") && e.contains("ws.badexample.com"),
            "{e}"
        );
        assert!(in_zone("a.b.example.com", "example.com"));
        assert!(!in_zone("example.com", "a.example.com"));
    }

    #[test]
    fn exactly_one_of_zone_and_certificate() {
        for (z, c) in [(None, None), (Some("example.com"), Some(CERT))] {
            let e = resolve(&file("ws.example.com", z, c, None), "w")
                .unwrap_err()
                .to_string();
            assert!(e.contains("exactly one of hosted-zone"), "{e}");
        }
        let d = resolve(&file("ws.example.com", None, Some(CERT), None), "w").unwrap();
        assert_eq!(d.given_certificate(), Some(CERT));
    }

    #[test]
    fn names_follow_dns_rules() {
        for bad in [
            "",
            "ws..example.com",
            "-ws.example.com",
            "ws-.example.com",
            "ws_x.example.com",
            "*.example.com",
            "wß.example.com",
        ] {
            assert!(dns_name(bad).is_err(), "{bad}");
        }
        assert!(dns_name(&format!("{}.com", "a".repeat(64))).is_err());
        assert!(dns_name(&format!("{}.com", "a".repeat(63))).is_ok());
        let long = vec!["abcdefghi"; 26].join(".");
        assert!(dns_name(&long).is_err(), "{} chars", long.len());
        let e = resolve(&file("localhost", Some("localhost"), None, None), "w").unwrap_err();
        assert!(e.to_string().contains("under a domain"), "{e}");
    }

    #[test]
    fn certificate_arns_are_checked_for_form_and_give_their_region() {
        assert_eq!(certificate_arn(CERT).unwrap(), "us-east-1");
        for bad in [
            "arn:aws:acm:us-east-1:123:certificate/x",
            "arn:aws:iam::123456789012:role/x",
            "arn:aws:acm:us-east-1:123456789012:certificate/",
            "certificate/abc",
        ] {
            assert!(certificate_arn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mapping_keys_are_one_segment() {
        assert!(mapping_key("").is_ok());
        assert!(mapping_key("v1.2_x~y-z").is_ok());
        assert!(mapping_key("a/b").is_err());
        assert!(mapping_key("a b").is_err());
        assert!(mapping_key(&"k".repeat(301)).is_err());
        let e = resolve(
            &file("ws.example.com", Some("example.com"), None, Some("a/b")),
            "w",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("domain.base-path"), "{e}");
    }
}
