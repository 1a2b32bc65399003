//! The runtime's SDK, as Lambda provides it. Lambda's Node.js runtimes include the AWS
//! SDK for JavaScript v3 and its Python runtimes boto3, and AWS's samples rely on that:
//! their handlers import `@aws-sdk/client-dynamodb` or `boto3` with no dependency of
//! their own. `wsconn local` provides them the same way: when a handler imports one and
//! its own tree lacks it, the worker finds it in wsconn's cache (a copy the handler
//! bundles wins, as on Lambda).
//!
//! The versions are pinned in the repository (`src/local/sdk/`): the Node.js packages by
//! a package-lock.json installed with `npm ci`, boto3 by `requirements-python.txt` in a
//! virtualenv of its own. Each is installed once, into a directory named after the pin,
//! made in a temporary directory and renamed into place when complete, so a run that is
//! stopped half-way leaves nothing that looks installed. Later runs are offline.

use crate::config::runtime::Language;
use crate::stack::{Code, FunctionDef, Stack};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;

const NODE_PACKAGE: &str = include_str!("sdk/package.json");
const NODE_LOCK: &str = include_str!("sdk/package-lock.json");
const PYTHON_REQUIREMENTS: &str = include_str!("sdk/requirements-python.txt");
/// The version every pinned `@aws-sdk` client shares; a client outside the pinned set is
/// installed at the newest version up to it.
pub const NODE_SDK_VERSION: &str = "3.1178.0";
/// Written last into a complete installation.
const DONE: &str = ".wsconn-complete";
/// How many source files of one handler are scanned for imports.
const MAX_SCANNED: usize = 2000;

pub use crate::package::cache_dir;

/// The runtime-SDK packages a handler's source imports: `@aws-sdk/*` and `@smithy/*`
/// for Node.js (by package name), `boto3`/`botocore` for Python. A static look at the
/// handler directory's own files (not `node_modules`, not dotfiles).
pub fn imported(dir: &Path, language: Language) -> BTreeSet<String> {
    match language {
        Language::Node => crate::package::node::handler_imports(dir)
            .into_iter()
            .filter(|p| p.starts_with("@aws-sdk/") || p.starts_with("@smithy/"))
            .collect(),
        Language::Python => {
            let mut out = BTreeSet::new();
            let mut todo = vec![dir.to_path_buf()];
            let mut scanned = 0;
            while let Some(d) = todo.pop() {
                let Ok(entries) = std::fs::read_dir(&d) else {
                    continue;
                };
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.starts_with('.') || name == "__pycache__" {
                        continue;
                    }
                    let Ok(t) = e.file_type() else { continue };
                    if t.is_dir() {
                        todo.push(e.path());
                    } else if name.ends_with(".py") && scanned < MAX_SCANNED {
                        scanned += 1;
                        if let Ok(text) = std::fs::read_to_string(e.path()) {
                            out.extend(python_imports(&text));
                        }
                    }
                }
            }
            out
        }
    }
}

/// `boto3` and `botocore` when a Python source imports them. Pure.
pub fn python_imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let l = line.trim_start();
        for pkg in ["boto3", "botocore"] {
            let imports = l.starts_with(&format!("import {pkg}"))
                || l.starts_with(&format!("from {pkg} "))
                || l.starts_with(&format!("from {pkg}."));
            let next = l
                .split_whitespace()
                .nth(1)
                .map(|w| w.split(['.', ',']).next().unwrap_or(""));
            if imports && next == Some(pkg) {
                out.insert(pkg.to_string());
            }
        }
    }
    out
}

/// Whether Node's resolution from `dir` finds `package` (a `node_modules/<package>` in
/// `dir` or any directory above it).
pub fn node_resolves(dir: &Path, package: &str) -> bool {
    dir.ancestors().any(|d| {
        d.join("node_modules")
            .join(package)
            .join("package.json")
            .is_file()
    })
}

/// Whether a Python handler bundles `package` (`<dir>/<package>/__init__.py`).
pub fn python_bundles(dir: &Path, package: &str) -> bool {
    dir.join(package).join("__init__.py").is_file()
}

