r"""An independent renderer for API Gateway mapping templates, for tests.

Two suites use it: tests/templates (the shipped templates through this renderer and the
emulator's DynamoDB) and tests/vtl (the differential tests of wsconn's own engine, which
also need $input.body/json/path, $util.parseJson/urlEncode/urlDecode/base64Encode/
base64Decode, $stageVariables, and render_case() taking the complete $context as dotted
pairs).

It shares no code with wsconn (the Rust project): it fills the deploy-time
placeholders itself and renders with `airspeed` (PyPI package `airspeed-ext`),
after giving the template API Gateway's objects with Java semantics:

* ``$context``      -- a Java-like map (connectionId, requestTimeEpoch, connectedAt,
                       stage, domainName, apiId, identity.sourceIp, identity.userAgent, ...).
* ``$input``        -- ``$input.params()`` returns a map with ``path``, ``querystring``
                       and ``header`` maps; ``$input.params('x')`` looks ``x`` up in path,
                       then query string, then header (API Gateway's documented order).
                       Printing a map writes Java's ``{k=v, k2=v2}`` (AbstractMap.toString).
* ``$util``         -- ``escapeJavaScript`` with Apache Commons Lang 2
                       ``StringEscapeUtils.escapeJavaScript`` semantics, returning a string
                       that has Java's ``replaceAll`` (Java regex and replacement syntax).
* ``$stageVariables`` -- an empty map.

Velocity facts this relies on (and that airspeed already follows): string literals
do no backslash processing, so the template text ``"\\'"`` is the 3-character Java
string ``\\'``, i.e. the Java regex ``\\'`` that matches a backslash followed by a
single quote -- which is why API Gateway's documented
``$util.escapeJavaScript(x).replaceAll("\\'","'")`` works.

One airspeed behaviour is corrected for the Java objects defined here: airspeed
resolves ``$map.get($k)`` by trying the map ENTRY "get" first, so a header named
``get`` (or ``keySet``...) would break the call. In Velocity ``x.name(args)`` is
always a method call; a small wrapper restores that for these classes only.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from typing import Any, Mapping

import airspeed
from airspeed import operators as _ops

__all__ = [
    "PLACEHOLDERS",
    "JavaMap",
    "JavaString",
    "escape_javascript",
    "java_replace_all",
    "make_context",
    "render",
    "render_raw",
]

TABLE_TOKEN = "@@TABLE_NAME@@"
TTL_TOKEN = "@@CONNECTION_TTL_SECONDS@@"
PLACEHOLDERS = (TABLE_TOKEN, TTL_TOKEN)
_ANY_TOKEN = re.compile(r"@@[A-Za-z0-9_]+@@")
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")


# --------------------------------------------------------------------------
# Java regex / replacement semantics for String.replaceAll
# --------------------------------------------------------------------------

# Java's "." excludes every line terminator, not only "\n" (Pattern docs, "Line terminators").
_JAVA_DOT = "[^\\n\\r\\u0085\\u2028\\u2029]"
# Escapes whose meaning is the same in Java and in Python `re` (with re.ASCII, since
# Java's \d \w \s \b are ASCII-only unless UNICODE_CHARACTER_CLASS is set).
_SAME_ESCAPES = set("dDsSwWbBAtnrfa")


def _java_regex_to_python(pattern: str) -> str:
    """Translate a Java regex into an equivalent Python `re` pattern.

    Covers what a mapping template plausibly uses; any Java-only construct
    raises NotImplementedError instead of silently matching differently.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                raise ValueError("Java regex: unexpected trailing backslash")
            d = pattern[i + 1]
            if d == "Q":  # \Q...\E quotes everything up to \E (or the end)
                end = pattern.find("\\E", i + 2)
                end = n if end < 0 else end
                out.append(re.escape(pattern[i + 2:end]))
                i = end + 2
                continue
            if d in "123456789":
                if in_class:
                    raise NotImplementedError("Java regex: digit escape inside a class")
                out.append("\\" + d)  # back reference
            elif d in _SAME_ESCAPES:
                out.append("\\" + d)
            elif d == "e":
                out.append("\\x1b")
            elif d == "z" and not in_class:
                out.append("\\Z")
            elif d == "Z" and not in_class:
                out.append("(?=[\\n\\r\\u0085\\u2028\\u2029]?\\Z)")
            elif d == "x" and pattern.startswith("{", i + 2):
                end = pattern.index("}", i + 3)
                out.append("\\U%08X" % int(pattern[i + 3:end], 16))
                i = end + 1
                continue
            elif d in "xu0":
                out.append("\\" + d)  # \xhh, \uhhhh: same in Python
            elif d.isalpha():
                raise NotImplementedError("Java regex escape \\%s is not supported here" % d)
            else:
                out.append(re.escape(d))  # \ + non-alphanumeric = that literal char
            i += 2
            continue
        if in_class:
            if c == "[" or pattern.startswith("&&", i):
                raise NotImplementedError("Java regex: nested class / class intersection")
            if c == "]":
                in_class = False
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":  # a leading ']' is literal in Java
                out.append("\\]")
                i += 1
            continue
        if c == ".":
            out.append(_JAVA_DOT)
        elif pattern.startswith("(?<", i) and not pattern.startswith(("(?<=", "(?<!"), i):
            out.append("(?P<")  # named group
            i += 3
            continue
        else:
            out.append(c)
        i += 1
    if in_class:
        raise ValueError("Java regex: unclosed character class")
    return "".join(out)


