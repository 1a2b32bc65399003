//! API Gateway's mapping-template objects for WebSocket APIs: `$context`, `$input`, `$util`
//! and `$stageVariables`, kept apart from the language itself.
//!
//! * `$context` is a map of every WebSocket context variable (null where unknown);
//!   `connectedAt` and `requestTimeEpoch` are `Long` (milliseconds), `status` and
//!   `integrationLatency` `Integer`.
//! * `$input.body` is the raw body; `$input.json(path)` the JSON text at a JSONPath,
//!   `$input.path(path)` the value there (maps, lists, strings, numbers, booleans);
//!   `$input.params()` the map `{path, querystring, header}`; `$input.params(name)` looks in
//!   path, then querystring, then header, and gives "" when the name is nowhere.
//!   When the body is not JSON, `json(..)` is null and `path('$')` is the raw body.
//! * `$util`: `escapeJavaScript` (Apache Commons Lang 2.6 `StringEscapeUtils`), `parseJson`,
//!   `urlEncode` / `urlDecode` (`java.net.URLEncoder`/`URLDecoder`, UTF-8), `base64Encode` /
//!   `base64Decode` (`java.util.Base64` basic encoder/decoder, UTF-8 text). Each returns null
//!   for a null argument, and finds no method (null) for a non-string argument.
//! * `$stageVariables` is a map.

use std::cell::OnceCell;
use std::rc::Rc;

use super::parser::Slots;
use super::value::{HostObject, JMap, StrCache, Value, with_str_cache};

/// The WebSocket `$context` variables, in the order `$context` lists them.
pub const CONTEXT_KEYS: &[&str] = &[
    "apiId",
    "authorizer.principalId",
    "connectedAt",
    "connectionId",
    "domainName",
    "error.message",
    "error.messageString",
    "error.responseType",
    "error.validationErrorString",
    "eventType",
    "extendedRequestId",
    "identity.accountId",
    "identity.apiKey",
    "identity.apiKeyId",
    "identity.caller",
    "identity.cognitoAuthenticationProvider",
    "identity.cognitoAuthenticationType",
    "identity.cognitoIdentityId",
    "identity.cognitoIdentityPoolId",
    "identity.principalOrgId",
    "identity.sourceIp",
    "identity.user",
    "identity.userAgent",
    "identity.userArn",
    "integrationLatency",
    "messageDirection",
    "messageId",
    "requestId",
    "requestTime",
    "requestTimeEpoch",
    "routeKey",
    "stage",
    "status",
];

const LONG_FIELDS: &[&str] = &["connectedAt", "requestTimeEpoch"];
const INT_FIELDS: &[&str] = &["status", "integrationLatency"];

/// A `$context` entry.
#[derive(Debug, Clone, PartialEq)]
pub enum ContextValue {
    Null,
    Str(String),
    Long(i64),
    Int(i32),
    Map(Vec<(String, ContextValue)>),
}

/// One request as a mapping template sees it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `$context`, nested (`identity`, `authorizer`, `error` are maps).
    pub context: Vec<(String, ContextValue)>,
    /// Header name/value pairs in the order given (a repeated name keeps its first place
    /// and its last value, as a Java LinkedHashMap does).
    pub headers: Vec<(String, String)>,
    pub querystring: Vec<(String, String)>,
    pub path: Vec<(String, String)>,
    pub body: String,
    pub stage_variables: Vec<(String, String)>,
}

impl Default for Request {
    fn default() -> Self {
        Request::new()
    }
}

fn set_in(map: &mut Vec<(String, ContextValue)>, parts: &[&str], value: ContextValue) {
    let (first, rest) = match parts.split_first() {
        Some(x) => x,
        None => return,
    };
    let pos = map.iter().position(|(k, _)| k == first);
    if rest.is_empty() {
        match pos {
            Some(i) => map[i].1 = value,
            None => map.push((first.to_string(), value)),
        }
        return;
    }
    let i = match pos {
        Some(i) => {
            if !matches!(map[i].1, ContextValue::Map(_)) {
                map[i].1 = ContextValue::Map(Vec::new());
            }
            i
        }
        None => {
            map.push((first.to_string(), ContextValue::Map(Vec::new())));
            map.len() - 1
        }
    };
    if let ContextValue::Map(m) = &mut map[i].1 {
        set_in(m, rest, value);
    }
}

