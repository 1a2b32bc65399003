//! Java regular expressions (`java.util.regex.Pattern`) for `String.replaceAll`,
//! `replaceFirst`, `matches` and `split`, translated to `fancy-regex`, plus Java's
//! replacement-string syntax (`Matcher.appendReplacement`).
//!
//! # Supported Java regex features
//!
//! * literal characters; `\` before any non-alphanumeric character (`\.`, `\\`, `\'`, `\$`);
//!   `\Q...\E` quoting;
//! * escapes `\t \n \r \f \a \e \0ooo \xhh \x{h...} \uhhhh \cX`;
//! * `.` (any character except the line terminators `\n \r \u0085 \u2028 \u2029`, as in Java);
//! * predefined classes `\d \D \s \S \w \W` with Java's default ASCII meaning, `\h \H \v \V`,
//!   and `\R`;
//! * POSIX classes `\p{Lower} \p{Upper} \p{ASCII} \p{Alpha} \p{Digit} \p{Alnum} \p{Punct}
//!   \p{Graph} \p{Print} \p{Blank} \p{Cntrl} \p{XDigit} \p{Space}` (ASCII, as in Java) and
//!   Unicode general categories `\p{L}`, `\p{Lu}`, `\p{IsL}`... (and `\P{..}`);
//! * character classes `[abc]`, `[^abc]`, ranges `[a-z]`, with the escapes above inside;
//! * anchors `^` and `$` (without MULTILINE: `$` also matches before a final line
//!   terminator, as in Java), `\A \z \Z`, word boundaries `\b \B`;
//! * groups `(...)`, `(?:...)`, named `(?<name>...)`, lookahead `(?=...)` `(?!...)`,
//!   lookbehind `(?<=...)` `(?<!...)` (fixed length only), atomic `(?>...)`;
//! * alternation `|`; quantifiers `* + ? {n} {n,} {n,m}`, lazy (`*?`) and possessive (`*+`);
//! * back references `\1`...`\99` and `\k<name>`;
//! * replacement strings: `$n`, `${name}`, `\x` (literal x); an unmatched group adds nothing.
//!
//! # Rejected (an evaluation error, never a silent difference)
//!
//! * inline flags `(?i)`, `(?s)`, `(?m)`, `(?x)`, `(?u)`, `(?d)`, `(?U)` and `(?flags:...)`;
//! * class unions and intersections (`[a[b]]`, `[a-z&&[^e]]`), a `]` first in a class;
//! * `\G`, `\X`, `\N{...}`, `\b{g}`, `\p{javaLowerCase}`-style, `\p{InBlock}`,
//!   `\p{IsScript}` and other `\p` names not listed above;
//! * `{,n}` quantifiers and any escape of a letter not listed above.
//!
//! Differences that remain: `\b` uses Unicode word characters (Java: letters, digits and
//! `_` of any script, nearly the same); lookbehind must have a fixed length (Java allows
//! bounded length). A search that backtracks more than 1,000,000 steps fails with an
//! error instead of running on (Java would run, possibly for a very long time).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// A compiled Java pattern.
pub enum Pattern {
    /// No regex metacharacters: a plain substring search.
    Literal(String),
    Regex {
        re: fancy_regex::Regex,
        groups: usize,
        names: Vec<Option<String>>,
    },
}

/// One match: byte ranges of group 0..n (None for groups that did not take part).
pub struct Found {
    pub groups: Vec<Option<(usize, usize)>>,
}

impl Found {
    pub fn start(&self) -> usize {
        self.groups[0].map(|g| g.0).unwrap_or(0)
    }
    pub fn end(&self) -> usize {
        self.groups[0].map(|g| g.1).unwrap_or(0)
    }
}

const BACKTRACK_LIMIT: usize = 1_000_000;

/// A failed search, in words; running out of backtracking steps names the limit.
fn search_error(e: fancy_regex::Error) -> String {
    match e {
        fancy_regex::Error::RuntimeError(fancy_regex::RuntimeError::BacktrackLimitExceeded) => {
            format!("regex search failed: gave up after {BACKTRACK_LIMIT} backtracking steps")
        }
        e => format!("regex search failed: {e}"),
    }
}

