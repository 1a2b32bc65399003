#!/usr/bin/env python3
"""Test-only AWS emulator launcher: moto server 5.2.5 + API Gateway v2 gap fillers + call recorder.

THIS FILE IS TEST INFRASTRUCTURE, NOT PART OF wsconn.

Everything patched in below FILLS EMULATOR GAPS: moto 5.2.5 lacks these
API Gateway v2 calls (or implements them in ways real AWS does not behave),
so without the patches the real wsconn binary could not be exercised end to
end against moto.  The patches only imitate documented / observed AWS
behaviour on the REST-JSON wire format that the Rust aws-sdk-apigatewayv2
speaks.  Nothing here is shipped with, or imported by, wsconn.

Usage:
    python tests/emulator/launcher.py --port PORT [--host 127.0.0.1] [--verbose]

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
                                   {"service", "operation", "method", "path", "mutating"}
    POST /_wsconn/calls/reset   -> 200, clears the recording
    POST /_wsconn/faults        -> 200, queues injected failures; body is a JSON list of
                                   {"operation", "code", "message", "status", "count"}:
                                   the next `count` calls of `operation` get that error
                                   instead of reaching moto (recorded with "fault": code).
                                   This stands in for the real-AWS timing behaviours moto
                                   does not reproduce (IAM propagation, concurrent
                                   modification, throttling; see shared/aws-notes.md).
    POST /_wsconn/faults/reset  -> 200, drops every queued fault

Gap fillers (API Gateway v2, all on the real AWS URIs / camelCase JSON keys):
    * CreateDeployment / GetDeployments / GetDeployment / DeleteDeployment (absent in moto)
    * UpdateStage (absent in moto: HTTP 500)
    * GetRouteResponses (absent in moto: HTTP 500)
    * Stage.deploymentId is stored and returned (moto drops it)
    * CreateStage: ConflictException on duplicate name, NotFound on unknown deploymentId
    * Tagging of stage ARNs (moto: no URL route -> 404) and of unknown APIs (NotFound)
    * NotFoundException instead of HTTP 500 / silent success for missing
      children in Update/Delete calls (integration, integration response,
      route, route response, stage, api)
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import logging
import os
import re
import signal
import string
import sys
import threading
from datetime import datetime
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, quote, unquote, urlsplit

# ---------------------------------------------------------------------------
# Part 1: API Gateway v2 gap fillers (monkeypatches on moto 5.2.5)
# ---------------------------------------------------------------------------

import moto.apigateway.urls as apigw_v1_urls
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
Backend = v2models.ApiGatewayV2Backend


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
        alphabet = string.ascii_lowercase + string.digits
        self.id = "".join(random.choice(alphabet) for _ in range(6))
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


def _stage_init(self: Any, api: Any, config: dict[str, Any]) -> None:
    _orig_stage_init(self, api, config)
    self.deployment_id = config.get("deploymentId")
    if self.tags is None:
        self.tags = {}


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
    # Scalars are replaced; maps are merged key by key (PATCH semantics).
    if "autoDeploy" in params:
        stage.auto_deploy = params["autoDeploy"]
    if "description" in params:
        stage.description = params["description"]
    if "clientCertificateId" in params:
        stage.client_certificate_id = params["clientCertificateId"]
    if "accessLogSettings" in params:
        stage.access_log_settings = params["accessLogSettings"]
    if params.get("defaultRouteSettings"):
        merged = dict(stage.default_route_settings or {})
        merged.update(params["defaultRouteSettings"])
        stage.default_route_settings = merged
    if params.get("routeSettings"):
        stage.route_settings = {**(stage.route_settings or {}), **params["routeSettings"]}
    if params.get("stageVariables"):
        stage.stage_variables = {**(stage.stage_variables or {}), **params["stageVariables"]}
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


# --- Backend: delete_api strictness, deployments, stage-aware tagging ---------

_orig_backend_delete_api = Backend.delete_api
_orig_backend_get_tags = Backend.get_tags
_orig_backend_tag_resource = Backend.tag_resource
_orig_backend_untag_resource = Backend.untag_resource

_API_ARN = re.compile(r"^arn:[^:]+:apigateway:[^:]*::/apis/([^/]+)$")
_STAGE_ARN = re.compile(r"^arn:[^:]+:apigateway:[^:]*::/apis/([^/]+)/stages/([^/]+)$")


def _backend_delete_api(self: Any, api_id: str) -> None:
    api = self.get_api(api_id)  # moto deleted silently; AWS says NotFound
    _orig_backend_delete_api(self, api_id)
    # moto kept the API's tags in the shared tagger forever.
    self.tagger.delete_all_tags_for_resource(api.arn)


def _tag_target(self: Any, arn: str) -> Any:
    """Return the Stage for a stage ARN (NotFound if missing), else None.

    Stage tags live on Stage.tags, which CreateStage fills and GetStage
    returns, so tag calls on stage ARNs operate on that dict; every other ARN
    keeps using moto's shared tagger.
    """
    m = _STAGE_ARN.match(arn)
    if m:
        return self.get_api(m.group(1)).get_stage(m.group(2))
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
    r"|stages/(?P<stage_name>[^/]+)"
    r"|routes/(?P<route_id>[^/]+)(?:/routeresponses)?"
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
    # Stage ARNs (arn:...::/apis/ID/stages/NAME) arrive with %2F decoded to "/".
    "{0}/v2/tags/(?P<resource_arn_pt1>[^/]+)/apis/(?P<resource_arn_pt2>[^/]+)/stages/(?P<resource_arn_pt3>[^/]+)$": ApiGatewayV2Response.dispatch,
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
    Backend.delete_api = _backend_delete_api
    Backend.get_tags = _backend_get_tags
    Backend.tag_resource = _backend_tag_resource
    Backend.untag_resource = _backend_untag_resource
    for handler in (create_deployment, get_deployments, get_deployment,
                    delete_deployment, update_stage, get_route_responses):
        setattr(ApiGatewayV2Response, handler.__name__, handler)
    for name in ("get_tags", "tag_resource", "untag_resource"):
        orig = getattr(ApiGatewayV2Response, name)
        setattr(ApiGatewayV2Response, name, _validating_tag_handler(orig))
    for module in (apigw_v2_urls, apigw_v1_urls):
        module.url_paths.update(_EXTRA_URL_PATHS)


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


class _UriTemplate:
    """One botocore operation's http.method + http.requestUri, compiled."""

    def __init__(self, name: str, method: str, request_uri: str):
        self.name = name
        self.method = method.upper()
        path, _, query = request_uri.partition("?")
        # Query part of a requestUri (e.g. "?versions" / "?x-id=Foo") = required params.
        self.required_query = [
            (k, v) for k, v in parse_qs(query, keep_blank_values=True).items()
        ]
        parts = re.split(r"(\{[^}]+\})", path)
        labels = [i for i, p in enumerate(parts) if p.startswith("{")]
        strict, lenient = [], []
        for i, part in enumerate(parts):
            if part.startswith("{"):
                greedy = part.endswith("+}")
                strict.append(".+" if greedy else "[^/]+")
                # Lenient form: clients may not encode "/" in a final label (ARNs).
                lenient.append(".+" if greedy or i == labels[-1] else "[^/]+")
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