impl Request {
    /// A request whose `$context` holds every WebSocket variable, all null.
    pub fn new() -> Request {
        let mut context = Vec::new();
        for k in CONTEXT_KEYS {
            let parts: Vec<&str> = k.split('.').collect();
            set_in(&mut context, &parts, ContextValue::Null);
        }
        Request {
            context,
            headers: Vec::new(),
            querystring: Vec::new(),
            path: Vec::new(),
            body: String::new(),
            stage_variables: Vec::new(),
        }
    }

    /// Sets `$context.<dotted_name>` ("identity.sourceIp", "authorizer.claims.sub"...).
    /// `connectedAt` and `requestTimeEpoch` become Longs and `status` and
    /// `integrationLatency` Integers when they parse as such.
    pub fn set_context(&mut self, dotted_name: &str, value: &str) {
        let v = if LONG_FIELDS.contains(&dotted_name) {
            value
                .trim()
                .parse::<i64>()
                .map(ContextValue::Long)
                .unwrap_or(ContextValue::Str(value.to_string()))
        } else if INT_FIELDS.contains(&dotted_name) {
            value
                .trim()
                .parse::<i32>()
                .map(ContextValue::Int)
                .unwrap_or(ContextValue::Str(value.to_string()))
        } else {
            ContextValue::Str(value.to_string())
        };
        let parts: Vec<&str> = dotted_name.split('.').collect();
        set_in(&mut self.context, &parts, v);
    }
}

fn context_value(v: &ContextValue, cache: &mut StrCache) -> Value {
    match v {
        ContextValue::Null => Value::Null,
        ContextValue::Str(s) => Value::Str(cache.shaped(s)),
        ContextValue::Long(l) => Value::Long(*l),
        ContextValue::Int(i) => Value::Int(*i),
        ContextValue::Map(m) => context_map(m, cache),
    }
}

/// True when no name repeats.
fn all_unique<'a>(names: impl ExactSizeIterator<Item = &'a str> + Clone) -> bool {
    use std::hash::{BuildHasher, Hasher};
    let hash = |n: &str| {
        let mut h = super::value::FxBuild.build_hasher();
        h.write(n.as_bytes());
        h.finish()
    };
    let n = names.len();
    if n < 2 {
        return true;
    }
    if n <= SMALL_UNIQUE {
        // Small lists (the usual case): hashes in an array on the stack, every pair of
        // hashes compared, the names themselves only when two hashes are equal.
        let mut hs = [0u64; SMALL_UNIQUE];
        for (h, name) in hs.iter_mut().zip(names.clone()) {
            *h = hash(name);
        }
        let hs = &hs[..n];
        for i in 1..n {
            if hs[..i].contains(&hs[i]) {
                let name = names.clone().nth(i);
                if names.clone().take(i).any(|m| Some(m) == name) {
                    return false;
                }
            }
        }
        return true;
    }
    // Longer lists: sort by hash, compare names only within runs of equal hashes.
    let mut hs: Vec<(u64, &str)> = names.map(|n| (hash(n), n)).collect();
    hs.sort_unstable_by_key(|x| x.0);
    let mut i = 1;
    while i < hs.len() {
        if hs[i].0 == hs[i - 1].0 {
            // compare every name of this hash run
            let mut j = i;
            while j < hs.len() && hs[j].0 == hs[i - 1].0 {
                j += 1;
            }
            let run = &hs[i - 1..j];
            for a in 0..run.len() {
                for b in a + 1..run.len() {
                    if run[a].1 == run[b].1 {
                        return false;
                    }
                }
            }
            i = j;
        } else {
            i += 1;
        }
    }
    true
}

/// Lists up to this long are checked by [`all_unique`] without allocating.
const SMALL_UNIQUE: usize = 48;

