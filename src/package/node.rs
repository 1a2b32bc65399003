//! What a Node.js handler loads beyond its own directory: the packages Node's resolution
//! finds from the handler directory, in `node_modules` directories above it up to the
//! directory of wsconn.toml (an example keeps its `package.json` and `node_modules` at
//! its root, beside `handlers/`). Locally Node's resolution walks up and finds them; on
//! Lambda only what the zip holds exists. So the package holds them: each package the
//! handler imports, found there, with the packages it depends on, under `node_modules/`.
//! One found above wsconn.toml's directory would load locally and be missing on Lambda:
//! it is refused, naming it, before any AWS call and before `wsconn local` starts.
//!
//! `@aws-sdk/*` is left out: Lambda's runtime provides it (so does `wsconn local`).

use super::{FileSet, Skip, walk};
use crate::error::{Error, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Node.js's built-in modules, importable without `node:`.
const BUILTINS: &[&str] = &[
    "assert",
    "async_hooks",
    "buffer",
    "child_process",
    "cluster",
    "console",
    "constants",
    "crypto",
    "dgram",
    "diagnostics_channel",
    "dns",
    "domain",
    "events",
    "fs",
    "http",
    "http2",
    "https",
    "inspector",
    "module",
    "net",
    "os",
    "path",
    "perf_hooks",
    "process",
    "punycode",
    "querystring",
    "readline",
    "repl",
    "stream",
    "string_decoder",
    "sys",
    "timers",
    "tls",
    "trace_events",
    "tty",
    "url",
    "util",
    "v8",
    "vm",
    "wasi",
    "worker_threads",
    "zlib",
];

/// A `package.json` with `dependencies` and no `node_modules` beside it: the function
/// would fail at its first import.
pub fn check_dependencies_installed(dir: &Path) -> Result<()> {
    let manifest = dir.join("package.json");
    if !manifest.is_file() || dir.join("node_modules").is_dir() {
        return Ok(());
    }
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
        let shown = dir.display();
        return Err(Error::Config(format!(
            "{}: names {deps} dependenc{} but {shown}/node_modules does not exist; run `npm install` in {shown} first",
            manifest.display(),
            if deps == 1 { "y" } else { "ies" }
        )));
    }
    Ok(())
}

/// The package a bare import specifier names (`@scope/name` or `name`), or `None` for a
/// relative path, a URL, or a built-in. Pure.
pub fn package_of(spec: &str) -> Option<String> {
    if spec.is_empty()
        || spec.starts_with('.')
        || spec.starts_with('/')
        || spec.starts_with('#')
        || spec.contains(':')
    {
        return None;
    }
    let mut parts = spec.splitn(3, '/');
    let first = parts.next()?;
    let name = if first.starts_with('@') {
        format!("{first}/{}", parts.next().filter(|p| !p.is_empty())?)
    } else {
        first.to_string()
    };
    (!BUILTINS.contains(&name.as_str())).then_some(name)
}

/// The packages a source text imports (`import … from`, `import(…)`, `require(…)`,
/// `export … from`), by package name. Pure; a static look.
pub fn imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut quoted = |rest: &str| {
        let rest = rest.trim_start();
        let Some(q) = rest
            .chars()
            .next()
            .filter(|c| matches!(c, '\'' | '"' | '`'))
        else {
            return;
        };
        if let Some(end) = rest[1..].find(q)
            && let Some(p) = package_of(&rest[1..1 + end])
        {
            out.insert(p);
        }
    };
    for (i, _) in text.match_indices("from") {
        let before = text[..i].chars().last();
        if before.is_none_or(|c| c.is_whitespace() || c == '}') {
            quoted(&text[i + 4..]);
        }
    }
    for kw in ["import", "require(", "import("] {
        for (i, _) in text.match_indices(kw) {
            let rest = &text[i + kw.len()..];
            let rest = rest.trim_start().trim_start_matches('(');
            quoted(rest);
        }
    }
    out
}

