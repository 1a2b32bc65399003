//! Lambda's runtimes wsconn deploys and runs locally, and Lambda's handler setting.
//!
//! A runtime is a Node.js or a Python one. Lambda deprecates runtimes on a published
//! schedule and then blocks creating functions with them; wsconn refuses, before any
//! call, a runtime whose creation Lambda blocks (sources: the Lambda developer guide's
//! "Lambda runtimes" table, and aws-notes: nodejs16/18/20 are blocked for creation from
//! 2027-02-01; python3.10 and 3.11, deprecated 2026-06-30, are blocked by 2026-08-31).
//!
//! The handler setting is `<module>.<export>`: for Node.js a path without its extension
//! (`src/chat.onMessage`: the module is what comes before the first `.` after the last
//! `/`, so the export may be a dotted path), for Python a module path (`pkg/mod.fn` or
//! `pkg.mod.fn`: the function is what follows the last `.`).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Node,
    Python,
}

/// One Lambda runtime: its identifier, language version and lifecycle (UTC dates).
#[derive(Debug, PartialEq, Eq)]
pub struct Runtime {
    pub id: &'static str,
    pub language: Language,
    /// `24` for Node.js 24, `3.13` for Python 3.13.
    pub version: &'static str,
    pub deprecated: (i32, u32, u32),
    /// From this day Lambda refuses to create functions with it (`None`: not announced).
    pub blocks_create: Option<(i32, u32, u32)>,
}

/// The runtimes Lambda runs that wsconn knows, newest first per language.
pub const RUNTIMES: &[Runtime] = &[
    Runtime {
        id: "nodejs24.x",
        language: Language::Node,
        version: "24",
        deprecated: (2028, 4, 30),
        blocks_create: None,
    },
    Runtime {
        id: "nodejs22.x",
        language: Language::Node,
        version: "22",
        deprecated: (2027, 4, 30),
        blocks_create: None,
    },
    Runtime {
        id: "nodejs20.x",
        language: Language::Node,
        version: "20",
        deprecated: (2026, 4, 30),
        blocks_create: Some((2027, 2, 1)),
    },
    Runtime {
        id: "nodejs18.x",
        language: Language::Node,
        version: "18",
        deprecated: (2025, 9, 1),
        blocks_create: Some((2027, 2, 1)),
    },
    Runtime {
        id: "python3.14",
        language: Language::Python,
        version: "3.14",
        deprecated: (2029, 6, 30),
        blocks_create: None,
    },
    Runtime {
        id: "python3.13",
        language: Language::Python,
        version: "3.13",
        deprecated: (2029, 6, 30),
        blocks_create: None,
    },
    Runtime {
        id: "python3.12",
        language: Language::Python,
        version: "3.12",
        deprecated: (2028, 10, 31),
        blocks_create: None,
    },
    Runtime {
        id: "python3.11",
        language: Language::Python,
        version: "3.11",
        deprecated: (2026, 6, 30),
        blocks_create: Some((2026, 8, 31)),
    },
    Runtime {
        id: "python3.10",
        language: Language::Python,
        version: "3.10",
        deprecated: (2026, 6, 30),
        blocks_create: Some((2026, 8, 31)),
    },
];

/// The default runtime of a handler wsconn.toml names (and of the built-in echo).
pub const DEFAULT_RUNTIME: &str = "nodejs24.x";

pub fn find(id: &str) -> Option<&'static Runtime> {
    RUNTIMES.iter().find(|r| r.id == id)
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub fn days(y: i32, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y } as i64;
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Today, in days since 1970-01-01 (UTC).
pub fn today() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| (d.as_secs() / 86_400) as i64)
        .unwrap_or(0)
}

fn show((y, m, d): (i32, u32, u32)) -> String {
    format!("{y:04}-{m:02}-{d:02}")
}

/// The runtime `id` if Lambda accepts it for new functions on day `today`; the error
/// says why not and what to use instead.
pub fn accepted(id: &str, today: i64) -> Result<&'static Runtime, String> {
    let names: Vec<&str> = RUNTIMES
        .iter()
        .filter(|r| r.blocks_create.is_none_or(|b| today < days(b.0, b.1, b.2)))
        .map(|r| r.id)
        .collect();
    let Some(r) = find(id) else {
        return Err(format!(
            "not a Lambda runtime wsconn deploys; use one of {}",
            names.join(", ")
        ));
    };
    if let Some(b) = r.blocks_create
        && today >= days(b.0, b.1, b.2)
    {
        let newest = RUNTIMES
            .iter()
            .find(|n| n.language == r.language)
            .map(|n| n.id)
            .unwrap_or(DEFAULT_RUNTIME);
        return Err(format!(
            "Lambda no longer creates functions with it (deprecated {}, creation blocked since {}); use {newest}",
            show(r.deprecated),
            show(b)
        ));
    }
    Ok(r)
}

