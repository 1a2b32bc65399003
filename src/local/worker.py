"""wsconn local: the warm Python worker that runs one of the stack's Python handlers.

wsconn starts it once with `python3 -u <this file>` (or `python3 -c <this file's text>`)
in the handler's directory, and reuses it; many invocations are in flight at once, each
on a thread of its own (Lambda would give each one an execution environment; threads
are the local stand-in). The protocol is one JSON object per line:
  stdin:  {"init": {"root", "module", "export", "functionName", "functionVersion",
                    "memoryMb", "region", "logGroupName", "logStreamName"}}  (first line)
          {"id": N, "event": {...}, "timeoutMs": T}                         (one per invocation)
  stdout: {"ready": true} | {"ready": false, "error": {...}}                (answer to init)
          {"id": N, "result": ...} | {"id": N, "error": {...}}              (one per invocation)
An error is {"errorType", "errorMessage", "stack"} with the stack as one string, as
worker.mjs sends it. stdout carries nothing else: the handler's print and sys.stdout
writes, the logging module's output, and whatever its subprocesses write to fd 1 go to
stderr, which wsconn copies into its log. An unreadable line is reported on stderr and
skipped. When stdin closes, the invocations in flight finish and the process exits 0.

The environment it reads besides Lambda's own variables (all optional):
  WSCONN_PYTHON_SDK      a site-packages directory with boto3/botocore, put on sys.path
                         right after the handler's root (a copy the handler bundles wins).
  WSCONN_REDIRECT_HOSTS  comma-separated host names (AWS's, such as
                         abc123.execute-api.us-east-1.amazonaws.com): connections to them,
                         on any port, go to
  WSCONN_REDIRECT_TO     this HOST:PORT (wsconn local's; [::1]:PORT for IPv6) instead.
                         TLS is still verified against the original name.
  WSCONN_EXTRA_CA_CERTS  a PEM file of CAs (wsconn local's) that botocore, requests and
                         the ssl module trust on top of the usual ones. (AWS_CA_BUNDLE set
                         to wsconn's CA alone also works, for botocore only, and then
                         botocore trusts nothing else.)
  AWS_LAMBDA_LOG_LEVEL   the root logger's level, as on Lambda.
  _HANDLER               Lambda's Handler setting, when the init line names no module.
The WSCONN_* variables are removed from os.environ once read, so the handler (and any
program it starts) sees Lambda's environment only.
"""

# Before anything else is imported: `python3 -c` puts the working directory (the
# handler's) first on sys.path and `python3 worker.py` puts this file's directory there.
# Neither belongs there (a handler's json.py must not replace the worker's json); the
# handler's root is added at init.
import sys

if __name__ == "__main__" and not sys.flags.safe_path and sys.path:
    del sys.path[0]

import decimal
import hashlib
import importlib
import json
import logging
import os
import queue
import re
import signal
import socket
import stat
import tempfile
import threading
import time
import traceback
import uuid

# Frames of this file are dropped from the front of a handler's traceback, as Lambda's
# runtime drops its bootstrap's. co_filename is "<string>" under `python3 -c`.
_OWN_FILE = sys._getframe(0).f_code.co_filename

# Lambda's Python runtime error types (awslambdaric's lambda_runtime_exception.py).
IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
MARSHAL_ERROR = "Runtime.MarshalError"
EXIT_ERROR = "Runtime.ExitError"

# wsconn's own variables, removed from os.environ once read.
_WSCONN_VARIABLES = ("WSCONN_PYTHON_SDK", "WSCONN_REDIRECT_HOSTS", "WSCONN_REDIRECT_TO", "WSCONN_EXTRA_CA_CERTS")

# The account id in the ARNs wsconn local makes up (functions.rs's LOCAL_ACCOUNT).
LOCAL_ACCOUNT = "000000000000"