/// What one function's handler imports from the runtime's SDK and does not bundle.
pub fn missing(f: &FunctionDef) -> BTreeSet<String> {
    let Code::Dir { dir, .. } = &f.code else {
        return BTreeSet::new();
    };
    imported(dir, f.language)
        .into_iter()
        .filter(|p| match f.language {
            Language::Node => !node_resolves(dir, p),
            Language::Python => !python_bundles(dir, p),
        })
        .collect()
}

/// Where the provided SDK is, per language, and which functions use it.
#[derive(Debug, Default)]
pub struct Provided {
    /// The `node_modules` directory of the pinned JavaScript SDK.
    pub node_modules: Option<PathBuf>,
    /// The site-packages directory of the pinned boto3.
    pub site_packages: Option<PathBuf>,
    /// Function name → the packages it gets from wsconn.
    pub users: Vec<(String, BTreeSet<String>)>,
}

/// Makes sure the SDK packages the stack's handlers import and lack are in the cache,
/// installing them once. The error is one line: the package, why, and the command.
pub async fn provide(
    stack: &Stack,
    python: Option<&Path>,
    note: &(dyn Fn(&str) + Sync),
) -> Result<Provided, String> {
    let mut out = Provided::default();
    let mut node_needs = BTreeSet::new();
    let mut python_needs = false;
    for f in &stack.functions {
        let m = missing(f);
        if m.is_empty() {
            continue;
        }
        match f.language {
            Language::Node => node_needs.extend(m.iter().cloned()),
            Language::Python => python_needs = true,
        }
        out.users.push((f.name.clone(), m));
    }
    if node_needs.is_empty() && !python_needs {
        return Ok(out);
    }
    let cache = cache_dir().ok_or_else(|| {
        "no cache directory for the runtime's SDK (HOME is not set); set WSCONN_CACHE_DIR"
            .to_string()
    })?;
    if !node_needs.is_empty() {
        out.node_modules = Some(node_sdk(&cache, &node_needs, note).await?);
    }
    if python_needs {
        let python = python.ok_or("no Python for the Python handlers")?;
        out.site_packages = Some(python_sdk(&cache, python, note).await?);
    }
    Ok(out)
}

/// A short digest of a pin, in the installation's directory name.
fn pin_digest(text: &str) -> String {
    crate::assets::sha256_hex(text.as_bytes())[..12].to_string()
}

