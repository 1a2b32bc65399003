//! The files wsconn uploads: mapping templates (verbatim but for named placeholders) and
//! the `$default` handler, packaged into a byte-for-byte reproducible zip.

use crate::error::{Error, Result};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::io::Write as _;
use std::path::Path;

const CONNECT: &str = include_str!("../mapping-templates/connect.vtl");
const DISCONNECT: &str = include_str!("../mapping-templates/disconnect.vtl");
const HANDLER: &str = include_str!("../lambda/index.mjs");

pub const CONNECT_FILE: &str = "mapping-templates/connect.vtl";
pub const DISCONNECT_FILE: &str = "mapping-templates/disconnect.vtl";
pub const HANDLER_FILE: &str = "lambda/index.mjs";

pub const TABLE_PLACEHOLDER: &str = "@@TABLE_NAME@@";
pub const TTL_PLACEHOLDER: &str = "@@CONNECTION_TTL_SECONDS@@";
/// API Gateway's quota for one mapping template.
const MAX_TEMPLATE_BYTES: usize = 300 * 1024;

#[derive(Debug, Clone)]
pub struct Assets {
    pub connect_template: String,
    /// The handler's source (`lambda/index.mjs`).
    pub handler: String,
    pub disconnect_template: String,
    pub lambda_zip: Vec<u8>,
    /// base64 SHA-256 of the zip, as Lambda reports `CodeSha256`.
    pub lambda_sha256: String,
}

/// Loads the assets from `dir` (holding mapping-templates/ and lambda/) or the copies built
/// into the binary, and fills in the placeholders.
pub fn load(dir: Option<&Path>, table: &str, ttl_seconds: u64) -> Result<Assets> {
    let read = |rel: &str, builtin: &str| -> Result<String> {
        match dir {
            None => Ok(builtin.to_string()),
            Some(d) => std::fs::read_to_string(d.join(rel))
                .map_err(|e| Error::Config(format!("reading {}: {e}", d.join(rel).display()))),
        }
    };
    let connect = fill(&read(CONNECT_FILE, CONNECT)?, table, ttl_seconds)
        .map_err(|e| Error::Config(format!("{CONNECT_FILE}: {e}")))?;
    let disconnect = fill(&read(DISCONNECT_FILE, DISCONNECT)?, table, ttl_seconds)
        .map_err(|e| Error::Config(format!("{DISCONNECT_FILE}: {e}")))?;
    let handler = read(HANDLER_FILE, HANDLER)?;
    let lambda_zip = zip_files(&[("index.mjs", handler.as_bytes())])
        .map_err(|e| Error::Config(format!("packaging {HANDLER_FILE}: {e}")))?;
    let lambda_sha256 = sha256_base64(&lambda_zip);
    Ok(Assets {
        connect_template: connect,
        handler,
        disconnect_template: disconnect,
        lambda_zip,
        lambda_sha256,
    })
}

/// Replaces the named placeholders; anything else in `@@…@@` form is a mistake.
pub fn fill(template: &str, table: &str, ttl_seconds: u64) -> Result<String, String> {
    let out = template
        .replace(TABLE_PLACEHOLDER, table)
        .replace(TTL_PLACEHOLDER, &ttl_seconds.to_string());
    if let Some(start) = out.find("@@") {
        let rest = &out[start..];
        let end = rest[2..]
            .find("@@")
            .map(|i| i + 4)
            .unwrap_or(rest.len().min(40));
        return Err(format!(
            "unknown placeholder {}; only {TABLE_PLACEHOLDER} and {TTL_PLACEHOLDER} are filled in",
            &rest[..end]
        ));
    }
    if out.len() > MAX_TEMPLATE_BYTES {
        return Err(format!(
            "{} bytes is over API Gateway's 300 KB template limit",
            out.len()
        ));
    }
    Ok(out)
}

/// A zip whose bytes depend only on the files: sorted entries, stored (no compressor
/// version can change the bytes), fixed 1980-01-01 timestamps and fixed permissions.
pub fn zip_files(files: &[(&str, &[u8])]) -> Result<Vec<u8>, zip::result::ZipError> {
    let mut sorted: Vec<_> = files.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    for (name, bytes) in sorted {
        w.start_file(name, opts)?;
        w.write_all(bytes)?;
    }
    Ok(w.finish()?.into_inner())
}

pub use crate::package::{MAX_ZIP_BYTES, Package};

pub fn sha256_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip_is_reproducible_and_order_independent() {
        let a = zip_files(&[("b.txt", b"2"), ("a.txt", b"1")]).unwrap();
        let b = zip_files(&[("a.txt", b"1"), ("b.txt", b"2")]).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, zip_files(&[("a.txt", b"1"), ("b.txt", b"3")]).unwrap());
    }

    #[test]
    fn zip_holds_the_handler() {
        let z = zip_files(&[("index.mjs", b"x")]).unwrap();
        let mut r = zip::ZipArchive::new(std::io::Cursor::new(z)).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r.by_index(0).unwrap().name().unwrap(), "index.mjs");
    }

    #[test]
    fn built_in_assets_fill_every_placeholder() {
        let a = load(None, "t-connections", 60).unwrap();
        assert!(
            a.connect_template
                .contains("\"TableName\": \"t-connections\"")
        );
        assert!(
            a.connect_template
                .contains("#set($ttl = $context.requestTimeEpoch / 1000 + 60)")
        );
        assert!(!a.connect_template.contains("@@"));
        assert!(
            a.disconnect_template
                .contains("\"TableName\": \"t-connections\"")
        );
        assert!(!a.disconnect_template.contains("@@"));
        assert_eq!(a.lambda_sha256, sha256_base64(&a.lambda_zip));
    }

    #[test]
    fn unknown_placeholders_are_errors() {
        let e = fill("x @@OTHER@@ y", "t", 1).unwrap_err();
        assert!(e.contains("@@OTHER@@"), "{e}");
        assert_eq!(
            fill("@@TABLE_NAME@@/@@CONNECTION_TTL_SECONDS@@", "t", 5).unwrap(),
            "t/5"
        );
    }

    #[test]
    fn sha256_matches_a_known_value() {
        assert_eq!(
            sha256_base64(b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(&sha256_hex(b"")[..8], "e3b0c442");
    }
}