impl Runtime {
    /// A warning when Lambda has deprecated it (it still creates functions with it).
    pub fn deprecation_note(&self, today: i64) -> Option<String> {
        let (y, m, d) = self.deprecated;
        (today >= days(y, m, d)).then(|| {
            format!(
                "{} is deprecated since {}{}",
                self.id,
                show(self.deprecated),
                self.blocks_create
                    .map(|b| format!("; Lambda stops creating functions with it on {}", show(b)))
                    .unwrap_or_default()
            )
        })
    }
}

/// Lambda's handler setting, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The module: a path relative to the handler directory, without its extension
    /// (`src/chat`; Python's dots become `/`: `pkg/mod`).
    pub module: String,
    /// What the module exports: `handler`, or a dotted path for Node.js.
    pub export: String,
}

/// The default handler setting: `index.handler`.
pub const DEFAULT_ENTRY: &str = "index.handler";

/// Parses a handler setting for `language`.
pub fn parse_entry(setting: &str, language: Language) -> Result<Entry, String> {
    let bad = |why: &str| {
        Err(format!(
            "{why}; write <file without extension>.<function>, such as app.handler"
        ))
    };
    if setting.is_empty() || setting.contains('\\') || setting.starts_with('/') {
        return bad("not a handler setting");
    }
    if setting
        .split('/')
        .any(|p| p == ".." || p == "." || p.is_empty())
    {
        return bad("the module must be a path inside the handler directory");
    }
    let (module, export) = match language {
        Language::Node => {
            let cut = setting.rfind('/').map(|i| i + 1).unwrap_or(0);
            match setting[cut..].find('.') {
                Some(dot) => (&setting[..cut + dot], &setting[cut + dot + 1..]),
                None => return bad("no function after the module"),
            }
        }
        Language::Python => match setting.rsplit_once('.') {
            Some((m, f)) => (m, f),
            None => return bad("no function after the module"),
        },
    };
    let module = match language {
        Language::Node => module.to_string(),
        Language::Python => module.replace('.', "/"),
    };
    let ident = |s: &str| {
        !s.is_empty()
            && !s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
    };
    if module.is_empty() || module.split('/').any(|p| p.is_empty()) {
        return bad("no module before the function");
    }
    if !export.split('.').all(ident) || (language == Language::Python && export.contains('.')) {
        return bad(&format!("{export:?} is not a function name"));
    }
    Ok(Entry {
        module,
        export: export.to_string(),
    })
}

/// Node.js: the module's file, as Lambda's runtime looks for it (`.js`, then `.mjs`, then
/// `.cjs`); Python: `<module>.py`, or a package's `__init__.py`.
pub fn module_file(dir: &std::path::Path, entry: &Entry, language: Language) -> Option<String> {
    let candidates: Vec<String> = match language {
        Language::Node => [".js", ".mjs", ".cjs"]
            .iter()
            .map(|ext| format!("{}{ext}", entry.module))
            .collect(),
        Language::Python => vec![
            format!("{}.py", entry.module),
            format!("{}/__init__.py", entry.module),
        ],
    };
    candidates.into_iter().find(|f| dir.join(f).is_file())
}

