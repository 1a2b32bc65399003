//! Which log groups `wsconn logs` reads: every function's (`/aws/lambda/<name>`), the
//! access log (`/aws/apigateway/<stack>/<stage>`, with `[logging] access-log`) and API
//! Gateway's execution log (`API-Gateway-Execution-Logs_<api-id>/<stage>`, written while
//! `[logging] level` is ERROR or INFO). `--route`, `--authorizer`, `--access` and
//! `--execution` narrow the set; a group that does not exist is named once, with why.

use crate::deploy::resources::log_group::execution_log_group;
use crate::error::{Error, Result};
use crate::stack::{AUTHORIZER, DEFAULT, Stack};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A function's group: Lambda's START/END/REPORT and the handler's output.
    Function,
    Access,
    Execution,
}

/// One group to read, and the name its lines are prefixed with.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// `sendmessage`, `$default`, `authorizer`, `access`, `execution`.
    pub name: String,
    pub group: String,
    pub kind: Kind,
}

/// What narrows the set (none: every group).
#[derive(Debug, Clone, Default)]
pub struct Narrow {
    pub routes: Vec<String>,
    pub authorizer: bool,
    pub access: bool,
    pub execution: bool,
}

impl Narrow {
    fn any(&self) -> bool {
        !self.routes.is_empty() || self.authorizer || self.access || self.execution
    }
}

/// The groups the stack model names, narrowed; `api_id` is the live API's (the
/// execution log's name holds it). Errors name a `--route` the stack does not have.
pub fn wanted(
    stack: &Stack,
    api_id: Option<&str>,
    narrow: &Narrow,
) -> Result<(Vec<Source>, Vec<String>)> {
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for key in &narrow.routes {
        if !stack.functions.iter().any(|f| &f.serves == key) {
            let known: Vec<&str> = stack
                .functions
                .iter()
                .filter(|f| f.serves != AUTHORIZER)
                .map(|f| f.serves.as_str())
                .collect();
            return Err(Error::Config(format!(
                "--route {key:?}: the stack has no such route with a function (its routes with functions: {})",
                known.join(", ")
            )));
        }
    }
    let all = !narrow.any();
    for f in &stack.functions {
        let take = all
            || (f.serves == AUTHORIZER && narrow.authorizer)
            || (f.serves != AUTHORIZER && narrow.routes.contains(&f.serves));
        if take {
            out.push(Source {
                name: f.serves.clone(),
                group: f.log_group.clone(),
                kind: Kind::Function,
            });
        }
    }
    if narrow.authorizer && stack.authorizer.is_none() {
        missing.push("no authorizer: wsconn.toml declares no [authorizer]".to_string());
    }
    if all || narrow.access {
        match &stack.stage_settings.access_log_group {
            Some(g) => out.push(Source {
                name: "access".into(),
                group: g.clone(),
                kind: Kind::Access,
            }),
            None => missing.push("no access log: [logging] has no access-log = true".into()),
        }
    }
    if all || narrow.execution {
        let level = stack
            .stage_settings
            .logging_level
            .as_deref()
            .unwrap_or("OFF");
        match api_id {
            Some(id) => {
                let group = execution_log_group(id, &stack.stage);
                if level == "OFF" && !all {
                    missing.push(format!(
                        "the execution log {group} gets nothing new: [logging] level is OFF (ERROR or INFO turns it on)"
                    ));
                }
                out.push(Source {
                    name: "execution".into(),
                    group,
                    kind: Kind::Execution,
                });
            }
            None => missing.push("no execution log: the stack's API does not exist".into()),
        }
    }
    Ok((out, missing))
}

/// Why an expected group is absent, for the one line that names it.
pub fn why_absent(stack: &Stack, s: &Source) -> String {
    match s.kind {
        Kind::Function => format!(
            "no log group {} yet for {} (deploy creates it; run wsconn deploy)",
            s.group,
            if s.name == DEFAULT {
                "$default"
            } else {
                &s.name
            }
        ),
        Kind::Access => format!("no access log group {} yet (deploy creates it)", s.group),
        Kind::Execution => {
            let level = stack
                .stage_settings
                .logging_level
                .as_deref()
                .unwrap_or("OFF");
            if level == "OFF" {
                format!(
                    "no execution log {}: [logging] level is OFF (API Gateway writes it for ERROR or INFO)",
                    s.group
                )
            } else {
                format!(
                    "no execution log {} yet: API Gateway creates it with the first logged request",
                    s.group
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack() -> Stack {
        let mut s = crate::stack::tests_support::stack("chat");
        s.stage_settings.access_log_group = Some("/aws/apigateway/chat/api".into());
        s.stage_settings.logging_level = Some("INFO".into());
        s
    }

    #[test]
    fn every_group_by_default_and_narrowing_picks_kinds() {
        let (all, missing) = wanted(&stack(), Some("a1"), &Narrow::default()).unwrap();
        let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["$default", "access", "execution"]);
        assert_eq!(all[2].group, "API-Gateway-Execution-Logs_a1/api");
        assert!(missing.is_empty());
        let (only, _) = wanted(
            &stack(),
            Some("a1"),
            &Narrow {
                access: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].kind, Kind::Access);
    }

    #[test]
    fn absent_groups_and_unknown_routes_are_named() {
        let plain = crate::stack::tests_support::stack("s");
        let (_, missing) = wanted(&plain, None, &Narrow::default()).unwrap();
        assert!(
            missing.iter().any(|m| m.contains("access-log")),
            "{missing:?}"
        );
        assert!(
            missing.iter().any(|m| m.contains("API does not exist")),
            "{missing:?}"
        );
        let e = wanted(
            &plain,
            None,
            &Narrow {
                routes: vec!["nope".into()],
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("\"nope\"") && e.contains("$default"), "{e}");
    }
}
