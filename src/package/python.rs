//! A Python handler's `requirements.txt`, installed as Lambda's Python runtime expects
//! it: with pip, for Lambda's platform and the function's architecture (handlers run on
//! `x86_64`: `manylinux2014_x86_64`), binary wheels only, the runtime's Python version
//! and CPython. No wheel is built for this machine, so it works from macOS and ARM.
//!
//! The installed files are cached under wsconn's cache directory by a digest of
//! `requirements.txt`, the runtime and the platform: an unchanged handler is re-deployed
//! with no pip run. An installation is made in a temporary directory and moved into
//! place when complete. `boto3`, `botocore`, `s3transfer` and `jmespath` are left out of
//! the package unless `requirements.txt` names them: the runtime provides them.

use super::{FileSet, Skip, cache_dir, digest_hex, walk};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Lambda's platform for `x86_64` functions.
pub const PLATFORM: &str = "manylinux2014_x86_64";
/// What Lambda's Python runtimes provide.
pub const RUNTIME_PROVIDES: &[&str] = &["boto3", "botocore", "s3transfer", "jmespath"];
const DONE: &str = ".wsconn-complete";

/// `3.13` of `python3.13`.
fn python_version(runtime: &str) -> &str {
    runtime.strip_prefix("python").unwrap_or(runtime)
}

/// The names `requirements.txt` pins (lowercase, `-` for `_`), for what the runtime
/// provides: those are kept in the package only when named.
pub fn named(requirements: &str) -> Vec<String> {
    requirements
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty() && !l.starts_with('-'))
        .map(|l| {
            l.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_' || c == '.'))
                .next()
                .unwrap_or("")
                .to_lowercase()
                .replace('_', "-")
        })
        .collect()
}

/// The installed dependencies of `dir`'s `requirements.txt` (installing them once), or
/// `None` without one.
pub fn installed(dir: &Path, runtime: &str) -> Result<Option<PathBuf>> {
    let req = dir.join("requirements.txt");
    if !req.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&req)
        .map_err(|e| Error::Config(format!("reading {}: {e}", req.display())))?;
    let key = digest_hex(&[text.as_bytes(), runtime.as_bytes(), PLATFORM.as_bytes()]);
    let cache = cache_dir().ok_or_else(|| {
        Error::Config(
            "no cache directory for pip's output (HOME is not set); set WSCONN_CACHE_DIR".into(),
        )
    })?;
    let target = cache.join("pip").join(&key[..16]);
    if target.join(DONE).is_file() {
        return Ok(Some(target));
    }
    install(&req, &target, runtime)?;
    Ok(Some(target))
}

/// `pip install -r requirements.txt` for Lambda's platform into `target`.
fn install(req: &Path, target: &Path, runtime: &str) -> Result<()> {
    let shown = req.display().to_string();
    let version = python_version(runtime);
    let python = std::env::var_os("WSCONN_DEPLOY_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"));
    let command = format!(
        "{} -m pip install -r {shown} --target <dir> --platform {PLATFORM} --only-binary=:all: --python-version {version} --implementation cp",
        python.display()
    );
    let parent = target.parent().unwrap_or(target);
    std::fs::create_dir_all(parent).map_err(|e| {
        Error::Config(format!(
            "{}: {e}; set WSCONN_CACHE_DIR to a writable directory",
            parent.display()
        ))
    })?;
    let tmp = parent.join(format!(".tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let out = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "-r",
        ])
        .arg(req)
        .arg("--target")
        .arg(&tmp)
        .args([
            "--platform",
            PLATFORM,
            "--only-binary=:all:",
            "--python-version",
            version,
            "--implementation",
            "cp",
        ])
        .stdin(std::process::Stdio::null())
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            return Err(Error::Config(format!(
                "{shown}: installing it needs Python with pip ({}: {e}); install Python 3, or set WSCONN_DEPLOY_PYTHON to one, then run again",
                python.display()
            )));
        }
    };
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Config(format!(
            "{shown}: {}",
            pip_error(&err, version, &command)
        )));
    }
    std::fs::write(tmp.join(DONE), "")
        .map_err(|e| Error::Config(format!("{}: {e}", tmp.display())))?;
    let _ = std::fs::remove_dir_all(target);
    std::fs::rename(&tmp, target).map_err(|e| {
        Error::Config(format!(
            "moving pip's output into {}: {e}",
            target.display()
        ))
    })?;
    Ok(())
}