# pthread's default on Linux, set explicitly so the memory limit can account for it.
# Smaller stacks are not safe: Python 3.13 segfaults on deep recursion in a 2 MiB thread.
THREAD_STACK = 8 << 20
# At most this many invocation threads; past that, invocations wait in a queue.
MAX_THREADS = 256


# ---------------------------------------------------------------------------------------
# The protocol channel


class Channel:
    """stdin and stdout, kept for the protocol alone.

    File descriptors 0 and 1 are duplicated for the protocol, then fd 1 is pointed at
    stderr and fd 0 at /dev/null, so neither print, a C extension, a subprocess nor
    input() can corrupt or consume protocol lines.
    """

    def __init__(self):
        sys.stdout.flush()
        self._out = os.fdopen(os.dup(1), "wb")
        self._in = os.fdopen(os.dup(0), "rb")
        os.dup2(2, 1)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        self._lock = threading.Lock()

    def lines(self):
        return iter(self._in.readline, b"")

    def send(self, obj):
        """Writes one answer; a result that cannot be encoded becomes an error answer."""
        try:
            data = encode(obj)
        except Exception as e:
            err = marshal_error(e)
            log_error(err)
            data = encode({"id": obj.get("id"), "error": err})
        with self._lock:
            try:
                self._out.write(data + b"\n")
                self._out.flush()
            except OSError as e:
                # wsconn is gone; stdin closes next and the worker exits.
                log_line(f"wsconn worker: cannot answer: {e}")


class _Unbuffered:
    """Flushes every write, as Lambda's runtime does for sys.stdout and sys.stderr."""

    def __init__(self, stream):
        self.stream = stream

    def __getattr__(self, attr):
        return getattr(self.stream, attr)

    def write(self, msg):
        n = self.stream.write(msg)
        self.stream.flush()
        return n

    def writelines(self, msgs):
        self.stream.writelines(msgs)
        self.stream.flush()


def log_line(text):
    """One line of the worker's own to stderr (wsconn prefixes it with the function)."""
    try:
        sys.stderr.write(text.rstrip("\n") + "\n")
    except Exception:
        pass


# ---------------------------------------------------------------------------------------
# JSON, as Lambda's marshaller writes it

# Lambda writes a decimal.Decimal (what boto3's DynamoDB resource returns for numbers)
# as a JSON number with all its digits. The json module cannot emit raw text, so a
# Decimal is encoded as a string with this marker and the marker is stripped afterwards;
# the random part keeps it from matching any string the handler returns.
_DECIMAL_TAG = "wsconn-decimal-" + uuid.uuid4().hex
_DECIMAL_MARK = "\x00" + _DECIMAL_TAG + ":"
_DECIMAL_RE = re.compile(re.escape(json.dumps(_DECIMAL_MARK)[:-1]) + r'([-+.0-9Ee]+)"')


class _Encoder(json.JSONEncoder):
    def __init__(self):
        # allow_nan=False: Lambda writes NaN and Infinity, which are not JSON and which
        # wsconn could not read back; here they are a marshal error instead.
        super().__init__(ensure_ascii=False, allow_nan=False)

    def default(self, o):
        if isinstance(o, decimal.Decimal):
            if not o.is_finite():
                raise ValueError(f"Out of range float values are not JSON compliant: {o}")
            return _DECIMAL_MARK + str(o)
        return super().default(o)


def encode(obj):
    text = _Encoder().encode(obj)
    if _DECIMAL_TAG in text:
        text = _DECIMAL_RE.sub(r"\1", text)
    # Strict UTF-8: a lone surrogate fails here, as an answer wsconn could not read.
    return text.encode("utf-8")


def to_result(value):
    """The handler's return value as the answer carries it (Lambda's marshal_response)."""
    if isinstance(value, (bytes, bytearray)):
        # Lambda passes bytes through as the payload; wsconn needs JSON, so bytes must
        # hold a JSON document (what an API Gateway integration would accept too).
        try:
            return json.loads(value)
        except ValueError as e:
            raise ValueError(f"the handler returned bytes that are not JSON ({e})") from None
    return value


