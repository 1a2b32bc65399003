"""The three VTL engines of the differential tests, behind one interface.

* ``render_rust(case)``: runs ``$WSCONN_BIN render --template FILE --header K=V ...`` once per
  case (stdout is the rendered text; exit 1 with ``error: FILE:LINE:COL: message`` on an
  error).
* ``render_java_all(cases)``: Apache Velocity 1.7 through ``java/VtlHarness.java``, every
  case in one JVM run.
* ``render_airspeed(case)``: airspeed with the API Gateway objects of ``apigw_vtl.py``.

Each returns ``Result(ok, text)``: ``ok`` False means the engine reported an error and
``text`` is the message.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
JAVA_SRC = HERE / "java" / "VtlHarness.java"
JARS = [
    "/usr/share/java/velocity.jar",
    "/usr/share/java/commons-lang.jar",
    "/usr/share/java/commons-collections3.jar",
]
def _templates_dir() -> Path:
    """The project's mapping-templates/ folder: the nearest one above this file."""
    for d in [HERE, *HERE.parents]:
        if (d / "mapping-templates" / "connect.vtl").exists():
            return d / "mapping-templates"
    raise FileNotFoundError("mapping-templates/connect.vtl not found above " + str(HERE))


TEMPLATES = {
    "connect": _templates_dir() / "connect.vtl",
    "disconnect": _templates_dir() / "disconnect.vtl",
}
PLACEHOLDERS = {"@@TABLE_NAME@@": "t-connections", "@@CONNECTION_TTL_SECONDS@@": "86400"}

# A complete, fixed $context: every WebSocket variable has a value, so no engine default
# ever shows. Cases override entries.
BASE_CONTEXT = {
    "apiId": "abc123defg",
    "authorizer.principalId": "user-1",
    "connectedAt": "1700000000123",
    "connectionId": "L0SM9cOFvHcCIhw=",
    "domainName": "abc123defg.execute-api.us-east-1.amazonaws.com",
    "error.message": "none",
    "error.messageString": "\"none\"",
    "error.responseType": "NONE",
    "error.validationErrorString": "none",
    "eventType": "CONNECT",
    "extendedRequestId": "L0SM9F7SIAMF1Jg=",
    "identity.accountId": "123456789012",
    "identity.apiKey": "key-1",
    "identity.apiKeyId": "keyid-1",
    "identity.caller": "caller-1",
    "identity.cognitoAuthenticationProvider": "provider-1",
    "identity.cognitoAuthenticationType": "authenticated",
    "identity.cognitoIdentityId": "identity-1",
    "identity.cognitoIdentityPoolId": "pool-1",
    "identity.principalOrgId": "o-1",
    "identity.sourceIp": "192.0.2.10",
    "identity.user": "user-1",
    "identity.userAgent": "test-agent/1.0",
    "identity.userArn": "arn:aws:iam::123456789012:user/u1",
    "integrationLatency": "12",
    "messageDirection": "IN",
    "messageId": "msg-1",
    "requestId": "L0SM9F7SIAMF1Jg=",
    "requestTime": "14/Nov/2023:22:13:20 +0000",
    "requestTimeEpoch": "1700000000456",
    "routeKey": "$connect",
    "stage": "prod",
    "status": "200",
}


@dataclass
class Result:
    ok: bool
    text: str


def case_template(case: dict) -> str:
    if "template_file" in case:
        text = TEMPLATES[case["template_file"]].read_text(encoding="utf-8")
        for k, v in PLACEHOLDERS.items():
            text = text.replace(k, v)
        return text
    return case["template"]


def case_context(case: dict) -> list[tuple[str, str]]:
    ctx = dict(BASE_CONTEXT)
    for k, v in case.get("context", {}).items():
        ctx[k] = v
    return list(ctx.items())


def pairs(case: dict, key: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in case.get(key, [])]


# ---------------------------------------------------------------------------- Rust