/// Byte offset of the first occurrence of a short needle (cheaper than str::find's
/// two-way searcher setup for the few-byte patterns templates use).
fn find_literal(hay: &str, needle: &str) -> Option<usize> {
    let h = hay.as_bytes();
    let n = needle.as_bytes();
    if n.len() > 16 {
        return hay.find(needle);
    }
    let first = n[0];
    let mut i = 0;
    while i + n.len() <= h.len() {
        match h[i..h.len() - n.len() + 1].iter().position(|&b| b == first) {
            None => return None,
            Some(off) => {
                let p = i + off;
                if &h[p..p + n.len()] == n {
                    return Some(p);
                }
                i = p + 1;
            }
        }
    }
    None
}
const CACHE_MAX: usize = 256;

thread_local! {
    static CACHE: RefCell<HashMap<String, Rc<Pattern>>> = RefCell::new(HashMap::new());
    static LAST: RefCell<Option<(String, Rc<Pattern>)>> = const { RefCell::new(None) };
}

/// Compiles (or fetches from the per-thread cache) a Java regex.
pub fn compile(java: &str) -> Result<Rc<Pattern>, String> {
    if let Some(p) = LAST.with(|l| {
        l.borrow()
            .as_ref()
            .filter(|(k, _)| k == java)
            .map(|(_, p)| p.clone())
    }) {
        return Ok(p);
    }
    let p = compile_cached(java)?;
    LAST.with(|l| *l.borrow_mut() = Some((java.to_string(), p.clone())));
    Ok(p)
}

fn compile_cached(java: &str) -> Result<Rc<Pattern>, String> {
    if let Some(p) = CACHE.with(|c| c.borrow().get(java).cloned()) {
        return Ok(p);
    }
    let p = Rc::new(compile_uncached(java)?);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CACHE_MAX {
            c.clear();
        }
        c.insert(java.to_string(), p.clone());
    });
    Ok(p)
}

fn compile_uncached(java: &str) -> Result<Pattern, String> {
    let t = translate(java)?;
    if let Some(lit) = t.literal {
        return Ok(Pattern::Literal(lit));
    }
    let re = fancy_regex::RegexBuilder::new(&t.pattern)
        .backtrack_limit(BACKTRACK_LIMIT)
        .delegate_size_limit(8 << 20)
        .build()
        .map_err(|e| format!("invalid regex {:?}: {}", java, e))?;
    let groups = re.captures_len().saturating_sub(1);
    let names: Vec<Option<String>> = re.capture_names().map(|n| n.map(str::to_string)).collect();
    Ok(Pattern::Regex { re, groups, names })
}

impl Pattern {
    pub fn group_count(&self) -> usize {
        match self {
            Pattern::Literal(_) => 0,
            Pattern::Regex { groups, .. } => *groups,
        }
    }

    fn group_index(&self, name: &str) -> Option<usize> {
        match self {
            Pattern::Literal(_) => None,
            Pattern::Regex { names, .. } => names.iter().position(|n| n.as_deref() == Some(name)),
        }
    }

    /// The first match at or after byte position `from`.
    pub fn find_at(&self, text: &str, from: usize) -> Result<Option<Found>, String> {
        match self {
            Pattern::Literal(l) if l.is_empty() => Ok(Some(Found {
                groups: vec![Some((from, from))],
            })),
            Pattern::Literal(l) => Ok(find_literal(&text[from..], l).map(|i| Found {
                groups: vec![Some((from + i, from + i + l.len()))],
            })),
            Pattern::Regex { re, .. } => {
                let caps = re.captures_from_pos(text, from).map_err(search_error)?;
                Ok(caps.map(|c| Found {
                    groups: (0..c.len())
                        .map(|i| c.get(i).map(|m| (m.start(), m.end())))
                        .collect(),
                }))
            }
        }
    }

    /// All matches with Java's Matcher.find() progression (after an empty match the next
    /// search starts one character later).
    pub fn find_all(&self, text: &str, limit: usize) -> Result<Vec<Found>, String> {
        let mut out = Vec::new();
        let mut from = 0;
        while from <= text.len() && out.len() < limit {
            let Some(f) = self.find_at(text, from)? else {
                break;
            };
            let (s, e) = (f.start(), f.end());
            from = if s == e {
                e + text[e..].chars().next().map(char::len_utf8).unwrap_or(1)
            } else {
                e
            };
            out.push(f);
        }
        Ok(out)
    }
}

