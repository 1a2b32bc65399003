//! The `$connect` REQUEST authorizer, as API Gateway runs it on every handshake before
//! `$connect`. The pure parts live here: the identity-source check (a missing source is
//! 401 without calling the function), the authorizer's event, and the evaluation of its
//! answer (an IAM policy, matched against the `methodArn` with IAM's `*` and `?`
//! wildcards; an explicit Deny wins; anything that is not a policy is 500).

use crate::gateway::{ConnInfo, EventIds, clf_time};
use serde_json::{Map, Value, json};

/// What the handshake offers the identity sources and the event.
pub struct Handshake<'a> {
    /// Every header (canonical names, in order; repeated names repeat).
    pub headers: &'a [(String, String)],
    /// Every query parameter, in order.
    pub query: &'a [(String, String)],
    /// The stage's variables (wsconn local has none).
    pub stage_variables: &'a [(String, String)],
}

/// The principal and context an Allow carries into the connection, in the
/// authorizer's order: `principalId` first, then each context key (values as strings).
pub type Grant = Vec<(String, String)>;

/// How a handshake's authorization ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The policy allows `execute-api:Invoke` on the methodArn.
    Allow(Grant),
    /// The policy does not allow it (or denies it): 403.
    Deny(String),
    /// The answer is not a usable policy: 500.
    Invalid(String),
}

/// The first identity source the handshake lacks (absent or empty): API Gateway then
/// answers 401 without calling the function. `context` looks up `$context` variables.
pub fn missing_identity_source(
    sources: &[String],
    hs: &Handshake,
    context: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let present = |pairs: &[(String, String)], name: &str, case_insensitive: bool| {
        pairs.iter().any(|(k, v)| {
            let same = if case_insensitive {
                k.eq_ignore_ascii_case(name)
            } else {
                k == name
            };
            same && !v.is_empty()
        })
    };
    sources
        .iter()
        .find(|s| {
            let found = if let Some(n) = s.strip_prefix("route.request.header.") {
                present(hs.headers, n, true)
            } else if let Some(n) = s.strip_prefix("route.request.querystring.") {
                present(hs.query, n, false)
            } else if let Some(n) = s.strip_prefix("stageVariables.") {
                present(hs.stage_variables, n, false)
            } else if let Some(n) = s.strip_prefix("context.") {
                context(n).is_some_and(|v| !v.is_empty())
            } else {
                false
            };
            !found
        })
        .cloned()
}

/// `arn:aws:execute-api:<region>:<account>:<api-id>/<stage>/$connect`.
pub fn method_arn(region: &str, account: &str, api_id: &str, stage: &str) -> String {
    format!("arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/$connect")
}

/// `[(k, v)]` → `{k: last v}` and `{k: [every v]}`.
fn single_and_multi(pairs: &[(String, String)]) -> (Value, Value) {
    let mut single = Map::new();
    let mut multi = Map::new();
    for (k, v) in pairs {
        single.insert(k.clone(), json!(v));
        match multi.get_mut(k) {
            Some(Value::Array(a)) => a.push(json!(v)),
            _ => {
                multi.insert(k.clone(), json!([v]));
            }
        }
    }
    (Value::Object(single), Value::Object(multi))
}

/// The REQUEST authorizer's event for a WebSocket API's `$connect`.
pub fn event(conn: &ConnInfo, ids: &EventIds, method_arn: &str, hs: &Handshake) -> Value {
    let (headers, multi_headers) = single_and_multi(hs.headers);
    let (query, multi_query) = single_and_multi(hs.query);
    let (stage_variables, _) = single_and_multi(hs.stage_variables);
    let mut identity = json!({ "sourceIp": conn.source_ip });
    if let Some(ua) = &conn.user_agent {
        identity["userAgent"] = json!(ua);
    }
    json!({
        "type": "REQUEST",
        "methodArn": method_arn,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "stageVariables": stage_variables,
        "requestContext": {
            "routeKey": crate::stack::CONNECT,
            "eventType": "CONNECT",
            "extendedRequestId": ids.extended_request_id,
            "requestTime": clf_time(ids.request_time_epoch),
            "messageDirection": "IN",
            "stage": conn.stage,
            "connectedAt": conn.connected_at,
            "requestTimeEpoch": ids.request_time_epoch,
            "identity": identity,
            "requestId": ids.request_id,
            "domainName": conn.domain_name,
            "connectionId": conn.connection_id,
            "apiId": conn.api_id,
        },
    })
}