def render_rust(case: dict, binary: str | None = None) -> Result:
    binary = binary or os.environ["WSCONN_BIN"]
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / (case["name"].replace("/", "_")[:60] + ".vtl")
        f.write_text(case_template(case), encoding="utf-8")
        argv = [*binary.split(), "render", "--template", str(f)]
        for k, v in pairs(case, "headers"):
            argv += ["--header", f"{k}={v}"]
        for k, v in pairs(case, "query"):
            argv += ["--query", f"{k}={v}"]
        if "body" in case:
            argv += ["--body", case["body"]]
        for k, v in case_context(case):
            argv += ["--context", f"{k}={v}"]
        for k, v in pairs(case, "stage_variables"):
            argv += ["--stage-variable", f"{k}={v}"]
        p = subprocess.run(argv, capture_output=True, timeout=60)
        if p.returncode == 0:
            return Result(True, p.stdout.decode("utf-8"))
        err = p.stderr.decode("utf-8", "replace")
        if p.returncode != 1 or not err.startswith("error: "):
            raise AssertionError(f"{case['name']}: bad exit {p.returncode}: {err!r}")
        return Result(False, err)


# ---------------------------------------------------------------------------- Java

def java_available() -> str | None:
    """None when Java can run; otherwise why not."""
    for tool in ("java", "javac"):
        if not shutil.which(tool):
            return f"{tool} not found"
    for j in JARS:
        if not Path(j).exists():
            return f"{j} not found (apt-get install velocity libcommons-lang-java libcommons-collections3-java)"
    return None


def _classpath(build: Path) -> str:
    return ":".join(JARS + [str(build)])


def compile_java(build: Path) -> None:
    build.mkdir(parents=True, exist_ok=True)
    stamp = build / "VtlHarness.class"
    if stamp.exists() and stamp.stat().st_mtime >= JAVA_SRC.stat().st_mtime:
        return
    subprocess.run(["javac", "-nowarn", "-d", str(build), "-cp", ":".join(JARS), str(JAVA_SRC)],
                   check=True, capture_output=True)


def _b64(s: str) -> str:
    return base64.b64encode(s.encode("utf-8")).decode("ascii")


def render_java_all(cases: list[dict], build: Path | None = None) -> dict[str, Result]:
    build = build or Path(tempfile.gettempdir()) / "vtl-java-harness"
    compile_java(build)
    lines = []
    for c in cases:
        f = [_b64(c["name"]), _b64(case_template(c)), _b64(c.get("body", ""))]
        for kind, items in (("header", pairs(c, "headers")), ("query", pairs(c, "query")),
                            ("context", case_context(c)), ("stage", pairs(c, "stage_variables"))):
            for k, v in items:
                f += [_b64(kind), _b64(k), _b64(v)]
        lines.append("\t".join(f))
    with tempfile.TemporaryDirectory() as d:
        inp, out = Path(d) / "in.tsv", Path(d) / "out.tsv"
        inp.write_text("\n".join(lines) + "\n", encoding="ascii")
        subprocess.run(["java", "-Xss8m", "-cp", _classpath(build), "VtlHarness", str(inp), str(out)],
                       check=True, capture_output=True, timeout=600)
        results = {}
        for line in out.read_text(encoding="ascii").splitlines():
            n, st, o = line.split("\t")
            results[base64.b64decode(n).decode("utf-8")] = Result(
                st == "OK", base64.b64decode(o).decode("utf-8"))
    return results


# ---------------------------------------------------------------------------- airspeed

class _AirspeedTimeout(Exception):
    pass


def _alarm(_signum, _frame):
    raise _AirspeedTimeout()


def render_airspeed(case: dict, timeout_s: int = 10) -> Result:
    """airspeed has no loop limit (a list that grows while it is iterated never ends), so a
    render that takes longer than timeout_s seconds counts as an error."""
    import signal

    import sys

    sys.path.insert(0, str(HERE.parent / "templates"))
    import apigw_vtl as apigw_env  # tests/templates/apigw_vtl.py, shared with that suite

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout_s)
    try:
        text = apigw_env.render_case(
            case_template(case),
            context=case_context(case),
            headers=pairs(case, "headers"),
            query=pairs(case, "query"),
            body=case.get("body", ""),
            stage_variables=pairs(case, "stage_variables"),
        )
        return Result(True, text)
    except _AirspeedTimeout:
        return Result(False, f"airspeed did not finish within {timeout_s} s")
    except Exception as e:  # noqa: BLE001 - any airspeed failure is an "error" result
        return Result(False, f"{type(e).__name__}: {e}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def load_corpus(path: Path | None = None) -> list[dict]:
    path = path or HERE / "corpus.json"
    cases = json.loads(path.read_text(encoding="utf-8"))
    names = [c["name"] for c in cases]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"duplicate case names: {sorted(dup)}")
    return cases