/// Compiles `\A(?:java)\z` for String.matches.
pub fn compile_full(java: &str) -> Result<Rc<Pattern>, String> {
    let key = format!("\u{0}full\u{0}{}", java);
    if let Some(p) = CACHE.with(|c| c.borrow().get(&key).cloned()) {
        return Ok(p);
    }
    let t = translate(java)?;
    let p = match t.literal {
        Some(l) => Pattern::Literal(l),
        None => {
            let re = fancy_regex::RegexBuilder::new(&format!("\\A(?:{})\\z", t.pattern))
                .backtrack_limit(BACKTRACK_LIMIT)
                .delegate_size_limit(8 << 20)
                .build()
                .map_err(|e| format!("invalid regex {:?}: {}", java, e))?;
            let groups = re.captures_len().saturating_sub(1);
            let names = re.capture_names().map(|n| n.map(str::to_string)).collect();
            Pattern::Regex { re, groups, names }
        }
    };
    let p = Rc::new(p);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CACHE_MAX {
            c.clear();
        }
        c.insert(key, p.clone());
    });
    Ok(p)
}

pub fn matches(java: &str, text: &str) -> Result<bool, String> {
    let p = compile_full(java)?;
    match &*p {
        Pattern::Literal(l) => Ok(l == text),
        Pattern::Regex { re, .. } => re.is_match(text).map_err(search_error),
    }
}

/// Expands a Java replacement string for one match.
fn expand(rep: &str, p: &Pattern, text: &str, f: &Found, out: &mut String) -> Result<(), String> {
    let b = rep.as_bytes();
    let mut i = 0;
    let mut lit_start = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                out.push_str(&rep[lit_start..i]);
                i += 1;
                if i >= b.len() {
                    return Err("character to be escaped is missing".to_string());
                }
                let ch = rep[i..].chars().next().unwrap_or('\\');
                out.push(ch);
                i += ch.len_utf8();
                lit_start = i;
            }
            b'$' => {
                out.push_str(&rep[lit_start..i]);
                i += 1;
                if i >= b.len() {
                    return Err("Illegal group reference: group index is missing".to_string());
                }
                let g = if b[i] == b'{' {
                    i += 1;
                    let s = i;
                    while i < b.len() && b[i].is_ascii_alphanumeric() {
                        i += 1;
                    }
                    if i == s {
                        return Err("named capturing group has 0 length name".to_string());
                    }
                    if i >= b.len() || b[i] != b'}' {
                        return Err("named capturing group is missing trailing '}'".to_string());
                    }
                    let name = &rep[s..i];
                    if !name.as_bytes()[0].is_ascii_alphabetic() {
                        return Err("capturing group name {".to_string()
                            + name
                            + "} starts with digit character");
                    }
                    i += 1;
                    p.group_index(name)
                        .ok_or_else(|| format!("No group with name {{{}}}", name))?
                } else {
                    if !b[i].is_ascii_digit() {
                        return Err("Illegal group reference".to_string());
                    }
                    let mut g = (b[i] - b'0') as usize;
                    i += 1;
                    if g > p.group_count() {
                        return Err(format!("No group {}", g));
                    }
                    while i < b.len() && b[i].is_ascii_digit() {
                        let ng = g * 10 + (b[i] - b'0') as usize;
                        if ng > p.group_count() {
                            break;
                        }
                        g = ng;
                        i += 1;
                    }
                    g
                };
                if let Some(Some((s, e))) = f.groups.get(g) {
                    out.push_str(&text[*s..*e]);
                }
                lit_start = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&rep[lit_start..]);
    Ok(())
}

/// String.replaceAll / replaceFirst.
#[cfg(test)]
pub fn replace(
    text: &str,
    java_regex: &str,
    rep: &str,
    first_only: bool,
) -> Result<String, String> {
    Ok(replace_opt(text, java_regex, rep, first_only)?.unwrap_or_else(|| text.to_string()))
}