/// pip's failure, in one line: the requirement with no wheel for Lambda's platform, a
/// line pip cannot parse, pip missing. Pure.
pub fn pip_error(stderr: &str, version: &str, command: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if let Some(l) = lines
        .iter()
        .find(|l| l.contains("No matching distribution found for"))
    {
        let name = l.rsplit("for ").next().unwrap_or(l).trim();
        return format!(
            "{name} has no wheel for Lambda's platform ({PLATFORM}, CPython {version}); pick a version that publishes one, or vendor it built for Lambda"
        );
    }
    if let Some(l) = lines.iter().find(|l| l.contains("Invalid requirement")) {
        return format!("pip cannot parse it: {l}");
    }
    if lines.iter().any(|l| l.contains("No module named pip")) {
        return format!(
            "pip is not installed for this Python; install it (python3 -m ensurepip), then run: {command}"
        );
    }
    let last = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("ERROR") || l.starts_with("error"))
        .or(lines.last())
        .copied()
        .unwrap_or("pip failed with no output");
    format!("pip failed: {last}; the command was: {command}")
}

/// Adds pip's output to the package, after the handler's own files (which win), without
/// what the runtime provides unless `requirements.txt` names it.
pub fn add(deps: &Path, dir: &Path, set: &mut FileSet) -> Result<()> {
    let wanted = named(&std::fs::read_to_string(dir.join("requirements.txt")).unwrap_or_default());
    let mut part = FileSet::default();
    walk(
        deps,
        "",
        Skip {
            runtime_sdk: false,
            bytecode: true,
        },
        &mut part,
        dir,
    )?;
    for (rel, path) in part.files {
        if rel == DONE {
            continue;
        }
        let top = rel.split('/').next().unwrap_or("").to_lowercase();
        let dist = top.split('-').next().unwrap_or("").replace('_', "-");
        let provided = RUNTIME_PROVIDES.iter().any(|p| {
            (top == *p || (top.ends_with(".dist-info") && dist == *p))
                && !wanted.iter().any(|w| w == p)
        });
        if provided {
            continue;
        }
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        set.add(rel, path, len, dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_names_are_read_from_requirements() {
        assert_eq!(
            named(
                "# deps\nrequests==2.32.3\nboto3>=1.34 ; python_version>'3'\n-r other.txt\nJMESPath\nfoo_bar[extra]\n"
            ),
            ["requests", "boto3", "jmespath", "foo-bar"]
        );
    }

    #[test]
    fn pips_failures_are_one_line_naming_the_requirement() {
        let no_wheel = "ERROR: Could not find a version that satisfies the requirement pyfoo==9 (from versions: none)\nERROR: No matching distribution found for pyfoo==9\n";
        let e = pip_error(no_wheel, "3.13", "cmd");
        assert!(
            e.starts_with(
                "pyfoo==9 has no wheel for Lambda's platform (manylinux2014_x86_64, CPython 3.13)"
            ),
            "{e}"
        );
        let bad = "ERROR: Invalid requirement: '==oops' (from line 1 of requirements.txt)\n";
        assert!(
            pip_error(bad, "3.13", "cmd")
                .starts_with("pip cannot parse it: ERROR: Invalid requirement")
        );
        let no_pip = "/usr/bin/python3: No module named pip\n";
        assert!(
            pip_error(no_pip, "3.13", "python3 -m pip …")
                .contains("install it (python3 -m ensurepip)")
        );
        assert!(!pip_error("x\ny\n", "3.13", "c").contains('\n'));
    }

    #[test]
    fn what_the_runtime_provides_is_left_out_unless_pinned() {
        let deps = super::super::tests::tree(&[
            ("requests/__init__.py", "r"),
            ("requests-2.32.3.dist-info/METADATA", "m"),
            ("boto3/__init__.py", "b"),
            ("boto3-1.35.0.dist-info/METADATA", "m"),
            ("botocore/__init__.py", "b"),
            ("jmespath/__init__.py", "j"),
            ("requests/__pycache__/x.cpython-313.pyc", "c"),
        ]);
        let h = super::super::tests::tree(&[
            ("app.py", "def handler(e, c): pass"),
            ("requirements.txt", "requests\njmespath\n"),
        ]);
        let mut set = FileSet::default();
        add(deps.path(), h.path(), &mut set).unwrap();
        let got: Vec<&str> = set.files.keys().map(String::as_str).collect();
        assert_eq!(
            got,
            [
                "jmespath/__init__.py",
                "requests-2.32.3.dist-info/METADATA",
                "requests/__init__.py"
            ]
        );
    }
}
