//! The one plan type. Text is a rendering of these values; JSON is serde of the same
//! values. There is no second code path.

use owo_colors::OwoColorize;
use serde::Serialize;
use serde_json::Value;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub current: Value,
    pub desired: Value,
}

/// Why a change needs confirmation before it is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Risk {
    /// Deletes or replaces something.
    Destructive,
    /// Grants permissions that did not exist before.
    WidensPermissions,
    /// Replaces a resource that holds data: needs --allow-replace.
    LosesData,
    /// Changes a setting of the whole account (API Gateway's CloudWatch role).
    AccountWide,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceChange {
    pub resource: String,
    pub action: Action,
    pub fields: Vec<FieldChange>,
    /// Why a replace is needed (or other context worth a line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip)]
    pub risk: Option<Risk>,
}

impl ResourceChange {
    pub fn new(resource: impl Into<String>, action: Action, fields: Vec<FieldChange>) -> Self {
        let risk = match action {
            Action::Delete | Action::Replace => Some(Risk::Destructive),
            _ => None,
        };
        ResourceChange {
            resource: resource.into(),
            action,
            fields,
            reason: None,
            risk,
        }
    }
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
    pub fn with_risk(mut self, risk: Option<Risk>) -> Self {
        if risk.is_some() {
            self.risk = risk;
        }
        self
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub changes: Vec<ResourceChange>,
    pub summary: Summary,
}

impl Plan {
    pub fn new(changes: Vec<ResourceChange>) -> Plan {
        let mut summary = Summary::default();
        for c in &changes {
            match c.action {
                Action::Create => summary.create += 1,
                Action::Update => summary.update += 1,
                Action::Replace => summary.replace += 1,
                Action::Delete => summary.delete += 1,
            }
        }
        Plan { changes, summary }
    }
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plan values are plain JSON")
    }
}

/// Compares one field; returns a change when `current != desired`.
pub fn field(
    name: &str,
    current: impl Into<Value>,
    desired: impl Into<Value>,
) -> Option<FieldChange> {
    let (current, desired) = (current.into(), desired.into());
    (current != desired).then(|| FieldChange {
        field: name.to_string(),
        current,
        desired,
    })
}

/// All fields of a resource that does not exist yet, as `null → desired`.
pub fn created_fields(desired: Vec<(&str, Value)>) -> Vec<FieldChange> {
    desired
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(f, v)| FieldChange {
            field: f.to_string(),
            current: Value::Null,
            desired: v,
        })
        .collect()
}

/// Text values long enough (or multi-line) to be shown as a unified diff.
fn as_block(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if s.contains('\n') || s.len() > 60 => Some(s.clone()),
        Value::Object(_) | Value::Array(_) => {
            let compact = v.to_string();
            (compact.len() > 60).then(|| serde_json::to_string_pretty(v).unwrap_or(compact))
        }
        _ => None,
    }
}