/// Like [`replace`]; `None` when nothing matched (the text is unchanged).
pub fn replace_opt(
    text: &str,
    java_regex: &str,
    rep: &str,
    first_only: bool,
) -> Result<Option<String>, String> {
    let p = compile(java_regex)?;
    // fast path: literal pattern and literal replacement
    if let Pattern::Literal(l) = &*p
        && !rep.as_bytes().iter().any(|&b| b == b'\\' || b == b'$')
        && !l.is_empty()
    {
        if find_literal(text, l).is_none() {
            return Ok(None);
        }
        if first_only {
            return Ok(Some(text.replacen(l.as_str(), rep, 1)));
        }
        let n = text.matches(l.as_str()).count();
        if rep.len() > l.len() && text.len() + n * (rep.len() - l.len()) > super::value::MAX_STRING
        {
            return Err(format!(
                "string longer than {} bytes",
                super::value::MAX_STRING
            ));
        }
        return Ok(Some(text.replace(l.as_str(), rep)));
    }
    let found = p.find_all(text, if first_only { 1 } else { usize::MAX })?;
    if found.is_empty() {
        return Ok(None);
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for f in &found {
        out.push_str(&text[last..f.start()]);
        expand(rep, &p, text, f, &mut out)?;
        super::value::check_size(&out)?;
        last = f.end();
    }
    out.push_str(&text[last..]);
    Ok(Some(out))
}

/// String.split(regex, limit) (Java 8+ semantics).
pub fn split(text: &str, java_regex: &str, limit: i32) -> Result<Vec<String>, String> {
    let p = compile(java_regex)?;
    let match_limited = limit > 0;
    let mut list: Vec<String> = Vec::new();
    let mut index = 0;
    let mut from = 0;
    while from <= text.len() {
        let Some(f) = p.find_at(text, from)? else {
            break;
        };
        let (s, e) = (f.start(), f.end());
        from = if s == e {
            e + text[e..].chars().next().map(char::len_utf8).unwrap_or(1)
        } else {
            e
        };
        if !match_limited || (list.len() as i64) < limit as i64 - 1 {
            if index == 0 && index == s && s == e {
                continue;
            }
            list.push(text[index..s].to_string());
            index = e;
        } else if list.len() as i64 == limit as i64 - 1 {
            list.push(text[index..].to_string());
            index = e;
            break;
        }
    }
    if index == 0 {
        return Ok(vec![text.to_string()]);
    }
    if !match_limited || (list.len() as i64) < limit as i64 {
        list.push(text[index..].to_string());
    }
    if limit == 0 {
        while list.last().is_some_and(|s| s.is_empty()) {
            list.pop();
        }
    }
    Ok(list)
}

// ---------------------------------------------------------------------- translation

struct Translated {
    pattern: String,
    /// Set when the pattern matches exactly this string and nothing else.
    literal: Option<String>,
}

const LINE_TERMS: &str = "\\n\\r\\x{85}\\x{2028}\\x{2029}";

fn push_lit_char(out: &mut String, c: char) {
    if c.is_ascii_alphanumeric() || c == ' ' || c == '_' || !c.is_ascii() && !c.is_control() {
        out.push(c);
    } else {
        out.push_str(&format!("\\x{{{:X}}}", c as u32));
    }
}

fn unsupported(what: &str) -> String {
    format!("unsupported Java regex feature: {}", what)
}

fn posix_class(name: &str) -> Option<&'static str> {
    Some(match name {
        "Lower" => "a-z",
        "Upper" => "A-Z",
        "ASCII" => "\\x00-\\x7F",
        "Alpha" => "a-zA-Z",
        "Digit" => "0-9",
        "Alnum" => "a-zA-Z0-9",
        "Punct" => "!-/:-@\\[-`{-~",
        "Graph" => "!-~",
        "Print" => " -~",
        "Blank" => " \\t",
        "Cntrl" => "\\x00-\\x1F\\x7F",
        "XDigit" => "0-9a-fA-F",
        "Space" => " \\t\\n\\x0B\\f\\r",
        _ => return None,
    })
}

const GENERAL_CATEGORIES: &[&str] = &[
    "L", "Lu", "Ll", "Lt", "Lm", "Lo", "M", "Mn", "Mc", "Me", "N", "Nd", "Nl", "No", "P", "Pc",
    "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "S", "Sm", "Sc", "Sk", "So", "Z", "Zs", "Zl", "Zp", "C",
    "Cc", "Cf", "Co", "Cs", "Cn",
];

/// What an escape means: a class body usable inside `[...]`, or a complete atom.
enum Esc {
    /// A single literal character.
    Char(char),
    /// Class content (for use inside brackets) and whether it is negated.
    Class(String, bool),
    /// An atom only valid outside classes (anchors, backrefs).
    Atom(String),
}

fn hex_val(s: &str) -> Option<u32> {
    u32::from_str_radix(s, 16).ok()
}

