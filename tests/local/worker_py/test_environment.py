"""What worker.py sets up around the handler: the SDK on sys.path, the memory limit, and
AWS's hostnames redirected to wsconn local with TLS still verified."""
import datetime
import http.server
import ssl
import sys
import threading
from pathlib import Path

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harness import FIXTURES, lambda_env

BASIC = FIXTURES / "basic"
REDIRECT = FIXTURES / "redirect"
# The SDK the redirect handlers import, whatever interpreter runs the worker.
SDK = str(Path(boto3.__file__).resolve().parent.parent)

API_HOST = "abc123.execute-api.us-east-1.amazonaws.com"
DYNAMODB_HOST = "dynamodb.us-east-1.amazonaws.com"
# Redirected, but not named by the server's certificate.
WRONG_HOST = "wrong-name.us-east-1.amazonaws.com"


# -- the SDK --------------------------------------------------------------------------


def test_the_sdk_comes_right_after_the_root_and_the_roots_copy_wins(start_worker):
    root, site = FIXTURES / "sdk" / "root", FIXTURES / "sdk" / "site"
    w = start_worker(root, lambda_env(WSCONN_PYTHON_SDK=str(site)))
    assert w.init()["ready"] is True, w.stderr()
    result = w.call({})["result"]
    assert result["shadowed"] == "root"  # in both places: the handler's copy wins
    assert result["only_in_sdk"] == "sdk"  # only in the SDK: found there
    assert result["path"] == [str(root), str(site)]


def test_without_the_sdk_its_modules_are_missing(start_worker):
    w = start_worker(FIXTURES / "sdk" / "root")
    ready = w.init()
    assert ready["ready"] is False
    assert ready["error"]["errorMessage"] == "Unable to import module 'app': No module named 'only_in_sdk'"


# -- memory ---------------------------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_DATA is enforced on Linux")
def test_memory_far_over_the_setting_is_a_memory_error(start_worker):
    w = start_worker(BASIC)
    w.init(export="allocate", memoryMb=128)
    assert w.call({"mb": 64})["result"] == 64
    err = w.call({"mb": 1024})["error"]
    assert err["errorType"] == "MemoryError"
    assert w.call({"mb": 16})["result"] == 16  # and the worker goes on


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_DATA is enforced on Linux")
def test_a_larger_memory_setting_allows_more(start_worker):
    w = start_worker(BASIC)
    w.init(export="allocate", memoryMb=2048)
    assert w.call({"mb": 1024})["result"] == 1024


# -- the redirect ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A throwaway CA and a certificate it signed for the API's and DynamoDB's names."""
    d = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wsconn test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, API_HOST)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(API_HOST), x509.DNSName(DYNAMODB_HOST)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": d / "ca.pem", "cert": d / "server.pem", "key": d / "server.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


class FakeAws:
    """An HTTPS server standing in for wsconn local: it records what reaches it."""

    def __init__(self, pki):
        self.requests = []
        self.sni = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append({
                    "method": self.command,
                    "path": self.path,
                    "host": self.headers.get("Host"),
                    "target": self.headers.get("X-Amz-Target"),
                    "authorization": self.headers.get("Authorization") or "",
                    "body": body.decode("utf-8", "replace"),
                })
                if self.headers.get("X-Amz-Target") == "DynamoDB_20120810.ListTables":
                    payload, ctype = b'{"TableNames": ["local-table"]}', "application/x-amz-json-1.0"
                elif self.path.startswith("/api/@connections/"):
                    payload, ctype = b"", "application/json"
                else:
                    payload, ctype = b"hi from local", "text/plain"
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki["cert"], pki["key"])
        ctx.sni_callback = lambda sslobj, name, c: outer.sni.append(name) and None
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_aws(pki, tmp_path):
    server = FakeAws(pki)
    server.tmp = tmp_path
    yield server
    server.close()


def redirect_env(fake_aws, **extra):
    return lambda_env(
        # The merged CA bundle is written under TMPDIR: the test's own directory.
        TMPDIR=str(fake_aws.tmp),
        WSCONN_PYTHON_SDK=SDK,
        WSCONN_REDIRECT_HOSTS=",".join([API_HOST, DYNAMODB_HOST, WRONG_HOST]),
        WSCONN_REDIRECT_TO=f"127.0.0.1:{fake_aws.port}",
        **extra,
    )


def start_redirect_worker(start_worker, env, export):
    w = start_worker(REDIRECT, env)
    ready = w.init(export=export)
    assert ready["ready"] is True, w.stderr()
    return w


def test_boto3_reaches_the_local_server_by_aws_hostnames(start_worker, fake_aws, pki):
    env = redirect_env(fake_aws, AWS_CA_BUNDLE=str(pki["ca"]))
    post = start_redirect_worker(start_worker, env, "post")
    assert post.call({}) == {"id": 1, "result": "posted"}, post.stderr()
    dynamodb = start_redirect_worker(start_worker, env, "dynamodb")
    assert dynamodb.call({}) == {"id": 1, "result": ["local-table"]}, dynamodb.stderr()

    by_host = {r["host"]: r for r in fake_aws.requests}
    api = by_host[API_HOST]
    assert (api["method"], api["path"], api["body"]) == ("POST", "/api/@connections/conn-1", "hello from python")
    assert "/execute-api/aws4_request" in api["authorization"]  # signed as AWS signs it
    ddb = by_host[DYNAMODB_HOST]
    assert (ddb["method"], ddb["path"], ddb["target"]) == ("POST", "/", "DynamoDB_20120810.ListTables")
    assert "/dynamodb/aws4_request" in ddb["authorization"]
    # TLS was set up for the original names, not for 127.0.0.1.
    assert API_HOST in fake_aws.sni and DYNAMODB_HOST in fake_aws.sni


