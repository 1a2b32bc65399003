//! Deployment packages of handler directories: which files go in (one function, used by
//! deploy to zip them and by `wsconn local` to check that a handler loads only what
//! Lambda will get), and the byte-reproducible zip.
//!
//! - [`node`]: what Node's resolution from the handler directory finds, up to the
//!   directory of wsconn.toml;
//! - [`python`]: `requirements.txt`, installed with pip for Lambda's platform and cached.
//!
//! Safety, for every tree that is walked (the handler directory, a `node_modules`,
//! pip's output):
//! - a symlink whose target leaves the tree is refused, naming it (a link to
//!   `../secret.txt` would upload that file); a link inside it is packaged as what it
//!   names;
//! - a directory that contains itself through links is a loop, refused;
//! - sizes are counted from metadata while walking, and the walk stops at Lambda's
//!   50 MB limit before any file is read, so memory stays bounded whatever the tree.

pub mod node;
pub mod python;

use crate::config::runtime::Language;
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

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
        use base64::Engine as _;
        let sha256 = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&zip));
        Package { zip, sha256 }
    }
}

/// The files of a package: path in the zip → file on disk (already checked), and their
/// total size.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FileSet {
    pub files: BTreeMap<String, PathBuf>,
    pub bytes: u64,
}

impl FileSet {
    /// Adds a file unless the path is taken (the first one to claim a path wins: the
    /// handler's own files before dependencies).
    fn add(&mut self, rel: String, path: PathBuf, len: u64, shown: &Path) -> Result<()> {
        if self.files.contains_key(&rel) {
            return Ok(());
        }
        self.bytes += len;
        if self.bytes > MAX_ZIP_BYTES as u64 {
            return Err(Error::Config(format!(
                "packaging {}: the files are over Lambda's 50 MB limit for a direct upload (stopped counting at {rel}); leave large files out of the handler directory",
                shown.display()
            )));
        }
        self.files.insert(rel, path);
        Ok(())
    }
}

/// What a walk leaves out.
#[derive(Debug, Clone, Copy)]
pub struct Skip {
    /// `node_modules/@aws-sdk/*` (Lambda's Node.js runtime provides the SDK).
    pub runtime_sdk: bool,
    /// `__pycache__` and `.pyc` (Python writes them itself).
    pub bytecode: bool,
}

/// Whether a path (relative, with `/`) is left out of a package.
pub fn excluded(rel: &str, skip: Skip) -> bool {
    rel.split('/').any(|c| c.starts_with('.'))
        || (skip.runtime_sdk
            && (rel == "node_modules/@aws-sdk" || rel.starts_with("node_modules/@aws-sdk/")))
        || (skip.bytecode && (rel.split('/').any(|c| c == "__pycache__") || rel.ends_with(".pyc")))
}

/// Walks `root` (a directory), adding its files under `prefix` in the zip. `shown`
/// names the handler in errors.
pub fn walk(root: &Path, prefix: &str, skip: Skip, set: &mut FileSet, shown: &Path) -> Result<()> {
    let real_root = root
        .canonicalize()
        .map_err(|e| Error::Config(format!("packaging {}: {e}", root.display())))?;
    let mut stack = vec![real_root.clone()];
    walk_dir(&real_root, &real_root, prefix, skip, set, shown, &mut stack)
}