def _java_replacement(replacement: str, match: re.Match) -> str:
    """Expand a Java Matcher replacement string: `\\x` is a literal x, `$n` / `${name}`
    are groups (a group that did not take part adds nothing)."""
    out: list[str] = []
    i, n = 0, len(replacement)
    group_count = match.re.groups
    while i < n:
        c = replacement[i]
        if c == "\\":
            if i + 1 >= n:
                raise ValueError("character to be escaped is missing")
            out.append(replacement[i + 1])
            i += 2
        elif c == "$":
            i += 1
            if i >= n:
                raise ValueError("Illegal group reference: group index is missing")
            if replacement[i] == "{":
                end = replacement.find("}", i)
                if end < 0:
                    raise ValueError("named capturing group is missing trailing '}'")
                out.append(match.group(replacement[i + 1:end]) or "")
                i = end + 1
                continue
            if not replacement[i].isdigit():
                raise ValueError("Illegal group reference")
            ref = int(replacement[i])
            i += 1
            # Java keeps taking digits while the number is still a valid group.
            while i < n and replacement[i].isdigit() and ref * 10 + int(replacement[i]) <= group_count:
                ref = ref * 10 + int(replacement[i])
                i += 1
            if ref > group_count:
                raise IndexError("No group %d" % ref)
            out.append(match.group(ref) or "")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def java_replace_all(s: str, regex: str, replacement: str) -> "JavaString":
    """Java's String.replaceAll(regex, replacement)."""
    compiled = re.compile(_java_regex_to_python(str(regex)), re.ASCII)
    return JavaString(compiled.sub(lambda m: _java_replacement(str(replacement), m), str(s)))


# --------------------------------------------------------------------------
# Java-like values
# --------------------------------------------------------------------------

