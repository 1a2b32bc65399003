//! `wsconn init [DIR] --example echo|chat`: a working starting point, written from copies
//! built into the binary. Refuses to overwrite a file that exists (listing them all)
//! unless `--force`, and prints the next commands.

use crate::cli::{Example, GlobalOpts, OutputFormat};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// One file of an example: its path under DIR and its text.
type File = (&'static str, &'static str);

const ECHO_TOML: &str = r#"# A wsconn application: the pattern's stack, with a $default handler of your own.
# $connect and $disconnect stay the pattern's DynamoDB integrations (no Lambda).
stack = "@@STACK@@"
# stage = "api"
# connection-ttl = 86400

[routes."$default"]         # every message without a matching "action"
handler = "handlers/default"   # index.mjs exports `handler`; it gets TABLE_NAME and CONNECTIONS_URL

# [routes.sendmessage]      # a custom route: {"action":"sendmessage", ...}
# handler = "handlers/sendmessage"

# [authorizer]              # a Lambda REQUEST authorizer on $connect
# handler = "handlers/authorizer"
# identity-sources = ["route.request.querystring.token"]

# [throttling]
# burst-limit = 100
# rate-limit = 50.0

# [logging]
# access-log = true
# level = "ERROR"
"#;

const ECHO_HANDLER: &str = r#"// $default: echoes the event back to the caller. The connection table is
// process.env.TABLE_NAME and @connections is process.env.CONNECTIONS_URL (the endpoint
// for the AWS SDK's ApiGatewayManagementApiClient), on AWS and under `wsconn local` alike.
export const handler = async (event) => {
  console.log('message from', event.requestContext.connectionId);
  return { statusCode: 200, body: JSON.stringify(event) };
};
"#;

const GITIGNORE: &str = "node_modules/\n";

fn files(example: Example) -> Vec<File> {
    match example {
        Example::Echo => vec![
            ("wsconn.toml", ECHO_TOML),
            ("handlers/default/index.mjs", ECHO_HANDLER),
            (".gitignore", GITIGNORE),
        ],
        Example::Chat => vec![
            (
                "wsconn.toml",
                include_str!("../../examples/chat/wsconn.toml"),
            ),
            (
                "handlers/sendmessage/index.mjs",
                include_str!("../../examples/chat/handlers/sendmessage/index.mjs"),
            ),
            (
                "handlers/authorizer/index.mjs",
                include_str!("../../examples/chat/handlers/authorizer/index.mjs"),
            ),
            (
                "package.json",
                include_str!("../../examples/chat/package.json"),
            ),
            (
                "package-lock.json",
                include_str!("../../examples/chat/package-lock.json"),
            ),
            ("README.md", include_str!("../../examples/chat/README.md")),
            (".gitignore", GITIGNORE),
        ],
        Example::ChatPython => vec![
            (
                "wsconn.toml",
                include_str!("../../examples/chat-python/wsconn.toml"),
            ),
            (
                "handlers/sendmessage/app.py",
                include_str!("../../examples/chat-python/handlers/sendmessage/app.py"),
            ),
            (
                "handlers/authorizer/app.py",
                include_str!("../../examples/chat-python/handlers/authorizer/app.py"),
            ),
            (
                "README.md",
                include_str!("../../examples/chat-python/README.md"),
            ),
            (".gitignore", "__pycache__/\n.venv/\n"),
        ],
    }
}

/// The stack name for DIR: its last component when that is a valid stack name.
pub fn stack_for(dir: &Path, example: Example) -> String {
    let fallback = match example {
        Example::Echo => crate::config::DEFAULT_STACK,
        Example::Chat | Example::ChatPython => "chat",
    };
    dir.canonicalize()
        .unwrap_or_else(|_| dir.to_path_buf())
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| crate::config::validate_stack(n).is_ok())
        .unwrap_or(fallback)
        .to_string()
}

/// The example's files with the stack name filled in.
pub fn contents(example: Example, stack: &str) -> Vec<(&'static str, String)> {
    files(example)
        .into_iter()
        .map(|(path, text)| {
            let text = if path == "wsconn.toml" {
                match example {
                    Example::Echo => text.replace("@@STACK@@", stack),
                    Example::Chat | Example::ChatPython => {
                        text.replacen("stack = \"chat\"", &format!("stack = \"{stack}\""), 1)
                    }
                }
            } else {
                text.to_string()
            };
            (path, text)
        })
        .collect()
}

