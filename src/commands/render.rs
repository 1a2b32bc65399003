//! `wsconn render`: what API Gateway would send to a route's integration, offline.
//!
//! The stack's own template (placeholders filled as deploy fills them, `--assets-dir`
//! honoured) or any file, rendered by the template engine for one request built from
//! the flags; every `$context` variable has a default that can be overridden. Makes no
//! AWS call and needs no credentials; the template is read-only input.

use crate::cli::{GlobalOpts, OutputFormat, RenderArgs};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::gateway;
use crate::stack::{CONNECT, DISCONNECT, DynamoAction, IntegrationDef, Stack};
use crate::vtl;
use std::io::Write;
use std::process::ExitCode;

/// Exit code when the output does not have the shape the route's integration needs.
const EXIT_BAD_REQUEST: u8 = 3;

/// `$connect`, `connect` → `$connect`; anything else is refused.
pub fn route_key(route: &str) -> Result<&'static str> {
    match route.trim_start_matches('$') {
        "connect" => Ok(CONNECT),
        "disconnect" => Ok(DISCONNECT),
        _ => Err(Error::Config(format!(
            "route {route:?}: render knows the service integrations' routes, $connect and $disconnect ($default invokes the function: see `wsconn local`)"
        ))),
    }
}

/// The request API Gateway would hand the template: the `$context` of a fresh event on
/// a fresh connection (as `local` builds it), then the flags.
pub fn request(args: &RenderArgs, route: &str, stage: &str, region: &str) -> vtl::Request {
    let api_id = "a1b2c3d4e5";
    let now = gateway::now_ms();
    let conn = gateway::ConnInfo {
        connection_id: gateway::new_id(),
        connected_at: now,
        source_ip: "192.0.2.1".into(),
        // A handshake's User-Agent header is $context.identity.userAgent, as on AWS.
        user_agent: Some(
            args.headers
                .iter()
                .rfind(|(k, _)| k.eq_ignore_ascii_case("user-agent"))
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| "wsconn".into()),
        ),
        domain_name: format!("{api_id}.execute-api.{region}.amazonaws.com"),
        api_id: api_id.into(),
        stage: stage.into(),
    };
    let event = gateway::EventType::of_route(route);
    let ids = gateway::EventIds::new(event, now);
    let body = args.body.clone().unwrap_or_default();
    let mut req =
        gateway::template_request(&conn, event, route, &ids, &args.headers, &args.query, &body);
    for (k, v) in &args.authorizer {
        req.set_context(&format!("authorizer.{k}"), v);
    }
    for (k, v) in &args.context {
        req.set_context(k, v);
    }
    req.stage_variables = args.stage_variables.clone();
    req
}

pub fn run(g: &GlobalOpts, cfg: Config, args: &RenderArgs) -> Result<ExitCode> {
    let route = args.route.as_deref().map(route_key).transpose()?;
    let stack = Stack::build(&cfg)?;
    let (file, text, action) = match (&args.template, route) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::Config(format!("reading {}: {e}", path.display())))?;
            let action = route.and_then(|r| action_of(&stack, r));
            (path.display().to_string(), text, action)
        }
        (None, Some(r)) => {
            let t = stack
                .template(r)
                .expect("connect and disconnect have templates");
            let file = match &cfg.assets_dir {
                Some(d) => d.join(t.file).display().to_string(),
                None => t.file.to_string(),
            };
            (file, t.text.clone(), action_of(&stack, r))
        }
        (None, None) => {
            return Err(Error::Config(
                "render needs a route ($connect or $disconnect) or --template FILE; see wsconn render --help".into(),
            ));
        }
    };
    let template =
        vtl::Template::parse(&file, &text).map_err(|e| Error::Template(e.to_string()))?;
    let region = cfg.region.as_deref().unwrap_or("us-east-1");
    let req = request(args, route.unwrap_or("$default"), &cfg.stage, region);
    let output = vtl::render(&template, &req).map_err(|e| Error::Template(e.to_string()))?;
    let parsed: Option<serde_json::Value> = serde_json::from_str(&output).ok();
    let problem = action.and_then(|a| match &parsed {
        None => Some(format!(
            "the output is not JSON, so {} would fail",
            a.as_str()
        )),
        Some(v) => a
            .check_request(v, stack.table.hash_key)
            .err()
            .map(|e| format!("the output is not a valid {} request: {e}", a.as_str())),
    });
    if g.output == OutputFormat::Json {
        let doc = Rendered {
            route,
            template: &file,
            output: &output,
            request: parsed.as_ref(),
        };
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(output.as_bytes());
        let _ = out.flush();
    }
    Ok(match problem {
        Some(p) => {
            eprintln!("warning: {file}: {p}");
            ExitCode::from(EXIT_BAD_REQUEST)
        }
        None => ExitCode::SUCCESS,
    })
}

/// `--output json`: the rendered text, and the request it parses to (null if not JSON).
#[derive(serde::Serialize)]
struct Rendered<'a> {
    route: Option<&'a str>,
    template: &'a str,
    output: &'a str,
    request: Option<&'a serde_json::Value>,
}

fn action_of(stack: &Stack, route: &str) -> Option<DynamoAction> {
    match &stack.route(route)?.integration {
        IntegrationDef::DynamoDb { action, .. } => Some(*action),
        IntegrationDef::LambdaProxy { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_accepted_with_or_without_the_dollar() {
        assert_eq!(route_key("$connect").unwrap(), "$connect");
        assert_eq!(route_key("connect").unwrap(), "$connect");
        assert_eq!(route_key("disconnect").unwrap(), "$disconnect");
        assert!(route_key("$default").is_err());
        assert!(route_key("sendmessage").is_err());
    }

    #[test]
    fn flags_override_the_default_context() {
        let args = RenderArgs {
            route: None,
            template: None,
            headers: vec![("Host".into(), "h".into())],
            query: vec![("a".into(), "b".into())],
            body: Some("{}".into()),
            context: vec![
                ("connectionId".into(), "fixed=".into()),
                ("identity.sourceIp".into(), "10.0.0.1".into()),
            ],
            stage_variables: vec![],
            authorizer: vec![("principalId".into(), "alice".into())],
            opts: Default::default(),
        };
        let req = request(&args, "$connect", "api", "eu-west-1");
        let t = vtl::Template::parse(
            "t",
            "$context.connectionId $context.identity.sourceIp $context.eventType $context.stage $input.params('a') $input.params().header.Host $context.domainName",
        )
        .unwrap();
        assert_eq!(
            vtl::render(&t, &req).unwrap(),
            "fixed= 10.0.0.1 CONNECT api b h a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com"
        );
        let t = vtl::Template::parse("t", "$context.authorizer.principalId").unwrap();
        assert_eq!(vtl::render(&t, &req).unwrap(), "alice");
    }

    #[test]
    fn the_user_agent_header_is_the_identitys_user_agent() {
        let mut args = RenderArgs::default();
        let t = vtl::Template::parse("t", "$context.identity.userAgent").unwrap();
        assert_eq!(
            vtl::render(&t, &request(&args, "$connect", "api", "r")).unwrap(),
            "wsconn"
        );
        args.headers = vec![("user-agent".into(), "wscat/6.1.0".into())];
        assert_eq!(
            vtl::render(&t, &request(&args, "$connect", "api", "r")).unwrap(),
            "wscat/6.1.0"
        );
    }
}
