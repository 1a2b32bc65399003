//! Table tests: (template, input, expected output) cases, minijinja style. The expected
//! outputs are Apache Velocity 1.7's (checked against it by the differential corpus).

use super::*;

/// Input for one case: header/query pairs, body, context overrides.
#[derive(Default, Clone, Copy)]
struct In {
    headers: &'static [(&'static str, &'static str)],
    query: &'static [(&'static str, &'static str)],
    body: &'static str,
    context: &'static [(&'static str, &'static str)],
    stage: &'static [(&'static str, &'static str)],
}

const NONE: In = In {
    headers: &[],
    query: &[],
    body: "",
    context: &[],
    stage: &[],
};

fn request(i: In) -> Request {
    let mut r = Request::new();
    r.set_context("connectionId", "conn-1");
    r.set_context("stage", "prod");
    r.set_context("requestTimeEpoch", "1700000000456");
    r.set_context("connectedAt", "1700000000123");
    r.set_context("identity.sourceIp", "192.0.2.10");
    for (k, v) in i.context {
        r.set_context(k, v);
    }
    r.headers = i
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    r.querystring = i
        .query
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    r.stage_variables = i
        .stage
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    r.body = i.body.to_string();
    r
}

fn run(src: &str, i: In) -> Result<String, Error> {
    let t = Template::parse("t.vtl", src)?;
    render(&t, &request(i))
}

