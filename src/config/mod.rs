//! Resolved configuration: flags > environment > wsconn.toml > defaults, validated
//! before any AWS call. Every derived AWS name is checked against that service's rules.

pub mod app;
pub mod domain;
pub mod file;
pub mod names;
pub mod runtime;

pub use app::{App, Authorizer, Handler, Logging, Releases, Throttling};
pub use domain::Domain;
pub use file::{
    AuthorizerFile, CONFIG_FILE, DomainFile, FileConfig, FunctionsFile, LoggingFile, ReleasesFile,
    RouteFile, StatementFile, ThrottlingFile, load_file, parse_file,
};
pub use names::*;

use crate::error::Error;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Values CloudWatch Logs accepts for a log group's retention.
const RETENTION_DAYS: &[i32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// Everything that decides the desired stack and where it lives.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub stack: String,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    pub stage: String,
    pub connection_ttl: u64,
    pub log_retention_days: i32,
    /// Where mapping-templates/ and lambda/ are read from (None: the built-in copies).
    pub assets_dir: Option<PathBuf>,
    /// User tags plus the ownership tag.
    pub tags: BTreeMap<String, String>,
    /// The application's routes, authorizer and stage settings.
    pub app: App,
    /// Whether the stack and the stage were given (flag, environment or wsconn.toml)
    /// rather than defaulted: `--local` takes them from the running `wsconn local`
    /// otherwise, and refuses a given one that disagrees.
    pub stack_given: bool,
    pub stage_given: bool,
}

/// What the command line says (flags, and the environment variables clap reads for
/// them); `None` where it says nothing. The CLI fills it; nothing here knows the CLI.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub stack: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    pub stage: Option<String>,
    pub connection_ttl: Option<u64>,
    /// `KEY=VALUE` strings, validated here.
    pub tags: Vec<String>,
    pub log_retention_days: Option<i32>,
    pub assets_dir: Option<PathBuf>,
}

/// Merges flags/env (already merged by clap) over the file over defaults, then validates.
pub fn resolve(o: &Overrides, file: FileConfig) -> Result<Config, Error> {
    let stack = o
        .stack
        .clone()
        .or(file.stack.clone())
        .unwrap_or_else(|| DEFAULT_STACK.into());
    validate_stack(&stack)?;
    let app = app::resolve(&file, &stack)?;
    let mut tags = file.tags;
    for t in &o.tags {
        let (k, v) = parse_tag(t)?;
        tags.insert(k, v);
    }
    let stack_given = o.stack.is_some() || file.stack.is_some();
    let stage_given = o.stage.is_some() || file.stage.is_some();
    let cfg = Config {
        app,
        stack,
        stack_given,
        stage_given,
        // The SDK's own variables rank above the file, as every other option's do.
        region: o
            .region
            .clone()
            .or_else(|| env_var("AWS_REGION"))
            .or_else(|| env_var("AWS_DEFAULT_REGION"))
            .or(file.region),
        profile: o
            .profile
            .clone()
            .or_else(|| env_var("AWS_PROFILE"))
            .or(file.profile),
        endpoint_url: o.endpoint_url.clone().or(file.endpoint_url),
        stage: o
            .stage
            .clone()
            .or(file.stage)
            .unwrap_or_else(|| DEFAULT_STAGE.into()),
        connection_ttl: o
            .connection_ttl
            .or(file.connection_ttl)
            .unwrap_or(DEFAULT_CONNECTION_TTL),
        log_retention_days: o
            .log_retention_days
            .or(file.log_retention_days)
            .unwrap_or(DEFAULT_LOG_RETENTION_DAYS),
        assets_dir: o.assets_dir.clone().or(file.assets_dir),
        tags,
    };
    validate(cfg)
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `KEY=VALUE` → (KEY, VALUE).
pub fn parse_tag(s: &str) -> Result<(String, String), Error> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(Error::Config(format!(
            "--tag {s:?}: expected KEY=VALUE, for example --tag team=chat"
        ))),
    }
}

fn validate(mut cfg: Config) -> Result<Config, Error> {
    validate_stack(&cfg.stack)?;
    validate_stage(&cfg.stage)?;
    // Items would expire before the 2-hour maximum connection duration otherwise are
    // still allowed; zero would expire every record at once.
    if cfg.connection_ttl == 0 || cfg.connection_ttl > 31_536_000 * 5 {
        return Err(Error::Config(format!(
            "--connection-ttl {}: must be between 1 and {} seconds (5 years)",
            cfg.connection_ttl,
            31_536_000 * 5
        )));
    }
    if !RETENTION_DAYS.contains(&cfg.log_retention_days) {
        return Err(Error::Config(format!(
            "log retention {} days: CloudWatch Logs accepts only {:?}",
            cfg.log_retention_days, RETENTION_DAYS
        )));
    }
    for (k, v) in &cfg.tags {
        validate_tag(k, v)?;
    }
    let names = Names::for_stack(&cfg.stack);
    validate_names(&names)?;
    cfg.tags.insert(OWNER_TAG.into(), cfg.stack.clone());
    Ok(cfg)
}

/// A stack name starts with a letter and holds letters, digits and hyphens, so that every
/// derived name is legal for DynamoDB, IAM, Lambda and API Gateway alike.
pub fn validate_stack(stack: &str) -> Result<(), Error> {
    let ok_chars = stack.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let starts = stack
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic());
    if !ok_chars || !starts {
        return Err(Error::Config(format!(
            "stack name {stack:?}: use a letter followed by letters, digits or '-'"
        )));
    }
    Ok(())
}