/// A static look for `export` in a module's source: `Some(true)` when it is defined,
/// `Some(false)` when the source surely does not define it, `None` when the source
/// re-exports in a way a static look cannot follow (`export *`, `module.exports =
/// require(…)`, `from x import *`), which is then left to the runtime.
pub fn defines(source: &str, export: &str, language: Language) -> Option<bool> {
    let name = export.split('.').next().unwrap_or(export);
    let word = |line: &str, at: usize| {
        let end = at + name.len();
        line.get(at..end) == Some(name)
            && !line[end..].starts_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$')
    };
    let mut opaque = false;
    for raw in source.lines() {
        match language {
            Language::Node => {
                let line = raw.trim();
                for prefix in [
                    "export function ",
                    "export async function ",
                    "export function* ",
                    "export const ",
                    "export let ",
                    "export var ",
                    "exports.",
                    "module.exports.",
                ] {
                    if let Some(rest) = line.strip_prefix(prefix)
                        && word(rest, 0)
                    {
                        return Some(true);
                    }
                }
                if (line.starts_with("export {")
                    || line.starts_with("module.exports = {")
                    || line.starts_with("module.exports={"))
                    && line
                        .match_indices(name)
                        .any(|(i, _)| word(line, i) && !line[..i].ends_with('.'))
                {
                    return Some(true);
                }
                if line.starts_with("export default") || line.starts_with("export *") {
                    opaque = true;
                }
                if let Some(rest) = line.strip_prefix("module.exports") {
                    let rest = rest.trim_start();
                    if rest.starts_with('=') && !rest[1..].trim_start().starts_with('{') {
                        opaque = true;
                    }
                }
                // `export { a, b }` over several lines, or `module.exports = {` with
                // the names below: not followed statically.
                if line == "export {" || line == "module.exports = {" {
                    opaque = true;
                }
            }
            Language::Python => {
                // Module level only: no indentation.
                if raw.starts_with(' ') || raw.starts_with('\t') {
                    continue;
                }
                for prefix in ["def ", "async def ", "class "] {
                    if let Some(rest) = raw.strip_prefix(prefix)
                        && word(rest, 0)
                    {
                        return Some(true);
                    }
                }
                if word(raw, 0) && raw[name.len()..].trim_start().starts_with(['=', ':']) {
                    return Some(true);
                }
                if raw.starts_with("from ") && raw.contains(" import ") {
                    let names = raw.split(" import ").nth(1).unwrap_or("");
                    if names.trim() == "*" {
                        opaque = true;
                    }
                    if names
                        .split(',')
                        .map(|n| n.split(" as ").last().unwrap_or("").trim())
                        .any(|n| n.trim_matches(['(', ')']) == name)
                    {
                        return Some(true);
                    }
                }
            }
        }
    }
    if opaque { None } else { Some(false) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtimes_lambda_blocks_are_refused_with_the_newest_named() {
        let d = days(2026, 12, 7);
        assert_eq!(accepted("nodejs24.x", d).unwrap().version, "24");
        assert_eq!(
            accepted("python3.13", d).unwrap().language,
            Language::Python
        );
        // Deprecated but still created: accepted, with a note.
        let n20 = accepted("nodejs20.x", d).unwrap();
        assert!(n20.deprecation_note(d).unwrap().contains("2027-02-01"));
        assert_eq!(accepted("nodejs22.x", d).unwrap().deprecation_note(d), None);
        // Blocked: refused, naming the dates and what to use.
        let e = accepted("python3.11", d).unwrap_err();
        assert!(
            e.contains("creation blocked since 2026-08-31") && e.contains("use python3.14"),
            "{e}"
        );
        let later = accepted("nodejs20.x", days(2027, 2, 1)).unwrap_err();
        assert!(later.contains("use nodejs24.x"), "{later}");
        let unknown = accepted("nodejs99.x", d).unwrap_err();
        assert!(
            unknown.contains("nodejs24.x, nodejs22.x") && !unknown.contains("python3.11"),
            "{unknown}"
        );
        assert_eq!(days(1970, 1, 1), 0);
        assert_eq!(days(2000, 3, 1), 11_017);
    }

    #[test]
    fn handler_settings_split_as_lambda_splits_them() {
        let node = |s| parse_entry(s, Language::Node);
        let py = |s| parse_entry(s, Language::Python);
        assert_eq!(
            node("src/chat.onMessage").unwrap(),
            Entry {
                module: "src/chat".into(),
                export: "onMessage".into()
            }
        );
        assert_eq!(
            node("app.handlers.message").unwrap().export,
            "handlers.message"
        );
        assert_eq!(
            py("pkg.mod.lambda_handler").unwrap(),
            Entry {
                module: "pkg/mod".into(),
                export: "lambda_handler".into()
            }
        );
        assert_eq!(py("pkg/mod.fn").unwrap().module, "pkg/mod");
        for bad in [
            "",
            "index",
            "../x.handler",
            "/abs.handler",
            "a/.handler",
            "app.",
            "app.1x",
        ] {
            assert!(node(bad).is_err(), "{bad:?}");
        }
        assert!(py("app.a.b-c").is_err());
    }

    #[test]
    fn exports_are_found_statically_or_left_to_the_runtime() {
        let js = |src: &str| defines(src, "handler", Language::Node);
        assert_eq!(js("export const handler = async () => 1;"), Some(true));
        assert_eq!(js("export async function handler(event) {}"), Some(true));
        assert_eq!(js("exports.handler = async (e) => e;"), Some(true));
        assert_eq!(js("module.exports.handler = x;"), Some(true));
        assert_eq!(js("module.exports = { handler, other };"), Some(true));
        assert_eq!(js("const handler = 1;\nexport { handler };"), Some(true));
        assert_eq!(js("export const handlerX = 1;"), Some(false));
        assert_eq!(js("export const other = 1;\n// handler"), Some(false));
        assert_eq!(js("module.exports = require('./impl');"), None);
        assert_eq!(js("export * from './impl.mjs';"), None);
        let py = |src: &str| defines(src, "lambda_handler", Language::Python);
        assert_eq!(
            py("import json\n\ndef lambda_handler(event, context):\n    return 1\n"),
            Some(true)
        );
        assert_eq!(py("lambda_handler = make()\n"), Some(true));
        assert_eq!(py("from .impl import lambda_handler\n"), Some(true));
        assert_eq!(py("from .impl import x as lambda_handler\n"), Some(true));
        assert_eq!(
            py("class C:\n    def lambda_handler(self): pass\n"),
            Some(false)
        );
        assert_eq!(py("from .impl import *\n"), None);
    }
}
