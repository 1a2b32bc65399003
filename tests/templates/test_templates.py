"""Tests of wsconn's API Gateway mapping templates (mapping-templates/*.vtl).

Each template is rendered by an independent VTL renderer (apigw_vtl.py: airspeed set up
with API Gateway's $context / $input / $util semantics), parsed as strict JSON, and sent
to a DynamoDB emulator (moto) exactly as API Gateway's AWS integration would send it.

Run inside the emulator's virtualenv:
    python -m pytest tests/templates -q

The emulator is tests/emulator/launcher.py when it exists, otherwise plain moto_server;
set WSCONN_TEMPLATE_EMULATOR=moto to force plain moto_server.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import apigw_vtl  # noqa: E402
from apigw_vtl import escape_javascript, java_replace_all, make_context, render, render_raw  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "mapping-templates"
CONNECT = (TEMPLATES / "connect.vtl").read_text(encoding="utf-8")
DISCONNECT = (TEMPLATES / "disconnect.vtl").read_text(encoding="utf-8")
LAUNCHER = ROOT / "tests" / "emulator" / "launcher.py"

TABLE = "wsconn-template-tests"
TTL_SECONDS = 7200
REQUEST_TIME_EPOCH = 1652722217999  # ms; 999 checks that /1000 truncates
CONNECTED_AT = 1652722217711  # ms

# The serverless-patterns $connect template, verbatim except the table placeholder.
ORIGINAL_CONNECT = """{
    "TableName": "<table>",
    "Item": {
    "connectionid": { "S": "$context.connectionId" },
    "headers": { "S": "$input.params().header" },
    "querystring": { "S": "$input.params().querystring" },
    #set($ttl = $context.requestTimeEpoch + 86400)
    "ttl": { "N": "$ttl" }
    }
}
""".replace("<table>", "@@TABLE_NAME@@")

# A value that, pasted unescaped into the item, closes the string and adds a key.
INJECT = '"}, "connectionid": {"S": "victim"}, "x": {"S": "'

README_HEADERS = {
    "Host": "u9jlm1pv1h.execute-api.us-east-1.amazonaws.com",
    "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
    "Sec-WebSocket-Key": "oWaeekvolZlFevfyQ7SRRw==",
    "Sec-WebSocket-Version": "13",
    "X-Amzn-Trace-Id": "Root=1-62828a29-3824232936b70e2306c11218",
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Port": "443",
    "X-Forwarded-Proto": "https",
}


# --------------------------------------------------------------------------
# Emulator
# --------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return resp.status == 200
    except Exception:
        return False


@pytest.fixture(scope="session")
def endpoint():
    port = _free_port()
    use_launcher = LAUNCHER.exists() and os.environ.get("WSCONN_TEMPLATE_EMULATOR") != "moto"
    if use_launcher:
        cmd = [sys.executable, str(LAUNCHER), "--port", str(port)]
        health = "http://127.0.0.1:%d/_wsconn/health" % port
    else:
        cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        health = "http://127.0.0.1:%d/moto-api/" % port
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not _http_ok(health):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail("emulator %r did not come up:\n%s" % (cmd, log.read().decode(errors="replace")[-4000:]))
            time.sleep(0.1)
        yield "http://127.0.0.1:%d" % port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="session")
def ddb(endpoint):
    client = boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )
    client.create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "connectionid", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "connectionid", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=TABLE, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    return client


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def new_connection_id() -> str:
    # API Gateway ids look like "SOqGjdZioAMCEeg=" (base64); "/" and "+" are possible.
    return base64.b64encode(os.urandom(12)).decode()[:15] + "="


def strict_json(text: str):
    """json.loads that also rejects duplicate keys anywhere (a JSON-injection symptom)."""
    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError("duplicate JSON keys: %r" % dupes)
        return dict(pairs)
    return json.loads(text, object_pairs_hook=no_duplicates)


def get_item(ddb, connection_id):
    resp = ddb.get_item(TableName=TABLE, Key={"connectionid": {"S": connection_id}}, ConsistentRead=True)
    return resp.get("Item")


def expected_item(ctx, headers, querystring):
    return {
        "connectionid": {"S": ctx["connectionId"]},
        "ttl": {"N": str(ctx["requestTimeEpoch"] // 1000 + TTL_SECONDS)},
        "connectedAt": {"N": str(ctx["connectedAt"])},
        "sourceIp": {"S": ctx["identity"]["sourceIp"]},
        "userAgent": {"S": ctx["identity"].get("userAgent", "")},
        "stage": {"S": ctx["stage"]},
        "domainName": {"S": ctx["domainName"]},
        "apiId": {"S": ctx["apiId"]},
        "headers": {"M": {k: {"S": v} for k, v in headers.items()}},
        "querystring": {"M": {k: {"S": v} for k, v in querystring.items()}},
    }


def utf8(s: str) -> bytes:
    return s.encode("utf-8", "surrogatepass")


def connect_roundtrip(ddb, template, ctx, headers, querystring):
    """Render, parse strictly, PutItem, GetItem, and check the stored item exactly.
    Raises (AssertionError / ValueError / ClientError) when the template is wrong."""
    rendered = render(template, table=TABLE, ttl_seconds=TTL_SECONDS, context=ctx,
                      headers=headers, querystring=querystring)
    body = strict_json(rendered)
    assert body["TableName"] == TABLE
    ddb.put_item(**body)
    stored = get_item(ddb, ctx["connectionId"])
    assert stored is not None, "no item under this connection's own connectionid"

    assert stored["connectionid"] == {"S": ctx["connectionId"]}
    ttl = int(stored["ttl"]["N"])
    assert ttl == ctx["requestTimeEpoch"] // 1000 + TTL_SECONDS, "ttl is not epoch seconds + TTL"
    assert ttl < 10**11, "ttl looks like milliseconds"
    assert set(stored["headers"]) == {"M"} and set(stored["querystring"]) == {"M"}
    for attr, sent in (("headers", headers), ("querystring", querystring)):
        got = stored[attr]["M"]
        assert sorted(map(utf8, got)) == sorted(map(utf8, sent)), "%s names differ" % attr
        for name, value in sent.items():
            assert set(got[name]) == {"S"}
            assert utf8(got[name]["S"]) == utf8(value), "%s[%r] differs" % (attr, name)
    assert stored == expected_item(ctx, headers, querystring)  # and no extra attributes
    return rendered, body, stored


# --------------------------------------------------------------------------
# connect.vtl over normal and hostile inputs
# --------------------------------------------------------------------------

MANY_HEADERS = {"X-Header-%03d" % i: "value %d \"q\" 'sq' \\ / é" % i for i in range(100)}
MANY_HEADERS.update(README_HEADERS)

CASES = [
    # id, headers, querystring, context overrides
    ("normal", README_HEADERS, {"foo": "bar"}, {}),
    ("double_quotes", {"X-Q": 'say "hi"', 'X-"Quoted"': '""'}, {"q": '"', 'a"b': 'c"d'}, {}),
    ("backslashes",
     {"X-Path": "C:\\temp\\new", "X-Trail": "end\\", "X-Esc": '\\"', "X-U": "\\u0041\\n", "X\\Name": "\\\\"},
     {"b\\s": "\\", "q": "\\\\'"}, {}),
    ("single_quotes", {"X-Q": "it's", "X-Q2": "'", "X-Q3": "\\'", "X-Q4": "''\\\\''", "O'Neil": "d'Arcy"},
     {"o'neil": "'"}, {}),
    ("control_chars", {"X-C": "a\nb\tc\x01d\re\x08f\x0cg\x00h\x1fi\x7fj", "X-Nl\n": "\r\n"},
     {"nl": "\n", "tab\t": "\x01"}, {}),
    ("slashes", {"X-S": "/", "X-Script": "</script><script>alert(1)</script>", "Referer": "https://e.example/a//b"},
     {"redirect": "/x/../y"}, {}),
    ("non_ascii", {"X-Name": "José", "X-Zh": "中文", "X-Sep": "\u2028\u2029\ufeff\u0085", "Ünïcode-Näme": "é"},
     {"名前": "値", "café": "crème brûlée"}, {}),
    ("emoji", {"X-Emoji": "😀", "X-Family": "👨\u200d👩\u200d👧", "X-Clef": "𝄞", "X-😀": "😀😀"},
     {"e": "🎉", "🔑": "🗝\ufe0f"}, {}),
    ("json_injection_value", {"X-Evil": INJECT}, {"q": INJECT}, {}),
    ("json_injection_name", {INJECT: "v", 'x"}, "connectionid": {"S": "victim"}, "y': "z"}, {INJECT: INJECT}, {}),
    ("velocity_looking", {"X-V": "$context.connectionId", "X-D": "#set($x = 1)$x", "$!{n}": "@@TABLE_NAME@@",
                          "X-F": "${util.escapeJavaScript('a')}"},
     {"#foreach": "#end", "q": "$input.params()"}, {}),  # stored verbatim, never evaluated
    ("java_method_names", {"get": "1", "keySet": "2", "size": "3", "class": "4", "isEmpty": "5"},
     {"get": "x", "toString": "y"}, {}),
    ("empty_query_string", {"Host": "h.example"}, {}, {}),
    ("no_headers_no_query", {}, {}, {}),
    ("empty_values", {"X-Empty": ""}, {"flag": ""}, {}),
    ("many_headers", MANY_HEADERS, {"p%02d" % i: "v%d" % i for i in range(50)}, {}),
    ("hostile_context", {"User-Agent": 'Mozilla/5.0 "x" \'y\' \\ 😀\n'}, {"a": "b"},
     {"user_agent": 'Mozilla/5.0 "x" \'y\' \\ 😀\n', "source_ip": "2001:db8::1"}),
    ("no_user_agent", {"Host": "h.example"}, {"a": "b"}, {"user_agent": None}),
    ("connection_id_with_slash", {"Host": "h.example"}, {}, {"id_suffix": "/+"}),
]


@pytest.mark.parametrize("headers,querystring,overrides", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_connect_stores_exact_item(ddb, headers, querystring, overrides):
    overrides = dict(overrides)
    cid = new_connection_id()[:-3] + overrides.pop("id_suffix", "") + "="
    ctx = make_context(connection_id=cid, request_time_epoch=REQUEST_TIME_EPOCH,
                       connected_at=CONNECTED_AT, **overrides)
    rendered, body, stored = connect_roundtrip(ddb, CONNECT, ctx, headers, querystring)

    # Structure of the request itself.
    assert set(body) == {"TableName", "ConditionExpression", "Item"}
    assert body["ConditionExpression"] == "attribute_not_exists(connectionid)"
    assert body["Item"] == expected_item(ctx, headers, querystring)
    if not querystring:
        assert body["Item"]["querystring"] == {"M": {}}
    # escapeJavaScript leaves only ASCII, so no encoding question arises on the wire.
    assert rendered.isascii()


def test_injection_in_header_cannot_change_connectionid(ddb):
    cid = new_connection_id()
    ctx = make_context(connection_id=cid, request_time_epoch=REQUEST_TIME_EPOCH, connected_at=CONNECTED_AT)
    headers = {"X-Evil": INJECT, INJECT: INJECT}
    rendered, body, stored = connect_roundtrip(ddb, CONNECT, ctx, headers, {"q": INJECT})
    assert body["Item"]["connectionid"] == {"S": cid}
    assert stored["connectionid"] == {"S": cid}
    assert get_item(ddb, "victim") is None
    assert stored["headers"]["M"]["X-Evil"] == {"S": INJECT}


def test_connect_never_overwrites_an_existing_connection(ddb):
    cid = new_connection_id()
    ctx = make_context(connection_id=cid, request_time_epoch=REQUEST_TIME_EPOCH, connected_at=CONNECTED_AT)
    connect_roundtrip(ddb, CONNECT, ctx, {"X-First": "1"}, {})
    later = make_context(connection_id=cid, request_time_epoch=REQUEST_TIME_EPOCH + 5000,
                         connected_at=CONNECTED_AT + 5000)
    body = strict_json(render(CONNECT, table=TABLE, ttl_seconds=TTL_SECONDS, context=later,
                              headers={"X-Second": "2"}, querystring={}))
    with pytest.raises(ClientError) as err:
        ddb.put_item(**body)
    assert err.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert get_item(ddb, cid)["headers"] == {"M": {"X-First": {"S": "1"}}}


@pytest.mark.parametrize("principal", ["alice", 'o\'neil "x" \\ é 😀', INJECT])
def test_connect_stores_the_authorizers_principal_and_only_that(ddb, principal):
    """With a $connect authorizer, $context.authorizer.principalId is stored as a string
    (escaped like every other value); the rest of the item is unchanged."""
    cid = new_connection_id()
    ctx = make_context(connection_id=cid, request_time_epoch=REQUEST_TIME_EPOCH,
                       connected_at=CONNECTED_AT, authorizer={"principalId": principal, "tenant": "acme"})
    body = strict_json(render(CONNECT, table=TABLE, ttl_seconds=TTL_SECONDS, context=ctx,
                              headers={"Host": "h"}, querystring={"token": "t"}))
    want = expected_item(ctx, {"Host": "h"}, {"token": "t"})
    want["principalId"] = {"S": principal}
    assert body["Item"] == want
    ddb.put_item(**body)
    assert utf8(get_item(ddb, cid)["principalId"]["S"]) == utf8(principal)


def test_connect_without_an_authorizer_stores_no_principal():
    for extra in ({}, {"authorizer": {}}, {"authorizer": {"principalId": ""}}):
        ctx = make_context(connection_id="abc=", request_time_epoch=REQUEST_TIME_EPOCH,
                           connected_at=CONNECTED_AT, **extra)
        body = strict_json(render(CONNECT, table=TABLE, ttl_seconds=TTL_SECONDS, context=ctx,
                                  headers={}, querystring={}))
        assert "principalId" not in body["Item"], extra
        assert body["Item"] == expected_item(ctx, {}, {})


def test_ttl_is_integer_epoch_seconds():
    ctx = make_context(connection_id="abc=", request_time_epoch=1700000000999, connected_at=1700000000000)
    body = strict_json(render(CONNECT, table=TABLE, ttl_seconds=86400, context=ctx, headers={}, querystring={}))
    assert body["Item"]["ttl"] == {"N": str(1700000000 + 86400)}
    assert body["Item"]["connectedAt"] == {"N": "1700000000000"}


# --------------------------------------------------------------------------
# The pattern's original template fails the same checks
# --------------------------------------------------------------------------

def test_original_template_fails_the_checks(ddb):
    cid = new_connection_id()
    ctx = make_context(connection_id=cid, request_time_epoch=REQUEST_TIME_EPOCH, connected_at=CONNECTED_AT)
    with pytest.raises(AssertionError, match="ttl"):
        connect_roundtrip(ddb, ORIGINAL_CONNECT, ctx, README_HEADERS, {"foo": "bar"})
    stored = get_item(ddb, cid)
    # What the pattern's README shows: ttl in milliseconds, maps stored as Java toString text.
    assert int(stored["ttl"]["N"]) == REQUEST_TIME_EPOCH + 86400 >= 10**11
    assert stored["querystring"] == {"S": "{foo=bar}"}
    assert stored["headers"]["S"].startswith("{Host=u9jlm1pv1h.execute-api.us-east-1.amazonaws.com, Sec-WebSocket-")


def test_original_template_breaks_json_with_a_quote():
    ctx = make_context(connection_id="abc=", request_time_epoch=REQUEST_TIME_EPOCH, connected_at=CONNECTED_AT)
    rendered = render(ORIGINAL_CONNECT, table=TABLE, ttl_seconds=TTL_SECONDS, context=ctx,
                      headers={"X-Q": 'say "hi"'}, querystring={})
    with pytest.raises(json.JSONDecodeError):
        json.loads(rendered)


def test_original_template_lets_a_header_hijack_connectionid(ddb):
    cid = new_connection_id()
    ctx = make_context(connection_id=cid, request_time_epoch=REQUEST_TIME_EPOCH, connected_at=CONNECTED_AT)
    rendered = render(ORIGINAL_CONNECT, table=TABLE, ttl_seconds=TTL_SECONDS, context=ctx,
                      headers={"X-Evil": INJECT}, querystring={})
    with pytest.raises(ValueError, match="duplicate JSON keys.*connectionid"):
        strict_json(rendered)
    body = json.loads(rendered)  # a last-key-wins parser
    assert body["Item"]["connectionid"] == {"S": "victim"}
    ddb.put_item(**body)
    assert get_item(ddb, cid) is None
    assert get_item(ddb, "victim") is not None


# --------------------------------------------------------------------------
# disconnect.vtl
# --------------------------------------------------------------------------

def test_disconnect_deletes_only_its_own_item(ddb):
    ctx_a = make_context(connection_id=new_connection_id()[:-3] + "/+=", request_time_epoch=REQUEST_TIME_EPOCH,
                         connected_at=CONNECTED_AT)
    ctx_b = make_context(connection_id=new_connection_id(), request_time_epoch=REQUEST_TIME_EPOCH,
                         connected_at=CONNECTED_AT)
    connect_roundtrip(ddb, CONNECT, ctx_a, {"Host": "h"}, {})
    connect_roundtrip(ddb, CONNECT, ctx_b, {"Host": "h"}, {})

    rendered = render(DISCONNECT, table=TABLE, ttl_seconds=TTL_SECONDS, context=ctx_a,
                      headers={"X-Evil": INJECT}, querystring={"q": INJECT})
    body = strict_json(rendered)
    assert body == {"TableName": TABLE, "Key": {"connectionid": {"S": ctx_a["connectionId"]}}}
    ddb.delete_item(**body)
    assert get_item(ddb, ctx_a["connectionId"]) is None
    assert get_item(ddb, ctx_b["connectionId"]) is not None


# --------------------------------------------------------------------------
# Placeholders
# --------------------------------------------------------------------------

TOKEN = re.compile(r"@@(.*?)@@", re.S)


@pytest.mark.parametrize("name,text,expected", [
    ("connect.vtl", CONNECT, {"TABLE_NAME", "CONNECTION_TTL_SECONDS"}),
    ("disconnect.vtl", DISCONNECT, {"TABLE_NAME"}),
])
def test_placeholders_are_the_only_tokens(name, text, expected):
    assert set(TOKEN.findall(text)) == expected
    stripped = TOKEN.sub("", text)
    assert "@@" not in stripped, "%s has a stray @@" % name


def test_ttl_placeholder_sits_in_the_seconds_arithmetic():
    assert re.search(r"#set\(\$ttl = \$context\.requestTimeEpoch / 1000 \+ @@CONNECTION_TTL_SECONDS@@\)", CONNECT)
    assert CONNECT.count("@@CONNECTION_TTL_SECONDS@@") == 1


# --------------------------------------------------------------------------
# The renderer's own semantics
# --------------------------------------------------------------------------

@pytest.mark.parametrize("raw,escaped", [
    ('He didn\'t say, "Stop!"', 'He didn\\\'t say, \\"Stop!\\"'),  # Commons Lang javadoc example
    ("/", "\\/"),
    ("\\", "\\\\"),
    ("é", "\\u00E9"),
    ("中文", "\\u4E2D\\u6587"),
    ("😀", "\\uD83D\\uDE00"),
    ("\u0100\u0fff\uffff", "\\u0100\\u0FFF\\uFFFF"),
    ("\b\f\n\r\t", "\\b\\f\\n\\r\\t"),
    ("\x00\x01\x0b\x1f", "\\u0000\\u0001\\u000B\\u001F"),
    ("\x7f~ A", "\x7f~ A"),  # DEL and printable ASCII pass through
    ("", ""),
])
def test_escape_javascript_matches_commons_lang(raw, escaped):
    assert escape_javascript(raw) == escaped


def test_escape_javascript_null_is_null():
    assert escape_javascript(None) is None


def test_documented_idiom_in_a_template():
    # The Velocity literal "\\'" is three characters; as a Java regex it matches \' .
    assert render_raw(r'''#set($re = "\\'")$re.length()''', context={}, headers={}, querystring={}) == "3"
    out = render_raw(r'''$util.escapeJavaScript($input.params('h')).replaceAll("\\'","'")''',
                     context={}, headers={"h": "it's \\' \"x\""}, querystring={})
    assert out == 'it\'s \\\\\' \\"x\\"'
    assert json.loads('"%s"' % out) == "it's \\' \"x\""


def test_java_replace_all_semantics():
    assert java_replace_all("a\\'b", "\\\\'", "'") == "a'b"
    assert java_replace_all("a.b", ".", "x") == "xxx"
    assert java_replace_all("a\nb", ".", "x") == "x\nx"  # Java '.' skips line terminators
    assert java_replace_all("a\u2028b", ".", "x") == "x\u2028x"
    assert java_replace_all("a.b", "\\.", "-") == "a-b"
    assert java_replace_all("abc", "(b)", "[$1]") == "a[b]c"
    assert java_replace_all("ab", "(a)", "$12") == "a2b"  # $1 then literal 2 (only one group)
    assert java_replace_all("abc", "b", "\\$1") == "a$1c"
    assert java_replace_all("abc", "(?<n>b)", "<${n}>") == "a<b>c"
    assert java_replace_all("a+b", "\\Q+\\E", "-") == "a-b"
    with pytest.raises(ValueError):
        java_replace_all("x", "x", "\\")
    with pytest.raises(ValueError):
        java_replace_all("x", "x", "$")


def test_printed_map_is_java_to_string():
    out = render_raw("$input.params().querystring|$input.params().header",
                     context={}, headers={"A": "1", "B": "x=y"}, querystring={"foo": "bar"})
    assert out == "{foo=bar}|{A=1, B=x=y}"


def test_input_params_lookup_order():
    tpl = "$input.params('x')|$input.params('y')|$input.params('z')|[$input.params('none')]"
    out = render_raw(tpl, context={}, headers={"x": "hx", "y": "hy", "z": "hz"},
                     querystring={"x": "qx", "y": "qy"}, path={"x": "px"})
    assert out == "px|qy|hz|[]"


def test_method_call_wins_over_a_same_named_entry():
    out = render_raw("#foreach($k in $input.params().header.keySet())$k=$input.params().header.get($k);#end",
                     context={}, headers={"get": "1", "keySet": "2"}, querystring={})
    assert out == "get=1;keySet=2;"


def test_render_rejects_unknown_placeholders():
    with pytest.raises(ValueError, match="@@OTHER@@"):
        render("@@TABLE_NAME@@ @@OTHER@@", table=TABLE, ttl_seconds=1, context={}, headers={}, querystring={})
    assert apigw_vtl.PLACEHOLDERS == ("@@TABLE_NAME@@", "@@CONNECTION_TTL_SECONDS@@")
