//! `wsconn releases`: the stage's deployments, newest first, read from AWS. Reads only.

use crate::cli::{EngineOpts, GlobalOpts, OutputFormat};
use crate::config::Config;
use crate::deploy::kind::Scope;
use crate::deploy::release::Release;
use crate::deploy::rollback;
use crate::deploy::session::Session;
use crate::error::Result;
use serde_json::{Value, json};
use std::process::ExitCode;

pub async fn run(g: &GlobalOpts, cfg: Config, engine_opts: &EngineOpts) -> Result<ExitCode> {
    let session = Session::open(cfg, usize::from(engine_opts.parallelism)).await?;
    let snap = session.read(Scope::Full, None).await?;
    let (all, live) = rollback::releases(&session.stack, &snap);
    if g.output == OutputFormat::Json {
        let rows: Vec<Value> = all.iter().map(|r| row(r, live.as_deref())).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
    } else if all.is_empty() {
        println!(
            "Stack {} has no releases yet (run wsconn deploy).",
            session.stack.name
        );
    } else {
        print!("{}", table(&all, live.as_deref(), &session.stack.name));
    }
    Ok(ExitCode::SUCCESS)
}

/// One release as `--output json` prints it.
pub fn row(r: &Release, live: Option<&str>) -> Value {
    let m = r.manifest.as_ref();
    json!({
        "id": r.id,
        "created": r.created.map(crate::gateway::rfc3339),
        "live": Some(r.id.as_str()) == live,
        "versions": m.map(|m| json!(m.versions)).unwrap_or(json!({})),
        "wsconn": m.and_then(|m| m.wsconn.clone()),
        "digest": m.map(|m| m.digest.clone()),
    })
}

/// The text table: `*` marks the live release.
pub fn table(all: &[Release], live: Option<&str>, stack: &str) -> String {
    let prefix = format!("{stack}-");
    let mut out = format!(
        "  {:<10} {:<20}  {:<8} {:<12} VERSIONS\n",
        "ID", "CREATED", "WSCONN", "DIGEST"
    );
    for r in all {
        let mark = if Some(r.id.as_str()) == live {
            "*"
        } else {
            " "
        };
        let created = r
            .created
            .map(crate::gateway::rfc3339)
            .unwrap_or_else(|| "-".into());
        let (wsconn, digest, versions) = match &r.manifest {
            None => (
                "-".to_string(),
                "-".to_string(),
                "(not made by wsconn)".to_string(),
            ),
            Some(m) => (
                m.wsconn.clone().unwrap_or_else(|| "-".into()),
                m.digest.chars().take(12).collect(),
                if m.is_release() {
                    m.versions
                        .iter()
                        .map(|(f, v)| format!("{}:{v}", f.strip_prefix(&prefix).unwrap_or(f)))
                        .collect::<Vec<_>>()
                        .join(" ")
                } else {
                    "(before releases: invoked $LATEST)".to_string()
                },
            ),
        };
        out.push_str(&format!(
            "{mark} {:<10} {:<20}  {:<8} {:<12} {versions}{}\n",
            r.id,
            created,
            wsconn,
            digest,
            if mark == "*" { "  (live)" } else { "" }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::release::Manifest;

    fn rel(id: &str, created: i64, desc: &str) -> Release {
        Release {
            id: id.into(),
            created: Some(created),
            manifest: Manifest::parse(desc, "s"),
        }
    }

    #[test]
    fn rows_carry_the_contract_keys() {
        let r = rel("a1", 0, "wsconn 0.1.0 sha256:abc versions default=3");
        assert_eq!(
            row(&r, Some("a1")),
            json!({"id": "a1", "created": "1970-01-01T00:00:00Z", "live": true,
                   "versions": {"s-default": "3"}, "wsconn": "0.1.0", "digest": "abc"})
        );
        let hand = rel("h", 0, "by hand");
        assert_eq!(row(&hand, Some("a1"))["live"], false);
        assert_eq!(row(&hand, None)["wsconn"], Value::Null);
    }

    #[test]
    fn the_table_marks_the_live_release() {
        let all = [
            rel("b2", 60, "wsconn 0.1.0 sha256:def versions default=4"),
            rel("a1", 0, "wsconn config sha256:abc"),
        ];
        let t = table(&all, Some("b2"), "s");
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[1].starts_with("* b2") && lines[1].contains("default:4"),
            "{t}"
        );
        assert!(lines[1].ends_with("(live)"), "{t}");
        assert!(
            lines[2].starts_with("  a1") && lines[2].contains("invoked $LATEST"),
            "{t}"
        );
    }
}
