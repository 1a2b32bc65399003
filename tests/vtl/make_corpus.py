#!/usr/bin/env python3
"""Writes corpus.json, the differential corpus: template/input cases rendered by the Rust
engine, Velocity 1.7 and airspeed. Run it after editing; the JSON is what the tests load."""

import json
from pathlib import Path

CASES: list[dict] = []


def case(name, template=None, *, file=None, headers=(), query=(), body=None, context=None,
         stage=()):
    c = {"name": name}
    if file:
        c["template_file"] = file
    else:
        c["template"] = template
    if headers:
        c["headers"] = [list(h) for h in headers]
    if query:
        c["query"] = [list(q) for q in query]
    if body is not None:
        c["body"] = body
    if context:
        c["context"] = dict(context)
    if stage:
        c["stage_variables"] = [list(s) for s in stage]
    CASES.append(c)


H2 = [("Host", "abc123defg.execute-api.us-east-1.amazonaws.com"), ("Sec-WebSocket-Version", "13")]
HOSTILE = '", "connectionid": {"S": "x"}, "a": "'

# ------------------------------------------------------------------ shipped templates
case("connect/basic", file="connect", headers=H2, query=[("token", "abc")])
case("connect/no-headers-no-query", file="connect")
case("connect/20-headers-5-query", file="connect",
     headers=[("X-Header-%02d" % i, "value %d" % i) for i in range(20)],
     query=[("q%d" % i, "v%d" % i) for i in range(5)])
case("connect/hostile-header-injection", file="connect", headers=[("X-Evil", HOSTILE)] + H2)
case("connect/hostile-query-injection", file="connect", query=[("q", HOSTILE), ("k", "\"}}, \"x\": {\"S")])
case("connect/quotes-backslashes", file="connect",
     headers=[("X-Q", "a\"b'c\\d/e"), ("X-BS", "\\\\'\\'\\"), ("X-Slash", "</script>")])
case("connect/control-chars", file="connect",
     headers=[("X-C", "tab\there\x01\x08\x0c\x1f\x7f end"), ("X-NL", "line1\nline2\r\nline3\r")])
case("connect/non-ascii-emoji", file="connect",
     headers=[("X-U", "héllo wörld ñ € 日本"), ("X-E", "smile 😀 and 🇫🇷"), ("X-LS", "a\u2028b\u2029c\u0085d")],
     query=[("naïve", "ça va")])
case("connect/vtl-in-data", file="connect",
     headers=[("X-V", "$context.connectionId"), ("X-S", "#set($x = 1)$x"), ("X-D", "${x} $!y #end ## c #* c *#"),
              ("X-I", "#if(true)yes#end"), ("X-Esc", "\\$context.stage \\#if")],
     query=[("q", "$util.escapeJavaScript('x')"), ("p", "#foreach($i in [1..3])$i#end")])
case("connect/header-named-get", file="connect",
     headers=[("get", "g"), ("keySet", "k"), ("size", "s"), ("isEmpty", "e"), ("class", "c"),
              ("containsKey", "ck"), ("entrySet", "es")])
case("connect/header-name-special", file="connect",
     headers=[("X-\"Quoted\"", "v1"), ("X-'Apos'", "v2"), ("X-\\Back", "v3"), ("", "empty-name"),
              ("X-Ü", "v4")])
case("connect/duplicate-header", file="connect",
     headers=[("X-A", "first"), ("X-B", "b"), ("X-A", "second")])
case("connect/empty-values", file="connect", headers=[("X-Empty", "")], query=[("q", "")])
case("connect/query-named-querystring", file="connect",
     query=[("querystring", "x"), ("header", "y"), ("path", "z")])
case("connect/context-hostile", file="connect",
     context={"connectionId": "abc\"def'ghi\\jkl/", "identity.sourceIp": "1.2.3.4\", \"x\": \"",
              "identity.userAgent": "Mozilla/5.0 (X11; Linux) 'quoted' \"dq\" </script>",
              "stage": "prod$context.stage", "domainName": "#set($a=1)d.example", "apiId": "api\n\t1"})
case("connect/context-non-ascii", file="connect",
     context={"connectionId": "conn-é-😀", "identity.userAgent": "agent ñ\u0001"})