def _java_str(value: Any) -> str:
    """String.valueOf / toString for the values a template can print."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _JavaObject:
    """Marker: `x.name(args)` on these is always a Java method call (see module doc)."""

    JAVA_METHODS: frozenset = frozenset()


class JavaString(str, _JavaObject):
    """A java.lang.String: a Python str with the Java methods a template may call."""

    JAVA_METHODS = frozenset({
        "replaceAll", "replaceFirst", "replace", "matches", "length", "isEmpty",
        "toString", "equals", "contains", "startsWith", "endsWith", "trim",
    })

    def replaceAll(self, regex, replacement):  # noqa: N802 (Java name)
        return java_replace_all(self, regex, replacement)

    def replaceFirst(self, regex, replacement):  # noqa: N802
        compiled = re.compile(_java_regex_to_python(str(regex)), re.ASCII)
        return JavaString(compiled.sub(lambda m: _java_replacement(str(replacement), m), str(self), count=1))

    def replace(self, target, replacement):  # literal CharSequence replace
        return JavaString(str.replace(self, str(target), str(replacement)))

    def matches(self, regex):
        return re.fullmatch(_java_regex_to_python(str(regex)), str(self), re.ASCII) is not None

    def length(self):
        return len(str(self).encode("utf-16-le", "surrogatepass")) // 2  # UTF-16 code units

    def isEmpty(self):  # noqa: N802
        return len(self) == 0

    def toString(self):  # noqa: N802
        return self

    def equals(self, other):
        return isinstance(other, str) and str(self) == str(other)

    def contains(self, other):
        return str(other) in str(self)

    def startsWith(self, prefix):  # noqa: N802
        return str(self).startswith(str(prefix))

    def endsWith(self, suffix):  # noqa: N802
        return str(self).endswith(str(suffix))

    def trim(self):
        # Java trims every char <= U+0020 from both ends.
        s = str(self)
        start, end = 0, len(s)
        while start < end and s[start] <= " ":
            start += 1
        while end > start and s[end - 1] <= " ":
            end -= 1
        return JavaString(s[start:end])


class JavaList(list, _JavaObject):
    """A java.util.List / Set view: prints as `[a, b]`."""

    JAVA_METHODS = frozenset({"size", "isEmpty", "get", "contains", "toString"})

    def __str__(self):
        return "[" + ", ".join(_java_str(v) for v in self) + "]"

    def size(self):
        return len(self)

    def isEmpty(self):  # noqa: N802
        return len(self) == 0

    def get(self, index):
        return self[index]

    def contains(self, value):
        return value in self

    def toString(self):  # noqa: N802
        return JavaString(str(self))


class JavaMapEntry(_JavaObject):
    JAVA_METHODS = frozenset({"getKey", "getValue", "toString"})

    def __init__(self, key, value):
        self.key = key
        self.value = value

    def getKey(self):  # noqa: N802
        return self.key

    def getValue(self):  # noqa: N802
        return self.value

    def __str__(self):
        return "%s=%s" % (_java_str(self.key), _java_str(self.value))

    def toString(self):  # noqa: N802
        return JavaString(str(self))


class JavaMap(dict, _JavaObject):
    """A java.util.Map (insertion-ordered). Printing it gives Java's `{k=v, k2=v2}`,
    which is exactly the unescaped, unparseable form the original pattern stored."""

    JAVA_METHODS = frozenset({
        "get", "keySet", "values", "entrySet", "size", "isEmpty", "containsKey", "toString",
    })

    def __str__(self):
        return "{" + ", ".join("%s=%s" % (_java_str(k), _java_str(v)) for k, v in self.items()) + "}"

    __repr__ = dict.__repr__

    def get(self, key, default=None):
        return dict.get(self, key, default)

    def keySet(self):  # noqa: N802
        return JavaList(self.keys())

    def values(self):
        return JavaList(dict.values(self))

    def entrySet(self):  # noqa: N802
        return JavaList(JavaMapEntry(k, v) for k, v in self.items())

    def size(self):
        return len(self)

    def isEmpty(self):  # noqa: N802
        return len(self) == 0

    def containsKey(self, key):  # noqa: N802
        return key in self

    def toString(self):  # noqa: N802
        return JavaString(str(self))


def _javaize(value: Any) -> Any:
    if isinstance(value, _JavaObject):
        return value
    if isinstance(value, str):
        return JavaString(value)
    if isinstance(value, Mapping):
        return JavaMap((str(k), _javaize(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return JavaList(_javaize(v) for v in value)
    return value  # int (Java Long), bool, None


# --------------------------------------------------------------------------
# $util.escapeJavaScript
# --------------------------------------------------------------------------

_SHORT_ESCAPES = {0x08: "\\b", 0x0A: "\\n", 0x09: "\\t", 0x0C: "\\f", 0x0D: "\\r"}
_ASCII_ESCAPES = {"'": "\\'", '"': '\\"', "\\": "\\\\", "/": "\\/"}


def escape_javascript(s: str | None) -> JavaString | None:
    """Apache Commons Lang 2 StringEscapeUtils.escapeJavaScript (escapeJavaStyleString with
    escapeSingleQuote=true, escapeForwardSlash=true), which walks the Java string's UTF-16
    code units: > 0x7f -> \\uXXXX (upper-case hex, so a character outside the BMP becomes
    its surrogate pair), \\b \\n \\t \\f \\r, other chars < 32 -> \\u00XX, and
    ' " \\ / get a backslash. null stays null."""
    if s is None:
        return None
    units = str(s).encode("utf-16-le", "surrogatepass")
    out: list[str] = []
    for k in range(0, len(units), 2):
        ch = units[k] | (units[k + 1] << 8)
        if ch > 0x7F:
            out.append("\\u%04X" % ch)
        elif ch < 32:
            out.append(_SHORT_ESCAPES.get(ch) or "\\u%04X" % ch)
        else:
            c = chr(ch)
            out.append(_ASCII_ESCAPES.get(c, c))
    return JavaString("".join(out))


