#!/usr/bin/env python3
"""Test-only AWS emulator launcher: moto server 5.2.5 + gap fillers (API Gateway v2, Lambda versions,
ACM / Route 53 / custom domains, CloudWatch Logs) + call recorder.

THIS FILE IS TEST INFRASTRUCTURE, NOT PART OF wsconn.

Everything patched in below FILLS EMULATOR GAPS: moto 5.2.5 lacks these
calls (or implements them in ways real AWS does not behave), so without the
patches the real wsconn binary could not be exercised end to end against moto.
The patches only imitate documented / observed AWS behaviour on the wire
formats the Rust SDKs speak (REST-JSON: apigatewayv2, lambda; JSON 1.1: acm,
logs; REST-XML: route53).  Nothing here is shipped with, or imported by, wsconn.

Usage:
    python tests/emulator/launcher.py --port PORT [--host 127.0.0.1] [--verbose]
        [--latency-ms MS] [--realism] [--table-creating-s S] [--role-propagation-s S]
        [--function-pending-s S] [--function-update-s S] [--certificate-record-s S]
        [--certificate-release-s S] [--dns-change-s S] [--acm-validation-wait-s S] [--strict]
        [--seed N] [--throttle-rate F] [--error-rate F] [--chaos-exclude Op1,Op2]
        [--not-aws JSON]

Runs in the foreground until SIGTERM/SIGINT (then exits 0).  Nothing printed
is meaningful; the client detects readiness by polling
    GET http://HOST:PORT/_wsconn/health   -> 200 "ok"
Environment: MOTO_IAM_LOAD_MANAGED_POLICIES defaults to "true" here (AWS
managed policies such as AWSLambdaBasicExecutionRole exist, as in real IAM).
Request logging is off by default so that a parent process which pipes but
never drains stdout/stderr cannot wedge the server; --verbose turns it on.

Extra endpoints (everything else is moto):
    GET  /_wsconn/health        -> 200 "ok"
    GET  /_wsconn/calls         -> 200 JSON array of recorded calls, in arrival order:
                                   {"service", "operation", "method", "path", "mutating",
                                    "start", "end" (time.monotonic() seconds; end = when
                                    the response was handed back), "status" (HTTP status
                                    sent), and for injected errors "fault" (the code, or
                                    "NotAws" for a raw answer) and "fault_kind" (queued |
                                    lost | throttle | error | realism | strict | emulator |
                                    swallow | raw | not_aws)}
    POST /_wsconn/calls/reset   -> 200, clears the recording
    GET  /_wsconn/stats         -> 200 {"calls": N, "mutating": M, "levels": L, "faults": F};
                                   L = sequential round-trip levels: the longest chain of
                                   calls each of which started after the previous ended
    POST /_wsconn/faults        -> 200, queues injected failures; body is a JSON list of
                                   {"operation", "code", "message", "status", "count", "lost"}:
                                   the next `count` (default 1) calls of `operation` get that
                                   error (status default 400) instead of reaching moto.  With
                                   "lost": true the call IS forwarded to moto and takes
                                   effect, and the client gets the error instead of moto's
                                   answer (a lost response; status default 500).  With
                                   "swallow": true the client gets 200 with a "{}" body and
                                   moto never sees the call (a write that does not stick;
                                   for JSON-protocol operations such as PutRetentionPolicy).
                                   With "raw": {"status", "content_type", "body", "headers"}
                                   (all optional; default an HTML 404 page, text/html) the
                                   client gets that response, which is NOT an AWS protocol
                                   answer (a proxy's page, a wrong --endpoint-url); with
                                   "lost": true as well, moto does the call first.  A
                                   malformed list answers 400 and queues nothing.
    POST /_wsconn/faults/reset  -> 200, drops every queued fault
    GET  /_wsconn/lambda-code?function=NAME[&qualifier=V][&region=R]
                                -> 200, the deployment package (zip bytes) the function or
                                   version holds; 404 when there is none
    GET  /_wsconn/config        -> 200, the settings below
    POST /_wsconn/config        -> 200 + merged settings; body: a JSON object of settings
                                   (merged into the current ones; 400 on unknown keys or
                                   bad values).  The same settings are command-line flags.
    POST /_wsconn/reset         -> 200, clears calls, queued faults and the realism clocks,
                                   reseeds the fault generator; keeps the settings

Settings (all off by default):
    latency_ms      every AWS call sleeps this long in its request thread before it is
                    processed (a network round trip); the server is threaded, so
                    parallel calls overlap their waits.
    acm_validation_wait_s (MOTO_ACM_VALIDATION_WAIT, else 60)
                    in every mode: seconds from the moment an ACM certificate's
                    validation CNAMEs exist (see the ACM gap fillers) to ISSUED.  moto
                    reads it at each certificate check, so a new value counts from the
                    next call on (set 0 to issue at once, 60 to keep it pending).
    realism         AWS's clocks (shared/aws-notes.md), imitated in the middleware:
      table_creating_s (6)    after CreateTable the table is CREATING: CreateTable and
                              DescribeTable show TableStatus CREATING; UpdateTable,
                              UpdateTimeToLive, DeleteTable, Tag/UntagResource answer
                              ResourceInUseException "Attempt to change a resource which is
                              still in use: Table is being created: NAME"; item calls
                              answer ResourceNotFoundException.
      role_propagation_s (6)  after CreateRole, CreateFunction / UpdateFunctionConfiguration
                              naming that role answer 400 InvalidParameterValueException
                              "The role defined for the function cannot be assumed by Lambda."
      function_pending_s (2)  a new function is Pending (StateReasonCode Creating);
                              UpdateFunctionCode / UpdateFunctionConfiguration / Invoke
                              answer 409 ResourceConflictException "... currently in the
                              following state: Pending".
      function_update_s (1)   after an update, LastUpdateStatus is InProgress and another
                              update answers 409 ResourceConflictException "... An update is
                              in progress for resource: ARN"; so does PublishVersion (it needs
                              LastUpdateStatus Successful).  During the update the function
                              shows the RevisionId the update returned; when it completes the
                              RevisionId changes again (aws/aws-sdk issue 377), so a
                              RevisionId taken from the update's answer is stale (412).
        function_pending_s also covers versions: a version PublishVersion creates is
                              State Pending (StateReasonCode Creating) in PublishVersion's
                              answer, GetFunction / GetFunctionConfiguration with its
                              qualifier and ListVersionsByFunction, and Invoke of it answers
                              409 "... currently in the following state: Pending".
      certificate_record_s (2) after RequestCertificate, DescribeCertificate's
                              DomainValidationOptions have no ResourceRecord yet.
      certificate_release_s (2) after DeleteDomainName (or an UpdateDomainName that
                              replaces its certificate), DeleteCertificate of the released
                              certificate still answers 400 ResourceInUseException
                              "Certificate ARN in account ACCOUNT is in use." (aws-cdk
                              issue 36265).
      dns_change_s (2)        a Route 53 change stays PENDING in GetChange, then INSYNC.
      CloudWatch Logs: a FilterLogEvents search's first page (no nextToken) is empty, with
      a nextToken that starts it again ("A returned page might only be partially full, or
      even empty", FilterLogEvents reference).
      API Gateway v2: a mutating call on /v2/apis/{id}/... (or DeleteApi / UpdateApi /
      tagging of that API) arriving while another one on the same API is being processed
      (latency wait included) answers 409 ConflictException "Unable to complete operation
      due to concurrent modification. Please try again later."
      API Gateway v1 account: role_propagation_s also covers UpdateAccount naming (op
      replace, path /cloudwatchRoleArn) a role created that recently: 400
      BadRequestException "The role ARN does not have required permissions set to API
      Gateway" (API Gateway assumes the role when it is set).
    strict          refusals real AWS makes and moto 5.2.5 does not: CreateRoute with a
                    route key the API already has (409 ConflictException), AddPermission
                    with an existing StatementId (409 ResourceConflictException), CreateRole
                    whose name differs from an existing one only in case (409
                    EntityAlreadyExists), UpdateTimeToLive to the current state
                    (ValidationException "TimeToLive is already enabled/disabled") or to
                    another attribute while enabled, and Describe/UpdateTimeToLive of a
                    missing table as ResourceNotFoundException (moto: "ResourceNotFound").
                    In AWS's order, before those:
      * request size: Lambda CreateFunction / UpdateFunctionCode bodies over 69905067
        bytes (a 50 MiB zip, base64) -> 413 RequestEntityTooLargeException "Request must
        be smaller than 69905067 bytes for the <Op> operation".
      * published constraints, read from botocore's model of the operation (length,
        value range, pattern, enum; every IAM, STS, Lambda, DynamoDB, Logs and API
        Gateway v1/v2 operation; API Gateway v2 lengths from its shape names such as
        StringWithLengthBetween1And128), plus limits the models do not carry: Lambda
        function names <= 64, MemorySize <= 10240 and Timeout <= 900 without a capacity
        provider, DynamoDB table names 3-255 of [a-zA-Z0-9_.-], Logs retention in
        {1, 3, 5, ..., 3653}.  One error lists every violation, as AWS's front end does:
        "2 validation errors detected: Value 'a,b' at 'tags.1.member.value' failed to
        satisfy constraint: Member must satisfy regular expression pattern: [...]; ..."
        with the service's code: IAM/STS 400 ValidationError, Lambda/DynamoDB 400
        ValidationException, Logs 400 InvalidParameterException, API Gateway 400
        BadRequestException.
      * Lambda: environment variables with a reserved key (_HANDLER, _X_AMZN_TRACE_ID,
        AWS_REGION, AWS_DEFAULT_REGION, AWS_EXECUTION_ENV, AWS_LAMBDA_FUNCTION_NAME /
        _MEMORY_SIZE / _VERSION, AWS_LAMBDA_INITIALIZATION_TYPE, AWS_LAMBDA_LOG_GROUP_NAME
        / _LOG_STREAM_NAME, AWS_ACCESS_KEY, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
        AWS_SESSION_TOKEN, AWS_LAMBDA_RUNTIME_API, LAMBDA_TASK_ROOT, LAMBDA_RUNTIME_DIR)
        -> 400 InvalidParameterValueException "Lambda was unable to configure your
        environment variables because the environment variables you have provided
        contains reserved keys that are currently not supported for modification.
        Reserved keys used in this request: K1, K2"; over 4096 bytes as compact JSON ->
        "... exceeded the 4KB limit. String measured: {...}"; a zip whose files add up
        to more than 262144000 bytes -> "Unzipped size must be smaller than 262144000
        bytes".
      * API Gateway v2: DeleteAuthorizer while a route uses it -> 409 ConflictException
        "Cannot delete authorizer '<name>', is referenced in route: <route key>";
        CreateRoute / UpdateRoute with authorizationType CUSTOM and an unknown
        authorizerId -> 404 NotFoundException "Invalid Authorizer identifier specified
        <id>" (none at all -> 400 BadRequestException); on a WebSocket API,
        Create/UpdateAuthorizer of a type other than REQUEST, or with an identitySource
        not of the forms route.request.header.X, route.request.querystring.X,
        stageVariables.X, context.X -> 400 BadRequestException.
        CreateStage / UpdateStage turning on logging (accessLogSettings, a loggingLevel
        ERROR or INFO, dataTraceEnabled true) while the account has no cloudwatchRoleArn
        -> 400 BadRequestException "CloudWatch Logs role ARN must be set in account
        settings to enable logging"; an accessLogSettings.destinationArn that is not a
        log group ARN (without ":*"), a format without $context.requestId or
        $context.extendedRequestId, or with a newline before its end ("Access Log format
        must be single line, new line character is allowed only at end of the
        format"), and throttling limits outside 0..the account's (5000 burst, 10000
        rate) -> 400 BadRequestException; routeSettings for a route key the API does not
        have -> 404 NotFoundException "Unable to find Route by key K within the provided
        RouteSettings".
      * API Gateway v1: UpdateAccount setting a cloudwatchRoleArn that names no role, or
        a role that does not trust apigateway.amazonaws.com -> 400 BadRequestException
        "The role ARN does not have required permissions set to API Gateway".
      * Lambda: AddPermission with a Qualifier (or a qualified name / ARN) of $LATEST ->
        400 InvalidParameterValueException "We currently do not support adding policies
        for $LATEST."; the duplicate-StatementId refusal looks at the policy of the
        version the call names (each version has its own).
      * Custom domains (API Gateway v2): Create/UpdateDomainName with a certificate that
        is not ISSUED, not in ACM, or not in the API's region (us-east-1 for EDGE) -> 400
        BadRequestException; CreateApiMapping / UpdateApiMapping of a WebSocket API onto
        a domain whose configuration is not REGIONAL + TLS_1_2, UpdateDomainName making a
        domain with a WebSocket mapping so, and a mapping that would put a WebSocket API
        and a REST or HTTP API on one domain -> 400 BadRequestException; an API mapping
        key over 300 characters -> 400 BadRequestException (a validation error).
      * Route 53: an alias record whose target looks like an API Gateway regional domain
        (d-*.execute-api.REGION.amazonaws.com) must name one that CreateDomainName made,
        with the hosted zone id it returned -> otherwise 400 InvalidChangeBatch "[Tried to
        create an alias that targets X., type A in zone Z, but that target was not found]"
        / "... but the alias target name does not lie within the target zone]".
      * CloudWatch Logs: a PutLogEvents batch whose valid events span more than 24 hours
        -> 400 InvalidParameterException "The batch of log events in a single PutLogEvents
        request cannot span more than 24 hours." (moto already refuses a batch out of
        chronological order and rejects too old / too new events.)
      * The published constraints cover ACM (all members) and Route 53 (URI and query
        members) too: ACM 400 ValidationException, Route 53 400 InvalidInput.
                    Wordings not seen in a public source are marked so in the code.
    seed, throttle_rate, error_rate, chaos_exclude ([]):
                    seeded random faults decided before the call takes effect: the
                    service's throttling error (API Gateway / Lambda 429
                    TooManyRequestsException, DynamoDB / Logs / ACM 400
                    ThrottlingException, IAM / STS / Route 53 400 Throttling "Rate
                    exceeded") or 500 InternalFailure / 503 ServiceUnavailable.  Operations in chaos_exclude are never faulted.
                    Every operation is faulted by default, sts:GetCallerIdentity
                    included (until issue 14 the default was ["GetCallerIdentity"], which
                    hid a credential check that gave up under throttling).
    not_aws (null)  {"status", "content_type", "body", "headers"} (each optional; {} = an
                    HTML 404 page): EVERY AWS call gets this response, which is not an
                    AWS protocol answer: the endpoint is not AWS at all.  The /_wsconn/*
                    endpoints keep working; set it back to null to end it.  Recorded as
                    "fault": "NotAws", "fault_kind": "not_aws".

Injected errors use each protocol's wire format: REST-JSON (apigateway, lambda:
x-amzn-ErrorType header + {"message"}), JSON 1.0/1.1 (dynamodb, logs, acm: {"__type",
"message"}), XML (iam, sts, route53: <ErrorResponse><Error><Type><Code><Message>).

The recorder names acm calls from X-Amz-Target (CertificateManager.X) and route53 calls
from botocore's REST-XML model (method + requestUri); FilterLogEvents and StartLiveTail
are recorded as reads (mutating false; they were counted as writes).

moto processes one call at a time (its backends are not thread-safe); latency
waits run outside that lock, so calls still overlap in time.

Gap fillers (API Gateway v2, all on the real AWS URIs / camelCase JSON keys):
    * CreateDeployment / GetDeployments / GetDeployment / DeleteDeployment (absent in moto)
    * UpdateStage (absent in moto: HTTP 500)
    * GetRouteResponses (absent in moto: HTTP 500)
    * Stage.deploymentId is stored and returned (moto drops it)
    * CreateStage: ConflictException on duplicate name, NotFound on unknown deploymentId
    * Tagging of stage ARNs (moto: no URL route -> 404) and of unknown APIs (NotFound)
    * NotFoundException instead of HTTP 500 / silent success for missing
      children in Update/Delete calls (integration, integration response,
      route, route response, stage, api, authorizer)
    * Authorizers: GetAuthorizers (absent in moto: HTTP 500); CreateAuthorizer answers
      201 (moto: 200); ids are 6 lowercase alphanumerics like real ones (moto: 8
      letters); no null members in authorizer JSON; DeleteApi drops them with the API
    * Routes: authorizationType is "NONE" when not given (moto: null); UpdateRoute with
      authorizationType NONE (or AWS_IAM) drops authorizerId (moto kept it)
    * Stages: a WebSocket stage's defaultRouteSettings show dataTraceEnabled false,
      detailedMetricsEnabled false, loggingLevel OFF unless set (moto: only what was
      sent); UpdateStage merges defaultRouteSettings / routeSettings member by member,
      replaces accessLogSettings whole ({} removes it), and removes a stage variable
      sent as ""; DeleteAccessLogSettings (absent in moto: HTTP 404)

Gap fillers (API Gateway v1 account, PATCH /account): GetAccount leaves out
cloudwatchRoleArn until it is set (moto: null); UpdateAccount op=replace
path=/cloudwatchRoleArn with an empty value (or op=remove) clears it.

Gap fillers (Lambda versions, for releases; every mode):
    * Every function configuration carries a RevisionId (moto: none), new after each
      UpdateFunctionCode / UpdateFunctionConfiguration, AddPermission / RemovePermission
      (of that version) and, for $LATEST, PublishVersion; UpdateFunctionCode /
      UpdateFunctionConfiguration / PublishVersion / AddPermission / RemovePermission with
      a stale RevisionId -> 412 PreconditionFailedException "The Revision Id provided does
      not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the
      latest Revision Id" (GetPolicy API, for the permission calls).  GetPolicy's
      RevisionId is the function version's.
    * PublishVersion with a CodeSha256 that is not $LATEST's -> 400
      InvalidParameterValueException "CodeSHA256 (X) is different from current CodeSHA256
      in $LATEST (Y). Please try again with the CodeSHA256 in $LATEST." (a real answer;
      the RevisionId guard comes first); nothing is published.
    * PublishVersion when neither code nor configuration differs from what the last
      version was published from returns that version (moto published a new one after
      any UpdateFunctionConfiguration, even one that set the same values); version
      numbers are never reused (moto made a second "4" after a version was deleted).
    * A version's resource policy is its own (moto's copy.copy shared $LATEST's policy
      with every version): AddPermission / GetPolicy / RemovePermission with a Qualifier,
      or a qualified name / ARN, act on that version's policy (statements' Resource is
      ...:function:NAME:VERSION), without one on the unqualified function's;
      RemovePermission honours Qualifier and RevisionId (moto ignored the first and failed
      any second); a missing statement -> 404 "Statement X is not found in resource
      policy."; AddPermission answers 201 (moto: 200).  A version also keeps its own code
      record and environment.
    * DeleteFunction with Qualifier $LATEST -> 400 InvalidParameterValueException "$LATEST
      version cannot be deleted without deleting the function." (moto left a function
      without $LATEST).
    * ListVersionsByFunction finds the function by ARN (moto: empty list) and answers
      ResourceNotFoundException for a missing one, pages with MaxItems (at most 50) and
      Marker / NextMarker, $LATEST first, then the versions in order.
    * UpdateFunctionCode with Publish returns the new version (moto updated the version
      again after publishing it).
    Not filled: aliases keep moto's behaviour (a qualifier naming an alias acts on the
    version it points to, not on an alias policy of its own).

Gap fillers (custom domain names; every mode):
    * ACM: a DNS-validated certificate's validation CNAME is the same for a name in every
      certificate of the account and for "*.name" (moto: one constant value for every
      name); it is ISSUED only acm_validation_wait_s after every name's CNAME exists in
      the emulated public hosted zone that covers the name (moto: after the wait, CNAME or
      not); a name no emulated zone covers counts as validated elsewhere.  IssuedAt only
      once issued; DomainValidationOptions in request order (DomainName first).
      DeleteCertificate of a certificate a domain name uses -> 400 ResourceInUseException
      "Certificate ARN in account ACCOUNT is in use." (InUseBy lists the domain name's
      ARN).  ListCertificates pages (MaxItems / NextToken) and gives
      SubjectAlternativeNameSummaries.  An IdempotencyToken whose certificate was deleted
      requests a new one (moto: HTTP 500); within an hour the same token and tags return
      the same certificate (moto's rule, kept).
    * Route 53: ChangeResourceRecordSets applies a batch atomically or not at all, checks
      it against the zone (not moto's journal), and answers InvalidChangeBatch "[m1, m2]"
      with Route 53's messages: "Tried to create resource record set [name='N.',
      type='T'] but it already exists", "Tried to delete resource record set [...] but it
      was not found" / "... but the values provided do not match the current values",
      "RRSet with DNS name N. is not permitted in zone Z.", a CNAME beside other records
      or at the apex.  UPSERT replaces.  Names are kept lower-case with a trailing dot,
      "*" as \\052, alias targets with a trailing dot.  Each change has its own id and is
      PENDING when submitted; GetChange answers INSYNC (PENDING for dns_change_s in
      realism mode) and NoSuchChange for an unknown id.  ListHostedZonesByName lists the
      zones from DNSName (and HostedZoneId) on in AWS's order (labels reversed), not only
      an exact match, and pages (MaxItems, IsTruncated, NextDNSName, NextHostedZoneId).
      A change wakes pending ACM certificates whose CNAME it wrote.
    * API Gateway v2 CreateDomainName returns, per configuration, ApiGatewayDomainName
      (d-xxxxxxxxxx.execute-api.REGION.amazonaws.com; for EDGE dxxxxxxxxxxxxx.cloudfront.net),
      HostedZoneId (the region's API Gateway zone, e.g. us-east-1 Z1UJRXOUMOOFQ8; EDGE:
      CloudFront's Z2FDTNDATAQYW2), DomainNameStatus AVAILABLE, EndpointType REGIONAL and
      SecurityPolicy TLS_1_2 unless given, and answers 201; the domain marks its
      certificate in use.  UpdateDomainName (absent in moto) replaces the configurations,
      keeping the endpoint's target, and moves the certificate's use.  DeleteDomainName
      takes its mappings along (moto: HTTP 500), answers 204.  GetDomainName of a missing
      domain -> 404 "Invalid domain name identifier specified".  API mappings: ids of 6
      lowercase alphanumerics; a key already mapped on the domain -> 409
      ConflictException; a stage the API lacks -> 404 NotFoundException "Invalid stage
      identifier specified"; REST APIs (v1) can be mapped; UpdateApiMapping (absent in
      moto); GetApiMappings / GetApiMapping / DeleteApiMapping of a missing domain -> 404.
      Tags of domain name ARNs live on the domain (moto: no URL route, 404).
    Not filled: how long a real certificate takes (minutes), CNAME resolution outside
    the emulator, private hosted zones' VPC checks.

Gap fillers (CloudWatch Logs, for `wsconn logs`; every mode):
    * FilterLogEvents always interleaves the streams (moto: one stream after another
      unless `interleaved`), in the order timestamp, ingestion time, event id; ends a page
      at `limit` (default and maximum 10,000) events or 1 MB (message bytes + 26 per
      event) with an opaque nextToken that continues after the last event returned (new
      events keep their place); startFromHead false lists newest first;
      logStreamNamePrefix filters (moto ignored it); logGroupIdentifier takes a name or
      an ARN (moto picked whichever group it saw last).  filterPattern: terms (all of
      them), "quoted phrases", ?OR terms, -excluded terms, and JSON patterns { $.a.b = "x"
      }, != < > <= >=, * wildcards, IS TRUE/FALSE/NULL, (NOT) EXISTS, && || and
      parentheses (moto: plain terms only; anything else matched every event).  eventIds
      are unique (moto's, kept).
    * CreateLogStream of an existing stream says "The specified log stream already
      exists" (moto: "... log group ...").
    Not filled: StartLiveTail (moto answers one event stream with every stored event and
    closes it; AWS streams only new events, an update a second, for up to 3 hours),
    space-delimited ([a, b]) and %regex% filter patterns (they match every event), the
    delay before new events can be searched.

Side effects AWS has and moto does not (in every mode):
    * Execution logs: a CreateStage / UpdateStage that leaves the stage with a
      loggingLevel ERROR or INFO (default or per route), while the account has a
      cloudwatchRoleArn, creates the CloudWatch Logs group
      "API-Gateway-Execution-Logs_<api-id>/<stage>" (no tags, no retention) if it is
      missing.  API Gateway itself makes it when it first writes an execution log; the
      emulator runs no traffic through stages, so it makes it at the stage call, so that
      a destroy that must remove it can be tested.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import copy as copy_module
import gzip
import hashlib
import io
import json
import logging
import os
import random as random_module
import re
import signal
import string
import sys
import threading
import time
import uuid
import zipfile
import zlib
from datetime import datetime
from http import HTTPStatus
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, quote, unquote, urlsplit
from xml.sax.saxutils import escape as xml_escape

# ---------------------------------------------------------------------------
# Part 1: API Gateway v2 gap fillers (monkeypatches on moto 5.2.5)
# ---------------------------------------------------------------------------

import moto.apigateway.urls as apigw_v1_urls
from moto.apigateway import models as v1models
import moto.apigatewayv2.urls as apigw_v2_urls
from moto.apigatewayv2 import models as v2models
from moto.apigatewayv2.exceptions import APIGatewayV2Error, BadRequestException
from moto.apigatewayv2.responses import ApiGatewayV2Response
from moto.core.utils import iso_8601_datetime_without_milliseconds
from moto.moto_api._internal import mock_random as random

Api = v2models.Api
Stage = v2models.Stage
Route = v2models.Route
Integration = v2models.Integration
Authorizer = v2models.Authorizer
Backend = v2models.ApiGatewayV2Backend
Account = v1models.Account


def _short_id(length: int) -> str:
    """A short lowercase alphanumeric id, as API Gateway gives deployments and authorizers."""
    alphabet = string.ascii_lowercase + string.digits
    return "".join(random.choice(alphabet) for _ in range(length))


class DeploymentNotFound(APIGatewayV2Error):
    code = 404

    def __init__(self, deployment_id: str):
        super().__init__(
            "NotFoundException",
            f"Invalid Deployment identifier specified {deployment_id}",
        )


class StageAlreadyExists(APIGatewayV2Error):
    code = 409

    def __init__(self, stage_name: str):
        super().__init__("ConflictException", f"Stage already exists: {stage_name}")


class Deployment:
    """An API Gateway v2 deployment. moto 5.2.5 has no such model at all."""

    def __init__(self, description: str | None, auto_deployed: bool = False):
        # Real ids are short lowercase alphanumerics (e.g. "a1b2c3").
        self.id = _short_id(6)
        self.description = description
        self.auto_deployed = auto_deployed
        self.created = datetime.now()

    def to_json(self) -> dict[str, Any]:
        dct: dict[str, Any] = {
            "deploymentId": self.id,
            "createdDate": iso_8601_datetime_without_milliseconds(self.created),
            "deploymentStatus": "DEPLOYED",
            "autoDeployed": self.auto_deployed,
        }
        if self.description is not None:
            dct["description"] = self.description
        return dct


# --- Api: per-API deployment store ------------------------------------------
# Kept on the Api object so that DeleteApi (which drops the Api) drops them too.

_orig_api_init = Api.__init__
_orig_api_clear = Api.clear


def _api_init(self: Any, *args: Any, **kwargs: Any) -> None:
    _orig_api_init(self, *args, **kwargs)
    self.deployments: dict[str, Deployment] = {}


def _api_clear(self: Any) -> None:
    # ReimportApi clears stages etc.; deployments go with them.
    _orig_api_clear(self)
    self.deployments.clear()


def _api_get_deployment(self: Any, deployment_id: str) -> Deployment:
    if deployment_id not in self.deployments:
        raise DeploymentNotFound(deployment_id)
    return self.deployments[deployment_id]


def _api_create_deployment(
    self: Any, description: str | None, stage_name: str | None
) -> Deployment:
    # Resolve the stage first so an unknown stage creates nothing.
    stage = self.get_stage(stage_name) if stage_name else None
    deployment = Deployment(description)
    self.deployments[deployment.id] = deployment
    if stage is not None:
        # Real AWS points the named stage at the new deployment.
        stage.deployment_id = deployment.id
        stage.updated = datetime.now()
    return deployment


def _api_delete_deployment(self: Any, deployment_id: str) -> None:
    self.get_deployment(deployment_id)
    if any(s.deployment_id == deployment_id for s in self.stages.values()):
        # Verbatim AWS behaviour: a deployment in use by a stage is protected.
        raise BadRequestException(
            "Active stages pointing to this deployment must be moved or deleted"
        )
    del self.deployments[deployment_id]


# --- Stage: keep deploymentId (moto drops it), support UpdateStage ------------

_orig_stage_init = Stage.__init__
_orig_stage_to_json = Stage.to_json


# What GetStage shows for a WebSocket stage's DefaultRouteSettings when they were not
# set; settings that were given are merged over it (moto kept only what was given).
_WS_ROUTE_SETTINGS_DEFAULTS = {"dataTraceEnabled": False, "detailedMetricsEnabled": False,
                               "loggingLevel": "OFF"}


def _stage_init(self: Any, api: Any, config: dict[str, Any]) -> None:
    _orig_stage_init(self, api, config)
    self.deployment_id = config.get("deploymentId")
    if self.tags is None:
        self.tags = {}
    if api.protocol_type == "WEBSOCKET":
        self.default_route_settings = {**_WS_ROUTE_SETTINGS_DEFAULTS,
                                       **(config.get("defaultRouteSettings") or {})}
    if not self.access_log_settings:  # {} = none
        self.access_log_settings = None


def _stage_to_json(self: Any) -> dict[str, Any]:
    dct = _orig_stage_to_json(self)
    if self.deployment_id:
        dct["deploymentId"] = self.deployment_id
    return dct


def _api_create_stage(self: Any, config: dict[str, Any]) -> Any:
    # moto silently overwrote an existing stage and accepted dangling
    # deployment ids; AWS answers ConflictException / NotFoundException.
    name = config.get("stageName")
    if name in self.stages:
        raise StageAlreadyExists(name)
    if config.get("deploymentId"):
        self.get_deployment(config["deploymentId"])
    stage = Stage(api=self, config=config)
    self.stages[stage.name] = stage
    return stage


def _api_update_stage(self: Any, stage_name: str, params: dict[str, Any]) -> Any:
    stage = self.get_stage(stage_name)
    auto_deploy = params.get("autoDeploy", stage.auto_deploy)
    deployment_id = params.get("deploymentId")
    if deployment_id:
        if auto_deploy:
            # AWS rejects an explicit deployment on an auto-deploy stage
            # (BadRequestException; the message text here is approximate).
            raise BadRequestException(
                "DeploymentId cannot be specified for a stage with AutoDeploy enabled"
            )
        self.get_deployment(deployment_id)
        stage.deployment_id = deployment_id
    # PATCH semantics, as AWS applies UpdateStage:
    # - scalars that are sent replace the old value; absent ones are kept;
    # - DefaultRouteSettings / RouteSettings are merged member by member (sending only
    #   LoggingLevel keeps the throttling limits: pulumi-aws issue 2363 saw that
    #   dropping the settings from a request does not remove throttling);
    # - AccessLogSettings is replaced as a whole, and an empty object removes it (how
    #   terraform-provider-aws removes it: UpdateStage with AccessLogSettings {});
    #   DeleteAccessLogSettings removes it too (botocore: "To disable access logging
    #   for a Stage, delete its AccessLogSettings");
    # - a stage variable sent with the value "" is removed (terraform-provider-aws's
    #   stage.go: "Variables are removed by setting the associated value to \"\"").
    if "autoDeploy" in params:
        stage.auto_deploy = params["autoDeploy"]
    if "description" in params:
        stage.description = params["description"]
    if "clientCertificateId" in params:
        stage.client_certificate_id = params["clientCertificateId"]
    if "accessLogSettings" in params:
        stage.access_log_settings = params["accessLogSettings"] or None
    if params.get("defaultRouteSettings"):
        merged = dict(stage.default_route_settings or {})
        merged.update(params["defaultRouteSettings"])
        stage.default_route_settings = merged
    if params.get("routeSettings"):
        routes = dict(stage.route_settings or {})
        for key, value in params["routeSettings"].items():
            routes[key] = {**routes.get(key, {}), **(value or {})}
        stage.route_settings = routes
    if params.get("stageVariables"):
        variables = {**(stage.stage_variables or {}), **params["stageVariables"]}
        stage.stage_variables = {k: v for k, v in variables.items() if v != ""}
    stage.updated = datetime.now()
    return stage


def _api_delete_stage(self: Any, stage_name: str) -> None:
    self.get_stage(stage_name)  # moto deleted silently; AWS says NotFound
    del self.stages[stage_name]


# --- Missing-child handling: moto raised KeyError (HTTP 500) or ignored it ----

_orig_api_update_integration = Api.update_integration


def _api_update_integration(self: Any, integration_id: str, *args: Any, **kw: Any) -> Any:
    self.get_integration(integration_id)
    return _orig_api_update_integration(self, integration_id, *args, **kw)


def _api_delete_integration(self: Any, integration_id: str) -> None:
    self.get_integration(integration_id)
    del self.integrations[integration_id]


def _api_delete_route(self: Any, route_id: str) -> None:
    self.get_route(route_id)
    del self.routes[route_id]


_orig_integration_update_response = Integration.update_response


def _integration_update_response(
    self: Any, integration_response_id: str, *args: Any, **kw: Any
) -> Any:
    self.get_response(integration_response_id)
    return _orig_integration_update_response(self, integration_response_id, *args, **kw)


def _integration_delete_response(self: Any, integration_response_id: str) -> None:
    self.get_response(integration_response_id)
    del self.responses[integration_response_id]


def _route_delete_route_response(self: Any, route_response_id: str) -> None:
    self.get_route_response(route_response_id)
    del self.route_responses[route_response_id]


# --- Authorizers: real-looking ids, no nulls, NotFound for missing ones --------
# moto 5.2.5 stores authorizers (CreateAuthorizer / GetAuthorizer / UpdateAuthorizer /
# DeleteAuthorizer) but has no GetAuthorizers, answers 200 to CreateAuthorizer (the
# model says 201), prints every unset member as null, raises KeyError (HTTP 500) when
# UpdateAuthorizer names a missing authorizer and deletes a missing one silently.

_orig_authorizer_init = Authorizer.__init__


def _authorizer_init(self: Any, *args: Any, **kwargs: Any) -> None:
    _orig_authorizer_init(self, *args, **kwargs)
    self.id = _short_id(6)  # real authorizer ids look like "266m9t"


def _authorizer_to_json(self: Any) -> dict[str, Any]:
    dct = {
        "authorizerId": self.id,
        "authorizerCredentialsArn": self.auth_creds_arn,
        "authorizerPayloadFormatVersion": self.auth_payload_format_version,
        "authorizerResultTtlInSeconds": self.auth_result_ttl,
        "authorizerType": self.authorizer_type,
        "authorizerUri": self.authorizer_uri,
        "enableSimpleResponses": self.enable_simple_response,
        "identitySource": self.identity_source,
        "identityValidationExpression": self.identity_validation_expr,
        "jwtConfiguration": self.jwt_config,
        "name": self.name,
    }
    return {k: v for k, v in dct.items() if v is not None}


_orig_api_update_authorizer = Api.update_authorizer


def _api_update_authorizer(self: Any, authorizer_id: str, *args: Any, **kw: Any) -> Any:
    self.get_authorizer(authorizer_id)
    return _orig_api_update_authorizer(self, authorizer_id, *args, **kw)


def _api_delete_authorizer(self: Any, authorizer_id: str) -> None:
    self.get_authorizer(authorizer_id)
    del self.authorizers[authorizer_id]


# --- Routes: AuthorizationType defaults to NONE; NONE / AWS_IAM drop the authorizer --
# AWS answers "authorizationType": "NONE" for a route created without one (moto: null).
# UpdateRoute with AuthorizationType NONE detaches the authorizer (cloudformation-
# coverage-roadmap issue 2184: removing an authorizer takes AuthorizationType NONE);
# moto kept the old authorizerId.

_orig_route_init = Route.__init__
_orig_route_update = Route.update


def _route_init(self: Any, *args: Any, **kwargs: Any) -> None:
    _orig_route_init(self, *args, **kwargs)
    if not self.authorization_type:
        self.authorization_type = "NONE"


def _route_update(self: Any, *args: Any, **kwargs: Any) -> None:
    _orig_route_update(self, *args, **kwargs)
    if kwargs.get("authorization_type") in ("NONE", "AWS_IAM"):
        self.authorizer_id = None


# --- API Gateway (v1) account: the CloudWatch role ------------------------------
# moto 5.2.5 has GetAccount / UpdateAccount (PATCH /account, patchOperations).  Filled
# here: no null members in the answer (AWS leaves out cloudwatchRoleArn until it is
# set), and replace with an empty value (or remove) clears the role.

_orig_account_apply = Account.apply_patch_operations


def _account_apply(self: Any, patch_operations: list[dict[str, Any]]) -> Any:
    rest = []
    for op in patch_operations or []:
        if op.get("path") == "/cloudwatchRoleArn":
            if op.get("op") == "remove" or not op.get("value"):
                self.cloudwatch_role_arn = None
            else:
                self.cloudwatch_role_arn = op["value"]
        else:
            rest.append(op)
    return _orig_account_apply(self, rest)


def _account_to_json(self: Any) -> dict[str, Any]:
    dct = {
        "cloudwatchRoleArn": self.cloudwatch_role_arn,
        "throttleSettings": self.throttle_settings,
        "features": self.features,
        "apiKeyVersion": self.api_key_version,
    }
    return {k: v for k, v in dct.items() if v is not None}


# --- Backend: delete_api strictness, deployments, stage-aware tagging ---------

_orig_backend_delete_api = Backend.delete_api
_orig_backend_get_tags = Backend.get_tags
_orig_backend_tag_resource = Backend.tag_resource
_orig_backend_untag_resource = Backend.untag_resource

_API_ARN = re.compile(r"^arn:[^:]+:apigateway:[^:]*::/apis/([^/]+)$")
_STAGE_ARN = re.compile(r"^arn:[^:]+:apigateway:[^:]*::/apis/([^/]+)/stages/([^/]+)$")
_DOMAIN_ARN = re.compile(r"^arn:[^:]+:apigateway:[^:]*::/domainnames/([^/]+)$")


def _backend_delete_api(self: Any, api_id: str) -> None:
    api = self.get_api(api_id)  # moto deleted silently; AWS says NotFound
    _orig_backend_delete_api(self, api_id)
    # moto kept the API's tags in the shared tagger forever.
    self.tagger.delete_all_tags_for_resource(api.arn)


def _tag_target(self: Any, arn: str) -> Any:
    """Return the Stage for a stage ARN, the DomainName for a domain name ARN (NotFound
    if missing), else None.

    Stage tags live on Stage.tags, which CreateStage fills and GetStage
    returns, and a domain name's on DomainName.tags (CreateDomainName / GetDomainName),
    so tag calls on those ARNs operate on that dict; every other ARN
    keeps using moto's shared tagger.
    """
    m = _STAGE_ARN.match(arn)
    if m:
        return self.get_api(m.group(1)).get_stage(m.group(2))
    m = _DOMAIN_ARN.match(arn)
    if m:
        return self.get_domain_name(unquote(m.group(1)))
    return None


def _backend_get_tags(self: Any, resource_id: str) -> dict[str, str]:
    stage = _tag_target(self, resource_id)
    if stage is not None:
        return dict(stage.tags)
    return _orig_backend_get_tags(self, resource_id)


def _backend_tag_resource(self: Any, resource_arn: str, tags: dict[str, str]) -> None:
    stage = _tag_target(self, resource_arn)
    if stage is not None:
        stage.tags.update(tags or {})
        return
    _orig_backend_tag_resource(self, resource_arn, tags)


def _backend_untag_resource(self: Any, resource_arn: str, tag_keys: list[str]) -> None:
    stage = _tag_target(self, resource_arn)
    if stage is not None:
        for key in tag_keys:
            stage.tags.pop(key, None)
        return
    _orig_backend_untag_resource(self, resource_arn, tag_keys)


# moto tags / lists tags of APIs that do not exist (and kept a deleted API's
# tags).  Validate on the wire handlers only: Api.__init__ itself calls
# backend.tag_resource before the Api is registered.
def _validating_tag_handler(orig: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def handler(self: Any) -> Any:
        arn = unquote(self.path.split("/tags/")[1])
        m = _API_ARN.match(arn)
        if m:
            self.apigatewayv2_backend.get_api(m.group(1))
        return orig(self)

    handler.__name__ = orig.__name__
    return handler


# --- Response handlers (method names = snake_case of the botocore operation) --
# moto's BaseResponse.call_action resolves the operation from the botocore
# model (method + requestUri) and calls the method of that snake_case name.

_PATH_IDS = re.compile(
    r"/v2/apis/(?P<api_id>[^/]+)"
    r"(?:/(?:deployments/(?P<deployment_id>[^/]+)"
    r"|stages/(?P<stage_name>[^/]+)(?:/accesslogsettings)?"
    r"|routes/(?P<route_id>[^/]+)(?:/routeresponses)?"
    r"|authorizers(?:/(?P<authorizer_id>[^/]+))?"
    r"|deployments))?/?$"
)


def _path_ids(self: Any) -> dict[str, str]:
    m = _PATH_IDS.search(self.path)
    assert m, f"unexpected path {self.path}"
    return {k: unquote(v) for k, v in m.groupdict().items() if v is not None}


# moto's _transform_response ignores the status element of a handler's
# (status, headers, body) tuple and reads headers["status"] instead (so all of
# moto's own apigatewayv2 handlers answer 200).  Pass it there so the codes
# match the botocore model (201 for Create*, 204 for Delete*).
def _v2_response(status: int, body: Any = None) -> Any:
    if body is None:
        return status, {"status": status}, ""
    return status, {"status": status, "Content-Type": "application/json"}, json.dumps(body)


def _json_body(self: Any) -> dict[str, Any]:
    # The Rust SDK may omit the body entirely when no member is set.
    return json.loads(self.body) if self.body else {}


def create_deployment(self: Any) -> Any:
    ids = _path_ids(self)
    params = _json_body(self)
    api = self.apigatewayv2_backend.get_api(ids["api_id"])
    deployment = api.create_deployment(params.get("description"), params.get("stageName"))
    return _v2_response(201, deployment.to_json())


def get_deployments(self: Any) -> Any:
    api = self.apigatewayv2_backend.get_api(_path_ids(self)["api_id"])
    items = [d.to_json() for d in api.deployments.values()]
    return _v2_response(200, {"items": items})


def get_deployment(self: Any) -> Any:
    ids = _path_ids(self)
    api = self.apigatewayv2_backend.get_api(ids["api_id"])
    return _v2_response(200, api.get_deployment(ids["deployment_id"]).to_json())


def delete_deployment(self: Any) -> Any:
    ids = _path_ids(self)
    api = self.apigatewayv2_backend.get_api(ids["api_id"])
    api.delete_deployment(ids["deployment_id"])
    return _v2_response(204)


def update_stage(self: Any) -> Any:
    ids = _path_ids(self)
    api = self.apigatewayv2_backend.get_api(ids["api_id"])
    stage = api.update_stage(ids["stage_name"], _json_body(self))
    return _v2_response(200, stage.to_json())


def get_route_responses(self: Any) -> Any:
    ids = _path_ids(self)
    api = self.apigatewayv2_backend.get_api(ids["api_id"])
    route = api.get_route(ids["route_id"])
    items = [rr.to_json() for rr in route.route_responses.values()]
    return _v2_response(200, {"items": items})


_orig_create_authorizer = ApiGatewayV2Response.create_authorizer


def create_authorizer(self: Any) -> Any:
    _status, _headers, body = _orig_create_authorizer(self)
    return _v2_response(201, json.loads(body))


def get_authorizers(self: Any) -> Any:
    api = self.apigatewayv2_backend.get_api(_path_ids(self)["api_id"])
    return _v2_response(200, {"items": [a.to_json() for a in api.authorizers.values()]})


def delete_authorizer(self: Any) -> Any:
    ids = _path_ids(self)
    self.apigatewayv2_backend.get_api(ids["api_id"]).delete_authorizer(ids["authorizer_id"])
    return _v2_response(204)


def delete_access_log_settings(self: Any) -> Any:
    ids = _path_ids(self)
    stage = self.apigatewayv2_backend.get_api(ids["api_id"]).get_stage(ids["stage_name"])
    stage.access_log_settings = None
    stage.updated = datetime.now()
    return _v2_response(204)


# --- URL routes ---------------------------------------------------------------
# moto builds each flask app lazily (on the first request for a backend) from
# `<backend module>.urls.url_paths`.  apigatewayv2 requests are signed with
# "apigateway", so they are served by the *v1* apigateway app, whose url_paths
# is a copy made at import time (`url_paths.update(url_paths_v2)`): both dicts
# must be patched.  GetRouteResponses reuses the existing .../routeresponses
# route (it only lacked a handler method).
_EXTRA_URL_PATHS = {
    "{0}/v2/apis/(?P<api_id>[^/]+)/deployments$": ApiGatewayV2Response.dispatch,
    "{0}/v2/apis/(?P<api_id>[^/]+)/deployments/(?P<deployment_id>[^/]+)$": ApiGatewayV2Response.dispatch,
    "{0}/v2/apis/(?P<api_id>[^/]+)/stages/(?P<stage_name>[^/]+)/accesslogsettings$": ApiGatewayV2Response.dispatch,
    # Stage ARNs (arn:...::/apis/ID/stages/NAME) arrive with %2F decoded to "/".
    "{0}/v2/tags/(?P<resource_arn_pt1>[^/]+)/apis/(?P<resource_arn_pt2>[^/]+)/stages/(?P<resource_arn_pt3>[^/]+)$": ApiGatewayV2Response.dispatch,
    # Domain name ARNs (arn:...::/domainnames/NAME): moto has no route for them (404).
    "{0}/v2/tags/(?P<resource_arn_pt1>[^/]+)/domainnames/(?P<resource_arn_pt2>[^/]+)$": ApiGatewayV2Response.dispatch,
}


def apply_apigatewayv2_patches() -> None:
    Api.__init__ = _api_init
    Api.clear = _api_clear
    Api.get_deployment = _api_get_deployment
    Api.create_deployment = _api_create_deployment
    Api.delete_deployment = _api_delete_deployment
    Api.create_stage = _api_create_stage
    Api.update_stage = _api_update_stage
    Api.delete_stage = _api_delete_stage
    Api.update_integration = _api_update_integration
    Api.delete_integration = _api_delete_integration
    Api.delete_route = _api_delete_route
    Stage.__init__ = _stage_init
    Stage.to_json = _stage_to_json
    Integration.update_response = _integration_update_response
    Integration.delete_response = _integration_delete_response
    Route.delete_route_response = _route_delete_route_response
    Route.__init__ = _route_init
    Route.update = _route_update
    Authorizer.__init__ = _authorizer_init
    Authorizer.to_json = _authorizer_to_json
    Api.update_authorizer = _api_update_authorizer
    Api.delete_authorizer = _api_delete_authorizer
    Account.apply_patch_operations = _account_apply
    Account.to_json = _account_to_json
    Backend.delete_api = _backend_delete_api
    Backend.get_tags = _backend_get_tags
    Backend.tag_resource = _backend_tag_resource
    Backend.untag_resource = _backend_untag_resource
    for handler in (create_deployment, get_deployments, get_deployment,
                    delete_deployment, update_stage, get_route_responses,
                    create_authorizer, get_authorizers, delete_authorizer,
                    delete_access_log_settings):
        setattr(ApiGatewayV2Response, handler.__name__, handler)
    for name in ("get_tags", "tag_resource", "untag_resource"):
        orig = getattr(ApiGatewayV2Response, name)
        setattr(ApiGatewayV2Response, name, _validating_tag_handler(orig))
    for module in (apigw_v2_urls, apigw_v1_urls):
        module.url_paths.update(_EXTRA_URL_PATHS)


# ---------------------------------------------------------------------------
# Part 1b: Lambda versions for releases (monkeypatches on moto 5.2.5)
# ---------------------------------------------------------------------------
# A release publishes every function (PublishVersion), points integrations at the
# version ARN (...:function:<name>:<version>) and grants API Gateway invoke on each
# version (AddPermission with Qualifier).  moto 5.2.5 gets this wrong in ways that would
# hide bugs: a version is a copy.copy of $LATEST and shares its resource policy (a grant
# on version 3 shows up on $LATEST and on every other version); RemovePermission ignores
# Qualifier (and fails any RevisionId it is given: it compares a list to a string);
# functions have no RevisionId at all, PublishVersion ignores its CodeSha256 and
# RevisionId guards, publishes a new version after an UpdateFunctionConfiguration that
# changed nothing, reuses version numbers after a DeleteFunction of a version (two
# "version 4"s), and ListVersionsByFunction neither pages nor finds a function by ARN.

from moto.awslambda import models as lambda_models
from moto.awslambda.exceptions import (
    GenericResourcNotFound,
    InvalidParameterValueException as LambdaInvalidParameter,
    LambdaClientError,
    PreconditionFailedException,
    UnknownPolicyException,
)
from moto.awslambda.policy import Policy as LambdaPolicy
from moto.awslambda.responses import LambdaResponse
from moto.utilities.utils import ARN_PARTITION_REGEX

LambdaFunction = lambda_models.LambdaFunction
LambdaStorage = lambda_models.LambdaStorage
LambdaBackend = lambda_models.LambdaBackend

# AWS's words for a stale RevisionId (localstack's provider, snapshot-tested against AWS;
# aws/aws-sdk issue 377 shows the real "412 PreconditionFailedException: The Revision Id
# provided does not match" for UpdateFunctionCode).  moto used the model's documentation
# text instead ("The RevisionId provided does not match the latest RevisionId for ...").
_REVISION_MISMATCH = ("The Revision Id provided does not match the latest Revision Id. "
                      "Call the GetFunction/GetAlias API to retrieve the latest Revision Id")
_POLICY_REVISION_MISMATCH = ("The Revision Id provided does not match the latest Revision Id. "
                             "Call the GetPolicy API to retrieve the latest Revision Id")
# ListVersionsByFunction: "returns a maximum of 50 items in each response, even if you set
# the number higher" (botocore's documentation of MaxItems).
_LAMBDA_VERSIONS_PAGE = 50


def _new_revision() -> str:
    return str(uuid.uuid4())


def _fn_signature(fn: Any) -> str:
    """What PublishVersion compares: the code and the configuration of a function.

    AWS: "Lambda doesn't publish a version if the function's configuration and code
    haven't changed since the last version" (PublishVersion reference).  Re-uploading the
    same zip is no change (SAM issue 1375: a new S3 key with the same code makes
    CloudFormation's AWS::Lambda::Version fail with "A version for this Lambda function
    exists").  That an UpdateFunctionConfiguration which sets the values already there
    is no change either is inferred, not confirmed (moto published a new version)."""
    image = fn.image_config.response() if getattr(fn, "image_config", None) else None
    return json.dumps({
        "code": fn.code_sha_256, "handler": fn.handler, "runtime": fn.run_time, "role": fn.role,
        "memory": fn.memory_size, "timeout": fn.timeout, "env": fn.environment_vars or {},
        "description": fn.description, "vpc": fn._vpc_config, "layers": fn.layers,
        "architectures": fn.architectures, "storage": fn.ephemeral_storage,
        "tracing": fn.tracing_config, "kms": fn.kms_key_arn, "package": fn.package_type,
        "image": image,
    }, sort_keys=True, default=str)


_orig_fn_init = LambdaFunction.__init__
_orig_fn_get_configuration = LambdaFunction.get_configuration
_orig_fn_update_configuration = LambdaFunction.update_configuration
_orig_fn_update_code = LambdaFunction.update_function_code


def _fn_init(self: Any, *args: Any, **kwargs: Any) -> None:
    _orig_fn_init(self, *args, **kwargs)
    # Every function configuration carries a RevisionId (moto: none at all).
    self.revision_id = _new_revision()


def _fn_get_configuration(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    config = _orig_fn_get_configuration(self, *args, **kwargs)
    config["RevisionId"] = getattr(self, "revision_id", None) or _new_revision()
    return config


def _fn_update_configuration(self: Any, config_updates: dict[str, Any]) -> dict[str, Any]:
    _orig_fn_update_configuration(self, config_updates)
    self.revision_id = _new_revision()  # "The latest updated revision of the function"
    return self.get_configuration()


def _fn_update_code(self: Any, updated_spec: dict[str, Any]) -> dict[str, Any]:
    _orig_fn_update_code(self, updated_spec)
    if not updated_spec.get("DryRun"):
        self.revision_id = _new_revision()
    return self.get_configuration()


def _split_qualified(name_or_arn: str) -> tuple[str, str | None]:
    """(function name, qualifier) of a name, "name:qualifier", a partial ARN or an ARN."""
    ref = unquote(name_or_arn)
    if re.match(ARN_PARTITION_REGEX, ref) or ref.startswith("arn:"):
        rest = ref.split(":function:", 1)[-1]
    elif ":function:" in ref:  # partial ARN: 123456789012:function:name
        rest = ref.split(":function:", 1)[1]
    else:
        rest = ref
    name, _, qualifier = rest.partition(":")
    return name, (qualifier or None)


def _policy_target(backend: Any, function_name: str, qualifier: str | None) -> tuple[Any, str | None]:
    """The function object whose resource policy a permission call acts on, and the
    qualifier in effect (from the name / ARN, or the Qualifier parameter).

    A version's policy is its own: AddPermission / GetPolicy / RemovePermission with
    Qualifier act on that version only, without it on the unqualified function
    ($LATEST) only (shared/aws-notes.md, "Releases")."""
    name, derived = _split_qualified(function_name)
    if derived and qualifier and derived != qualifier:
        # localstack's api_utils (AWS's wording there; unconfirmed elsewhere).
        raise LambdaInvalidParameter(
            "The derived qualifier from the function name does not match the specified qualifier.")
    effective = derived or qualifier
    fn = backend._lambdas.get_function_by_name_with_qualifier(name, effective)
    return fn, effective


def _storage_publish_version(self: Any, name_or_arn: str, description: str | None = "",
                             code_sha256: str | None = None,
                             revision_id: str | None = None) -> Any:
    latest = self.get_function_by_name_or_arn_forbid_qualifier(name_or_arn)
    group = self._functions[latest.function_name]
    # The guards, in AWS's order (localstack's provider): RevisionId, then CodeSha256.
    if revision_id and revision_id != latest.revision_id:
        raise PreconditionFailedException(_REVISION_MISMATCH)
    if code_sha256 and code_sha256 != latest.code_sha_256:
        # A real answer (serverless-aws-batch issue 22, through CloudFormation): "Status
        # Code: 400; Error Code: InvalidParameterValueException".
        raise LambdaInvalidParameter(
            f"CodeSHA256 ({code_sha256}) is different from current CodeSHA256 in $LATEST "
            f"({latest.code_sha_256}). Please try again with the CodeSHA256 in $LATEST.")
    signature = _fn_signature(latest)
    versions = group["versions"]
    if versions:
        last = max(versions, key=lambda v: int(v.version))
        if getattr(last, "_wsconn_source", None) == signature:
            last._wsconn_new = False
            return last  # nothing changed since the last version: that version
    # Version numbers are never reused, even after the highest one was deleted.
    number = group.get("next_version") or max([int(v.version) for v in versions] + [0]) + 1
    group["next_version"] = number + 1
    fn = copy_module.copy(latest)
    # Members a version must not share with $LATEST (copy.copy shared them all): the
    # code record (UpdateFunctionCode rewrote the version's Code.Location), the
    # environment, and above all the resource policy, which is per version.
    fn.code = copy_module.deepcopy(latest.code)
    fn.environment_vars = dict(latest.environment_vars or {})
    fn.layers = list(latest.layers or [])
    fn.policy = LambdaPolicy(latest)  # statements' Resource: the unqualified ARN + ":<version>"
    fn.url_config = None
    fn.event_invoke_config = []
    fn.set_version(number)
    if description:
        fn.description = description
    fn.revision_id = _new_revision()
    fn._wsconn_source = signature
    fn._wsconn_new = True
    versions.append(fn)
    self._arns[fn.function_arn] = fn
    # Publishing also gives $LATEST a new RevisionId (localstack's provider bumps it "just
    # for bumping the revision id", to match AWS).
    latest.revision_id = _new_revision()
    return fn


def _backend_publish_version(self: Any, function_name: str, description: str | None = "",
                             code_sha256: str | None = None, revision_id: str | None = None) -> Any:
    return self._lambdas.publish_version(function_name, description, code_sha256, revision_id)


def _check_revision(fn: Any, body: dict[str, Any]) -> None:
    revision = body.get("RevisionId")
    if revision and revision != fn.revision_id:
        raise PreconditionFailedException(_REVISION_MISMATCH)


def _backend_update_function_code(self: Any, function_name: str, qualifier: str | None,
                                  body: dict[str, Any]) -> dict[str, Any] | None:
    fn = self.get_function(function_name, qualifier)
    _check_revision(fn, body)
    fn.update_function_code(body)
    # moto published and then updated the *version* again; AWS returns the new version.
    if body.get("Publish") and not body.get("DryRun"):
        return self.publish_version(function_name).get_configuration()
    return fn.get_configuration()


_orig_backend_update_configuration = LambdaBackend.update_function_configuration


def _backend_update_function_configuration(self: Any, function_name: str, qualifier: str | None,
                                           body: dict[str, Any]) -> dict[str, Any] | None:
    _check_revision(self.get_function(function_name, qualifier), body)
    return _orig_backend_update_configuration(self, function_name, qualifier, body)


def _backend_add_permission(self: Any, function_name: str, qualifier: str | None,
                            raw: str) -> dict[str, Any]:
    fn, effective = _policy_target(self, function_name, qualifier)
    body = json.loads(raw or "{}")
    revision = body.pop("RevisionId", None)
    if revision and revision != fn.revision_id:
        raise PreconditionFailedException(_POLICY_REVISION_MISMATCH)
    statement, _ = fn.policy.add_statement(json.dumps(body), effective)
    # The policy's RevisionId is the function version's (localstack PR 7482: "the revision
    # id of permissions is the same as for qualified lambdas"); a grant changes it.
    fn.revision_id = fn.policy.revision = _new_revision()
    return statement


def _backend_delete_function(self: Any, function_name: str, qualifier: str | None = None) -> None:
    _, derived = _split_qualified(function_name)
    if (derived or qualifier) == "$LATEST":
        # moto emptied $LATEST and left a function without one.  AWS's words (localstack's
        # provider; the reference: Qualifier "can specify a function version, but not
        # $LATEST").
        raise LambdaInvalidParameter("$LATEST version cannot be deleted without deleting the function.")
    self._lambdas.del_function(function_name, qualifier)


def lambda_add_permission(self: Any) -> Any:
    function_name = unquote(self.path.split("/")[-2])
    qualifier = self.querystring.get("Qualifier", [None])[0]
    statement = self.backend.add_permission(function_name, qualifier, self.body)
    # The model's responseCode is 201 (moto: 200).
    return 201, {"status": 201}, json.dumps({"Statement": json.dumps(statement)})


def lambda_get_policy(self: Any) -> Any:
    function_name = unquote(self.path.split("/")[-2])
    qualifier = self.querystring.get("Qualifier", [None])[0]
    fn, _ = _policy_target(self.backend, function_name, qualifier)
    if not fn.policy.statements:
        raise GenericResourcNotFound()
    policy = {"Version": "2012-10-17", "Id": "default", "Statement": fn.policy.statements}
    return 200, {}, json.dumps({"Policy": json.dumps(policy), "RevisionId": fn.revision_id})


def lambda_remove_permission(self: Any) -> Any:
    function_name = unquote(self.path.split("/")[-3])
    statement_id = unquote(self.path.split("/")[-1].split("?")[0])
    qualifier = self.querystring.get("Qualifier", [None])[0]
    revision = self.querystring.get("RevisionId", [None])[0]
    fn, _ = _policy_target(self.backend, function_name, qualifier)
    if revision and revision != fn.revision_id:
        raise PreconditionFailedException(_POLICY_REVISION_MISMATCH)
    if not fn.policy.statements:
        raise UnknownPolicyException()  # "No policy is associated with the given resource."
    for statement in fn.policy.statements:
        if statement.get("Sid") == statement_id:
            fn.policy.statements.remove(statement)
            break
    else:
        # localstack's provider (AWS's wording there; unconfirmed elsewhere).
        error = LambdaClientError("ResourceNotFoundException",
                                  f"Statement {statement_id} is not found in resource policy.")
        error.code = 404
        raise error
    fn.revision_id = fn.policy.revision = _new_revision()
    return 204, {"status": 204}, ""


def lambda_publish_version(self: Any) -> Any:
    function_name = unquote(self.path.split("/")[-2])
    body = json.loads(self.body) if self.body else {}
    fn = self.backend.publish_version(function_name, body.get("Description"),
                                      body.get("CodeSha256"), body.get("RevisionId"))
    headers: dict[str, Any] = {"status": 201}
    if getattr(fn, "_wsconn_new", False):
        # Read (and removed) by the middleware: realism shows a new version Pending.
        headers["x-wsconn-new-version"] = "1"
    return 201, headers, json.dumps(fn.get_configuration())


def lambda_list_versions_by_function(self: Any) -> Any:
    function_name = unquote(self.path.split("/")[-2])
    name, _ = _split_qualified(function_name)
    latest = self.backend.get_function(name)  # ResourceNotFoundException (moto: empty list)
    group = self.backend._lambdas._functions[latest.function_name]
    shown = copy_module.copy(latest)
    shown.function_arn = latest.function_arn + ":$LATEST"
    items = [("$LATEST", shown)] + sorted(((str(v.version), v) for v in group["versions"]),
                                          key=lambda item: int(item[0]))
    marker = self.querystring.get("Marker", [None])[0]
    if marker:
        # The marker names the last version of the previous page (opaque to clients).
        if marker != "$LATEST" and not marker.isdigit():
            raise LambdaInvalidParameter("Invalid Marker")  # wording unconfirmed
        if marker == "$LATEST":
            items = items[1:]
        else:
            items = [(k, v) for k, v in items if k != "$LATEST" and int(k) > int(marker)]
    try:
        max_items = int(self.querystring.get("MaxItems", [_LAMBDA_VERSIONS_PAGE])[0])
    except ValueError:
        max_items = _LAMBDA_VERSIONS_PAGE
    max_items = max(1, min(max_items, _LAMBDA_VERSIONS_PAGE))
    page = items[:max_items]
    result: dict[str, Any] = {"Versions": [fn.get_configuration() for _, fn in page]}
    if len(items) > max_items:
        result["NextMarker"] = page[-1][0]
    return 200, {}, json.dumps(result)


def apply_lambda_patches() -> None:
    LambdaFunction.__init__ = _fn_init
    LambdaFunction.get_configuration = _fn_get_configuration
    LambdaFunction.update_configuration = _fn_update_configuration
    LambdaFunction.update_function_code = _fn_update_code
    LambdaStorage.publish_version = _storage_publish_version
    LambdaBackend.publish_version = _backend_publish_version
    LambdaBackend.update_function_code = _backend_update_function_code
    LambdaBackend.update_function_configuration = _backend_update_function_configuration
    LambdaBackend.add_permission = _backend_add_permission
    LambdaBackend.delete_function = _backend_delete_function
    LambdaResponse.add_permission = lambda_add_permission
    LambdaResponse.get_policy = lambda_get_policy
    LambdaResponse.remove_permission = lambda_remove_permission
    LambdaResponse.publish_version = lambda_publish_version
    LambdaResponse.list_versions_by_function = lambda_list_versions_by_function


# ---------------------------------------------------------------------------
# Part 1c: custom domain names: ACM, Route 53, API Gateway v2 domain names / mappings
# ---------------------------------------------------------------------------
# A [domain] needs a DNS-validated ACM certificate, the validation CNAME and an alias
# record in a Route 53 hosted zone, an API Gateway v2 domain name and an API mapping.
# What moto 5.2.5 gets wrong here is listed at each filler below.

from moto import settings as moto_settings
from moto.acm import models as acm_models
from moto.acm.exceptions import AWSError as AcmError
from moto.apigatewayv2 import exceptions as v2_exceptions
from moto.core.utils import utcnow
from moto.route53 import models as r53_models
from moto.route53.exceptions import InvalidActionValue, Route53ClientError
from moto.route53.responses import Route53 as Route53Response
from moto.route53.utils import validate_domain_name as r53_validate_name

CertBundle = acm_models.CertBundle
AcmBackend = acm_models.AWSCertificateManagerBackend
Route53Backend = r53_models.Route53Backend
DomainName = v2models.DomainName
ApiMapping = v2models.ApiMapping


# --- ACM ----------------------------------------------------------------------------
# moto: every certificate of every domain gets the same validation CNAME value; the
# certificate is ISSUED MOTO_ACM_VALIDATION_WAIT seconds after the request whether or not
# anyone created that CNAME; IssuedAt is set while still PENDING_VALIDATION;
# DeleteCertificate deletes a certificate that a domain name uses (nothing marks it in
# use); ListCertificates does not page; a token whose certificate was deleted crashes
# RequestCertificate (KeyError, HTTP 500).

def _acm_domains(cert: Any) -> list[str]:
    """The certificate's names, DomainName first, as DescribeCertificate lists them."""
    names = [cert.common_name] if cert.common_name else []
    return names + sorted(n for n in set(cert.sans) if n not in names)


def _acm_record(account: str, domain: str) -> dict[str, str]:
    """The validation CNAME of a name: the same in an account for every certificate that
    names it, and for "*.x" and "x" ("ACM uses the same CNAME record for a domain name in
    all certificates of an account", ACM user guide, DNS validation)."""
    base = domain[2:] if domain.startswith("*.") else domain
    digest = hashlib.sha256(f"{account}:{base.lower()}".encode()).hexdigest()
    letters = "".join("abcdefghijklmnopqrstuvwxyz"[int(c, 16) + 10 * (i % 2)] for i, c in enumerate(digest[32:42]))
    return {"Name": f"_{digest[:32]}.{base.lower()}.", "Type": "CNAME",
            "Value": f"_{digest[32:64]}.{letters}.acm-validations.aws."}


def _dns_norm(name: str) -> str:
    """A DNS name as Route 53 compares it: case-insensitive, no trailing dot, \\052 = *."""
    return name.replace("\\052", "*").rstrip(".").lower()


def _r53_backend(account: str, region: str) -> Any:
    from moto.route53.models import route53_backends
    from moto.utilities.utils import get_partition

    return route53_backends[account][get_partition(region)]


def _covering_zone(account: str, region: str, domain: str) -> Any:
    """The public hosted zone that holds `domain` (the longest suffix), or None."""
    name = _dns_norm(domain)
    best = None
    for zone in _r53_backend(account, region).zones.values():
        zone_name = _dns_norm(zone.name)
        if zone.private_zone or not (name == zone_name or name.endswith("." + zone_name)):
            continue
        if best is None or len(zone_name) > len(_dns_norm(best.name)):
            best = zone
    return best


def _acm_dns_validated(cert: Any) -> bool:
    """Whether DNS validation can succeed: for every name with a public hosted zone in the
    emulator, that zone holds the validation CNAME with its value.  A name no emulated
    zone covers is taken as validated elsewhere (its DNS is outside the emulator)."""
    account, region = cert.arn.split(":")[4], cert.arn.split(":")[3]
    for domain in _acm_domains(cert):
        zone = _covering_zone(account, region, domain)
        if zone is None:
            continue
        want = _acm_record(account, domain)
        if not any(_dns_norm(r.name) == _dns_norm(want["Name"]) and r.type == "CNAME"
                   and [_dns_norm(v) for v in r.records or []] == [_dns_norm(want["Value"])]
                   for r in zone.rrsets):
            return False
    return True


def _cert_check(self: Any) -> None:
    """PENDING_VALIDATION -> ISSUED once the validation CNAMEs exist (where the emulator
    has their zone) and MOTO_ACM_VALIDATION_WAIT (the setting acm_validation_wait_s) has
    passed since; moto counted from the request, CNAME or not.  Real issuance "takes
    minutes once the CNAME resolves" (shared/aws-notes.md)."""
    now = utcnow()
    if self._not_valid_after(self._cert) <= now:
        self.status = "EXPIRED"
        return
    if self.type != "AMAZON_ISSUED" or self.status != "PENDING_VALIDATION":
        return
    if getattr(self, "_wsconn_validated_at", None) is None and _acm_dns_validated(self):
        self._wsconn_validated_at = now
    since = getattr(self, "_wsconn_validated_at", None)
    if since is not None and (now - since).total_seconds() >= float(moto_settings.ACM_VALIDATION_WAIT):
        self.status = "ISSUED"
        self._wsconn_issued_at = now


_orig_cert_describe = CertBundle.describe


def _cert_describe(self: Any) -> dict[str, Any]:
    result = _orig_cert_describe(self)
    cert = result["Certificate"]
    if self.type == "AMAZON_ISSUED":
        account = self.arn.split(":")[4]
        status = "SUCCESS" if self.status == "ISSUED" else self.status
        cert["DomainValidationOptions"] = [
            {"DomainName": d, "ValidationDomain": d, "ValidationStatus": status,
             "ValidationMethod": "DNS", "ResourceRecord": _acm_record(account, d)}
            for d in _acm_domains(self)]
        cert["SubjectAlternativeNames"] = _acm_domains(self)
        cert.pop("IssuedAt", None)  # only once issued
        if self.status == "ISSUED":
            issued = getattr(self, "_wsconn_issued_at", None) or self.created_at
            cert["IssuedAt"] = acm_models.datetime_to_epoch(issued)
    cert["InUseBy"] = list(self.in_use_by)
    return result


_orig_acm_request = AcmBackend.request_certificate


def _acm_request_certificate(self: Any, domain_name: str, idempotency_token: str | None,
                             *args: Any, **kwargs: Any) -> str:
    if idempotency_token is not None:
        entry = self._idempotency_tokens.get(idempotency_token)
        if entry is not None and entry["arn"] not in self._certificates:
            # moto: KeyError (HTTP 500).  Treated as a new request (unconfirmed).
            del self._idempotency_tokens[idempotency_token]
    return _orig_acm_request(self, domain_name, idempotency_token, *args, **kwargs)


def _acm_delete_certificate(self: Any, arn: str) -> None:
    cert = self.get_certificate(arn)
    if cert.in_use_by:
        # AWS's words (terraform-provider-aws and sst issue 4963: "ResourceInUseException:
        # Certificate arn:aws:acm:...:certificate/... in account 123456789012 is in use.").
        raise AcmError(f"Certificate {arn} in account {self.account_id} is in use.",
                       exception_type="ResourceInUseException")
    del self._certificates[arn]


def acm_list_certificates(self: Any) -> Any:
    """ListCertificates with MaxItems / NextToken (moto: one page of everything) and the
    summary's SubjectAlternativeNameSummaries."""
    from moto.core.responses import ActionResult

    statuses = self._get_param("CertificateStatuses")
    includes = self._get_param("Includes")
    summaries = []
    for bundle in self.acm_backend.list_certificates(statuses, includes):
        cert = bundle.describe()["Certificate"]
        in_use = cert.pop("InUseBy", [])
        cert["InUse"] = bool(in_use)
        cert["Exported"] = bundle.cert_options["Export"] == "ENABLED"
        cert["SubjectAlternativeNameSummaries"] = cert.get("SubjectAlternativeNames", [])
        cert.pop("DomainValidationOptions", None)
        summaries.append(cert)
    summaries.sort(key=lambda c: c["CertificateArn"])
    token = self._get_param("NextToken")
    if token:
        summaries = [c for c in summaries if c["CertificateArn"] > token]
    max_items = int(self._get_param("MaxItems") or 1000)
    result: dict[str, Any] = {"CertificateSummaryList": summaries[:max_items]}
    if len(summaries) > max_items:
        result["NextToken"] = summaries[max_items - 1]["CertificateArn"]
    return ActionResult(result=result)


def _acm_stamp_validations(account: str) -> None:
    """Lets every pending certificate of the account see DNS records just written."""
    for backend in list(acm_models.acm_backends[account].values()):
        for cert in list(backend._certificates.values()):
            try:
                cert.check()
            except Exception:  # an unparsable certificate must not break a DNS call
                pass


def _acm_certificate(arn: str | None) -> Any:
    """The ACM certificate an ARN names (in its own region), or None."""
    if not arn or not arn.startswith("arn:") or ":certificate/" not in arn:
        return None
    parts = arn.split(":")
    try:
        return acm_models.acm_backends[parts[4]][parts[3]]._certificates.get(arn)
    except Exception:
        return None


# --- Route 53 -----------------------------------------------------------------------
# moto: a CREATE of an existing name and type is refused only if the very same change is
# in the zone's journal (different values made a second record set); DELETE checks the
# journal instead of the zone (a record UPSERTed since can be deleted with its old
# values); a batch is applied change by change (a failing change leaves the earlier ones
# done); every change has the id /change/C2682N5HXP0BZ4 and is INSYNC at once; GetChange
# answers INSYNC for any id; ListHostedZonesByName with DNSName returns only that exact
# zone (AWS: the zones from that name on, in its order) and never pages.

_R53_KNOWN_MOTO_CHANGES = ("C1PA6795UKMFR9", "C2682N5HXP0BZ4", "a1b2c3d4")


def _r53_invalid_batch(errors: list[str]) -> Exception:
    # Route 53's standard error form since 2024 (aws-sdk-kotlin PR 1435): code
    # InvalidChangeBatch, the messages joined in one "[m1, m2]".
    return Route53ClientError("InvalidChangeBatch", "[" + ", ".join(errors) + "]")


def _r53_stored_name(name: str) -> str:
    """Route 53 keeps names lower-case with a trailing dot and returns "*" as \\052
    (Route 53 developer guide, "DNS domain name format")."""
    name = name.lower().replace("*", "\\052")
    return name if name.endswith(".") else name + "."


def _r53_values(rrset: Any) -> Any:
    """What a DELETE must repeat: TTL + values, or the alias target."""
    if rrset.alias_target:
        target = rrset.alias_target
        return ("alias", _dns_norm(target.get("DNSName", "")), target.get("HostedZoneId"),
                str(target.get("EvaluateTargetHealth", False)).lower())
    return ("records", str(rrset.ttl), sorted(str(v) for v in rrset.records or []))


def _r53_change_resource_record_sets(self: Any, zoneid: str, change_list: list[dict[str, Any]]) -> None:
    zone = self.get_hosted_zone(zoneid)
    zone_name = _dns_norm(zone.name)
    fqdn_zone = zone.name if zone.name.endswith(".") else zone.name + "."
    work = list(zone.rrsets)
    errors: list[str] = []
    for change in change_list:
        action = change.get("Action")
        if action not in ("CREATE", "UPSERT", "DELETE"):
            raise InvalidActionValue(action)
        spec = copy_module.deepcopy(change["ResourceRecordSet"])
        r53_validate_name(spec["Name"], code="InvalidChangeBatch")
        name, rtype, set_id = _dns_norm(spec["Name"]), spec.get("Type"), spec.get("SetIdentifier")
        fqdn = _r53_stored_name(spec["Name"])
        if not (name == zone_name or name.endswith("." + zone_name)):
            # AWS's words (codeedog/cdk-cert-dns-multi-bug: "[RRSet with DNS name
            # _43c3....www.example.net. is not permitted in zone example.com.]").
            errors.append(f"RRSet with DNS name {fqdn} is not permitted in zone {fqdn_zone}")
            continue
        same = [r for r in work if _dns_norm(r.name) == name and r.type == rtype
                and r.set_identifier == set_id]
        if action == "DELETE":
            if not same:
                errors.append(f"Tried to delete resource record set [name='{fqdn}', type='{rtype}'] "
                              "but it was not found")
                continue
            if "ResourceRecords" in spec:
                spec["ResourceRecords"] = [x["Value"] for x in spec["ResourceRecords"]]
            if _r53_values(r53_models.RecordSet(spec)) != _r53_values(same[0]):
                errors.append(f"Tried to delete resource record set [name='{fqdn}', type='{rtype}'] "
                              "but the values provided do not match the current values")
                continue
            work.remove(same[0])
            continue
        if action == "CREATE" and same:
            errors.append(f"Tried to create resource record set [name='{fqdn}', type='{rtype}'] "
                          "but it already exists")
            continue
        others = [r for r in work if _dns_norm(r.name) == name and r.type != rtype]
        if rtype == "CNAME" and name == zone_name:
            # Wording unconfirmed (the rule: no CNAME at a zone's apex, RFC 1034).
            errors.append(f"RRSet of type CNAME with DNS name {fqdn} is not permitted at apex in "
                          f"zone {fqdn_zone}")
            continue
        if (rtype == "CNAME" and others) or any(r.type == "CNAME" for r in others):
            # Wording unconfirmed (the rule: a CNAME is alone at its name, RFC 1034).
            errors.append(f"RRSet of type {rtype} with DNS name {fqdn} is not permitted as it "
                          f"conflicts with other records with the same DNS name in zone {fqdn_zone}")
            continue
        spec["Name"] = fqdn
        if "ResourceRecords" in spec:
            spec["ResourceRecords"] = [x["Value"] for x in spec["ResourceRecords"]]
        if spec.get("AliasTarget"):
            target = dict(spec["AliasTarget"])
            target["DNSName"] = _r53_stored_name(target.get("DNSName", ""))
            spec["AliasTarget"] = target
        record = r53_models.RecordSet(spec)
        if same:  # UPSERT of an existing one
            work[work.index(same[0])] = record
        else:
            work.append(record)
    if errors:
        raise _r53_invalid_batch(errors)
    # The whole batch or nothing (ChangeResourceRecordSets reference: "all of the changes
    # in a change batch request are applied together, or none of them are").
    zone.rrsets = work
    for change in change_list:
        zone.rr_changes.append(copy_module.deepcopy(change))


def r53_change_resource_record_sets(self: Any) -> Any:
    """A change of its own id, PENDING when submitted (AWS: "PENDING indicates that this
    request has not yet been applied to all Amazon Route 53 DNS servers"); GetChange
    reports INSYNC (after dns_change_s in realism mode)."""
    from moto.core.responses import ActionResult

    zoneid = self._get_param("HostedZoneId")
    changes = self._get_param("ChangeBatch.Changes") or []
    count = 0
    for value in changes:
        records = value["ResourceRecordSet"].get("ResourceRecords") or []
        count += len(records) * (2 if value["Action"] == "UPSERT" else 1)
    if count > 1000:
        from moto.route53.exceptions import InvalidChangeBatch
        raise InvalidChangeBatch()
    self.backend.change_resource_record_sets(zoneid, changes)
    change_id = "C" + "".join(random.choice(string.ascii_uppercase + string.digits) for _ in range(20))
    submitted = utcnow()
    if not hasattr(self.backend, "_wsconn_changes"):
        self.backend._wsconn_changes = {}
    self.backend._wsconn_changes[change_id] = {"submitted": submitted, "at": time.monotonic()}
    comment = self._get_param("ChangeBatch.Comment")
    info = {"Id": f"/change/{change_id}", "Status": "PENDING", "SubmittedAt": submitted}
    if comment:
        info["Comment"] = comment
    _acm_stamp_validations(self.current_account)
    return ActionResult({"ChangeInfo": info})


def r53_get_change(self: Any) -> Any:
    from moto.core.responses import ActionResult

    change_id = self._get_param("Id").split("/")[-1]
    changes = getattr(self.backend, "_wsconn_changes", {})
    if change_id not in changes and change_id not in _R53_KNOWN_MOTO_CHANGES:
        # The model's documentation of NoSuchChange (404).
        raise Route53ClientError("NoSuchChange", "A change with the specified change ID does not exist.")
    submitted = changes.get(change_id, {}).get("submitted") or utcnow()
    return ActionResult({"ChangeInfo": {"Id": f"/change/{change_id}", "Status": "INSYNC",
                                        "SubmittedAt": submitted}})


def _zone_order(name: str) -> str:
    """ListHostedZonesByName's order: the labels reversed, with the trailing dot
    ("com.example.www.")."""
    labels = [label for label in name.lower().rstrip(".").split(".") if label]
    return ".".join(reversed(labels)) + "."


def r53_list_hosted_zones_by_name(self: Any) -> Any:
    from moto.core.responses import ActionResult

    dnsname = self._get_param("DNSName")
    zone_id = self._get_param("HostedZoneId")
    max_items = int(self._get_param("MaxItems") or 100)
    zones = sorted(self.backend.zones.values(), key=lambda z: (_zone_order(z.name), z.resource_id))
    if dnsname:
        start = (_zone_order(dnsname), (zone_id or "").split("/")[-1])
        zones = [z for z in zones if (_zone_order(z.name), z.resource_id) >= start]
    page = zones[:max_items]
    result: dict[str, Any] = {"HostedZones": page, "IsTruncated": len(zones) > max_items,
                              "MaxItems": str(max_items)}
    if dnsname:
        result["DNSName"] = dnsname if dnsname.endswith(".") else dnsname + "."
    if zone_id:
        result["HostedZoneId"] = zone_id
    if len(zones) > max_items:
        result["NextDNSName"] = zones[max_items].name
        result["NextHostedZoneId"] = zones[max_items].resource_id
    return ActionResult(result)


# --- API Gateway v2 domain names and API mappings -------------------------------------
# moto: CreateDomainName returns the configurations as sent (no ApiGatewayDomainName,
# HostedZoneId, DomainNameStatus, defaults) and answers 200 (the model: 201);
# UpdateDomainName and UpdateApiMapping are absent (HTTP 500); DeleteDomainName with a
# mapping crashes (dict changed during iteration, HTTP 500); API mapping ids are a hash
# of stage/domain/key (a second mapping of the same key silently replaced the first) and
# the stage is not checked; GetApiMappings of a missing domain answers []; tags of a
# domain ARN have no URL route (404); nothing marks the certificate in use.

# The regional API Gateway endpoints' hosted zone ids (AWS's "API Gateway endpoints"
# table; us-east-1's is seen in public alias records, the others are unconfirmed here).
_APIGW_REGIONAL_ZONES = {
    "us-east-1": "Z1UJRXOUMOOFQ8", "us-east-2": "ZOJJZC49E0EPZ", "us-west-1": "Z2MUQ32089INYE",
    "us-west-2": "Z2OJLYMUO9EFXC", "ca-central-1": "Z19DQILCV0OWEC", "eu-west-1": "ZLY8HYME6SFDD",
    "eu-west-2": "ZJ5UAJN8Y3Z2Q", "eu-west-3": "Z3KY65QIEKYHQQ", "eu-central-1": "Z1U9ULNL0V5AJ3",
    "eu-north-1": "Z3UWIKFBOOGXPP", "ap-northeast-1": "Z1YSHQZHG15GKL",
    "ap-northeast-2": "Z20JF4UZKIW1U8", "ap-southeast-1": "ZL327KTPIQFUL",
    "ap-southeast-2": "Z2RPCDW04V8134", "ap-south-1": "Z3VO1THU9YC4UR", "sa-east-1": "ZCMLWB8V5SYIT",
}
_CLOUDFRONT_ZONE = "Z2FDTNDATAQYW2"  # every CloudFront (EDGE) alias target


class DomainNameNotFound(APIGatewayV2Error):
    code = 404

    def __init__(self, name: str | None = None):
        # AWS's words for apigatewayv2 GetDomainName (serverless-domain-manager issue 369);
        # moto: "The domain name resource specified in the request was not found."
        super().__init__("NotFoundException", "Invalid domain name identifier specified")


class MappingConflict(APIGatewayV2Error):
    code = 409

    def __init__(self, key: str, domain_name: str):
        # Wording unconfirmed (AWS answers ConflictException for a key already mapped).
        super().__init__("ConflictException",
                         f"API mapping with key '{key}' already exists for domain name {domain_name}")


def _domain_config(region: str, config: dict[str, Any], old: dict[str, Any] | None = None) -> dict[str, Any]:
    """A DomainNameConfiguration as GetDomainName shows it."""
    out = {k: v for k, v in (config or {}).items() if v is not None}
    out.setdefault("endpointType", "REGIONAL")
    out.setdefault("securityPolicy", "TLS_1_2")
    out.setdefault("ipAddressType", "ipv4")
    if old and old.get("endpointType") == out["endpointType"]:
        out["apiGatewayDomainName"] = old["apiGatewayDomainName"]
        out["hostedZoneId"] = old["hostedZoneId"]
    elif out["endpointType"] == "EDGE":
        out["apiGatewayDomainName"] = f"d{_short_id(13)}.cloudfront.net"
        out["hostedZoneId"] = _CLOUDFRONT_ZONE
    else:
        # Real ones: d-j2zf4098xg.execute-api.us-east-1.amazonaws.com.
        out["apiGatewayDomainName"] = f"d-{_short_id(10)}.execute-api.{region}.amazonaws.com"
        out["hostedZoneId"] = _APIGW_REGIONAL_ZONES.get(region, "Z1UJRXOUMOOFQ8")
    out["domainNameStatus"] = "AVAILABLE"
    if out.get("certificateArn"):
        out.setdefault("certificateUploadDate", iso_8601_datetime_without_milliseconds(datetime.now()))
    return out


def _domain_use_certificates(domain: Any, configs: list[dict[str, Any]], use: bool) -> None:
    for config in configs or []:
        cert = _acm_certificate(config.get("certificateArn"))
        if cert is None:
            continue
        if use and domain.domain_name_arn not in cert.in_use_by:
            cert.in_use_by.append(domain.domain_name_arn)
        elif not use and domain.domain_name_arn in cert.in_use_by:
            cert.in_use_by.remove(domain.domain_name_arn)
            cert._wsconn_released_at = time.monotonic()


_orig_domain_init = DomainName.__init__


def _domain_init(self: Any, domain_name: str, domain_name_configurations: list[dict[str, Any]],
                 mutual_tls_authentication: dict[str, Any], tags: dict[str, str], backend: Any) -> None:
    _orig_domain_init(self, domain_name, domain_name_configurations, mutual_tls_authentication,
                      tags or {}, backend)
    self.domain_name_configurations = [_domain_config(backend.region_name, c)
                                       for c in domain_name_configurations or [{}]]
    self.tags = dict(tags or {})


def _domain_to_json(self: Any) -> dict[str, Any]:
    dct = {
        "apiMappingSelectionExpression": self.api_mapping_selection_expression,
        "domainName": self.domain_name,
        "domainNameArn": self.domain_name_arn,
        "domainNameConfigurations": self.domain_name_configurations,
        "mutualTlsAuthentication": self.mutual_tls_authentication or None,
        "tags": self.tags,
    }
    return {k: v for k, v in dct.items() if v is not None}


def _backend_get_domain_name(self: Any, domain_name: str | None) -> Any:
    if domain_name is None or domain_name not in self.domain_names:
        raise DomainNameNotFound(domain_name)
    return self.domain_names[domain_name]


_orig_backend_create_domain_name = Backend.create_domain_name


def _backend_create_domain_name(self: Any, *args: Any, **kwargs: Any) -> Any:
    domain = _orig_backend_create_domain_name(self, *args, **kwargs)
    _domain_use_certificates(domain, domain.domain_name_configurations, True)
    return domain


def _backend_delete_domain_name(self: Any, domain_name: str) -> None:
    domain = self.get_domain_name(domain_name)
    for mapping_id in [i for i, m in self.api_mappings.items() if m.domain_name == domain_name]:
        del self.api_mappings[mapping_id]
    _domain_use_certificates(domain, domain.domain_name_configurations, False)
    self.tagger.delete_all_tags_for_resource(domain.domain_name_arn)
    del self.domain_names[domain_name]


def _backend_update_domain_name(self: Any, domain_name: str, params: dict[str, Any]) -> Any:
    domain = self.get_domain_name(domain_name)
    if "domainNameConfigurations" in params:
        old = {c.get("endpointType"): c for c in domain.domain_name_configurations}
        new = []
        for config in params["domainNameConfigurations"] or []:
            merged = {k: v for k, v in (old.get(config.get("endpointType") or "REGIONAL") or {}).items()
                      if k in ("endpointType", "securityPolicy", "certificateArn", "certificateName",
                               "ipAddressType")}
            merged.update({k: v for k, v in config.items() if v is not None})
            new.append(_domain_config(self.region_name, merged, old.get(merged.get("endpointType", "REGIONAL"))))
        _domain_use_certificates(domain, domain.domain_name_configurations, False)
        domain.domain_name_configurations = new
        _domain_use_certificates(domain, new, True)
    if "mutualTlsAuthentication" in params:
        domain.mutual_tls_authentication = params["mutualTlsAuthentication"] or {}
    return domain


def _api_protocol(backend: Any, api_id: str) -> str | None:
    """WEBSOCKET / HTTP for an API Gateway v2 API, REST for a v1 REST API, else None."""
    if api_id in backend.apis:
        return backend.apis[api_id].protocol_type
    from moto.apigateway.models import apigateway_backends

    if api_id in apigateway_backends[backend.account_id][backend.region_name].apis:
        return "REST"
    return None


def _check_mapping(backend: Any, domain_name: str, api_id: str, key: str, stage: str,
                   mapping_id: str | None = None) -> None:
    backend.get_domain_name(domain_name)
    protocol = _api_protocol(backend, api_id)
    if protocol is None:
        raise v2_exceptions.ApiNotFound(api_id)
    if key.startswith("/") or "//" in key:
        raise BadRequestException("API mapping key should not start with a '/' or have consecutive '/'s.")
    if key.endswith("/"):
        raise BadRequestException("API mapping key should not end with a '/'.")
    if protocol != "REST":
        backend.apis[api_id].get_stage(stage)  # NotFoundException "Invalid stage identifier specified"
    for other in backend.api_mappings.values():
        if other.domain_name == domain_name and other.api_mapping_key == key \
                and other.api_mapping_id != mapping_id:
            raise MappingConflict(key, domain_name)


def _backend_create_api_mapping(self: Any, api_id: str, api_mapping_key: str, domain_name: str,
                                stage: str) -> Any:
    key = api_mapping_key or ""
    _check_mapping(self, domain_name, api_id, key, stage)
    mapping = ApiMapping(api_id=api_id, api_mapping_key=key, api_mapping_id=_short_id(6),
                         domain_name=domain_name, stage=stage)  # ids look like "a1b2c3"
    self.api_mappings[mapping.api_mapping_id] = mapping
    return mapping


def _backend_get_api_mappings(self: Any, domain_name: str) -> list[Any]:
    self.get_domain_name(domain_name)
    return [m for m in self.api_mappings.values() if m.domain_name == domain_name]


def _backend_get_api_mapping(self: Any, api_mapping_id: str, domain_name: str) -> Any:
    self.get_domain_name(domain_name)
    mapping = self.api_mappings.get(api_mapping_id)
    if mapping is None or mapping.domain_name != domain_name:
        raise v2_exceptions.ApiMappingNotFound()
    return mapping


def _backend_delete_api_mapping(self: Any, api_mapping_id: str, domain_name: str) -> None:
    self.get_api_mapping(api_mapping_id, domain_name)
    del self.api_mappings[api_mapping_id]


def _backend_update_api_mapping(self: Any, domain_name: str, api_mapping_id: str,
                                params: dict[str, Any]) -> Any:
    mapping = self.get_api_mapping(api_mapping_id, domain_name)
    api_id = params.get("apiId") or mapping.api_id
    key = params["apiMappingKey"] if params.get("apiMappingKey") is not None else mapping.api_mapping_key
    stage = params.get("stage") or mapping.stage
    _check_mapping(self, domain_name, api_id, key, stage, api_mapping_id)
    mapping.api_id, mapping.api_mapping_key, mapping.stage = api_id, key, stage
    return mapping


_DOMAIN_PATH = re.compile(r"/v2/domainnames/(?P<domain>[^/]+)(?:/apimappings(?:/(?P<mapping>[^/]+))?)?/?$")


def _domain_ids(self: Any) -> dict[str, str]:
    m = _DOMAIN_PATH.search(self.path)
    assert m, f"unexpected path {self.path}"
    return {k: unquote(v) for k, v in m.groupdict().items() if v is not None}


def create_domain_name(self: Any) -> Any:
    params = _json_body(self)
    domain = self.apigatewayv2_backend.create_domain_name(
        domain_name=params.get("domainName"),
        domain_name_configurations=params.get("domainNameConfigurations") or [{}],
        mutual_tls_authentication=params.get("mutualTlsAuthentication") or {},
        tags=params.get("tags") or {})
    return _v2_response(201, domain.to_json())


def update_domain_name(self: Any) -> Any:
    domain = self.apigatewayv2_backend.update_domain_name(_domain_ids(self)["domain"], _json_body(self))
    return _v2_response(200, domain.to_json())


def delete_domain_name(self: Any) -> Any:
    self.apigatewayv2_backend.delete_domain_name(_domain_ids(self)["domain"])
    return _v2_response(204)


def create_api_mapping(self: Any) -> Any:
    params = _json_body(self)
    mapping = self.apigatewayv2_backend.create_api_mapping(
        api_id=params.get("apiId"), api_mapping_key=params.get("apiMappingKey") or "",
        domain_name=_domain_ids(self)["domain"], stage=params.get("stage"))
    return _v2_response(201, mapping.to_json())


def update_api_mapping(self: Any) -> Any:
    ids = _domain_ids(self)
    mapping = self.apigatewayv2_backend.update_api_mapping(ids["domain"], ids["mapping"], _json_body(self))
    return _v2_response(200, mapping.to_json())


def delete_api_mapping(self: Any) -> Any:
    ids = _domain_ids(self)
    self.apigatewayv2_backend.delete_api_mapping(api_mapping_id=ids["mapping"], domain_name=ids["domain"])
    return _v2_response(204)



def apply_domain_patches() -> None:
    CertBundle.check = _cert_check
    CertBundle.describe = _cert_describe
    AcmBackend.request_certificate = _acm_request_certificate
    AcmBackend.delete_certificate = _acm_delete_certificate
    from moto.acm.responses import AWSCertificateManagerResponse

    AWSCertificateManagerResponse.list_certificates = acm_list_certificates
    Route53Backend.change_resource_record_sets = _r53_change_resource_record_sets
    Route53Response.change_resource_record_sets = r53_change_resource_record_sets
    Route53Response.get_change = r53_get_change
    Route53Response.list_hosted_zones_by_name = r53_list_hosted_zones_by_name
    DomainName.__init__ = _domain_init
    DomainName.to_json = _domain_to_json
    Backend.get_domain_name = _backend_get_domain_name
    Backend.create_domain_name = _backend_create_domain_name
    Backend.delete_domain_name = _backend_delete_domain_name
    Backend.update_domain_name = _backend_update_domain_name
    Backend.create_api_mapping = _backend_create_api_mapping
    Backend.get_api_mappings = _backend_get_api_mappings
    Backend.get_api_mapping = _backend_get_api_mapping
    Backend.delete_api_mapping = _backend_delete_api_mapping
    Backend.update_api_mapping = _backend_update_api_mapping
    for handler in (create_domain_name, update_domain_name, delete_domain_name,
                    create_api_mapping, update_api_mapping, delete_api_mapping):
        setattr(ApiGatewayV2Response, handler.__name__, handler)


# ---------------------------------------------------------------------------
# Part 1d: CloudWatch Logs for `wsconn logs` (monkeypatches on moto 5.2.5)
# ---------------------------------------------------------------------------
# moto's FilterLogEvents lists one stream after another unless `interleaved` (AWS has
# ignored that flag since 2019: "The response from this operation always interleaves
# events from multiple log streams"), ignores logStreamNamePrefix, startFromHead and the
# 1 MB page limit, finds the wrong group by logGroupIdentifier (the last one it looked
# at), and understands only plain terms and quoted phrases as a filterPattern (anything
# else, "?a ?b" included, matched every event).  CreateLogStream of an existing stream
# says "The specified log group already exists".

from moto.logs import models as logs_models
from moto.logs.exceptions import InvalidParameterException as LogsInvalidParameter
from moto.logs.exceptions import LogsClientError
from moto.logs.responses import LogsResponse

# "Each page returned can contain up to 1 MB of log events or up to 10,000 log events"
# (FilterLogEvents reference).  An event's size is counted as PutLogEvents counts it:
# its message in UTF-8 plus 26 bytes (an approximation of the page's 1 MB).
_LOGS_PAGE_EVENTS = 10000
_LOGS_PAGE_BYTES = 1048576
_LOGS_EVENT_OVERHEAD = 26


class LogsPatternError(ValueError):
    pass


class LogsPattern:
    """A CloudWatch Logs filter pattern (Filter and Pattern Syntax in the CloudWatch Logs
    user guide), enough of it for `wsconn logs --filter`:

    * terms: `ERROR` (the message contains it; case-sensitive), several terms = all of
      them, `"exact phrase"`, `?ERROR ?WARN` = any of them, `-DEBUG` = not that term;
    * JSON: `{ $.level = "ERROR" }`, `!=`, `<`, `>`, `<=`, `>=` on numbers, `*` as a
      wildcard in strings, `IS TRUE` / `IS FALSE` / `IS NULL`, `EXISTS` / `NOT EXISTS`,
      `&&`, `||` and parentheses, selectors such as `$.a.b` and `$.list[0]`; a message
      that is not a JSON object matches no JSON pattern.
    Space-delimited patterns (`[ip, user, ...]`) and %regex% terms are not understood:
    they match every event, as moto did (not filled)."""

    _TOKEN = re.compile(r'\s*(?:(\(|\)|&&|\|\||!=|<=|>=|=|<|>)|("(?:[^"\\]|\\.)*")'
                        r'|(\$[A-Za-z0-9_.\[\]\-]*)|([A-Za-z0-9_.*+\-:/@]+))')

    def __init__(self, pattern: str | None):
        self.text = (pattern or "").strip()
        self.kind = "all"
        if not self.text:
            return
        if self.text.startswith("{"):
            if not self.text.endswith("}"):
                raise LogsPatternError(self.text)
            self.kind = "json"
            self.tokens = self._tokenize(self.text[1:-1])
            self.pos = 0
            self.tree = self._expr()
            if self.pos != len(self.tokens):
                raise LogsPatternError(self.text)
        elif self.text.startswith("[") or self.text.startswith("%"):
            self.kind = "all"
        else:
            self.kind = "terms"
            self.all, self.any, self.none = [], [], []
            for m in re.finditer(r'([?-]?)("(?:[^"\\]|\\.)*"|\S+)', self.text):
                prefix, term = m.group(1), m.group(2)
                if term.startswith('"'):
                    term = term[1:-1].replace('\\"', '"')
                {"": self.all, "?": self.any, "-": self.none}[prefix].append(term)

    def _tokenize(self, text: str) -> list[tuple[str, str]]:
        tokens, i = [], 0
        while i < len(text):
            if text[i:].strip() == "":
                break
            m = self._TOKEN.match(text, i)
            if not m or m.end() == i:
                raise LogsPatternError(text)
            op, string_, selector, word = m.groups()
            if op:
                tokens.append(("op", op))
            elif string_:
                tokens.append(("str", json.loads(string_)))
            elif selector:
                tokens.append(("sel", selector))
            else:
                tokens.append(("word", word))
            i = m.end()
        return tokens

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise LogsPatternError(self.text)
        self.pos += 1
        return token

    def _expr(self) -> Any:
        node = self._and()
        while self._peek() == ("op", "||"):
            self._take()
            node = ("or", node, self._and())
        return node

    def _and(self) -> Any:
        node = self._term()
        while self._peek() == ("op", "&&"):
            self._take()
            node = ("and", node, self._term())
        return node

    def _term(self) -> Any:
        token = self._take()
        if token == ("op", "("):
            node = self._expr()
            if self._take() != ("op", ")"):
                raise LogsPatternError(self.text)
            return node
        if token[0] != "sel":
            raise LogsPatternError(self.text)
        selector = token[1]
        nxt = self._take()
        if nxt[0] == "word" and nxt[1].upper() == "IS":
            what = self._take()[1].upper()
            if what not in ("TRUE", "FALSE", "NULL"):
                raise LogsPatternError(self.text)
            return ("is", selector, what)
        if nxt[0] == "word" and nxt[1].upper() == "EXISTS":
            return ("exists", selector, True)
        if nxt[0] == "word" and nxt[1].upper() == "NOT":
            if self._take()[1].upper() != "EXISTS":
                raise LogsPatternError(self.text)
            return ("exists", selector, False)
        if nxt[0] != "op" or nxt[1] not in ("=", "!=", "<", ">", "<=", ">="):
            raise LogsPatternError(self.text)
        value = self._take()
        if value[0] not in ("str", "word"):
            raise LogsPatternError(self.text)
        return ("cmp", selector, nxt[1], value)

    @staticmethod
    def _select(doc: Any, selector: str) -> tuple[bool, Any]:
        current = doc
        for part in re.findall(r"\.([A-Za-z0-9_\-]+)|\[(\d+)\]", selector[1:]):
            key, index = part
            if key:
                if not isinstance(current, dict) or key not in current:
                    return False, None
                current = current[key]
            else:
                if not isinstance(current, list) or int(index) >= len(current):
                    return False, None
                current = current[int(index)]
        return True, current

    def _eval(self, node: Any, doc: Any) -> bool:
        kind = node[0]
        if kind == "and":
            return self._eval(node[1], doc) and self._eval(node[2], doc)
        if kind == "or":
            return self._eval(node[1], doc) or self._eval(node[2], doc)
        found, value = self._select(doc, node[1])
        if kind == "exists":
            return found is node[2]
        if kind == "is":
            want = {"TRUE": True, "FALSE": False, "NULL": None}[node[2]]
            return found and value is want
        _, _, op, (vkind, raw) = node
        if not found or isinstance(value, (dict, list)):
            return False
        if vkind == "word":
            try:
                number = float(raw)
            except ValueError:
                number = None
            if number is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
                return {"=": value == number, "!=": value != number, "<": value < number,
                        ">": value > number, "<=": value <= number, ">=": value >= number}[op]
            if op in ("<", ">", "<=", ">="):
                return False
        text = "true" if value is True else "false" if value is False else \
            "null" if value is None else str(value)
        matched = re.fullmatch(".*".join(re.escape(p) for p in str(raw).split("*")), text,
                               re.DOTALL) is not None
        if op == "=":
            return matched
        if op == "!=":
            return not matched
        return False

    def matches(self, message: str) -> bool:
        if self.kind == "all":
            return True
        if self.kind == "terms":
            if any(t in message for t in self.none):
                return False
            if self.any and not any(t in message for t in self.any):
                return False
            return all(t in message for t in self.all)
        try:
            doc = json.loads(message)
        except ValueError:
            return False
        return isinstance(doc, dict) and self._eval(self.tree, doc)


def logs_token(group: str, head: bool, key: list[Any] | None) -> str:
    """An opaque nextToken: the group, the direction and the last event returned."""
    raw = json.dumps([group, head, key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _logs_untoken(token: str) -> tuple[str, bool, list[Any] | None] | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        group, head, key = json.loads(raw)
        return str(group), bool(head), key
    except Exception:
        return None


def _logs_find_group(backend: Any, name: str | None, identifier: str | None) -> Any:
    if bool(name) == bool(identifier):
        # The rule is the reference's ("You must include either logGroupIdentifier or
        # logGroupName, but not both"); the wording is unconfirmed.
        raise LogsInvalidParameter("You must include either logGroupIdentifier or logGroupName, "
                                   "but not both.")
    if name:
        group = backend.groups.get(name)
    else:
        ident = identifier[:-2] if identifier.endswith(":*") else identifier
        group = backend.groups.get(ident) or next(
            (g for g in backend.groups.values() if g.arn in (ident, ident + ":*")), None)
    if group is None:
        from moto.logs.exceptions import ResourceNotFoundException

        raise ResourceNotFoundException()
    return group


def filter_log_events(self: Any) -> str:
    get = self._get_param
    group = _logs_find_group(self.logs_backend, get("logGroupName"), get("logGroupIdentifier"))
    names, prefix = get("logStreamNames"), get("logStreamNamePrefix")
    if names and prefix:
        # The reference: "If you specify a value for both logStreamNamePrefix and
        # logStreamNames, the action returns an InvalidParameterException error."
        raise LogsInvalidParameter("logStreamNames and logStreamNamePrefix are mutually exclusive.")
    start, end = get("startTime"), get("endTime")
    limit = get("limit") or _LOGS_PAGE_EVENTS
    if limit > _LOGS_PAGE_EVENTS:
        raise LogsInvalidParameter(constraint="Member must have value less than or equal to 10000",
                                   parameter="limit", value=limit)
    try:
        pattern = LogsPattern(get("filterPattern"))
    except LogsPatternError:
        # Wording unconfirmed.
        raise LogsInvalidParameter(f"Invalid filter pattern: {get('filterPattern')}")
    head = get("startFromHead")
    head = True if head is None else bool(head)
    cursor = None
    token = get("nextToken")
    if token:
        decoded = _logs_untoken(token)
        if decoded is None:
            # moto's note: "AWS returns an empty list if it receives an invalid token."
            return json.dumps({"events": [], "searchedLogStreams": []})
        _, head, cursor = decoded  # "the nextToken determines the sort direction"
    streams = [s for n, s in group.streams.items()
               if (not names or n in names) and (not prefix or n.startswith(prefix))]
    events = []
    for stream in streams:
        for event in stream.events:
            if start is not None and event.timestamp < start:
                continue
            if end is not None and event.timestamp > end:
                continue
            if not pattern.matches(event.message):
                continue
            events.append(((event.timestamp, event.ingestion_time, int(event.event_id)),
                           stream.log_stream_name, event))
    # "sorted by event timestamp, the timestamp when the event was ingested, and the ID of
    # the PutLogEvents request", interleaving every stream.
    events.sort(key=lambda e: e[0], reverse=not head)
    if cursor is not None:
        key = tuple(cursor)
        events = [e for e in events if (e[0] > key if head else e[0] < key)]
    page, size = [], 0
    for sort_key, stream_name, event in events:
        cost = len(event.message.encode("utf-8")) + _LOGS_EVENT_OVERHEAD
        if len(page) >= limit or (page and size + cost > _LOGS_PAGE_BYTES):
            break
        size += cost
        page.append((sort_key, stream_name, event))
    result: dict[str, Any] = {
        "events": [{"logStreamName": s, "timestamp": e.timestamp, "message": e.message,
                    "ingestionTime": e.ingestion_time, "eventId": str(e.event_id)}
                   for _, s, e in page],
        "searchedLogStreams": [{"logStreamName": s.log_stream_name, "searchedCompletely": True}
                               for s in streams],
    }
    if len(page) < len(events):
        result["nextToken"] = logs_token(group.name, head, list(page[-1][0]))
    return json.dumps(result)


_orig_log_group_create_stream = logs_models.LogGroup.create_log_stream


def _log_group_create_stream(self: Any, log_stream_name: str) -> None:
    if log_stream_name in self.streams:
        # moto: "The specified log group already exists".  Wording unconfirmed.
        raise LogsClientError("ResourceAlreadyExistsException", "The specified log stream already exists")
    _orig_log_group_create_stream(self, log_stream_name)


def apply_logs_patches() -> None:
    LogsResponse.filter_log_events = filter_log_events
    logs_models.LogGroup.create_log_stream = _log_group_create_stream


# ---------------------------------------------------------------------------
# Part 2: call recorder (WSGI middleware in front of moto)
# ---------------------------------------------------------------------------

# SigV4 signing name -> botocore model(s) whose requestUri templates to try.
# apigatewayv2 signs as "apigateway" (shared with the v1 REST API service).
_REST_MODELS = {
    "apigateway": ("apigatewayv2", "apigateway"),
    "lambda": ("lambda",),
    "execute-api": ("apigatewaymanagementapi",),
}

_READ_ONLY_PREFIXES = ("Get", "List", "Describe", "Head")
# Reads whose names do not say so (they were recorded as mutating).
_READ_ONLY_OPERATIONS = ("FilterLogEvents", "StartLiveTail")


class _UriTemplate:
    """One botocore operation's http.method + http.requestUri, compiled."""

    def __init__(self, name: str, method: str, request_uri: str):
        self.name = name
        self.method = method.upper()
        path, _, query = request_uri.partition("?")
        # "/?$" is appended below: a template's own trailing slash (Route 53's ".../rrset/")
        # must not be required, as SDKs may leave it out.
        path = path.rstrip("/")
        # Query part of a requestUri (e.g. "?versions" / "?x-id=Foo") = required params.
        self.required_query = [
            (k, v) for k, v in parse_qs(query, keep_blank_values=True).items()
        ]
        parts = re.split(r"(\{[^}]+\})", path)
        labels = [i for i, p in enumerate(parts) if p.startswith("{")]
        # The labels' names (e.g. "FunctionName"), in order: group i+1 of the patterns.
        self.label_names = [parts[i].strip("{}").rstrip("+") for i in labels]
        strict, lenient = [], []
        for i, part in enumerate(parts):
            if part.startswith("{"):
                greedy = part.endswith("+}")
                strict.append("(.+)" if greedy else "([^/]+)")
                # Lenient form: clients may not encode "/" in a final label (ARNs).
                lenient.append("(.+)" if greedy or i == labels[-1] else "([^/]+)")
            else:
                strict.append(re.escape(part))
                lenient.append(re.escape(part))
        self.strict = re.compile("^" + "".join(strict) + "/?$")
        self.lenient = re.compile("^" + "".join(lenient) + "/?$")
        self.specificity = (len(self.required_query), sum(len(p) for p in parts if not p.startswith("{")))

    def query_ok(self, query: dict[str, list[str]]) -> bool:
        for key, values in self.required_query:
            if key not in query:
                return False
            if values and values[0] and values[0] not in query[key]:
                return False
        return True


class _RestOperationMatcher:
    """Names rest-json/rest-xml operations from method + path via botocore models."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._templates: dict[str, list[_UriTemplate]] = {}
        self._loader: Any = None

    def _for_model(self, model_name: str) -> list[_UriTemplate]:
        with self._lock:
            if model_name not in self._templates:
                templates: list[_UriTemplate] = []
                try:
                    if self._loader is None:
                        from botocore.loaders import create_loader

                        self._loader = create_loader()
                    model = self._loader.load_service_model(model_name, "service-2")
                    for name, op in model["operations"].items():
                        http = op.get("http", {})
                        if "requestUri" in http:
                            templates.append(_UriTemplate(name, http.get("method", "POST"), http["requestUri"]))
                except Exception:  # unknown model: nothing can be named
                    pass
                self._templates[model_name] = templates
            return self._templates[model_name]

    def labels(self, model_name: str, operation: str, raw_path: str,
               decoded_path: str) -> dict[str, str]:
        """The URI labels of `operation` in this path, decoded ({} if it does not match)."""
        for t in self._for_model(model_name):
            if t.name != operation:
                continue
            m = t.strict.match(raw_path)
            if m:
                return {n: unquote(v) for n, v in zip(t.label_names, m.groups())}
            m = t.lenient.match(decoded_path)
            if m:
                return dict(zip(t.label_names, m.groups()))
        return {}

    def model(self, model_name: str) -> dict[str, Any] | None:
        """botocore's service-2 model (cached by the loader), or None."""
        self._for_model(model_name)
        try:
            return self._loader.load_service_model(model_name, "service-2") if self._loader else None
        except Exception:
            return None

    def match(self, service: str, method: str, raw_path: str, decoded_path: str,
              query: dict[str, list[str]]) -> str | None:
        models = _REST_MODELS.get(service, (service,))
        # Pass 1: labels match single (still percent-encoded) path segments.
        # Pass 2: decoded path, final label allowed to swallow "/".
        for attr, path in (("strict", raw_path), ("lenient", decoded_path)):
            for model_name in models:
                hits = [
                    t for t in self._for_model(model_name)
                    if t.method == method and getattr(t, attr).match(path) and t.query_ok(query)
                ]
                if hits:
                    return max(hits, key=lambda t: t.specificity).name
        return None


# --- Settings (POST /_wsconn/config, or the launcher's command-line flags) ----

DEFAULT_SETTINGS: dict[str, Any] = {
    # Every AWS call sleeps this long (in its request thread) before it is
    # processed: a stand-in for a network round trip.
    "latency_ms": 0.0,
    # AWS's clocks (see shared/aws-notes.md); the *_s values are seconds.
    "realism": False,
    "table_creating_s": 6.0,
    "role_propagation_s": 6.0,
    "function_pending_s": 2.0,
    "function_update_s": 1.0,
    "certificate_record_s": 2.0,
    "certificate_release_s": 2.0,
    "dns_change_s": 2.0,
    # ACM: seconds from the validation CNAME's appearance to ISSUED (moto's
    # MOTO_ACM_VALIDATION_WAIT, which is also this setting's default; moto: 60).
    "acm_validation_wait_s": float(os.environ.get("MOTO_ACM_VALIDATION_WAIT", "60") or 60),
    # Refusals AWS makes and moto does not (duplicates, wrong error codes).
    "strict": False,
    # Seeded random faults, decided before the call takes effect.
    "seed": None,
    "throttle_rate": 0.0,
    "error_rate": 0.0,
    "chaos_exclude": [],
    # When set ({"status", "content_type", "body", "headers"}), every AWS call gets this
    # response instead: the endpoint is not AWS at all (a proxy, a wrong --endpoint-url).
    "not_aws": None,
}

# A response that is not an AWS protocol answer (setting "not_aws", a queued fault's
# "raw"): an HTML 404 page unless told otherwise.
_RAW_DEFAULTS = {"status": 404, "content_type": "text/html",
                 "body": "<!doctype html><html><head><title>404 Not Found</title></head>"
                         "<body><h1>Not Found</h1><p>The requested URL was not found on this "
                         "server.</p></body></html>",
                 "headers": {}}


def raw_spec(value: Any, what: str) -> dict[str, Any]:
    """A validated raw-response spec with defaults filled in; ValueError if malformed."""
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be an object with status, content_type, body, headers")
    unknown = sorted(set(value) - set(_RAW_DEFAULTS))
    if unknown:
        raise ValueError(f"{what}: unknown key(s) {unknown}; known: {sorted(_RAW_DEFAULTS)}")
    spec = {**_RAW_DEFAULTS, **value}
    status = spec["status"]
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(f"{what}.status must be an HTTP status (100-599), got {status!r}")
    if not isinstance(spec["content_type"], str) or not isinstance(spec["body"], str):
        raise ValueError(f"{what}.content_type and {what}.body must be strings")
    headers = spec["headers"]
    if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise ValueError(f"{what}.headers must be an object of strings")
    return spec


def raw_response(spec: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body) of a raw (non-AWS) answer."""
    body = spec["body"].encode()
    headers = [("Content-Type", spec["content_type"])] + list(spec["headers"].items())
    headers.append(("Content-Length", str(len(body))))
    return spec["status"], headers, body

_NON_NEGATIVE = ("latency_ms", "table_creating_s", "role_propagation_s",
                 "function_pending_s", "function_update_s", "certificate_record_s",
                 "certificate_release_s", "dns_change_s", "acm_validation_wait_s")
_RATES = ("throttle_rate", "error_rate")


def apply_moto_settings(settings: dict[str, Any]) -> None:
    """Settings that moto itself reads: ACM's validation wait (moto reads
    settings.ACM_VALIDATION_WAIT, set from MOTO_ACM_VALIDATION_WAIT at import, at every
    certificate check, so a new value counts from the next call on)."""
    from moto import settings as moto_settings

    moto_settings.ACM_VALIDATION_WAIT = settings["acm_validation_wait_s"]


def merge_settings(current: dict[str, Any], update: Any) -> dict[str, Any]:
    """Returns current + update, validated; raises ValueError with a readable message."""
    if not isinstance(update, dict):
        raise ValueError("config must be a JSON object")
    unknown = sorted(set(update) - set(DEFAULT_SETTINGS))
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; known: {sorted(DEFAULT_SETTINGS)}")
    merged = dict(current)
    for key, value in update.items():
        if key in _NON_NEGATIVE or key in _RATES:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{key} must be a non-negative number, got {value!r}")
            if key in _RATES and value > 1:
                raise ValueError(f"{key} must be a fraction in [0, 1], got {value!r}")
            value = float(value)
        elif key in ("realism", "strict"):
            if not isinstance(value, bool):
                raise ValueError(f"{key} must be true or false, got {value!r}")
        elif key == "seed":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"seed must be an integer or null, got {value!r}")
        elif key == "chaos_exclude":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError("chaos_exclude must be a list of operation names")
            value = list(value)
        elif key == "not_aws":
            if value is not None:
                value = raw_spec(value, "not_aws")
        merged[key] = value
    if merged["throttle_rate"] + merged["error_rate"] > 1:
        raise ValueError("throttle_rate + error_rate must not exceed 1")
    return merged


# --- AWS errors in each protocol's wire format --------------------------------
# The SDKs parse errors per protocol:
#   REST-JSON (apigateway v2, lambda): code from the x-amzn-ErrorType header,
#       message from the body's "message" (or "Message");
#   JSON 1.0 / 1.1 (dynamodb, logs, acm): code from the body's "__type" (the part
#       after '#'), message from "message";
#   awsQuery (iam, sts) and REST-XML (route53): XML <ErrorResponse><Error><Code>/<Message>
#       (Route 53's namespace is https://route53.amazonaws.com/doc/2013-04-01/; it sends
#       InvalidChangeBatch in that form too since 2024, aws-sdk-kotlin PR 1435).

_JSON_PROTOCOLS = {"dynamodb": "application/x-amz-json-1.0",
                   "acm": "application/x-amz-json-1.1",
                   "logs": "application/x-amz-json-1.1"}
_QUERY_NAMESPACES = {"iam": "https://iam.amazonaws.com/doc/2010-05-08/",
                     "sts": "https://sts.amazonaws.com/doc/2011-06-15/"}
_XML_NAMESPACES = {**_QUERY_NAMESPACES, "route53": "https://route53.amazonaws.com/doc/2013-04-01/"}
_DDB_TYPE_PREFIX = "com.amazonaws.dynamodb.v20120810#"


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def aws_error(service: str, code: str, message: str, status: int) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body) of an AWS error as `service` sends it on the wire."""
    request_id = str(uuid.uuid4())
    if service in _XML_NAMESPACES:
        kind = "Receiver" if status >= 500 else "Sender"
        body = (
            f'<ErrorResponse xmlns="{_XML_NAMESPACES[service]}">'
            f"<Error><Type>{kind}</Type><Code>{xml_escape(code)}</Code>"
            f"<Message>{xml_escape(message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    elif service in _JSON_PROTOCOLS:
        type_ = _DDB_TYPE_PREFIX + code if service == "dynamodb" else code
        body = json.dumps({"__type": type_, "message": message}).encode()
        headers = [("Content-Type", _JSON_PROTOCOLS[service]),
                   ("x-amzn-RequestId", request_id), ("x-amzn-ErrorType", code)]
    else:  # REST-JSON, and the fallback for anything else
        payload: dict[str, Any] = {"message": message, "Message": message}
        if service == "lambda":
            payload["Type"] = "Service" if status >= 500 else "User"
        elif service not in ("apigateway", "execute-api"):
            payload["__type"] = code
        body = json.dumps(payload).encode()
        headers = [("Content-Type", "application/json"),
                   ("x-amzn-RequestId", request_id), ("x-amzn-ErrorType", code)]
    headers.append(("Content-Length", str(len(body))))
    return status, headers, body


# Throttling as each service answers it (code, HTTP status, message).
_THROTTLE = {
    "apigateway": ("TooManyRequestsException", 429, "Too Many Requests"),
    "lambda": ("TooManyRequestsException", 429, "Rate exceeded"),
    "dynamodb": ("ThrottlingException", 400, "Rate of requests exceeds the allowed throughput."),
    "logs": ("ThrottlingException", 400, "Rate exceeded"),
    "iam": ("Throttling", 400, "Rate exceeded"),
    "sts": ("Throttling", 400, "Rate exceeded"),
    # ACM's model has ThrottlingException; Route 53 answers "Throttling: Rate exceeded"
    # (status 400) as seen in terraform-provider-aws reports.
    "acm": ("ThrottlingException", 400, "Rate exceeded"),
    "route53": ("Throttling", 400, "Rate exceeded"),
}
_SERVER_ERRORS = (
    ("InternalFailure", 500, "The request processing has failed because of an unknown error, exception or failure."),
    ("ServiceUnavailable", 503, "The request has failed due to a temporary failure of the server."),
)


# --- Realism bookkeeping ---------------------------------------------------------

_DDB_ITEM_OPS = ("PutItem", "GetItem", "DeleteItem", "UpdateItem", "Query", "Scan")
_DDB_BUSY_OPS = ("UpdateTable", "UpdateTimeToLive", "DeleteTable", "TagResource", "UntagResource")
_LAMBDA_UPDATES = ("UpdateFunctionCode", "UpdateFunctionConfiguration")
_API_ID_IN_PATH = re.compile(r"^/v2/apis/([^/]+)")
_API_ID_IN_ARN = re.compile(r"/apis/([^/]+)")
_FUNCTION_IN_PATH = re.compile(r"^/[0-9-]+/functions/([^/]+)")
_ACCOUNT_ID = "123456789012"


def _function_name(ref: str) -> str:
    """Function name from a name, a partial ARN or an ARN (qualifier dropped)."""
    ref = unquote(ref)
    if "function:" in ref:
        ref = ref.split("function:", 1)[1]
    return ref.split(":", 1)[0]


class _Clocks:
    """When realism-tracked resources were created / last updated (time.monotonic())."""

    def __init__(self) -> None:
        self.tables: dict[tuple[str, str], float] = {}       # (region, table) -> created
        self.roles: dict[str, float] = {}                     # role name -> created
        self.functions: dict[tuple[str, str], dict[str, Any]] = {}  # (region, fn) -> info
        self.versions: dict[tuple[str, str, str], float] = {}  # (region, fn, version) -> published
        self.certificates: dict[str, float] = {}              # certificate ARN -> requested
        self.api_busy: dict[str, int] = {}                    # api id -> accepted writes in flight


class _Call:
    """One AWS request as the middleware sees it."""

    def __init__(self, environ: dict[str, Any], body: bytes, record: dict[str, Any], region: str):
        self.environ = environ
        self.body = body
        self.record = record
        self.region = region
        self.new_version = False  # PublishVersion made a new version (set by _forward)
        self._params: dict[str, Any] | None = None

    @property
    def service(self) -> str:
        return self.record["service"]

    @property
    def operation(self) -> str:
        return self.record["operation"]

    @property
    def path(self) -> str:
        return self.record["path"]

    def params(self) -> dict[str, Any]:
        """The request's parameters: the JSON body, or the form of a query-protocol call."""
        if self._params is None:
            self._params = {}
            body = self.body
            if self.environ.get("HTTP_CONTENT_ENCODING", "").lower() == "gzip":
                try:
                    body = gzip.decompress(body)
                except OSError:
                    pass
            try:
                if self.service in _QUERY_NAMESPACES:
                    form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
                    form.update(parse_qs(self.environ.get("QUERY_STRING", ""), keep_blank_values=True))
                    self._params = {k: v[0] for k, v in form.items()}
                elif body:
                    parsed = json.loads(body)
                    if isinstance(parsed, dict):
                        self._params = parsed
            except ValueError:
                pass
        return self._params


class _Response:
    """A buffered response (status, headers, body), editable before it is sent."""

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def set_json(self, value: Any) -> None:
        self.body = json.dumps(value).encode()
        names = {k.lower() for k, _ in self.headers}
        self.headers = [(k, v) for k, v in self.headers
                        if k.lower() not in ("content-length", "x-amz-crc32", "transfer-encoding")]
        self.headers.append(("Content-Length", str(len(self.body))))
        if "x-amz-crc32" in names:  # DynamoDB's checksum (botocore verifies it)
            self.headers.append(("x-amz-crc32", str(zlib.crc32(self.body))))


# --- Strict mode: the published constraints (botocore's models) --------------------
# AWS's front end (Coral) checks every request against the service model before the
# service sees it, and answers one error that lists every violation:
#   "2 validation errors detected: Value 'x y' at 'roleName' failed to satisfy
#    constraint: Member must satisfy regular expression pattern: [\w+=,.@-]+; Value ..."
# (seen in the wild for IAM, Lambda, DynamoDB and CloudWatch Logs; e.g. covidatlas/li
# PR 575: "1 validation error detected: Value '3000' at 'timeout' failed to satisfy
# constraint: Member must have value less than or equal to 900").  The code is the
# service's own: IAM/STS ValidationError, Lambda/DynamoDB ValidationException, Logs
# InvalidParameterException, API Gateway BadRequestException.  moto 5.2.5 checks almost
# none of these.  The constraints come from the same botocore models the SDKs are built
# from (min/max length or value, pattern, enum); API Gateway v2's model carries its
# lengths only in shape names ("StringWithLengthBetween1And128"), read from there.

try:  # Java's \p{L} etc.; `regex` comes with moto[server] (through cfn-lint)
    import regex as _java_re
except ImportError:  # pragma: no cover - then patterns with \p{..} are not checked
    _java_re = None

_VALIDATION_CODES = {"iam": "ValidationError", "sts": "ValidationError", "acm": "ValidationException",
                     "route53": "InvalidInput",
                     "lambda": "ValidationException", "dynamodb": "ValidationException",
                     "logs": "InvalidParameterException", "apigateway": "BadRequestException"}
_V2_LENGTH_IN_NAME = re.compile(r"^(?:String|Uri)WithLengthBetween(\d+)And(\d+)$")
_JAVA_CLASS_ESCAPES = {"w": "A-Za-z0-9_", "d": "0-9", "s": " \\t\\n\\x0B\\f\\r"}


def _java_pattern(pattern: str) -> Any:
    r"""Compiles a Java regex (botocore's "pattern") for full matching, or None.

    Java's \w, \d and \s are ASCII-only unless asked otherwise; \p{L}, \p{Z}, \p{N} are
    Unicode categories (Python's `regex` module has them; `re` does not)."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if nxt in _JAVA_CLASS_ESCAPES:
                body = _JAVA_CLASS_ESCAPES[nxt]
                out.append(body if in_class else f"[{body}]")
            elif nxt in "WDS" and not in_class:
                out.append(f"[^{_JAVA_CLASS_ESCAPES[nxt.lower()]}]")
            else:
                out.append(pattern[i:i + 2])
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
            out.append(ch)
            i += 1
            if i < len(pattern) and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < len(pattern) and pattern[i] == "]":  # a literal ] first in the class
                out.append("\\]")
                i += 1
            continue
        if ch == "]" and in_class:
            in_class = False
        out.append(ch)
        i += 1
    translated = "".join(out)
    engine = _java_re if _java_re is not None else (None if "\\p{" in translated else re)
    if engine is None:
        return None
    try:
        return engine.compile(translated)
    except Exception:
        return None


def _java_len(value: str) -> int:
    """A string's length as Java counts it (UTF-16 code units)."""
    return len(value.encode("utf-16-le")) // 2


def _show(value: Any) -> str:
    """A value as Java's toString prints it in Coral's messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_show(k)}={_show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def validation_message(errors: list[str]) -> str:
    n = len(errors)
    return f"{n} validation error{'s' if n != 1 else ''} detected: " + "; ".join(errors)


def coral_error(value: Any, path: str, constraint: str) -> str:
    return f"Value '{_show(value)}' at '{path}' failed to satisfy constraint: {constraint}"


def _error_path(error: str) -> str:
    m = re.search(r"' at '([^']*)' failed to satisfy constraint", error)
    return m.group(1) if m else error


class _ModelValidator:
    """Checks a request's members against botocore's model of the operation."""

    def __init__(self, matcher: "_RestOperationMatcher"):
        self._matcher = matcher
        self._patterns: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _pattern(self, pattern: str) -> Any:
        with self._lock:
            if pattern not in self._patterns:
                self._patterns[pattern] = _java_pattern(pattern)
            return self._patterns[pattern]

    @staticmethod
    def _bounds(name: str, shape: dict[str, Any]) -> tuple[Any, Any]:
        lo, hi = shape.get("min"), shape.get("max")
        m = _V2_LENGTH_IN_NAME.match(name)
        if m and lo is None and hi is None:
            lo, hi = int(m.group(1)), int(m.group(2))
        return lo, hi

    def _scalar_constraints(self, name: str, shape: dict[str, Any], value: Any) -> list[str]:
        """The constraints `value` breaks, as Coral words them."""
        broken: list[str] = []
        kind = shape["type"]
        lo, hi = self._bounds(name, shape)
        if kind == "string" and isinstance(value, str):
            length = _java_len(value)
            if hi is not None and length > hi:
                broken.append(f"Member must have length less than or equal to {hi}")
            if lo is not None and length < lo:
                broken.append(f"Member must have length greater than or equal to {lo}")
            if "pattern" in shape:
                compiled = self._pattern(shape["pattern"])
                if compiled is not None and not compiled.fullmatch(value):
                    broken.append(f"Member must satisfy regular expression pattern: {shape['pattern']}")
            if "enum" in shape and value not in shape["enum"]:
                broken.append(f"Member must satisfy enum value set: [{', '.join(shape['enum'])}]")
        elif kind in ("integer", "long") and isinstance(value, int) and not isinstance(value, bool):
            if hi is not None and value > hi:
                broken.append(f"Member must have value less than or equal to {hi}")
            if lo is not None and value < lo:
                broken.append(f"Member must have value greater than or equal to {lo}")
        return broken

    def _walk(self, shapes: dict[str, Any], name: str, value: Any, path: str,
              errors: list[str]) -> None:
        shape = shapes.get(name)
        if shape is None or value is None:
            return
        kind = shape["type"]
        if kind == "structure":
            if not isinstance(value, dict):
                return
            for member, ref in shape.get("members", {}).items():
                key = ref.get("locationName", member)
                if key in value:
                    sub = member[:1].lower() + member[1:]
                    self._walk(shapes, ref["shape"], value[key], f"{path}.{sub}" if path else sub,
                               errors)
        elif kind == "list":
            if not isinstance(value, list):
                return
            lo, hi = self._bounds(name, shape)
            if hi is not None and len(value) > hi:
                errors.append(coral_error(value, path, f"Member must have length less than or equal to {hi}"))
            if lo is not None and len(value) < lo:
                errors.append(coral_error(value, path, f"Member must have length greater than or equal to {lo}"))
            for i, item in enumerate(value, 1):
                self._walk(shapes, shape["member"]["shape"], item, f"{path}.{i}.member", errors)
        elif kind == "map":
            if not isinstance(value, dict):
                return
            lo, hi = self._bounds(name, shape)
            if hi is not None and len(value) > hi:
                errors.append(coral_error(value, path, f"Member must have length less than or equal to {hi}"))
            if lo is not None and len(value) < lo:
                errors.append(coral_error(value, path, f"Member must have length greater than or equal to {lo}"))
            kname, vname = shape["key"]["shape"], shape["value"]["shape"]
            for side, sname, pick in (("key", kname, 0), ("value", vname, 1)):
                sshape = shapes.get(sname, {})
                broken: list[str] = []
                for item in value.items():
                    if sshape.get("type") in ("structure", "list", "map"):
                        self._walk(shapes, sname, item[1], f"{path}.{item[0]}", errors)
                        continue
                    for b in self._scalar_constraints(sname, sshape, item[pick]):
                        if b not in broken:
                            broken.append(b)
                if broken:
                    errors.append(coral_error(value, path, f"Map {side} must satisfy constraint: "
                                                           f"[{', '.join(broken)}]"))
        else:
            for b in self._scalar_constraints(name, shape, value):
                errors.append(coral_error(value, path, b))

    @staticmethod
    def _query_tree(shapes: dict[str, Any], name: str, form: dict[str, str], prefix: str) -> Any:
        """An awsQuery form (Tags.member.1.Key=...) as the nested value it flattens."""
        shape = shapes.get(name, {})
        kind = shape.get("type")
        if kind == "structure":
            out = {}
            for member, ref in shape.get("members", {}).items():
                key = ref.get("locationName", member)
                sub = _ModelValidator._query_tree(shapes, ref["shape"], form,
                                                  f"{prefix}.{key}" if prefix else key)
                if sub is not None:
                    out[key] = sub
            return out if out or not prefix else None
        if kind == "list":
            flat = shape.get("flattened", False)
            items, i = [], 1
            while True:
                sub = _ModelValidator._query_tree(
                    shapes, shape["member"]["shape"], form,
                    f"{prefix}.{i}" if flat else f"{prefix}.member.{i}")
                if sub is None:
                    break
                items.append(sub)
                i += 1
            return items if items or prefix in form else None
        if kind == "map":
            out, i = {}, 1
            while f"{prefix}.entry.{i}.key" in form:
                out[form[f"{prefix}.entry.{i}.key"]] = _ModelValidator._query_tree(
                    shapes, shape["value"]["shape"], form, f"{prefix}.entry.{i}.value")
                i += 1
            return out or None
        if prefix not in form:
            return None
        raw = form[prefix]
        if kind in ("integer", "long"):
            try:
                return int(raw)
            except ValueError:
                return raw
        return raw

    def errors(self, call: "_Call") -> list[str]:
        """Every published constraint the call's input breaks (Coral's wording)."""
        service = call.service
        if service not in _VALIDATION_CODES:
            return []
        model_name = {"apigateway": "apigatewayv2" if call.path.startswith("/v2/") else "apigateway"
                      }.get(service, service)
        model = self._matcher.model(model_name)
        op = model and model["operations"].get(call.operation)
        if not op or "input" not in op:
            return []
        shapes = model["shapes"]
        input_name = op["input"]["shape"]
        protocol = model["metadata"].get("protocol")
        if protocol == "query":
            form = dict(call.params())
            value = self._query_tree(shapes, input_name, form, "")
        else:
            value = dict(call.params())
            if protocol in ("rest-json", "rest-xml"):  # rest-xml: URI and query members only
                labels = self._matcher.labels(model_name, call.operation,
                                              CallRecorder._raw_path(call.environ), call.path)
                query = parse_qs(call.environ.get("QUERY_STRING", ""))
                for member, ref in shapes[input_name].get("members", {}).items():
                    where, key = ref.get("location"), ref.get("locationName", member)
                    if where == "uri" and key in labels:
                        value[key] = labels[key]
                    elif where == "querystring" and key in query:
                        raw = query[key][0]
                        value[key] = int(raw) if shapes[ref["shape"]]["type"] == "integer" \
                            and raw.lstrip("-").isdigit() else raw
                    elif where in ("uri", "querystring", "header", "headers"):
                        value.pop(key, None)
        errors: list[str] = []
        self._walk(shapes, input_name, value, "", errors)
        return errors


# --- Strict mode: what the services check beyond their models ---------------------

# Lambda's reserved environment variables (docs.aws.amazon.com/lambda/latest/dg/
# configuration-envvars.html, "Defined runtime environment variables": "The keys for
# these environment variables are reserved and cannot be set in your function
# configuration").  Not reserved there, so allowed: TZ, LANG, PATH, LD_LIBRARY_PATH,
# NODE_PATH, PYTHONPATH, AWS_LAMBDA_EXEC_WRAPPER, AWS_XRAY_CONTEXT_MISSING,
# AWS_XRAY_DAEMON_ADDRESS, AWS_LAMBDA_NODEJS_*...
_LAMBDA_RESERVED_ENV = (
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
)
# A direct upload: the request may not exceed 69905067 bytes (50 MiB of zip, base64-
# encoded); unzipped, the code may not exceed 250 MiB.
_LAMBDA_MAX_REQUEST = 69905067
_LAMBDA_MAX_UNZIPPED = 262144000
# CloudWatch Logs retention: the only values PutRetentionPolicy takes (the model's Days
# shape documents them; it has no enum).
_LOGS_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
                        1827, 2192, 2557, 2922, 3288, 3653)
# WebSocket identity sources (the AWS::ApiGatewayV2::Authorizer IdentitySource doc, also in
# CDK's WebSocketLambdaAuthorizerProps): route.request.header|querystring.NAME,
# stageVariables.NAME, context.NAME.
_WS_IDENTITY_SOURCE = re.compile(
    r"^(?:route\.request\.(?:header|querystring)|stageVariables|context)\.[A-Za-z0-9._-]+$")
_LOG_GROUP_ARN = re.compile(r"^arn:[^:]+:logs:[^:]+:\d{12}:log-group:([\.\-_/#A-Za-z0-9]+)$")
_CONTEXT_REQUEST_ID = re.compile(r"\$context\.(?:requestId|extendedRequestId)(?![A-Za-z0-9_])")
_CW_ROLE_MISSING = "CloudWatch Logs role ARN must be set in account settings to enable logging"
_CW_ROLE_REFUSED = "The role ARN does not have required permissions set to API Gateway"


def _stage_wants_logging(params: dict[str, Any]) -> bool:
    """Whether a CreateStage / UpdateStage body turns on logging of any kind."""
    access = params.get("accessLogSettings") or {}
    if access.get("destinationArn") or access.get("format"):
        return True
    settings = [params.get("defaultRouteSettings") or {}]
    settings += [v for v in (params.get("routeSettings") or {}).values() if isinstance(v, dict)]
    return any(s.get("loggingLevel") in ("ERROR", "INFO") or s.get("dataTraceEnabled") is True
               for s in settings)


def _trusts(document: Any, service: str) -> bool:
    """Whether a trust policy lets `service` (e.g. apigateway.amazonaws.com) assume the role."""
    if isinstance(document, str):
        try:
            document = json.loads(unquote(document))
        except ValueError:
            return False
    statements = (document or {}).get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    for st in statements:
        actions = st.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        principal = (st.get("Principal") or {})
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        services = [services] if isinstance(services, str) else services
        if st.get("Effect") == "Allow" and service in services and \
                any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions):
            return True
    return False


class CallRecorder:
    """WSGI middleware in front of moto: records each AWS call, serves /_wsconn/*,
    injects queued and random faults, adds latency and imitates AWS's clocks."""

    def __init__(self, app: Callable[..., Iterable[bytes]],
                 settings: dict[str, Any] | None = None):
        self.app = app
        self._lock = threading.Lock()
        # moto's backends are not written for concurrent requests (dicts iterated
        # while another thread inserts); one call at a time goes through moto.
        # Latency waits happen outside this lock, so calls still overlap.
        self._backend_lock = threading.Lock()
        self._calls: list[dict[str, Any]] = []
        self._rest = _RestOperationMatcher()
        self._validator = _ModelValidator(self._rest)
        self._faults: list[dict[str, Any]] = []
        self._settings = merge_settings(DEFAULT_SETTINGS, settings or {})
        apply_moto_settings(self._settings)
        self._rng = random_module.Random(self._settings["seed"])
        self._clocks = _Clocks()

    # -- control endpoints --
    def _control(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if path == "/_wsconn/health" and method in ("GET", "HEAD"):
            return self._reply(start_response, "200 OK", b"ok", "text/plain")
        if path == "/_wsconn/calls" and method == "GET":
            with self._lock:
                body = json.dumps(self._calls).encode()
            return self._reply(start_response, "200 OK", body, "application/json")
        if path == "/_wsconn/stats" and method == "GET":
            with self._lock:
                body = json.dumps(self._stats()).encode()
            return self._reply(start_response, "200 OK", body, "application/json")
        if path == "/_wsconn/config" and method == "GET":
            with self._lock:
                body = json.dumps(self._settings).encode()
            return self._reply(start_response, "200 OK", body, "application/json")
        if path == "/_wsconn/config" and method == "POST":
            try:
                update = json.loads(self._buffer_body(environ) or b"{}")
                with self._lock:
                    self._settings = merge_settings(self._settings, update)
                    apply_moto_settings(self._settings)
                    if "seed" in update:
                        self._rng.seed(self._settings["seed"])
                    body = json.dumps(self._settings).encode()
            except ValueError as exc:
                return self._reply(start_response, "400 Bad Request",
                                   json.dumps({"error": str(exc)}).encode(), "application/json")
            return self._reply(start_response, "200 OK", body, "application/json")
        if path == "/_wsconn/lambda-code" and method == "GET":
            # The deployment package a function (or a version) holds, as uploaded: tests
            # read the zip's entries back (moto keeps ZipFile uploads in memory).
            query = parse_qs(environ.get("QUERY_STRING", ""))
            name = (query.get("function") or [""])[0]
            qualifier = (query.get("qualifier") or [None])[0]
            region = (query.get("region") or ["us-east-1"])[0]
            try:
                from moto.awslambda.models import lambda_backends
                with self._backend_lock:
                    fn = lambda_backends[_ACCOUNT_ID][region]._lambdas.get_function_by_name_or_arn_with_qualifier(
                        name, qualifier)
                    body = bytes(fn.code_bytes)
            except Exception as exc:  # noqa: BLE001 - a test's question, answered
                return self._reply(start_response, "404 Not Found",
                                   json.dumps({"error": str(exc)}).encode(), "application/json")
            return self._reply(start_response, "200 OK", body, "application/zip")
        if path == "/_wsconn/faults" and method == "POST":
            try:
                faults = [dict(f) for f in json.loads(self._buffer_body(environ) or b"[]")]
                for f in faults:
                    if not isinstance(f.get("operation"), str):
                        raise ValueError("every fault needs an \"operation\"")
                    if "raw" in f:
                        f["raw"] = raw_spec(f["raw"], "raw")
                    elif not f.get("swallow") and not isinstance(f.get("code"), str):
                        raise ValueError("a fault needs a \"code\" (or \"raw\", or \"swallow\")")
            except (ValueError, TypeError) as exc:
                return self._reply(start_response, "400 Bad Request",
                                   json.dumps({"error": str(exc)}).encode(), "application/json")
            with self._lock:
                self._faults.extend(faults)
            return self._reply(start_response, "200 OK", b"{}", "application/json")
        if path == "/_wsconn/faults/reset" and method == "POST":
            with self._lock:
                self._faults.clear()
            return self._reply(start_response, "200 OK", b"{}", "application/json")
        if path == "/_wsconn/calls/reset" and method == "POST":
            with self._lock:
                self._calls.clear()
            return self._reply(start_response, "200 OK", b"{}", "application/json")
        if path == "/_wsconn/reset" and method == "POST":
            with self._lock:
                self._calls.clear()
                self._faults.clear()
                busy = self._clocks.api_busy  # calls in flight still release their mark
                self._clocks = _Clocks()
                self._clocks.api_busy = busy
                self._rng.seed(self._settings["seed"])
            return self._reply(start_response, "200 OK", b"{}", "application/json")
        return self._reply(start_response, "404 Not Found", b"not found", "text/plain")

    @staticmethod
    def _reply(start_response: Any, status: str, body: bytes, ctype: str) -> Iterable[bytes]:
        start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
        return [body]

    def _stats(self) -> dict[str, int]:
        """Counts, and the number of sequential round-trip levels (lock held)."""
        calls = self._calls
        return {
            "calls": len(calls),
            "mutating": sum(1 for c in calls if c["mutating"]),
            "levels": round_trip_levels(calls),
            "faults": sum(1 for c in calls if "fault" in c),
        }

    # -- recording --
    @staticmethod
    def _buffer_body(environ: dict[str, Any]) -> bytes:
        """Read the body and put an identical, re-readable copy back for moto."""
        stream = environ.get("wsgi.input")
        if stream is None:
            return b""
        length = environ.get("CONTENT_LENGTH")
        if length:
            try:
                body = stream.read(int(length))
            except ValueError:
                body = b""
        elif environ.get("wsgi.input_terminated"):  # chunked upload
            body = stream.read()
        else:
            body = b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return body

    @staticmethod
    def _raw_path(environ: dict[str, Any]) -> str:
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        if raw:
            raw = urlsplit(raw).path if "://" in raw else raw.split("?", 1)[0]
            return raw or "/"
        return quote(environ.get("PATH_INFO", "") or "/")

    _SCOPE = re.compile(r"Credential=[^/,\s]+/[^/]+/([^/]+)/([^/]+)/aws4_request")

    def _describe(self, environ: dict[str, Any], body: bytes) -> dict[str, Any]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO", "") or "/"
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)

        service = "unknown"
        m = self._SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if m:
            service = m.group(2)

        operation = None
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target:  # JSON protocols: DynamoDB_20120810.ListTables, Logs_20140328.X
            operation = target.split(".", 1)[-1]
        if not operation and query.get("Action"):  # query protocol via URL
            operation = query["Action"][0]
        if not operation and body and environ.get("CONTENT_TYPE", "").startswith(
                "application/x-www-form-urlencoded"):
            text = body
            if environ.get("HTTP_CONTENT_ENCODING", "").lower() == "gzip":
                try:
                    text = gzip.decompress(body)
                except OSError:
                    pass
            form = parse_qs(text.decode("utf-8", "replace"), keep_blank_values=True)
            if form.get("Action"):
                operation = form["Action"][0]
        if not operation:  # rest-json / rest-xml
            operation = self._rest.match(service, method, self._raw_path(environ), path, query)

        if operation:
            mutating = not (operation.startswith(_READ_ONLY_PREFIXES)
                            or operation in _READ_ONLY_OPERATIONS)
        else:
            mutating = method not in ("GET", "HEAD")
            operation = f"UNKNOWN {method} {path}"
        return {"service": service, "operation": operation, "method": method,
                "path": path, "mutating": mutating}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/_wsconn" or path.startswith("/_wsconn/"):
            return self._control(environ, start_response)
        if path.startswith("/moto-api"):
            return self.app(environ, start_response)

        start = time.monotonic()
        body = self._buffer_body(environ)
        try:
            record = self._describe(environ, body)
        except Exception as exc:  # never let the recorder break a call
            record = {"service": "unknown", "method": environ.get("REQUEST_METHOD", ""),
                      "path": path, "operation": f"UNKNOWN recorder error: {exc}",
                      "mutating": True}
        record["start"] = start
        m = self._SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        call = _Call(environ, body, record, m.group(1) if m else "us-east-1")

        busy_api = None
        with self._lock:
            self._calls.append(record)
            settings = self._settings
            conflict = False
            if settings["realism"]:
                api_id = self._api_written(call)
                if api_id is not None:
                    if self._clocks.api_busy.get(api_id, 0) > 0:
                        conflict = True
                    else:
                        busy_api = api_id
                        self._clocks.api_busy[api_id] = 1
            clocks = self._clocks
        try:
            if settings["latency_ms"] > 0:
                time.sleep(settings["latency_ms"] / 1000.0)
            if conflict:
                resp = self._fault(call, "realism", "ConflictException", 409,
                                   "Unable to complete operation due to concurrent modification. "
                                   "Please try again later.")
            else:
                resp = self._process(call, settings, clocks)
        except Exception as exc:  # a bug here must still answer like AWS would
            resp = self._fault(call, "emulator", "InternalFailure", 500, f"emulator error: {exc!r}")
        finally:
            if busy_api is not None:
                with self._lock:
                    left = clocks.api_busy.get(busy_api, 1) - 1
                    if left > 0:
                        clocks.api_busy[busy_api] = left
                    else:
                        clocks.api_busy.pop(busy_api, None)
        with self._lock:
            record["status"] = resp.status
            record["end"] = time.monotonic()
        start_response(f"{resp.status} {_reason(resp.status)}", resp.headers)
        return [resp.body]

    def _fault(self, call: _Call, kind: str, code: str, status: int, message: str) -> _Response:
        """An injected error; the record says so ("fault": code, "fault_kind": kind)."""
        with self._lock:
            call.record["fault"] = code
            call.record["fault_kind"] = kind
        return _Response(*aws_error(call.service, code, message, status))

    def _raw(self, call: _Call, kind: str, spec: dict[str, Any]) -> _Response:
        """A non-AWS answer; the record says so ("fault": "NotAws", "fault_kind": kind)."""
        with self._lock:
            call.record["fault"] = "NotAws"
            call.record["fault_kind"] = kind
        return _Response(*raw_response(spec))

    def _process(self, call: _Call, settings: dict[str, Any], clocks: _Clocks) -> _Response:
        """Faults first (queued, then random), then moto with AWS's clocks around it."""
        if settings["not_aws"] is not None:
            return self._raw(call, "not_aws", settings["not_aws"])
        with self._lock:
            queued = self._take_fault(call.operation)
            chaos = None
            if queued is None and call.operation not in settings["chaos_exclude"]:
                throttle, error = settings["throttle_rate"], settings["error_rate"]
                if throttle > 0 or error > 0:
                    draw = self._rng.random()
                    if draw < throttle:
                        chaos = ("throttle",) + _THROTTLE.get(
                            call.service, ("ThrottlingException", 400, "Rate exceeded"))
                    elif draw < throttle + error:
                        code, status, message = self._rng.choice(_SERVER_ERRORS)
                        chaos = ("error", code, status, message)
        if queued is not None and queued.get("swallow"):
            # A write AWS acknowledges but does not keep: 200 and "{}", moto untouched.
            with self._lock:
                call.record["fault"] = "Swallowed"
                call.record["fault_kind"] = "swallow"
            body = b"{}"
            return _Response(200, [("Content-Type", "application/x-amz-json-1.1"),
                                   ("Content-Length", str(len(body)))], body)
        if queued is not None and not queued.get("lost"):
            if "raw" in queued:
                return self._raw(call, "raw", queued["raw"])
            return self._fault(call, "queued", queued["code"], int(queued.get("status", 400)),
                               queued.get("message", ""))
        if chaos is not None:
            kind, code, status, message = chaos
            return self._fault(call, kind, code, status, message)

        with self._backend_lock:
            refusal = None
            now = time.monotonic()
            if settings["realism"]:
                refusal = self._realism_refusal(call, settings, clocks, now)
            if refusal is None and settings["strict"]:
                refusal = self._strict_refusal(call)
            if refusal is None:
                resp = self._forward(call)
                if resp.status < 300:
                    try:
                        self._after(call, resp)
                    except Exception as exc:  # never turn a done call into an error
                        sys.stderr.write(f"emulator: side effect of {call.operation} failed: {exc!r}\n")
                if settings["realism"] and resp.status < 300:
                    self._realism_after(call, resp, settings, clocks, time.monotonic())
        if refusal is not None:
            return self._fault(call, *refusal)
        if queued is not None:  # "lost": moto did it, the client hears an error
            if "raw" in queued:
                return self._raw(call, "lost", queued["raw"])
            return self._fault(call, "lost", queued["code"], int(queued.get("status", 500)),
                               queued.get("message", ""))
        return resp

    def _forward(self, call: _Call) -> _Response:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            captured["status"] = int(status.split(" ", 1)[0])
            captured["headers"] = list(headers)
            return lambda data: captured.setdefault("written", []).append(data)

        result = self.app(call.environ, capture)
        try:
            chunks = captured.get("written", []) + [bytes(c) for c in result]
        finally:
            close = getattr(result, "close", None)
            if close:
                close()
        headers = captured["headers"]
        # A private note from a gap filler (PublishVersion made a new version), never sent.
        call.new_version = any(k.lower() == "x-wsconn-new-version" for k, _ in headers)
        headers = [(k, v) for k, v in headers if k.lower() != "x-wsconn-new-version"]
        return _Response(captured["status"], headers, b"".join(chunks))

    def _take_fault(self, operation: str) -> dict[str, Any] | None:
        """Pops one use of the first queued fault for `operation` (lock held)."""
        for f in self._faults:
            if f["operation"] == operation and f.get("count", 1) > 0:
                f["count"] = f.get("count", 1) - 1
                return f
        return None

    # -- realism: AWS's clocks --
    @staticmethod
    def _api_written(call: _Call) -> str | None:
        """The API a mutating API Gateway v2 call changes (None for CreateApi etc.)."""
        if call.service != "apigateway" or not call.record["mutating"]:
            return None
        m = _API_ID_IN_PATH.match(call.path)
        if m:
            return m.group(1)
        if call.path.startswith("/v2/tags/"):
            m = _API_ID_IN_ARN.search(call.path)
            if m:
                return m.group(1)
        return None

    @staticmethod
    def _table_of(call: _Call) -> str | None:
        params = call.params()
        name = params.get("TableName")
        if not name and isinstance(params.get("ResourceArn"), str) and ":table/" in params["ResourceArn"]:
            name = params["ResourceArn"].split(":table/", 1)[1].split("/", 1)[0]
        return name if isinstance(name, str) else None

    @staticmethod
    def _function_of(call: _Call) -> str | None:
        if call.operation == "CreateFunction":
            name = call.params().get("FunctionName")
            return _function_name(name) if isinstance(name, str) else None
        m = _FUNCTION_IN_PATH.match(call.path)
        return _function_name(m.group(1)) if m else None

    @staticmethod
    def _qualifier_of(call: _Call) -> str | None:
        """The qualifier a Lambda call names: in the function name / ARN, or ?Qualifier=."""
        m = _FUNCTION_IN_PATH.match(call.path)
        derived = _split_qualified(m.group(1))[1] if m else None
        query = parse_qs(call.environ.get("QUERY_STRING", ""))
        return derived or (query.get("Qualifier") or [None])[0]

    @staticmethod
    def _after(call: _Call, resp: _Response) -> None:
        """What AWS does beside a successful call, in every mode.

        A stage whose execution logging is ERROR or INFO makes API Gateway create the
        log group API-Gateway-Execution-Logs_<api-id>/<stage> (no tags, no retention)
        when it first writes to it, if the account has a CloudWatch role.  The emulator
        makes it at the CreateStage / UpdateStage, so that destroy can be tested."""
        if call.service != "apigateway" or call.operation not in ("CreateStage", "UpdateStage"):
            return
        from moto.apigateway.models import apigateway_backends
        from moto.core import DEFAULT_ACCOUNT_ID as account
        from moto.logs.models import logs_backends

        stage = resp.json()
        m = _API_ID_IN_PATH.match(call.path)
        if not m or not isinstance(stage, dict) or not stage.get("stageName"):
            return
        settings = [stage.get("defaultRouteSettings") or {}]
        settings += [v for v in (stage.get("routeSettings") or {}).values() if isinstance(v, dict)]
        if not any(rs.get("loggingLevel") in ("ERROR", "INFO") for rs in settings):
            return
        if not apigateway_backends[account][call.region].account.cloudwatch_role_arn:
            return
        logs = logs_backends[account][call.region]
        name = f"API-Gateway-Execution-Logs_{m.group(1)}/{stage['stageName']}"
        if name not in logs.groups:
            logs.create_log_group(name, {})

    def _realism_refusal(self, call: _Call, s: dict[str, Any], clocks: _Clocks,
                         now: float) -> tuple[str, str, int, str] | None:
        """The error real AWS would answer at `now` instead of doing the call, if any."""
        op = call.operation
        if call.service == "apigateway" and op == "UpdateAccount":
            # API Gateway assumes the role when it is set: a role IAM has not yet
            # propagated is refused, like Lambda's (shared/aws-notes.md).
            for patch in call.params().get("patchOperations") or []:
                value = patch.get("value")
                if patch.get("path") == "/cloudwatchRoleArn" and isinstance(value, str) and value:
                    created = clocks.roles.get(value.rsplit("/", 1)[-1])
                    if created is not None and now - created < s["role_propagation_s"]:
                        return ("realism", "BadRequestException", 400, _CW_ROLE_REFUSED)
        if call.service == "dynamodb" and op in _DDB_BUSY_OPS + _DDB_ITEM_OPS:
            table = self._table_of(call)
            created = clocks.tables.get((call.region, table or ""))
            if created is not None and now - created < s["table_creating_s"]:
                if op in _DDB_BUSY_OPS:
                    return ("realism", "ResourceInUseException", 400,
                            f"Attempt to change a resource which is still in use: "
                            f"Table is being created: {table}")
                return ("realism", "ResourceNotFoundException", 400, "Requested resource not found")
        if call.service == "lambda":
            fn = self._function_of(call)
            info = clocks.functions.get((call.region, fn or ""))
            qualifier = self._qualifier_of(call)
            if op == "Invoke" and qualifier not in (None, "$LATEST"):
                # A published version is Pending for function_pending_s, like a new function.
                published = clocks.versions.get((call.region, fn or "", qualifier))
                if published is not None and now - published < s["function_pending_s"]:
                    return ("realism", "ResourceConflictException", 409,
                            "The operation cannot be performed at this time. "
                            "The function is currently in the following state: Pending")
                info = None  # $LATEST's state does not concern a version
            # PublishVersion "needs LastUpdateStatus Successful" (shared/aws-notes.md).
            if info is not None and op in _LAMBDA_UPDATES + ("Invoke", "PublishVersion"):
                if now - info["created"] < s["function_pending_s"]:
                    return ("realism", "ResourceConflictException", 409,
                            "The operation cannot be performed at this time. "
                            "The function is currently in the following state: Pending")
                updated = info.get("updated")
                if op != "Invoke" and updated is not None and now - updated < s["function_update_s"]:
                    return ("realism", "ResourceConflictException", 409,
                            "The operation cannot be performed at this time. "
                            f"An update is in progress for resource: {info['arn']}")
            if op in ("CreateFunction", "UpdateFunctionConfiguration"):
                role = call.params().get("Role")
                if isinstance(role, str) and role:
                    created = clocks.roles.get(role.rsplit("/", 1)[-1])
                    if created is not None and now - created < s["role_propagation_s"]:
                        return ("realism", "InvalidParameterValueException", 400,
                                "The role defined for the function cannot be assumed by Lambda.")
        if call.service == "acm" and op == "DeleteCertificate":
            # A certificate stays in use "for a while after the domain is deleted"
            # (shared/aws-notes.md; aws-cdk issue 36265).
            arn = call.params().get("CertificateArn")
            cert = _acm_certificate(arn if isinstance(arn, str) else None)
            released = getattr(cert, "_wsconn_released_at", None) if cert is not None else None
            if released is not None and now - released < s["certificate_release_s"]:
                return ("realism", "ResourceInUseException", 400,
                        f"Certificate {arn} in account {arn.split(':')[4]} is in use.")
        return None

    def _strict_refusal(self, call: _Call) -> tuple[str, str, int, str] | None:
        """Refusals real AWS makes and moto 5.2.5 does not (setting "strict"); reads
        moto's state, so it runs under the backend lock, right before moto would.
        In AWS's order: the request's size, then the model's constraints (one message
        for all of them), then the service's own checks."""
        op = call.operation
        if call.service == "lambda" and op in ("CreateFunction", "UpdateFunctionCode") \
                and len(call.body) > _LAMBDA_MAX_REQUEST:
            return ("strict", "RequestEntityTooLargeException", 413,
                    f"Request must be smaller than {_LAMBDA_MAX_REQUEST} bytes for the {op} operation")
        try:
            errors = self._validator.errors(call)
        except Exception as exc:  # a model this code does not understand: check nothing
            sys.stderr.write(f"emulator: could not validate {call.operation}: {exc!r}\n")
            errors = []
        seen = {_error_path(e) for e in errors}
        errors += [e for e in self._field_errors(call) if _error_path(e) not in seen]
        if errors:
            return ("strict", _VALIDATION_CODES[call.service], 400, validation_message(errors))
        for check in (self._strict_duplicates, self._strict_lambda, self._strict_apigateway,
                      self._strict_domains, self._strict_route53, self._strict_logs):
            refusal = check(call)
            if refusal is not None:
                return refusal
        return None

    @staticmethod
    def _field_errors(call: _Call) -> list[str]:
        """Limits the services enforce that their models do not carry (or carry looser)."""
        op, params, errors = call.operation, call.params(), []
        if call.service == "lambda" and op in ("CreateFunction", "UpdateFunctionConfiguration"):
            name = params.get("FunctionName")
            if op == "CreateFunction" and isinstance(name, str) and len(_function_name(name)) > 64:
                errors.append(coral_error(name, "functionName",
                                          "Member must have length less than or equal to 64"))
            # The model allows 32768 MB / 5400 s since Lambda Managed Instances; a function
            # without a capacity provider keeps 10240 MB and 900 s (cfn-lint PR 4685,
            # "verified against the live Lambda CreateFunction API").
            if not params.get("CapacityProviderConfig"):
                for member, limit in (("MemorySize", 10240), ("Timeout", 900)):
                    value = params.get(member)
                    if isinstance(value, int) and not isinstance(value, bool) and value > limit:
                        errors.append(coral_error(value, member[0].lower() + member[1:],
                                                  f"Member must have value less than or equal to {limit}"))
        elif call.service == "dynamodb" and op == "CreateTable":
            # The model's TableName takes ARNs too (1-1024); a new table's name is 3-255
            # characters from [a-zA-Z0-9_.-] (the DynamoDB naming rules).
            name = params.get("TableName")
            if isinstance(name, str):
                if len(name) > 255:
                    errors.append(coral_error(name, "tableName", "Member must have length less than or equal to 255"))
                if len(name) < 3:
                    errors.append(coral_error(name, "tableName", "Member must have length greater than or equal to 3"))
                if not re.fullmatch(r"[a-zA-Z0-9_.-]+", name):
                    errors.append(coral_error(name, "tableName",
                                              "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"))
        elif call.service == "apigateway" and op in ("CreateApiMapping", "UpdateApiMapping"):
            # "An API mapping key is at most 300 characters" (shared/aws-notes.md; the model's
            # SelectionKey carries no length).
            key = params.get("apiMappingKey")
            if isinstance(key, str) and len(key) > 300:
                errors.append(coral_error(key, "apiMappingKey",
                                          "Member must have length less than or equal to 300"))
        elif call.service == "logs" and op == "PutRetentionPolicy":
            days = params.get("retentionInDays")
            if isinstance(days, int) and days not in _LOGS_RETENTION_DAYS:
                errors.append(coral_error(days, "retentionInDays", "Member must satisfy enum value set: ["
                                          + ", ".join(str(d) for d in _LOGS_RETENTION_DAYS) + "]"))
        return errors

    @staticmethod
    def _strict_lambda(call: _Call) -> tuple[str, str, int, str] | None:
        """Lambda's own checks: reserved and oversized environments, unzipped size."""
        if call.service != "lambda":
            return None
        op, params = call.operation, call.params()
        if op in ("CreateFunction", "UpdateFunctionConfiguration"):
            variables = (params.get("Environment") or {}).get("Variables") or {}
            if isinstance(variables, dict):
                reserved = [k for k in variables if k in _LAMBDA_RESERVED_ENV]
                if reserved:
                    return ("strict", "InvalidParameterValueException", 400,
                            "Lambda was unable to configure your environment variables because "
                            "the environment variables you have provided contains reserved keys "
                            "that are currently not supported for modification. Reserved keys "
                            f"used in this request: {', '.join(reserved)}")
                measured = json.dumps(variables, separators=(",", ":"), ensure_ascii=False)
                if len(measured.encode()) > 4096:
                    return ("strict", "InvalidParameterValueException", 400,
                            "Lambda was unable to configure your environment variables because "
                            "the environment variables you have provided exceeded the 4KB limit. "
                            f"String measured: {measured}")
        if op in ("CreateFunction", "UpdateFunctionCode"):
            encoded = (params.get("Code") or {}).get("ZipFile") if op == "CreateFunction" \
                else params.get("ZipFile")
            if isinstance(encoded, str) and encoded:
                try:
                    with zipfile.ZipFile(io.BytesIO(base64.b64decode(encoded))) as z:
                        unzipped = sum(i.file_size for i in z.infolist())
                except Exception:  # not a zip: moto / AWS say so themselves
                    return None
                if unzipped > _LAMBDA_MAX_UNZIPPED:
                    return ("strict", "InvalidParameterValueException", 400,
                            f"Unzipped size must be smaller than {_LAMBDA_MAX_UNZIPPED} bytes")
        return None

    def _strict_apigateway(self, call: _Call) -> tuple[str, str, int, str] | None:
        """API Gateway's own checks: authorizers, stage logging and throttling, the
        account's CloudWatch role."""
        if call.service != "apigateway":
            return None
        from moto.apigateway.models import apigateway_backends
        from moto.apigatewayv2.models import apigatewayv2_backends
        from moto.core import DEFAULT_ACCOUNT_ID as account

        op, params = call.operation, call.params()
        account_settings = apigateway_backends[account][call.region].account
        if op == "UpdateAccount":
            for patch in params.get("patchOperations") or []:
                if patch.get("path") == "/cloudwatchRoleArn" and patch.get("op") != "remove" \
                        and patch.get("value"):
                    role = self._role_by_arn(patch["value"])
                    if role is None or not _trusts(role.assume_role_policy_document,
                                                   "apigateway.amazonaws.com"):
                        return ("strict", "BadRequestException", 400, _CW_ROLE_REFUSED)
            return None
        m = _API_ID_IN_PATH.match(call.path)
        api = apigatewayv2_backends[account][call.region].apis.get(m.group(1)) if m else None
        if api is None:
            return None  # moto answers NotFound itself
        if op in ("CreateRoute", "UpdateRoute") and params.get("authorizationType") == "CUSTOM":
            authorizer_id = params.get("authorizerId")
            if authorizer_id is None and op == "UpdateRoute":
                route = api.routes.get(call.path.rstrip("/").rsplit("/", 1)[-1])
                authorizer_id = route.authorizer_id if route is not None else None
            if not authorizer_id:
                # Wording unconfirmed.
                return ("strict", "BadRequestException", 400,
                        "AuthorizerId is required when AuthorizationType is CUSTOM")
            if authorizer_id not in api.authorizers:
                return ("strict", "NotFoundException", 404,
                        f"Invalid Authorizer identifier specified {authorizer_id}")
        elif op == "DeleteAuthorizer":
            authorizer = api.authorizers.get(unquote(call.path.rstrip("/").rsplit("/", 1)[-1]))
            users = [r.route_key for r in api.routes.values()
                     if authorizer is not None and r.authorizer_id == authorizer.id]
            if users:
                # AWS's words (anomalyco/sst issue 5586, an HTTP API's route).
                return ("strict", "ConflictException", 409,
                        f"Cannot delete authorizer '{authorizer.name}', is referenced in route: "
                        f"{users[0]}")
        elif op in ("CreateAuthorizer", "UpdateAuthorizer") and api.protocol_type == "WEBSOCKET":
            # Wordings unconfirmed; the rules are documented (REQUEST only for WebSocket
            # APIs; identity sources as _WS_IDENTITY_SOURCE).
            if params.get("authorizerType") not in (None, "REQUEST"):
                return ("strict", "BadRequestException", 400,
                        "WebSocket APIs support only REQUEST authorizers")
            for source in params.get("identitySource") or []:
                if not isinstance(source, str) or not _WS_IDENTITY_SOURCE.match(source):
                    return ("strict", "BadRequestException", 400,
                            f"Invalid identity source specified: {source}. For a WebSocket API "
                            "use route.request.header.<name>, route.request.querystring.<name>, "
                            "stageVariables.<name> or context.<name>")
        elif op in ("CreateStage", "UpdateStage"):
            keys = {r.route_key for r in api.routes.values()}
            for key in params.get("routeSettings") or {}:
                if key not in keys:
                    # AWS's words (terraform-aws-modules/terraform-aws-apigateway-v2 PR 80).
                    return ("strict", "NotFoundException", 404,
                            f"Unable to find Route by key {key} within the provided RouteSettings")
            if _stage_wants_logging(params) and not account_settings.cloudwatch_role_arn:
                return ("strict", "BadRequestException", 400, _CW_ROLE_MISSING)
            access = params.get("accessLogSettings") or {}
            arn, fmt = access.get("destinationArn"), access.get("format")
            if arn is not None and not _LOG_GROUP_ARN.match(arn):
                # Wording unconfirmed; AWS wants the log group's ARN without ":*".
                return ("strict", "BadRequestException", 400,
                        f"Invalid CloudWatch Logs log group ARN specified: {arn}. Use the log "
                        "group's ARN without a trailing :*")
            if fmt is not None:
                if "\n" in fmt.rstrip("\n"):
                    # AWS's words (ministryofjustice/cloud-platform-environments PR 12962).
                    return ("strict", "BadRequestException", 400,
                            "Access Log format must be single line, new line character is "
                            "allowed only at end of the format")
                if not _CONTEXT_REQUEST_ID.search(fmt):
                    # The rule is documented (botocore: "The format must include at least
                    # $context.requestId"; $context.extendedRequestId also does, aws-cdk PR
                    # 22591); the wording is unconfirmed.
                    return ("strict", "BadRequestException", 400,
                            "Access Log format must include at least $context.requestId or "
                            "$context.extendedRequestId")
            limits = account_settings.throttle_settings
            settings = [params.get("defaultRouteSettings") or {}]
            settings += [v for v in (params.get("routeSettings") or {}).values() if isinstance(v, dict)]
            for rs in settings:
                for member, limit in (("throttlingBurstLimit", limits["burstLimit"]),
                                      ("throttlingRateLimit", limits["rateLimit"])):
                    value = rs.get(member)
                    if isinstance(value, (int, float)) and not 0 <= value <= limit:
                        # Route throttling may not exceed the account's limits (API Gateway
                        # developer guide, throttling); the wording is unconfirmed.
                        return ("strict", "BadRequestException", 400,
                                f"{member} must be between 0 and the account-level limit "
                                f"{_show(limit)}, got {_show(value)}")
        return None

    @staticmethod
    def _strict_domains(call: _Call) -> tuple[str, str, int, str] | None:
        """API Gateway's rules for custom domain names: the certificate (ISSUED, in the
        API's region, us-east-1 for EDGE) and WebSocket APIs' limits (REGIONAL endpoint,
        TLS_1_2 policy, no REST or HTTP API on the same domain: shared/aws-notes.md,
        "Custom domain names", and the API Gateway developer guide's WebSocket custom
        domain page).  The wordings are unconfirmed."""
        if call.service != "apigateway" or not call.path.startswith("/v2/domainnames"):
            return None
        from moto.apigatewayv2.models import apigatewayv2_backends
        from moto.core import DEFAULT_ACCOUNT_ID as account

        backend = apigatewayv2_backends[account][call.region]
        op, params = call.operation, call.params()
        m = _DOMAIN_PATH.search(call.path)
        domain = backend.domain_names.get(unquote(m.group("domain"))) if m else None

        def websocket_mapped(exclude: str | None = None) -> bool:
            return domain is not None and any(
                mp.domain_name == domain.domain_name and mp.api_mapping_id != exclude
                and _api_protocol(backend, mp.api_id) == "WEBSOCKET"
                for mp in backend.api_mappings.values())

        def unfit_for_websocket(configs: list[dict[str, Any]]) -> str | None:
            for config in configs:
                if (config.get("endpointType") or "REGIONAL") != "REGIONAL" \
                        or (config.get("securityPolicy") or "TLS_1_2") != "TLS_1_2":
                    return ("WebSocket APIs support only the REGIONAL endpoint type and the "
                            f"TLS_1_2 security policy; the domain name has endpoint type "
                            f"{config.get('endpointType') or 'REGIONAL'} and security policy "
                            f"{config.get('securityPolicy') or 'TLS_1_2'}")
            return None

        if op in ("CreateDomainName", "UpdateDomainName"):
            configs = params.get("domainNameConfigurations") or []
            for config in configs:
                arn = config.get("certificateArn")
                if not arn:
                    continue
                want = "us-east-1" if config.get("endpointType") == "EDGE" else call.region
                parts = arn.split(":")
                if len(parts) < 6 or parts[3] != want:
                    return ("strict", "BadRequestException", 400,
                            f"The certificate {arn} must be in the region {want}")
                cert = _acm_certificate(arn)
                if cert is None:
                    return ("strict", "BadRequestException", 400,
                            f"Certificate {arn} not found")
                cert.check()
                if cert.status != "ISSUED":
                    return ("strict", "BadRequestException", 400,
                            f"Certificate {arn} is not ISSUED (its status is {cert.status})")
            if op == "UpdateDomainName" and configs and websocket_mapped():
                problem = unfit_for_websocket(configs)
                if problem:
                    return ("strict", "BadRequestException", 400, problem)
        elif op in ("CreateApiMapping", "UpdateApiMapping") and domain is not None:
            mapping_id = m.group("mapping") if m else None
            api_id = params.get("apiId")
            if not api_id and mapping_id in backend.api_mappings:
                api_id = backend.api_mappings[mapping_id].api_id
            protocol = _api_protocol(backend, api_id or "")
            if protocol is None:
                return None  # moto answers NotFound itself
            others = {_api_protocol(backend, mp.api_id) for mp in backend.api_mappings.values()
                      if mp.domain_name == domain.domain_name and mp.api_mapping_id != mapping_id}
            if (protocol == "WEBSOCKET" and others - {"WEBSOCKET"}) or \
                    (protocol != "WEBSOCKET" and "WEBSOCKET" in others):
                return ("strict", "BadRequestException", 400,
                        "A custom domain name with a WebSocket API mapping cannot also map REST "
                        "or HTTP APIs")
            if protocol == "WEBSOCKET":
                problem = unfit_for_websocket(domain.domain_name_configurations)
                if problem:
                    return ("strict", "BadRequestException", 400, problem)
        return None

    @staticmethod
    def _strict_route53(call: _Call) -> tuple[str, str, int, str] | None:
        """An alias to an API Gateway domain must name that domain's target and zone, as
        CreateDomainName returned them (Route 53 checks alias targets: "[Tried to create
        an alias that targets X., type A in zone Z, but the alias target name does not lie
        within the target zone, ... but that target was not found]", both seen in public
        reports)."""
        if call.service != "route53" or call.operation != "ChangeResourceRecordSets":
            return None
        import xml.etree.ElementTree as ElementTree

        from moto.apigatewayv2.models import apigatewayv2_backends
        from moto.core import DEFAULT_ACCOUNT_ID as account

        try:
            root = ElementTree.fromstring(call.body)
        except ElementTree.ParseError:
            return None
        local = lambda el: el.tag.rsplit("}", 1)[-1]  # noqa: E731
        errors = []
        for change in (el for el in root.iter() if local(el) == "Change"):
            fields = {local(el): (el.text or "").strip() for el in change.iter()}
            if fields.get("Action") not in ("CREATE", "UPSERT") or "AliasTarget" not in fields:
                continue
            target, zone, rtype = fields.get("DNSName", ""), fields.get("HostedZoneId", ""), fields.get("Type")
            m = re.match(r"^d-[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com\.?$", target.lower())
            if not m:
                continue
            shown = target if target.endswith(".") else target + "."
            configs = [c for d in apigatewayv2_backends[account][m.group(1)].domain_names.values()
                       for c in d.domain_name_configurations
                       if _dns_norm(c.get("apiGatewayDomainName", "")) == _dns_norm(target)]
            if not configs:
                errors.append(f"Tried to create an alias that targets {shown}, type {rtype} in zone "
                              f"{zone}, but that target was not found")
            elif not any(c.get("hostedZoneId") == zone for c in configs):
                errors.append(f"Tried to create an alias that targets {shown}, type {rtype} in zone "
                              f"{zone}, but the alias target name does not lie within the target zone")
        if errors:
            return ("strict", "InvalidChangeBatch", 400, "[" + ", ".join(errors) + "]")
        return None

    @staticmethod
    def _strict_logs(call: _Call) -> tuple[str, str, int, str] | None:
        """PutLogEvents: "For valid events (within 14 days in the past to 2 hours in future),
        the time span in a single batch cannot exceed 24 hours. Otherwise, the operation
        fails" (PutLogEvents reference; the wording is unconfirmed).  moto already refuses
        a batch out of chronological order and rejects too old / too new events."""
        if call.service != "logs" or call.operation != "PutLogEvents":
            return None
        now_ms = time.time() * 1000
        stamps = [e.get("timestamp") for e in call.params().get("logEvents") or []
                  if isinstance(e, dict) and isinstance(e.get("timestamp"), int)]
        valid = [t for t in stamps if now_ms - 14 * 86400000 <= t <= now_ms + 2 * 3600000]
        if valid and max(valid) - min(valid) > 24 * 3600000:
            return ("strict", "InvalidParameterException", 400,
                    "The batch of log events in a single PutLogEvents request cannot span more "
                    "than 24 hours.")
        return None

    @staticmethod
    def _role_by_arn(arn: str) -> Any:
        from moto.core import DEFAULT_ACCOUNT_ID as account
        from moto.iam.models import iam_backends

        return next((r for r in iam_backends[account]["global"].roles.values() if r.arn == arn), None)

    def _strict_duplicates(self, call: _Call) -> tuple[str, str, int, str] | None:
        """Duplicates and wrong codes: the refusals strict mode began with."""
        from moto.apigatewayv2.models import apigatewayv2_backends
        from moto.awslambda.models import lambda_backends
        from moto.core import DEFAULT_ACCOUNT_ID as account
        from moto.dynamodb.models import dynamodb_backends
        from moto.iam.models import iam_backends

        op, params = call.operation, call.params()
        if call.service == "apigateway" and op == "CreateRoute":
            m = _API_ID_IN_PATH.match(call.path)
            api = apigatewayv2_backends[account][call.region].apis.get(m.group(1)) if m else None
            key = params.get("routeKey")
            if api is not None and any(r.route_key == key for r in api.routes.values()):
                # moto adds a second route with the same key.
                return ("strict", "ConflictException", 409,
                        f"Route with key {key} already exists for this API")
        elif call.service == "lambda" and op == "AddPermission":
            sid = params.get("StatementId")
            m = _FUNCTION_IN_PATH.match(call.path)
            query = parse_qs(call.environ.get("QUERY_STRING", ""))
            try:
                # The policy of the version the call names (each has its own).
                fn, qualifier = _policy_target(lambda_backends[account][call.region],
                                               m.group(1) if m else "",
                                               (query.get("Qualifier") or [None])[0])
            except Exception:  # moto answers the not-found itself
                return None
            if qualifier == "$LATEST":
                # AWS's words (terraform-aws-modules/terraform-aws-lambda quotes "Error adding
                # new Lambda Permission for ...: InvalidParameterValueException: We currently
                # do not support adding policies for $LATEST."); moto adds the statement.
                return ("strict", "InvalidParameterValueException", 400,
                        "We currently do not support adding policies for $LATEST.")
            if any(st.get("Sid") == sid for st in fn.policy.statements):
                # moto appends a second statement with the same id.
                return ("strict", "ResourceConflictException", 409,
                        f"The statement id ({sid}) provided already exists. Please provide a "
                        "new statement id, or remove the existing statement.")
        elif call.service == "iam" and op == "CreateRole":
            name = params.get("RoleName", "")
            roles = iam_backends[account]["global"].roles.values()
            if any(r.name.lower() == name.lower() and r.name != name for r in roles):
                # Role names are unique case-insensitively; moto compares them exactly.
                return ("strict", "EntityAlreadyExists", 409, f"Role with name {name} already exists.")
        elif call.service == "dynamodb" and op in ("UpdateTimeToLive", "DescribeTimeToLive"):
            table = dynamodb_backends[account][call.region].tables.get(params.get("TableName", ""))
            if table is None:
                # moto: __type "ResourceNotFound", "Table not found".
                return ("strict", "ResourceNotFoundException", 400, "Requested resource not found")
            spec = params.get("TimeToLiveSpecification") or {}
            status = table.ttl.get("TimeToLiveStatus")
            current = table.ttl.get("AttributeName")
            if op == "UpdateTimeToLive" and spec.get("Enabled") is True and status == "ENABLED":
                if current and current != spec.get("AttributeName"):
                    return ("strict", "ValidationException", 400,
                            "TimeToLive is active on a different AttributeName: "
                            f"current AttributeName is {current}")
                return ("strict", "ValidationException", 400, "TimeToLive is already enabled")
            if op == "UpdateTimeToLive" and spec.get("Enabled") is False and status != "ENABLED":
                return ("strict", "ValidationException", 400, "TimeToLive is already disabled")
        return None

    def _realism_after(self, call: _Call, resp: _Response, s: dict[str, Any],
                       clocks: _Clocks, now: float) -> None:
        """Starts clocks after a successful call, and shows states they imply."""
        op = call.operation
        if call.service == "dynamodb":
            table = self._table_of(call)
            key = (call.region, table or "")
            if op == "CreateTable":
                clocks.tables[key] = now
            elif op == "DeleteTable":
                clocks.tables.pop(key, None)
            created = clocks.tables.get(key)
            if op in ("CreateTable", "DescribeTable") and created is not None \
                    and now - created < s["table_creating_s"]:
                doc = resp.json()
                member = "TableDescription" if op == "CreateTable" else "Table"
                if isinstance(doc, dict) and isinstance(doc.get(member), dict):
                    doc[member]["TableStatus"] = "CREATING"
                    resp.set_json(doc)
        elif call.service == "iam":
            name = call.params().get("RoleName")
            if op == "CreateRole" and name:
                clocks.roles[name] = now
            elif op == "DeleteRole" and name:
                clocks.roles.pop(name, None)
        elif call.service == "lambda":
            self._lambda_realism_after(call, resp, s, clocks, now)
        elif call.service == "acm":
            self._acm_realism_after(call, resp, s, clocks, now)
        elif call.service == "route53" and op == "GetChange" and resp.status < 300:
            # A change is PENDING for dns_change_s, then INSYNC (GetChange reference:
            # "PENDING indicates that the changes in this request have not propagated to
            # all Amazon Route 53 DNS servers"; aws-notes: PENDING -> INSYNC).
            from moto.core import DEFAULT_ACCOUNT_ID as account

            change_id = call.path.rstrip("/").rsplit("/", 1)[-1]
            change = getattr(_r53_backend(account, call.region), "_wsconn_changes", {}).get(change_id)
            if change is not None and now - change["at"] < s["dns_change_s"]:
                resp.body = resp.body.replace(b"<Status>INSYNC</Status>", b"<Status>PENDING</Status>")
                resp.headers = [(k, v) for k, v in resp.headers if k.lower() != "content-length"]
                resp.headers.append(("Content-Length", str(len(resp.body))))
        elif call.service == "logs" and op == "FilterLogEvents":
            # "A returned page might only be partially full, or even empty ... If the
            # results include a nextToken, there might be more log events available"
            # (FilterLogEvents reference): the first page of a search comes back empty,
            # with a nextToken that starts the search again.
            params = call.params()
            doc = resp.json()
            if params.get("nextToken") or not isinstance(doc, dict) or not doc.get("events"):
                return
            group = params.get("logGroupName") or params.get("logGroupIdentifier") or ""
            head = params.get("startFromHead")
            doc["events"] = []
            doc["nextToken"] = logs_token(group, True if head is None else bool(head), None)
            resp.set_json(doc)

    def _lambda_realism_after(self, call: _Call, resp: _Response, s: dict[str, Any],
                              clocks: _Clocks, now: float) -> None:
        op = call.operation
        fn = self._function_of(call)
        key = (call.region, fn or "")
        qualifier = self._qualifier_of(call)
        doc = resp.json()
        if op == "CreateFunction":
            arn = doc.get("FunctionArn") if isinstance(doc, dict) else None
            clocks.functions[key] = {
                "created": now, "updated": None,
                "arn": arn or f"arn:aws:lambda:{call.region}:{_ACCOUNT_ID}:function:{fn}"}
        elif op == "DeleteFunction":
            if qualifier is None:  # the whole function; with a qualifier, one version
                clocks.functions.pop(key, None)
                for vkey in [k for k in clocks.versions if k[:2] == key]:
                    del clocks.versions[vkey]
            else:
                clocks.versions.pop(key + (qualifier,), None)
        elif op in _LAMBDA_UPDATES and key in clocks.functions:
            clocks.functions[key]["updated"] = now
            # The RevisionId an update returns changes again when the update completes
            # (aws/aws-sdk issue 377: a RevisionId taken from UpdateFunctionConfiguration's
            # answer fails the next call with 412 after waiting for the update).
            if isinstance(doc, dict) and doc.get("RevisionId"):
                clocks.functions[key]["interim_revision"] = doc["RevisionId"]
                latest = self._lambda_function(call.region, fn or "")
                if latest is not None:
                    latest.revision_id = _new_revision()
        elif op == "PublishVersion" and getattr(call, "new_version", False) and isinstance(doc, dict):
            clocks.versions[key + (str(doc.get("Version")),)] = now
        if not isinstance(doc, dict):
            return

        def pending(conf: dict[str, Any]) -> None:
            conf.update(State="Pending", StateReason="The function is being created.",
                        StateReasonCode="Creating")

        # A new version is Pending for function_pending_s, as a new function is
        # (functions-states.html; shared/aws-notes.md, "Releases").
        changed = False
        if op == "ListVersionsByFunction":
            for conf in doc.get("Versions") or []:
                published = clocks.versions.get(key + (str(conf.get("Version")),))
                if published is not None and now - published < s["function_pending_s"]:
                    pending(conf)
                    changed = True
            if changed:
                resp.set_json(doc)
            return
        conf = doc.get("Configuration") if op == "GetFunction" else doc
        if op not in ("CreateFunction", "GetFunction", "GetFunctionConfiguration",
                      "PublishVersion") + _LAMBDA_UPDATES or not isinstance(conf, dict):
            return
        version = str(conf.get("Version")) if op == "PublishVersion" else qualifier
        if version not in (None, "$LATEST"):
            published = clocks.versions.get(key + (version,))
            if published is not None and now - published < s["function_pending_s"]:
                pending(conf)
                resp.set_json(doc)
            return
        info = clocks.functions.get(key)
        if info is None:
            return
        if now - info["created"] < s["function_pending_s"]:
            pending(conf)
            resp.set_json(doc)
        elif info["updated"] is not None and now - info["updated"] < s["function_update_s"]:
            conf.update(LastUpdateStatus="InProgress",
                        LastUpdateStatusReason="The function is being created.",
                        LastUpdateStatusReasonCode="Creating")
            if info.get("interim_revision"):
                conf["RevisionId"] = info["interim_revision"]
            resp.set_json(doc)

    @staticmethod
    def _lambda_function(region: str, name: str) -> Any:
        from moto.awslambda.models import lambda_backends
        from moto.core import DEFAULT_ACCOUNT_ID as account

        try:
            return lambda_backends[account][region].get_function(name)
        except Exception:
            return None

    @staticmethod
    def _acm_realism_after(call: _Call, resp: _Response, s: dict[str, Any], clocks: _Clocks,
                           now: float) -> None:
        """The validation ResourceRecord "appears in DescribeCertificate's
        DomainValidationOptions a few seconds after the request" (shared/aws-notes.md;
        terraform-provider-aws waits for it): absent for certificate_record_s."""
        doc = resp.json()
        if not isinstance(doc, dict):
            return
        if call.operation == "RequestCertificate" and doc.get("CertificateArn"):
            clocks.certificates.setdefault(doc["CertificateArn"], now)
        elif call.operation == "DescribeCertificate":
            cert = doc.get("Certificate") or {}
            requested = clocks.certificates.get(cert.get("CertificateArn", ""))
            if requested is not None and now - requested < s["certificate_record_s"]:
                for option in cert.get("DomainValidationOptions") or []:
                    option.pop("ResourceRecord", None)
                resp.set_json(doc)


def round_trip_levels(calls: list[dict[str, Any]]) -> int:
    """Longest chain c1, c2, ... of calls in which each starts after the previous ended.

    DP over the calls sorted by start: level(c) = 1 + max level of the calls that
    ended before c started (those all started earlier, so they are already done);
    a Fenwick tree over the end times keeps the prefix maximum.
    """
    done = [c for c in calls if "end" in c and "start" in c]
    if not done:
        return 0
    ends = sorted({c["end"] for c in done})
    tree = [0] * (len(ends) + 1)
    best = 0
    for c in sorted(done, key=lambda c: c["start"]):
        i, level = bisect.bisect_left(ends, c["start"]), 0  # ends strictly before start
        while i > 0:
            level = max(level, tree[i])
            i -= i & -i
        level += 1
        best = max(best, level)
        i = bisect.bisect_left(ends, c["end"]) + 1
        while i < len(tree):
            tree[i] = max(tree[i], level)
            i += i & -i
    return best


# ---------------------------------------------------------------------------
# Part 3: server
# ---------------------------------------------------------------------------

# Backends wsconn talks to; their flask apps are built before we start
# listening so /_wsconn/health only answers once the first real call is fast.
_PREWARM_HOSTS = ("acm", "apigateway", "dynamodb", "iam", "lambda", "logs", "route53", "sts")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    # The same settings as POST /_wsconn/config (defaults: DEFAULT_SETTINGS).
    parser.add_argument("--latency-ms", type=float, help="sleep before each AWS call")
    parser.add_argument("--realism", action="store_true", default=None,
                        help="imitate AWS's clocks (CREATING tables, IAM propagation, ...)")
    parser.add_argument("--table-creating-s", type=float)
    parser.add_argument("--role-propagation-s", type=float)
    parser.add_argument("--function-pending-s", type=float)
    parser.add_argument("--function-update-s", type=float)
    parser.add_argument("--certificate-record-s", type=float)
    parser.add_argument("--certificate-release-s", type=float)
    parser.add_argument("--dns-change-s", type=float)
    parser.add_argument("--acm-validation-wait-s", type=float,
                        help="seconds from a certificate's validation CNAME to ISSUED (default: "
                             "MOTO_ACM_VALIDATION_WAIT, else 60)")
    parser.add_argument("--strict", action="store_true", default=None,
                        help="refuse what AWS refuses and moto accepts (duplicates, ...)")
    parser.add_argument("--seed", type=int, help="seed of the random faults")
    parser.add_argument("--throttle-rate", type=float, help="fraction of calls throttled")
    parser.add_argument("--error-rate", type=float, help="fraction of calls answered 500/503")
    parser.add_argument("--chaos-exclude", type=lambda v: [x for x in v.split(",") if x],
                        help="comma-separated operations never faulted at random")
    parser.add_argument("--not-aws", type=json.loads, metavar="JSON",
                        help='answer every AWS call with this non-AWS response, e.g. '
                             '\'{"status": 404, "content_type": "text/html", "body": "..."}\' '
                             '(\'{}\' = an HTML 404 page)')
    args = parser.parse_args(argv)
    try:
        settings = merge_settings(DEFAULT_SETTINGS, {
            k: v for k, v in vars(args).items()
            if k in DEFAULT_SETTINGS and v is not None})
    except ValueError as exc:
        parser.error(str(exc))

    # moto builds some self-referencing URLs from MOTO_PORT (as moto.server does).
    os.environ.setdefault("MOTO_PORT", str(args.port))
    # Real IAM has the AWS managed policies (e.g. service-role/
    # AWSLambdaBasicExecutionRole); moto only loads them when asked to.
    # Set MOTO_IAM_LOAD_MANAGED_POLICIES=false in the environment to opt out.
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

    def _exit(signum: int, frame: Any) -> None:
        sys.exit(0)

    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, _exit)

    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)

    apply_apigatewayv2_patches()
    apply_lambda_patches()
    apply_domain_patches()
    apply_logs_patches()

    from werkzeug.serving import run_simple

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )

    dispatcher = DomainDispatcherApplication(create_backend_app)
    for svc in _PREWARM_HOSTS:
        backend = dispatcher.get_backend_for_host(f"{svc}.us-east-1.amazonaws.com")
        if backend and backend not in dispatcher.app_instances:
            dispatcher.app_instances[backend] = create_backend_app(backend)
    # Building the IAM backend loads the managed policies (~0.5 s); do it now
    # for the default account rather than inside the first IAM call.
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    iam_backends[DEFAULT_ACCOUNT_ID]["global"]

    run_simple(
        args.host,
        args.port,
        CallRecorder(dispatcher, settings),
        threaded=True,
        use_reloader=False,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