case("connect/ttl-zero-epoch", file="connect", context={"requestTimeEpoch": "0", "connectedAt": "0"})
case("connect/ttl-large-epoch", file="connect",
     context={"requestTimeEpoch": "9223372036854775807", "connectedAt": "9223372036854775807"})
case("connect/ttl-negative-epoch", file="connect", context={"requestTimeEpoch": "-1999"})
case("connect/ttl-non-numeric-epoch", file="connect", context={"requestTimeEpoch": "not-a-number"})
case("connect/1005-headers-maxloops", file="connect",
     headers=[("h%04d" % i, "v%d" % i) for i in range(1005)])
case("connect/1000-headers-exactly", file="connect",
     headers=[("h%04d" % i, "v") for i in range(1000)])
case("disconnect/basic", file="disconnect", headers=H2)
case("disconnect/hostile-id", file="disconnect", context={"connectionId": HOSTILE + "\\'"})
case("disconnect/vtl-in-id", file="disconnect", context={"connectionId": "$context.stage#stop"})
case("disconnect/non-ascii-id", file="disconnect", context={"connectionId": "ü😀\u2028"})

# ------------------------------------------------------------------ text, references
case("text/plain", "Hello, world!\nLine 2\n")
case("text/empty", "")
case("text/crlf", "a\r\nb\r\n")
case("ref/undefined", "$nope ${nope} $nope.x $nope.y() $nope[0] $context.nope.deeper\n")
case("ref/quiet", "[$!nope][$!{nope}][$!nope.x][$!context.nope]\n")
case("ref/formal", "${context.stage}x ${context.identity.sourceIp}y\n")
case("ref/context-all", "$context\n")
case("ref/context-identity", "$context.identity\n$context.identity.sourceIp|$context.identity.userAgent\n")
case("ref/context-numbers", "$context.connectedAt $context.requestTimeEpoch $context.status $context.integrationLatency\n")
case("ref/context-strings",
     "$context.requestTime|$context.eventType|$context.routeKey|$context.messageId|$context.messageDirection\n"
     "$context.error.messageString|$context.error.message|$context.error.responseType|$context.authorizer.principalId\n")
case("ref/context-authorizer-extra", "$context.authorizer.claims.sub $context.authorizer\n",
     context={"authorizer.claims.sub": "user-42"})
case("ref/identifier-with-dash", "#set($a = 'A')$a-b $a_b ${a}-b\n")
case("ref/dot-not-property", "#set($a = 'A')$a. $a.1 $a._x $a..b\n")
case("ref/dollar-text", "cost: $5, $ 10, $$, $!, $!!, $[, $., a$\n")
case("ref/map-get-forms", "#set($m = {'k': 'v', 'n': 2})$m.k $m.get('k') $m['k'] $m.n $m.nope|$!m.nope\n")
case("ref/list-index", "#set($l = ['a', 'b', 'c'])$l[0] $l[2] $l[-1] $l.get(1) $l\n")
case("ref/list-index-out-of-range", "#set($l = ['a'])$l[5]\n")
case("ref/method-chain", "#set($s = '  Mixed Case  ')[$s.trim().toUpperCase().substring(0, 5)]\n")
case("ref/null-method-result", "#set($m = {})$m.get('x') $!m.get('x') $m.put('k', 'v') $m.put('k', 'w')\n")
case("ref/hash-text", "# heading, #1, #{, #x-y, # \n")
case("ref/literal-of-nested-reference", "$nope[$!foreach] $nope.get($!{velocityCount}) \\$nope.get($a)\n")
case("ref/prefixes-before-reference", "#set($a = 'A')$$a #$a $!$a\n")

# ------------------------------------------------------------------ escapes
case("escape/defined-undefined", "#set($a = 'A')\\$a \\$nope \\\\$a \\\\$nope \\\\\\$a \\${a} \\$!a\n")
case("escape/directives", "\\#if \\#set($x) \\#end \\#foreach \\#else \\#foo \\\\#if(true)yes#end\n")
case("escape/backslashes-text", "a\\b \\\\ c\\n \\t \\\\\\ end\\\n")
case("escape/in-string", "#set($a = 'A')#set($s = \"\\$a and $a\")$s\n")

# ------------------------------------------------------------------ comments
case("comment/line", "a ## comment\nb\n## full line\nc\n")
case("comment/block", "a #* block\nspanning *# b\n#* whole line *#\nc\n")
case("comment/formal", "x #** doc *# y\n")
case("comment/at-eof", "a ## no newline")
case("comment/unterminated-block", "a #* never closed\nb\n")
case("comment/textblock", "#[[ $a #if(true) raw ]]# done\n")