/// The context tree's keys are unique when built by `set_in` (which replaces in place), but
/// the field is public, so a repeated name is handled as Java's put would.
fn context_map(m: &[(String, ContextValue)], cache: &mut StrCache) -> Value {
    let mut jm = JMap::with_capacity(m.len());
    let unique = all_unique(m.iter().map(|(k, _)| k.as_str()));
    for (k, v) in m {
        let key = Value::Str(cache.shaped(k));
        let value = context_value(v, cache);
        if unique {
            jm.push_unique(key, value);
        } else {
            jm.put(key, value);
        }
    }
    Value::new_map(jm)
}

/// A LinkedHashMap of name/value pairs: a repeated name keeps its first place and its
/// last value.
fn pairs_map(pairs: &[(String, String)], cache: &mut StrCache) -> Value {
    let mut m = JMap::with_capacity(pairs.len());
    let unique = all_unique(pairs.iter().map(|(k, _)| k.as_str()));
    for (k, v) in pairs {
        let key = Value::Str(cache.shaped(k));
        let value = Value::Str(cache.shaped(v));
        if unique {
            m.push_unique(key, value);
        } else {
            m.put(key, value);
        }
    }
    Value::new_map(m)
}

/// The root variables of a render: (slot, value) for each API Gateway object the template
/// mentions.
pub(crate) fn roots(req: &Request, slots: &Slots) -> Vec<(u32, Value)> {
    let mut out = Vec::with_capacity(4);
    with_str_cache(|cache| {
        if let Some(s) = slots.lookup("context") {
            out.push((s, context_map(&req.context, cache)));
        }
        if let Some(s) = slots.lookup("input") {
            out.push((s, Value::Host(Rc::new(Input::new(req, cache)))));
        }
        if let Some(s) = slots.lookup("util") {
            out.push((s, Value::Host(Rc::new(Util))));
        }
        if let Some(s) = slots.lookup("stageVariables") {
            out.push((s, pairs_map(&req.stage_variables, cache)));
        }
    });
    out
}

/// `$input`
struct Input {
    params: Value,
    lookup: [Value; 3],
    body: Rc<str>,
    /// the parsed body (None: not JSON)
    json: OnceCell<Option<serde_json::Value>>,
}

impl Input {
    fn new(req: &Request, cache: &mut StrCache) -> Input {
        let path = pairs_map(&req.path, cache);
        let query = pairs_map(&req.querystring, cache);
        let header = pairs_map(&req.headers, cache);
        let mut m = JMap::with_capacity(3);
        m.push_unique(Value::Str(cache.shaped("path")), path.clone());
        m.push_unique(Value::Str(cache.shaped("querystring")), query.clone());
        m.push_unique(Value::Str(cache.shaped("header")), header.clone());
        Input {
            params: Value::new_map(m),
            lookup: [path, query, header],
            body: Rc::from(req.body.as_str()),
            json: OnceCell::new(),
        }
    }

    fn body_json(&self) -> Option<&serde_json::Value> {
        self.json
            .get_or_init(|| serde_json::from_str(&self.body).ok())
            .as_ref()
    }

    fn select(&self, path: &str) -> Result<Option<serde_json::Value>, String> {
        let Some(root) = self.body_json() else {
            return Ok(None);
        };
        json_select(root, path)
    }
}

/// Evaluates a JSONPath: one node gives that node, several give a list, none gives None.
fn json_select(root: &serde_json::Value, path: &str) -> Result<Option<serde_json::Value>, String> {
    let p = serde_json_path::JsonPath::parse(path.trim())
        .map_err(|e| format!("invalid JSONPath {:?}: {}", path, e))?;
    let nodes = p.query(root).all();
    Ok(match nodes.len() {
        0 => None,
        1 => Some(nodes[0].clone()),
        _ => Some(serde_json::Value::Array(
            nodes.into_iter().cloned().collect(),
        )),
    })
}

impl HostObject for Input {
    fn class_name(&self) -> &str {
        "Input"
    }