fn walk_dir(
    root: &Path,
    dir: &Path,
    rel: &str,
    skip: Skip,
    set: &mut FileSet,
    shown: &Path,
    stack: &mut Vec<PathBuf>,
) -> Result<()> {
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
        if excluded(&child, skip) {
            continue;
        }
        let path = e.path();
        let link = std::fs::symlink_metadata(&path).map_err(|err| read_err(&path, err))?;
        let target = if link.file_type().is_symlink() {
            // Where it leads, checked before anything is read through it.
            let real = path.canonicalize().map_err(|err| {
                Error::Config(format!(
                    "packaging {}: the link {} leads nowhere ({err})",
                    shown.display(),
                    path.display()
                ))
            })?;
            if !real.starts_with(root) {
                return Err(Error::Config(format!(
                    "packaging {}: the link {} leads to {}, outside {}; wsconn never uploads files from outside the directory it packages (copy the file in instead)",
                    shown.display(),
                    path.display(),
                    real.display(),
                    root.display()
                )));
            }
            real
        } else {
            path.clone()
        };
        let meta = std::fs::metadata(&target).map_err(|err| read_err(&target, err))?;
        if meta.is_dir() {
            let real = target
                .canonicalize()
                .map_err(|err| read_err(&target, err))?;
            if stack.contains(&real) {
                return Err(Error::Config(format!(
                    "packaging {}: {} leads back into {} (a symlink loop)",
                    shown.display(),
                    path.display(),
                    real.display()
                )));
            }
            stack.push(real.clone());
            walk_dir(root, &real, &child, skip, set, shown, stack)?;
            stack.pop();
        } else if meta.is_file() {
            set.add(child, target, meta.len(), shown)?;
        }
    }
    Ok(())
}

/// Zips a file set: sorted entries, stored, fixed times and modes, so the bytes depend
/// only on the files. Files are read one at a time into the zip.
pub fn zip(set: &FileSet, shown: &Path) -> Result<Package> {
    let fail = |e: String| Error::Config(format!("packaging {}: {e}", shown.display()));
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::with_capacity(
        set.bytes as usize + set.files.len() * 128,
    )));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    let mut buf = Vec::new();
    for (name, path) in &set.files {
        buf.clear();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut buf))
            .map_err(|e| fail(format!("{}: {e}", path.display())))?;
        w.start_file(name.as_str(), opts)
            .map_err(|e| fail(e.to_string()))?;
        w.write_all(&buf).map_err(|e| fail(e.to_string()))?;
    }
    let zip = w.finish().map_err(|e| fail(e.to_string()))?.into_inner();
    if zip.len() > MAX_ZIP_BYTES {
        return Err(fail(format!(
            "the zip is {:.1} MB, over Lambda's 50 MB limit for a direct upload; leave large files out of the handler directory",
            zip.len() as f64 / (1024.0 * 1024.0)
        )));
    }
    Ok(Package::of(zip))
}

/// The files of a handler's package: its directory, and what its runtime adds
/// (`node_modules` found up to `boundary`, the directory of wsconn.toml; pip's output).
/// Everything is checked (links, loops, size) before any file is read.
pub fn file_set(dir: &Path, language: Language, runtime: &str, boundary: &Path) -> Result<FileSet> {
    let mut set = FileSet::default();
    match language {
        Language::Node => {
            node::check_dependencies_installed(dir)?;
            walk(
                dir,
                "",
                Skip {
                    runtime_sdk: true,
                    bytecode: false,
                },
                &mut set,
                dir,
            )?;
            node::add_resolved(dir, boundary, &mut set)?;
        }
        Language::Python => {
            let skip = Skip {
                runtime_sdk: false,
                bytecode: true,
            };
            walk(dir, "", skip, &mut set, dir)?;
            if let Some(deps) = python::installed(dir, runtime)? {
                python::add(&deps, dir, &mut set)?;
            }
        }
    }
    Ok(set)
}

/// Packages a handler directory for its runtime (see [`file_set`]).
pub fn package_dir(
    dir: &Path,
    language: Language,
    runtime: &str,
    boundary: &Path,
) -> Result<Package> {
    zip(&file_set(dir, language, runtime, boundary)?, dir)
}

/// wsconn's cache directory: `$WSCONN_CACHE_DIR`, `$XDG_CACHE_HOME/wsconn`, or the
/// platform's (`~/Library/Caches/wsconn` on macOS, `~/.cache/wsconn` elsewhere).
pub fn cache_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = var("WSCONN_CACHE_DIR") {
        return Some(d);
    }
    if let Some(d) = var("XDG_CACHE_HOME") {
        return Some(d.join("wsconn"));
    }
    let home = var("HOME")?;
    Some(if cfg!(target_os = "macos") {
        home.join("Library/Caches/wsconn")
    } else {
        home.join(".cache/wsconn")
    })
}

