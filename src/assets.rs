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

/// Lambda's limit on a zip uploaded in the request (ZipFile): 50 MB.
pub const MAX_ZIP_BYTES: usize = 50 * 1024 * 1024;

/// A deployment package: the zip and its base64 SHA-256 (Lambda's `CodeSha256`).
#[derive(Debug, Clone, PartialEq)]
pub struct Package {
    pub zip: Vec<u8>,
    pub sha256: String,
}

impl Package {
    pub fn of(zip: Vec<u8>) -> Package {
        let sha256 = sha256_base64(&zip);
        Package { zip, sha256 }
    }
}

/// Packages a handler directory byte-reproducibly ([`zip_files`]): every file under it,
/// by relative path with `/`, except dotfiles and dot-directories, and except
/// `node_modules/@aws-sdk/*`, which the Node.js runtime provides (as CDK's
/// NodejsFunction leaves it out). The rest of `node_modules` is kept.
///
/// Refused before any AWS call: a `package.json` naming `dependencies` with no
/// `node_modules` beside it (the function would fail at its first import), and a zip
/// over Lambda's 50 MB direct-upload limit.
pub fn package_dir(dir: &Path) -> Result<Package> {
    let shown = dir.display();
    let manifest = dir.join("package.json");
    if manifest.is_file() && !dir.join("node_modules").is_dir() {
        let text = std::fs::read_to_string(&manifest)
            .map_err(|e| Error::Config(format!("reading {}: {e}", manifest.display())))?;
        let deps = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| {
                v.get("dependencies")
                    .and_then(|d| d.as_object())
                    .map(|d| d.len())
            })
            .unwrap_or(0);
        if deps > 0 {
            return Err(Error::Config(format!(
                "{}: names {deps} dependenc{} but {shown}/node_modules does not exist; run `npm install` in {shown} first",
                manifest.display(),
                if deps == 1 { "y" } else { "ies" }
            )));
        }
    }
    let mut files = Vec::new();
    collect(dir, "", 0, &mut files)?;
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let zip = zip_files(&refs).map_err(|e| Error::Config(format!("packaging {shown}: {e}")))?;
    if zip.len() > MAX_ZIP_BYTES {
        return Err(Error::Config(format!(
            "packaging {shown}: the zip is {:.1} MB, over Lambda's 50 MB limit for a direct upload; leave large files out of the handler directory",
            zip.len() as f64 / (1024.0 * 1024.0)
        )));
    }
    Ok(Package::of(zip))
}

/// Whether a path inside a handler directory is left out of its package.
pub fn excluded(rel: &str) -> bool {
    rel.split('/').any(|c| c.starts_with('.'))
        || rel == "node_modules/@aws-sdk"
        || rel.starts_with("node_modules/@aws-sdk/")
}

fn collect(dir: &Path, rel: &str, depth: usize, out: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
    if depth > 64 {
        return Err(Error::Config(format!(
            "packaging {}: directories nested over 64 deep (a symlink loop?)",
            dir.display()
        )));
    }
    let read_err =
        |p: &Path, e: std::io::Error| Error::Config(format!("packaging {}: {e}", p.display()));
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| read_err(dir, e))?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if excluded(&child) {
            continue;
        }
        let path = e.path();
        let meta = std::fs::metadata(&path).map_err(|err| read_err(&path, err))?;
        if meta.is_dir() {
            collect(&path, &child, depth + 1, out)?;
        } else if meta.is_file() {
            out.push((
                child,
                std::fs::read(&path).map_err(|err| read_err(&path, err))?,
            ));
        }
    }
    Ok(())
}

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

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (rel, text) in files {
            let p = d.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        d
    }

    fn names(p: &Package) -> Vec<String> {
        let mut r = zip::ZipArchive::new(std::io::Cursor::new(p.zip.clone())).unwrap();
        (0..r.len())
            .map(|i| r.by_index(i).unwrap().name().unwrap().to_string())
            .collect()
    }

    #[test]
    fn a_handler_directory_is_packaged_without_dotfiles_or_the_runtime_sdk() {
        let d = tree(&[
            ("index.mjs", "export const handler = 1"),
            ("lib/util.mjs", "x"),
            (".env", "SECRET=1"),
            (".git/config", "x"),
            ("node_modules/@aws-sdk/client-dynamodb/index.js", "sdk"),
            ("node_modules/@smithy/x/index.js", "kept"),
            ("node_modules/ulid/index.js", "kept"),
            ("node_modules/.bin/x", "x"),
            ("package.json", r#"{"dependencies": {"ulid": "1"}}"#),
        ]);
        let p = package_dir(d.path()).unwrap();
        assert_eq!(
            names(&p),
            [
                "index.mjs",
                "lib/util.mjs",
                "node_modules/@smithy/x/index.js",
                "node_modules/ulid/index.js",
                "package.json"
            ]
        );
        assert_eq!(p.sha256, sha256_base64(&p.zip));
        // The same files in another directory give the same bytes.
        let again = tree(&[
            ("package.json", r#"{"dependencies": {"ulid": "1"}}"#),
            ("node_modules/ulid/index.js", "kept"),
            ("node_modules/@smithy/x/index.js", "kept"),
            ("lib/util.mjs", "x"),
            ("index.mjs", "export const handler = 1"),
        ]);
        assert_eq!(package_dir(again.path()).unwrap(), p);
        std::fs::write(d.path().join("lib/util.mjs"), "y").unwrap();
        assert_ne!(package_dir(d.path()).unwrap().sha256, p.sha256);
    }

    #[test]
    fn dependencies_without_node_modules_name_the_command() {
        let d = tree(&[
            ("index.mjs", "x"),
            (
                "package.json",
                r#"{"dependencies": {"ulid": "1", "uuid": "9"}}"#,
            ),
        ]);
        let e = package_dir(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("names 2 dependencies") && e.contains("run `npm install` in"),
            "{e}"
        );
        let none = tree(&[("index.mjs", "x"), ("package.json", r#"{"name": "h"}"#)]);
        assert!(package_dir(none.path()).is_ok());
    }

    #[test]
    fn a_package_over_50_mb_is_refused() {
        let d = tree(&[("index.mjs", "x")]);
        let f = std::fs::File::create(d.path().join("big.bin")).unwrap();
        f.set_len(MAX_ZIP_BYTES as u64).unwrap();
        let e = package_dir(d.path()).unwrap_err().to_string();
        assert!(e.contains("over Lambda's 50 MB limit"), "{e}");
    }

    #[test]
    fn exclusions() {
        assert!(excluded(".env") && excluded("a/.hidden") && excluded("node_modules/@aws-sdk"));
        assert!(excluded("node_modules/@aws-sdk/client-s3/x.js"));
        assert!(!excluded("node_modules/@aws-sdkx/y") && !excluded("index.mjs"));
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