def test_the_redirect_is_in_place_before_the_handler_module_loads(start_worker, fake_aws):
    w = start_redirect_worker(start_worker, redirect_env(fake_aws), "at_import")
    assert w.call({})["result"] == ["127.0.0.1", fake_aws.port]


def test_only_the_listed_names_are_redirected(start_worker, fake_aws):
    w = start_redirect_worker(start_worker, redirect_env(fake_aws), "resolve")
    names = [[API_HOST, 443], [API_HOST.upper() + ".", 8443], ["localhost", 9], ["sqs.us-east-1.amazonaws.com", 443]]
    out = w.call({"names": names})["result"]
    redirected = [["127.0.0.1", fake_aws.port]]
    assert out[f"{API_HOST}:443"] == redirected
    assert out[f"{API_HOST.upper()}.:8443"] == redirected  # DNS names ignore case and a final dot
    # Anything else resolves as before: its own port, its own addresses (or none, offline).
    assert out["localhost:9"] != "gaierror" and all(port == 9 for _, port in out["localhost:9"])
    assert out["sqs.us-east-1.amazonaws.com:443"] == "gaierror" or all(
        port == 443 for _, port in out["sqs.us-east-1.amazonaws.com:443"]
    )


def test_without_the_redirect_variables_nothing_is_redirected(start_worker, fake_aws):
    w = start_worker(REDIRECT, lambda_env(WSCONN_PYTHON_SDK=SDK))
    assert w.init(export="resolve")["ready"] is True
    out = w.call({"names": [["localhost", 7]]})["result"]
    assert all(port == 7 for _, port in out["localhost:7"])


def test_extra_cas_are_added_to_the_usual_ones_for_every_client(start_worker, fake_aws, pki):
    env = redirect_env(fake_aws, WSCONN_EXTRA_CA_CERTS=str(pki["ca"]))
    w = start_redirect_worker(start_worker, env, "ca_env")
    paths = w.call({})["result"]
    bundle_path = paths["AWS_CA_BUNDLE"]
    assert paths == {"AWS_CA_BUNDLE": bundle_path, "REQUESTS_CA_BUNDLE": bundle_path, "SSL_CERT_FILE": bundle_path}
    assert Path(bundle_path).parent.parent == fake_aws.tmp
    bundle = Path(bundle_path).read_text()
    assert pki["ca"].read_text().strip() in bundle
    # The usual CAs stay trusted, so hosts that are not redirected still verify.
    default = ssl.get_default_verify_paths().openssl_cafile
    if Path(default).is_file():
        first_default_cert = Path(default).read_text().split("-----END CERTIFICATE-----")[0]
        assert first_default_cert.split("-----BEGIN CERTIFICATE-----")[1] in bundle

    # urllib.request verifies wsconn's certificate through SSL_CERT_FILE...
    get = start_redirect_worker(start_worker, env, "urlopen")
    assert get.call({"url": f"https://{API_HOST}/hello"})["result"] == {"status": 200, "body": "hi from local"}
    # ...and boto3 through AWS_CA_BUNDLE.
    post = start_redirect_worker(start_worker, env, "post")
    assert post.call({})["result"] == "posted", post.stderr()


def test_the_handler_sees_no_wsconn_variables(start_worker, fake_aws, pki):
    env = redirect_env(fake_aws, WSCONN_EXTRA_CA_CERTS=str(pki["ca"]))
    assert {"WSCONN_PYTHON_SDK", "WSCONN_REDIRECT_HOSTS", "WSCONN_REDIRECT_TO", "WSCONN_EXTRA_CA_CERTS"} <= env.keys()
    w = start_redirect_worker(start_worker, env, "wsconn_env")
    assert w.call({})["result"] == []


def test_a_malformed_redirect_target_redirects_nothing(start_worker, fake_aws):
    w = start_redirect_worker(start_worker, redirect_env(fake_aws) | {"WSCONN_REDIRECT_TO": "127.0.0.1"}, "resolve")
    out = w.call({"names": [[API_HOST, 443]]})["result"]
    assert out[f"{API_HOST}:443"] != [["127.0.0.1", fake_aws.port]]
    w.wait_stderr("WSCONN_REDIRECT_TO='127.0.0.1' is not HOST:PORT")


def test_tls_is_verified_against_the_original_hostname(start_worker, fake_aws, pki):
    trusted = start_redirect_worker(start_worker, redirect_env(fake_aws, WSCONN_EXTRA_CA_CERTS=str(pki["ca"])), "urlopen")
    # Redirected to the same server, but its certificate does not name this host.
    err = trusted.call({"url": f"https://{WRONG_HOST}/hello"})["result"]["error"]
    assert "CERTIFICATE_VERIFY_FAILED" in err and "Hostname mismatch" in err, err

    untrusted = start_redirect_worker(start_worker, redirect_env(fake_aws), "urlopen")
    # Without wsconn's CA, its certificate is refused: verification was not turned off.
    err = untrusted.call({"url": f"https://{API_HOST}/hello"})["result"]["error"]
    assert "CERTIFICATE_VERIFY_FAILED" in err, err
    assert not any(r["path"] == "/hello" for r in fake_aws.requests)