# ------------------------------------------------------------------ #set
case("set/kinds",
     "#set($s = 'str')#set($d = \"dq $s\")#set($i = 42)#set($f = 3.25)#set($b = true)#set($l = [1, 'two', 3.0])"
     "#set($m = {'a': 1, 'b': [true, false]})#set($r = [3..1])\n$s|$d|$i|$f|$b|$l|$m|$r\n")
case("set/null-keeps-old-value", "#set($a = 'old')#set($a = $nope)$a #set($a = $m.get('x'))$a\n")
case("set/map-and-list-element", "#set($m = {'a': 1})#set($m.b = 2)#set($m['c'] = 3)$m #set($l = [1, 2])#set($l[0] = 'x')$l\n")
case("set/gobbling",
     "a\n#set($x = 1)\nb\n   #set($y = 2)\nc\n#set($z = 3)   \nd $x #set($w = 4) e\n  #set($v = 5) f\n")
case("set/start-of-template-indent", "    #set($x = 1)\n$x\n")
case("set/after-reference-eats-space", "#set($a = 'A')$a   #set($b = 'B')$b\n")
case("set/crlf", "#set($x = 1)\r\nline\r\n#set($y = 2)\r\n$x$y\r\n")
case("set/braced", "#{set}($x = 'braced')$x\n")
case("set/expression", "#set($x = (1 + 2) * 3 - 4 / 2)$x\n")

# ------------------------------------------------------------------ #if
case("if/basic", "#if(true)yes#end #if(false)no#else else#end\n")
case("if/elseif-chain", "#set($n = 2)#if($n == 1)one#elseif($n == 2)two#elseif($n == 3)three#else other#end\n")
case("if/truthiness",
     "#set($e = '')#set($z = 0)#set($f = false)#set($l = [])#set($m = {})"
     "[#if($e)e#end][#if($z)z#end][#if($f)f#end][#if($nope)n#end][#if($l)l#end][#if($m)m#end]"
     "[#if('lit')s#end][#if(1)i#end][#if($!nope)q#end][#if(!$nope)not#end]\n")
case("if/braced", "#{if}(true)A#{else}B#{end}C\n")
case("if/gobbling", "x\n#if(true)\n  inside\n#else\n  other\n#end\ny\n  #if(true)\n  indented\n  #end\nz\n")
case("if/trailing-space-before-newline", "#if(true)  \nA\n#else  \nB\n#end  \nC\n")
case("if/inline", "x #if(true) y #end z\n")
case("if/nested", "#if(true)#if(false)a#elseif(true)b#end#end\n")
case("if/crlf-gobbling", "a\r\n#if(true)\r\nb\r\n#else\r\nc\r\n#end\r\nd\r\n#foreach($i in [1..2])\r\n$i\r\n#end\r\n")
case("if/end-at-eof", "#if(true)x#end")
case("if/whitespace-before-paren", "#if (true)A#end #if\n(true)B#end\n")

# ------------------------------------------------------------------ operators
case("op/comparisons",
     "#set($a = 5)#set($b = 7)[#if($a < $b)lt#end][#if($a <= 5)le#end][#if($b > $a)gt#end][#if($b >= 7)ge#end]"
     "[#if($a == 5)eq#end][#if($a != $b)ne#end]\n")
case("op/word-forms",
     "#set($a = 5)[#if($a lt 6 and $a gt 4)and#end][#if($a eq 5 or false)or#end][#if(not false)not#end]"
     "[#if($a le 5 && $a ge 5 && $a ne 6)words#end]\n")
case("op/logic", "#if(true && !false)a#end #if(false || true)b#end #if(!(true && false))c#end #if(! true)d#else e#end\n")
case("op/equality-mixed-types",
     "#if('1' == 1)str-int#end #if(1 == 1.0)int-double#end #if($nope == $nope2)null-null#end "
     "#if('a' == $nope)x#else null-str#end #if([1, 2] == [1, 2])lists#end #if(true == 'true')bool-str#end\n")
case("op/string-compare-false", "#if('a' < 'b')lt#else not-numbers#end\n")
case("op/short-circuit", "#set($l = [])#if(true || $l.add(1))x#end#if(false && $l.add(2))y#end$l.size()\n")

