//! The release record. A release is an API Gateway deployment that wsconn made: a
//! snapshot of the routes, integrations and authorizer, whose integrations name published
//! function versions. Its `Description` carries a short manifest, so the API's
//! deployments are the history and no state file is needed:
//!
//! ```text
//! wsconn 0.1.0 sha256:<digest of the desired stack> versions default=3 sendmessage=5
//! ```
//!
//! Function names are written without the `<stack>-` prefix every one of them has.
//! Deployments made before releases (`wsconn config sha256:<digest>`) are wsconn's too,
//! but name no versions (their integrations invoked `$LATEST`). Everything here is pure.

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// API Gateway's limit on a deployment's `Description`.
pub const MAX_DESCRIPTION: usize = 1024;
const PREFIX: &str = "wsconn ";
const LEGACY_PREFIX: &str = "wsconn config sha256:";
const DIGEST: &str = "sha256:";
const VERSIONS: &str = "versions";

/// What a deployment wsconn made serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    /// The wsconn version that made it; `None` for a deployment made before releases.
    pub wsconn: Option<String>,
    /// The digest of the desired stack it snapshots (routes, integrations with their
    /// templates and versions, the authorizer, and the ids they were wired to).
    pub digest: String,
    /// Function name → version. Empty before releases: those invoked `$LATEST`.
    pub versions: BTreeMap<String, String>,
}

impl Manifest {
    /// A manifest of this wsconn.
    pub fn new(digest: &str, versions: BTreeMap<String, String>) -> Manifest {
        Manifest {
            wsconn: Some(env!("CARGO_PKG_VERSION").to_string()),
            digest: digest.to_string(),
            versions,
        }
    }

    /// Whether it names the versions it serves (a release, not a deployment made before
    /// releases).
    pub fn is_release(&self) -> bool {
        self.wsconn.is_some()
    }

    /// The `Description` that records it.
    pub fn describe(&self, stack: &str) -> String {
        let Some(wsconn) = &self.wsconn else {
            return format!("{LEGACY_PREFIX}{}", self.digest);
        };
        let prefix = format!("{stack}-");
        let versions: Vec<String> = self
            .versions
            .iter()
            .map(|(f, v)| format!("{}={v}", f.strip_prefix(&prefix).unwrap_or(f)))
            .collect();
        format!(
            "{PREFIX}{wsconn} {DIGEST}{} {VERSIONS} {}",
            self.digest,
            versions.join(" ")
        )
        .trim_end()
        .to_string()
    }

    /// Reads a deployment's `Description`; `None` for one wsconn did not make.
    pub fn parse(description: &str, stack: &str) -> Option<Manifest> {
        if let Some(digest) = description.strip_prefix(LEGACY_PREFIX) {
            return Some(Manifest {
                wsconn: None,
                digest: digest.trim().to_string(),
                versions: BTreeMap::new(),
            });
        }
        let mut words = description.strip_prefix(PREFIX)?.split_whitespace();
        let wsconn = words.next()?.to_string();
        let digest = words.next()?.strip_prefix(DIGEST)?.to_string();
        if words.next()? != VERSIONS {
            return None;
        }
        let mut versions = BTreeMap::new();
        for w in words {
            let (f, v) = w.split_once('=')?;
            if f.is_empty() || v.is_empty() {
                return None;
            }
            versions.insert(format!("{stack}-{f}"), v.to_string());
        }
        Some(Manifest {
            wsconn: Some(wsconn),
            digest,
            versions,
        })
    }
}

/// One of the API's deployments, as `releases` lists it and pruning judges it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Release {
    pub id: String,
    /// Unix seconds.
    pub created: Option<i64>,
    /// `None` for a deployment wsconn did not make.
    pub manifest: Option<Manifest>,
}