/// WebSocket stages: `$default` does not work for WebSocket APIs (aws-notes), and stage
/// names are up to 128 of [A-Za-z0-9_-].
pub fn validate_stage(stage: &str) -> Result<(), Error> {
    let ok = !stage.is_empty()
        && stage.len() <= 128
        && stage
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !ok {
        return Err(Error::Config(format!(
            "stage {stage:?}: use 1-128 letters, digits, '_' or '-' ($default is not usable for WebSocket APIs)"
        )));
    }
    Ok(())
}

fn validate_tag(k: &str, v: &str) -> Result<(), Error> {
    if k == OWNER_TAG {
        return Err(Error::Config(format!(
            "tag {OWNER_TAG} is wsconn's ownership tag and is set from --stack"
        )));
    }
    if k.starts_with("aws:") {
        return Err(Error::Config(format!(
            "tag {k:?}: keys starting with aws: are reserved by AWS"
        )));
    }
    if k.chars().count() > 128 || v.chars().count() > 256 {
        return Err(Error::Config(format!(
            "tag {k:?}: keys are at most 128 characters and values at most 256"
        )));
    }
    // IAM's rule (the strictest of the tagged services): letters, digits, spaces and
    // _ . : / = + - @ in keys and values alike.
    let allowed = |c: char| c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c);
    if let Some(c) = k.chars().chain(v.chars()).find(|c| !allowed(*c)) {
        return Err(Error::Config(format!(
            "tag {k:?}: {c:?} is not allowed; IAM tags hold only letters, digits, spaces and _ . : / = + - @"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(stack: Option<&str>) -> Overrides {
        Overrides {
            stack: stack.map(String::from),
            ..Default::default()
        }
    }

    #[test]
    fn tag_characters_follow_iams_rule() {
        assert!(validate_tag("team", "real-time @ eu/1 = a+b:c_d.é").is_ok());
        let e = validate_tag("team", "a,b").unwrap_err().to_string();
        assert!(e.contains("',' is not allowed"), "{e}");
        assert!(validate_tag("cost#center", "1").is_err());
        assert!(validate_tag("x", "").is_ok());
    }

    #[test]
    fn names_derive_from_stack() {
        let n = Names::for_stack("chat");
        assert_eq!(n.table, "chat-connections");
        assert_eq!(n.default_function.function, "chat-default");
        assert_eq!(n.default_function.log_group, "/aws/lambda/chat-default");
        assert_eq!(n.api_role, "chat-apigw-dynamodb");
        assert_eq!(n.default_function.role, "chat-default-fn");
    }

    #[test]
    fn defaults_apply_and_owner_tag_is_added() {
        let c = resolve(&stack(None), FileConfig::default()).unwrap();
        assert_eq!(c.stack, "wsconn");
        assert_eq!(c.stage, "api");
        assert_eq!(c.connection_ttl, 86_400);
        assert_eq!(c.log_retention_days, 14);
        assert_eq!(c.tags.get(OWNER_TAG).map(String::as_str), Some("wsconn"));
    }

    #[test]
    fn flags_beat_file_and_file_beats_defaults() {
        let file = parse_file(
            "stack = \"fromfile\"\nstage = \"prod\"\nconnection-ttl = 60\n[tags]\nteam = \"a\"\n",
        )
        .unwrap();
        let opts = Overrides {
            stage: Some("dev".into()),
            tags: vec!["team=b".into()],
            ..stack(Some("flag"))
        };
        let c = resolve(&opts, file).unwrap();
        assert_eq!(c.stack, "flag");
        assert_eq!(c.stage, "dev");
        assert_eq!(c.connection_ttl, 60);
        assert_eq!(c.tags.get("team").map(String::as_str), Some("b"));
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        let e = parse_file("stak = \"x\"").unwrap_err();
        assert!(e.contains("unknown field `stak`"), "{e}");
    }

    #[test]
    fn bad_stack_names_are_rejected() {
        for bad in ["", "1abc", "a_b", "a.b", "a b", "ü"] {
            assert!(validate_stack(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_stack("my-stack-2").is_ok());
    }

    #[test]
    fn long_stack_names_fail_on_the_derived_role_name() {
        let long = "a".repeat(50);
        let err = resolve(&stack(Some(&long)), FileConfig::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("IAM role") && err.contains("64"), "{err}");
        let ok = "a".repeat(49);
        assert!(resolve(&stack(Some(&ok)), FileConfig::default()).is_ok());
    }

    #[test]
    fn tags_and_options_are_validated() {
        assert!(parse_tag("noequals").is_err());
        assert!(parse_tag("=v").is_err());
        assert_eq!(parse_tag("k=a=b").unwrap(), ("k".into(), "a=b".into()));
        let bad = |o: Overrides, names: &str| {
            let e = resolve(&o, FileConfig::default()).unwrap_err().to_string();
            assert!(e.contains(names), "{names}: {e}");
        };
        bad(
            Overrides {
                tags: vec!["wsconn:stack=x".into()],
                ..Default::default()
            },
            "tag wsconn:stack is wsconn's ownership tag",
        );
        bad(
            Overrides {
                tags: vec!["aws:x=y".into()],
                ..Default::default()
            },
            "keys starting with aws: are reserved",
        );
        bad(
            Overrides {
                connection_ttl: Some(0),
                ..Default::default()
            },
            "--connection-ttl 0",
        );
        bad(
            Overrides {
                stage: Some("$default".into()),
                ..Default::default()
            },
            "stage \"$default\"",
        );
        bad(
            Overrides {
                log_retention_days: Some(15),
                ..Default::default()
            },
            "log retention 15 days",
        );
    }
}