# ------------------------------------------------------------------ arithmetic
case("math/basic", "#set($a = 7)#set($b = 2)$a+$b=#set($x = $a + $b)$x, #set($x = $a - $b)$x, #set($x = $a * $b)$x, "
     "#set($x = $a / $b)$x, #set($x = $a % $b)$x\n")
case("math/truncation", "#set($x = -7 / 2)$x #set($x = 7 / -2)$x #set($x = -7 % 2)$x #set($x = 7 % -2)$x\n")
case("math/int-overflow-to-long", "#set($x = 2147483647 + 1)$x #set($y = -2147483648 - 1)$y #set($z = 65536 * 65536)$z\n")
case("math/long-overflow-to-biginteger", "#set($x = 9223372036854775807 + 1)$x #set($y = 9223372036854775807 * 2)$y\n")
case("math/long-literal", "#set($x = 3000000000)$x #set($y = $x / 1000)$y\n")
case("math/divide-by-zero", "#set($x = 'unchanged')#set($x = 1 / 0)$x #set($x = 5 % 0)$x\n")
case("math/doubles", "#set($a = 7 / 2.0)$a #set($b = 0.1 + 0.2)$b #set($c = 1.5e3)$c #set($d = 1e-4)$d "
     "#set($e = 12345678.9)$e #set($f = 100.0)$f #set($g = -0.5 * 2)$g\n")
case("math/string-concat", "#set($s = 'n=' + 5)$s #set($t = 5 + 'x')$t #set($u = 'a' + [1, 2])$u "
     "#set($v = $nope + 'x')$v #set($w = 'x' + $nope.y)$w\n")
case("math/non-numbers-null", "#set($x = 'keep')#set($x = 'a' - 1)$x #set($x = [] * 2)$x\n")
case("math/ttl-formula", "#set($ttl = $context.requestTimeEpoch / 1000 + 86400)$ttl\n")
case("math/negative-literal-needs-space", "#set($x = 5 - 3)$x\n")
case("math/long-min-times-minus-one", "#set($x = -9223372036854775808 * -1)$x #set($y = -9223372036854775808 / -1)$y\n")
case("math/null-operand-literal", "#set($x = 1/0 + 'a')$x #set($y = (1 / 0) + 'b')$y\n")

# ------------------------------------------------------------------ literals
case("lit/single-vs-double", "#set($a = 'A')#set($s = 'no $a interp')#set($d = \"yes $a interp\")$s | $d\n")
case("lit/quote-doubling", "#set($s = 'it''s')#set($d = \"say \"\"hi\"\"\")$s $d\n")
case("lit/unicode-escape", "#set($d = \"\\u0041\\u00e9 \\n stays\")$d\n")
case("lit/interp-directives", "#set($d = \"#if(true)T#else F#end-#foreach($i in [1..3])$i#end\")$d\n")
case("lit/interp-undefined", "#set($d = \"[$nope][$!nope][${nope}]\")$d\n")
case("lit/interp-line-comment", "#set($d = \"keep ## dropped\")[$d]\n")
case("lit/interp-escape-quote", "#set($d = \"a\\\\'b\")$d #set($e = 'c\\\\d')$e\n")
case("lit/numbers", "#set($l = [0, -1, 42, 2147483648, 1.0, -2.5, .5, 1e2])$l\n")
case("lit/list-map-nested", "#set($x = {'l': [1, {'k': 'v'}], 'e': {}, 'n': []})$x $x.l[1].k\n")
case("lit/range", "#set($r = [1..5])$r #set($d = [2..-2])$d #set($n = 3)#set($v = [$n..1])$v\n")

# ------------------------------------------------------------------ #foreach
case("foreach/list", "#foreach($x in ['a', 'b', 'c'])$x#if($foreach.hasNext),#end#end\n")
case("foreach/counters",
     "#foreach($x in ['a', 'b', 'c'])[$foreach.index $foreach.count $velocityCount $velocityHasNext "
     "$foreach.first $foreach.last $foreach.hasNext]#end\n")