/// The order of releases, newest first: by creation time; API Gateway's dates have
/// whole seconds, so two deploys in one second are told apart by their versions (Lambda
/// numbers a function's versions upwards, and a later release never invokes an older
/// version of a function it changed), then by id.
fn newer(a: &Release, b: &Release) -> std::cmp::Ordering {
    let versions = |r: &Release| -> Vec<u64> {
        let mut v: Vec<u64> = r
            .manifest
            .iter()
            .flat_map(|m| m.versions.values())
            .filter_map(|v| v.parse().ok())
            .collect();
        v.sort_unstable_by(|x, y| y.cmp(x));
        v
    };
    b.created
        .cmp(&a.created)
        .then_with(|| versions(b).cmp(&versions(a)))
        .then_with(|| b.id.cmp(&a.id))
}

pub fn newest_first(releases: &mut [Release]) {
    releases.sort_by(newer);
}

/// The deployments `[releases] keep` keeps: the one the stage will serve (`live`; `None`
/// while this plan makes it) and the newest `keep` others that wsconn made. A
/// deployment wsconn did not make is never pruned, so it is kept too.
pub fn kept<'r>(releases: &'r [Release], live: Option<&str>, keep: usize) -> Vec<&'r Release> {
    let mut sorted: Vec<&Release> = releases.iter().collect();
    sorted.sort_by(|a, b| newer(a, b));
    let mut others = 0;
    sorted
        .into_iter()
        .filter(|r| {
            if Some(r.id.as_str()) == live || r.manifest.is_none() {
                return true;
            }
            others += 1;
            others <= keep
        })
        .collect()
}

/// The wsconn-made deployments beyond what [`kept`] keeps: deploy deletes them after
/// the stage has switched.
pub fn pruned<'r>(releases: &'r [Release], live: Option<&str>, keep: usize) -> Vec<&'r Release> {
    let kept: BTreeSet<&str> = kept(releases, live, keep)
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    releases
        .iter()
        .filter(|r| !kept.contains(r.id.as_str()))
        .collect()
}

/// Each function's versions that the given releases reference.
pub fn referenced<'r>(
    releases: impl IntoIterator<Item = &'r Release>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in releases {
        for (f, v) in r.manifest.iter().flat_map(|m| &m.versions) {
            out.entry(f.clone()).or_default().insert(v.clone());
        }
    }
    out
}