class Util(_JavaObject):
    JAVA_METHODS = frozenset({"escapeJavaScript", "parseJson", "urlEncode", "urlDecode",
                              "base64Encode", "base64Decode"})

    def escapeJavaScript(self, s):  # noqa: N802
        return escape_javascript(None if s is None else _java_str(s))

    def parseJson(self, s):  # noqa: N802
        if s is None:
            return None
        return _javaize(json.loads(str(s)))

    def urlEncode(self, s):  # noqa: N802
        if s is None:
            return None
        # java.net.URLEncoder: keep a-zA-Z0-9 . - * _, space as +, the rest %XX of UTF-8
        return JavaString(urllib.parse.quote_plus(str(s), safe="*").replace("~", "%7E"))

    def urlDecode(self, s):  # noqa: N802
        if s is None:
            return None
        return JavaString(urllib.parse.unquote_plus(str(s), errors="replace"))

    def base64Encode(self, s):  # noqa: N802
        if s is None:
            return None
        return JavaString(base64.b64encode(str(s).encode("utf-8")).decode("ascii"))

    def base64Decode(self, s):  # noqa: N802
        if s is None:
            return None
        t = str(s)
        return JavaString(base64.b64decode(t + "=" * (-len(t) % 4), validate=True).decode("utf-8", "replace"))


# --------------------------------------------------------------------------
# $input
# --------------------------------------------------------------------------

class Input(_JavaObject):
    JAVA_METHODS = frozenset({"params", "json", "path", "getBody"})

    def __init__(self, path: Mapping[str, str], querystring: Mapping[str, str],
                 header: Mapping[str, str], body: str = ""):
        self._params = JavaMap([
            ("path", _javaize(path)),
            ("querystring", _javaize(querystring)),
            ("header", _javaize(header)),
        ])
        self.body = JavaString(body)

    def params(self, name=None):
        if name is None:
            return self._params
        # "from the path, query string, or header value (searched in that order)";
        # exact-name match. A parameter found nowhere gives "" (assumed; not documented).
        for kind in ("path", "querystring", "header"):
            value = self._params[kind].get(str(name))
            if value is not None:
                return value
        return JavaString("")

    def json(self, path):
        if path is None:
            return None
        try:
            root = json.loads(str(self.body))
        except ValueError:
            return None
        found = _json_select(root, str(path))
        return None if found is None else JavaString(json.dumps(found[0], separators=(",", ":"), ensure_ascii=False))

    def path(self, path):
        if path is None:
            return None
        try:
            root = json.loads(str(self.body))
        except ValueError:
            return self.body if str(path).strip() == "$" else None
        found = _json_select(root, str(path))
        return None if found is None else _javaize(found[0])

    def getBody(self):  # noqa: N802
        return self.body


_PATH_TOKEN = re.compile(r"\.([^.\[]+)|\[\s*(?:'([^']*)'|\"([^\"]*)\"|(-?\d+))\s*\]")


def _json_select(root, path):
    """Minimal JSONPath: $ then .name, ['name'], ["name"], [index]. [value] or None."""
    p = path.strip()
    if not p.startswith("$"):
        raise ValueError("JSONPath must start with $")
    cur, i = root, 1
    while i < len(p):
        m = _PATH_TOKEN.match(p, i)
        if not m:
            raise ValueError("unsupported JSONPath %r" % path)
        name = m.group(1) or m.group(2) or m.group(3)
        if m.group(4) is not None:
            idx = int(m.group(4))
            if not isinstance(cur, list):
                return None
            if idx < 0:
                idx += len(cur)
            if not 0 <= idx < len(cur):
                return None
            cur = cur[idx]
        else:
            if not isinstance(cur, dict) or name not in cur:
                return None
            cur = cur[name]
        i = m.end()
    return [cur]


# --------------------------------------------------------------------------
# airspeed adjustment: x.name(args) on our Java objects is a method call
# --------------------------------------------------------------------------

