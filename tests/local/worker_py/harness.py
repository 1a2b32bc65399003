"""Drives src/local/worker.py as wsconn does: a subprocess spoken to over its JSON lines.

The worker runs under WSCONN_TEST_WORKER_PYTHON when set (to try 3.12 or 3.13), else
under the interpreter running pytest.
"""
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
WORKER = REPO / "src" / "local" / "worker.py"
FIXTURES = HERE / "fixtures"
PYTHON = os.environ.get("WSCONN_TEST_WORKER_PYTHON") or sys.executable

# How long an answer may take on a busy machine (the tests share 2 cores with builds).
ANSWER_TIMEOUT = 30


def lambda_env(**extra):
    """An environment built from scratch, as wsconn builds it (nothing inherited but PATH)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_LAMBDA_FUNCTION_NAME": "chat-fn",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/chat-fn",
        "AWS_LAMBDA_LOG_STREAM_NAME": "local",
    }
    env.update({k: v for k, v in extra.items() if v is not None})
    return env


def _reject(constant):
    raise ValueError(f"{constant} is not JSON")


class Worker:
    """One worker process, its answers by id and its stderr."""

    def __init__(self, root, env=None, mode="file"):
        if mode == "file":
            cmd = [PYTHON, "-u", str(WORKER)]
        else:
            cmd = [PYTHON, "-u", "-c", WORKER.read_text()]
        self.root = Path(root)
        self.proc = subprocess.Popen(
            cmd,
            cwd=root,
            env=env if env is not None else lambda_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._cond = threading.Condition()
        self.ready = None
        self.answers = {}
        self.stdout_lines = []
        self.stderr_lines = []
        self._next_id = 1
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for t in self._readers:
            t.start()

    def _read_stdout(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                self.stdout_lines.append(line)
                try:
                    msg = json.loads(line)
                except ValueError:
                    msg = None
                if isinstance(msg, dict) and "ready" in msg:
                    self.ready = msg
                elif isinstance(msg, dict) and "id" in msg:
                    self.answers[msg["id"]] = msg
                self._cond.notify_all()

    def _read_stderr(self):
        for raw in self.proc.stderr:
            with self._cond:
                self.stderr_lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()

    # -- sending -----------------------------------------------------------------------

    def send_raw(self, text):
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def send(self, obj):
        self.send_raw(json.dumps(obj))

    def init(self, module="app", export="handler", **fields):
        spec = {
            "root": str(self.root),
            "module": module,
            "export": export,
            "functionName": "chat-fn",
            "functionVersion": "$LATEST",
            "memoryMb": 128,
            "region": "us-east-1",
            "logGroupName": "/aws/lambda/chat-fn",
            "logStreamName": "local",
        }
        spec.update(fields)
        self.send({"init": spec})
        return self.wait_ready()

    def wait_ready(self):
        with self._cond:
            if not self._cond.wait_for(lambda: self.ready is not None, ANSWER_TIMEOUT):
                raise AssertionError(f"no answer to init; stderr:\n{self.stderr()}")
            return self.ready

    def invoke(self, event=None, timeout_ms=3000):
        """Sends one invocation and returns its id."""
        id_ = self._next_id
        self._next_id += 1
        self.send({"id": id_, "event": event, "timeoutMs": timeout_ms})
        return id_

    def answer(self, id_, timeout=ANSWER_TIMEOUT):
        with self._cond:
            if not self._cond.wait_for(lambda: id_ in self.answers, timeout):
                raise AssertionError(f"no answer for id {id_}; stderr:\n{self.stderr()}")
            return self.answers[id_]

    def call(self, event=None, timeout_ms=3000):
        return self.answer(self.invoke(event, timeout_ms))

    # -- ending ------------------------------------------------------------------------

    def close_stdin(self):
        self.proc.stdin.close()

    def wait_exit(self, timeout=ANSWER_TIMEOUT):
        rc = self.proc.wait(timeout)
        for t in self._readers:
            t.join(5)
        return rc

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for t in self._readers:
            t.join(5)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass

    def wait_stderr(self, expected, timeout=ANSWER_TIMEOUT):
        """Waits until stderr satisfies `expected` (a string it holds, or a predicate of
        its lines): stderr is read apart from stdout, so it may lag behind an answer."""
        check = expected if callable(expected) else (lambda lines: expected in "\n".join(lines))
        with self._cond:
            if not self._cond.wait_for(lambda: check(self.stderr_lines), timeout):
                raise AssertionError(f"stderr never showed {expected!r}; it is:\n{self.stderr()}")

    def stderr(self):
        with self._cond:
            return "\n".join(self.stderr_lines)

    def protocol_violations(self):
        """stdout lines that are not protocol messages (should be none), read as strictly
        as wsconn's serde_json reads them (no NaN or Infinity)."""
        bad = []
        for line in self.stdout_lines:
            try:
                msg = json.loads(line, parse_constant=_reject)
            except ValueError:
                bad.append(line)
                continue
            if not isinstance(msg, dict) or not ({"ready"} <= msg.keys() or {"id"} <= msg.keys()):
                bad.append(line)
        return bad
