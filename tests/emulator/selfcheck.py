#!/usr/bin/env python3
"""Self-check for tests/emulator/launcher.py (test infrastructure, not part of wsconn).

Starts the launcher on a free loopback port, drives it with boto3 through the
API Gateway v2 gap fillers, the call recorder, and the opt-in emulation of AWS
(latency, round-trip levels, realism clocks, concurrent modification, random
faults, lost responses, per-protocol error wire formats, strict refusals), and
exits non-zero on the first failed assertion.  Also covers what issues 14 and 15
need: answers that are not AWS, STS throttling, API Gateway authorizers, stage
settings, the account's CloudWatch role, execution log groups, the published
constraints strict mode enforces, Lambda resource policies and discovery by name
prefix; and what releases, custom domains and `wsconn logs` need: Lambda versions
(PublishVersion's guards, a policy per version, paging, Pending versions), ACM
certificates and their DNS validation, Route 53 batches and changes, API Gateway v2
domain names and API mappings, FilterLogEvents' pages and filter patterns.  Takes
about 20 s.  scripts/test runs it before the Rust tests, which trust
this emulation.  Run with the emulator venv's python (scripts/test creates it):

    target/emulator-venv/bin/python tests/emulator/selfcheck.py
"""

from __future__ import annotations

import io
import json
import os
import re
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
import botocore.parsers
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
                  "--function-pending-s", str(CLOCK), "--function-update-s", str(CLOCK),
                  "--certificate-record-s", str(CLOCK), "--certificate-release-s", str(CLOCK),
                  "--dns-change-s", str(CLOCK), "--acm-validation-wait-s", "0"]
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
    assert cfg["latency_ms"] == 0 and cfg["chaos_exclude"] == [] and cfg["not_aws"] is None, cfg
    assert (cfg["certificate_record_s"], cfg["certificate_release_s"], cfg["dns_change_s"],
            cfg["acm_validation_wait_s"]) == (CLOCK, CLOCK, CLOCK, 0), cfg
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
    # Nothing is excluded by default: sts:GetCallerIdentity is throttled like the rest
    # (awsQuery XML, 400 Throttling "Rate exceeded"), unless chaos_exclude names it.
    sts_outcomes = []
    for _ in range(40):
        try:
            sts.get_caller_identity()
            sts_outcomes.append("ok")
        except ClientError as e:
            sts_outcomes.append((e.response["Error"]["Code"], e.response["Error"]["Message"],
                                 e.response["ResponseMetadata"]["HTTPStatusCode"]))
    assert ("Throttling", "Rate exceeded", 400) in sts_outcomes, sts_outcomes
    configure(base, chaos_exclude=["GetCallerIdentity"])
    for _ in range(20):
        sts.get_caller_identity()
    configure(base, chaos_exclude=[])

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
    configure(base, error_rate=0.0, seed=7)


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


def check_not_aws(base: str, c) -> None:
    """Answers that are not AWS's protocol (issue 14 defect 3), and a queued STS
    throttle (defect 1)."""
    reset(base)
    page = "<!doctype html><title>404 Not Found</title><h1>Not Found</h1>"
    assert post_json(f"{base}/_wsconn/faults", [
        {"operation": "GetApis", "raw": {"status": 404, "content_type": "text/html", "body": page}},
        {"operation": "GetCallerIdentity", "code": "Throttling", "status": 400,
         "message": "Rate exceeded", "count": 2},
    ])[0] == 200
    # A raw answer reaches the client as sent: no AWS error code to parse.
    req = urllib.request.Request(f"{base}/v2/apis", headers={
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/apigateway/"
                         "aws4_request, SignedHeaders=host, Signature=0"})
    try:
        urllib.request.urlopen(req, timeout=5)
        raise AssertionError("expected the raw 404")
    except urllib.error.HTTPError as e:
        assert e.code == 404 and e.headers["Content-Type"] == "text/html", (e.code, e.headers)
        assert e.read().decode() == page and "x-amzn-RequestId" not in e.headers
    assert c.apigw.get_apis()["Items"] is not None  # one use only
    sts = boto3.client("sts", config=NO_RETRY, **c.kw)
    for _ in range(2):
        assert client_error(sts.get_caller_identity) == ("Throttling", "Rate exceeded", 400)
    assert sts.get_caller_identity()["Account"] == "123456789012"
    # Malformed raw specs are refused whole.
    assert post_json(f"{base}/_wsconn/faults", [{"operation": "GetApis", "raw": {"status": "x"}}])[0] == 400
    assert post_json(f"{base}/_wsconn/faults", [{"operation": "GetApis"}])[0] == 400

    # not_aws: every AWS call, whatever its service, gets the page; /_wsconn/* still works.
    cfg = configure(base, not_aws={})
    assert cfg["not_aws"]["status"] == 404 and cfg["not_aws"]["content_type"] == "text/html", cfg
    for fn in (sts.get_caller_identity, c.ddb.list_tables, c.lam.list_functions, c.apigw.get_apis,
               c.iam.list_roles):
        try:
            fn()
            raise AssertionError(f"{fn} answered as AWS")
        except ClientError as e:
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 404, e.response
        except botocore.parsers.ResponseParserError:
            pass  # awsQuery clients cannot even parse the page
    configure(base, not_aws={"status": 502, "content_type": "text/plain", "body": "Bad Gateway",
                             "headers": {"Server": "proxy"}})
    try:
        c.ddb.list_tables()
        raise AssertionError("expected the 502")
    except ClientError as e:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 502
    assert post_json(f"{base}/_wsconn/config", {"not_aws": {"status": 1000}})[0] == 400
    configure(base, not_aws=None)
    assert c.ddb.list_tables() is not None
    calls = get_json(f"{base}/_wsconn/calls")
    kinds = [(x["operation"], x.get("fault"), x.get("fault_kind")) for x in calls if "fault" in x]
    assert kinds[0] == ("GetApis", "NotAws", "raw") and kinds[1][2] == "queued", kinds
    assert {k for _, _, k in kinds[3:]} == {"not_aws"} and len(kinds) == 9, kinds


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

# ---------------------------------------------------------------------------
# Issue 14 / 15: authorizers, stage settings, the account's CloudWatch role,
# execution logs, published constraints, resource policies and discovery
# ---------------------------------------------------------------------------

LAMBDA_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "lambda.amazonaws.com"}}]})
APIGW_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "apigateway.amazonaws.com"}}]})
AUTH_URI = ("arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
            "arn:aws:lambda:us-east-1:123456789012:function:selfcheck-auth/invocations")