pub fn run(g: &GlobalOpts, dir: Option<&Path>, example: Example, force: bool) -> Result<ExitCode> {
    let dir: PathBuf = dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let stack = match &g.stack {
        Some(s) => {
            crate::config::validate_stack(s)?;
            s.clone()
        }
        None => stack_for(&dir, example),
    };
    let files = contents(example, &stack);
    let existing: Vec<String> = files
        .iter()
        .map(|(p, _)| dir.join(p))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !existing.is_empty() && !force {
        return Err(Error::Config(format!(
            "{} already exist{}: {}; nothing was written (pass --force to overwrite them)",
            if existing.len() == 1 {
                "this file"
            } else {
                "these files"
            },
            if existing.len() == 1 { "s" } else { "" },
            existing.join(", ")
        )));
    }
    for (path, text) in &files {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::Config(format!("creating {}: {e}", parent.display())))?;
        }
        std::fs::write(&full, text)
            .map_err(|e| Error::Config(format!("writing {}: {e}", full.display())))?;
    }
    let needs_npm = files.iter().any(|(p, _)| *p == "package.json");
    let mut next = Vec::new();
    if dir != Path::new(".") {
        next.push(format!("cd {}", dir.display()));
    }
    if needs_npm {
        next.push("npm install".to_string());
    }
    // A Python handler with a requirements.txt needs its packages locally too.
    if files.iter().any(|(p, _)| p.ends_with("requirements.txt")) {
        next.push(
            "python3 -m venv .venv && .venv/bin/pip install -r <handler>/requirements.txt"
                .to_string(),
        );
    }
    next.push("wsconn local".to_string());
    next.push("wsconn deploy".to_string());
    if g.output == OutputFormat::Json {
        let doc = serde_json::json!({
            "dir": dir.display().to_string(),
            "stack": stack,
            "files": files.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            "next": next,
        });
        println!("{doc}");
    } else {
        println!(
            "Wrote the {} example (stack {stack}) to {}:",
            match example {
                Example::Echo => "echo",
                Example::Chat => "chat",
                Example::ChatPython => "Python chat",
            },
            dir.display()
        );
        for (p, _) in &files {
            println!("  {p}");
        }
        println!("Next:");
        for n in &next {
            println!("  {n}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stack_is_named_after_the_directory_when_it_can_be() {
        let d = tempfile::tempdir().unwrap();
        let chat = d.path().join("my-chat");
        std::fs::create_dir(&chat).unwrap();
        assert_eq!(stack_for(&chat, Example::Chat), "my-chat");
        let bad = d.path().join("1 bad name");
        std::fs::create_dir(&bad).unwrap();
        assert_eq!(stack_for(&bad, Example::Chat), "chat");
        assert_eq!(stack_for(&bad, Example::Echo), "wsconn");
    }

    #[test]
    fn the_files_parse_as_an_application() {
        for example in [Example::Echo, Example::Chat, Example::ChatPython] {
            let files = contents(example, "demo");
            let toml = &files.iter().find(|(p, _)| *p == "wsconn.toml").unwrap().1;
            let file: crate::config::FileConfig = toml::from_str(toml).unwrap();
            assert_eq!(file.stack.as_deref(), Some("demo"));
            for (key, r) in &file.routes {
                // The module Lambda's handler setting names (index.handler by default).
                let entry = r.entry.as_deref().unwrap_or("index.handler");
                let module = entry.rsplit_once('.').map(|(m, _)| m).unwrap_or(entry);
                let dir = r.handler.display().to_string();
                assert!(
                    files.iter().any(|(p, _)| {
                        let stem = p
                            .strip_prefix(&format!("{dir}/"))
                            .and_then(|f| f.rsplit_once('.'))
                            .map(|(s, _)| s);
                        stem == Some(module)
                    }),
                    "{key}: no module {module} in {dir} is written"
                );
            }
        }
    }
}