def _install_method_call_fix() -> None:
    cls = _ops.NameOrCall
    if getattr(cls, "_apigw_vtl_fixed", False):
        return
    original = cls.calculate

    def calculate(self, current_object, loader, top_namespace):
        if (self.parameters is not None and isinstance(current_object, _JavaObject)
                and self.name in type(current_object).JAVA_METHODS):
            args = self.parameters.calculate(top_namespace, loader)
            return getattr(current_object, self.name)(*args)
        return original(self, current_object, loader, top_namespace)

    cls.calculate = calculate
    cls._apigw_vtl_fixed = True


_install_method_call_fix()


# --------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------

def make_context(*, connection_id: str, request_time_epoch: int, connected_at: int,
                 stage: str = "prod", domain_name: str = "abc123.execute-api.us-east-1.amazonaws.com",
                 api_id: str = "abc123", source_ip: str = "192.0.2.10",
                 user_agent: str | None = "test-agent/1.0", **extra: Any) -> dict:
    """A $context for a WebSocket $connect as the API Gateway reference lists it."""
    ctx = {
        "connectionId": connection_id,
        "connectedAt": int(connected_at),
        "requestTimeEpoch": int(request_time_epoch),
        "requestTime": "16/May/2022:17:30:17 +0000",
        "requestId": "SOqGjFKZIAMFWlw=",
        "extendedRequestId": "SOqGjFKZIAMFWlw=",
        "eventType": "CONNECT",
        "routeKey": "$connect",
        "stage": stage,
        "domainName": domain_name,
        "apiId": api_id,
        "identity": {"sourceIp": source_ip},
    }
    if user_agent is not None:
        ctx["identity"]["userAgent"] = user_agent
    ctx.update(extra)
    return ctx


def render_raw(template_text: str, *, context: Mapping[str, Any], headers: Mapping[str, str],
               querystring: Mapping[str, str], path: Mapping[str, str] | None = None) -> str:
    """Render VTL that has no placeholders left."""
    namespace = {
        "context": _javaize(dict(context)),
        "input": Input(path or {}, querystring, headers),
        "util": Util(),
        "stageVariables": JavaMap(),
    }
    return airspeed.Template(template_text).merge(namespace)


def render(template_text: str, *, table: str, ttl_seconds: int, context: Mapping[str, Any],
           headers: Mapping[str, str], querystring: Mapping[str, str],
           path: Mapping[str, str] | None = None) -> str:
    """Fill the two deploy-time placeholders, as wsconn does, then render."""
    if not _TABLE_NAME.fullmatch(table):
        raise ValueError("invalid DynamoDB table name: %r" % table)
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) or ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be a positive int, got %r" % (ttl_seconds,))
    text = template_text.replace(TABLE_TOKEN, table).replace(TTL_TOKEN, str(ttl_seconds))
    leftover = _ANY_TOKEN.findall(text)
    if leftover:
        raise ValueError("unknown placeholder(s) left in template: %s" % sorted(set(leftover)))
    return render_raw(text, context=context, headers=headers, querystring=querystring, path=path)


_LONG_FIELDS = {"connectedAt", "requestTimeEpoch"}
_INT_FIELDS = {"status", "integrationLatency"}


def _context_from_pairs(pairs):
    root: dict = {}
    for dotted, raw in pairs:
        parts = dotted.split(".")
        m = root
        for p in parts[:-1]:
            if not isinstance(m.get(p), dict):
                m[p] = {}
            m = m[p]
        value = raw
        if dotted in _LONG_FIELDS or dotted in _INT_FIELDS:
            try:
                value = int(raw.strip())
            except ValueError:
                value = raw
        m[parts[-1]] = value
    return root


def render_case(template_text, *, context, headers, query, body="", stage_variables=()):
    """Render VTL for one request: context is a list of (dotted name, value) pairs, headers,
    query and stage_variables lists of (name, value) (a repeated name keeps its first place
    and last value, like a Java LinkedHashMap)."""
    namespace = {
        "context": _javaize(_context_from_pairs(context)),
        "input": Input({}, dict(query), dict(headers), body),
        "util": Util(),
        "stageVariables": _javaize(dict(stage_variables)),
    }
    return airspeed.Template(template_text).merge(namespace)