case("foreach/range-desc", "#foreach($i in [3..1])$i#end #foreach($i in [-1..1])$i,#end\n")
case("foreach/map-values", "#set($m = {'a': 1, 'b': 2})#foreach($v in $m)$v#end #foreach($k in $m.keySet())$k=$m.get($k);#end\n")
case("foreach/entry-set", "#set($m = {'a': 1, 'b': 2})#foreach($e in $m.entrySet())$e.key:$e.value $e.getKey()/$e.getValue() ($e) #end\n")
case("foreach/empty-null-string", "[#foreach($x in [])x#end][#foreach($x in $nope)x#end][#foreach($x in 'str')x#end]\n")
case("foreach/nested-parent", "#foreach($a in [1, 2])#foreach($b in ['x', 'y'])$a$b($foreach.parent.index,$foreach.index) #end#end\n")
case("foreach/break", "#foreach($i in [1..10])#if($i > 3)#break#end$i#end done\n")
case("foreach/break-outer", "#foreach($a in [1..3])#foreach($b in [1..3])#if($b == 2)#break($foreach.parent)#end$a$b #end#end end\n")
case("foreach/var-restored", "#set($x = 'outer')#foreach($x in [1, 2])$x#end $x #foreach($y in [1])#end[$y] $velocityCount\n")
case("foreach/gobbling", "start\n#foreach($i in [1..2])\n  item $i\n#end\nend\n")
case("foreach/maxloops-1000", "#foreach($i in [1..1500])#if($foreach.count > 998)$i:$foreach.hasNext:$velocityCount #end#end|$foreach\n")
case("foreach/maxloops-list", "#set($l = [])#foreach($i in [1..1200])#set($d = $l.add($i))#end$l.size() #foreach($x in $l)#set($last = $x)#end$last\n")
case("foreach/set-inside-persists", "#foreach($i in [1..3])#set($last = $i)#end$last\n")
case("foreach/null-element", "#set($l = [1, $nope, 3])#foreach($x in $l)[$x]#end\n")
case("foreach/foreach-outside", "$foreach $!foreach.index\n")
case("foreach/in-keyword-any-word", "#foreach($a for [1, 2])$a#end\n")
case("foreach/modify-during-iteration", "#set($l = [1, 2])#foreach($x in $l)#set($d = $l.add(3))$x#end\n")

# ------------------------------------------------------------------ #stop, unknown directives
case("stop/top", "before #stop after\n")
case("stop/in-foreach", "#foreach($i in [1..3])$i#if($i == 2)#stop#end#end never\n")
case("stop/in-string", "#set($s = \"a#stop b\")never\n")
case("directive/unknown-renders-as-text", "#foo #foo($a 'b') #{bar} #@blk\n")

# ------------------------------------------------------------------ Java methods: strings
case("str/replaceAll-escape-fix", "#set($s = \"it's\")$util.escapeJavaScript($s).replaceAll(\"\\\\'\",\"'\")\n")
case("str/replaceAll-groups", "#set($s = 'john smith')$s.replaceAll('(\\w+) (\\w+)', '$2, $1') $s.replaceAll('[aeiou]', '*')\n")
case("str/replaceAll-special-replacement", "#set($s = 'a.b.c')$s.replaceAll('\\.', '\\$') $s.replaceAll('b', 'x\\\\y') $s.replaceFirst('\\.', '-')\n")
case("str/replaceAll-classes", "#set($s = 'Tab\there  two  spaces 123')$s.replaceAll('\\s+', ' ') $s.replaceAll('\\d', '#') $s.replaceAll('[^A-Za-z]', '')\n")
case("str/replaceAll-anchors-dot", "#set($s = \"line1\nline2\")$s.replaceAll('.', 'x') $s.replaceAll('^l', 'L') $s.replaceAll('2$', '!')\n")
case("str/replaceAll-empty-match", "#set($s = 'abc')$s.replaceAll('x*', '-') $s.replaceAll('', '.')\n")
case("str/replaceAll-quantifiers", "#set($s = 'aaa bbb')$s.replaceAll('a{2}', 'X') $s.replaceAll('b+?', 'Y') $s.replaceAll('(?:a|b)+', 'Z')\n")
case("str/replace-literal", "#set($s = 'a.b.c')$s.replace('.', '$') $s.replace('', '-')\n")
case("str/basics",
     "#set($s = 'Hello World')$s.length() $s.contains('World') $s.startsWith('He') $s.endsWith('x') "
     "$s.indexOf('o') $s.indexOf('o', 5) $s.lastIndexOf('o') $s.indexOf('z') $s.toLowerCase() $s.toUpperCase()\n")