/// Parses the escape at `chars[i]` (just after the backslash). Returns the meaning and the
/// index after it.
fn parse_escape(chars: &[char], i: usize, in_class: bool) -> Result<(Esc, usize), String> {
    let c = *chars.get(i).ok_or("unexpected trailing backslash")?;
    let ascii_class = |body: &str, neg: bool| Ok((Esc::Class(body.to_string(), neg), i + 1));
    match c {
        't' => Ok((Esc::Char('\t'), i + 1)),
        'n' => Ok((Esc::Char('\n'), i + 1)),
        'r' => Ok((Esc::Char('\r'), i + 1)),
        'f' => Ok((Esc::Char('\u{c}'), i + 1)),
        'a' => Ok((Esc::Char('\u{7}'), i + 1)),
        'e' => Ok((Esc::Char('\u{1b}'), i + 1)),
        'd' => ascii_class("0-9", false),
        'D' => ascii_class("0-9", true),
        's' => ascii_class(" \\t\\n\\x0B\\f\\r", false),
        'S' => ascii_class(" \\t\\n\\x0B\\f\\r", true),
        'w' => ascii_class("a-zA-Z_0-9", false),
        'W' => ascii_class("a-zA-Z_0-9", true),
        'h' => ascii_class(
            " \\t\\xA0\\x{1680}\\x{180e}\\x{2000}-\\x{200a}\\x{202f}\\x{205f}\\x{3000}",
            false,
        ),
        'H' => ascii_class(
            " \\t\\xA0\\x{1680}\\x{180e}\\x{2000}-\\x{200a}\\x{202f}\\x{205f}\\x{3000}",
            true,
        ),
        'v' => ascii_class("\\n\\x0B\\f\\r\\x{85}\\x{2028}\\x{2029}", false),
        'V' => ascii_class("\\n\\x0B\\f\\r\\x{85}\\x{2028}\\x{2029}", true),
        '0' => {
            // \0n, \0nn, \0mnn (m <= 3)
            let mut j = i + 1;
            let mut v: u32 = 0;
            let mut n = 0;
            while j < chars.len() && n < 3 && ('0'..='7').contains(&chars[j]) {
                let nv = v * 8 + (chars[j] as u32 - '0' as u32);
                if nv > 0o377 {
                    break;
                }
                v = nv;
                j += 1;
                n += 1;
            }
            if n == 0 {
                return Err("Illegal octal escape sequence".to_string());
            }
            Ok((Esc::Char(char::from_u32(v).unwrap_or('\0')), j))
        }
        'x' => {
            if chars.get(i + 1) == Some(&'{') {
                let end = (i + 2..chars.len())
                    .find(|&k| chars[k] == '}')
                    .ok_or("Unclosed hexadecimal escape sequence")?;
                let h: String = chars[i + 2..end].iter().collect();
                let v = hex_val(&h).ok_or("Illegal hexadecimal escape sequence")?;
                let ch = char::from_u32(v).ok_or("Hexadecimal codepoint is too big")?;
                Ok((Esc::Char(ch), end + 1))
            } else {
                let h: String = chars
                    .get(i + 1..i + 3)
                    .ok_or("Illegal hexadecimal escape sequence")?
                    .iter()
                    .collect();
                let v = hex_val(&h)
                    .filter(|_| h.len() == 2)
                    .ok_or("Illegal hexadecimal escape sequence")?;
                Ok((Esc::Char(char::from_u32(v).unwrap_or('\0')), i + 3))
            }
        }
        'u' => {
            let h: String = chars
                .get(i + 1..i + 5)
                .ok_or("Illegal Unicode escape sequence")?
                .iter()
                .collect();
            let v = hex_val(&h)
                .filter(|_| h.chars().all(|c| c.is_ascii_hexdigit()))
                .ok_or("Illegal Unicode escape sequence")?;
            // a surrogate pair written as two \u escapes
            if (0xD800..0xDC00).contains(&v)
                && chars.get(i + 5) == Some(&'\\')
                && chars.get(i + 6) == Some(&'u')
            {
                let h2: String = chars.get(i + 7..i + 11).unwrap_or(&[]).iter().collect();
                if let Some(lo) = hex_val(&h2).filter(|v| (0xDC00..0xE000).contains(v)) {
                    let cp = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
                    if let Some(ch) = char::from_u32(cp) {
                        return Ok((Esc::Char(ch), i + 11));
                    }
                }
            }
            let ch = char::from_u32(v).ok_or_else(|| unsupported("lone surrogate escape"))?;
            Ok((Esc::Char(ch), i + 5))
        }
        'c' => {
            let x = *chars.get(i + 1).ok_or("Illegal control escape sequence")?;
            Ok((
                Esc::Char(char::from_u32((x as u32) ^ 64).unwrap_or('\0')),
                i + 2,
            ))
        }
        'p' | 'P' => {
            let neg = c == 'P';
            let (name, next) = if chars.get(i + 1) == Some(&'{') {
                let end = (i + 2..chars.len())
                    .find(|&k| chars[k] == '}')
                    .ok_or("Unclosed character family")?;
                (chars[i + 2..end].iter().collect::<String>(), end + 1)
            } else {
                (
                    chars
                        .get(i + 1)
                        .ok_or("Illegal character family")?
                        .to_string(),
                    i + 2,
                )
            };
            if let Some(body) = posix_class(&name) {
                return Ok((Esc::Class(body.to_string(), neg), next));
            }
            let cat = name.strip_prefix("Is").unwrap_or(&name);
            let cat = cat
                .strip_prefix("general_category=")
                .or_else(|| cat.strip_prefix("gc="))
                .unwrap_or(cat);
            if GENERAL_CATEGORIES.contains(&cat) {
                return Ok((Esc::Class(format!("\\p{{{}}}", cat), neg), next));
            }
            Err(unsupported(&format!("\\{}{{{}}}", c, name)))
        }
        'b' if !in_class => {
            if chars.get(i + 1) == Some(&'{') {
                return Err(unsupported("\\b{g}"));
            }
            Ok((Esc::Atom("\\b".to_string()), i + 1))
        }
        'B' if !in_class => Ok((Esc::Atom("\\B".to_string()), i + 1)),
        'A' if !in_class => Ok((Esc::Atom("\\A".to_string()), i + 1)),
        'z' if !in_class => Ok((Esc::Atom("\\z".to_string()), i + 1)),
        'Z' if !in_class => Ok((
            Esc::Atom(format!("(?=(?:\\r\\n|[{}])?\\z)", LINE_TERMS)),
            i + 1,
        )),
        'R' if !in_class => Ok((
            Esc::Atom("(?:\\r\\n|[\\n\\x0B\\f\\r\\x{85}\\x{2028}\\x{2029}])".to_string()),
            i + 1,
        )),
        'k' if !in_class => {
            if chars.get(i + 1) != Some(&'<') {
                return Err("\\k is not followed by '<' for named capturing group".to_string());
            }
            let end = (i + 2..chars.len())
                .find(|&k| chars[k] == '>')
                .ok_or("named capturing group is missing trailing '>'")?;
            let name: String = chars[i + 2..end].iter().collect();
            Ok((Esc::Atom(format!("\\k<{}>", name)), end + 1))
        }
        '1'..='9' if !in_class => {
            // back reference; further digits are taken while they still name a group
            // (checked later by fancy-regex; we take up to two digits)
            let mut j = i + 1;
            let mut s = c.to_string();
            if j < chars.len() && chars[j].is_ascii_digit() {
                s.push(chars[j]);
                j += 1;
            }
            Ok((Esc::Atom(format!("\\{}", s)), j))
        }
        c if c.is_ascii_alphanumeric() => Err(unsupported(&format!("\\{}", c))),
        c => Ok((Esc::Char(c), i + 1)),
    }
}