def raw_get(base: str, path: str, service: str = "apigateway"):
    """GET with a SigV4-looking header (the emulator reads the service from its scope);
    returns the parsed JSON body, so that the wire's keys and nulls can be checked."""
    req = urllib.request.Request(f"{base}{path}", headers={
        "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20250101/{REGION}/{service}/"
                         "aws4_request, SignedHeaders=host, Signature=0"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def no_nulls(value, where: str) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            assert v is not None, f"{where}.{k} is null"
            no_nulls(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            no_nulls(v, f"{where}[{i}]")


def new_ws_api(c, name: str) -> str:
    return c.apigw.create_api(Name=name, ProtocolType="WEBSOCKET",
                              RouteSelectionExpression="$request.body.action")["ApiId"]


def set_account_role(c, arn) -> None:
    c.apigw1.update_account(patchOperations=[
        {"op": "replace", "path": "/cloudwatchRoleArn", "value": arn or ""}])


def check_authorizers_and_routes(base: str, c) -> None:
    reset(base)
    api = new_ws_api(c, "selfcheck-auth")
    created = c.apigw.create_authorizer(
        ApiId=api, AuthorizerType="REQUEST", AuthorizerUri=AUTH_URI, Name="selfcheck-authorizer",
        IdentitySource=["route.request.querystring.token"])
    auth_id = created["AuthorizerId"]
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201, created
    assert len(auth_id) == 6 and auth_id.isalnum() and auth_id == auth_id.lower(), auth_id
    assert (created["AuthorizerType"], created["AuthorizerUri"], created["IdentitySource"],
            created["Name"]) == ("REQUEST", AUTH_URI, ["route.request.querystring.token"],
                                 "selfcheck-authorizer"), created
    wire = raw_get(base, f"/v2/apis/{api}/authorizers")
    assert [a["authorizerId"] for a in wire["items"]] == [auth_id], wire
    no_nulls(wire, "GetAuthorizers")
    assert c.apigw.get_authorizer(ApiId=api, AuthorizerId=auth_id)["Name"] == "selfcheck-authorizer"
    updated = c.apigw.update_authorizer(ApiId=api, AuthorizerId=auth_id,
                                        IdentitySource=["route.request.header.Authorization"])
    assert updated["IdentitySource"] == ["route.request.header.Authorization"], updated
    assert updated["AuthorizerUri"] == AUTH_URI  # untouched members stay
    for fn in (lambda: c.apigw.get_authorizer(ApiId=api, AuthorizerId="nope00"),
               lambda: c.apigw.update_authorizer(ApiId=api, AuthorizerId="nope00", Name="x"),
               lambda: c.apigw.delete_authorizer(ApiId=api, AuthorizerId="nope00")):
        assert client_error(fn) == ("NotFoundException",
                                    "Invalid Authorizer identifier specified nope00", 404)

    plain = c.apigw.create_route(ApiId=api, RouteKey="$default")
    assert plain["AuthorizationType"] == "NONE" and "AuthorizerId" not in plain, plain
    connect = c.apigw.create_route(ApiId=api, RouteKey="$connect", AuthorizationType="CUSTOM",
                                   AuthorizerId=auth_id)
    got = c.apigw.get_route(ApiId=api, RouteId=connect["RouteId"])
    assert (got["AuthorizationType"], got["AuthorizerId"]) == ("CUSTOM", auth_id), got
    listed = {r["RouteKey"]: r for r in c.apigw.get_routes(ApiId=api)["Items"]}
    assert listed["$connect"]["AuthorizerId"] == auth_id, listed
    back = c.apigw.update_route(ApiId=api, RouteId=connect["RouteId"], AuthorizationType="NONE")
    assert back["AuthorizationType"] == "NONE" and "AuthorizerId" not in back, back
    assert "AuthorizerId" not in c.apigw.get_route(ApiId=api, RouteId=connect["RouteId"])
    again = c.apigw.update_route(ApiId=api, RouteId=connect["RouteId"], AuthorizationType="CUSTOM",
                                 AuthorizerId=auth_id)
    assert again["AuthorizerId"] == auth_id, again

    assert c.apigw.delete_authorizer(ApiId=api, AuthorizerId=created["AuthorizerId"]
                                     )["ResponseMetadata"]["HTTPStatusCode"] == 204
    second = c.apigw.create_authorizer(ApiId=api, AuthorizerType="REQUEST", AuthorizerUri=AUTH_URI,
                                       Name="second", IdentitySource=["route.request.header.A"])
    c.apigw.delete_api(ApiId=api)  # takes its authorizers along
    assert client_error(lambda: c.apigw.get_authorizers(ApiId=api))[0] == "NotFoundException"
    assert client_error(lambda: c.apigw.get_authorizer(
        ApiId=api, AuthorizerId=second["AuthorizerId"]))[0] == "NotFoundException"


def check_stage_settings(base: str, c) -> None:
    reset(base)
    api = new_ws_api(c, "selfcheck-stage")
    bare = c.apigw.create_stage(ApiId=api, StageName="bare")
    assert bare["DefaultRouteSettings"] == {"DataTraceEnabled": False, "DetailedMetricsEnabled": False,
                                            "LoggingLevel": "OFF"}, bare
    assert "AccessLogSettings" not in bare
    log_arn = f"arn:aws:logs:{REGION}:123456789012:log-group:/aws/apigateway/selfcheck/prod"
    fmt = '{"requestId":"$context.requestId","routeKey":"$context.routeKey"}'
    c.apigw.create_stage(ApiId=api, StageName="prod", StageVariables={"a": "1", "b": "2"},
                         DefaultRouteSettings={"ThrottlingBurstLimit": 100, "ThrottlingRateLimit": 50.0},
                         AccessLogSettings={"DestinationArn": log_arn, "Format": fmt})
    wire = raw_get(base, f"/v2/apis/{api}/stages/prod")
    assert wire["defaultRouteSettings"] == {
        "dataTraceEnabled": False, "detailedMetricsEnabled": False, "loggingLevel": "OFF",
        "throttlingBurstLimit": 100, "throttlingRateLimit": 50.0}, wire
    assert wire["accessLogSettings"] == {"destinationArn": log_arn, "format": fmt}, wire
    # UpdateStage: route settings merge member by member, access log settings as a whole.
    upd = c.apigw.update_stage(ApiId=api, StageName="prod", DefaultRouteSettings={"LoggingLevel": "ERROR"},
                               StageVariables={"a": ""})
    assert upd["DefaultRouteSettings"] == {
        "DataTraceEnabled": False, "DetailedMetricsEnabled": False, "LoggingLevel": "ERROR",
        "ThrottlingBurstLimit": 100, "ThrottlingRateLimit": 50.0}, upd
    assert upd["StageVariables"] == {"b": "2"}, upd
    assert upd["AccessLogSettings"] == {"DestinationArn": log_arn, "Format": fmt}, upd
    upd = c.apigw.update_stage(ApiId=api, StageName="prod",
                               DefaultRouteSettings={"ThrottlingBurstLimit": 10, "ThrottlingRateLimit": 5.5})
    assert (upd["DefaultRouteSettings"]["ThrottlingBurstLimit"], upd["DefaultRouteSettings"]["ThrottlingRateLimit"],
            upd["DefaultRouteSettings"]["LoggingLevel"]) == (10, 5.5, "ERROR"), upd
    c.apigw.update_stage(ApiId=api, StageName="prod", AccessLogSettings={})  # {} removes them
    assert "AccessLogSettings" not in c.apigw.get_stage(ApiId=api, StageName="prod")
    c.apigw.update_stage(ApiId=api, StageName="prod", AccessLogSettings={"DestinationArn": log_arn, "Format": fmt})
    listed = {s["StageName"]: s for s in c.apigw.get_stages(ApiId=api)["Items"]}
    assert listed["prod"]["AccessLogSettings"]["DestinationArn"] == log_arn, listed
    assert c.apigw.delete_access_log_settings(ApiId=api, StageName="prod"
                                              )["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert "AccessLogSettings" not in c.apigw.get_stage(ApiId=api, StageName="prod")
    assert client_error(lambda: c.apigw.delete_access_log_settings(
        ApiId=api, StageName="nope"))[0] == "NotFoundException"
    calls = {x["operation"] for x in get_json(f"{base}/_wsconn/calls")}
    assert "DeleteAccessLogSettings" in calls, calls
    c.apigw.delete_api(ApiId=api)


def check_account_and_execution_logs(base: str, c) -> None:
    reset(base)
    assert "cloudwatchRoleArn" not in raw_get(base, "/account"), "an unset role is left out"
    role = c.iam.create_role(RoleName="selfcheck-apigw-cw", AssumeRolePolicyDocument=APIGW_TRUST)["Role"]
    set_account_role(c, role["Arn"])
    assert c.apigw1.get_account()["cloudwatchRoleArn"] == role["Arn"]
    ops = {x["operation"] for x in get_json(f"{base}/_wsconn/calls")}
    assert {"GetAccount", "UpdateAccount"} <= ops, ops

    # Execution logging makes API Gateway's log group (no tags, no retention).
    api = new_ws_api(c, "selfcheck-exec-logs")
    c.apigw.create_stage(ApiId=api, StageName="quiet")
    c.apigw.create_stage(ApiId=api, StageName="loud", DefaultRouteSettings={"LoggingLevel": "INFO"})
    c.apigw.update_stage(ApiId=api, StageName="quiet", DefaultRouteSettings={"LoggingLevel": "ERROR"})
    groups = c.logs.describe_log_groups(logGroupNamePrefix=f"API-Gateway-Execution-Logs_{api}/")["logGroups"]
    assert sorted(g["logGroupName"] for g in groups) == [
        f"API-Gateway-Execution-Logs_{api}/loud", f"API-Gateway-Execution-Logs_{api}/quiet"], groups
    assert all("retentionInDays" not in g for g in groups), groups
    assert c.logs.list_tags_for_resource(resourceArn=groups[0]["logGroupArn"])["tags"] == {}
    c.apigw.update_stage(ApiId=api, StageName="loud", DefaultRouteSettings={"LoggingLevel": "INFO"})  # exists: fine

    # No account role: no execution logs (and strict mode refuses the logging at all).
    set_account_role(c, None)
    assert "cloudwatchRoleArn" not in c.apigw1.get_account()
    c.apigw.create_stage(ApiId=api, StageName="norole", DefaultRouteSettings={"LoggingLevel": "INFO"})
    assert not c.logs.describe_log_groups(
        logGroupNamePrefix=f"API-Gateway-Execution-Logs_{api}/norole")["logGroups"]

    # Realism: a role IAM has not propagated yet is refused, like Lambda's.
    configure(base, realism=True, role_propagation_s=HOLD)
    fresh = c.iam.create_role(RoleName="selfcheck-apigw-cw-fresh", AssumeRolePolicyDocument=APIGW_TRUST)["Role"]
    t_role = time.monotonic()
    assert client_error(lambda: set_account_role(c, fresh["Arn"])) == (
        "BadRequestException", "The role ARN does not have required permissions set to API Gateway", 400)
    assert "cloudwatchRoleArn" not in c.apigw1.get_account(), "the refused update did nothing"
    configure(base, role_propagation_s=CLOCK)
    sleep_until(t_role + CLOCK)
    set_account_role(c, fresh["Arn"])
    assert c.apigw1.get_account()["cloudwatchRoleArn"] == fresh["Arn"]
    configure(base, realism=False)
    set_account_role(c, None)
    c.apigw.delete_api(ApiId=api)
    for name in (f"API-Gateway-Execution-Logs_{api}/loud", f"API-Gateway-Execution-Logs_{api}/quiet"):
        c.logs.delete_log_group(logGroupName=name)
    for name in ("selfcheck-apigw-cw", "selfcheck-apigw-cw-fresh"):
        c.iam.delete_role(RoleName=name)


def check_strict_application(base: str, c) -> None:
    """Strict refusals around authorizers, stage logging and the account's role."""
    configure(base, strict=True)
    reset(base)
    api = new_ws_api(c, "selfcheck-strict-app")
    auth = c.apigw.create_authorizer(ApiId=api, AuthorizerType="REQUEST", AuthorizerUri=AUTH_URI,
                                     Name="selfcheck-authorizer",
                                     IdentitySource=["route.request.header.Authorization"])["AuthorizerId"]
    connect = c.apigw.create_route(ApiId=api, RouteKey="$connect", AuthorizationType="CUSTOM",
                                   AuthorizerId=auth)["RouteId"]
    assert client_error(lambda: c.apigw.delete_authorizer(ApiId=api, AuthorizerId=auth)) == (
        "ConflictException", "Cannot delete authorizer 'selfcheck-authorizer', is referenced in "
        "route: $connect", 409)
    c.apigw.update_route(ApiId=api, RouteId=connect, AuthorizationType="NONE")
    assert client_error(lambda: c.apigw.update_route(
        ApiId=api, RouteId=connect, AuthorizationType="CUSTOM", AuthorizerId="zzzzzz")) == (
            "NotFoundException", "Invalid Authorizer identifier specified zzzzzz", 404)
    assert client_error(lambda: c.apigw.create_route(
        ApiId=api, RouteKey="sendmessage", AuthorizationType="CUSTOM"))[:2] == (
            "BadRequestException", "AuthorizerId is required when AuthorizationType is CUSTOM")
    c.apigw.delete_authorizer(ApiId=api, AuthorizerId=auth)
    for sources in (["$request.header.Auth"], ["route.request.header."], ["route.request.body.x"]):
        code, message, status = client_error(lambda: c.apigw.create_authorizer(
            ApiId=api, AuthorizerType="REQUEST", AuthorizerUri=AUTH_URI, Name="a", IdentitySource=sources))
        assert (code, status) == ("BadRequestException", 400) and sources[0] in message, (sources, message)
    assert client_error(lambda: c.apigw.create_authorizer(
        ApiId=api, AuthorizerType="JWT", Name="a", IdentitySource=["route.request.header.A"]))[0] \
        == "BadRequestException"
    c.apigw.create_authorizer(ApiId=api, AuthorizerType="REQUEST", AuthorizerUri=AUTH_URI, Name="ok",
                              IdentitySource=["route.request.querystring.token", "stageVariables.v",
                                              "context.requestId", "route.request.header.X-Token_1"])

    # Logging needs the account's CloudWatch role.
    log_arn = f"arn:aws:logs:{REGION}:123456789012:log-group:/aws/apigateway/selfcheck/prod"
    fmt = '{"requestId":"$context.requestId"}'
    no_role = ("BadRequestException",
               "CloudWatch Logs role ARN must be set in account settings to enable logging", 400)
    assert client_error(lambda: c.apigw.create_stage(
        ApiId=api, StageName="prod", DefaultRouteSettings={"LoggingLevel": "ERROR"})) == no_role
    assert client_error(lambda: c.apigw.create_stage(
        ApiId=api, StageName="prod", AccessLogSettings={"DestinationArn": log_arn, "Format": fmt})) == no_role
    c.apigw.create_stage(ApiId=api, StageName="prod", DefaultRouteSettings={
        "LoggingLevel": "OFF", "ThrottlingBurstLimit": 100, "ThrottlingRateLimit": 50.0})
    assert client_error(lambda: c.apigw.update_stage(
        ApiId=api, StageName="prod", DefaultRouteSettings={"DataTraceEnabled": True})) == no_role
    assert client_error(lambda: c.apigw.update_stage(
        ApiId=api, StageName="prod", AccessLogSettings={"DestinationArn": log_arn, "Format": fmt})) == no_role

    # The account's role must exist and trust API Gateway.
    refused = ("BadRequestException", "The role ARN does not have required permissions set to API Gateway", 400)
    assert client_error(lambda: set_account_role(
        c, "arn:aws:iam::123456789012:role/selfcheck-missing")) == refused
    lam_role = c.iam.create_role(RoleName="selfcheck-not-apigw", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]
    assert client_error(lambda: set_account_role(c, lam_role["Arn"])) == refused
    cw = c.iam.create_role(RoleName="selfcheck-apigw-cw2", AssumeRolePolicyDocument=APIGW_TRUST)["Role"]
    set_account_role(c, cw["Arn"])
    c.apigw.update_stage(ApiId=api, StageName="prod", DefaultRouteSettings={"LoggingLevel": "INFO"},
                         AccessLogSettings={"DestinationArn": log_arn, "Format": fmt + "\n"})
    bad = [
        ({"AccessLogSettings": {"DestinationArn": log_arn + ":*", "Format": fmt}}, "log group ARN"),
        ({"AccessLogSettings": {"DestinationArn": log_arn, "Format": '{"id":"$context.requestIdX"}'}},
         "$context.requestId"),
        ({"AccessLogSettings": {"DestinationArn": log_arn, "Format": "$context.requestId\n$context.status"}},
         "Access Log format must be single line, new line character is allowed only at end of the format"),
        ({"DefaultRouteSettings": {"ThrottlingBurstLimit": 5001}}, "throttlingBurstLimit"),
        ({"DefaultRouteSettings": {"ThrottlingRateLimit": -1.0}}, "throttlingRateLimit"),
        ({"DefaultRouteSettings": {"LoggingLevel": "DEBUG"}},
         "Value 'DEBUG' at 'defaultRouteSettings.loggingLevel' failed to satisfy constraint: "
         "Member must satisfy enum value set: [ERROR, INFO, OFF]"),
    ]
    for kwargs, words in bad:
        code, message, status = client_error(lambda: c.u["apigatewayv2"].update_stage(
            ApiId=api, StageName="prod", **kwargs))
        assert (code, status) == ("BadRequestException", 400) and words in message, (kwargs, message)
    assert client_error(lambda: c.apigw.update_stage(
        ApiId=api, StageName="prod", RouteSettings={"sendmessage": {"ThrottlingBurstLimit": 1}})) == (
            "NotFoundException", "Unable to find Route by key sendmessage within the provided "
            "RouteSettings", 404)
    c.apigw.update_stage(ApiId=api, StageName="prod", RouteSettings={"$connect": {"ThrottlingBurstLimit": 1}})
    c.apigw.update_stage(ApiId=api, StageName="prod", AccessLogSettings={
        "DestinationArn": log_arn, "Format": "$context.extendedRequestId $context.status"},
        DefaultRouteSettings={"ThrottlingBurstLimit": 5000, "ThrottlingRateLimit": 10000.0})
    kinds = {x.get("fault_kind") for x in get_json(f"{base}/_wsconn/calls") if "fault" in x}
    assert kinds == {"strict"}, kinds

    configure(base, strict=False)
    set_account_role(c, None)
    c.apigw.delete_api(ApiId=api)
    c.logs.delete_log_group(logGroupName=f"API-Gateway-Execution-Logs_{api}/prod")
    for name in ("selfcheck-not-apigw", "selfcheck-apigw-cw2"):
        c.iam.delete_role(RoleName=name)


def tiny_zip() -> bytes:
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("index.mjs", "export const handler = async () => ({});")
    return zipped.getvalue()


def check_strict_constraints(base: str, c) -> None:
    """Published constraints (botocore's models) on the calls wsconn makes."""
    configure(base, strict=True)
    reset(base)
    iam, lam, logs, ddb, apigw = (c.u[s] for s in ("iam", "lambda", "logs", "dynamodb", "apigatewayv2"))

    def refused(fn, code, *expected_errors):
        """One error listing every violation (in no promised order), as AWS's front end."""
        got_code, message, status = client_error(fn)
        n = len(expected_errors)
        prefix = f"{n} validation error{'s' if n != 1 else ''} detected: "
        assert (got_code, status) == (code, 400) and message.startswith(prefix), (got_code, message, status)
        assert sorted(message[len(prefix):].split("; ")) == sorted(expected_errors), message

    tag_pattern = r"Member must satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]*"
    refused(lambda: iam.create_role(RoleName="r" * 65, AssumeRolePolicyDocument=LAMBDA_TRUST),
            "ValidationError", f"Value '{'r' * 65}' at 'roleName' failed to satisfy constraint: "
                               "Member must have length less than or equal to 64")
    refused(lambda: iam.create_role(RoleName="selfcheck role", AssumeRolePolicyDocument=LAMBDA_TRUST,
                                    Tags=[{"Key": "wsconn:stack", "Value": "a,b"}]),
            "ValidationError",
            r"Value 'selfcheck role' at 'roleName' failed to satisfy constraint: Member must "
            r"satisfy regular expression pattern: [\w+=,.@-]+",
            f"Value 'a,b' at 'tags.1.member.value' failed to satisfy constraint: {tag_pattern}")
    role = iam.create_role(RoleName="selfcheck-strict-fn", AssumeRolePolicyDocument=LAMBDA_TRUST, Tags=[
        {"Key": "wsconn:stack", "Value": "Grüße 1 _.:/=+-@"}])["Role"]  # letters, spaces, digits: fine
    refused(lambda: iam.put_role_policy(RoleName=role["RoleName"], PolicyName="logs only",
                                        PolicyDocument=LAMBDA_TRUST),
            "ValidationError", r"Value 'logs only' at 'policyName' failed to satisfy constraint: "
                               r"Member must satisfy regular expression pattern: [\w+=,.@-]+")
    refused(lambda: iam.tag_role(RoleName=role["RoleName"], Tags=[{"Key": "k", "Value": "x" * 257}]),
            "ValidationError", f"Value '{'x' * 257}' at 'tags.1.member.value' failed to satisfy "
                               "constraint: Member must have length less than or equal to 256")

    fn = dict(Runtime="nodejs24.x", Handler="index.handler", Role=role["Arn"], Code={"ZipFile": tiny_zip()})
    refused(lambda: lam.create_function(FunctionName="f" * 65, **fn), "ValidationException",
            f"Value '{'f' * 65}' at 'functionName' failed to satisfy constraint: "
            "Member must have length less than or equal to 64")
    refused(lambda: lam.create_function(FunctionName="selfcheck-limits", MemorySize=10241, Timeout=901, **fn),
            "ValidationException",
            "Value '10241' at 'memorySize' failed to satisfy constraint: Member must have value "
            "less than or equal to 10240",
            "Value '901' at 'timeout' failed to satisfy constraint: Member must have value less "
            "than or equal to 900")
    refused(lambda: lam.create_function(FunctionName="selfcheck-limits", MemorySize=64, Timeout=0, **fn),
            "ValidationException",
            "Value '64' at 'memorySize' failed to satisfy constraint: Member must have value "
            "greater than or equal to 128",
            "Value '0' at 'timeout' failed to satisfy constraint: Member must have value greater "
            "than or equal to 1")
    refused(lambda: lam.create_function(FunctionName="selfcheck-tags", Tags={"wsconn:stack": "a,b"}, **fn),
            "ValidationException",
            "Value '{wsconn:stack=a,b}' at 'tags' failed to satisfy constraint: Map value must "
            r"satisfy constraint: [Member must satisfy regular expression pattern: "
            r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)]")
    assert client_error(lambda: lam.create_function(
        FunctionName="selfcheck-env", Environment={"Variables": {"AWS_REGION": "x", "TABLE_NAME": "t",
                                                                  "AWS_LAMBDA_FUNCTION_NAME": "y"}}, **fn)) == (
        "InvalidParameterValueException", "Lambda was unable to configure your environment variables "
        "because the environment variables you have provided contains reserved keys that are currently "
        "not supported for modification. Reserved keys used in this request: AWS_REGION, "
        "AWS_LAMBDA_FUNCTION_NAME", 400)
    big_env = {"Variables": {"BIG": "x" * 4090}}
    code, message, status = client_error(lambda: lam.create_function(
        FunctionName="selfcheck-env", Environment=big_env, **fn))
    assert (code, status) == ("InvalidParameterValueException", 400) and message.startswith(
        "Lambda was unable to configure your environment variables because the environment "
        'variables you have provided exceeded the 4KB limit. String measured: {"BIG":"xxx'), message
    variables = {"TZ": "UTC", "AWS_LAMBDA_EXEC_WRAPPER": "/opt/w", "BIG": ""}
    variables["BIG"] = "x" * (4096 - len(json.dumps(variables, separators=(",", ":"))))
    created = lam.create_function(FunctionName="selfcheck-env", MemorySize=10240, Timeout=900,
                                  Environment={"Variables": variables}, **fn)
    assert created["MemorySize"] == 10240, created  # 4096 bytes exactly, unreserved keys: fine
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("big.bin", b"\0" * (262144000 + 1))
    assert client_error(lambda: lam.update_function_code(
        FunctionName="selfcheck-env", ZipFile=bomb.getvalue())) == (
            "InvalidParameterValueException", "Unzipped size must be smaller than 262144000 bytes", 400)
    assert client_error(lambda: lam.update_function_code(
        FunctionName="selfcheck-env", ZipFile=b"\1" * (50 * 1024 * 1024 + 1))) == (
            "RequestEntityTooLargeException",
            "Request must be smaller than 69905067 bytes for the UpdateFunctionCode operation", 413)

    refused(lambda: logs.create_log_group(logGroupName="/aws/lambda/self check"),
            "InvalidParameterException",
            r"Value '/aws/lambda/self check' at 'logGroupName' failed to satisfy constraint: Member "
            r"must satisfy regular expression pattern: [\.\-_/#A-Za-z0-9]+")
    refused(lambda: logs.create_log_group(logGroupName="/aws/lambda/selfcheck", tags={"k": "a;b"}),
            "InvalidParameterException",
            "Value '{k=a;b}' at 'tags' failed to satisfy constraint: Map value must satisfy "
            r"constraint: [Member must satisfy regular expression pattern: ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$]")
    logs.create_log_group(logGroupName="/aws/lambda/selfcheck", tags={"wsconn:stack": "selfcheck"})
    refused(lambda: logs.put_retention_policy(logGroupName="/aws/lambda/selfcheck", retentionInDays=10),
            "InvalidParameterException",
            "Value '10' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum "
            "value set: [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, "
            "2192, 2557, 2922, 3288, 3653]")
    logs.put_retention_policy(logGroupName="/aws/lambda/selfcheck", retentionInDays=14)

    table = dict(BillingMode="PAY_PER_REQUEST", AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                 KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    refused(lambda: ddb.create_table(TableName="ab", **table), "ValidationException",
            "Value 'ab' at 'tableName' failed to satisfy constraint: Member must have length "
            "greater than or equal to 3")
    refused(lambda: ddb.create_table(TableName="self check", **table), "ValidationException",
            "Value 'self check' at 'tableName' failed to satisfy constraint: Member must satisfy "
            "regular expression pattern: [a-zA-Z0-9_.-]+")

    refused(lambda: apigw.create_api(Name="n" * 129, ProtocolType="WEBSOCKET",
                                     RouteSelectionExpression="$request.body.action"),
            "BadRequestException", f"Value '{'n' * 129}' at 'name' failed to satisfy constraint: "
                                   "Member must have length less than or equal to 128")
    api = new_ws_api(c, "selfcheck-constraints")
    refused(lambda: apigw.create_authorizer(ApiId=api, AuthorizerType="REQUEST", AuthorizerUri=AUTH_URI,
                                            Name="a" * 129, IdentitySource=["route.request.header.A"]),
            "BadRequestException", f"Value '{'a' * 129}' at 'name' failed to satisfy constraint: "
                                   "Member must have length less than or equal to 128")
    refused(lambda: apigw.update_api(ApiId=api, Description="d" * 1025), "BadRequestException",
            f"Value '{'d' * 1025}' at 'description' failed to satisfy constraint: Member must have "
            "length less than or equal to 1024")
    kinds = {x.get("fault_kind") for x in get_json(f"{base}/_wsconn/calls") if "fault" in x}
    assert kinds == {"strict"}, kinds

    configure(base, strict=False)  # default: moto takes what it is given
    iam.create_role(RoleName="selfcheck loose", AssumeRolePolicyDocument=LAMBDA_TRUST,
                    Tags=[{"Key": "k", "Value": "a,b"}])
    iam.delete_role(RoleName="selfcheck loose")
    c.apigw.delete_api(ApiId=api)
    c.lam.delete_function(FunctionName="selfcheck-env")
    c.logs.delete_log_group(logGroupName="/aws/lambda/selfcheck")
    iam.delete_role(RoleName=role["RoleName"])


def check_policies_and_discovery(base: str, c) -> None:
    """What issue 14's foreign-grant test and issue 15's discovery rely on; moto 5.2.5
    does these itself (no gap filler)."""
    reset(base)
    stack = "selfcheck-disc"
    tag = [{"Key": "wsconn:stack", "Value": stack}]
    role = c.iam.create_role(RoleName=f"{stack}-sendmessage-fn", AssumeRolePolicyDocument=LAMBDA_TRUST,
                             Tags=tag)["Role"]
    c.iam.create_role(RoleName="selfcheck-other", AssumeRolePolicyDocument=LAMBDA_TRUST)
    arn = c.lam.create_function(FunctionName=f"{stack}-sendmessage", Runtime="nodejs24.x",
                                Handler="index.handler", Role=role["Arn"], Code={"ZipFile": tiny_zip()},
                                Tags={"wsconn:stack": stack})["FunctionArn"]
    assert client_error(lambda: c.lam.get_policy(FunctionName=arn))[0] == "ResourceNotFoundException"
    own = f"arn:aws:execute-api:{REGION}:123456789012:abc123/*"
    c.lam.add_permission(FunctionName=arn, StatementId="wsconn-apigw", Action="lambda:InvokeFunction",
                         Principal="apigateway.amazonaws.com", SourceArn=own)
    c.lam.add_permission(FunctionName=arn, StatementId="foreign", Action="lambda:InvokeFunction",
                         Principal="*")
    statements = {st["Sid"]: st for st in json.loads(c.lam.get_policy(FunctionName=arn)["Policy"])["Statement"]}
    assert set(statements) == {"wsconn-apigw", "foreign"}, statements
    assert statements["foreign"]["Principal"] == "*" and "Condition" not in statements["foreign"]
    assert statements["wsconn-apigw"]["Condition"] == {"ArnLike": {"AWS:SourceArn": own}}, statements
    c.lam.remove_permission(FunctionName=arn, StatementId="foreign")
    left = [st["Sid"] for st in json.loads(c.lam.get_policy(FunctionName=arn)["Policy"])["Statement"]]
    assert left == ["wsconn-apigw"], left

    names = [f["FunctionName"] for f in c.lam.list_functions()["Functions"]]
    assert f"{stack}-sendmessage" in names, names
    assert c.lam.list_tags(Resource=arn)["Tags"] == {"wsconn:stack": stack}
    roles = [r["RoleName"] for r in c.iam.list_roles()["Roles"] if r["RoleName"].startswith(f"{stack}-")]
    assert roles == [f"{stack}-sendmessage-fn"], roles
    assert c.iam.list_role_tags(RoleName=roles[0])["Tags"] == tag
    for name in (f"/aws/lambda/{stack}-sendmessage", f"/aws/lambda/{stack}-authorizer", "/aws/lambda/selfcheck-x"):
        c.logs.create_log_group(logGroupName=name, tags={"wsconn:stack": stack})
    found = [g["logGroupName"] for g in c.logs.describe_log_groups(
        logGroupNamePrefix=f"/aws/lambda/{stack}-")["logGroups"]]
    assert found == [f"/aws/lambda/{stack}-authorizer", f"/aws/lambda/{stack}-sendmessage"], found
    c.lam.delete_function(FunctionName=arn)
    for name in (f"/aws/lambda/{stack}-sendmessage", f"/aws/lambda/{stack}-authorizer", "/aws/lambda/selfcheck-x"):
        c.logs.delete_log_group(logGroupName=name)
    for name in (f"{stack}-sendmessage-fn", "selfcheck-other"):
        c.iam.delete_role(RoleName=name)


# ---------------------------------------------------------------------------
# Releases (Lambda versions), custom domains (ACM, Route 53, API Gateway v2 domain
# names) and `wsconn logs` (CloudWatch Logs): the gap fillers of Parts 1b-1d
# ---------------------------------------------------------------------------


def tiny_zip_of(text: str) -> bytes:
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("index.mjs", text)
    return zipped.getvalue()


def recorded(base: str) -> dict[str, dict]:
    """The first recorded call of each operation."""
    by_op: dict[str, dict] = {}
    for call in get_json(f"{base}/_wsconn/calls"):
        by_op.setdefault(call["operation"], call)
    return by_op


def assert_recorded(base: str, expected: dict[str, bool]) -> None:
    by_op = recorded(base)
    for op, mutating in expected.items():
        assert op in by_op, (op, sorted(by_op))
        assert by_op[op]["mutating"] is mutating, by_op[op]
    assert not any(op.startswith("UNKNOWN") for op in by_op), sorted(by_op)


def policy_of(c, **kw) -> dict:
    return {st["Sid"]: st for st in json.loads(c.lam.get_policy(**kw)["Policy"])["Statement"]}


def check_lambda_versions(base: str, c) -> None:
    """PublishVersion (guards, nothing-changed, numbering), a policy per version,
    qualified Get/Delete, ListVersionsByFunction's members and paging, the recorder."""
    reset(base)
    role = c.iam.create_role(RoleName="selfcheck-versions", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]
    name = "selfcheck-versions"
    created = c.lam.create_function(FunctionName=name, Runtime="nodejs24.x", Handler="index.handler",
                                    Role=role["Arn"], Code={"ZipFile": tiny_zip_of("// 1")},
                                    Environment={"Variables": {"A": "1"}}, MemorySize=256, Timeout=9)
    arn = created["FunctionArn"]
    rev0 = c.lam.get_function(FunctionName=name)["Configuration"]["RevisionId"]
    assert rev0 and created["RevisionId"] == rev0, created
    v1 = c.lam.publish_version(FunctionName=name, Description="first")
    assert (v1["Version"], v1["FunctionArn"], v1["Description"]) == ("1", f"{arn}:1", "first"), v1
    assert v1["ResponseMetadata"]["HTTPStatusCode"] == 201 and v1["RevisionId"] != rev0, v1
    assert c.lam.get_function(FunctionName=name)["Configuration"]["RevisionId"] != rev0, \
        "publishing gives $LATEST a new RevisionId"
    # Nothing changed: the same version, also after a configuration update to the same values.
    assert c.lam.publish_version(FunctionName=name)["Version"] == "1"
    c.lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"A": "1"}})
    assert c.lam.publish_version(FunctionName=name)["Version"] == "1"
    assert client_error(lambda: c.lam.update_function_configuration(
        FunctionName=name, Timeout=10, RevisionId=rev0))[::2] == ("PreconditionFailedException", 412)
    updated = c.lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"A": "2"}})
    assert updated["RevisionId"] != rev0, updated
    assert c.lam.publish_version(FunctionName=name)["Version"] == "2"
    code = c.lam.update_function_code(FunctionName=name, ZipFile=tiny_zip_of("// 3"))
    # The guards: a stale RevisionId (412) and a CodeSha256 that is not $LATEST's (400).
    assert client_error(lambda: c.lam.publish_version(FunctionName=name, RevisionId=rev0)) == (
        "PreconditionFailedException", "The Revision Id provided does not match the latest Revision Id. "
        "Call the GetFunction/GetAlias API to retrieve the latest Revision Id", 412)
    wrong = v1["CodeSha256"]
    assert client_error(lambda: c.lam.publish_version(FunctionName=name, CodeSha256=wrong)) == (
        "InvalidParameterValueException", f"CodeSHA256 ({wrong}) is different from current CodeSHA256 in "
        f"$LATEST ({code['CodeSha256']}). Please try again with the CodeSHA256 in $LATEST.", 400)
    current = c.lam.get_function_configuration(FunctionName=name)
    v3 = c.lam.publish_version(FunctionName=name, CodeSha256=code["CodeSha256"],
                               RevisionId=current["RevisionId"])
    assert v3["Version"] == "3" and v3["CodeSha256"] == code["CodeSha256"] != wrong, v3
    # Each version keeps what it was published with.
    got1 = c.lam.get_function_configuration(FunctionName=name, Qualifier="1")
    assert (got1["Version"], got1["Environment"], got1["CodeSha256"], got1["Description"]) == (
        "1", {"Variables": {"A": "1"}}, wrong, "first"), got1
    assert c.lam.get_function(FunctionName=f"{arn}:2")["Configuration"]["Environment"] == {"Variables": {"A": "2"}}
    assert c.lam.get_function(FunctionName=name)["Configuration"]["Version"] == "$LATEST"

    # ListVersionsByFunction: every version's members, paged by MaxItems / Marker, by ARN too.
    listed = c.lam.list_versions_by_function(FunctionName=arn)["Versions"]
    assert [v["Version"] for v in listed] == ["$LATEST", "1", "2", "3"], listed
    for v in listed:
        for member in ("CodeSha256", "Environment", "Handler", "Runtime", "MemorySize", "Timeout",
                       "Role", "Architectures", "Version", "RevisionId", "FunctionArn"):
            assert member in v, (member, v)
        assert (v["MemorySize"], v["Timeout"], v["Handler"]) == (256, 9, "index.handler"), v
    assert listed[0]["FunctionArn"] == f"{arn}:$LATEST" and listed[2]["FunctionArn"] == f"{arn}:2"
    pages, marker = [], None
    while True:
        kw = {"Marker": marker} if marker else {}
        page = c.lam.list_versions_by_function(FunctionName=name, MaxItems=3, **kw)
        pages.append([v["Version"] for v in page["Versions"]])
        marker = page.get("NextMarker")
        if not marker:
            break
    assert pages == [["$LATEST", "1", "2"], ["3"]], pages
    assert client_error(lambda: c.lam.list_versions_by_function(FunctionName="selfcheck-none"))[0] \
        == "ResourceNotFoundException"

    # A resource policy per version: a grant on one version is on that version only.
    own = f"arn:aws:execute-api:{REGION}:123456789012:abc123/*"
    grant = dict(Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com", SourceArn=own)
    added = c.lam.add_permission(FunctionName=name, Qualifier="1", StatementId="release", **grant)
    assert added["ResponseMetadata"]["HTTPStatusCode"] == 201, added
    c.lam.add_permission(FunctionName=f"{arn}:2", StatementId="release", **grant)  # same id, other version
    c.lam.add_permission(FunctionName=f"{name}:2", StatementId="extra", **grant)
    assert client_error(lambda: c.lam.get_policy(FunctionName=name))[0] == "ResourceNotFoundException", \
        "no grant on the unqualified function"
    assert client_error(lambda: c.lam.get_policy(FunctionName=name, Qualifier="3"))[0] == "ResourceNotFoundException"
    p1 = policy_of(c, FunctionName=name, Qualifier="1")
    assert set(p1) == {"release"} and p1["release"]["Resource"] == f"{arn}:1", p1
    p2 = policy_of(c, FunctionName=f"{arn}:2")
    assert set(p2) == {"release", "extra"} and p2["extra"]["Resource"] == f"{arn}:2", p2
    c.lam.add_permission(FunctionName=name, StatementId="latest", **grant)
    assert set(policy_of(c, FunctionName=name)) == {"latest"}
    c.lam.update_function_configuration(FunctionName=name, Description="moved on")
    assert c.lam.get_policy(FunctionName=name)["RevisionId"] == \
        c.lam.get_function_configuration(FunctionName=name)["RevisionId"], "one RevisionId, the function's"
    assert policy_of(c, FunctionName=name)["latest"]["Resource"] == arn
    # The policy's RevisionId is the version's; a stale one is refused (moto refused all).
    got = c.lam.get_policy(FunctionName=name, Qualifier="2")
    assert got["RevisionId"] == c.lam.get_function_configuration(FunctionName=name, Qualifier="2")["RevisionId"]
    assert client_error(lambda: c.lam.remove_permission(
        FunctionName=name, Qualifier="2", StatementId="extra", RevisionId=rev0))[0] == "PreconditionFailedException"
    c.lam.remove_permission(FunctionName=name, Qualifier="2", StatementId="extra", RevisionId=got["RevisionId"])
    c.lam.remove_permission(FunctionName=name, Qualifier="1", StatementId="release")
    assert client_error(lambda: c.lam.get_policy(FunctionName=name, Qualifier="1"))[0] == "ResourceNotFoundException"
    assert set(policy_of(c, FunctionName=name, Qualifier="2")) == {"release"}, "version 2 kept its grant"
    assert set(policy_of(c, FunctionName=name)) == {"latest"}
    assert client_error(lambda: c.lam.remove_permission(
        FunctionName=name, Qualifier="2", StatementId="nope"))[:2] == (
            "ResourceNotFoundException", "Statement nope is not found in resource policy.")

    # Deleting a version: its number is never reused; $LATEST cannot be deleted alone.
    c.lam.delete_function(FunctionName=name, Qualifier="3")
    assert client_error(lambda: c.lam.get_function(FunctionName=name, Qualifier="3"))[0] == "ResourceNotFoundException"
    c.lam.update_function_code(FunctionName=name, ZipFile=tiny_zip_of("// 4"))
    assert c.lam.publish_version(FunctionName=name)["Version"] == "4"
    assert [v["Version"] for v in c.lam.list_versions_by_function(FunctionName=name)["Versions"]] == \
        ["$LATEST", "1", "2", "4"]
    assert client_error(lambda: c.lam.delete_function(FunctionName=name, Qualifier="$LATEST")) == (
        "InvalidParameterValueException", "$LATEST version cannot be deleted without deleting the function.", 400)
    c.lam.delete_function(FunctionName=f"{arn}:1")
    assert [v["Version"] for v in c.lam.list_versions_by_function(FunctionName=name)["Versions"]] == \
        ["$LATEST", "2", "4"]

    assert_recorded(base, {"PublishVersion": True, "AddPermission": True, "RemovePermission": True,
                           "DeleteFunction": True, "ListVersionsByFunction": False, "GetPolicy": False,
                           "GetFunctionConfiguration": False})
    qualified = [x for x in get_json(f"{base}/_wsconn/calls") if x["operation"] == "RemovePermission"]
    assert qualified and all(x["mutating"] for x in qualified), qualified
    c.lam.delete_function(FunctionName=name)
    assert client_error(lambda: c.lam.get_function(FunctionName=f"{name}:2"))[0] == "ResourceNotFoundException"
    c.iam.delete_role(RoleName="selfcheck-versions")


def check_lambda_versions_realism(base: str, c) -> None:
    """Realism: a new version is Pending for function_pending_s; PublishVersion waits for
    an update in progress; the RevisionId an update returns changes when it completes."""
    configure(base, realism=False)
    reset(base)
    role = c.iam.create_role(RoleName="selfcheck-versions-r", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]
    fn = dict(Runtime="nodejs24.x", Handler="index.handler", Role=role["Arn"], Code={"ZipFile": tiny_zip()})
    c.lam.create_function(FunctionName="selfcheck-vr", **fn)  # made before realism: Active
    configure(base, realism=True, function_pending_s=HOLD, function_update_s=HOLD)
    published = c.lam.publish_version(FunctionName="selfcheck-vr")
    t_pub = time.monotonic()
    assert (published["State"], published["StateReasonCode"]) == ("Pending", "Creating"), published
    assert c.lam.get_function_configuration(FunctionName="selfcheck-vr", Qualifier="1")["State"] == "Pending"
    assert c.lam.get_function(FunctionName="selfcheck-vr:1")["Configuration"]["State"] == "Pending"
    states = {v["Version"]: v["State"] for v in c.lam.list_versions_by_function(FunctionName="selfcheck-vr")["Versions"]}
    assert states == {"$LATEST": "Active", "1": "Pending"}, states
    assert client_error(lambda: c.lam.invoke(FunctionName="selfcheck-vr", Qualifier="1")) == (
        "ResourceConflictException", "The operation cannot be performed at this time. The function is "
        "currently in the following state: Pending", 409)
    assert c.lam.publish_version(FunctionName="selfcheck-vr")["State"] == "Pending", \
        "the unchanged publish returns the same (still Pending) version"
    configure(base, function_pending_s=CLOCK)
    sleep_until(t_pub + CLOCK)
    assert c.lam.get_function_configuration(FunctionName="selfcheck-vr", Qualifier="1")["State"] == "Active"

    # An update in progress: PublishVersion waits; the interim RevisionId goes stale.
    created = c.lam.create_function(FunctionName="selfcheck-vr2", **fn)
    sleep_until(time.monotonic() + CLOCK)
    configure(base, function_update_s=HOLD)
    interim = c.lam.update_function_configuration(FunctionName="selfcheck-vr2", Timeout=7)["RevisionId"]
    t_upd = time.monotonic()
    assert client_error(lambda: c.lam.publish_version(FunctionName="selfcheck-vr2")) == (
        "ResourceConflictException", "The operation cannot be performed at this time. An update is in "
        f"progress for resource: {created['FunctionArn']}", 409)
    assert c.lam.get_function_configuration(FunctionName="selfcheck-vr2")["RevisionId"] == interim
    configure(base, function_update_s=CLOCK)
    sleep_until(t_upd + CLOCK)
    final = c.lam.get_function_configuration(FunctionName="selfcheck-vr2")
    assert final["LastUpdateStatus"] == "Successful" and final["RevisionId"] != interim, final
    assert client_error(lambda: c.lam.publish_version(
        FunctionName="selfcheck-vr2", RevisionId=interim))[0] == "PreconditionFailedException"
    assert c.lam.publish_version(FunctionName="selfcheck-vr2", RevisionId=final["RevisionId"])["Version"] == "1"
    # Deleting a version leaves the function's own clocks alone (the update of t_upd
    # shows again once its window is widened).
    c.lam.delete_function(FunctionName="selfcheck-vr2", Qualifier="1")
    configure(base, function_update_s=HOLD)
    assert c.lam.get_function_configuration(FunctionName="selfcheck-vr2")["LastUpdateStatus"] == "InProgress"
    configure(base, function_update_s=CLOCK)
    kinds = {x.get("fault_kind") for x in get_json(f"{base}/_wsconn/calls") if "fault" in x}
    assert kinds == {"realism"}, kinds
    configure(base, realism=False)
    for name in ("selfcheck-vr", "selfcheck-vr2"):
        c.lam.delete_function(FunctionName=name)
    c.iam.delete_role(RoleName="selfcheck-versions-r")


def check_lambda_versions_strict(base: str, c) -> None:
    configure(base, strict=True)
    reset(base)
    role = c.iam.create_role(RoleName="selfcheck-versions-s", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]
    c.lam.create_function(FunctionName="selfcheck-vs", Runtime="nodejs24.x", Handler="index.handler",
                          Role=role["Arn"], Code={"ZipFile": tiny_zip()})
    c.lam.publish_version(FunctionName="selfcheck-vs")
    grant = dict(FunctionName="selfcheck-vs", StatementId="s", Action="lambda:InvokeFunction",
                 Principal="apigateway.amazonaws.com")
    assert client_error(lambda: c.lam.add_permission(Qualifier="$LATEST", **grant)) == (
        "InvalidParameterValueException", "We currently do not support adding policies for $LATEST.", 400)
    c.lam.add_permission(**grant)
    c.lam.add_permission(Qualifier="1", **grant)  # the same id in another policy (version 1's) is fine
    assert client_error(lambda: c.lam.add_permission(Qualifier="1", **grant))[:2] == (
        "ResourceConflictException", "The statement id (s) provided already exists. Please provide a new "
        "statement id, or remove the existing statement.")
    code, message, status = client_error(lambda: c.lam.add_permission(Qualifier="no good", **grant))
    assert (code, status) == ("ValidationException", 400) and "at 'qualifier'" in message, message
    kinds = {x.get("fault_kind") for x in get_json(f"{base}/_wsconn/calls") if "fault" in x}
    assert kinds == {"strict"}, kinds
    configure(base, strict=False)
    c.lam.delete_function(FunctionName="selfcheck-vs")
    c.iam.delete_role(RoleName="selfcheck-versions-s")


ZONE = "selfcheck.example"


def zone_id(c, name: str) -> str:
    for zone in c.r53.list_hosted_zones()["HostedZones"]:
        if zone["Name"] == name + ".":
            return zone["Id"]
    return c.r53.create_hosted_zone(Name=name, CallerReference=f"{name}-{time.time()}")["HostedZone"]["Id"]


def rrsets(c, zone: str) -> dict[tuple[str, str], dict]:
    return {(r["Name"], r["Type"]): r for r in c.r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]}