case("str/substring", "#set($s = 'Hello World')$s.substring(6) $s.substring(0, 5) [$s.substring(11)]\n")
case("str/substring-error", "#set($s = 'Hi')$s.substring(5)\n")
case("str/trim-isEmpty-equals",
     "#set($s = \"  pad \t\")[$s.trim()] $s.isEmpty() ''.isEmpty() #set($e = '')$e.isEmpty() $s.equals('x') "
     "#set($a = 'a')$a.equals('a') $a.equals($nope) $a.equalsIgnoreCase('A') $a.empty $e.empty\n")
case("str/split", "#set($s = 'a,b,,c,,')#foreach($p in $s.split(','))[$p]#end $s.split(',').size() "
     "#foreach($p in $s.split(',', -1))[$p]#end #set($t = 'a1b22c')#foreach($p in $t.split('\\d+'))$p#end\n")
case("str/non-ascii-methods", "#set($s = 'héllo 😀!')$s.length() $s.toUpperCase() $s.indexOf('!') $s.substring(6)\n")
case("str/matches", "#set($s = 'abc123')$s.matches('[a-z]+\\d+') $s.matches('abc') $s.matches('.*2.*')\n")
case("str/wrong-arg-types", "#set($s = 'abc')$s.substring('1') $s.contains(1) $s.charAt(1)\n")

# ------------------------------------------------------------------ Java methods: maps, lists
case("map/methods",
     "#set($m = {'a': 1, 'b': 'two'})$m.keySet() $m.values() $m.entrySet() $m.size() $m.isEmpty() "
     "$m.containsKey('a') $m.containsKey('z') $m.get('b') $!m.get('z')\n")
case("map/put-remove-order", "#set($m = {'x': 1})#set($d = $m.put('y', 2))#set($d = $m.put('x', 3))$m #set($d = $m.remove('x'))$m\n")
case("map/keyset-is-a-set", "#set($m = {'a': 1})[$!m.keySet()[0]] $m.keySet().contains('a') #if($m.keySet() == ['a'])tostring-eq#end\n")
case("map/non-string-keys", "#set($m = {1: 'one', 'a': 'A', true: 'T'})$m $m.get(1) $!m.get('1') $m.get(true)\n")
case("list/methods", "#set($l = [1, 'b', 3])$l.size() $l.get(1) $l.isEmpty() $l.contains('b') $l.contains(2) $l.empty\n")
case("list/add-set", "#set($l = [])#set($ok = $l.add('x'))$ok $l #set($old = $l.set(0, 'y'))$old $l\n")
case("list/get-out-of-range", "#set($l = [1])$l.get(3)\n")

# ------------------------------------------------------------------ $input
case("input/params-map", "$input.params()\n$input.params().header\n$input.params().querystring $input.params().path\n",
     headers=[("h1", "v1"), ("h2", "v2")], query=[("q1", "x")])
case("input/params-name-precedence", "[$input.params('id')] [$input.params('h')] [$input.params('missing')]\n",
     headers=[("id", "from-header"), ("h", "hv")], query=[("id", "from-query")])
case("input/params-foreach-escape",
     "#set($hs = $input.params().header)#foreach($n in $hs.keySet())$n=$util.escapeJavaScript($hs.get($n));#end\n",
     headers=[("A", "x\"y"), ("B", "é")])
case("input/body-raw", "[$input.body]\n", body="raw \"text\" with $dollar and #hash")
case("input/json", "$input.json('$') | $input.json('$.a') | $input.json('$.a.b[1]') | $input.json('$.s') | $!input.json('$.missing')\n",
     body='{"a": {"b": [1, "two", true, null]}, "s": "str"}')
case("input/path", "$input.path('$.a.b') $input.path('$.a.b').size() $input.path('$.a.b')[1] $input.path('$.n') $input.path('$.a').b\n",
     body='{"a": {"b": [1, "two", false]}, "n": 12345678901}')
case("input/json-not-json", "[$!input.json('$')] [$input.path('$')]\n", body="not json {")
case("input/json-body-with-vtl", "$input.json('$.x') $input.path('$.x')\n", body='{"x": "$context.stage #set($a = 1)"}')

# ------------------------------------------------------------------ $util
case("util/escapeJavaScript-all",
     "$util.escapeJavaScript(\"q' d\"\" b\\ s/ t\t n\n r\r é 😀 \u0001 \u007f\")\n")