fn class_escape(c: char) -> String {
    let mut s = String::new();
    if c.is_ascii_alphanumeric() || (!c.is_ascii() && !c.is_control()) {
        s.push(c);
    } else {
        s.push_str(&format!("\\x{{{:X}}}", c as u32));
    }
    s
}

fn translate(java: &str) -> Result<Translated, String> {
    let chars: Vec<char> = java.chars().collect();
    let mut out = String::with_capacity(java.len() * 2);
    let mut literal = String::new();
    let mut is_literal = true;
    let mut i = 0;
    let n = chars.len();
    let mut open_groups: i32 = 0;
    while i < n {
        let c = chars[i];
        match c {
            '\\' => {
                if chars.get(i + 1) == Some(&'Q') {
                    let start = i + 2;
                    let mut end = start;
                    while end < n && !(chars[end] == '\\' && chars.get(end + 1) == Some(&'E')) {
                        end += 1;
                    }
                    for &q in &chars[start..end] {
                        push_lit_char(&mut out, q);
                        literal.push(q);
                    }
                    i = if end < n { end + 2 } else { n };
                    continue;
                }
                let (esc, next) = parse_escape(&chars, i + 1, false)?;
                match esc {
                    Esc::Char(ch) => {
                        push_lit_char(&mut out, ch);
                        literal.push(ch);
                    }
                    Esc::Class(body, neg) => {
                        is_literal = false;
                        out.push('[');
                        if neg {
                            out.push('^');
                        }
                        out.push_str(&body);
                        out.push(']');
                    }
                    Esc::Atom(a) => {
                        is_literal = false;
                        out.push_str(&a);
                    }
                }
                i = next;
            }
            '[' => {
                is_literal = false;
                i = translate_class(&chars, i, &mut out)?;
            }
            '.' => {
                is_literal = false;
                out.push_str(&format!("[^{}]", LINE_TERMS));
                i += 1;
            }
            '$' => {
                is_literal = false;
                out.push_str(&format!("(?=(?:\\r\\n|[{}])?\\z)", LINE_TERMS));
                i += 1;
            }
            '(' => {
                is_literal = false;
                open_groups += 1;
                if chars.get(i + 1) == Some(&'?') {
                    let rest: String = chars[i + 2..n.min(i + 4)].iter().collect();
                    if rest.starts_with(':')
                        || rest.starts_with('=')
                        || rest.starts_with('!')
                        || rest.starts_with('>')
                    {
                        out.push_str("(?");
                        out.push(chars[i + 2]);
                        i += 3;
                    } else if rest.starts_with("<=") || rest.starts_with("<!") {
                        out.push_str("(?");
                        out.push_str(&rest[..2]);
                        i += 4;
                    } else if rest.starts_with('<') {
                        // named group
                        let end = (i + 3..n)
                            .find(|&k| chars[k] == '>')
                            .ok_or("named capturing group is missing trailing '>'")?;
                        let name: String = chars[i + 3..end].iter().collect();
                        if name.is_empty()
                            || !name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                            || !name.chars().all(|c| c.is_ascii_alphanumeric())
                        {
                            return Err(format!("bad named group name {:?}", name));
                        }
                        out.push_str(&format!("(?<{}>", name));
                        i = end + 1;
                    } else {
                        return Err(unsupported("inline flags (?...)"));
                    }
                } else {
                    out.push('(');
                    i += 1;
                }
            }
            ')' => {
                is_literal = false;
                open_groups -= 1;
                if open_groups < 0 {
                    return Err("Unmatched closing ')'".to_string());
                }
                out.push(')');
                i += 1;
            }
            '{' => {
                is_literal = false;
                // a quantifier {n}, {n,}, {n,m}
                let end = (i + 1..n)
                    .find(|&k| chars[k] == '}')
                    .ok_or("Illegal repetition")?;
                let body: String = chars[i + 1..end].iter().collect();
                let ok = {
                    let mut parts = body.splitn(2, ',');
                    let a = parts.next().unwrap_or("");
                    let b = parts.next();
                    !a.is_empty()
                        && a.chars().all(|c| c.is_ascii_digit())
                        && b.is_none_or(|b| b.chars().all(|c| c.is_ascii_digit()))
                };
                if !ok {
                    return Err(format!("Illegal repetition {{{}}}", body));
                }
                out.push('{');
                out.push_str(&body);
                out.push('}');
                i = end + 1;
            }
            '*' | '+' | '?' | '|' | '^' => {
                is_literal = false;
                out.push(c);
                i += 1;
            }
            ']' | '}' => {
                push_lit_char(&mut out, c);
                literal.push(c);
                i += 1;
            }
            _ => {
                push_lit_char(&mut out, c);
                literal.push(c);
                i += 1;
            }
        }
    }
    if open_groups > 0 {
        return Err("Unclosed group".to_string());
    }
    Ok(Translated {
        pattern: out,
        literal: if is_literal { Some(literal) } else { None },
    })
}