class CallRecorder:
    """WSGI middleware: records each AWS call, serves /_wsconn/*, forwards to moto."""

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app
        self._lock = threading.Lock()
        self._calls: list[dict[str, Any]] = []
        self._rest = _RestOperationMatcher()
        self._faults: list[dict[str, Any]] = []

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
        if path == "/_wsconn/faults" and method == "POST":
            faults = json.loads(self._buffer_body(environ) or b"[]")
            with self._lock:
                self._faults.extend(dict(f) for f in faults)
            return self._reply(start_response, "200 OK", b"{}", "application/json")
        if path == "/_wsconn/faults/reset" and method == "POST":
            with self._lock:
                self._faults.clear()
            return self._reply(start_response, "200 OK", b"{}", "application/json")
        if path == "/_wsconn/calls/reset" and method == "POST":
            with self._lock:
                self._calls.clear()
            return self._reply(start_response, "200 OK", b"{}", "application/json")
        return self._reply(start_response, "404 Not Found", b"not found", "text/plain")

    @staticmethod
    def _reply(start_response: Any, status: str, body: bytes, ctype: str) -> Iterable[bytes]:
        start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
        return [body]

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

    def _describe(self, environ: dict[str, Any], body: bytes) -> dict[str, Any]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO", "") or "/"
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)

        service = "unknown"
        m = re.search(r"Credential=[^/,\s]+/[^/]+/[^/]+/([^/]+)/aws4_request",
                      environ.get("HTTP_AUTHORIZATION", ""))
        if m:
            service = m.group(1)

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
            mutating = not operation.startswith(_READ_ONLY_PREFIXES)
        else:
            mutating = method not in ("GET", "HEAD")
            operation = f"UNKNOWN {method} {path}"
        return {"service": service, "operation": operation, "method": method,
                "path": path, "mutating": mutating}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/_wsconn" or path.startswith("/_wsconn/"):
            return self._control(environ, start_response)
        if not path.startswith("/moto-api"):
            try:
                record = self._describe(environ, self._buffer_body(environ))
            except Exception as exc:  # never let the recorder break a call
                record = {"service": "unknown", "method": environ.get("REQUEST_METHOD", ""),
                          "path": path, "operation": f"UNKNOWN recorder error: {exc}",
                          "mutating": True}
            with self._lock:
                fault = self._take_fault(record["operation"])
                if fault:
                    record = {**record, "fault": fault["code"]}
                self._calls.append(record)
            if fault:
                return self._fail(start_response, fault)
        return self.app(environ, start_response)

    def _take_fault(self, operation: str) -> dict[str, Any] | None:
        """Pops one use of the first queued fault for `operation` (lock held)."""
        for f in self._faults:
            if f["operation"] == operation and f.get("count", 1) > 0:
                f["count"] = f.get("count", 1) - 1
                return f
        return None

    @staticmethod
    def _fail(start_response: Any, fault: dict[str, Any]) -> Iterable[bytes]:
        """An AWS error in a shape every protocol the SDK speaks here can parse: the code
        in x-amzn-ErrorType (REST-JSON) and __type (JSON 1.0/1.1), the message under both
        spellings."""
        status = int(fault.get("status", 400))
        body = json.dumps({"__type": fault["code"], "message": fault["message"],
                           "Message": fault["message"]}).encode()
        start_response(f"{status} Injected", [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("x-amzn-ErrorType", fault["code"]),
            ("Content-Length", str(len(body))),
        ])
        return [body]


# ---------------------------------------------------------------------------
# Part 3: server
# ---------------------------------------------------------------------------

# Backends wsconn talks to; their flask apps are built before we start
# listening so /_wsconn/health only answers once the first real call is fast.
_PREWARM_HOSTS = ("apigateway", "dynamodb", "iam", "lambda", "logs", "sts")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

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
        CallRecorder(dispatcher),
        threaded=True,
        use_reloader=False,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