    fn call(&self, name: &str, args: &[Value]) -> Result<Option<Value>, String> {
        match (name, args) {
            ("params", []) => Ok(Some(self.params.clone())),
            ("params", [arg]) => {
                let key = match arg {
                    Value::Str(s) => s,
                    Value::Null => return Ok(Some(Value::str(""))),
                    _ => return Ok(None),
                };
                for m in &self.lookup {
                    if let Value::Map(m) = m
                        && let Some(v) = m.borrow().get_str(key)
                        && !v.is_null()
                    {
                        return Ok(Some(v.clone()));
                    }
                }
                Ok(Some(Value::str("")))
            }
            ("json", [Value::Str(p)]) => Ok(Some(match self.select(p)? {
                Some(v) => Value::string(serde_json::to_string(&v).map_err(|e| e.to_string())?),
                None => Value::Null,
            })),
            ("json", [Value::Null]) => Ok(Some(Value::Null)),
            ("path", [Value::Str(p)]) => {
                if self.body_json().is_none() {
                    return Ok(Some(if p.trim() == "$" {
                        Value::Str(self.body.clone())
                    } else {
                        Value::Null
                    }));
                }
                Ok(Some(match self.select(p)? {
                    Some(v) => json_to_value(&v),
                    None => Value::Null,
                }))
            }
            ("path", [Value::Null]) => Ok(Some(Value::Null)),
            ("getBody", []) => Ok(Some(Value::Str(self.body.clone()))),
            _ => Ok(None),
        }
    }

    fn property(&self, name: &str) -> Option<Value> {
        match name {
            "body" => Some(Value::Str(self.body.clone())),
            _ => None,
        }
    }
}

/// A parsed JSON value as Java objects: objects are maps, arrays lists, integers Integer or
/// Long (Double beyond), other numbers Double.
pub fn json_to_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                if let Ok(i) = i32::try_from(i) {
                    Value::Int(i)
                } else {
                    Value::Long(i)
                }
            } else {
                Value::Double(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Value::str(s),
        serde_json::Value::Array(a) => Value::new_list(a.iter().map(json_to_value).collect()),
        serde_json::Value::Object(o) => {
            let mut m = JMap::with_capacity(o.len());
            for (k, v) in o {
                m.put(Value::str(k), json_to_value(v));
            }
            Value::new_map(m)
        }
    }
}

/// `$util`
struct Util;

impl HostObject for Util {
    fn class_name(&self) -> &str {
        "Util"
    }

    fn call(&self, name: &str, args: &[Value]) -> Result<Option<Value>, String> {
        let [arg] = args else { return Ok(None) };
        let s = match arg {
            Value::Str(s) => s,
            Value::Null => {
                return Ok(match name {
                    "escapeJavaScript" | "parseJson" | "urlEncode" | "urlDecode"
                    | "base64Encode" | "base64Decode" => Some(Value::Null),
                    _ => None,
                });
            }
            _ => return Ok(None),
        };
        Ok(Some(match name {
            "escapeJavaScript" => {
                let mut out = String::new();
                if escape_js_into(s, true, &mut out) {
                    Value::string(out)
                } else {
                    Value::Str(s.clone())
                }
            }
            "parseJson" => {
                let v: serde_json::Value = serde_json::from_str(s)
                    .map_err(|e| format!("$util.parseJson: invalid JSON: {}", e))?;
                json_to_value(&v)
            }
            "urlEncode" => Value::string(url_encode(s)),
            "urlDecode" => Value::string(url_decode(s)?),
            "base64Encode" => Value::string(base64_encode(s)),
            "base64Decode" => Value::string(base64_decode(s)?),
            _ => return Ok(None),
        }))
    }

    fn property(&self, _name: &str) -> Option<Value> {
        None
    }

    fn fuses_escape_js(&self) -> bool {
        true
    }

    fn escape_js_keep_quote_into(&self, s: &str, out: &mut String) -> bool {
        escape_js_into(s, false, out)
    }
}