def change(c, zone: str, *changes):
    return c.r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": list(changes)})


def cname(action: str, record: dict, ttl: int = 300) -> dict:
    return {"Action": action, "ResourceRecordSet": {"Name": record["Name"], "Type": record["Type"], "TTL": ttl,
                                                    "ResourceRecords": [{"Value": record["Value"]}]}}


def issued_certificate(c, domain: str) -> str:
    """A certificate for `domain`, DNS-validated in ZONE (acm_validation_wait_s must be 0)."""
    arn = c.acm.request_certificate(DomainName=domain, ValidationMethod="DNS")["CertificateArn"]
    record = c.acm.describe_certificate(CertificateArn=arn)["Certificate"]["DomainValidationOptions"][0]["ResourceRecord"]
    zone = zone_id(c, ZONE)
    if (record["Name"], "CNAME") not in rrsets(c, zone):
        change(c, zone, cname("CREATE", record))
    assert c.acm.describe_certificate(CertificateArn=arn)["Certificate"]["Status"] == "ISSUED"
    return arn


def check_certificates_and_dns(base: str, c) -> None:
    """ACM: per-name validation CNAMEs, ISSUED only after the CNAME exists plus the wait
    (a setting), IdempotencyToken, in use, paging; Route 53: atomic batches with AWS's
    messages, change ids PENDING -> INSYNC, ListHostedZonesByName's order and paging;
    both services' recorder names, throttling and queued faults."""
    reset(base)
    assert configure(base, acm_validation_wait_s=0)["acm_validation_wait_s"] == 0
    assert post_json(f"{base}/_wsconn/config", {"acm_validation_wait_s": -1})[0] == 400
    zone = zone_id(c, ZONE)  # the names' zone: their validation CNAMEs belong there
    domain = f"ws.{ZONE}"
    request = dict(DomainName=domain, ValidationMethod="DNS", SubjectAlternativeNames=[domain, f"*.{domain}"],
                   IdempotencyToken="selfcheck1", Tags=[{"Key": "wsconn:stack", "Value": "selfcheck"}])
    arn = c.acm.request_certificate(**request)["CertificateArn"]
    assert c.acm.request_certificate(**request)["CertificateArn"] == arn, "same token, same certificate"
    cert = c.acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert cert["Status"] == "PENDING_VALIDATION" and "IssuedAt" not in cert, cert
    options = {o["DomainName"]: o for o in cert["DomainValidationOptions"]}
    assert [o["DomainName"] for o in cert["DomainValidationOptions"]] == [domain, f"*.{domain}"], options
    record = options[domain]["ResourceRecord"]
    assert record["Type"] == "CNAME" and record["Name"].endswith(f".{domain}.") and \
        record["Value"].endswith(".acm-validations.aws."), record
    assert options[f"*.{domain}"]["ResourceRecord"] == record, "a name and its wildcard share the record"
    other = c.acm.request_certificate(DomainName=f"api.{ZONE}", ValidationMethod="DNS")["CertificateArn"]
    other_record = c.acm.describe_certificate(CertificateArn=other)["Certificate"][
        "DomainValidationOptions"][0]["ResourceRecord"]
    assert other_record["Name"] != record["Name"] and other_record["Value"] != record["Value"], other_record

    # Hosted zones: AWS's order (labels reversed) from DNSName on, paged by MaxItems.
    tail = zone_id(c, "tail.example")
    assert c.r53.get_hosted_zone(Id=zone)["HostedZone"]["Config"]["PrivateZone"] is False
    first = c.r53.list_hosted_zones_by_name(DNSName=ZONE, MaxItems="1")
    assert [z["Name"] for z in first["HostedZones"]] == [f"{ZONE}."] and first["IsTruncated"], first
    assert first["NextDNSName"] == "tail.example." and first["NextHostedZoneId"] == tail.split("/")[-1], first
    after = c.r53.list_hosted_zones_by_name(DNSName=domain)["HostedZones"]
    assert [z["Name"] for z in after][:1] == ["tail.example."], \
        f"a name without a zone lists the zones after it, not nothing: {after}"

    # The zone covers the name: no CNAME, no certificate, whatever the wait.
    assert c.acm.describe_certificate(CertificateArn=arn)["Certificate"]["Status"] == "PENDING_VALIDATION"
    # A batch is atomic, and its errors are Route 53's.
    assert client_error(lambda: change(c, zone, cname("CREATE", record), {
        "Action": "DELETE", "ResourceRecordSet": {"Name": f"txt.{ZONE}", "Type": "TXT", "TTL": 60,
                                                  "ResourceRecords": [{"Value": '"x"'}]}})) == (
        "InvalidChangeBatch", f"[Tried to delete resource record set [name='txt.{ZONE}.', type='TXT'] but it "
        "was not found]", 400)
    assert (record["Name"], "CNAME") not in rrsets(c, zone), "nothing of a refused batch is applied"
    submitted = change(c, zone, cname("CREATE", record))["ChangeInfo"]
    assert submitted["Status"] == "PENDING" and submitted["Id"].startswith("/change/C"), submitted
    assert submitted["Id"] != change(c, zone, cname("CREATE", other_record))["ChangeInfo"]["Id"], "ids are unique"
    assert c.r53.get_change(Id=submitted["Id"])["ChangeInfo"]["Status"] == "INSYNC"
    assert client_error(lambda: c.r53.get_change(Id="/change/CNOSUCHCHANGE"))[:1] == ("NoSuchChange",)
    issued = c.acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert issued["Status"] == "ISSUED" and "IssuedAt" in issued, issued
    assert {o["ValidationStatus"] for o in issued["DomainValidationOptions"]} == {"SUCCESS"}, issued

    # CREATE of an existing name and type fails; UPSERT replaces; DELETE needs the current values.
    txt = {"Name": f"txt.{ZONE}", "Type": "TXT", "Value": '"one"'}
    change(c, zone, cname("CREATE", txt, 60))
    assert client_error(lambda: change(c, zone, cname("CREATE", {**txt, "Value": '"two"'}, 60))) == (
        "InvalidChangeBatch", f"[Tried to create resource record set [name='txt.{ZONE}.', type='TXT'] but "
        "it already exists]", 400)
    change(c, zone, cname("UPSERT", {**txt, "Value": '"two"'}, 60))
    assert rrsets(c, zone)[(f"txt.{ZONE}.", "TXT")]["ResourceRecords"] == [{"Value": '"two"'}]
    assert client_error(lambda: change(c, zone, cname("DELETE", txt, 60)))[1] == (
        f"[Tried to delete resource record set [name='txt.{ZONE}.', type='TXT'] but the values provided do "
        "not match the current values]")
    change(c, zone, cname("DELETE", {**txt, "Value": '"two"'}, 60))
    assert (f"txt.{ZONE}.", "TXT") not in rrsets(c, zone)
    assert client_error(lambda: change(c, zone, cname("CREATE", {**txt, "Name": "www.elsewhere.example"})))[1] \
        == f"[RRSet with DNS name www.elsewhere.example. is not permitted in zone {ZONE}.]"

    # The wait is a setting, read at each call.
    configure(base, acm_validation_wait_s=60)
    late = c.acm.request_certificate(DomainName=f"late.{ZONE}", ValidationMethod="DNS")["CertificateArn"]
    change(c, zone, cname("CREATE", c.acm.describe_certificate(CertificateArn=late)["Certificate"][
        "DomainValidationOptions"][0]["ResourceRecord"]))
    assert c.acm.describe_certificate(CertificateArn=late)["Certificate"]["Status"] == "PENDING_VALIDATION"
    configure(base, acm_validation_wait_s=0)
    assert c.acm.describe_certificate(CertificateArn=late)["Certificate"]["Status"] == "ISSUED"
    # ListCertificates pages; tags.
    page = c.acm.list_certificates(MaxItems=2)
    assert len(page["CertificateSummaryList"]) == 2 and page.get("NextToken"), page
    rest = c.acm.list_certificates(MaxItems=2, NextToken=page["NextToken"])["CertificateSummaryList"]
    assert {s["CertificateArn"] for s in page["CertificateSummaryList"] + rest} == {arn, other, late}, rest
    assert c.acm.list_tags_for_certificate(CertificateArn=arn)["Tags"] == request["Tags"]
    # A token whose certificate was deleted asks for a new one (moto: KeyError, HTTP 500).
    gone = c.acm.request_certificate(DomainName=f"gone.{ZONE}", IdempotencyToken="selfcheck2")["CertificateArn"]
    c.acm.delete_certificate(CertificateArn=gone)
    again = c.acm.request_certificate(DomainName=f"gone.{ZONE}", IdempotencyToken="selfcheck2")["CertificateArn"]
    assert again != gone, again
    c.acm.delete_certificate(CertificateArn=again)

    # Realism: the ResourceRecord appears after certificate_record_s; a change is PENDING
    # for dns_change_s.
    configure(base, realism=True, certificate_record_s=HOLD, dns_change_s=HOLD)
    fresh = c.acm.request_certificate(DomainName=f"fresh.{ZONE}", ValidationMethod="DNS")["CertificateArn"]
    t_req = time.monotonic()
    option = c.acm.describe_certificate(CertificateArn=fresh)["Certificate"]["DomainValidationOptions"][0]
    assert "ResourceRecord" not in option and option["ValidationStatus"] == "PENDING_VALIDATION", option
    pending = change(c, zone, cname("CREATE", {**txt, "Value": '"three"'}, 60))["ChangeInfo"]
    t_change = time.monotonic()
    assert c.r53.get_change(Id=pending["Id"])["ChangeInfo"]["Status"] == "PENDING"
    configure(base, certificate_record_s=CLOCK, dns_change_s=CLOCK)
    sleep_until(max(t_req, t_change) + CLOCK)
    assert "ResourceRecord" in c.acm.describe_certificate(CertificateArn=fresh)["Certificate"][
        "DomainValidationOptions"][0]
    assert c.r53.get_change(Id=pending["Id"])["ChangeInfo"]["Status"] == "INSYNC"
    configure(base, realism=False)

    assert_recorded(base, {"RequestCertificate": True, "DescribeCertificate": False, "ListCertificates": False,
                           "ListTagsForCertificate": False, "CreateHostedZone": True, "GetHostedZone": False,
                           "ListHostedZonesByName": False, "ChangeResourceRecordSets": True,
                           "GetChange": False, "ListResourceRecordSets": False})
    services = {x["operation"]: x["service"] for x in get_json(f"{base}/_wsconn/calls")}
    assert services["RequestCertificate"] == "acm" and services["GetChange"] == "route53", services

    # Faults reach both services in their wire formats (ACM JSON 1.1, Route 53 XML).
    post_json(f"{base}/_wsconn/faults", [
        {"operation": "ChangeResourceRecordSets", "code": "PriorRequestNotComplete", "status": 400,
         "message": "The request was rejected because Route 53 was still processing a prior request."},
        {"operation": "DescribeCertificate", "code": "ThrottlingException", "status": 400, "message": "Rate exceeded"}])
    assert client_error(lambda: change(c, zone, cname("UPSERT", txt, 60)))[:1] == ("PriorRequestNotComplete",)
    try:
        c.acm.describe_certificate(CertificateArn=arn)
        raise AssertionError("expected the queued fault")
    except ClientError as e:
        assert (e.response["Error"]["Code"], e.response["Error"]["Message"]) == ("ThrottlingException", "Rate exceeded")
        assert e.response["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/x-amz-json-1.1", \
            e.response["ResponseMetadata"]
    configure(base, throttle_rate=1.0)
    assert client_error(lambda: c.acm.list_certificates()) == ("ThrottlingException", "Rate exceeded", 400)
    assert client_error(lambda: c.r53.list_hosted_zones()) == ("Throttling", "Rate exceeded", 400)
    configure(base, throttle_rate=0.0)
    for cert_arn in (other, late, fresh):
        c.acm.delete_certificate(CertificateArn=cert_arn)


def check_domain_names(base: str, c) -> None:
    """API Gateway v2 domain names and mappings: what CreateDomainName returns, the
    certificate in use, UpdateDomainName / UpdateApiMapping, conflicts, tags, deletes."""
    reset(base)
    configure(base, acm_validation_wait_s=0)
    cert = issued_certificate(c, f"ws.{ZONE}")
    cert2 = issued_certificate(c, f"ws2.{ZONE}")
    api = new_ws_api(c, "selfcheck-domain")
    c.apigw.create_stage(ApiId=api, StageName="prod")
    name = f"ws.{ZONE}"
    created = c.apigw.create_domain_name(DomainName=name, Tags={"wsconn:stack": "selfcheck"}, DomainNameConfigurations=[
        {"CertificateArn": cert, "EndpointType": "REGIONAL", "SecurityPolicy": "TLS_1_2"}])
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201, created
    (config,) = created["DomainNameConfigurations"]
    target, hosted_zone = config["ApiGatewayDomainName"], config["HostedZoneId"]
    assert re.fullmatch(r"d-[a-z0-9]{10}\.execute-api\.us-east-1\.amazonaws\.com", target), config
    assert (hosted_zone, config["DomainNameStatus"], config["EndpointType"], config["SecurityPolicy"]) == (
        "Z1UJRXOUMOOFQ8", "AVAILABLE", "REGIONAL", "TLS_1_2"), config
    assert c.apigw.get_domain_name(DomainName=name)["DomainNameConfigurations"][0]["ApiGatewayDomainName"] == target
    assert [d["DomainName"] for d in c.apigw.get_domain_names()["Items"]] == [name]
    domain_arn = f"arn:aws:apigateway:{REGION}::/domainnames/{name}"
    assert c.acm.describe_certificate(CertificateArn=cert)["Certificate"]["InUseBy"] == [domain_arn]
    assert client_error(lambda: c.acm.delete_certificate(CertificateArn=cert)) == (
        "ResourceInUseException", f"Certificate {cert} in account 123456789012 is in use.", 400)
    zone = zone_id(c, ZONE)
    alias = {"Action": "CREATE", "ResourceRecordSet": {"Name": name, "Type": "A", "AliasTarget": {
        "DNSName": target, "HostedZoneId": hosted_zone, "EvaluateTargetHealth": False}}}
    change(c, zone, alias, {**alias, "ResourceRecordSet": {**alias["ResourceRecordSet"], "Type": "AAAA"}})
    listed = rrsets(c, zone)[(f"{name}.", "A")]
    assert listed["AliasTarget"] == {"DNSName": target + ".", "HostedZoneId": hosted_zone,
                                     "EvaluateTargetHealth": False}, listed

    mapping = c.apigw.create_api_mapping(DomainName=name, ApiId=api, Stage="prod")
    assert mapping["ResponseMetadata"]["HTTPStatusCode"] == 201 and len(mapping["ApiMappingId"]) == 6, mapping
    assert client_error(lambda: c.apigw.create_api_mapping(DomainName=name, ApiId=api, Stage="prod"))[::2] == (
        "ConflictException", 409)
    assert client_error(lambda: c.apigw.create_api_mapping(
        DomainName=name, ApiId=api, Stage="nope", ApiMappingKey="x"))[::2] == ("NotFoundException", 404)
    moved = c.apigw.update_api_mapping(DomainName=name, ApiMappingId=mapping["ApiMappingId"], ApiId=api,
                                       ApiMappingKey="v1", Stage="prod")
    assert moved["ApiMappingKey"] == "v1", moved
    assert [m["ApiMappingKey"] for m in c.apigw.get_api_mappings(DomainName=name)["Items"]] == ["v1"]
    assert client_error(lambda: c.apigw.get_api_mappings(DomainName="nope.example")) == (
        "NotFoundException", "Invalid domain name identifier specified", 404)

    updated = c.apigw.update_domain_name(DomainName=name, DomainNameConfigurations=[{"CertificateArn": cert2}])
    assert updated["DomainNameConfigurations"][0]["CertificateArn"] == cert2, updated
    assert updated["DomainNameConfigurations"][0]["ApiGatewayDomainName"] == target, "the target stays"
    assert c.acm.describe_certificate(CertificateArn=cert)["Certificate"]["InUseBy"] == []
    assert c.acm.describe_certificate(CertificateArn=cert2)["Certificate"]["InUseBy"] == [domain_arn]
    c.apigw.tag_resource(ResourceArn=domain_arn, Tags={"extra": "1"})
    assert c.apigw.get_tags(ResourceArn=domain_arn)["Tags"] == {"wsconn:stack": "selfcheck", "extra": "1"}
    assert c.apigw.get_domain_name(DomainName=name)["Tags"] == {"wsconn:stack": "selfcheck", "extra": "1"}

    # Deleting the domain takes its mappings along (moto: HTTP 500) and frees the certificate.
    assert c.apigw.delete_domain_name(DomainName=name)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert client_error(lambda: c.apigw.get_domain_name(DomainName=name))[::2] == ("NotFoundException", 404)
    c.acm.delete_certificate(CertificateArn=cert)
    # Realism: the certificate stays in use for certificate_release_s after the domain goes.
    configure(base, realism=True, certificate_release_s=HOLD)
    c.apigw.create_domain_name(DomainName=name, DomainNameConfigurations=[{"CertificateArn": cert2}])
    c.apigw.delete_domain_name(DomainName=name)
    t_del = time.monotonic()
    assert client_error(lambda: c.acm.delete_certificate(CertificateArn=cert2))[::2] == (
        "ResourceInUseException", 400)
    configure(base, certificate_release_s=CLOCK)
    sleep_until(t_del + CLOCK)
    c.acm.delete_certificate(CertificateArn=cert2)
    configure(base, realism=False)

    assert_recorded(base, {"CreateDomainName": True, "GetDomainName": False, "GetDomainNames": False,
                           "UpdateDomainName": True, "DeleteDomainName": True, "CreateApiMapping": True,
                           "UpdateApiMapping": True, "GetApiMappings": False, "TagResource": True,
                           "GetTags": False, "DeleteCertificate": True})
    change(c, zone, *[{**alias, "Action": "DELETE", "ResourceRecordSet": {**alias["ResourceRecordSet"], "Type": t}}
                      for t in ("A", "AAAA")])
    c.apigw.delete_api(ApiId=api)


def check_domain_strict(base: str, c) -> None:
    """Strict: certificate state and region, WebSocket domains' endpoint type / policy,
    no mixing of WebSocket and HTTP APIs on one domain, alias targets."""
    configure(base, strict=True, acm_validation_wait_s=0)
    reset(base)
    cert = issued_certificate(c, f"strict.{ZONE}")
    pending = c.acm.request_certificate(DomainName=f"pending.{ZONE}",  # no CNAME: stays pending
                                        ValidationMethod="DNS")["CertificateArn"]
    c.acm.describe_certificate(CertificateArn=pending)
    far = boto3.client("acm", config=NO_RETRY, endpoint_url=base, region_name="us-west-2")
    west = far.request_certificate(DomainName=f"west.{ZONE}", ValidationMethod="DNS")["CertificateArn"]
    for arn, words in ((pending, "is not ISSUED"), (west, "must be in the region us-east-1")):
        code, message, status = client_error(lambda: c.apigw.create_domain_name(
            DomainName=f"strict.{ZONE}", DomainNameConfigurations=[{"CertificateArn": arn}]))
        assert (code, status) == ("BadRequestException", 400) and words in message, (arn, message)
    ws = new_ws_api(c, "selfcheck-strict-ws")
    c.apigw.create_stage(ApiId=ws, StageName="prod")
    http = c.apigw.create_api(Name="selfcheck-strict-http", ProtocolType="HTTP")["ApiId"]
    c.apigw.create_stage(ApiId=http, StageName="prod")
    c.apigw.create_domain_name(DomainName=f"old.{ZONE}", DomainNameConfigurations=[
        {"CertificateArn": cert, "SecurityPolicy": "TLS_1_0"}])
    code, message, _ = client_error(lambda: c.apigw.create_api_mapping(
        DomainName=f"old.{ZONE}", ApiId=ws, Stage="prod"))
    assert code == "BadRequestException" and "TLS_1_2" in message, message
    created = c.apigw.create_domain_name(DomainName=f"strict.{ZONE}", DomainNameConfigurations=[
        {"CertificateArn": cert}])
    c.apigw.create_api_mapping(DomainName=f"strict.{ZONE}", ApiId=ws, Stage="prod", ApiMappingKey="ws")
    code, message, _ = client_error(lambda: c.apigw.create_api_mapping(
        DomainName=f"strict.{ZONE}", ApiId=http, Stage="prod", ApiMappingKey="http"))
    assert code == "BadRequestException" and "WebSocket" in message, message
    assert client_error(lambda: c.apigw.update_domain_name(DomainName=f"strict.{ZONE}", DomainNameConfigurations=[
        {"CertificateArn": cert, "SecurityPolicy": "TLS_1_0"}]))[0] == "BadRequestException"
    code, message, _ = client_error(lambda: c.apigw.create_api_mapping(
        DomainName=f"strict.{ZONE}", ApiId=ws, Stage="prod", ApiMappingKey="k" * 301))
    assert code == "BadRequestException" and "apiMappingKey" in message, message
    # The published constraints of ACM (JSON) and Route 53 (URI members) are checked too.
    code, message, status = client_error(lambda: c.acm.request_certificate(DomainName="not a domain!"))
    assert (code, status) == ("ValidationException", 400) and message.startswith(
        "1 validation error detected: Value 'not a domain!' at 'domainName' failed to satisfy constraint"), message
    code, message, status = client_error(lambda: c.r53.get_hosted_zone(Id="Z" * 33))
    assert (code, status) == ("InvalidInput", 400) and "at 'id'" in message, message
    zone = zone_id(c, ZONE)
    target = created["DomainNameConfigurations"][0]["ApiGatewayDomainName"]

    def alias(dns: str, zone_of_target: str) -> dict:
        return {"Action": "CREATE", "ResourceRecordSet": {"Name": f"strict.{ZONE}", "Type": "A", "AliasTarget": {
            "DNSName": dns, "HostedZoneId": zone_of_target, "EvaluateTargetHealth": False}}}

    assert client_error(lambda: change(c, zone, alias(target, "Z2FDTNDATAQYW2"))) == (
        "InvalidChangeBatch", f"[Tried to create an alias that targets {target}., type A in zone "
        "Z2FDTNDATAQYW2, but the alias target name does not lie within the target zone]", 400)
    missing = "d-0000000000.execute-api.us-east-1.amazonaws.com"
    assert client_error(lambda: change(c, zone, alias(missing, "Z1UJRXOUMOOFQ8")))[1] == (
        f"[Tried to create an alias that targets {missing}., type A in zone Z1UJRXOUMOOFQ8, but that "
        "target was not found]")
    change(c, zone, alias(target, "Z1UJRXOUMOOFQ8"))
    kinds = {x.get("fault_kind") for x in get_json(f"{base}/_wsconn/calls") if "fault" in x}
    assert kinds == {"strict"}, kinds

    configure(base, strict=False)  # default: what moto (and the gap fillers) take
    c.apigw.create_api_mapping(DomainName=f"strict.{ZONE}", ApiId=http, Stage="prod", ApiMappingKey="http")
    change(c, zone, {**alias(target, "Z1UJRXOUMOOFQ8"), "Action": "DELETE"})
    for domain_name in (f"strict.{ZONE}", f"old.{ZONE}"):
        c.apigw.delete_domain_name(DomainName=domain_name)
    for api_id in (ws, http):
        c.apigw.delete_api(ApiId=api_id)
    c.acm.delete_certificate(CertificateArn=pending)
    far.delete_certificate(CertificateArn=west)


def check_log_events(base: str, c) -> None:
    """FilterLogEvents: interleaved streams, time order, 10,000 / 1 MB pages, limit,
    nextToken, filter patterns, logGroupIdentifier / logStreamNamePrefix / startFromHead;
    the recorder, throttling, realism's empty first page, strict's 24-hour batches."""
    reset(base)
    group = "/aws/lambda/selfcheck-logs"
    c.logs.create_log_group(logGroupName=group)
    for stream in ("2026/01/01/[$LATEST]a", "2026/01/01/[$LATEST]b", "other"):
        c.logs.create_log_stream(logGroupName=group, logStreamName=stream)
    assert client_error(lambda: c.logs.create_log_stream(logGroupName=group, logStreamName="other")) == (
        "ResourceAlreadyExistsException", "The specified log stream already exists", 400)
    now = int(time.time() * 1000) - 60000
    lines = {
        "2026/01/01/[$LATEST]a": [(0, "START a"), (3, '{"level":"ERROR","latency":250,"route":"sendmessage"}'),
                                  (6, "END a")],
        "2026/01/01/[$LATEST]b": [(1, "START b"), (4, '{"level":"INFO","latency":20,"route":"sendmessage"}'),
                                  (7, "WARN slow b")],
        "other": [(2, "ERROR boom"), (5, "ERROR ignore me"), (8, "exact phrase here")],
    }
    for stream, events in lines.items():
        c.logs.put_log_events(logGroupName=group, logStreamName=stream,
                              logEvents=[{"timestamp": now + t, "message": m} for t, m in events])
    everything = c.logs.filter_log_events(logGroupName=group)
    assert [e["timestamp"] - now for e in everything["events"]] == list(range(9)), everything
    assert "nextToken" not in everything and len({e["eventId"] for e in everything["events"]}) == 9
    assert everything["events"][1]["logStreamName"] == "2026/01/01/[$LATEST]b", everything["events"][1]
    seen, token = [], None
    while True:
        page = c.logs.filter_log_events(logGroupName=group, limit=4, **({"nextToken": token} if token else {}))
        assert len(page["events"]) <= 4, page
        seen += [e["eventId"] for e in page["events"]]
        token = page.get("nextToken")
        if not token:
            break
    assert seen == [e["eventId"] for e in everything["events"]], seen

    def messages(**kw) -> list[str]:
        return [e["message"] for e in c.logs.filter_log_events(logGroupName=group, **kw)["events"]]

    assert messages(filterPattern="?WARN ?boom") == ["ERROR boom", "WARN slow b"]
    assert messages(filterPattern="ERROR -ignore") == ["ERROR boom", lines["2026/01/01/[$LATEST]a"][1][1]]
    assert messages(filterPattern='"exact phrase"') == ["exact phrase here"]
    assert messages(filterPattern='{ $.level = "ERROR" }') == [lines["2026/01/01/[$LATEST]a"][1][1]]
    assert messages(filterPattern='{ ($.latency > 100) || ($.route = "nope*") }') == [lines["2026/01/01/[$LATEST]a"][1][1]]
    assert len(messages(filterPattern='{ $.route = "send*" && $.latency >= 20 }')) == 2
    assert messages(startTime=now + 3, endTime=now + 4) == [lines["2026/01/01/[$LATEST]a"][1][1],
                                                          lines["2026/01/01/[$LATEST]b"][1][1]]
    assert messages(logStreamNamePrefix="2026/01/01/[$LATEST]b") == [m for _, m in lines["2026/01/01/[$LATEST]b"]]
    arn = c.logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["arn"]
    ident = c.logs.filter_log_events(logGroupIdentifier=arn, logStreamNames=["other"])["events"]
    assert [e["message"] for e in ident] == [m for _, m in lines["other"]], ident
    newest = c.logs.filter_log_events(logGroupName=group, startFromHead=False, limit=2)
    assert [e["timestamp"] - now for e in newest["events"]] == [8, 7] and newest.get("nextToken"), newest
    older = c.logs.filter_log_events(logGroupName=group, nextToken=newest["nextToken"], limit=2)
    assert [e["timestamp"] - now for e in older["events"]] == [6, 5], older

    # A page ends at 1 MB (here: two events of 400,000 bytes, the third on the next page).
    c.logs.create_log_stream(logGroupName=group, logStreamName="big")
    for i in range(3):
        c.logs.put_log_events(logGroupName=group, logStreamName="big",
                              logEvents=[{"timestamp": now + 10 + i, "message": str(i) * 400000}])
    big = c.logs.filter_log_events(logGroupName=group, logStreamNames=["big"])
    assert len(big["events"]) == 2 and big.get("nextToken"), [len(e["message"]) for e in big["events"]]
    assert len(c.logs.filter_log_events(logGroupName=group, logStreamNames=["big"],
                                        nextToken=big["nextToken"])["events"]) == 1
    assert_recorded(base, {"FilterLogEvents": False, "PutLogEvents": True, "CreateLogStream": True})

    # Throttling (the existing chaos setting), in the Logs wire format.
    configure(base, throttle_rate=1.0)
    assert client_error(lambda: c.logs.filter_log_events(logGroupName=group)) == (
        "ThrottlingException", "Rate exceeded", 400)
    configure(base, chaos_exclude=["FilterLogEvents"])
    assert messages(logStreamNames=["other"]) == [m for _, m in lines["other"]]
    configure(base, throttle_rate=0.0, chaos_exclude=[])

    # Realism: a search's first page can be empty; its nextToken carries on.
    configure(base, realism=True)
    first = c.logs.filter_log_events(logGroupName=group, logStreamNames=["other"])
    assert first["events"] == [] and first.get("nextToken"), first
    rest = c.logs.filter_log_events(logGroupName=group, logStreamNames=["other"], nextToken=first["nextToken"])
    assert [e["message"] for e in rest["events"]] == [m for _, m in lines["other"]], rest
    configure(base, realism=False)

    # Strict: a batch may not span more than 24 hours.
    configure(base, strict=True)
    day = 24 * 3600 * 1000
    assert client_error(lambda: c.logs.put_log_events(logGroupName=group, logStreamName="other", logEvents=[
        {"timestamp": now - day - 1000, "message": "old"}, {"timestamp": now, "message": "new"}])) == (
        "InvalidParameterException", "The batch of log events in a single PutLogEvents request cannot span "
        "more than 24 hours.", 400)
    configure(base, strict=False)
    c.logs.delete_log_group(logGroupName=group)



class Clients:
    def __init__(self, base: str):
        self.kw = dict(endpoint_url=base, region_name=REGION)
        self.ddb = boto3.client("dynamodb", config=NO_RETRY, **self.kw)
        self.iam = boto3.client("iam", config=NO_RETRY, **self.kw)
        self.lam = boto3.client("lambda", config=NO_RETRY, **self.kw)
        self.apigw = boto3.client("apigatewayv2", config=NO_RETRY, **self.kw)
        self.apigw1 = boto3.client("apigateway", config=NO_RETRY, **self.kw)
        self.logs = boto3.client("logs", config=NO_RETRY, **self.kw)
        self.acm = boto3.client("acm", config=NO_RETRY, **self.kw)
        self.r53 = boto3.client("route53", config=NO_RETRY, **self.kw)
        # boto3 refuses some invalid values itself (minimums, required members); these
        # send whatever they are given, as another SDK might.
        unchecked = Config(retries={"total_max_attempts": 1, "mode": "standard"},
                           parameter_validation=False)
        self.u = {svc: boto3.client(svc, config=unchecked, **self.kw)
                  for svc in ("iam", "lambda", "logs", "dynamodb", "apigatewayv2", "apigateway")}


def emulation_checks(base: str) -> None:
    c = Clients(base)
    for check in (check_config, check_latency_and_levels, check_table_clock,
                  check_role_and_function_clocks, check_concurrent_modification,
                  check_random_faults, check_lost_response, check_error_wire_formats,
                  check_not_aws, check_strict, check_authorizers_and_routes, check_stage_settings,
                  check_account_and_execution_logs, check_strict_application,
                  check_strict_constraints, check_policies_and_discovery, check_lambda_versions,
                  check_lambda_versions_realism, check_lambda_versions_strict,
                  check_certificates_and_dns, check_domain_names, check_domain_strict,
                  check_log_events):
        t0 = time.monotonic()
        if check is check_config:
            check(base)
        else:
            check(base, c)
        print(f"selfcheck: {check.__name__} ok ({time.monotonic() - t0:.2f} s)")


def main() -> int:
    if not __debug__:
        sys.exit("selfcheck: its checks are assert statements; run it without -O")
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        os.environ[k] = v
    t0 = time.monotonic()
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
    print(f"selfcheck: OK ({time.monotonic() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