/// The packages of `needs` that the pinned lockfile does not install.
pub fn outside_pin(needs: &BTreeSet<String>) -> Vec<String> {
    let lock: serde_json::Value = serde_json::from_str(NODE_LOCK).unwrap_or_default();
    let pinned: BTreeSet<String> = lock["packages"]
        .as_object()
        .map(|p| {
            p.keys()
                .filter_map(|k| k.strip_prefix("node_modules/"))
                .filter(|k| !k.contains("/node_modules/"))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    needs
        .iter()
        .filter(|n| !pinned.contains(*n))
        .cloned()
        .collect()
}

/// The pinned JavaScript SDK in `cache/node-sdk/<pin>/node_modules`, with `needs` in it:
/// `npm ci` from the pinned lockfile once, plus any client outside it at the pinned
/// version (an installation of its own per set of extras, so the pinned one is never
/// changed in place).
async fn node_sdk(
    cache: &Path,
    needs: &BTreeSet<String>,
    note: &(dyn Fn(&str) + Sync),
) -> Result<PathBuf, String> {
    let extras = outside_pin(needs);
    let mut key = pin_digest(&(NODE_PACKAGE.to_string() + NODE_LOCK));
    if !extras.is_empty() {
        key = format!("{key}-{}", pin_digest(&extras.join(",")));
    }
    let dir = cache.join("node-sdk").join(key);
    if dir.join(DONE).is_file()
        && needs.iter().all(|p| {
            dir.join("node_modules")
                .join(p)
                .join("package.json")
                .is_file()
        })
    {
        return Ok(dir.join("node_modules"));
    }
    let shown: Vec<&str> = needs.iter().map(String::as_str).collect();
    let command = format!(
        "npm ci --prefix {} (from wsconn's pinned package-lock.json){}",
        dir.display(),
        if extras.is_empty() {
            String::new()
        } else {
            format!(
                ", then npm install --prefix {} {}",
                dir.display(),
                extras
                    .iter()
                    .map(|e| format!("{e}@\"<={NODE_SDK_VERSION}\""))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    );
    let fail = |why: String| {
        format!(
            "the handlers import {}, which Lambda's Node.js runtime provides; wsconn could not install it into its cache: {why}. With network access, run: {command}",
            shown.join(", ")
        )
    };
    let npm = which("npm").ok_or_else(|| fail("npm is not on PATH".into()))?;
    note(&format!(
        "installing the AWS SDK for JavaScript {NODE_SDK_VERSION} ({}) into {} once, as Lambda's runtime provides it…",
        shown.join(", "),
        dir.display()
    ));
    let started = std::time::Instant::now();
    let tmp = fresh_temp(&dir).map_err(fail)?;
    std::fs::write(tmp.join("package.json"), NODE_PACKAGE)
        .map_err(|e| fail(format!("writing {}: {e}", tmp.display())))?;
    std::fs::write(tmp.join("package-lock.json"), NODE_LOCK)
        .map_err(|e| fail(format!("writing {}: {e}", tmp.display())))?;
    run(
        &npm,
        &[
            "ci",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--loglevel=error",
        ],
        &tmp,
    )
    .await
    .map_err(&fail)?;
    if !extras.is_empty() {
        let mut args = vec![
            "install",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--no-save",
            "--loglevel=error",
        ];
        let specs: Vec<String> = extras
            .iter()
            .map(|e| format!("{e}@<={NODE_SDK_VERSION}"))
            .collect();
        args.extend(specs.iter().map(String::as_str));
        run(&npm, &args, &tmp).await.map_err(&fail)?;
    }
    finish(&tmp, &dir).map_err(fail)?;
    note(&format!(
        "installed the AWS SDK for JavaScript in {:.1} s; later runs use it offline",
        started.elapsed().as_secs_f64()
    ));
    Ok(dir.join("node_modules"))
}

/// The pinned boto3 in a virtualenv of its own, `cache/python-sdk/<pin>-py<X.Y>`: its
/// site-packages directory.
async fn python_sdk(
    cache: &Path,
    python: &Path,
    note: &(dyn Fn(&str) + Sync),
) -> Result<PathBuf, String> {
    let version = super::worker::version(python).await?;
    let minor: String = version
        .trim_start_matches("Python ")
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".");
    let dir = cache
        .join("python-sdk")
        .join(format!("{}-py{minor}", pin_digest(PYTHON_REQUIREMENTS)));
    let site = dir
        .join("lib")
        .join(format!("python{minor}"))
        .join("site-packages");
    if dir.join(DONE).is_file() && site.join("boto3").is_dir() {
        return Ok(site);
    }
    let pin = PYTHON_REQUIREMENTS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ");
    let command = format!(
        "{} -m venv {d} && {d}/bin/pip install {pin}",
        python.display(),
        d = dir.display()
    );
    let fail = |why: String| {
        format!(
            "the Python handlers import boto3, which Lambda's Python runtime provides; wsconn could not install it into its cache: {why}. With network access, run: {command}"
        )
    };
    note(&format!(
        "installing {pin} into {} once, as Lambda's runtime provides it…",
        dir.display()
    ));
    let started = std::time::Instant::now();
    // A virtualenv records its own path, so it is made where it stays; it counts as
    // installed only once marked complete, and an incomplete one is made again.
    std::fs::create_dir_all(cache).map_err(|e| {
        fail(format!(
            "{} cannot be made ({e}); set WSCONN_CACHE_DIR to a writable directory",
            cache.display()
        ))
    })?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| fail(format!("replacing {}: {e}", dir.display())))?;
    }
    let dir_s = dir.display().to_string();
    run(python, &["-m", "venv", &dir_s], cache)
        .await
        .map_err(&fail)?;
    let pip = dir.join("bin").join("pip");
    let mut args = vec![
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
    ];
    args.extend(pin.split(' '));
    run(&pip, &args, cache).await.map_err(&fail)?;
    if !site.join("boto3").is_dir() {
        return Err(fail(format!("pip left no boto3 in {}", site.display())));
    }
    std::fs::write(dir.join(DONE), "")
        .map_err(|e| fail(format!("writing {}: {e}", dir.display())))?;
    note(&format!(
        "installed boto3 in {:.1} s; later runs use it offline",
        started.elapsed().as_secs_f64()
    ));
    Ok(site)
}

/// An empty directory beside `dir` to install into.
fn fresh_temp(dir: &Path) -> Result<PathBuf, String> {
    let parent = dir.parent().ok_or("no parent directory")?;
    std::fs::create_dir_all(parent).map_err(|e| {
        format!(
            "{} cannot be made ({e}); set WSCONN_CACHE_DIR to a writable directory",
            parent.display()
        )
    })?;
    let tmp = parent.join(format!(
        ".tmp-{}-{}",
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| {
        format!(
            "{} cannot be written ({e}); set WSCONN_CACHE_DIR to a writable directory",
            tmp.display()
        )
    })?;
    Ok(tmp)
}

/// Marks `tmp` complete and puts it in place of `dir` (which may be a broken earlier
/// installation).
fn finish(tmp: &Path, dir: &Path) -> Result<(), String> {
    std::fs::write(tmp.join(DONE), "").map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    if dir.join(DONE).is_file() {
        // Another run installed the same pin meanwhile: use it.
        let _ = std::fs::remove_dir_all(tmp);
        return Ok(());
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("replacing {}: {e}", dir.display()))?;
    }
    match std::fs::rename(tmp, dir) {
        Ok(()) => Ok(()),
        Err(_) if dir.join(DONE).is_file() => {
            let _ = std::fs::remove_dir_all(tmp);
            Ok(())
        }
        Err(e) => Err(format!("moving {} into place: {e}", tmp.display())),
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Runs a program to completion; its error output's last line is the reason.
async fn run(program: &Path, args: &[&str], cwd: &Path) -> Result<(), String> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("running {}: {e}", program.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .rfind(|l| !l.starts_with("npm error A complete log"))
        .unwrap_or("no output");
    Err(format!(
        "{} {} failed ({}): {last}",
        program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        args.first().copied().unwrap_or_default(),
        out.status
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_imports_of_the_runtimes_sdk_are_found() {
        let py = "import json\nimport boto3\nfrom botocore.exceptions import ClientError\nimport boto3_extra\n";
        let got: Vec<String> = python_imports(py).into_iter().collect();
        assert_eq!(got, ["boto3", "botocore"]);
    }

    #[test]
    fn a_bundled_copy_is_not_provided() {
        let d = tempfile::tempdir().unwrap();
        let h = d.path().join("handlers/send");
        std::fs::create_dir_all(&h).unwrap();
        std::fs::write(
            h.join("app.mjs"),
            "import '@aws-sdk/client-dynamodb';\nimport '@aws-sdk/lib-dynamodb';",
        )
        .unwrap();
        // One found by Node's resolution up the tree (the example's root node_modules).
        let pkg = d.path().join("node_modules/@aws-sdk/lib-dynamodb");
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::write(pkg.join("package.json"), "{}").unwrap();
        assert!(node_resolves(&h, "@aws-sdk/lib-dynamodb"));
        assert!(!node_resolves(&h, "@aws-sdk/client-dynamodb"));
        let got: Vec<String> = imported(&h, Language::Node).into_iter().collect();
        assert_eq!(got, ["@aws-sdk/client-dynamodb", "@aws-sdk/lib-dynamodb"]);
    }

    #[test]
    fn the_pin_covers_the_websocket_clients() {
        let needs: BTreeSet<String> = [
            "@aws-sdk/client-dynamodb",
            "@aws-sdk/client-apigatewaymanagementapi",
            "@aws-sdk/client-s3",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(outside_pin(&needs), ["@aws-sdk/client-s3"]);
        assert!(NODE_PACKAGE.contains(NODE_SDK_VERSION));
        assert!(PYTHON_REQUIREMENTS.contains("boto3=="));
    }
}