/// Apache Commons Lang 2.6 `StringEscapeUtils.escapeJavaScript`: over UTF-16 code units,
/// `> 0x7f` as `\uXXXX` (upper-case hex; a character outside the BMP becomes its surrogate
/// pair), `\b \n \t \f \r`, other controls `< 32` as `\u00XX`, and `'` `"` `\` `/` get a
/// backslash. DEL (0x7f) is kept as is. (The renderer escapes straight into its output
/// through `escape_js_into`; this returning form is for tests.)
#[cfg(test)]
pub fn escape_javascript(s: &str) -> String {
    let mut out = String::new();
    if !escape_js_into(s, true, &mut out) {
        out.push_str(s);
    }
    out
}

/// Which bytes escapeJavaStyleString changes (true): controls below 32, `"`, `\`, `/`,
/// every byte >= 0x80 (the start of a non-ASCII character, escaped as its UTF-16 units),
/// and `'` when single quotes are escaped. DEL (0x7f) is kept.
const fn js_escaped_bytes(escape_single_quote: bool) -> [bool; 256] {
    let mut t = [true; 256];
    let mut b = 32;
    while b < 0x80 {
        t[b] = false;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[b'/' as usize] = true;
    t[b'\'' as usize] = escape_single_quote;
    t
}
static JS_ESCAPED: [bool; 256] = js_escaped_bytes(true);
static JS_ESCAPED_KEEP_QUOTE: [bool; 256] = js_escaped_bytes(false);

/// escapeJavaStyleString(s, escapeSingleQuote, escapeForwardSlash = true), appended to
/// `out`. Without the single quote this equals `escapeJavaScript(s).replaceAll("\\'","'")`
/// (the only `\'` pairs escapeJavaScript writes are escaped quotes: a backslash of the input
/// is doubled, so it is never followed by a bare quote).
///
/// Returns false, leaving `out` untouched, when `s` needs no escaping (the caller then uses
/// `s` itself, sharing it instead of copying). Runs of bytes kept as they are copied in one
/// piece. Only ASCII bytes are stepped over one at a time, and a non-ASCII character is
/// consumed whole, so every slice boundary below is a character boundary.
fn escape_js_into(s: &str, escape_single_quote: bool, out: &mut String) -> bool {
    let b = s.as_bytes();
    let table = if escape_single_quote {
        &JS_ESCAPED
    } else {
        &JS_ESCAPED_KEEP_QUOTE
    };
    let needs = |c: u8| table[c as usize];
    let Some(first) = b.iter().position(|&c| needs(c)) else {
        return false;
    };
    out.reserve(s.len() + s.len() / 4 + 8);
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let unit = |out: &mut String, u: u16| {
        out.push_str("\\u");
        for shift in [12, 8, 4, 0] {
            out.push(HEX[((u >> shift) & 0xf) as usize] as char);
        }
    };
    let mut run = 0; // start of the pending run of kept bytes
    let mut i = first;
    while i < b.len() {
        let c = b[i];
        if !needs(c) {
            i += 1;
            continue;
        }
        out.push_str(&s[run..i]);
        if c >= 0x80 {
            let ch = s[i..].chars().next().unwrap_or('\u{fffd}');
            let mut buf = [0u16; 2];
            for &u in ch.encode_utf16(&mut buf).iter() {
                unit(out, u);
            }
            i += ch.len_utf8();
        } else {
            match c {
                0x08 => out.push_str("\\b"),
                0x0a => out.push_str("\\n"),
                0x09 => out.push_str("\\t"),
                0x0c => out.push_str("\\f"),
                0x0d => out.push_str("\\r"),
                c if c < 32 => unit(out, c as u16),
                c => {
                    // ' " \ /
                    out.push('\\');
                    out.push(c as char);
                }
            }
            i += 1;
        }
        run = i;
    }
    out.push_str(&s[run..]);
    true
}

/// `java.net.URLEncoder.encode(s, "UTF-8")`: `a-zA-Z0-9.-*_` kept, space as `+`, every other
/// byte as `%XX` (upper case).
pub fn url_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'*' | b'_') {
            out.push(b as char);
        } else if b == b' ' {
            out.push('+');
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        }
    }
    out
}