/// Translates `[...]` starting at `chars[i] == '['`; returns the index after `]`.
fn translate_class(chars: &[char], i: usize, out: &mut String) -> Result<usize, String> {
    let n = chars.len();
    let mut j = i + 1;
    out.push('[');
    if chars.get(j) == Some(&'^') {
        out.push('^');
        j += 1;
    }
    if chars.get(j) == Some(&']') {
        return Err(unsupported("']' first in a character class"));
    }
    let mut empty = true;
    // extra negated classes inside a class (\D, \P{..}) need a union: [^...] inside [...]
    while j < n {
        let c = chars[j];
        match c {
            ']' => {
                if empty {
                    return Err("Unclosed character class".to_string());
                }
                out.push(']');
                return Ok(j + 1);
            }
            '[' => return Err(unsupported("nested character class or union")),
            '&' if chars.get(j + 1) == Some(&'&') => {
                return Err(unsupported("character class intersection &&"));
            }
            '\\' => {
                if chars.get(j + 1) == Some(&'Q') {
                    let start = j + 2;
                    let mut end = start;
                    while end < n && !(chars[end] == '\\' && chars.get(end + 1) == Some(&'E')) {
                        end += 1;
                    }
                    for &q in &chars[start..end] {
                        out.push_str(&class_escape(q));
                    }
                    j = if end < n { end + 2 } else { n };
                    empty = false;
                    continue;
                }
                let (esc, next) = parse_escape(chars, j + 1, true)?;
                match esc {
                    Esc::Char(ch) => out.push_str(&class_escape(ch)),
                    Esc::Class(body, neg) => {
                        if neg {
                            out.push_str("[^");
                            out.push_str(&body);
                            out.push(']');
                        } else {
                            out.push_str(&body);
                        }
                    }
                    Esc::Atom(_) => return Err(unsupported("anchor or back reference in a class")),
                }
                j = next;
                empty = false;
            }
            '-' => {
                out.push_str("\\-");
                j += 1;
                empty = false;
            }
            _ => {
                // a range a-z keeps its '-'
                out.push_str(&class_escape(c));
                if chars.get(j + 1) == Some(&'-') && chars.get(j + 2).is_some_and(|&d| d != ']') {
                    let d = chars[j + 2];
                    if d == '\\' || d == '[' {
                        return Err(unsupported("escaped range end in a class"));
                    }
                    if (d as u32) < (c as u32) {
                        return Err(format!("Illegal character range {}-{}", c, d));
                    }
                    out.push('-');
                    out.push_str(&class_escape(d));
                    j += 3;
                } else {
                    j += 1;
                }
                empty = false;
            }
        }
    }
    Err("Unclosed character class".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_fast_path() {
        assert!(matches!(&*compile("\\\\'").unwrap(), Pattern::Literal(l) if l == "\\'"));
        assert_eq!(replace("a\\'b\\'", "\\\\'", "'", false).unwrap(), "a'b'");
    }

    #[test]
    fn java_semantics() {
        assert_eq!(replace("abc", "x*", "-", false).unwrap(), "-a-b-c-");
        assert_eq!(replace("a", "a*", "-", false).unwrap(), "--");
        assert_eq!(
            replace("a1b22", "\\d+", "<$0>", false).unwrap(),
            "a<1>b<22>"
        );
        assert_eq!(
            replace("john smith", "(\\w+) (\\w+)", "$2 $1", false).unwrap(),
            "smith john"
        );
        assert_eq!(replace("x", "x", "\\$", false).unwrap(), "$");
        assert!(replace("x", "x", "$2", false).is_err());
        assert!(replace("x", "x", "\\", false).is_err());
        assert!(replace("x", "(?i)x", "y", false).is_err());
        assert_eq!(replace("a.b", ".", "-", false).unwrap(), "---");
        assert_eq!(replace("a\nb", ".", "-", false).unwrap(), "-\n-");
        assert_eq!(replace("ab\n", "b$", "X", false).unwrap(), "aX\n");
        assert_eq!(split("a,b,,", ",", 0).unwrap(), vec!["a", "b"]);
        assert_eq!(split("a,b,,", ",", -1).unwrap(), vec!["a", "b", "", ""]);
        assert_eq!(split("abc", "", 0).unwrap(), vec!["a", "b", "c"]);
        assert_eq!(split("a,b,c", ",", 2).unwrap(), vec!["a", "b,c"]);
        assert!(matches("[a-z]+", "abc").unwrap());
        assert!(!matches("[a-z]+", "abc1").unwrap());
    }

    #[test]
    fn catastrophic_backtracking_is_bounded() {
        // Both patterns take exponential time on a naive backtracker, given 40 a's and a
        // mismatch (Java runs them for ever). Each runs under a deadline, so a search
        // that no longer stops fails the test instead of stalling it.
        let input = "a".repeat(40) + "!";
        let run = |pattern: &'static str| {
            let input = input.clone();
            crate::vtl::within_deadline(pattern, move || replace(&input, pattern, "x", false))
        };
        // fancy-regex hands `(a+)+` to the regex crate (linear) and checks the lookahead
        // that Java's `$` becomes: no match, the text unchanged.
        assert_eq!(run("(a+)+$"), Ok(input.clone()));
        // A back reference needs the backtracking VM: the limit ends the search with an
        // error that names it.
        assert_eq!(
            run("(a|aa)+\\1b"),
            Err(format!(
                "regex search failed: gave up after {BACKTRACK_LIMIT} backtracking steps"
            ))
        );
        // The same patterns match as Java's do where there is something to match.
        assert_eq!(replace("aaa", "(a+)+$", "x", false).unwrap(), "x");
        assert_eq!(replace("aaab", "(a|aa)+\\1b", "x", false).unwrap(), "x");
    }
}