/// The handler's imports: every `.js`/`.mjs`/`.cjs` file of its directory (not
/// `node_modules`, not dotfiles).
pub fn handler_imports(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo = vec![dir.to_path_buf()];
    let mut seen = 0;
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name == "node_modules" {
                continue;
            }
            match e.file_type() {
                Ok(t) if t.is_dir() => todo.push(e.path()),
                Ok(t) if t.is_file() => {
                    let js = [".mjs", ".js", ".cjs"].iter().any(|x| name.ends_with(x));
                    seen += 1;
                    if js
                        && seen <= 2000
                        && let Ok(text) = std::fs::read_to_string(e.path())
                    {
                        out.extend(imports(&text));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// Where Node's resolution from `from` finds package `name`.
pub fn resolve(from: &Path, name: &str) -> Option<PathBuf> {
    from.ancestors()
        .map(|d| d.join("node_modules").join(name))
        .find(|p| p.join("package.json").is_file())
}

fn is_runtime_sdk(name: &str) -> bool {
    name.starts_with("@aws-sdk/")
}

/// The packages a package depends on (`dependencies` and `optionalDependencies`).
fn dependencies(package_dir: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(package_dir.join("package.json")) else {
        return vec![];
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return vec![];
    };
    ["dependencies", "optionalDependencies"]
        .iter()
        .filter_map(|k| v.get(k).and_then(|d| d.as_object()))
        .flat_map(|d| d.keys().cloned())
        .collect()
}

/// Every package the handler loads from outside its own directory, with where it is:
/// what its imports resolve to and what those depend on, transitively. Packages in
/// the handler's own `node_modules` are its own files; their dependencies are followed.
pub fn outside_packages(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut visited = BTreeSet::new();
    let mut todo: Vec<(String, PathBuf)> = handler_imports(dir)
        .into_iter()
        .map(|p| (p, dir.to_path_buf()))
        .collect();
    while let Some((name, from)) = todo.pop() {
        if is_runtime_sdk(&name) {
            continue;
        }
        let Some(loc) = resolve(&from, &name) else {
            continue;
        };
        let real = loc.canonicalize().unwrap_or(loc.clone());
        if !visited.insert(real.clone()) {
            continue;
        }
        if !loc.starts_with(dir) {
            out.push((name, loc.clone()));
        }
        for dep in dependencies(&real) {
            todo.push((dep, real.clone()));
        }
    }
    out.sort();
    out
}

/// Refuses a package the handler would load from above `boundary`: Lambda would not
/// get it. Used by deploy (through [`add_resolved`]) and by `wsconn local` at start.
pub fn check_boundary(dir: &Path, boundary: &Path) -> Result<()> {
    let boundary = boundary.canonicalize().unwrap_or(boundary.to_path_buf());
    for (name, loc) in outside_packages(dir) {
        let real = loc.canonicalize().unwrap_or(loc.clone());
        if !real.starts_with(&boundary) && !loc.starts_with(&boundary) {
            return Err(Error::Config(format!(
                "{}: imports `{name}`, which Node finds at {}, outside {} (the directory of wsconn.toml): it would load locally and be missing on Lambda. Install it in {} or in the handler directory",
                dir.display(),
                loc.display(),
                boundary.display(),
                boundary.display()
            )));
        }
    }
    Ok(())
}

/// Adds what the handler loads from `node_modules` above its directory, up to
/// `boundary`, under `node_modules/<name>`.
pub fn add_resolved(dir: &Path, boundary: &Path, set: &mut FileSet) -> Result<()> {
    check_boundary(dir, boundary)?;
    for (name, loc) in outside_packages(dir) {
        walk(
            &loc,
            &format!("node_modules/{name}"),
            Skip {
                runtime_sdk: true,
                bytecode: false,
            },
            set,
            dir,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{names, tree};
    use super::super::{Package, package_dir};
    use super::*;
    use crate::config::runtime::Language;

    #[test]
    fn imports_are_found_by_package_and_builtins_and_paths_left_out() {
        let src = r#"
            import { ulid } from 'ulid';
            import fs from "node:fs";
            import path from 'path';
            import * as local from './local.mjs';
            const x = require("lodash/get");
            const y = await import('@scope/pkg/sub/path.js');
            export { z } from '@aws-sdk/client-dynamodb';
            // transform(x) and a "from" inside prose are not imports
        "#;
        let got: Vec<String> = imports(src).into_iter().collect();
        assert_eq!(
            got,
            ["@aws-sdk/client-dynamodb", "@scope/pkg", "lodash", "ulid"]
        );
        assert_eq!(package_of("node:crypto"), None);
        assert_eq!(package_of("#internal"), None);
    }

    fn node(dir: &Path, boundary: &Path) -> Result<Package> {
        package_dir(dir, Language::Node, "nodejs24.x", boundary)
    }

    #[test]
    fn packages_found_up_to_wsconn_toml_are_packaged_with_their_dependencies() {
        let d = tree(&[
            ("wsconn.toml", ""),
            (
                "handlers/send/index.mjs",
                "import { ulid } from 'ulid';\nimport '@aws-sdk/client-dynamodb';",
            ),
            (
                "node_modules/ulid/package.json",
                r#"{"dependencies": {"dep": "1"}}"#,
            ),
            ("node_modules/ulid/index.js", "u"),
            ("node_modules/dep/package.json", "{}"),
            ("node_modules/dep/index.js", "d"),
            ("node_modules/unused/package.json", "{}"),
            ("node_modules/@aws-sdk/client-dynamodb/package.json", "{}"),
        ]);
        let p = node(&d.path().join("handlers/send"), d.path()).unwrap();
        assert_eq!(
            names(&p),
            [
                "index.mjs",
                "node_modules/dep/index.js",
                "node_modules/dep/package.json",
                "node_modules/ulid/index.js",
                "node_modules/ulid/package.json"
            ]
        );
    }

    #[test]
    fn a_package_found_above_wsconn_toml_is_refused_naming_it() {
        let d = tree(&[
            ("node_modules/leftpad/package.json", "{}"),
            ("app/wsconn.toml", ""),
            ("app/handlers/h/index.mjs", "import pad from 'leftpad';"),
        ]);
        let e = node(&d.path().join("app/handlers/h"), &d.path().join("app"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("imports `leftpad`") && e.contains("outside"),
            "{e}"
        );
        assert!(check_boundary(&d.path().join("app/handlers/h"), d.path()).is_ok());
    }
}