/// IAM's wildcard match: `*` is any run of characters (none included), `?` exactly
/// one; everything else matches itself.
pub fn wildcard_match(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    let eq = |a: char, b: char| {
        if ignore_case {
            a.to_lowercase().eq(b.to_lowercase())
        } else {
            a == b
        }
    };
    // Iterative glob with one backtrack point (linear in practice).
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && eq(p[pi], v[vi]))) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, vi));
            pi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A policy element that is a string or a list of strings.
fn strings(v: &Value) -> Option<Vec<&str>> {
    match v {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(a) => a.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

const ACTION: &str = "execute-api:Invoke";

/// Whether one statement applies to invoking `arn`: its (Not)Action and (Not)Resource.
fn applies(st: &Map<String, Value>, arn: &str) -> Result<bool, String> {
    let action = match (st.get("Action"), st.get("NotAction")) {
        (Some(a), None) => strings(a)
            .ok_or("Action is not a string or a list of strings")?
            .iter()
            .any(|p| wildcard_match(p, ACTION, true)),
        (None, Some(a)) => !strings(a)
            .ok_or("NotAction is not a string or a list of strings")?
            .iter()
            .any(|p| wildcard_match(p, ACTION, true)),
        _ => return Err("a statement needs exactly one of Action and NotAction".into()),
    };
    let resource = match (st.get("Resource"), st.get("NotResource")) {
        (Some(r), None) => strings(r)
            .ok_or("Resource is not a string or a list of strings")?
            .iter()
            .any(|p| wildcard_match(p, arn, false)),
        (None, Some(r)) => !strings(r)
            .ok_or("NotResource is not a string or a list of strings")?
            .iter()
            .any(|p| wildcard_match(p, arn, false)),
        _ => return Err("a statement needs exactly one of Resource and NotResource".into()),
    };
    Ok(action && resource)
}

/// A context value as it reaches `$context.authorizer.<key>` and
/// `requestContext.authorizer`: strings, numbers and booleans only.
fn context_value(k: &str, v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(format!(
            "context.{k} is not a string, number or boolean (API Gateway refuses objects, arrays and null)"
        )),
    }
}

/// Evaluates the authorizer's answer for `method_arn`.
pub fn evaluate(answer: &Value, method_arn: &str) -> Decision {
    match evaluate_inner(answer, method_arn) {
        Ok(d) => d,
        Err(e) => Decision::Invalid(e),
    }
}

fn evaluate_inner(answer: &Value, arn: &str) -> Result<Decision, String> {
    let obj = answer
        .as_object()
        .ok_or("the answer is not an object with principalId and policyDocument")?;
    let principal = match obj.get("principalId") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err("principalId is not a string".into()),
        None => return Err("the answer has no principalId".into()),
    };
    let doc = obj
        .get("policyDocument")
        .and_then(Value::as_object)
        .ok_or("the answer has no policyDocument object")?;
    let statements: Vec<&Map<String, Value>> = match doc.get("Statement") {
        Some(Value::Object(s)) => vec![s],
        Some(Value::Array(a)) => a
            .iter()
            .map(|s| s.as_object().ok_or("a Statement is not an object"))
            .collect::<Result<_, _>>()?,
        _ => return Err("policyDocument has no Statement".into()),
    };
    let mut allowed = false;
    for st in statements {
        let effect = st
            .get("Effect")
            .and_then(Value::as_str)
            .ok_or("a statement has no Effect")?;
        let applies = applies(st, arn)?;
        match effect {
            "Allow" => allowed |= applies,
            "Deny" if applies => {
                return Ok(Decision::Deny(format!(
                    "an explicit Deny matches {arn} (principalId {principal:?})"
                )));
            }
            "Deny" => {}
            other => return Err(format!("Effect {other:?} is neither Allow nor Deny")),
        }
    }
    if !allowed {
        return Ok(Decision::Deny(format!(
            "no Allow of {ACTION} matches {arn} (principalId {principal:?})"
        )));
    }
    let mut grant = vec![("principalId".to_string(), principal)];
    match obj.get("context") {
        None | Some(Value::Null) => {}
        Some(Value::Object(ctx)) => {
            for (k, v) in ctx {
                grant.push((k.clone(), context_value(k, v)?));
            }
        }
        Some(_) => return Err("context is not an object".into()),
    }
    Ok(Decision::Allow(grant))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::EventType;

    const ARN: &str = "arn:aws:execute-api:us-east-1:000000000000:abc123defg/api/$connect";

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn policy(statements: Value) -> Value {
        json!({"principalId": "alice", "policyDocument": {"Version": "2012-10-17", "Statement": statements}})
    }

    fn allow(resource: Value) -> Value {
        json!({"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": resource})
    }

    #[test]
    fn a_missing_or_empty_identity_source_is_named() {
        let headers = pairs(&[("Host", "h"), ("X-Token", "t")]);
        let query = pairs(&[("token", "abc"), ("empty", "")]);
        let hs = Handshake {
            headers: &headers,
            query: &query,
            stage_variables: &[],
        };
        let ctx = |n: &str| (n == "identity.sourceIp").then(|| "127.0.0.1".to_string());
        let check = |s: &[&str]| {
            let s: Vec<String> = s.iter().map(|x| x.to_string()).collect();
            missing_identity_source(&s, &hs, &ctx)
        };
        assert_eq!(check(&["route.request.querystring.token"]), None);
        assert_eq!(check(&["route.request.header.x-token"]), None);
        assert_eq!(check(&["context.identity.sourceIp"]), None);
        assert_eq!(
            check(&[
                "route.request.querystring.token",
                "route.request.querystring.user"
            ]),
            Some("route.request.querystring.user".into())
        );
        assert_eq!(
            check(&["route.request.querystring.empty"]),
            Some("route.request.querystring.empty".into())
        );
        assert_eq!(
            check(&["route.request.querystring.TOKEN"]),
            Some("route.request.querystring.TOKEN".into()),
            "query names are case-sensitive"
        );
        assert_eq!(
            check(&["stageVariables.v"]),
            Some("stageVariables.v".into())
        );
        assert_eq!(check(&["context.nope"]), Some("context.nope".into()));
        assert_eq!(check(&[]), None);
    }

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(wildcard_match(ARN, ARN, false));
        assert!(wildcard_match("*", ARN, false));
        assert!(wildcard_match(
            "arn:aws:execute-api:*:*:abc123defg/*",
            ARN,
            false
        ));
        assert!(wildcard_match(
            "arn:aws:execute-api:us-east-1:000000000000:abc123defg/api/$conn?ct",
            ARN,
            false
        ));
        assert!(!wildcard_match(
            "arn:aws:execute-api:us-east-1:000000000000:abc123defg/api/$conn?",
            ARN,
            false
        ));
        assert!(!wildcard_match(
            "arn:aws:execute-api:us-east-1:000000000000:abc123defg/prod/*",
            ARN,
            false
        ));
        assert!(!wildcard_match(&ARN.to_uppercase(), ARN, false));
        assert!(wildcard_match("a*b*c", "aXXbYYc", false));
        assert!(wildcard_match("a**", "a", false));
        assert!(!wildcard_match("a*b", "aXXbYYc", false));
        assert!(!wildcard_match("?", "", false));
        assert!(wildcard_match("", "", false));
        assert!(wildcard_match("Execute-API:*", "execute-api:Invoke", true));
    }

    #[test]
    fn policies_allow_deny_or_are_invalid() {
        let allowed = evaluate(&policy(json!([allow(json!(ARN))])), ARN);
        assert_eq!(
            allowed,
            Decision::Allow(vec![("principalId".into(), "alice".into())])
        );
        // A single statement object, a list of resources, a wildcard action.
        let one = policy(
            json!({"Action": "execute-api:*", "Effect": "Allow", "Resource": ["arn:x", "arn:aws:execute-api:*"]}),
        );
        assert!(matches!(evaluate(&one, ARN), Decision::Allow(_)));
        // An Allow on another resource: 403.
        let other = policy(json!([allow(json!(
            "arn:aws:execute-api:us-east-1:000000000000:other/api/$connect"
        ))]));
        assert!(matches!(evaluate(&other, ARN), Decision::Deny(_)));
        // An explicit Deny wins over an Allow, in either order.
        let deny = json!({"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": ARN});
        for sts in [
            json!([allow(json!("*")), deny.clone()]),
            json!([deny.clone(), allow(json!("*"))]),
        ] {
            match evaluate(&policy(sts), ARN) {
                Decision::Deny(why) => assert!(why.contains("explicit Deny"), "{why}"),
                d => panic!("{d:?}"),
            }
        }
        // A Deny of something else does not matter.
        let deny_other =
            json!({"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": "arn:x"});
        assert!(matches!(
            evaluate(&policy(json!([deny_other, allow(json!("*"))])), ARN),
            Decision::Allow(_)
        ));
        // Another action only: 403.
        let s3 = json!({"Action": "s3:GetObject", "Effect": "Allow", "Resource": "*"});
        assert!(matches!(
            evaluate(&policy(json!([s3])), ARN),
            Decision::Deny(_)
        ));
        // NotAction / NotResource.
        let not_res =
            json!({"Action": "execute-api:Invoke", "Effect": "Allow", "NotResource": "arn:x"});
        assert!(matches!(
            evaluate(&policy(json!([not_res])), ARN),
            Decision::Allow(_)
        ));
    }

    #[test]
    fn answers_that_are_not_policies_are_invalid() {
        for bad in [
            json!(null),
            json!("Allow"),
            json!({"policyDocument": {"Statement": []}}),
            json!({"principalId": "a"}),
            json!({"principalId": {"x": 1}, "policyDocument": {"Statement": []}}),
            json!({"principalId": "a", "policyDocument": {"Version": "2012-10-17"}}),
            policy(json!([{"Action": "execute-api:Invoke", "Resource": "*"}])),
            policy(json!([{"Action": "execute-api:Invoke", "Effect": "allow", "Resource": "*"}])),
            policy(json!([{"Effect": "Allow", "Resource": "*"}])),
            policy(json!([{"Action": 3, "Effect": "Allow", "Resource": "*"}])),
            policy(json!(["x"])),
        ] {
            assert!(
                matches!(evaluate(&bad, ARN), Decision::Invalid(_)),
                "{bad} should be invalid"
            );
        }
        let mut nested = policy(json!([allow(json!("*"))]));
        nested["context"] = json!({"roles": ["a"]});
        match evaluate(&nested, ARN) {
            Decision::Invalid(e) => assert!(e.contains("context.roles"), "{e}"),
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn context_values_become_strings_in_order() {
        let mut p = policy(json!([allow(json!(ARN))]));
        p["context"] = json!({"user": "bob", "n": 3, "admin": false});
        let Decision::Allow(g) = evaluate(&p, ARN) else {
            panic!()
        };
        let keys: Vec<_> = g.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys[0], "principalId");
        assert!(g.contains(&("user".into(), "bob".into())));
        assert!(g.contains(&("n".into(), "3".into())));
        assert!(g.contains(&("admin".into(), "false".into())));
    }

    #[test]
    fn the_event_has_aws_shape() {
        let conn = ConnInfo {
            connection_id: "SOqGjdZioAMCEeg=".into(),
            connected_at: 1652722217711,
            source_ip: "127.0.0.1".into(),
            user_agent: None,
            domain_name: "127.0.0.1:8080".into(),
            api_id: "abc123defg".into(),
            stage: "api".into(),
        };
        let ids = EventIds::new(EventType::Connect, 1652722217999);
        let headers = pairs(&[("Host", "127.0.0.1:8080"), ("X-A", "1"), ("X-A", "2")]);
        let query = pairs(&[("token", "t"), ("u", "a"), ("u", "b")]);
        let hs = Handshake {
            headers: &headers,
            query: &query,
            stage_variables: &[],
        };
        let arn = method_arn("us-east-1", "000000000000", "abc123defg", "api");
        assert_eq!(arn, ARN);
        let e = event(&conn, &ids, &arn, &hs);
        assert_eq!(e["type"], "REQUEST");
        assert_eq!(e["methodArn"], ARN);
        assert_eq!(e["headers"]["X-A"], "2");
        assert_eq!(e["multiValueHeaders"]["X-A"], json!(["1", "2"]));
        assert_eq!(e["queryStringParameters"], json!({"token": "t", "u": "b"}));
        assert_eq!(
            e["multiValueQueryStringParameters"],
            json!({"token": ["t"], "u": ["a", "b"]})
        );
        assert_eq!(e["stageVariables"], json!({}));
        let rc = &e["requestContext"];
        assert_eq!(rc["routeKey"], "$connect");
        assert_eq!(rc["eventType"], "CONNECT");
        assert_eq!(rc["connectionId"], "SOqGjdZioAMCEeg=");
        assert_eq!(rc["messageDirection"], "IN");
        assert_eq!(rc["requestTimeEpoch"], 1652722217999i64);
        assert_eq!(rc["requestTime"], "16/May/2022:17:30:17 +0000");
        assert_eq!(rc["identity"], json!({"sourceIp": "127.0.0.1"}));
        assert_eq!(rc["apiId"], "abc123defg");
    }
}
