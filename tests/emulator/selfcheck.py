#!/usr/bin/env python3
"""Self-check for tests/emulator/launcher.py (test infrastructure, not part of wsconn).

Starts the launcher on a free loopback port, drives it with boto3 through the
API Gateway v2 gap fillers, the call recorder, and the opt-in emulation of AWS
(latency, round-trip levels, realism clocks, concurrent modification, random
faults, lost responses, per-protocol error wire formats, strict refusals), and
exits non-zero on the first failed assertion.  Takes about 7 s.  scripts/test runs it
before the Rust tests, which trust this emulation.  Run with the emulator venv's python
(scripts/test creates it):

    target/emulator-venv/bin/python tests/emulator/selfcheck.py
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import boto3
from botocore.config import Config
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
        assert set(c) == {"service", "operation", "method", "path", "mutating",
                          "start", "end", "status"}, c
        assert c["start"] <= c["end"] and 200 <= c["status"] < 500, c
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



# ---------------------------------------------------------------------------
# Latency, stats, realism, random faults, lost responses, error wire formats
# ---------------------------------------------------------------------------

# Small clocks keep the check fast; the launcher gets them as command-line flags
# (which also checks the flags).
CLOCK = 0.5
LAUNCHER_FLAGS = ["--seed", "7", "--table-creating-s", str(CLOCK), "--role-propagation-s", str(CLOCK),
                  "--function-pending-s", str(CLOCK), "--function-update-s", str(CLOCK)]
# While a check asserts what happens DURING a state, the state's clock is held at HOLD
# (clocks are read when a call arrives, so a load spike cannot end the state early);
# then it goes back to CLOCK and the check waits for the state to end on its own.
HOLD = 60.0
# Raw behaviour: no client-side retries.
NO_RETRY = Config(retries={"total_max_attempts": 1, "mode": "standard"})


def post_json(url: str, value) -> tuple[int, dict]:
    req = urllib.request.Request(url, method="POST", data=json.dumps(value).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def get_json(url: str):
    status, body = http("GET", url)
    assert status == 200, (url, status, body)
    return json.loads(body)


def configure(base: str, **settings) -> dict:
    status, body = post_json(f"{base}/_wsconn/config", settings)
    assert status == 200, body
    return body


def reset(base: str) -> None:
    assert http("POST", f"{base}/_wsconn/reset")[0] == 200


def client_error(fn) -> tuple[str, str, int]:
    """(code, message, HTTP status) of the ClientError fn raises, as boto3 parsed it."""
    try:
        fn()
    except ClientError as e:
        return (e.response["Error"]["Code"], e.response["Error"].get("Message", ""),
                e.response["ResponseMetadata"]["HTTPStatusCode"])
    raise AssertionError("expected a ClientError")


def sleep_until(deadline: float) -> None:
    time.sleep(max(0.0, deadline - time.monotonic()) + 0.05)


def in_parallel(*fns):
    """Runs fns in threads released together; returns their results (or exceptions)."""
    barrier = threading.Barrier(len(fns))
    results: list = [None] * len(fns)

    def run(i, fn):
        barrier.wait()
        try:
            results[i] = fn()
        except Exception as exc:  # noqa: BLE001 - returned to the caller
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def check_config(base: str) -> None:
    cfg = get_json(f"{base}/_wsconn/config")
    assert cfg["seed"] == 7 and cfg["table_creating_s"] == CLOCK and cfg["realism"] is False, cfg
    assert cfg["latency_ms"] == 0 and cfg["chaos_exclude"] == ["GetCallerIdentity"], cfg
    merged = configure(base, latency_ms=10)
    assert merged["latency_ms"] == 10 and merged["seed"] == 7, merged  # merged, not replaced
    assert post_json(f"{base}/_wsconn/config", {"nope": 1})[0] == 400
    assert post_json(f"{base}/_wsconn/config", {"throttle_rate": 2})[0] == 400
    assert post_json(f"{base}/_wsconn/config", {"realism": "yes"})[0] == 400
    assert get_json(f"{base}/_wsconn/config")["latency_ms"] == 10  # refused updates change nothing
    configure(base, latency_ms=0)


def check_latency_and_levels(base: str, c) -> None:
    configure(base, latency_ms=200)
    reset(base)
    t0 = time.monotonic()
    c.ddb.list_tables()
    took = time.monotonic() - t0
    assert took >= 0.2, took
    (call,) = get_json(f"{base}/_wsconn/calls")
    assert call["end"] - call["start"] >= 0.2 and call["status"] == 200, call
    for _ in range(2):
        c.ddb.list_tables()
    assert get_json(f"{base}/_wsconn/stats") == {"calls": 3, "mutating": 0, "levels": 3, "faults": 0}

    configure(base, latency_ms=500)  # wide enough for the threads to overlap under load
    reset(base)
    # Distinct clients: one connection each, so the three calls really overlap.
    clients = [boto3.client("dynamodb", **c.kw) for _ in range(3)]
    t0 = time.monotonic()
    in_parallel(*[cl.list_tables for cl in clients])
    took = time.monotonic() - t0
    stats = get_json(f"{base}/_wsconn/stats")
    # One level: the three calls overlapped in the emulator (no wall-clock bound here,
    # which a loaded machine could break).
    assert stats == {"calls": 3, "mutating": 0, "levels": 1, "faults": 0}, (stats, took)

    # /_wsconn/reset keeps the settings.
    assert get_json(f"{base}/_wsconn/config")["latency_ms"] == 500
    configure(base, latency_ms=0)


def check_table_clock(base: str, c) -> None:
    configure(base, realism=True, table_creating_s=HOLD)
    reset(base)
    name = "selfcheck-realism"
    created = c.ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    t_created = time.monotonic()
    assert created["TableDescription"]["TableStatus"] == "CREATING", created
    # botocore's legacy retry mode verifies DynamoDB's x-amz-crc32 of the rewritten body.
    legacy = boto3.client("dynamodb", config=Config(retries={"mode": "legacy", "max_attempts": 0}), **c.kw)
    assert legacy.describe_table(TableName=name)["Table"]["TableStatus"] == "CREATING"
    in_use = "Attempt to change a resource which is still in use: Table is being created: " + name
    ttl = dict(TableName=name, TimeToLiveSpecification={"AttributeName": "ttl", "Enabled": True})
    assert client_error(lambda: c.ddb.update_time_to_live(**ttl)) == ("ResourceInUseException", in_use, 400)
    arn = created["TableDescription"]["TableArn"]
    assert client_error(lambda: c.ddb.tag_resource(
        ResourceArn=arn, Tags=[{"Key": "k", "Value": "v"}]))[0] == "ResourceInUseException"
    assert client_error(lambda: c.ddb.delete_table(TableName=name))[0] == "ResourceInUseException"
    assert client_error(lambda: c.ddb.put_item(
        TableName=name, Item={"id": {"S": "x"}}))[0] == "ResourceNotFoundException"
    # A second CreateTable: "already exists", as real AWS says it.
    assert client_error(lambda: c.ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])) == (
            "ResourceInUseException", f"Table already exists: {name}", 400)

    configure(base, table_creating_s=CLOCK)
    sleep_until(t_created + CLOCK)
    assert c.ddb.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE"
    c.ddb.update_time_to_live(**ttl)
    c.ddb.put_item(TableName=name, Item={"id": {"S": "x"}})
    calls = get_json(f"{base}/_wsconn/calls")
    refused = [x for x in calls if x.get("fault_kind") == "realism"]
    assert [x["operation"] for x in refused] == [
        "UpdateTimeToLive", "TagResource", "DeleteTable", "PutItem"], refused
    c.ddb.delete_table(TableName=name)


def check_role_and_function_clocks(base: str, c) -> None:
    configure(base, realism=True, role_propagation_s=HOLD, function_pending_s=HOLD,
              function_update_s=HOLD)
    reset(base)
    role = c.iam.create_role(RoleName="selfcheck-fn", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}]}))
    t_role = time.monotonic()
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("index.mjs", "export const handler = async () => ({statusCode: 200});")
    fn = dict(FunctionName="selfcheck-fn", Runtime="nodejs24.x", Handler="index.handler",
              Role=role["Role"]["Arn"], Code={"ZipFile": zipped.getvalue()})
    assert client_error(lambda: c.lam.create_function(**fn)) == (
        "InvalidParameterValueException",
        "The role defined for the function cannot be assumed by Lambda.", 400)
    assert client_error(lambda: c.lam.get_function(FunctionName="selfcheck-fn"))[0] == \
        "ResourceNotFoundException", "the refused create did nothing"
    configure(base, role_propagation_s=CLOCK)
    sleep_until(t_role + CLOCK)
    created = c.lam.create_function(**fn)
    t_fn = time.monotonic()
    arn = created["FunctionArn"]
    assert (created["State"], created["StateReasonCode"]) == ("Pending", "Creating"), created
    got = c.lam.get_function(FunctionName="selfcheck-fn")["Configuration"]
    assert got["State"] == "Pending", got
    assert c.lam.get_function_configuration(FunctionName=arn)["State"] == "Pending"
    pending = ("ResourceConflictException", "The operation cannot be performed at this time. "
               "The function is currently in the following state: Pending", 409)
    assert client_error(lambda: c.lam.update_function_configuration(
        FunctionName="selfcheck-fn", Timeout=9)) == pending
    assert client_error(lambda: c.lam.update_function_code(
        FunctionName="selfcheck-fn", ZipFile=zipped.getvalue())) == pending
    configure(base, function_pending_s=CLOCK)
    sleep_until(t_fn + CLOCK)
    assert c.lam.get_function(FunctionName="selfcheck-fn")["Configuration"]["State"] == "Active"
    updated = c.lam.update_function_configuration(FunctionName="selfcheck-fn", Timeout=9)
    t_upd = time.monotonic()
    assert updated["LastUpdateStatus"] == "InProgress", updated
    assert c.lam.get_function_configuration(FunctionName="selfcheck-fn")["LastUpdateStatus"] == "InProgress"
    assert client_error(lambda: c.lam.update_function_code(
        FunctionName="selfcheck-fn", ZipFile=zipped.getvalue())) == (
            "ResourceConflictException", "The operation cannot be performed at this time. "
            f"An update is in progress for resource: {arn}", 409)
    configure(base, function_update_s=CLOCK)
    sleep_until(t_upd + CLOCK)
    conf = c.lam.get_function_configuration(FunctionName="selfcheck-fn")
    assert conf["LastUpdateStatus"] == "Successful" and conf["Timeout"] == 9, conf
    c.lam.update_function_code(FunctionName="selfcheck-fn", ZipFile=zipped.getvalue())
    c.lam.delete_function(FunctionName="selfcheck-fn")
    c.iam.delete_role(RoleName="selfcheck-fn")


def check_concurrent_modification(base: str, c) -> None:
    configure(base, realism=True, latency_ms=0)
    reset(base)
    api_a = c.apigw.create_api(Name="cm-a", ProtocolType="WEBSOCKET",
                               RouteSelectionExpression="$request.body.action")["ApiId"]
    api_b = c.apigw.create_api(Name="cm-b", ProtocolType="WEBSOCKET",
                               RouteSelectionExpression="$request.body.action")["ApiId"]
    configure(base, latency_ms=500)  # both writes are in flight together
    clients = [boto3.client("apigatewayv2", config=NO_RETRY, **c.kw) for _ in range(4)]
    results = in_parallel(
        lambda: clients[0].create_route(ApiId=api_a, RouteKey="$connect"),
        lambda: clients[1].create_route(ApiId=api_a, RouteKey="$disconnect"),
        lambda: clients[2].create_route(ApiId=api_b, RouteKey="$connect"),  # another API: fine
        lambda: clients[3].get_routes(ApiId=api_a),                         # a read: fine
    )
    on_a = results[:2]
    errors = [r for r in on_a if isinstance(r, ClientError)]
    assert len(errors) == 1, results
    err = errors[0].response
    assert err["Error"]["Code"] == "ConflictException", err
    assert err["Error"]["Message"] == ("Unable to complete operation due to concurrent "
                                       "modification. Please try again later."), err
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert not isinstance(results[2], Exception) and not isinstance(results[3], Exception), results
    # One at a time is fine; tagging the API counts as a write to it.
    configure(base, latency_ms=0)
    c.apigw.create_route(ApiId=api_a, RouteKey="$default")
    assert len(c.apigw.get_routes(ApiId=api_a)["Items"]) == 2
    configure(base, latency_ms=500)
    arn = f"arn:aws:apigateway:{REGION}::/apis/{api_a}"
    results = in_parallel(
        lambda: clients[0].tag_resource(ResourceArn=arn, Tags={"k": "v"}),
        lambda: clients[1].delete_api(ApiId=api_a),
    )
    assert sum(isinstance(r, ClientError) and r.response["Error"]["Code"] == "ConflictException"
               for r in results) == 1, results
    configure(base, latency_ms=0, realism=False)
    for api in (api_a, api_b):
        try:
            c.apigw.delete_api(ApiId=api)
        except ClientError:
            pass


def check_random_faults(base: str, c) -> None:
    configure(base, realism=False, latency_ms=0, throttle_rate=0.3, error_rate=0.2, seed=11)
    ddb = boto3.client("dynamodb", config=NO_RETRY, **c.kw)
    sts = boto3.client("sts", config=NO_RETRY, **c.kw)

    def outcomes(n: int) -> list[str]:
        out = []
        for _ in range(n):
            try:
                ddb.list_tables()
                out.append("ok")
            except ClientError as e:
                out.append(f'{e.response["Error"]["Code"]}/{e.response["ResponseMetadata"]["HTTPStatusCode"]}')
        return out

    reset(base)
    first = outcomes(100)
    counts = {k: first.count(k) for k in set(first)}
    assert set(counts) <= {"ok", "ThrottlingException/400", "InternalFailure/500",
                           "ServiceUnavailable/503"}, counts
    throttled = counts.get("ThrottlingException/400", 0)
    errored = counts.get("InternalFailure/500", 0) + counts.get("ServiceUnavailable/503", 0)
    assert 15 <= throttled <= 45 and 8 <= errored <= 35, counts
    stats = get_json(f"{base}/_wsconn/stats")
    assert stats["faults"] == throttled + errored and stats["calls"] == 100, stats
    reset(base)  # reseeds: the same seed gives the same faults
    assert outcomes(100) == first
    for _ in range(20):  # chaos_exclude (default: GetCallerIdentity) is never faulted
        sts.get_caller_identity()

    # Every service's throttling error, parsed by boto3.
    configure(base, throttle_rate=1.0, error_rate=0.0)
    expected = {
        "apigateway": (lambda: boto3.client("apigatewayv2", config=NO_RETRY, **c.kw).get_apis(),
                       "TooManyRequestsException", 429),
        "lambda": (lambda: boto3.client("lambda", config=NO_RETRY, **c.kw).list_functions(),
                   "TooManyRequestsException", 429),
        "dynamodb": (lambda: ddb.list_tables(), "ThrottlingException", 400),
        "logs": (lambda: boto3.client("logs", config=NO_RETRY, **c.kw).describe_log_groups(),
                 "ThrottlingException", 400),
        "iam": (lambda: boto3.client("iam", config=NO_RETRY, **c.kw).list_roles(), "Throttling", 400),
    }
    for service, (fn, code, status) in expected.items():
        got = client_error(fn)
        assert got[0] == code and got[2] == status and got[1], (service, got)
    configure(base, throttle_rate=0.0, error_rate=1.0, chaos_exclude=[])
    code, message, status = client_error(lambda: sts.get_caller_identity())
    assert code in ("InternalFailure", "ServiceUnavailable") and status in (500, 503) and message, \
        (code, message, status)
    configure(base, error_rate=0.0, chaos_exclude=["GetCallerIdentity"], seed=7)


def check_lost_response(base: str, c) -> None:
    reset(base)
    apigw = boto3.client("apigatewayv2", config=NO_RETRY, **c.kw)
    iam = boto3.client("iam", config=NO_RETRY, **c.kw)
    post_json(f"{base}/_wsconn/faults", [
        {"operation": "CreateApi", "code": "InternalFailure", "status": 500,
         "message": "lost on the way back", "lost": True},
        {"operation": "CreateRole", "code": "ServiceUnavailable", "status": 503,
         "message": "lost too", "lost": True},
    ])
    assert client_error(lambda: apigw.create_api(
        Name="lost-api", ProtocolType="WEBSOCKET", RouteSelectionExpression="$request.body.action")) \
        == ("InternalFailure", "lost on the way back", 500)
    apis = [a for a in apigw.get_apis()["Items"] if a["Name"] == "lost-api"]
    assert len(apis) == 1, "the lost CreateApi took effect"
    assert client_error(lambda: iam.create_role(
        RoleName="lost-role", AssumeRolePolicyDocument="{}")) == ("ServiceUnavailable", "lost too", 503)
    assert iam.get_role(RoleName="lost-role")["Role"]["RoleName"] == "lost-role"
    calls = get_json(f"{base}/_wsconn/calls")
    lost = [(x["operation"], x["status"], x["fault"], x["fault_kind"]) for x in calls if "fault" in x]
    assert lost == [("CreateApi", 500, "InternalFailure", "lost"),
                    ("CreateRole", 503, "ServiceUnavailable", "lost")], lost
    apigw.delete_api(ApiId=apis[0]["ApiId"])
    iam.delete_role(RoleName="lost-role")


def check_error_wire_formats(base: str, c) -> None:
    """A queued error for each service comes back parsed: code, message, status."""
    reset(base)
    cases = [
        ("GetApis", lambda: boto3.client("apigatewayv2", config=NO_RETRY, **c.kw).get_apis(),
         "NotFoundException", 404),
        ("ListFunctions", lambda: boto3.client("lambda", config=NO_RETRY, **c.kw).list_functions(),
         "ServiceException", 500),
        ("ListTables", lambda: boto3.client("dynamodb", config=NO_RETRY, **c.kw).list_tables(),
         "ValidationException", 400),
        ("DescribeLogGroups", lambda: boto3.client("logs", config=NO_RETRY, **c.kw).describe_log_groups(),
         "InvalidParameterException", 400),
        ("GetRole", lambda: boto3.client("iam", config=NO_RETRY, **c.kw).get_role(RoleName="nope"),
         "NoSuchEntity", 404),
        ("ListRoles", lambda: boto3.client("iam", config=NO_RETRY, **c.kw).list_roles(),
         "ServiceFailure", 500),
        ("GetCallerIdentity", lambda: boto3.client("sts", config=NO_RETRY, **c.kw).get_caller_identity(),
         "ExpiredToken", 403),
    ]
    faults = [{"operation": op, "code": code, "status": status, "message": f"{op} says <no> & 'so'"}
              for op, _, code, status in cases]
    assert post_json(f"{base}/_wsconn/faults", faults)[0] == 200
    for op, fn, code, status in cases:
        got = client_error(fn)
        assert got == (code, f"{op} says <no> & 'so'", status), (op, got)
    # The IAM error is awsQuery XML, not JSON.
    post_json(f"{base}/_wsconn/faults", [{"operation": "ListRoles", "code": "Throttling",
                                           "message": "Rate exceeded", "status": 400}])
    req = urllib.request.Request(
        f"{base}/", method="POST", data=b"Action=ListRoles&Version=2010-05-08",
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/iam/aws4_request, "
                                  "SignedHeaders=host, Signature=0"})
    try:
        urllib.request.urlopen(req, timeout=5)
        raise AssertionError("expected an error")
    except urllib.error.HTTPError as e:
        body = e.read().decode()
        assert e.code == 400 and e.headers["Content-Type"].startswith("text/xml"), (e.code, e.headers)
        assert body.startswith("<ErrorResponse") and "<Type>Sender</Type><Code>Throttling</Code>" in body, body
    stats = get_json(f"{base}/_wsconn/stats")
    assert stats["faults"] == len(cases) + 1 == stats["calls"], stats


def check_strict(base: str, c) -> None:
    """"strict": refusals AWS makes that moto 5.2.5 does not."""
    configure(base, strict=True)
    reset(base)
    api = c.apigw.create_api(Name="strict", ProtocolType="WEBSOCKET",
                             RouteSelectionExpression="$request.body.action")["ApiId"]
    c.apigw.create_route(ApiId=api, RouteKey="$connect")
    assert client_error(lambda: c.apigw.create_route(ApiId=api, RouteKey="$connect")) == (
        "ConflictException", "Route with key $connect already exists for this API", 409)
    assert len(c.apigw.get_routes(ApiId=api)["Items"]) == 1

    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "lambda.amazonaws.com"}}]})
    role = c.iam.create_role(RoleName="Strict-Role", AssumeRolePolicyDocument=trust)["Role"]
    assert client_error(lambda: c.iam.create_role(RoleName="strict-role", AssumeRolePolicyDocument=trust)) \
        == ("EntityAlreadyExists", "Role with name strict-role already exists.", 409)

    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("index.mjs", "export const handler = async () => ({});")
    c.lam.create_function(FunctionName="strict-fn", Runtime="nodejs24.x", Handler="index.handler",
                          Role=role["Arn"], Code={"ZipFile": zipped.getvalue()})
    perm = dict(FunctionName="strict-fn", StatementId="s1", Action="lambda:InvokeFunction",
                Principal="apigateway.amazonaws.com")
    c.lam.add_permission(**perm)
    assert client_error(lambda: c.lam.add_permission(**perm)) == (
        "ResourceConflictException", "The statement id (s1) provided already exists. Please provide "
        "a new statement id, or remove the existing statement.", 409)

    assert client_error(lambda: c.ddb.describe_time_to_live(TableName="strict-missing")) == (
        "ResourceNotFoundException", "Requested resource not found", 400)
    c.ddb.create_table(TableName="strict-t", BillingMode="PAY_PER_REQUEST",
                       AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                       KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    ttl = lambda on, attr="ttl": c.ddb.update_time_to_live(  # noqa: E731
        TableName="strict-t", TimeToLiveSpecification={"AttributeName": attr, "Enabled": on})
    assert client_error(lambda: ttl(False))[:2] == ("ValidationException", "TimeToLive is already disabled")
    ttl(True)
    assert client_error(lambda: ttl(True))[:2] == ("ValidationException", "TimeToLive is already enabled")
    assert client_error(lambda: ttl(True, "other"))[0] == "ValidationException"
    kinds = {x.get("fault_kind") for x in get_json(f"{base}/_wsconn/calls") if "fault" in x}
    assert kinds == {"strict"}, kinds

    configure(base, strict=False)  # default: moto's own answers
    c.apigw.create_route(ApiId=api, RouteKey="$connect")
    c.apigw.delete_api(ApiId=api)
    c.lam.delete_function(FunctionName="strict-fn")
    c.ddb.delete_table(TableName="strict-t")


class Clients:
    def __init__(self, base: str):
        self.kw = dict(endpoint_url=base, region_name=REGION)
        self.ddb = boto3.client("dynamodb", config=NO_RETRY, **self.kw)
        self.iam = boto3.client("iam", config=NO_RETRY, **self.kw)
        self.lam = boto3.client("lambda", config=NO_RETRY, **self.kw)
        self.apigw = boto3.client("apigatewayv2", config=NO_RETRY, **self.kw)


def emulation_checks(base: str) -> None:
    c = Clients(base)
    for check in (check_config, check_latency_and_levels, check_table_clock,
                  check_role_and_function_clocks, check_concurrent_modification,
                  check_random_faults, check_lost_response, check_error_wire_formats,
                  check_strict):
        t0 = time.monotonic()
        if check is check_config:
            check(base)
        else:
            check(base, c)
        print(f"selfcheck: {check.__name__} ok ({time.monotonic() - t0:.2f} s)")


def main() -> int:
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        os.environ[k] = v
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # The launcher's stderr goes to a file: a pipe nobody drains could fill and wedge it.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([sys.executable, str(HERE / "launcher.py"), "--port", str(port),
                                 *LAUNCHER_FLAGS],
                                stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_healthy(base, proc)
            checks(base)
            emulation_checks(base)
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=10)
            assert rc == 0, f"launcher exit code {rc} on SIGTERM"
        except BaseException:
            log.seek(0)
            sys.stderr.write(f"--- launcher stderr ---\n{log.read().decode(errors='replace')[-8000:]}\n")
            raise
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    print("selfcheck: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
