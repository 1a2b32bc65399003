//! wsconn.toml as written: every section and key, parsed by serde (unknown keys are
//! errors). Nothing here validates; `super::resolve` and `super::app` do.

use crate::error::Error;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "wsconn.toml";

/// The optional file: the same keys as the flags, and the application's sections.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub stack: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    pub stage: Option<String>,
    pub connection_ttl: Option<u64>,
    pub log_retention_days: Option<i32>,
    pub assets_dir: Option<PathBuf>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// `[functions]`: defaults for every function whose handler the file names.
    #[serde(default)]
    pub functions: FunctionsFile,
    /// `[routes.<key>]`: custom routes (and `$default`), each with its handler.
    #[serde(default)]
    pub routes: BTreeMap<String, RouteFile>,
    pub authorizer: Option<AuthorizerFile>,
    pub throttling: Option<ThrottlingFile>,
    pub logging: Option<LoggingFile>,
    /// `[releases]`: how many earlier releases deploy keeps for `wsconn rollback`.
    pub releases: Option<ReleasesFile>,
    /// `[domain]`: a custom domain name for the API (`wss://ws.example.com`).
    pub domain: Option<DomainFile>,
    /// Where the file was read from; handler directories are relative to it.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FunctionsFile {
    /// The default runtime (`nodejs24.x`, `python3.13`…).
    pub runtime: Option<String>,
    pub memory: Option<i64>,
    pub timeout: Option<i64>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    pub handler: PathBuf,
    /// Lambda's handler setting: `<file without extension>.<function>`.
    pub entry: Option<String>,
    pub runtime: Option<String>,
    pub memory: Option<i64>,
    pub timeout: Option<i64>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub policy: Vec<StatementFile>,
}

/// An extra IAM statement for a route's function: Allow `actions` on `resources`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StatementFile {
    pub actions: Vec<String>,
    pub resources: Vec<String>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AuthorizerFile {
    pub handler: PathBuf,
    pub entry: Option<String>,
    pub runtime: Option<String>,
    pub identity_sources: Option<Vec<String>>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ThrottlingFile {
    pub burst_limit: i64,
    pub rate_limit: f64,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LoggingFile {
    #[serde(default)]
    pub access_log: bool,
    pub level: Option<String>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ReleasesFile {
    pub keep: Option<i64>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DomainFile {
    pub name: String,
    /// A public Route 53 zone of the account: wsconn requests the certificate, validates
    /// it by DNS and writes the alias records.
    pub hosted_zone: Option<String>,
    /// Or an ISSUED ACM certificate of the user's; DNS is then the user's too.
    pub certificate: Option<String>,
    /// The API mapping's key ("" = the root).
    pub base_path: Option<String>,
}

/// Reads `path` (or ./wsconn.toml when present) into a FileConfig.
pub fn load_file(path: Option<&Path>) -> Result<FileConfig, Error> {
    let (path, required): (PathBuf, bool) = match path {
        Some(p) => (p.to_path_buf(), true),
        None => (PathBuf::from(CONFIG_FILE), false),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mut file = parse_file(&text)
                .map_err(|e| Error::Config(format!("reading {}: {e}", path.display())))?;
            file.path = Some(path);
            Ok(file)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            Ok(FileConfig::default())
        }
        Err(e) => Err(Error::Config(format!("reading {}: {e}", path.display()))),
    }
}

pub fn parse_file(text: &str) -> Result<FileConfig, String> {
    toml::from_str(text).map_err(|e| e.message().to_string())
}
