"""worker.py's protocol: init, invocations, errors, output, context, concurrency, exit."""
import json
import re
import time
import uuid

import pytest

from harness import FIXTURES, WORKER, lambda_env

BASIC = FIXTURES / "basic"


@pytest.fixture(params=["file", "source"])
def mode(request):
    """`python3 -u worker.py` and `python3 -c <source>`: wsconn may start it either way."""
    return request.param


# -- init ------------------------------------------------------------------------------


def test_ready_and_a_result_in_either_launch_mode(start_worker, mode):
    w = start_worker(BASIC, mode=mode)
    assert w.init() == {"ready": True}
    assert w.call({"hello": "world"}) == {"id": 1, "result": {"event": {"hello": "world"}}}
    assert w.protocol_violations() == []


@pytest.mark.parametrize("module", ["pkg.mod", "pkg/mod"])
def test_a_dotted_module(start_worker, mode, module):
    w = start_worker(BASIC, mode=mode)
    assert w.init(module=module, export="fn") == {"ready": True}
    assert w.call({})["result"] == {"module": "pkg.mod"}


def test_without_module_and_export_the_handler_setting_is_read(start_worker):
    w = start_worker(BASIC, lambda_env(_HANDLER="pkg/mod.fn"))
    assert w.init(module=None, export=None) == {"ready": True}
    assert w.call({})["result"] == {"module": "pkg.mod"}


def test_a_handler_setting_without_a_dot_is_malformed(start_worker):
    w = start_worker(BASIC, lambda_env(_HANDLER="app"))
    err = w.init(module=None, export=None)["error"]
    assert err["errorType"] == "Runtime.MalformedHandlerName"
    assert err["errorMessage"].startswith("Bad handler 'app': ")


def test_sys_path_starts_with_the_root_and_holds_no_worker_directory(start_worker, mode):
    w = start_worker(BASIC, mode=mode)
    assert w.init(export="sys_path")["ready"] is True
    path = w.call({})["result"]
    assert path[0] == str(BASIC)
    assert "" not in path
    assert str(WORKER.parent) not in path


def init_error(start_worker, root, **fields):
    w = start_worker(root)
    ready = w.init(**fields)
    assert ready["ready"] is False, ready
    # Nothing but protocol on stdout, whatever went wrong.
    assert w.protocol_violations() == []
    return w, ready["error"]


def test_a_missing_module_is_not_ready(start_worker):
    w, err = init_error(start_worker, BASIC, module="nope")
    assert err["errorType"] == "Runtime.ImportModuleError"
    assert err["errorMessage"] == "Unable to import module 'nope': No module named 'nope'"
    # Lambda logs the failure; so does the worker, on stderr.
    w.wait_stderr("[ERROR] Runtime.ImportModuleError: Unable to import module 'nope'")


def test_a_missing_dependency_is_an_import_error_of_the_handler_module(start_worker):
    _, err = init_error(start_worker, FIXTURES / "broken_import")
    assert err["errorType"] == "Runtime.ImportModuleError"
    assert err["errorMessage"] == "Unable to import module 'app': No module named 'wsconn_missing_dependency'"


def test_a_missing_function_is_not_ready(start_worker):
    _, err = init_error(start_worker, BASIC, export="nope")
    assert err["errorType"] == "Runtime.HandlerNotFound"
    assert err["errorMessage"] == "Handler 'nope' missing on module 'app'"


def test_an_export_that_is_not_callable_is_not_ready(start_worker):
    _, err = init_error(start_worker, BASIC, export="not_callable")
    assert err["errorType"] == "Runtime.HandlerNotFound"
    assert "not callable" in err["errorMessage"]


def test_a_syntax_error_is_not_ready(start_worker):
    _, err = init_error(start_worker, FIXTURES / "broken_syntax", module="bad")
    assert err["errorType"] == "Runtime.UserCodeSyntaxError"
    assert err["errorMessage"].startswith("Syntax error in module 'bad': ")
    assert "bad.py, line 1" in err["errorMessage"]
    assert "Line 1" in err["stack"]


def test_an_exception_at_import_is_not_ready(start_worker):
    _, err = init_error(start_worker, FIXTURES / "raises_at_import")
    assert err["errorType"] == "RuntimeError"
    assert err["errorMessage"] == "config missing"


def test_a_built_in_module_name_is_not_ready(start_worker):
    _, err = init_error(start_worker, BASIC, module="sys", export="exit")
    assert err["errorType"] == "Runtime.BuiltInModuleConflict"
    assert err["errorMessage"] == "Cannot use built-in module sys as a handler module"


def test_a_missing_root_is_not_ready(start_worker, tmp_path):
    w = start_worker(tmp_path)
    ready = w.init(root=str(tmp_path / "gone"))
    assert ready["ready"] is False
    assert ready["error"]["errorType"] == "Runtime.ImportModuleError"
    assert "does not exist" in ready["error"]["errorMessage"]
    assert w.protocol_violations() == []