def marshal_error(e):
    return {
        "errorType": MARSHAL_ERROR,
        "errorMessage": f"Unable to marshal response: {e}",
        "stack": "",
    }


# ---------------------------------------------------------------------------------------
# Errors, as Lambda's Python runtime reports them


class Fault(Exception):
    """A failure of the runtime's own, with Lambda's type ("Runtime.…") and message."""

    def __init__(self, error_type, message, stack=""):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack = stack


def _user_traceback(tb):
    """The traceback without the worker's (and importlib's) frames in front."""
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name != _OWN_FILE and not name.startswith("<frozen importlib"):
            break
        tb = tb.tb_next
    return tb


def error_of(e):
    """errorType is the exception's class name, as Lambda reports it."""
    if isinstance(e, Fault):
        return {"errorType": e.error_type, "errorMessage": e.message, "stack": e.stack}
    stack = "".join(traceback.format_exception(type(e), e, _user_traceback(e.__traceback__)))
    if isinstance(e, SystemExit):
        # On Lambda, sys.exit() in a handler ends the runtime process; here the other
        # invocations go on.
        return {
            "errorType": EXIT_ERROR,
            "errorMessage": f"Runtime exited with error: exit status {e.code}",
            "stack": stack,
        }
    try:
        message = str(e)
    except Exception:
        message = repr(e)
    return {"errorType": type(e).__name__, "errorMessage": message, "stack": stack}


def log_error(err):
    """What Lambda's runtime writes to the log for a failed init or invocation."""
    text = f"[ERROR] {err['errorType']}: {err['errorMessage']}"
    if err.get("stack"):
        text += "\n" + err["stack"]
    log_line(text)


# ---------------------------------------------------------------------------------------
# Logging, set up as Lambda's Python runtime sets it up (awslambdaric's bootstrap.py)

_request = threading.local()
# For threads a handler starts itself: Lambda's runtime stamps every record with the
# request id of the invocation in progress, which is the latest one.
_latest_request_id = ""


def current_request_id():
    return getattr(_request, "id", None) or _latest_request_id


class _RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = current_request_id()
        return True


class _LambdaLogHandler(logging.Handler):
    def emit(self, record):
        try:
            msg = self.format(record)
            # Looked up at each call, as Lambda's log sink does: fd 1 is stderr by now.
            sys.stdout.write(msg)
        except Exception:
            self.handleError(record)


def setup_logging():
    logging.Formatter.converter = time.gmtime
    handler = _LambdaLogHandler()
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    # As on Lambda: the level is set only when AWS_LAMBDA_LOG_LEVEL is (TRACE meaning
    # DEBUG); otherwise the root logger keeps Python's default, WARNING, so
    # logging.info() shows only after the handler's own setLevel(logging.INFO), on
    # Lambda and here alike.
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL")
    if level:
        level = {"TRACE": "DEBUG"}.get(level.upper(), level.upper())
        if level in logging.getLevelNamesMapping():
            root.setLevel(level)


# ---------------------------------------------------------------------------------------
# AWS's hostnames reach wsconn local


def install_redirect(environ):
    """Connections to the listed hosts (any port) go to WSCONN_REDIRECT_TO instead.

    Only name resolution changes: socket.getaddrinfo answers the redirect address and
    port for a listed name. The clients resolve through it (urllib3 under botocore and
    requests, http.client under urllib.request, asyncio's default resolver), connect
    there, and still wrap the socket with server_hostname set to the name they asked
    for, so SNI and the certificate check are against the original hostname: wsconn's
    certificate must name it, and its CA must be trusted (WSCONN_EXTRA_CA_CERTS).
    Nothing is turned off. Every other name resolves as before.
    """
    names = environ.get("WSCONN_REDIRECT_HOSTS", "")
    target = environ.get("WSCONN_REDIRECT_TO", "").strip()
    hosts = {_host_key(h) for h in names.split(",") if h.strip()}
    if not hosts or not target:
        return
    host, sep, port = target.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        log_line(f"wsconn worker: WSCONN_REDIRECT_TO={target!r} is not HOST:PORT; nothing is redirected")
        return
    port = int(port)
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host_, port_, family=0, type=0, proto=0, flags=0):
        if _host_key(host_) in hosts:
            return real_getaddrinfo(host, port, family, type, proto, flags)
        return real_getaddrinfo(host_, port_, family, type, proto, flags)

    getaddrinfo.__doc__ = real_getaddrinfo.__doc__
    getaddrinfo.__wrapped__ = real_getaddrinfo
    socket.getaddrinfo = getaddrinfo