/// The release `wsconn rollback` goes back to without `--to`: the newest release made
/// before the live one.
pub fn previous<'r>(releases: &'r [Release], live: &str) -> Option<&'r Release> {
    let live = releases.iter().find(|r| r.id == live)?;
    let mut older: Vec<&Release> = releases
        .iter()
        .filter(|r| r.manifest.as_ref().is_some_and(Manifest::is_release))
        .filter(|r| newer(r, live) == std::cmp::Ordering::Greater)
        .collect();
    older.sort_by(|a, b| newer(a, b));
    older.first().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_releases_of_one_second_are_ordered_by_their_versions() {
        let r = |id: &str, v: &str| Release {
            id: id.into(),
            created: Some(100),
            manifest: Some(Manifest::new(
                "d",
                [("f".to_string(), v.to_string())].into(),
            )),
        };
        // Ids say nothing of age: "zzz" was made before "aaa".
        let mut all = vec![r("zzz", "9"), r("aaa", "10"), r("mmm", "8")];
        newest_first(&mut all);
        let ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["aaa", "zzz", "mmm"]);
        assert_eq!(previous(&all, "aaa").unwrap().id, "zzz");
        assert_eq!(kept(&all, Some("aaa"), 1).len(), 2);
        assert_eq!(pruned(&all, Some("aaa"), 1)[0].id, "mmm");
    }

    fn versions(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(f, v)| (f.to_string(), v.to_string()))
            .collect()
    }

    fn rel(id: &str, created: i64, v: &[(&str, &str)]) -> Release {
        Release {
            id: id.into(),
            created: Some(created),
            manifest: Some(Manifest {
                wsconn: Some("0.1.0".into()),
                digest: format!("d{id}"),
                versions: versions(v),
            }),
        }
    }

    #[test]
    fn a_manifest_round_trips_through_its_description() {
        let m = Manifest {
            wsconn: Some("0.1.0".into()),
            digest: "ab12".into(),
            versions: versions(&[("chat-default", "3"), ("chat-sendmessage", "12")]),
        };
        let d = m.describe("chat");
        assert_eq!(
            d,
            "wsconn 0.1.0 sha256:ab12 versions default=3 sendmessage=12"
        );
        assert_eq!(Manifest::parse(&d, "chat"), Some(m));
    }

    #[test]
    fn deployments_before_releases_and_foreign_ones_are_told_apart() {
        let old = Manifest::parse("wsconn config sha256:abc", "s").unwrap();
        assert!(!old.is_release());
        assert_eq!(old.digest, "abc");
        assert!(old.versions.is_empty());
        assert_eq!(old.describe("s"), "wsconn config sha256:abc");
        for foreign in [
            "made by hand",
            "",
            "wsconn",
            "wsconn 0.1.0 md5:x versions",
            "wsconn 0.1.0 sha256:x",
            "wsconn 0.1.0 sha256:x versions default",
            "wsconn 0.1.0 sha256:x versions =3",
        ] {
            assert_eq!(Manifest::parse(foreign, "s"), None, "{foreign:?}");
        }
    }

    #[test]
    fn fifty_routes_fit_the_description() {
        let v: Vec<(String, String)> = (0..50)
            .map(|i| (format!("stack-sendmsg-{i:02}"), format!("{}", 100 + i)))
            .collect();
        let m = Manifest::new(
            &"f".repeat(64),
            v.into_iter().collect::<BTreeMap<String, String>>(),
        );
        let d = m.describe("stack");
        assert!(d.len() <= MAX_DESCRIPTION, "{}", d.len());
        assert_eq!(Manifest::parse(&d, "stack"), Some(m));
    }

    #[test]
    fn pruning_keeps_the_live_release_and_the_newest_others() {
        let mut all = vec![
            rel("a", 1, &[("f", "1")]),
            rel("b", 2, &[("f", "2")]),
            rel("c", 3, &[("f", "3")]),
            rel("d", 4, &[("f", "4")]),
            Release {
                id: "hand".into(),
                created: Some(0),
                manifest: None,
            },
        ];
        let ids = |v: Vec<&Release>| v.into_iter().map(|r| r.id.clone()).collect::<Vec<_>>();
        // A new release (not made yet) and keep 2: the two newest stay.
        assert_eq!(ids(pruned(&all, None, 2)), ["a", "b"]);
        // The stage on an older one (after a rollback): it stays, with the newest 1 other.
        assert_eq!(ids(pruned(&all, Some("b"), 1)), ["a", "c"]);
        // Never one wsconn did not make.
        assert!(!ids(pruned(&all, None, 1)).contains(&"hand".to_string()));
        let kept = kept(&all, Some("d"), 1);
        assert_eq!(ids(kept.clone()), ["d", "c", "hand"]);
        let refs = referenced(kept);
        assert_eq!(
            refs["f"].iter().collect::<Vec<_>>(),
            [&"3".to_string(), &"4".to_string()]
        );
        newest_first(&mut all);
        assert_eq!(ids(all.iter().collect()), ["d", "c", "b", "a", "hand"]);
    }

    #[test]
    fn rollback_goes_to_the_newest_release_before_the_live_one() {
        let all = vec![
            rel("a", 1, &[]),
            rel("b", 2, &[]),
            Release {
                id: "old".into(),
                created: Some(0),
                manifest: Manifest::parse("wsconn config sha256:x", "s"),
            },
            rel("c", 2, &[]),
        ];
        assert_eq!(previous(&all, "c").map(|r| r.id.as_str()), Some("b"));
        assert_eq!(previous(&all, "b").map(|r| r.id.as_str()), Some("a"));
        // A deployment made before releases is not a release to go back to.
        assert_eq!(previous(&all, "a"), None);
        assert_eq!(previous(&all, "missing"), None);
    }
}