def test_invocations_after_a_failed_init_get_the_init_error(start_worker):
    w, err = init_error(start_worker, BASIC, module="nope")
    assert w.call({})["error"] == err


# -- results and errors ---------------------------------------------------------------


def test_an_exception_is_an_error_named_after_its_class(start_worker):
    w = start_worker(BASIC)
    w.init(export="fails")
    err = w.call({})["error"]
    assert err["errorType"] == "ValueError"
    assert err["errorMessage"] == "boom"
    assert isinstance(err["stack"], str)
    assert 'raise ValueError("boom")' in err["stack"]
    assert "app.py" in err["stack"]
    assert err["stack"].rstrip().endswith("ValueError: boom")
    # The worker's own frames are not the handler's business (Lambda drops its bootstrap's).
    assert str(WORKER) not in err["stack"] and '"<string>"' not in err["stack"]
    w.wait_stderr("[ERROR] ValueError: boom")


def test_a_custom_exception_keeps_its_class_name(start_worker):
    w = start_worker(BASIC)
    w.init(export="fails_custom")
    err = w.call({})["error"]
    assert (err["errorType"], err["errorMessage"]) == ("ChatError", "no such room")


def test_sys_exit_in_a_handler_is_an_exit_error_and_the_worker_goes_on(start_worker):
    w = start_worker(BASIC, lambda_env())
    w.init(export="exits")
    err = w.call({})["error"]
    assert err["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in err["errorMessage"]
    assert "error" in w.call({})
    assert w.proc.poll() is None


@pytest.mark.parametrize("kind", ["set", "object", "nan", "decimal_nan", "surrogate", "bytes", "coroutine_like", "top_bytes"])
def test_a_result_that_is_not_json_is_a_marshal_error_not_a_crash(start_worker, kind):
    w = start_worker(BASIC)
    w.init(export="not_json")
    err = w.call({"kind": kind})["error"]
    assert err["errorType"] == "Runtime.MarshalError"
    assert err["errorMessage"].startswith("Unable to marshal response: ")
    # Still serving, and stdout still only protocol.
    assert w.call({"kind": kind})["error"]["errorType"] == "Runtime.MarshalError"
    assert w.proc.poll() is None
    assert w.protocol_violations() == []


def test_a_set_is_reported_as_lambda_words_it(start_worker):
    w = start_worker(BASIC)
    w.init(export="not_json")
    err = w.call({"kind": "set"})["error"]
    assert err["errorMessage"] == "Unable to marshal response: Object of type set is not JSON serializable"


def test_decimals_are_json_numbers_with_all_their_digits(start_worker):
    w = start_worker(BASIC)
    w.init(export="decimals")
    w.call({})
    line = [l for l in w.stdout_lines if l.startswith('{"id": 1')][0]
    assert '"price": 12.340' in line
    assert '"big": 123456789012345678901234567890' in line
    assert '"text": "12.340"' in line
    assert json.loads(line)["result"]["exp"] == [1000, -0.5]


def test_bytes_holding_json_and_none_are_results(start_worker):
    w = start_worker(BASIC)
    w.init(export="returns_bytes")
    assert w.call({})["result"] == {"statusCode": 200}
    w2 = start_worker(BASIC)
    w2.init(export="returns_none")
    assert w2.call({}) == {"id": 1, "result": None}


def test_unreadable_lines_are_reported_and_skipped(start_worker):
    w = start_worker(BASIC)
    w.init()
    for bad in ["garbage", "[1, 2]", "{}", '{"id": ']:
        w.send_raw(bad)
    assert w.call({"after": "garbage"})["result"] == {"event": {"after": "garbage"}}
    w.wait_stderr(lambda lines: sum("wsconn worker: unreadable request line" in l for l in lines) == 4)
    assert w.proc.poll() is None


# -- output ---------------------------------------------------------------------------

LOG_LINE = r"^\[{level}\]\t\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z\t{rid}\t{msg}$"


def test_print_logging_and_fd_1_go_to_stderr_and_stdout_carries_only_protocol(start_worker):
    w = start_worker(BASIC)
    w.init(export="noisy")
    answer = w.call({"tag": "t1"})
    rid = answer["result"]["request_id"]
    # The handler cannot read protocol lines from stdin.
    assert answer["result"]["stdin"] == ""
    w.close_stdin()
    assert w.wait_exit() == 0
    err = w.stderr_lines
    for expected in ["app imported", "print-line t1", "stdout-write t1", "fd1-write", "subprocess-echo", "context-log-line"]:
        assert expected in err
    # Lambda's text format, with the invocation's request id.
    assert any(re.match(LOG_LINE.format(level="WARNING", rid=rid, msg="warning-line t1"), l) for l in err), err
    assert any(re.match(LOG_LINE.format(level="ERROR", rid=rid, msg="child-logger-line"), l) for l in err), err
    # As on Lambda, the root logger stays at WARNING unless AWS_LAMBDA_LOG_LEVEL says otherwise.
    assert not any("info-line" in l for l in err)
    assert w.protocol_violations() == []
    assert len(w.stdout_lines) == 2  # ready, and the one answer


def test_aws_lambda_log_level_sets_the_root_logger(start_worker):
    w = start_worker(BASIC, lambda_env(AWS_LAMBDA_LOG_LEVEL="info"))
    w.init(export="noisy")
    rid = w.call({"tag": "t2"})["result"]["request_id"]
    w.close_stdin()
    w.wait_exit()
    assert any(re.match(LOG_LINE.format(level="INFO", rid=rid, msg="info-line t2"), l) for l in w.stderr_lines), w.stderr()


def test_log_lines_carry_the_request_id_of_their_own_invocation(start_worker):
    w = start_worker(BASIC)
    w.init(export="log_later")
    # "a" logs after "b" has started: each line still names its own invocation.
    a = w.invoke({"seconds": 0.6, "tag": "a"})
    time.sleep(0.1)
    b = w.invoke({"seconds": 0.1, "tag": "b"})
    ids = {"a": w.answer(a)["result"], "b": w.answer(b)["result"]}
    for tag, rid in ids.items():
        line = re.compile(LOG_LINE.format(level="WARNING", rid=rid, msg=f"late-line {tag}"))
        w.wait_stderr(lambda lines: any(line.match(l) for l in lines))


# -- context --------------------------------------------------------------------------


def test_context_fields(start_worker):
    w = start_worker(BASIC)
    w.init(export="context_fields", functionName="chat-sendmessage", region="eu-west-1", memoryMb=256,
           logGroupName="/aws/lambda/chat-sendmessage", logStreamName="2026/01/01/[$LATEST]local")
    a = w.call({}, timeout_ms=5000)["result"]
    b = w.call({}, timeout_ms=5000)["result"]
    assert uuid.UUID(a["aws_request_id"]).version == 4
    assert a["aws_request_id"] != b["aws_request_id"]
    assert a["function_name"] == "chat-sendmessage"
    assert a["function_version"] == "$LATEST"
    assert a["memory_limit_in_mb"] == "256"  # a string, as awslambdaric has it
    assert a["invoked_function_arn"] == "arn:aws:lambda:eu-west-1:000000000000:function:chat-sendmessage"
    assert a["log_group_name"] == "/aws/lambda/chat-sendmessage"
    assert a["log_stream_name"] == "2026/01/01/[$LATEST]local"
    assert a["identity"] == [None, None]
    assert a["client_context"] is None
    assert 4000 < a["remaining"] <= 5000


def test_remaining_time_counts_down_from_the_invocations_timeout(start_worker):
    w = start_worker(BASIC)
    w.init(export="context_fields")
    quick = w.call({}, timeout_ms=2000)["result"]["remaining"]
    after_sleep = w.call({"sleep": 0.6}, timeout_ms=2000)["result"]["remaining"]
    assert 1500 < quick <= 2000
    assert after_sleep <= 1400
    assert w.call({"sleep": 0.3}, timeout_ms=100)["result"]["remaining"] == 0


# -- concurrency and exit -------------------------------------------------------------


def test_invocations_run_concurrently(start_worker):
    w = start_worker(BASIC)
    w.init(export="slow")
    started = time.monotonic()
    ids = [w.invoke({"seconds": 1.0, "tag": n}) for n in ("a", "b")]
    # The later one may finish first: answers are matched by id.
    assert [w.answer(i)["result"] for i in ids] == ["a", "b"]
    assert time.monotonic() - started < 1.8


def test_many_invocations_at_once_all_run(start_worker):
    # 40 threads' stacks (8 MiB each) are more than a 128 MB function's memory limit
    # would hold if the pool did not make room for them.
    w = start_worker(BASIC)
    w.init(export="slow", memoryMb=128)
    started = time.monotonic()
    ids = [w.invoke({"seconds": 0.5, "tag": n}) for n in range(40)]
    assert [w.answer(i).get("result") for i in ids] == list(range(40)), w.stderr()
    assert time.monotonic() - started < 5


def test_closing_stdin_finishes_the_invocations_in_flight_then_exits_0(start_worker):
    w = start_worker(BASIC)
    w.init(export="slow")
    id_ = w.invoke({"seconds": 1.0, "tag": "last"})
    started = time.monotonic()
    w.close_stdin()
    assert w.wait_exit() == 0
    assert time.monotonic() - started >= 0.8
    assert w.answers[id_]["result"] == "last"


def test_closing_stdin_of_an_idle_worker_exits_0(start_worker, mode):
    w = start_worker(BASIC, mode=mode)
    w.init()
    w.close_stdin()
    assert w.wait_exit(10) == 0


def test_closing_stdin_before_init_exits_0(start_worker):
    w = start_worker(BASIC)
    w.close_stdin()
    assert w.wait_exit(10) == 0
    assert w.stdout_lines == []