def _host_key(h):
    """Host names compare without case and without a final dot, as DNS names do."""
    if isinstance(h, (bytes, bytearray)):
        h = bytes(h).decode("ascii", "replace")
    if not isinstance(h, str):
        return None
    return h.strip().lower().rstrip(".")


# Each is honoured by one family of clients: botocore, requests, and the ssl module's
# default context (urllib.request, http.client, urllib3 on its own, aiohttp).
_CA_VARIABLES = ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")


def trust_extra_cas(environ):
    """Points the CA bundle variables at the usual CAs plus WSCONN_EXTRA_CA_CERTS.

    Adding, not replacing: a bundle of wsconn's CA alone would break TLS to every host
    that is not redirected (S3, a third-party API). The merged bundle is written once
    per content into a private directory and reused by later workers. A variable the
    function's own environment sets is left alone.
    """
    extra_path = environ.get("WSCONN_EXTRA_CA_CERTS")
    if not extra_path:
        return
    try:
        with open(extra_path, "rb") as f:
            extra = f.read()
    except OSError as e:
        log_line(f"wsconn worker: WSCONN_EXTRA_CA_CERTS: {e}")
        return
    base_path = _default_ca_file()
    base = b""
    if base_path:
        try:
            with open(base_path, "rb") as f:
                base = f.read()
        except OSError:
            base_path = None
    if not base_path:
        log_line("wsconn worker: no default CA bundle found; only wsconn's CA is trusted")
    bundle = base.rstrip(b"\n") + b"\n" + extra if base else extra
    try:
        path = _write_private(bundle, "ca-%s.pem" % hashlib.sha256(bundle).hexdigest()[:16])
    except OSError as e:
        log_line(f"wsconn worker: cannot write the CA bundle: {e}")
        return
    for name in _CA_VARIABLES:
        if not environ.get(name):
            environ[name] = path


def _default_ca_file():
    """The CA file OpenSSL uses by default, else certifi's, else botocore's own."""
    import ssl
    from importlib.util import find_spec

    cafile = ssl.get_default_verify_paths().cafile
    if cafile and os.path.isfile(cafile):
        return cafile
    for package in ("certifi", "botocore"):
        try:
            spec = find_spec(package)
        except (ImportError, ValueError):
            spec = None
        if spec and spec.origin:
            candidate = os.path.join(os.path.dirname(spec.origin), "cacert.pem")
            if os.path.isfile(candidate):
                return candidate
    return None


def _write_private(data, name):
    """Writes `data` to `name` in a directory only this user can write, atomically."""
    getuid = getattr(os, "getuid", None)
    directory = os.path.join(tempfile.gettempdir(), f"wsconn-{getuid() if getuid else 'user'}")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    st = os.lstat(directory)  # not stat: a symlink planted by someone else is refused
    if not stat.S_ISDIR(st.st_mode) or (getuid and st.st_uid != getuid()):
        raise OSError(f"{directory} is not a directory of this user's")
    path = os.path.join(directory, name)
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return path
    except OSError:
        pass
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


