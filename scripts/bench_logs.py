#!/usr/bin/env python3
"""`wsconn logs` benchmark helper for scripts/bench (run it through scripts/bench).

Against a running emulator (tests/emulator/launcher.py, with the bench's latency):

1. Deploys a stack with a route and the access log, and writes 10,000 events into its
   groups with PutLogEvents (5,000 handler lines in invocations of four lines, 5,000
   access records), spread over the last 30 minutes.
2. `wsconn logs --since 1h` (text, then --output json) to /dev/null: wall time and the
   process's peak RSS (getrusage of the child), median of RUNS.
3. `wsconn logs --follow` while three batches of 10,000 events are written: its RSS
   (VmRSS from /proc) after each batch is shown, which must not grow with the events
   shown; and the lag from the end of each small batch's PutLogEvents to the event on
   stdout (the 2 s target of issue 25).

Usage: bench_logs.py --bin BIN --endpoint URL [--runs 3] [--out target/bench/logs.md]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
STACK = "benchlogs"


def client(endpoint: str, service: str):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="bench", aws_secret_access_key="bench")


def env(endpoint: str, home: str) -> dict:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home,
            "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
            "AWS_EC2_METADATA_DISABLED": "true", "NO_COLOR": "1"}


def put(logs, group: str, stream: str, events: list[tuple[int, str]]) -> None:
    try:
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    # PutLogEvents: at most 10,000 events and 1 MB a call, in time order.
    batch: list[dict] = []
    size = 0
    for t, m in sorted(events):
        if len(batch) == 10_000 or size + len(m) + 26 > 1_000_000:
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
            batch, size = [], 0
        batch.append({"timestamp": t, "message": m})
        size += len(m) + 26
    if batch:
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)


def seed(logs, start_ms: int, span_ms: int, n: int, tag: str) -> None:
    """n events: half handler lines (invocations of START, a line, END, REPORT), half
    access records."""
    half = n // 2
    fn, acc = [], []
    for i in range(half // 4):
        rid = f"{i:08x}-0000-4000-8000-{tag:0>12}"[:36]
        t = start_ms + (i * 4 * span_ms) // n
        fn += [(t, f"START RequestId: {rid} Version: 1\n"),
               (t + 1, f"2026-12-07T10:00:00.000Z\t{rid}\tINFO\tgot {{\"connectionId\":\"c{i}=\"}}\n"),
               (t + 2, f"END RequestId: {rid}\n"),
               (t + 3, f"REPORT RequestId: {rid}\tDuration: 2.50 ms\tBilled Duration: 3 ms\t"
                       "Memory Size: 128 MB\tMax Memory Used: 64 MB\t\n")]
    for i in range(half):
        t = start_ms + (i * span_ms) // half
        acc.append((t, json.dumps({"requestId": f"r{tag}{i}", "eventType": "MESSAGE",
                                   "routeKey": "sendmessage", "status": "200",
                                   "connectionId": f"c{i}="})))
    put(logs, f"/aws/lambda/{STACK}-sendmessage", f"bench-{tag}", fn)
    put(logs, f"/aws/apigateway/{STACK}/api", f"bench-{tag}", acc)


def run_read(binary: str, e: dict, cwd: str, args: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MiB) and lines printed of one `wsconn logs` run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run([binary, "--stack", STACK, *args], env=e, cwd=cwd,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"logs {args} exited {proc.returncode}: {proc.stderr}")
    # ru_maxrss of RUSAGE_CHILDREN is the largest of any child so far: each run is
    # measured in a fresh helper process (see main), so it is this run's.
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) / 1024.0, proc.stdout.count("\n")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def follow(binary: str, e: dict, cwd: str, logs, cfg: list[str]) -> tuple[list[float], list[float], int]:
    """RSS after each of three 10,000-event batches, lags of small marker events."""
    proc = subprocess.Popen([binary, *cfg, "--stack", STACK, "logs", "--follow", "--since", "1s",
                             "--access", "--output", "json"], env=e, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    seen: dict[str, float] = {}
    count = [0]

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            count[0] += 1
            if '"mark-' in line:
                msg = json.loads(json.loads(line)["message"])
                seen[msg["requestId"]] = time.monotonic()

    threading.Thread(target=reader, daemon=True).start()
    time.sleep(2)
    rss, lags = [], []
    for b in range(3):
        now = int(time.time() * 1000)
        seed(logs, now - 500, 500, 10_000, f"f{b}")
        mark = f"mark-{b}"
        put(logs, f"/aws/apigateway/{STACK}/api", f"mark-{b}",
            [(int(time.time() * 1000), json.dumps({"requestId": mark, "connectionId": "m="}))])
        written = time.monotonic()
        deadline = written + 30
        while mark not in seen and time.monotonic() < deadline:
            time.sleep(0.02)
        lags.append(seen.get(mark, float("nan")) - written)
        time.sleep(2)
        rss.append(rss_mib(proc.pid))
    proc.terminate()
    proc.wait(timeout=10)
    return rss, lags, count[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", required=True)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "target/bench/logs.md"))
    p.add_argument("--measure", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    binary = str(Path(a.bin).resolve())
    home = tempfile.mkdtemp(prefix="wsconn-bench-logs-")
    e = env(a.endpoint, home)
    if a.measure is not None:
        # One measured read in this fresh process (so RUSAGE_CHILDREN is its own).
        print(json.dumps(run_read(binary, e, home, json.loads(a.measure))))
        return 0
    app = Path(home) / "app"
    (app / "handlers/sendmessage").mkdir(parents=True)
    (app / "handlers/sendmessage/index.mjs").write_text(
        "export const handler = async () => ({ statusCode: 200 });\n")
    (app / "wsconn.toml").write_text(
        '[routes.sendmessage]\nhandler = "handlers/sendmessage"\n\n[logging]\naccess-log = true\n')
    e_app = dict(e)
    subprocess.run([binary, "--config", str(app / "wsconn.toml"), "--stack", STACK, "deploy", "--yes"],
                   env=e_app, cwd=home, check=True, capture_output=True)
    logs = client(a.endpoint, "logs")
    now = int(time.time() * 1000)
    seed(logs, now - 30 * 60_000, 30 * 60_000 - 5_000, 10_000, "seed")
    cfg = ["--config", str(app / "wsconn.toml")]
    rows = []
    for label, args in (("logs --since 1h", ["logs", "--since", "1h"]),
                        ("logs --since 1h --output json", ["logs", "--since", "1h", "--output", "json"])):
        results = []
        for _ in range(a.runs):
            out = subprocess.run([sys.executable, __file__, "--bin", binary, "--endpoint", a.endpoint,
                                  "--measure", json.dumps([*cfg, *args])], capture_output=True, text=True, check=True)
            results.append(json.loads(out.stdout))
        walls = [r[0] for r in results]
        peaks = [r[1] for r in results]
        rows.append((label, statistics.median(walls), statistics.median(peaks), results[0][2]))
        sys.stderr.write(f"  {label:<30} {statistics.median(walls):.2f} s, peak RSS "
                         f"{statistics.median(peaks):.1f} MiB, {results[0][2]} lines\n")
    rss, lags, shown = follow(binary, {**e}, home, logs, cfg)
    md = ["", "### `wsconn logs`", "",
          f"10,000 events (5,000 handler lines in invocations of four, 5,000 access records) "
          f"over 30 minutes in two groups, read with `--since 1h` to /dev/null; median of {a.runs} "
          f"run{'s' if a.runs != 1 else ''}. Text folds START and END away (7,500 lines).", "",
          "| command | wall (s) | peak RSS (MiB) | lines |", "|---|---:|---:|---:|"]
    for label, wall, peak, lines in rows:
        md.append(f"| `{label}` | {wall:.2f} | {peak:.1f} | {lines} |")
    md += ["",
           f"`logs --follow --access --output json` while three batches of 10,000 events are "
           f"written ({shown} lines shown): RSS after each batch "
           f"{', '.join(f'{r:.1f}' for r in rss)} MiB (events are streamed, not collected); "
           f"a marker written after each batch showed "
           f"{', '.join(f'{l:.2f}' for l in lags)} s after its PutLogEvents returned "
           f"(poll 1 s; target 2 s).", ""]
    text = "\n".join(md)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(text)
    sys.stdout.write(text)
    subprocess.run([binary, "--config", str(app / "wsconn.toml"), "--stack", STACK, "destroy", "--yes"],
                   env=e_app, cwd=home, capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
