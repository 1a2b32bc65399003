#!/usr/bin/env python3
"""Random differential testing of the Rust engine against Velocity 1.7 (not part of the
pytest suite; a development aid). fuzz_diff.py [N] [SEED]: generates N random templates from
VTL fragments (well-formed and broken), renders them with both engines in batch and prints
the cases whose results differ (an error on both sides counts as agreement)."""

import base64
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import engines  # noqa: E402

RUST = os.environ.get("WSCONN_BIN_BATCH", "/work/scratch/vtl/target/release/vtl-render")

VARS = ["$a", "$b", "$s", "$l", "$m", "$n", "$e", "$x", "$nope", "$context", "$context.stage",
        "$context.identity.sourceIp", "$context.requestTimeEpoch", "$foreach", "$velocityCount"]


def ref(r, depth=0):
    base = r.choice(["a", "b", "s", "l", "m", "n", "e", "x", "nope", "context", "foreach", "i", "k"])
    form = r.choice(["$%s", "$!%s", "${%s}", "$!{%s}", "$%s", "$%s"])
    out = form % base if "{" not in form else None
    parts = ""
    for _ in range(r.choice([0, 0, 1, 1, 2, 3])):
        p = r.choice([".stage", ".identity", ".sourceIp", ".size()", ".length()", ".get('a')",
                      ".get(0)", ".keySet()", ".toUpperCase()", ".substring(1)", ".isEmpty()",
                      "[0]", "['a']", "[-1]", ".a", ".b", ".hasNext", ".index", ".count",
                      ".replaceAll('a', 'b')", ".contains(\"x\")", ".put('z', 1)", ".add(9)",
                      ".equals($a)", ".split(',')", ".trim()", ".entrySet()", ".parent",
                      ".get($k)", "[$i]", ".values()", ".toString()", ".nope()", ".startsWith('a')"])
        parts += p
    if out is None:
        inner = base + parts
        return form.replace("%s", inner)
    return out + parts


def expr(r, depth=0):
    if depth > 2:
        return r.choice(["1", "'s'", "true", ref(r)])
    k = r.randrange(14)
    if k == 0:
        return str(r.choice([0, 1, -1, 7, 2147483647, 9223372036854775807, 100, 3]))
    if k == 1:
        return r.choice(["1.5", "0.1", "2.0", "1e3", "-0.5"])
    if k == 2:
        return r.choice(["'x'", "'a''b'", '"y"', '"$a-$b"', '"${a}z"', '"#if(true)t#end"', '"a""b"',
                         '"\\u0041"', "''", '""', '"$!nope"', '"##c"', '" $a "'])
    if k == 3:
        return ref(r)
    if k == 4:
        return "[" + ", ".join(expr(r, depth + 1) for _ in range(r.randrange(4))) + "]"
    if k == 5:
        return "{" + ", ".join("%s: %s" % (r.choice(["'a'", "'b'", '"c"', "1"]), expr(r, depth + 1))
                               for _ in range(r.randrange(3))) + "}"
    if k == 6:
        return "[%s..%s]" % (r.choice(["1", "3", "0", "-2", "$n"]), r.choice(["1", "5", "-1", "$n"]))
    if k in (7, 8, 9):
        op = r.choice([" + ", " - ", " * ", " / ", " % ", " == ", " != ", " < ", " > ", " <= ",
                       " >= ", " && ", " || ", " and ", " or ", " eq ", "+", "-"])
        return expr(r, depth + 1) + op + expr(r, depth + 1)
    if k == 10:
        return r.choice(["!", "! ", "not "]) + expr(r, depth + 1)
    if k == 11:
        return "(" + expr(r, depth + 1) + ")"
    if k == 12:
        return r.choice(["true", "false"])
    return ref(r)