case("util/escapeJavaScript-null", "[$util.escapeJavaScript($nope)] [$!util.escapeJavaScript($nope)]\n")
case("util/escapeJavaScript-number", "$util.escapeJavaScript(5)\n")
case("util/urlEncode-decode", "$util.urlEncode('a b&c=d/é~*._-') $util.urlDecode('a+b%26c%3Dd%2F%C3%A9')\n")
case("util/urlDecode-bad", "$util.urlDecode('%zz')\n")
case("util/base64", "$util.base64Encode('héllo wörld') $util.base64Decode('aMOpbGxvIHfDtnJsZA==') $util.base64Decode('aGk')\n")
case("util/base64Decode-bad", "$util.base64Decode('!!!')\n")
case("util/parseJson", "#set($o = $util.parseJson('{\"a\": [1, 2.5, \"s\"], \"b\": {\"c\": null}, \"t\": true}'))$o $o.a[2] $o.b $o.t\n")
case("util/parseJson-invalid", "$util.parseJson('{bad')\n")
case("stage/variables", "$stageVariables $stageVariables.env [$!stageVariables.missing]\n",
     stage=[("env", "prod"), ("table", "t-1")])

# ------------------------------------------------------------------ safety
case("safety/header-with-vtl-printed", "$input.params().header.get('X')\n", headers=[("X", "$context.connectionId #set($a=1)$a")])
case("safety/context-with-vtl", "$context.stage $context.connectionId\n",
     context={"stage": "#if(true)pwned#end", "connectionId": "${context.stage}$util"})
case("safety/parsed-json-strings", "$util.parseJson('\"#set($x = 1)$x\"')\n")
case("safety/body-param", "$input.body\n", body="#foreach($i in [1..3])$i#end ## $context.apiId")

# ------------------------------------------------------------------ errors (both engines must fail)
case("error/unclosed-if", "#if(true) never closed\n")
case("error/stray-end", "text #end\n")
case("error/true-as-reference", "$true\n")
case("error/dollar-at-eof", "ends with $")
case("error/hash-at-eof", "ends with #")
case("error/negative-literal-after-number", "#set($x = 5-3)$x\n")
case("error/unterminated-string", "#set($x = \"abc)\n")
case("error/foreach-no-args", "#foreach\nx\n#end\n")
case("error/bad-regex", "#set($s = 'a')$s.replaceAll('(', 'x')\n")
case("error/method-args-expression", "$context.stage.substring(1 + 1)\n")
case("error/unclosed-textblock", "#[[ never")
case("error/lexical-in-directive", "#if($a ~ 1)x#end\n")

# ------------------------------------------------------------------ whitespace-heavy realistic template
case("realistic/dynamodb-put",
     "#set($body = $util.parseJson($input.body))\n"
     "{\n"
     "  \"TableName\": \"t\",\n"
     "  \"Item\": {\n"
     "    \"id\": {\"S\": \"$context.connectionId\"},\n"
     "    #if($body.name)\"name\": {\"S\": \"$util.escapeJavaScript($body.name).replaceAll(\"\\\\'\",\"'\")\"},#end\n"
     "    \"tags\": {\"L\": [\n"
     "      #foreach($t in $body.tags)\n"
     "      {\"S\": \"$util.escapeJavaScript($t)\"}#if($foreach.hasNext),#end\n"
     "      #end\n"
     "    ]}\n"
     "  }\n"
     "}\n",
     body='{"name": "O\'Brien \\"the\\" 😀", "tags": ["a", "b\'c", "d/e"]}')
case("realistic/lambda-style-json",
     "{\"connectionId\": \"$context.connectionId\", \"headers\": {\n"
     "#foreach($k in $input.params().header.keySet())\n"
     "  \"$k\": \"$util.escapeJavaScript($input.params().header.get($k))\"#if($foreach.hasNext),#end\n\n"
     "#end\n"
     "}, \"stage\": \"$stageVariables.env\"}\n",
     headers=[("A", "1"), ("B", "two words")], stage=[("env", "dev")])


def main():
    out = Path(__file__).resolve().parent / "corpus.json"
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names)), "duplicate names"
    out.write_text(json.dumps(CASES, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print("%d cases -> %s" % (len(CASES), out))


if __name__ == "__main__":
    main()