/// `java.net.URLDecoder.decode(s, "UTF-8")`: `+` is a space, runs of `%XX` are UTF-8
/// (malformed bytes become U+FFFD); a bad `%` sequence is an error.
pub fn url_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(' ');
                i += 1;
            }
            b'%' => {
                let mut bytes = Vec::new();
                while i < b.len() && b[i] == b'%' {
                    if i + 2 >= b.len() {
                        return Err(
                            "URLDecoder: Incomplete trailing escape (%) pattern".to_string()
                        );
                    }
                    let h = std::str::from_utf8(&b[i + 1..i + 3])
                        .ok()
                        .and_then(java_parse_hex2);
                    match h {
                        Some(v) if v >= 0 => bytes.push(v as u8),
                        Some(_) => {
                            return Err("URLDecoder: Illegal hex characters in escape (%) pattern - negative value".to_string());
                        }
                        None => {
                            return Err("URLDecoder: Illegal hex characters in escape (%) pattern"
                                .to_string());
                        }
                    }
                    i += 3;
                }
                out.push_str(&String::from_utf8_lossy(&bytes));
            }
            _ => {
                let start = i;
                while i < b.len() && b[i] != b'+' && b[i] != b'%' {
                    i += 1;
                }
                out.push_str(&s[start..i]);
            }
        }
    }
    Ok(out)
}

/// Integer.parseInt(two chars, 16): an optional sign, then hex digits.
fn java_parse_hex2(h: &str) -> Option<i32> {
    let (neg, d) = match h.as_bytes().first()? {
        b'-' => (true, &h[1..]),
        b'+' => (false, &h[1..]),
        _ => (false, h),
    };
    if d.is_empty() || !d.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let v = i32::from_str_radix(d, 16).ok()?;
    Some(if neg { -v } else { v })
}

use base64::Engine as _;

fn b64_engine() -> base64::engine::GeneralPurpose {
    let cfg = base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    base64::engine::GeneralPurpose::new(&base64::alphabet::STANDARD, cfg)
}

/// `Base64.getEncoder().encodeToString(s.getBytes(UTF_8))`
pub fn base64_encode(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

/// `new String(Base64.getDecoder().decode(s), UTF_8)`
pub fn base64_decode(s: &str) -> Result<String, String> {
    let bytes = b64_engine()
        .decode(s.as_bytes())
        .map_err(|e| format!("base64Decode: {}", e))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_javascript_matches_commons_lang() {
        assert_eq!(escape_javascript("a'b\"c\\d/e"), "a\\'b\\\"c\\\\d\\/e");
        assert_eq!(
            escape_javascript("\u{8}\u{c}\n\r\t\u{1}\u{1f}\u{7f}"),
            "\\b\\f\\n\\r\\t\\u0001\\u001F\u{7f}"
        );
        assert_eq!(escape_javascript("é€😀"), "\\u00E9\\u20AC\\uD83D\\uDE00");
        assert_eq!(escape_javascript("plain text"), "plain text");
    }

    #[test]
    fn url_encoding_like_java() {
        assert_eq!(url_encode("a b*c~d/é"), "a+b*c%7Ed%2F%C3%A9");
        assert_eq!(url_decode("a+b%2F%C3%A9").unwrap(), "a b/é");
        assert!(url_decode("%").is_err());
        assert!(url_decode("%zz").is_err());
    }

    #[test]
    fn base64_like_java() {
        assert_eq!(base64_encode("héllo"), "aMOpbGxv");
        assert_eq!(base64_decode("aMOpbGxv").unwrap(), "héllo");
        assert_eq!(base64_decode("aGk").unwrap(), "hi");
        assert!(base64_decode("a").is_err());
    }

    #[test]
    fn context_numbers_are_typed() {
        let mut r = Request::new();
        r.set_context("requestTimeEpoch", "1700000000123");
        r.set_context("identity.sourceIp", "1.2.3.4");
        r.set_context("authorizer.claims.sub", "u1");
        let ctx = ContextValue::Map(r.context.clone());
        let ContextValue::Map(m) = &ctx else { panic!() };
        assert!(
            m.iter()
                .any(|(k, v)| k == "requestTimeEpoch" && *v == ContextValue::Long(1700000000123))
        );
    }
}