/// (name, template, input, expected output)
const CASES: &[(&str, &str, In, &str)] = &[
    // ---- text and references
    ("text", "Hello\n", NONE, "Hello\n"),
    ("empty", "", NONE, ""),
    (
        "undefined renders as source",
        "$nope ${nope} $nope.a.b() $nope[0]",
        NONE,
        "$nope ${nope} $nope.a.b() $nope[0]",
    ),
    ("quiet", "[$!nope][$!{nope}][$!nope.x]", NONE, "[][][]"),
    ("formal", "${context.stage}x", NONE, "prodx"),
    (
        "property on map",
        "$context.identity.sourceIp",
        NONE,
        "192.0.2.10",
    ),
    (
        "map get forms",
        "#set($m = {'k': 'v'})$m.k $m.get('k') $m['k']",
        NONE,
        "v v v",
    ),
    (
        "list index",
        "#set($l = ['a', 'b'])$l[0]$l[1]$l[-1] $l.get(0)",
        NONE,
        "abb a",
    ),
    (
        "dash in identifier",
        "#set($a = 1)$a-b ${a}-b",
        NONE,
        "$a-b 1-b",
    ),
    ("dollar text", "$ $5 $! a$ ", NONE, "$ $5 $ a$ "),
    ("hash text", "# #1 #{ #foo", NONE, "# #1 #{ #foo"),
    (
        "map toString",
        "#set($m = {'a': 1, 'b': [1, 'x']})$m",
        NONE,
        "{a=1, b=[1, x]}",
    ),
    (
        "list toString",
        "#set($l = [1, 'two', true, 2.5])$l",
        NONE,
        "[1, two, true, 2.5]",
    ),
    (
        "context numbers",
        "$context.connectedAt $context.requestTimeEpoch",
        NONE,
        "1700000000123 1700000000456",
    ),
    // ---- escapes
    (
        "escaped defined",
        "#set($a = 'A')\\$a \\\\$a",
        NONE,
        "$a \\A",
    ),
    (
        "escaped undefined",
        "\\$nope \\\\$nope",
        NONE,
        "\\$nope \\\\$nope",
    ),
    (
        "escaped directives",
        "\\#if \\#set \\#foo",
        NONE,
        "#if #set \\#foo",
    ),
    (
        "double escape before directive",
        "\\\\#if(true)x#end",
        NONE,
        "\\x",
    ),
    // ---- comments
    ("line comment", "a ## c\nb", NONE, "a b"),
    (
        "block comment",
        "a #* x\ny *# b\n#* z *#\nc",
        NONE,
        "a  b\n\nc",
    ),
    ("unterminated block comment", "a #* never", NONE, "a "),
    ("textblock", "#[[$a #if]]#", NONE, "$a #if"),
    // ---- #set
    (
        "set kinds",
        "#set($s = 'x')#set($n = 2)#set($b = true)$s$n$b",
        NONE,
        "x2true",
    ),
    (
        "set null keeps value",
        "#set($a = 'old')#set($a = $nope)$a",
        NONE,
        "old",
    ),
    (
        "set map and list",
        "#set($m = {})#set($m.a = 1)#set($l = [0])#set($l[0] = 9)$m$l",
        NONE,
        "{a=1}[9]",
    ),
    ("set gobbles newline", "a\n#set($x = 1)\nb", NONE, "a\nb"),
    (
        "set keeps indentation after text",
        "a\n  #set($x = 1)\nb",
        NONE,
        "a\n  b",
    ),
    (
        "set eats indentation at start",
        "   #set($x = 1)\nb",
        NONE,
        "b",
    ),
    (
        "set eats spaces after reference",
        "#set($a = 'A')$a   #set($b = 1)|",
        NONE,
        "A|",
    ),
    ("set crlf", "#set($x = 1)\r\nb", NONE, "b"),
    ("braced set", "#{set}($x = 'y')$x", NONE, "y"),
    // ---- #if
    ("if else", "#if(false)a#elseif(true)b#else c#end", NONE, "b"),
    (
        "empty string is true",
        "#set($e = '')#if($e)T#else F#end",
        NONE,
        "T",
    ),
    (
        "null and false are false",
        "#if($nope)a#end#if(false)b#end#set($f = false)#if($f)c#end|",
        NONE,
        "|",
    ),
    (
        "literals are false in if",
        "#if('x')a#end#if(1)b#end|",
        NONE,
        "|",
    ),
    ("braced if", "#{if}(true)A#{else}B#{end}", NONE, "A"),
    (
        "if gobbling",
        "x\n#if(true)\n  in\n#end\ny",
        NONE,
        "x\n  in\ny",
    ),
    ("if inline", "x #if(true) y #end z", NONE, "x  y  z"),
    (
        "if trailing blanks",
        "#if(true)  \nA\n#end  \nB",
        NONE,
        "A\nB",
    ),
    // ---- operators
    (
        "comparisons",
        "#if(1 < 2 && 2 <= 2 && 3 > 2 && 3 >= 3 && 1 == 1 && 1 != 2)ok#end",
        NONE,
        "ok",
    ),
    (
        "word operators",
        "#if(1 lt 2 and 2 le 2 and 3 gt 2 and 3 ge 3 and 1 eq 1 and 1 ne 2 and not false)ok#end",
        NONE,
        "ok",
    ),
    ("or and not", "#if(false || !false)ok#end", NONE, "ok"),
    (
        "equality by toString",
        "#if('1' == 1)a#end#if(true == 'true')b#end",
        NONE,
        "ab",
    ),
    (
        "string lt is false",
        "#if('a' < 'b')x#else y#end",
        NONE,
        " y",
    ),
    (
        "short circuit",
        "#set($l = [])#if(true || $l.add(1))#end$l.size()",
        NONE,
        "0",
    ),
    // ---- arithmetic
    (
        "integer division truncates",
        "#set($a = -7 / 2)#set($b = -7 % 2)$a $b",
        NONE,
        "-3 -1",
    ),
    (
        "int overflow to long",
        "#set($a = 2147483647 + 1)$a",
        NONE,
        "2147483648",
    ),
    (
        "long overflow to biginteger",
        "#set($a = 9223372036854775807 + 1)$a",
        NONE,
        "9223372036854775808",
    ),
    (
        "divide by zero is null",
        "#set($a = 'kept')#set($a = 1 / 0)$a",
        NONE,
        "kept",
    ),
    (
        "doubles print like Java",
        "#set($a = 7 / 2.0)#set($b = 1e-4)#set($c = 12345678.9)$a $b $c",
        NONE,
        "3.5 1.0E-4 1.23456789E7",
    ),
    (
        "string concatenation",
        "#set($a = 'n=' + 5)#set($b = $nope + 'x')$a $b",
        NONE,
        "n=5 $nopex",
    ),
    (
        "ttl formula",
        "#set($t = $context.requestTimeEpoch / 1000 + 86400)$t",
        NONE,
        "1700086400",
    ),
    (
        "negative literal needs a space",
        "#set($x = 5 - 3)$x",
        NONE,
        "2",
    ),
    // ---- literals
    (
        "single quotes do not interpolate",
        "#set($a = 'A')#set($s = '$a')$s",
        NONE,
        "$a",
    ),
    (
        "double quotes interpolate",
        "#set($a = 'A')#set($s = \"[$a]\")$s",
        NONE,
        "[A]",
    ),
    (
        "quote doubling",
        "#set($s = 'it''s')#set($d = \"a\"\"b\")$s $d",
        NONE,
        "it's a\"b",
    ),
    (
        "unicode escape in double quotes",
        "#set($s = \"\\u0041\")$s",
        NONE,
        "A",
    ),
    (
        "directives in strings",
        "#set($s = \"#if(true)T#end#foreach($i in [1..2])$i#end\")$s",
        NONE,
        "T12",
    ),
    (
        "undefined inside strings",
        "#set($s = \"[$nope][$!nope]\")$s",
        NONE,
        "[$nope][]",
    ),
    (
        "line comment inside string",
        "#set($s = \"a ## b\")[$s]",
        NONE,
        "[a ]",
    ),
    (
        "ranges",
        "#set($a = [1..3])#set($b = [2..0])$a$b",
        NONE,
        "[1, 2, 3][2, 1, 0]",
    ),
    // ---- #foreach
    (
        "foreach list",
        "#foreach($x in ['a', 'b'])$x#if($foreach.hasNext),#end#end",
        NONE,
        "a,b",
    ),
    (
        "foreach counters",
        "#foreach($x in [7, 8])$foreach.index$foreach.count$velocityCount$foreach.first$foreach.last;#end",
        NONE,
        "011truefalse;122falsetrue;",
    ),
    (
        "foreach map values",
        "#set($m = {'a': 1, 'b': 2})#foreach($v in $m)$v#end",
        NONE,
        "12",
    ),
    (
        "foreach keySet and entrySet",
        "#set($m = {'a': 1})#foreach($k in $m.keySet())$k#end#foreach($e in $m.entrySet())$e.key=$e.value $e#end",
        NONE,
        "aa=1 a=1",
    ),
    (
        "foreach skips non-collections",
        "[#foreach($x in 'str')x#end#foreach($x in $nope)x#end]",
        NONE,
        "[]",
    ),
    (
        "foreach nested parent",
        "#foreach($a in [1, 2])#foreach($b in [1])$foreach.parent.count#end#end",
        NONE,
        "12",
    ),
    (
        "break",
        "#foreach($i in [1..5])#if($i == 3)#break#end$i#end",
        NONE,
        "12",
    ),
    (
        "break outer",
        "#foreach($a in [1..2])#foreach($b in [1..2])#break($foreach.parent)#end$a#end.",
        NONE,
        ".",
    ),
    (
        "loop variable restored",
        "#set($x = 'o')#foreach($x in [1])#end$x",
        NONE,
        "o",
    ),
    (
        "foreach gobbling",
        "#foreach($i in [1..2])\n  $i\n#end\n",
        NONE,
        "  1\n  2\n",
    ),
    (
        "null element prints source",
        "#foreach($x in [1, $nope])[$x]#end",
        NONE,
        "[1][$x]",
    ),
    // ---- #stop, unknown directives
    ("stop", "a#stop b", NONE, "a"),
    (
        "stop inside string stops everything",
        "a#set($s = \"#stop\")b",
        NONE,
        "a",
    ),
    (
        "unknown directive is text",
        "#foo #foo($x) #{bar}",
        NONE,
        "#foo #foo($x) #{bar}",
    ),
    // ---- Java string methods
    (
        "replaceAll idiom",
        "#set($s = \"it's\")$util.escapeJavaScript($s).replaceAll(\"\\\\'\",\"'\")",
        NONE,
        "it's",
    ),
    (
        "replaceAll groups",
        "#set($s = 'john smith')$s.replaceAll('(\\w+) (\\w+)', '$2 $1')",
        NONE,
        "smith john",
    ),
    (
        "replaceAll java escapes",
        "#set($s = 'a.b')$s.replaceAll('\\.', '\\$')",
        NONE,
        "a$b",
    ),
    (
        "replace literal",
        "#set($s = 'a.b')$s.replace('.', '$')",
        NONE,
        "a$b",
    ),
    (
        "string methods",
        "#set($s = ' Hi There ')$s.trim().length() $s.contains('Hi') $s.startsWith(' H') $s.endsWith('e ') $s.indexOf('T') $s.toUpperCase().trim() $s.toLowerCase().trim() $s.isEmpty() $s.equals(' Hi There ')",
        NONE,
        "8 true true true 4 HI THERE hi there false true",
    ),
    (
        "substring",
        "#set($s = 'Hello')$s.substring(1) $s.substring(1, 3)",
        NONE,
        "ello el",
    ),
    (
        "split",
        "#set($s = 'a,b,,')#foreach($p in $s.split(','))[$p]#end",
        NONE,
        "[a][b]",
    ),
    ("utf16 length", "#set($s = 'é😀')$s.length()", NONE, "3"),
    (
        "no such method renders source",
        "#set($s = 'a')$s.nope() $s.substring('x')",
        NONE,
        "$s.nope() $s.substring('x')",
    ),
    // ---- maps and lists
    (
        "map methods",
        "#set($m = {'a': 1, 'b': 2})$m.keySet() $m.size() $m.isEmpty() $m.containsKey('a') $m.get('b') $m.entrySet()",
        NONE,
        "[a, b] 2 false true 2 [a=1, b=2]",
    ),
    (
        "list methods",
        "#set($l = [1, 'x'])$l.size() $l.get(1) $l.isEmpty() $l.contains('x') $l.contains(2)",
        NONE,
        "2 x false true false",
    ),
    (
        "put keeps order",
        "#set($m = {'a': 1, 'b': 2})#set($d = $m.put('a', 3))$m $d",
        NONE,
        "{a=3, b=2} 1",
    ),
    // ---- $input, $util, $stageVariables
    (
        "params map",
        "$input.params()",
        In {
            headers: &[("h", "1")],
            query: &[("q", "2")],
            ..NONE
        },
        "{path={}, querystring={q=2}, header={h=1}}",
    ),
    (
        "params precedence",
        "$input.params('x') [$input.params('none')]",
        In {
            headers: &[("x", "h")],
            query: &[("x", "q")],
            ..NONE
        },
        "q []",
    ),
    (
        "body json path",
        "$input.body|$input.json('$.a')|$input.path('$.a.b')|$input.path('$.a').b",
        In {
            body: "{\"a\": {\"b\": [1, \"x\"]}}",
            ..NONE
        },
        "{\"a\": {\"b\": [1, \"x\"]}}|{\"b\":[1,\"x\"]}|[1, x]|[1, x]",
    ),
    (
        "escapeJavaScript",
        "$util.escapeJavaScript(\"a'b\"\"c\\d/e\te\u{e9}\u{1f600}\")",
        NONE,
        "a\\'b\\\"c\\\\d\\/e\\te\\u00E9\\uD83D\\uDE00",
    ),
    (
        "escapeJavaScript null",
        "$util.escapeJavaScript($nope)",
        NONE,
        "$util.escapeJavaScript($nope)",
    ),
    (
        "url and base64",
        "$util.urlEncode('a b/é') $util.urlDecode('a+b%2F') $util.base64Encode('hi') $util.base64Decode('aGk=')",
        NONE,
        "a+b%2F%C3%A9 a b/ aGk= hi",
    ),
    (
        "parseJson",
        "#set($o = $util.parseJson('{\"a\": [1, true, null]}'))$o $o.a[1]",
        NONE,
        "{a=[1, true, null]} true",
    ),
    (
        "stage variables",
        "$stageVariables.env $stageVariables",
        In {
            stage: &[("env", "dev")],
            ..NONE
        },
        "dev {env=dev}",
    ),
    // ---- safety: data is never template code
    (
        "header with vtl stays literal",
        "$input.params('h')",
        In {
            headers: &[("h", "$context.connectionId #set($x = 1)$x #if(true)y#end")],
            ..NONE
        },
        "$context.connectionId #set($x = 1)$x #if(true)y#end",
    ),
    (
        "context with vtl stays literal",
        "$context.stage",
        In {
            context: &[("stage", "${context.connectionId}#stop")],
            ..NONE
        },
        "${context.connectionId}#stop",
    ),
    (
        "body with vtl stays literal",
        "$input.body",
        In {
            body: "#foreach($i in [1..3])$i#end",
            ..NONE
        },
        "#foreach($i in [1..3])$i#end",
    ),
    (
        "json string with vtl stays literal",
        "$input.path('$.x')",
        In {
            body: "{\"x\": \"$input.body\"}",
            ..NONE
        },
        "$input.body",
    ),
];

