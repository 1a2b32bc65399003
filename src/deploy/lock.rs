//! The stack's lease: one mutating run at a time (see `super::engine` for why).
//!
//! The lease is the CloudWatch Logs log group `/wsconn/<stack>/lock`: CreateLogGroup
//! either creates it or answers ResourceAlreadyExistsException, atomically, and needs
//! no table or bucket that might not exist yet. Its tags say who holds it:
//! `wsconn:lock-id` (random, per run), `wsconn:lock-owner` (`pid@host`),
//! `wsconn:lock-command`, `wsconn:lock-since` and `wsconn:lock-heartbeat` (Unix
//! seconds, refreshed every 15 s). Releasing deletes the group.
//!
//! A lease is stale, and is taken over, when its holder ran on this host and its process
//! is gone (a SIGKILLed run), or when its heartbeat is more than 60 s old (a run killed
//! on another machine).

use super::resources::{Tags, log_group};
use crate::aws::Aws;
use crate::config::OWNER_TAG;
use crate::error::{self, Error, Result};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const HEARTBEAT: Duration = Duration::from_secs(15);
const STALE_AFTER_S: i64 = 60;
const TAG_ID: &str = "wsconn:lock-id";
const TAG_OWNER: &str = "wsconn:lock-owner";
const TAG_COMMAND: &str = "wsconn:lock-command";
const TAG_SINCE: &str = "wsconn:lock-since";
const TAG_HEARTBEAT: &str = "wsconn:lock-heartbeat";

pub fn group_name(stack: &str) -> String {
    format!("/wsconn/{stack}/lock")
}

/// Who holds (or would hold) the lease.
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    pub id: String,
    pub pid: u32,
    pub host: String,
    pub command: String,
    /// RFC 3339, UTC.
    pub since: String,
    /// Unix seconds of the last heartbeat (or of creation).
    pub heartbeat: i64,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "wsconn {} (pid {} on {}, since {})",
            self.command, self.pid, self.host, self.since
        )
    }
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub use crate::gateway::rfc3339;

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown-host".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Whether a process with this pid exists on this host.
pub fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

impl Holder {
    fn me(command: &str) -> Holder {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let host = hostname();
        let pid = std::process::id();
        let id =
            crate::assets::sha256_hex(format!("{host}/{pid}/{nanos}").as_bytes())[..16].to_string();
        Holder {
            id,
            pid,
            host,
            command: command.to_string(),
            since: rfc3339(now_s()),
            heartbeat: now_s(),
        }
    }