def stmt(r, depth=0):
    k = r.randrange(24)
    ws = r.choice(["", "", " ", "  ", "\t", "\n", " \n", "\n  "])
    if k < 4:
        return r.choice(["text", " ", "\n", "a b", "{", "}", "(", ")", "[", "]", "'", '"', "!",
                         ",", ".", "-", "x.y", "1", "@", "*", "=", ":", "é€😀"]) + ws
    if k < 8:
        return ref(r) + r.choice(["", " ", "\n", ".", "x", "(", "-", "[", "]", ")"])
    if k == 8:
        return ws + "#set(%s = %s)" % (r.choice(["$a", "$b", "$x", "$m.a", "$l[0]", "$!a", "${b}"]), expr(r)) + ws
    if k == 9 and depth < 3:
        body = "".join(stmt(r, depth + 1) for _ in range(r.randrange(3)))
        s = "#if(%s)%s%s" % (expr(r), ws, body)
        if r.random() < 0.3:
            s += "#elseif(%s)%s" % (expr(r), stmt(r, depth + 1))
        if r.random() < 0.4:
            s += r.choice(["#else", "#{else}", "#else\n"]) + stmt(r, depth + 1)
        return s + r.choice(["#end", "#{end}", "#end\n", "#end  \n", ""] if r.random() < 0.1 else ["#end", "#end\n"])
    if k == 10 and depth < 3:
        body = "".join(stmt(r, depth + 1) for _ in range(r.randrange(4)))
        lst = r.choice(["[1..3]", "$l", "$m", "[]", "$m.keySet()", "[1, 2, 3]", "$nope", "'str'",
                        "$m.entrySet()", "[3..1]", "$context.identity"])
        return "#foreach(%s in %s)%s%s%s" % (r.choice(["$i", "$k", "$i", "$a"]), lst, ws, body,
                                               r.choice(["#end", "#end\n", "#{end}"]))
    if k == 11:
        return r.choice(["## c\n", "## c", "#* c *#", "#* c\n *#\n", "#** d *#", "#[[ $a #if ]]#"])
    if k == 12:
        return r.choice(["\\$a", "\\\\$a", "\\$nope", "\\#if", "\\#set", "\\#foo", "\\\\#if(true)x#end",
                         "\\", "\\\\", "\\!", "$!", "$", "#", "##", "$$a", "#$a", "$#"])
    if k == 13:
        return r.choice(["#break", "#stop", "#foo", "#foo($a)", "#{foo}", "#1", "# ", "#@x", "#break($foreach)"])
    if k == 14:
        return ws
    if k == 15:
        return r.choice(["$util.escapeJavaScript($s)", "$util.escapeJavaScript($s).replaceAll(\"\\\\'\",\"'\")",
                         "$input.params()", "$input.params('h1')", "$input.params().header",
                         "$input.json('$.a')", "$input.path('$.b')", "$input.body", "$util.urlEncode($s)",
                         "$util.base64Encode($s)", "$util.parseJson('{\"a\": [1, 2]}')", "$stageVariables",
                         "$input.params().header.keySet()", "$util.urlDecode('a%20b+c')"])
    return stmt(r, depth) if depth < 6 else "z"


PRELUDE = [
    '#set($a = "A")#set($b = 2)#set($s = "it\'s a ""s"" /é")#set($l = [1, "two", 3])'
    '#set($m = {"a": 1, "b": "bee"})#set($n = 3)#set($e = "")',
    "",
]


def gen(r):
    pre = r.choice(PRELUDE)
    return pre + "".join(stmt(r) for _ in range(r.randrange(1, 8)))


def b64(s):
    return base64.b64encode(s.encode()).decode()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    r = random.Random(seed)
    cases = []
    for i in range(n):
        cases.append({"name": "f%d" % i, "template": gen(r), "headers": [["h1", "v1"], ["Host", "x"]],
                      "query": [["q", "1"]], "body": '{"a": {"x": [1, "s"]}, "b": 2.5}'})
    java = engines.render_java_all(cases)
    lines = []
    for c in cases:
        f = [b64(c["name"]), b64(c["template"]), b64(c["body"])]
        for kind, items in (("header", c["headers"]), ("query", c["query"]),
                            ("context", engines.case_context(c))):
            for k, v in items:
                f += [b64(kind), b64(k), b64(v)]
        lines.append("\t".join(f))
    p = subprocess.run([RUST, "batch"], input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=600)
    rust = {}
    for line in p.stdout.splitlines():
        nm, st, o = line.split("\t")
        rust[base64.b64decode(nm).decode()] = (st == "OK", base64.b64decode(o).decode())
    bad = 0
    for c in cases:
        j = java[c["name"]]
        ro = rust.get(c["name"])
        if ro is None:
            print("MISSING", c["name"], repr(c["template"]))
            bad += 1
            continue
        same = j.ok == ro[0] and (not j.ok or j.text == ro[1])
        if not same:
            bad += 1
            print("---- %s %r" % (c["name"], c["template"]))
            print("  java %s %r" % ("ok " if j.ok else "ERR", j.text[:400]))
            print("  rust %s %r" % ("ok " if ro[0] else "ERR", ro[1][:400]))
    print("%d cases, %d differ" % (n, bad))


if __name__ == "__main__":
    main()