/// The SHA-256 of some bytes, hex (for cache keys).
pub fn digest_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (rel, text) in files {
            let p = d.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        d
    }

    pub fn names(p: &Package) -> Vec<String> {
        let mut r = zip::ZipArchive::new(std::io::Cursor::new(p.zip.clone())).unwrap();
        (0..r.len())
            .map(|i| r.by_index(i).unwrap().name().unwrap().to_string())
            .collect()
    }

    fn node(dir: &Path) -> Result<Package> {
        package_dir(dir, Language::Node, "nodejs24.x", dir)
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
        let p = node(d.path()).unwrap();
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
        assert_eq!(p, Package::of(p.zip.clone()));
        // The same files in another directory give the same bytes.
        let again = tree(&[
            ("package.json", r#"{"dependencies": {"ulid": "1"}}"#),
            ("node_modules/ulid/index.js", "kept"),
            ("node_modules/@smithy/x/index.js", "kept"),
            ("lib/util.mjs", "x"),
            ("index.mjs", "export const handler = 1"),
        ]);
        assert_eq!(node(again.path()).unwrap(), p);
        std::fs::write(d.path().join("lib/util.mjs"), "y").unwrap();
        assert_ne!(node(d.path()).unwrap().sha256, p.sha256);
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
        let e = node(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("names 2 dependencies") && e.contains("run `npm install` in"),
            "{e}"
        );
        let none = tree(&[("index.mjs", "x"), ("package.json", r#"{"name": "h"}"#)]);
        assert!(node(none.path()).is_ok());
    }

    #[test]
    fn a_package_over_50_mb_is_refused_before_anything_is_read() {
        let d = tree(&[("index.mjs", "x")]);
        let f = std::fs::File::create(d.path().join("big.bin")).unwrap();
        f.set_len(MAX_ZIP_BYTES as u64).unwrap();
        let e = node(d.path()).unwrap_err().to_string();
        assert!(e.contains("over Lambda's 50 MB limit"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn links_out_of_the_directory_and_loops_are_refused_and_links_in_it_packaged() {
        use std::os::unix::fs::symlink;
        let d = tree(&[
            ("h/index.mjs", "x"),
            ("h/data/real.txt", "inside"),
            ("secret.txt", "s3cr3t"),
        ]);
        let h = d.path().join("h");
        symlink(h.join("data/real.txt"), h.join("alias.txt")).unwrap();
        let p = node(&h).unwrap();
        assert_eq!(names(&p), ["alias.txt", "data/real.txt", "index.mjs"]);
        symlink(d.path().join("secret.txt"), h.join("config.txt")).unwrap();
        let e = node(&h).unwrap_err().to_string();
        assert!(
            e.contains("config.txt leads to") && e.contains("outside"),
            "{e}"
        );
        std::fs::remove_file(h.join("config.txt")).unwrap();
        symlink(&h, h.join("data/loop")).unwrap();
        let e = node(&h).unwrap_err().to_string();
        assert!(e.contains("symlink loop"), "{e}");
    }

    #[test]
    fn exclusions() {
        let js = Skip {
            runtime_sdk: true,
            bytecode: false,
        };
        assert!(
            excluded(".env", js)
                && excluded("a/.hidden", js)
                && excluded("node_modules/@aws-sdk", js)
        );
        assert!(excluded("node_modules/@aws-sdk/client-s3/x.js", js));
        assert!(!excluded("node_modules/@aws-sdkx/y", js) && !excluded("index.mjs", js));
        let py = Skip {
            runtime_sdk: false,
            bytecode: true,
        };
        assert!(excluded("__pycache__/a.pyc", py) && excluded("pkg/mod.pyc", py));
        assert!(!excluded("app.py", py));
    }
}
