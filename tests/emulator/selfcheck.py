#!/usr/bin/env python3
"""Self-check for tests/emulator/launcher.py (test infrastructure, not part of wsconn).

Starts the launcher on a free loopback port, drives it with boto3 through the
API Gateway v2 gap fillers and the call recorder, and exits non-zero on the
first failed assertion.  Run with the moto venv's python:

    /tmp/motovenv-probe/bin/python tests/emulator/selfcheck.py
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

HERE = Path(__file__).resolve().parent
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str) -> tuple[int, bytes]:
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_healthy(base: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, f"launcher exited early with {proc.returncode}"
        try:
            status, body = http("GET", f"{base}/_wsconn/health")
            if status == 200 and body == b"ok":
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("launcher never became healthy")


def error_code(fn) -> str:
    try:
        fn()
    except ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError("expected a ClientError")


def checks(base: str) -> None:
    kw = dict(endpoint_url=base, region_name=REGION)
    apigw = boto3.client("apigatewayv2", **kw)
    ddb = boto3.client("dynamodb", **kw)

    assert http("POST", f"{base}/_wsconn/calls/reset")[0] == 200

    # API with tags, integration, route, route response
    api = apigw.create_api(Name="selfcheck", ProtocolType="WEBSOCKET",
                           RouteSelectionExpression="$request.body.action",
                           Tags={"owner": "selfcheck"})
    api_id = api["ApiId"]
    assert api["Tags"] == {"owner": "selfcheck"}
    integ = apigw.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY",
        IntegrationUri="arn:aws:lambda:us-east-1:123456789012:function:f")
    route = apigw.create_route(ApiId=api_id, RouteKey="$connect",
                               Target=f"integrations/{integ['IntegrationId']}")
    rr = apigw.create_route_response(ApiId=api_id, RouteId=route["RouteId"],
                                     RouteResponseKey="$default")
    rrs = apigw.get_route_responses(ApiId=api_id, RouteId=route["RouteId"])["Items"]
    assert [r["RouteResponseId"] for r in rrs] == [rr["RouteResponseId"]], rrs

    # Stage + deployments
    apigw.create_stage(ApiId=api_id, StageName="prod", Tags={"tier": "p"})
    assert error_code(lambda: apigw.create_stage(ApiId=api_id, StageName="prod")) == "ConflictException"
    d1 = apigw.create_deployment(ApiId=api_id, StageName="prod", Description="first")
    assert d1["DeploymentStatus"] == "DEPLOYED" and d1["Description"] == "first", d1
    assert d1["ResponseMetadata"]["HTTPStatusCode"] == 201
    stage = apigw.get_stage(ApiId=api_id, StageName="prod")
    assert stage["DeploymentId"] == d1["DeploymentId"], stage
    d2 = apigw.create_deployment(ApiId=api_id)
    assert apigw.get_stage(ApiId=api_id, StageName="prod")["DeploymentId"] == d1["DeploymentId"]
    upd = apigw.update_stage(ApiId=api_id, StageName="prod", DeploymentId=d2["DeploymentId"],
                             Description="moved", StageVariables={"v": "1"})
    assert upd["DeploymentId"] == d2["DeploymentId"] and upd["Description"] == "moved", upd
    assert apigw.get_stages(ApiId=api_id)["Items"][0]["DeploymentId"] == d2["DeploymentId"]
    assert error_code(lambda: apigw.update_stage(ApiId=api_id, StageName="prod",
                                                 DeploymentId="nope")) == "NotFoundException"
    assert error_code(lambda: apigw.delete_deployment(
        ApiId=api_id, DeploymentId=d2["DeploymentId"])) == "BadRequestException"
    apigw.delete_deployment(ApiId=api_id, DeploymentId=d1["DeploymentId"])
    assert error_code(lambda: apigw.get_deployment(
        ApiId=api_id, DeploymentId=d1["DeploymentId"])) == "NotFoundException"
    assert apigw.get_deployment(ApiId=api_id, DeploymentId=d2["DeploymentId"])["DeploymentId"] == d2["DeploymentId"]
    items = apigw.get_deployments(ApiId=api_id)["Items"]
    assert [d["DeploymentId"] for d in items] == [d2["DeploymentId"]], items
    assert error_code(lambda: apigw.create_deployment(ApiId="missing")) == "NotFoundException"

    # Tags on the API ARN and on a stage ARN
    api_arn = f"arn:aws:apigateway:{REGION}::/apis/{api_id}"
    apigw.tag_resource(ResourceArn=api_arn, Tags={"env": "test"})
    listed = [a for a in apigw.get_apis()["Items"] if a["ApiId"] == api_id][0]
    assert listed["Tags"] == {"owner": "selfcheck", "env": "test"}, listed
    apigw.untag_resource(ResourceArn=api_arn, TagKeys=["owner"])
    assert apigw.get_api(ApiId=api_id)["Tags"] == {"env": "test"}
    stage_arn = f"{api_arn}/stages/prod"
    apigw.tag_resource(ResourceArn=stage_arn, Tags={"extra": "x"})
    assert apigw.get_tags(ResourceArn=stage_arn)["Tags"] == {"tier": "p", "extra": "x"}
    assert apigw.get_stage(ApiId=api_id, StageName="prod")["Tags"] == {"tier": "p", "extra": "x"}

    # Missing children -> NotFoundException rather than 500 / silent success
    assert error_code(lambda: apigw.update_integration(
        ApiId=api_id, IntegrationId="nope", Description="x")) == "NotFoundException"
    assert error_code(lambda: apigw.delete_route(ApiId=api_id, RouteId="nope")) == "NotFoundException"

    # Teardown; the deleted API is gone along with its tags
    apigw.delete_stage(ApiId=api_id, StageName="prod")
    apigw.delete_api(ApiId=api_id)
    assert error_code(lambda: apigw.get_api(ApiId=api_id)) == "NotFoundException"
    assert error_code(lambda: apigw.delete_api(ApiId=api_id)) == "NotFoundException"

    ddb.list_tables()

    # Call recorder
    status, body = http("GET", f"{base}/_wsconn/calls")
    assert status == 200
    calls = json.loads(body)
    by_op: dict[str, dict] = {}
    for c in calls:
        assert set(c) == {"service", "operation", "method", "path", "mutating"}, c
        by_op.setdefault(c["operation"], c)
    expected = {
        "CreateApi": True, "GetApis": False, "ListTables": False, "CreateDeployment": True,
        "GetRouteResponses": False, "UpdateStage": True, "DeleteDeployment": True,
        "TagResource": True, "UntagResource": True, "GetTags": False, "GetStage": False,
        "DeleteApi": True,
    }
    for op, mutating in expected.items():
        assert op in by_op, (op, sorted(by_op))
        assert by_op[op]["mutating"] is mutating, by_op[op]
    assert by_op["CreateApi"]["service"] == "apigateway"
    assert by_op["ListTables"]["service"] == "dynamodb"
    assert not any(c["operation"].startswith("UNKNOWN") for c in calls), calls
    assert calls[0]["operation"] == "CreateApi" and calls[-1]["operation"] == "ListTables"

    assert http("POST", f"{base}/_wsconn/calls/reset")[0] == 200
    assert json.loads(http("GET", f"{base}/_wsconn/calls")[1]) == []


def main() -> int:
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        os.environ[k] = v
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, str(HERE / "launcher.py"), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_healthy(base, proc)
        checks(base)
    except Exception:
        proc.kill()
        err = proc.communicate()[1].decode(errors="replace")
        sys.stderr.write(f"--- launcher stderr ---\n{err}\n")
        raise
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=10)
    assert rc == 0, f"launcher exit code {rc} on SIGTERM"
    print("selfcheck: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