fn short(v: &Value) -> String {
    match v {
        Value::Null => "(none)".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A unified line diff of `old` and `new` (Myers): each line with `Delete`, `Create` or
/// `None` (unchanged). Changed runs show their old lines, then their new ones.
pub fn line_diff<'a>(old: &'a str, new: &'a str) -> Vec<(Option<Action>, &'a str)> {
    use similar::DiffOp;
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let mut out = Vec::new();
    for op in similar::capture_diff_slices(similar::Algorithm::Myers, &a, &b) {
        let (del, ins) = match op {
            DiffOp::Equal { old_index, len, .. } => {
                out.extend(a[old_index..old_index + len].iter().map(|l| (None, *l)));
                continue;
            }
            DiffOp::Delete {
                old_index, old_len, ..
            } => (old_index..old_index + old_len, 0..0),
            DiffOp::Insert {
                new_index, new_len, ..
            } => (0..0, new_index..new_index + new_len),
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => (
                old_index..old_index + old_len,
                new_index..new_index + new_len,
            ),
        };
        out.extend(a[del].iter().map(|l| (Some(Action::Delete), *l)));
        out.extend(b[ins].iter().map(|l| (Some(Action::Create), *l)));
    }
    out
}

/// Renders the plan for people. `color` is decided by the caller (terminal, NO_COLOR).
pub fn render_text(plan: &Plan, color: bool) -> String {
    let mut out = String::new();
    let paint = |s: &str, action: Action| -> String {
        if !color {
            return s.to_string();
        }
        match action {
            Action::Create => s.green().to_string(),
            Action::Update => s.yellow().to_string(),
            Action::Replace => s.magenta().to_string(),
            Action::Delete => s.red().to_string(),
        }
    };
    for c in &plan.changes {
        let head = format!("{} {}", c.action.symbol(), c.resource);
        let _ = writeln!(out, "{}", paint(&head, c.action));
        if let Some(r) = &c.reason {
            let _ = writeln!(out, "    # {r}");
        }
        for f in &c.fields {
            let (cb, db) = (as_block(&f.current), as_block(&f.desired));
            if cb.is_some() || db.is_some() {
                let cur = cb.unwrap_or_else(|| {
                    if f.current.is_null() {
                        String::new()
                    } else {
                        short(&f.current)
                    }
                });
                let des = db.unwrap_or_else(|| {
                    if f.desired.is_null() {
                        String::new()
                    } else {
                        short(&f.desired)
                    }
                });
                let _ = writeln!(out, "    {}:", f.field);
                for (tag, text) in line_diff(&cur, &des) {
                    let sign = match tag {
                        Some(Action::Delete) => "-",
                        Some(_) => "+",
                        None => " ",
                    };
                    let line = format!("      {sign} {text}");
                    let _ = writeln!(
                        out,
                        "{}",
                        match tag {
                            Some(a) => paint(&line, a),
                            None => line,
                        }
                    );
                }
            } else {
                let _ = writeln!(
                    out,
                    "    {}: {} → {}",
                    f.field,
                    short(&f.current),
                    short(&f.desired)
                );
            }
        }
    }
    if plan.is_empty() {
        out.push_str("No changes. The stack matches its definition.\n");
    } else {
        let s = &plan.summary;
        let _ = writeln!(
            out,
            "Plan: {} to create, {} to update, {} to replace, {} to delete.",
            s.create, s.update, s.replace, s.delete
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_diffs_show_old_then_new_lines_of_each_change() {
        let d = line_diff("a\nb\nc\nd\n", "a\nB\nc\nd\ne\n");
        assert_eq!(
            d,
            vec![
                (None, "a"),
                (Some(Action::Delete), "b"),
                (Some(Action::Create), "B"),
                (None, "c"),
                (None, "d"),
                (Some(Action::Create), "e"),
            ]
        );
        assert_eq!(line_diff("", "x"), vec![(Some(Action::Create), "x")]);
        assert_eq!(line_diff("x\n", ""), vec![(Some(Action::Delete), "x")]);
    }
    use serde_json::json;

    fn sample() -> Plan {
        Plan::new(vec![
            ResourceChange::new(
                "table t",
                Action::Update,
                vec![field("billing_mode", "PROVISIONED", "PAY_PER_REQUEST").unwrap()],
            ),
            ResourceChange::new("route $connect", Action::Delete, vec![]),
            ResourceChange::new(
                "integration $connect",
                Action::Update,
                vec![field("request_template", "line1\nline2\n", "line1\nLINE2\n").unwrap()],
            ),
        ])
    }

    #[test]
    fn field_reports_only_differences() {
        assert!(field("x", 1, 1).is_none());
        let f = field("x", json!(null), "a").unwrap();
        assert_eq!(f.current, Value::Null);
    }

    #[test]
    fn summary_counts_actions() {
        let p = sample();
        assert_eq!(
            p.summary,
            Summary {
                create: 0,
                update: 2,
                replace: 0,
                delete: 1
            }
        );
    }

    #[test]
    fn text_has_symbols_arrows_and_unified_diffs() {
        let t = render_text(&sample(), false);
        assert!(
            t.contains("~ table t\n    billing_mode: PROVISIONED → PAY_PER_REQUEST\n"),
            "{t}"
        );
        assert!(t.contains("- route $connect\n"), "{t}");
        assert!(t.contains("      - line2\n      + LINE2\n"), "{t}");
        assert!(
            t.ends_with("Plan: 0 to create, 2 to update, 0 to replace, 1 to delete.\n"),
            "{t}"
        );
        assert!(!t.contains('\u{1b}'), "no colour codes when colour is off");
        assert!(render_text(&sample(), true).contains('\u{1b}'));
    }

    #[test]
    fn empty_plan_says_in_sync() {
        assert_eq!(
            render_text(&Plan::new(vec![]), false),
            "No changes. The stack matches its definition.\n"
        );
        let j: Value = serde_json::from_str(&Plan::new(vec![]).to_json()).unwrap();
        assert_eq!(
            j,
            json!({"changes": [], "summary": {"create":0,"update":0,"replace":0,"delete":0}})
        );
    }
}