# ---------------------------------------------------------------------------------------
# Memory
#
# Lambda bounds the environment's memory (what it touches). No rlimit measures that, so
# this is a best effort that errs on the generous side: code that fits on Lambda must
# not fail here, but a handler far over its setting gets a MemoryError.
#
# RLIMIT_DATA, not RLIMIT_AS: the address space counts reservations that use no
# memory. Measured on Python 3.11 with boto3: ten idle threads add 740 MB of address
# space (glibc reserves a 64 MiB malloc arena per thread, plus an 8 MiB stack), 83 MB of
# data (the stacks) and nothing resident. RLIMIT_DATA counts private writable mappings,
# the heap included, so it tracks what the handler allocates.
#
# The limit is the function's memory, plus 64 MiB for the interpreter and the SDK
# (VmData is 37 MB after importing boto3 and making a client), plus 8 MiB for the stack
# of each invocation thread, added as the pool starts threads so idle capacity does not
# loosen it. Threads the handler starts itself are not accounted for. Where the
# platform has no such limit (macOS does not enforce it, Windows has no `resource`), or
# a limit is already set, nothing changes.
INTERPRETER_HEADROOM = 64 << 20


class MemoryLimit:
    def __init__(self, memory_mb):
        self._lock = threading.Lock()
        self._limit = None
        try:
            import resource

            self._resource = resource
            mb = max(int(memory_mb), 128)
            soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
            if soft != resource.RLIM_INFINITY:
                return
            limit = (mb << 20) + INTERPRETER_HEADROOM
            if hard != resource.RLIM_INFINITY and limit > hard:
                return
            resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
            self._limit = limit
        except Exception:
            self._limit = None

    def grow(self, amount):
        """Makes room for `amount` more bytes (a new thread's stack)."""
        with self._lock:
            if self._limit is None:
                return
            try:
                hard = self._resource.getrlimit(self._resource.RLIMIT_DATA)[1]
                limit = self._limit + amount
                if hard != self._resource.RLIM_INFINITY:
                    limit = min(limit, hard)
                self._resource.setrlimit(self._resource.RLIMIT_DATA, (limit, hard))
                self._limit = limit
            except Exception:
                pass


# ---------------------------------------------------------------------------------------
# Invocations


class Pool:
    """Reusable threads for invocations: an idle one takes the next, else a new one starts.

    `idle` is the number of waiting threads not yet promised a job; it goes negative
    when MAX_THREADS are busy and invocations queue.
    """

    def __init__(self, memory):
        self._jobs = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._threads = []
        self._memory = memory

    def submit(self, job):
        with self._lock:
            start = self._idle <= 0 and len(self._threads) < MAX_THREADS
            if start:
                self._memory.grow(THREAD_STACK)
                t = threading.Thread(target=self._run, name=f"invocation-{len(self._threads) + 1}")
                t.start()  # RuntimeError when no thread can start; the caller answers it
                self._threads.append(t)
            else:
                self._idle -= 1
        self._jobs.put(job)

    def _run(self):
        while True:
            job = self._jobs.get()
            if job is None:
                return
            job()
            with self._lock:
                self._idle += 1

    def shutdown(self):
        """Lets the queued and running invocations finish, then stops the threads."""
        with self._lock:
            threads = list(self._threads)
        for _ in threads:
            self._jobs.put(None)
        for t in threads:
            t.join()


class CognitoIdentity:
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __init__(self):
        self.cognito_identity_id = None
        self.cognito_identity_pool_id = None

    def __repr__(self):
        return (
            f"CognitoIdentity([cognito_identity_id={self.cognito_identity_id},"
            f"cognito_identity_pool_id={self.cognito_identity_pool_id}])"
        )