    fn tags(&self, stack: &str) -> Tags {
        [
            (OWNER_TAG, stack.to_string()),
            (TAG_ID, self.id.clone()),
            (TAG_OWNER, format!("{}@{}", self.pid, self.host)),
            (TAG_COMMAND, self.command.clone()),
            (TAG_SINCE, self.since.clone()),
            (TAG_HEARTBEAT, self.heartbeat.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    fn from_tags(tags: &Tags, created_s: i64) -> Holder {
        let owner = tags.get(TAG_OWNER).cloned().unwrap_or_default();
        let (pid, host) = owner.split_once('@').unwrap_or(("0", "unknown-host"));
        Holder {
            id: tags.get(TAG_ID).cloned().unwrap_or_default(),
            pid: pid.parse().unwrap_or(0),
            host: host.to_string(),
            command: tags
                .get(TAG_COMMAND)
                .cloned()
                .unwrap_or_else(|| "run".into()),
            since: tags
                .get(TAG_SINCE)
                .cloned()
                .unwrap_or_else(|| rfc3339(created_s)),
            heartbeat: tags
                .get(TAG_HEARTBEAT)
                .and_then(|h| h.parse().ok())
                .unwrap_or(created_s),
        }
    }

    /// Why the lease can be taken over, if it can.
    pub fn stale(&self, now: i64, this_host: &str) -> Option<String> {
        if self.host == this_host && !process_alive(self.pid) {
            return Some(format!("process {} no longer runs", self.pid));
        }
        let age = now - self.heartbeat;
        (age > STALE_AFTER_S).then(|| format!("no heartbeat for {age} s"))
    }
}

/// A held lease. Release it with [`Lock::release`].
pub struct Lock {
    group: String,
    logs: aws_sdk_cloudwatchlogs::Client,
    heartbeat: tokio::task::JoinHandle<()>,
    /// Someone else held the lease when this run first asked for it.
    contended: bool,
}

/// Whether the lease of `stack` is held now (one DescribeLogGroups). A run that reads
/// before it takes the lease checks this beside its read (`super::run`).
pub async fn held(aws: &Aws, stack: &str) -> Result<bool> {
    let group = group_name(stack);
    let out = aws
        .gated(
            aws.logs
                .describe_log_groups()
                .log_group_name_prefix(&group)
                .send(),
        )
        .await
        .map_err(|e| error::aws(format!("reading the lock of stack {stack}"), e))?;
    Ok(out
        .log_groups()
        .iter()
        .any(|g| g.log_group_name() == Some(group.as_str())))
}

/// The group's ARN and holder, if the group exists.
async fn read_holder(
    logs: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
) -> Result<Option<(String, Holder)>> {
    Ok(log_group::find(logs, group).await?.map(|g| {
        let created_s = g.creation_time.unwrap_or(0) / 1000;
        let holder = Holder::from_tags(&g.tags, created_s);
        (g.arn, holder)
    }))
}

async fn delete_group(logs: &aws_sdk_cloudwatchlogs::Client, group: &str) -> Result<()> {
    match logs.delete_log_group().log_group_name(group).send().await {
        Ok(_) => Ok(()),
        Err(e) if error::is_not_found(&e) => Ok(()),
        Err(e) => Err(error::aws(format!("releasing the lock {group}"), e)),
    }
}

impl Lock {
    /// Takes the lease of `stack`, waiting up to `timeout` for a live holder; `note`
    /// tells the user once that it waits, and when it takes over a stale lease.
    pub async fn acquire(
        aws: &Aws,
        stack: &str,
        command: &str,
        timeout: Duration,
        note: &(dyn Fn(&str) + Sync),
    ) -> Result<Lock> {
        let logs = aws.logs.clone();
        let group = group_name(stack);
        let me = Holder::me(command);
        let start = Instant::now();
        let mut told = false;
        let mut contended = false;
        loop {
            let created = logs
                .create_log_group()
                .log_group_name(&group)
                .set_tags(Some(me.tags(stack).into_iter().collect()))
                .send()
                .await;
            match created {
                Ok(_) => break,
                Err(e) if error::code_of(&e) == Some("ResourceAlreadyExistsException") => {}
                Err(e) => {
                    return Err(error::aws(
                        format!("taking the lock of stack {stack} (logs:CreateLogGroup {group})"),
                        e,
                    ));
                }
            }
            contended = true;
            let Some((_, holder)) = read_holder(&logs, &group).await? else {
                continue; // released in between
            };
            if holder.id == me.id {
                break; // our own create, whose answer was lost
            }
            if let Some(why) = holder.stale(now_s(), &me.host) {
                note(&format!(
                    "taking over the lock of stack {stack} left by {holder}: {why}"
                ));
                delete_group(&logs, &group).await?;
                continue;
            }
            if start.elapsed() >= timeout {
                return Err(Error::Locked(format!(
                    "stack {stack} is locked by another run: {holder}. Wait for it to finish (or raise --lock-timeout); a lock whose run is gone expires {STALE_AFTER_S} s after its last heartbeat"
                )));
            }
            if !told {
                note(&format!(
                    "waiting for the lock of stack {stack}, held by {holder}…"
                ));
                told = true;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let heartbeat = tokio::spawn({
            let logs = logs.clone();
            let group = group.clone();
            async move {
                let mut arn = None;
                loop {
                    tokio::time::sleep(HEARTBEAT).await;
                    if arn.is_none() {
                        arn = read_holder(&logs, &group)
                            .await
                            .ok()
                            .flatten()
                            .map(|(a, _)| a);
                    }
                    if let Some(arn) = &arn {
                        let _ = logs
                            .tag_resource()
                            .resource_arn(arn)
                            .tags(TAG_HEARTBEAT, now_s().to_string())
                            .send()
                            .await;
                    }
                }
            }
        });
        Ok(Lock {
            group,
            logs,
            heartbeat,
            contended,
        })
    }

    /// Whether another run held the lease when this one first asked for it: what it
    /// read before may have changed since.
    pub fn contended(&self) -> bool {
        self.contended
    }

    /// Deletes the lease.
    pub async fn release(self) -> Result<()> {
        self.heartbeat.abort();
        delete_group(&self.logs, &self.group).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_round_trips_through_its_tags() {
        let me = Holder::me("deploy");
        let back = Holder::from_tags(&me.tags("s"), 0);
        assert_eq!(back, me);
        assert_eq!(me.tags("s")["wsconn:stack"], "s");
        assert!(me.to_string().contains(&format!("pid {}", me.pid)));
    }

    #[test]
    fn staleness_needs_a_dead_local_process_or_an_old_heartbeat() {
        let mut h = Holder::me("deploy");
        let now = now_s();
        // This very process is alive.
        assert_eq!(h.stale(now, &h.host.clone()), None);
        // Another host: only the heartbeat counts.
        assert_eq!(h.stale(now, "elsewhere"), None);
        h.heartbeat = now - 61;
        assert!(h.stale(now, "elsewhere").unwrap().contains("heartbeat"));
        // A pid that cannot exist on this host.
        let mut dead = Holder::me("destroy");
        dead.pid = 5_000_000;
        assert!(
            dead.stale(now, &dead.host.clone())
                .unwrap()
                .contains("no longer runs")
        );
    }

    #[test]
    fn this_process_is_alive() {
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(5_000_000));
    }
}