#[test]
fn table() {
    let mut failures = Vec::new();
    for (name, src, input, expected) in CASES {
        match run(src, *input) {
            Ok(out) if out == *expected => {}
            Ok(out) => failures.push(format!("{}: got {:?}, expected {:?}", name, out, expected)),
            Err(e) => failures.push(format!("{}: error {}", name, e)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// (name, template, expected "LINE:COL: message" prefix)
const ERRORS: &[(&str, &str, &str)] = &[
    ("unclosed if", "#if(true)\nx", "2:2: syntax error"),
    ("stray end", "a\n  #end", "2:3: syntax error"),
    ("$true is a keyword", "x $true", "1:3: syntax error"),
    ("template ending in $", "abc$", "1:4: Lexical error"),
    ("template ending in #", "abc #", "1:5: Lexical error"),
    (
        "5-3 lexes a negative literal",
        "#set($x = 5-3)",
        "1:12: syntax error",
    ),
    ("unterminated textblock", "#[[ abc", "1:1: Lexical error"),
    (
        "bad character in directive",
        "#if($a ~ 1)#end",
        "1:8: Lexical error",
    ),
    (
        "expression in method args",
        "$a.b(1 + 1)",
        "1:8: Lexical error",
    ),
    (
        "substring out of range",
        "#set($s = 'ab')\n$s.substring(5)",
        "2:4: invocation of method 'substring' failed",
    ),
    (
        "bad regex",
        "#set($s = 'ab')$s.replaceAll('(', 'x')",
        "1:19: invocation of method 'replaceAll' failed",
    ),
    (
        "unsupported regex flag",
        "#set($s = 'ab')$s.replaceAll('(?i)A', 'x')",
        "1:19: invocation of method 'replaceAll' failed: unsupported Java regex feature",
    ),
    (
        "list index out of range",
        "#set($l = [1])$l.get(5)",
        "1:18: invocation of method 'get' failed",
    ),
    (
        "invalid json",
        "$util.parseJson('{')",
        "1:7: invocation of method 'parseJson' failed",
    ),
    (
        "unsupported directive",
        "#macro(m)x#end",
        "1:1: the #macro directive is not supported",
    ),
    (
        "interpolated string error position",
        "#set($x = 1)\n#set($s = \"ab #if(\")",
        "2:20: syntax error",
    ),
];

#[test]
fn errors_have_positions() {
    let mut failures = Vec::new();
    for (name, src, expected) in ERRORS {
        match run(src, NONE) {
            Ok(out) => failures.push(format!("{}: rendered {:?}", name, out)),
            Err(e) => {
                let s = e.to_string();
                let want = format!("t.vtl:{}", expected);
                if !s.starts_with(&want) {
                    failures.push(format!("{}: got {:?}, expected prefix {:?}", name, s, want));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn error_display_format() {
    let e = Error::new("f.vtl", 3, 7, "boom");
    assert_eq!(e.to_string(), "f.vtl:3:7: boom");
}

#[test]
fn template_size_limit() {
    let ok = "a".repeat(MAX_TEMPLATE_BYTES);
    assert!(Template::parse("t.vtl", &ok).is_ok());
    let big = "a".repeat(MAX_TEMPLATE_BYTES + 1);
    let e = Template::parse("t.vtl", &big).unwrap_err();
    assert!(e.message.contains("300 KB"), "{}", e);
}

#[test]
fn foreach_stops_after_1000_iterations() {
    let out = run("#foreach($i in [1..5000])#set($last = $i)#set($hn = $foreach.hasNext)#end$last $hn $velocityCount", NONE).unwrap();
    assert_eq!(out, "1000 true $velocityCount");
    let out = run("#set($l = [])#foreach($i in [1..1500])#set($d = $l.add($i))#end#foreach($x in $l)#set($c = $foreach.count)#end$l.size() $c", NONE).unwrap();
    assert_eq!(out, "1000 1000");
}

#[test]
fn connect_template_with_hostile_input_is_json() {
    let src = include_str!("../../mapping-templates/connect.vtl")
        .replace("@@TABLE_NAME@@", "t-connections")
        .replace("@@CONNECTION_TTL_SECONDS@@", "86400");
    let t = Template::parse("connect.vtl", &src).unwrap();
    let mut r = request(NONE);
    let evil = "\", \"connectionid\": {\"S\": \"x\"}, \"a\": \"";
    r.headers = vec![
        ("X-Evil".into(), evil.into()),
        ("get".into(), "g'\\\n\t😀".into()),
    ];
    r.querystring = vec![("q".into(), "$context.connectionId #set($x=1)".into())];
    let out = render(&t, &r).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Item"]["connectionid"]["S"], "conn-1");
    assert_eq!(v["Item"]["headers"]["M"]["X-Evil"]["S"], evil);
    assert_eq!(v["Item"]["headers"]["M"]["get"]["S"], "g'\\\n\t😀");
    assert_eq!(
        v["Item"]["querystring"]["M"]["q"]["S"],
        "$context.connectionId #set($x=1)"
    );
    assert_eq!(v["Item"]["ttl"]["N"], "1700086400");
}

// ---------------------------------------------------------------- no panic, no hang

fn no_panic(src: &str) {
    let r = std::panic::catch_unwind(|| {
        if let Ok(t) = Template::parse("t.vtl", src) {
            let _ = render(&t, &request(NONE));
        }
    });
    assert!(r.is_ok(), "panicked on {:?}", &src[..src.len().min(80)]);
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for depth in [50, 150, 5000] {
        let src = "#if(true)".repeat(depth) + &"#end".repeat(depth);
        let r = run(&src, NONE);
        if depth > parser::MAX_NESTING as usize {
            assert!(r.unwrap_err().message.contains("nesting"));
        } else {
            assert_eq!(r.unwrap(), "");
        }
        no_panic(&("(".repeat(depth) + "x"));
        no_panic(&(format!("#set($x = {}1{})", "(".repeat(depth), ")".repeat(depth))));
        no_panic(&("#set($x = [".repeat(depth)));
        no_panic(&("\"".to_string() + &"#set($x = \"".repeat(depth)));
        no_panic(&"$a.b($c.d(".repeat(depth));
        no_panic(&"#foreach($i in [1..2])".repeat(depth));
        no_panic(&"${".repeat(depth));
        no_panic(&"$a[".repeat(depth));
    }
}

/// Each case runs under a deadline: a limit that no longer holds fails the test instead
/// of stalling it.
#[test]
fn huge_ranges_and_loops_are_bounded() {
    let run = |src: &'static str| within_deadline(src, move || run(src, NONE));
    // a range in #foreach is lazy: 1000 iterations
    assert_eq!(
        run("#foreach($i in [0..2147483647])#end$velocityCount").unwrap(),
        "$velocityCount"
    );
    // a materialized huge range is an error
    assert_eq!(
        run("#set($r = [0..2147483647])").unwrap_err().to_string(),
        "t.vtl:1:11: range [0..2147483647] has more than 1000000 elements"
    );
    // nested loops that print stop at the output limit instead of running for ever
    let e = run(
        "#foreach($a in [1..1000])#foreach($b in [1..1000])#foreach($c in [1..1000])x#end#end#end",
    )
    .unwrap_err();
    assert_eq!(e.message, "output too large", "{e}");
    // ... and when they print nothing, they run out of steps
    let e = run(
        "#foreach($a in [1..1000])#foreach($b in [1..1000])#foreach($c in [1..1000])#end#end#end",
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        format!("template evaluation exceeded {} steps", eval::MAX_STEPS),
        "{e}"
    );
    // doubling a string is bounded (an interpolated string renders as output does)
    let e = run("#set($s = 'xxxxxxxxxxxxxxxx')#foreach($i in [1..40])#set($s = \"$s$s\")#end")
        .unwrap_err();
    assert_eq!(e.message, "output too large", "{e}");
}

/// Each case runs under a deadline: a search that no longer stops fails the test
/// instead of stalling it.
#[test]
fn catastrophic_regex_is_bounded() {
    let a80 = "a".repeat(80);
    // Nothing fancy in the pattern: the search is linear (the regex crate's), no match.
    let src = format!("#set($s = '{a80}!')$s.replaceAll('(a+)+b', 'x')");
    let out = within_deadline("(a+)+b", move || run(&src, NONE)).unwrap();
    assert_eq!(out, format!("{a80}!"));
    // A back reference needs the backtracking VM: its step limit ends the search, with
    // the method and the limit named.
    let src = format!(
        "#set($s = '{}!')$s.replaceAll('(a|aa)+\\1b', 'x')",
        "a".repeat(49)
    );
    let e = within_deadline("(a|aa)+\\1b", move || run(&src, NONE)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "t.vtl:1:67: invocation of method 'replaceAll' failed: regex search failed: gave up after 1000000 backtracking steps"
    );
}

#[test]
fn self_referencing_collections_do_not_overflow() {
    let out = run("#set($m = {})#set($d = $m.put('me', $m))$m", NONE).unwrap();
    assert_eq!(out, "{me=(this Map)}");
    let out = run("#set($l = [])#set($d = $l.add($l))$l", NONE).unwrap();
    assert_eq!(out, "[(this Collection)]");
    // A cycle through another list has no "(this Collection)": Java's toString recurses
    // until its stack overflows; here printing stops at the depth limit, with an error.
    let e = run("#set($a = [])#set($b = [$a])#set($d = $a.add($b))$a", NONE).unwrap_err();
    assert_eq!(
        e.to_string(),
        "t.vtl:1:50: value nested too deeply to print"
    );
    // Two maps that hold each other under different keys differ at once (HashMap.equals).
    let out = run(
        "#set($a = {})#set($b = {'a': $a})#set($d = $a.put('b', $b))#if($a == $b)x#else y#end",
        NONE,
    )
    .unwrap();
    assert_eq!(out, " y");
    // Under the same key, equals recurses for ever (Java: StackOverflowError); here the
    // depth limit ends it and the maps are not equal.
    let out = run(
        "#set($a = {})#set($b = {'k': $a})#set($d = $a.put('k', $b))#if($a == $b)x#else y#end",
        NONE,
    )
    .unwrap();
    assert_eq!(out, " y");
}

/// Inputs that once crashed or hung (found by fuzzing) stay here as regressions: none
/// may panic, and together they must finish before the deadline.
#[test]
fn fuzz_regressions() {
    within_deadline("the fuzz regressions", || {
        for src in FUZZ_REGRESSIONS {
            no_panic(src);
        }
    });
}

const FUZZ_REGRESSIONS: &[&str] = &["$\\!", "#{", "\\", "$a.b($", "#set($a.b[0] = 1)"];

#[test]
fn templates_are_shareable_between_threads() {
    let t = std::sync::Arc::new(Template::parse("t.vtl", "$context.connectionId").unwrap());
    let hs: Vec<_> = (0..4)
        .map(|i| {
            let t = t.clone();
            std::thread::spawn(move || {
                let mut r = Request::new();
                r.set_context("connectionId", &format!("c{}", i));
                render(&t, &r).unwrap()
            })
        })
        .collect();
    for (i, h) in hs.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), format!("c{}", i));
    }
}

/// The renderer's shortcuts give what the general evaluation gives: the fused
/// `$util.escapeJavaScript(x).replaceAll("\\'","'")` (escaped straight into the output) against
/// the same replacement written with another regex (`[\\]'`, not fused), for every kind of
/// reference and argument.
#[test]
fn fused_escape_matches_general_path() {
    let values = [
        "plain",
        "",
        "it's",
        "\\'",
        "a\\'b''\\\\'c",
        "q\"uote / back\\slash",
        "\u{8}\u{c}\n\r\t\u{1}\u{1f}\u{7f}",
        "é€😀 and 'é'",
        "$x #set($y = 1) ${z}",
    ];
    let forms = [
        "$util.escapeJavaScript($v).replaceAll(FIX)",
        "$!util.escapeJavaScript($v).replaceAll(FIX)",
        "${util.escapeJavaScript($v).replaceAll(FIX)}",
        "$!{util.escapeJavaScript($v).replaceAll(FIX)}",
        "\\$util.escapeJavaScript($v).replaceAll(FIX)",
        "$$util.escapeJavaScript($v).replaceAll(FIX)",
        "$util.escapeJavaScript($nope).replaceAll(FIX)",
        "$!util.escapeJavaScript($nope).replaceAll(FIX)",
        "$util.escapeJavaScript(12).replaceAll(FIX)",
        "$util.escapeJavaScript($v).replaceAll(FIX).length()",
        "$util.escapeJavaScript(\"<$v>\").replaceAll(FIX)",
        "#set($e = $util.escapeJavaScript($v).replaceAll(FIX))[$e]",
        "#set($e = \"$util.escapeJavaScript($v).replaceAll(FIX)\")[$e]",
        "#foreach($n in $input.params().header.keySet())$util.escapeJavaScript($input.params().header.get($n)).replaceAll(FIX)|#end",
    ];
    for v in values {
        let input = In {
            headers: &[("X-V", "")],
            ..NONE
        };
        let mut req = request(input);
        req.headers = vec![("X-V".to_string(), v.to_string())];
        for form in forms {
            let src = format!("#set($v = $input.params('X-V')){}", form);
            let (fix, other) = ("\"\\\\'\",\"'\"", "\"[\\\\]'\",\"'\"");
            let fused = src.replace("FIX", fix);
            let general = src.replace("FIX", other);
            let render_src = |s: &str| Template::parse("t.vtl", s).and_then(|t| render(&t, &req));
            // (an escaped reference prints its source text: the regex as written)
            let (a, b) = (
                render_src(&fused),
                render_src(&general).map(|out| out.replace(other, fix)),
            );
            assert_eq!(a, b, "value {:?}, template {}", v, fused);
        }
        // and the text itself is Commons Lang's escape without the quote's backslash
        let t = Template::parse(
            "t.vtl",
            "$util.escapeJavaScript($input.params('X-V')).replaceAll(\"\\\\'\",\"'\")",
        )
        .unwrap();
        assert_eq!(
            render(&t, &req).unwrap(),
            apigw::escape_javascript(v).replace("\\'", "'"),
            "{:?}",
            v
        );
    }
}

/// `$map.get($key)` (the Map.get shortcut) with the map's own key, an equal key built
/// elsewhere, a missing key, and a key of another type.
#[test]
fn map_get_shortcut() {
    let input = In {
        headers: &[("A", "1"), ("B", "2"), ("C", "3")],
        ..NONE
    };
    let out = run(
        "#set($h = $input.params().header)#foreach($k in $h.keySet())$k=$h.get($k);#end\
         $h.get(\"B\") $h.get('C') [$h.get('D')] [$h.get(1)] $h.get(\"$h.get('A')\")",
        input,
    )
    .unwrap();
    assert_eq!(
        out,
        "A=1;B=2;C=3;2 3 [$h.get('D')] [$h.get(1)] $h.get(\"$h.get('A')\")"
    );
    let out = run(
        "#set($m = {1: 'one', 'x': $nope})$m.get(1) $m.get('x') $!m.get('x')|#if($m.get(1))t#end",
        NONE,
    )
    .unwrap();
    assert_eq!(out, "one $m.get('x') |t");
}