class LambdaContext:
    """The handler's `context`, with the fields and methods of awslambdaric's."""

    def __init__(self, request_id, function, deadline):
        self.aws_request_id = request_id
        self.log_group_name = function["log_group_name"]
        self.log_stream_name = function["log_stream_name"]
        self.function_name = function["function_name"]
        # A string, as awslambdaric reads it from AWS_LAMBDA_FUNCTION_MEMORY_SIZE.
        self.memory_limit_in_mb = function["memory_limit_in_mb"]
        self.function_version = function["function_version"]
        self.invoked_function_arn = function["invoked_function_arn"]
        self.tenant_id = None
        self.client_context = None
        # awslambdaric always builds one, with empty fields when there is no identity.
        self.identity = CognitoIdentity()
        self._deadline = deadline

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        return (
            "LambdaContext(["
            f"aws_request_id={self.aws_request_id},"
            f"log_group_name={self.log_group_name},"
            f"log_stream_name={self.log_stream_name},"
            f"function_name={self.function_name},"
            f"memory_limit_in_mb={self.memory_limit_in_mb},"
            f"function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn},"
            f"client_context={self.client_context},"
            f"identity={self.identity},"
            f"tenant_id={self.tenant_id}"
            "])"
        )


class Worker:
    def __init__(self, channel):
        self.channel = channel
        self.handler = None
        self.function = None
        self.init_error = None
        self.pool = None

    # -- init ----------------------------------------------------------------------

    def init(self, spec):
        if self.handler is not None or self.init_error is not None:
            log_line("wsconn worker: a second init line was ignored")
            return
        try:
            self.handler = self._load(spec)
        except BaseException as e:  # SystemExit too: a module that exits is not ready
            self.init_error = error_of(e)
            log_error(self.init_error)
            self.channel.send({"ready": False, "error": self.init_error})
            return
        self.channel.send({"ready": True})

    def _load(self, spec):
        if not isinstance(spec, dict):
            raise Fault(MALFORMED_HANDLER_NAME, "the init line carries no handler")
        env = os.environ
        root = spec.get("root") or env.get("LAMBDA_TASK_ROOT") or os.getcwd()
        module = spec.get("module")
        export = spec.get("export")
        if not module or not export:
            # Lambda's own source of the handler: "app.handler", "pkg/mod.fn".
            handler = env.get("_HANDLER", "")
            try:
                module, export = handler.rsplit(".", 1)
            except ValueError as e:
                raise Fault(MALFORMED_HANDLER_NAME, f"Bad handler '{handler}': {e}") from None
        if not isinstance(module, str) or not isinstance(export, str):
            raise Fault(MALFORMED_HANDLER_NAME, f"Bad handler '{module}.{export}'")
        name = spec.get("functionName") or env.get("AWS_LAMBDA_FUNCTION_NAME") or "function"
        region = spec.get("region") or env.get("AWS_REGION") or "us-east-1"
        memory_mb = spec.get("memoryMb") or env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") or 128
        self.function = {
            "function_name": name,
            "function_version": spec.get("functionVersion") or env.get("AWS_LAMBDA_FUNCTION_VERSION") or "$LATEST",
            "memory_limit_in_mb": str(memory_mb),
            "log_group_name": spec.get("logGroupName") or env.get("AWS_LAMBDA_LOG_GROUP_NAME") or f"/aws/lambda/{name}",
            "log_stream_name": spec.get("logStreamName") or env.get("AWS_LAMBDA_LOG_STREAM_NAME") or "local",
            "invoked_function_arn": f"arn:aws:lambda:{region}:{LOCAL_ACCOUNT}:function:{name}",
        }

        # Everything that changes the process happens before the handler's module runs.
        root = os.path.abspath(root)
        if not os.path.isdir(root):
            raise Fault(IMPORT_MODULE_ERROR, f"Unable to import module '{module}': the handler directory {root} does not exist")
        sys.path.insert(0, root)
        sdk = env.get("WSCONN_PYTHON_SDK")
        if sdk:
            # Right after the root, as Lambda's /var/runtime (where its boto3 lives) comes
            # right after /var/task: a bundled copy wins, and the interpreter's own
            # site-packages (an older boto3, perhaps) do not.
            sys.path.insert(1, sdk)
        trust_extra_cas(env)
        install_redirect(env)
        # Read once: the handler (and any program it starts) sees Lambda's environment only.
        for name in _WSCONN_VARIABLES:
            env.pop(name, None)
        self.pool = Pool(MemoryLimit(memory_mb))

        # Lambda's rules (awslambdaric's _get_handler): "pkg/mod" is "pkg.mod".
        dotted = module.replace("/", ".")
        if dotted.split(".")[0] in sys.builtin_module_names:
            raise Fault(BUILT_IN_MODULE_CONFLICT, f"Cannot use built-in module {module} as a handler module")
        try:
            m = importlib.import_module(dotted)
        except ImportError as e:
            raise Fault(
                IMPORT_MODULE_ERROR,
                f"Unable to import module '{module}': {e}",
                "".join(traceback.format_exception(type(e), e, _user_traceback(e.__traceback__))),
            ) from None
        except SyntaxError as e:
            raise Fault(
                USER_CODE_SYNTAX_ERROR,
                f"Syntax error in module '{module}': {e}",
                '  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text),
            ) from None
        try:
            fn = getattr(m, export)
        except AttributeError:
            raise Fault(HANDLER_NOT_FOUND, f"Handler '{export}' missing on module '{module}'") from None
        # Lambda would fail each invocation with a TypeError; wsconn says so at load, as
        # it does for Node.js.
        if not callable(fn):
            raise Fault(
                HANDLER_NOT_FOUND,
                f"Handler '{export}' on module '{module}' is not callable (it is a {type(fn).__name__})",
            )
        return fn

    # -- invocations ----------------------------------------------------------------

    def invoke(self, msg):
        id_ = msg.get("id")
        if self.handler is None:
            err = self.init_error or {
                "errorType": IMPORT_MODULE_ERROR,
                "errorMessage": "the handler is not loaded",
                "stack": "",
            }
            self.channel.send({"id": id_, "error": err})
            return
        timeout_ms = msg.get("timeoutMs")
        if not isinstance(timeout_ms, (int, float)) or isinstance(timeout_ms, bool):
            timeout_ms = 3000  # Lambda's default timeout
        # The clock starts when the request arrives, as wsconn's does when it sends it.
        deadline = time.monotonic() + timeout_ms / 1000
        event = msg.get("event")
        try:
            self.pool.submit(lambda: self._run(id_, event, deadline))
        except Exception as e:
            err = error_of(e)
            log_error(err)
            self.channel.send({"id": id_, "error": err})

    def _run(self, id_, event, deadline):
        global _latest_request_id
        request_id = str(uuid.uuid4())
        _request.id = _latest_request_id = request_id
        try:
            context = LambdaContext(request_id, self.function, deadline)
            result = self.handler(event, context)
        except BaseException as e:
            err = error_of(e)
            log_error(err)
            self.channel.send({"id": id_, "error": err})
        else:
            try:
                result = to_result(result)
            except ValueError as e:
                err = marshal_error(e)
                log_error(err)
                self.channel.send({"id": id_, "error": err})
                return
            # A result that is not JSON becomes a Runtime.MarshalError answer in send.
            self.channel.send({"id": id_, "result": result})
        finally:
            _request.id = None

    def shutdown(self):
        if self.pool is not None:
            self.pool.shutdown()


def main():
    # Ctrl-C in wsconn's terminal reaches this process too: end quietly, as node does.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    channel = Channel()
    sys.stdout = _Unbuffered(sys.stdout)
    sys.stderr = _Unbuffered(sys.stderr)
    setup_logging()
    threading.stack_size(THREAD_STACK)
    worker = Worker(channel)
    for raw in channel.lines():
        if not raw.strip():
            continue
        try:
            msg = json.loads(raw)
            if not isinstance(msg, dict):
                raise ValueError(f"expected an object, got {type(msg).__name__}")
        except ValueError as e:
            log_line(f"wsconn worker: unreadable request line: {e}")
            continue
        if msg.get("init") is not None:
            worker.init(msg["init"])
        elif "id" in msg:
            worker.invoke(msg)
        else:
            log_line("wsconn worker: unreadable request line: neither init nor id")
    # stdin closed: wsconn retired this worker. What is in flight finishes first.
    worker.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
