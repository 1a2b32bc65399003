#!/usr/bin/env python3
"""Deploy benchmark helper for scripts/bench (run it through scripts/bench).

Drives the real wsconn binary against a running emulator (tests/emulator/launcher.py,
started by scripts/bench with --latency-ms), and writes a Markdown section:

1. For parallelism P in 8 and 1, over RUNS fresh stacks: `deploy --yes` (creates the
   stack), a no-op `deploy`, `diff` and `destroy --yes`, each with --parallelism P.
   Per command: wall time (measured around the process) and, from /_wsconn/stats
   (reset before each command), calls, mutating calls and round-trip levels.
   Medians per command and P, side by side, with wall(P=1) / wall(P=8).
2. Realism mode (POST /_wsconn/config {"realism": true}): a fresh deploy at P=8 and at
   P=1 (RUNS each, new stacks), against the critical-path bound computed from the
   emulator's own clocks; the target is wall(P=8) / bound <= 1.15.
3. The application examples/chat (--config examples/chat/wsconn.toml: three functions,
   an authorizer, throttling and access logs): fresh, no-op, diff and destroy at P=8,
   then fresh deploys in realism mode against the same bound.
4. Releases, in realism mode at P=8: a code-only change (the built-in echo edited in
   an --assets-dir copy) against its own chain (UpdateFunctionCode, the update's wait,
   PublishVersion, the version's Pending wait, AddPermission, UpdateIntegration,
   CreateDeployment, UpdateStage); then `rollback --yes` (wall, levels, and the levels
   after its last read).
5. A custom domain, in realism mode at P=8 with the certificate pending for 60 s (the
   emulator's acm_validation_wait_s): a fresh deploy of the pattern with [domain]
   hosted-zone (a public zone made for each run), against the certificate's chain
   (request, ACM's validation record, the CNAME, 60 s, CreateDomainName, the alias
   records INSYNC); when the stage went live; levels. Target: wall / chain <= 1.15.

Usage: bench_deploy.py --bin BIN --endpoint URL [--runs 3] [--out target/bench/deploy.md]
Progress goes to stderr, the Markdown to stdout and --out; each command's output is
kept in target/bench/logs/.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

PARALLELISMS = (8, 1)
COMMANDS = (  # (label, arguments after --stack NAME, expected exit code)
    ("deploy (fresh)", ["deploy", "--yes"], 0),
    ("deploy (no-op)", ["deploy"], 0),
    ("diff (in sync)", ["diff"], 0),
    ("destroy", ["destroy", "--yes"], 0),
)
TARGET_RATIO = 1.15
ROOT = Path(__file__).resolve().parent.parent


class BenchError(Exception):
    pass


class Emulator:
    def __init__(self, endpoint: str):
        self.endpoint = endpoint.rstrip("/")

    def _call(self, method: str, path: str, body: object | None = None) -> object:
        data = None if body is None else json.dumps(body).encode()
        if method == "POST" and data is None:
            data = b""
        req = urllib.request.Request(self.endpoint + path, method=method, data=data,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def reset(self) -> None:
        self._call("POST", "/_wsconn/reset")

    def stats(self) -> dict:
        return self._call("GET", "/_wsconn/stats")

    def calls(self) -> list[dict]:
        return self._call("GET", "/_wsconn/calls")

    def config(self, **settings) -> dict:
        if settings:
            return self._call("POST", "/_wsconn/config", settings)
        return self._call("GET", "/_wsconn/config")


class Runner:
    """Runs wsconn commands with a clean environment, timing each one."""

    def __init__(self, binary: str, emulator: Emulator, logs: Path):
        self.binary = str(Path(binary).resolve())
        self.emu = emulator
        self.logs = logs
        logs.mkdir(parents=True, exist_ok=True)
        for old in logs.glob("*.log"):  # only this run's logs stay
            old.unlink()
        self.home = tempfile.mkdtemp(prefix="wsconn-bench-home-")
        # No ./wsconn.toml, no ~/.aws profile: only what the bench sets.
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.home,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": emulator.endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_COLOR": "1",
        }

    def run(self, stack: str, argv: list[str], parallelism: int, expect: int, label: str,
            config: Path | None = None) -> dict:
        pre = ["--config", str(config)] if config else []
        cmd = [self.binary, *pre, "--stack", stack, *argv, "--parallelism", str(parallelism)]
        self.emu.reset()
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=self.env, cwd=self.home, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True)
        wall = time.perf_counter() - t0
        stats = self.emu.stats()
        slug = "".join(ch if ch.isalnum() else "-" for ch in label).strip("-").replace("--", "-")
        log = self.logs / f"{stack}-{slug}.log"
        log.write_text(f"$ {' '.join(cmd)}\n# exit {proc.returncode}, {wall:.3f} s, {json.dumps(stats)}\n"
                       f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
        if proc.returncode != expect:
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            raise BenchError(f"{label} (P={parallelism}, stack {stack}) exited {proc.returncode}, "
                             f"expected {expect}; full output in {log}\n{tail}")
        sys.stderr.write(f"  P={parallelism} {stack:<14} {label:<18} {wall:7.3f} s  "
                         f"calls {stats['calls']:3d} (mutating {stats['mutating']:2d})  "
                         f"levels {stats['levels']:3d}  faults {stats['faults']}\n")
        return {"wall": wall, **stats}


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt_count(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def machine() -> str:
    try:
        cpus = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        cpus = str(os.cpu_count())
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpus} CPUs, {platform.machine()}, {model}"


def version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        out = ""
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                             capture_output=True, text=True).stdout.strip()
    except OSError:
        rev = ""
    return ", ".join(x for x in (out, f"commit {rev}" if rev else "") if x)


def warm_up(runner: Runner, nonce: str) -> None:
    """One unmeasured deploy + destroy: moto builds some state lazily on first use
    (the first fresh deploy is ~0.7 s slower), which would bias whichever P runs first."""
    stack = f"w{nonce}"
    runner.run(stack, ["deploy", "--yes"], PARALLELISMS[0], 0, "warm-up deploy")
    runner.run(stack, ["destroy", "--yes"], PARALLELISMS[0], 0, "warm-up destroy")


def bench_commands(runner: Runner, runs: int, nonce: str) -> dict:
    """results[label][P] = list of per-run dicts."""
    results: dict[str, dict[int, list[dict]]] = {label: {p: [] for p in PARALLELISMS}
                                                 for label, _, _ in COMMANDS}
    for i in range(1, runs + 1):
        for p in PARALLELISMS:
            stack = f"b{nonce}p{p}r{i}"
            for label, argv, expect in COMMANDS:
                results[label][p].append(runner.run(stack, argv, p, expect, label))
    return results


def bench_realism(runner: Runner, runs: int, nonce: str) -> tuple[dict[int, list[dict]], dict]:
    cfg = runner.emu.config(realism=True)
    results: dict[int, list[dict]] = {p: [] for p in PARALLELISMS}
    try:
        for i in range(1, runs + 1):
            for p in PARALLELISMS:
                stack = f"r{nonce}p{p}r{i}"
                results[p].append(runner.run(stack, ["deploy", "--yes"], p, 0, "deploy (realism)"))
    finally:
        runner.emu.config(realism=False)
    return results, cfg


CHAT = ROOT / "examples/chat/wsconn.toml"


def bench_chat(runner: Runner, runs: int, nonce: str) -> tuple[dict[str, list[dict]], list[dict]]:
    """examples/chat: the commands at P=8, then realism-mode fresh deploys."""
    p = PARALLELISMS[0]
    results: dict[str, list[dict]] = {label: [] for label, _, _ in COMMANDS}
    for i in range(1, runs + 1):
        stack = f"c{nonce}r{i}"
        for label, argv, expect in COMMANDS:
            results[label].append(runner.run(stack, argv, p, expect, f"chat {label}", CHAT))
    # The causal depth of the no-op's reads: at 50 ms moto's one-call-at-a-time handling
    # of ~60 calls can push one read past another's end (an extra "level" that is not a
    # round trip); with a round trip longer than that processing, levels = round trips.
    latency = runner.emu.config()["latency_ms"]
    runner.emu.config(latency_ms=300)
    try:
        results["deploy (no-op, 300 ms)"] = [runner.run(f"c{nonce}r1", ["deploy"], p, 0,
                                                        "chat no-op at 300 ms", CHAT)]
    finally:
        runner.emu.config(latency_ms=latency)
    runner.emu.config(realism=True)
    realism: list[dict] = []
    try:
        for i in range(1, runs + 1):
            realism.append(runner.run(f"cr{nonce}r{i}", ["deploy", "--yes"], p, 0,
                                      "chat deploy (realism)", CHAT))
    finally:
        runner.emu.config(realism=False)
    return results, realism


def render_chat(results: dict[str, list[dict]], realism: list[dict], cfg: dict, runs: int) -> str:
    p = PARALLELISMS[0]
    cp = critical_path(cfg)
    out = [
        "",
        f"### The application: examples/chat (P={p})",
        "",
        "Three functions (the built-in echo, sendmessage, the authorizer) with their roles, "
        "policies, log groups and permissions, a REQUEST authorizer on $connect, a custom "
        "route, stage throttling and an access log; the account's CloudWatch role is set "
        f"by the first run and left by destroy. Median of {runs} run{'s' if runs != 1 else ''}.",
        "",
        "| command | wall (s) | calls | mutating | levels |",
        "|---|---:|---:|---:|---:|",
    ]
    for label in [label for label, _, _ in COMMANDS] + ["deploy (no-op, 300 ms)"]:
        rs = results[label]
        out.append(f"| {label} | {median([r['wall'] for r in rs]):.2f} "
                   f"| {fmt_count(median([r['calls'] for r in rs]))} "
                   f"| {fmt_count(median([r['mutating'] for r in rs]))} "
                   f"| {fmt_count(median([r['levels'] for r in rs]))} |")
    wall = median([r["wall"] for r in realism])
    ratio = wall / cp["bound"]
    verdict = "meets" if ratio <= TARGET_RATIO else "misses"
    out += [
        "",
        f"| deploy (fresh, realism) | wall (s) | calls | refused | levels | bound (s) | wall / bound |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| examples/chat | {wall:.2f} | {fmt_count(median([r['calls'] for r in realism]))} "
        f"| {fmt_count(median([r['faults'] for r in realism]))} "
        f"| {fmt_count(median([r['levels'] for r in realism]))} | {cp['bound']:.2f} "
        f"| {ratio:.2f} ({verdict} the {TARGET_RATIO:g} target) |",
        "",
    ]
    return "\n".join(out)


def critical_path(cfg: dict) -> dict[str, float]:
    """The deploy's critical path under the emulator's clocks (seconds). Releases put
    the function's chain in front of the API's last writes: the $default integration
    names the version, which exists once the function is Active and published."""
    lat = cfg["latency_ms"] / 1000.0
    function_chain = (lat                           # first read
                      + lat                         # CreateRole
                      + cfg["role_propagation_s"]
                      + lat                         # CreateFunction
                      + cfg["function_pending_s"]
                      + lat                         # GetFunctionConfiguration sees Active
                      + lat                         # GetFunction: $LATEST as this run made it
                      + lat                         # PublishVersion
                      + cfg["function_pending_s"]   # the new version is Pending
                      + lat                         # it is Active
                      + lat                         # the $default integration names it
                      + lat                         # its route
                      + lat                         # the route's response
                      + lat                         # CreateDeployment
                      + lat                         # CreateStage: the switch
                      + lat)                        # final verification read
    table_chain = (lat                              # first read
                   + lat                            # CreateTable
                   + cfg["table_creating_s"]
                   + lat                            # DescribeTable sees ACTIVE
                   + lat                            # UpdateTimeToLive
                   + lat)                           # final verification read
    api_chain = lat + 15 * lat + lat                # first read, 15 writes to one API, final read
    return {"function": function_chain, "table": table_chain, "api": api_chain,
            "bound": max(function_chain, table_chain, api_chain)}


CODE_CHANGE_MARK = "\n// bench: a code-only change {n}\n"


def release_chain(cfg: dict) -> float:
    """A code-only change's own chain under the emulator's clocks (seconds)."""
    lat = cfg["latency_ms"] / 1000.0
    return (lat                                     # UpdateFunctionCode
            + cfg["function_update_s"]              # LastUpdateStatus InProgress
            + lat                                   # it is Successful
            + lat                                   # PublishVersion
            + cfg["function_pending_s"]             # the version is Pending
            + lat                                   # it is Active
            + lat                                   # AddPermission on the version
            + lat                                   # UpdateIntegration names it
            + lat                                   # CreateDeployment
            + lat)                                  # UpdateStage: the switch


def chain_levels(calls: list[dict]) -> int:
    """The longest chain of calls each starting after the previous ended."""
    levels, end = 0, float("-inf")
    for c in sorted(calls, key=lambda c: c["end"]):
        if c["start"] >= end:
            levels += 1
            end = c["end"]
    return levels


def levels_after_reads(calls: list[dict]) -> int:
    """Round-trip levels among the calls that start after the last read ended."""
    reads = [c for c in calls if not c["mutating"]]
    if not reads:
        return 0
    last = max(c["end"] for c in reads)
    rest = sorted((c for c in calls if c["start"] >= last), key=lambda c: c["end"])
    # The longest chain of calls each starting after the previous ended (interval
    # scheduling: take the call that ends first, then the first to start after it…).
    levels, end = 0, float("-inf")
    for c in rest:
        if c["start"] >= end:
            levels += 1
            end = c["end"]
    return levels


def bench_releases(runner: Runner, runs: int, nonce: str) -> tuple[list[dict], list[dict], dict]:
    """Realism mode: code-only changes, then rollbacks, on one stack per run."""
    changes: list[dict] = []
    rollbacks: list[dict] = []
    cfg = runner.emu.config(realism=True)
    try:
        for i in range(1, runs + 1):
            assets = Path(tempfile.mkdtemp(prefix="wsconn-bench-assets-"))
            for sub in ("lambda", "mapping-templates"):
                (assets / sub).mkdir()
                for f in (ROOT / sub).iterdir():
                    (assets / sub / f.name).write_bytes(f.read_bytes())
            stack = f"rel{nonce}r{i}"
            extra = ["--assets-dir", str(assets)]
            runner.run(stack, ["deploy", "--yes", *extra], 8, 0, "release: first deploy")
            handler = assets / "lambda/index.mjs"
            handler.write_text(handler.read_text() + CODE_CHANGE_MARK.format(n=i))
            changes.append(runner.run(stack, ["deploy", "--yes", *extra], 8, 0,
                                      "release: code-only change"))
            r = runner.run(stack, ["rollback", "--yes"], 8, 0, "rollback")
            r["after_reads"] = levels_after_reads(runner.emu.calls())
            rollbacks.append(r)
    finally:
        runner.emu.config(realism=False)
    return changes, rollbacks, cfg


def render_releases(changes: list[dict], rollbacks: list[dict], cfg: dict, runs: int) -> str:
    chain = release_chain(cfg)
    wall = median([r["wall"] for r in changes])
    ratio = wall / chain
    verdict = "meets" if ratio <= 1.2 else "misses"
    return "\n".join([
        "",
        "### Releases (realism mode, P=8)",
        "",
        f"A code-only change of the built-in echo, released: its own chain is UpdateFunctionCode, "
        f"the update's {cfg['function_update_s']:g} s, PublishVersion, the version's "
        f"{cfg['function_pending_s']:g} s Pending, AddPermission, UpdateIntegration, "
        f"CreateDeployment and UpdateStage at {cfg['latency_ms']:g} ms a call "
        f"= {chain:.2f} s. Then `rollback --yes`. Median of {runs} run{'s' if runs != 1 else ''}.",
        "",
        "| command | wall (s) | calls | mutating | levels | levels after the reads | chain (s) | wall / chain |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| deploy (code-only change) | {wall:.2f} | {fmt_count(median([r['calls'] for r in changes]))} "
        f"| {fmt_count(median([r['mutating'] for r in changes]))} "
        f"| {fmt_count(median([r['levels'] for r in changes]))} | | {chain:.2f} "
        f"| {ratio:.2f} ({verdict} the 1.2 target) |",
        f"| rollback | {median([r['wall'] for r in rollbacks]):.2f} "
        f"| {fmt_count(median([r['calls'] for r in rollbacks]))} "
        f"| {fmt_count(median([r['mutating'] for r in rollbacks]))} "
        f"| {fmt_count(median([r['levels'] for r in rollbacks]))} "
        f"| {fmt_count(median([r['after_reads'] for r in rollbacks]))} | | |",
        "",
    ])


DOMAIN_WAIT_S = 60


def create_zone(endpoint: str, name: str) -> None:
    """A public Route 53 hosted zone in the emulator (REST-XML, as the SDKs send it)."""
    body = ('<CreateHostedZoneRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/">'
            f"<Name>{name}</Name><CallerReference>bench-{name}</CallerReference>"
            "</CreateHostedZoneRequest>").encode()
    req = urllib.request.Request(
        endpoint.rstrip("/") + "/2013-04-01/hostedzone", method="POST", data=body,
        headers={"Content-Type": "application/xml",
                 "Authorization": "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/"
                                  "route53/aws4_request, SignedHeaders=host, Signature=0"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        resp.read()


def domain_chain(cfg: dict) -> float:
    """The domain's own chain under the emulator's clocks (seconds)."""
    lat = cfg["latency_ms"] / 1000.0
    return (3 * lat                                 # the first read (ListCertificates, then
                                                    # each one's details, then the zone)
            + lat                                   # RequestCertificate
            + cfg["certificate_record_s"]           # ACM names the validation record
            + lat                                   # DescribeCertificate shows it
            + lat                                   # the zone's records, read again
            + lat                                   # ChangeResourceRecordSets: the CNAME
            + DOMAIN_WAIT_S                         # ACM's clock, from the CNAME on
            + lat                                   # DescribeCertificate: ISSUED
            + lat                                   # CreateDomainName
            + lat                                   # the zone's records, read again
            + lat                                   # ChangeResourceRecordSets: A, AAAA, TXT
            + cfg["dns_change_s"]                   # PENDING
            + lat                                   # GetChange: INSYNC
            + lat)                                  # final verification read


def bench_domain(runner: Runner, runs: int, nonce: str) -> tuple[list[dict], dict]:
    """Realism mode, the certificate pending for 60 s: fresh deploys with [domain]."""
    results: list[dict] = []
    cfg = runner.emu.config(realism=True, acm_validation_wait_s=DOMAIN_WAIT_S)
    try:
        for i in range(1, runs + 1):
            zone = f"d{nonce}r{i}.test"
            create_zone(runner.emu.endpoint, zone)
            conf = Path(tempfile.mkdtemp(prefix="wsconn-bench-domain-")) / "wsconn.toml"
            conf.write_text(f'[domain]\nname = "ws.{zone}"\nhosted-zone = "{zone}"\n')
            stack = f"dom{nonce}r{i}"
            r = runner.run(stack, ["deploy", "--yes"], 8, 0, "domain: fresh", config=conf)
            calls = runner.emu.calls()
            t0 = min(c["start"] for c in calls)
            stage = [c["end"] for c in calls if c["operation"] in ("CreateStage", "UpdateStage")]
            r["live_at"] = (max(stage) - t0) if stage else float("nan")
            r["write_levels"] = chain_levels([c for c in calls if c["mutating"]])
            noop = runner.run(stack, ["deploy"], 8, 0, "domain: no-op", config=conf)
            r["noop_levels"] = noop["levels"]
            r["noop_mutating"] = noop["mutating"]
            results.append(r)
            runner.run(stack, ["destroy", "--yes"], 8, 0, "domain: destroy", config=conf)
    finally:
        runner.emu.config(realism=False, acm_validation_wait_s=0)
    return results, cfg


def render_domain(results: list[dict], cfg: dict, runs: int) -> str:
    chain = domain_chain(cfg)
    wall = median([r["wall"] for r in results])
    ratio = wall / chain
    verdict = "meets" if ratio <= TARGET_RATIO else "misses"
    return "\n".join([
        "",
        "### A custom domain (realism mode, P=8, the certificate pending 60 s)",
        "",
        f"A fresh deploy of the pattern with `[domain] hosted-zone`: the certificate's chain is the "
        f"first read, RequestCertificate, ACM's {cfg['certificate_record_s']:g} s before it names the "
        f"validation record, the CNAME, {DOMAIN_WAIT_S} s until ISSUED, CreateDomainName and the alias "
        f"records ({cfg['dns_change_s']:g} s PENDING) at {cfg['latency_ms']:g} ms a call "
        f"= {chain:.2f} s. \"Live\" is when the stage switched, from the deploy's first call. "
        f"Median of {runs} run{'s' if runs != 1 else ''}.",
        "",
        "| command | wall (s) | stage live at (s) | calls | mutating | levels (all) | levels of writes | chain (s) | wall / chain |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| deploy (fresh, with [domain]) | {wall:.2f} | {median([r['live_at'] for r in results]):.2f} "
        f"| {fmt_count(median([r['calls'] for r in results]))} "
        f"| {fmt_count(median([r['mutating'] for r in results]))} "
        f"| {fmt_count(median([r['levels'] for r in results]))} "
        f"| {fmt_count(median([r['write_levels'] for r in results]))} | {chain:.2f} "
        f"| {ratio:.2f} ({verdict} the {TARGET_RATIO} target) |",
        f"| deploy (no-op, with [domain]) | | | | {fmt_count(median([r['noop_mutating'] for r in results]))} "
        f"| {fmt_count(median([r['noop_levels'] for r in results]))} | | | |",
        "",
        "\"Levels (all)\" counts every poll of the 60 s wait (DescribeCertificate every 2 s once "
        "30 s have passed); \"levels of writes\" is the longest chain of mutating calls.",
        "",
    ])


def render(results: dict, realism: dict[int, list[dict]], cfg: dict, runs: int,
           binary: str, latency_ms: float) -> str:
    p_hi, p_lo = PARALLELISMS
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "## Deploy benchmark (emulator with latency)",
        "",
        f"- Date: {now}; machine: {machine()}",
        f"- wsconn: {version(binary)}",
        f"- Emulator: moto 5.2.5 through tests/emulator/launcher.py, {latency_ms:g} ms latency "
        f"per AWS call; median of {runs} run{'s' if runs != 1 else ''} per row; levels = sequential round-trip levels "
        "(longest chain of calls each starting after the previous ended).",
        "",
        f"| command | wall P={p_hi} (s) | wall P={p_lo} (s) | P={p_lo}/P={p_hi} "
        f"| calls P={p_hi} | calls P={p_lo} | mutating P={p_hi} | mutating P={p_lo} "
        f"| levels P={p_hi} | levels P={p_lo} |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, _, _ in COMMANDS:
        by_p = {p: results[label][p] for p in PARALLELISMS}
        wall = {p: median([r["wall"] for r in by_p[p]]) for p in PARALLELISMS}
        col = lambda key, p: fmt_count(median([r[key] for r in by_p[p]]))  # noqa: E731
        out.append(
            f"| {label} | {wall[p_hi]:.2f} | {wall[p_lo]:.2f} | {wall[p_lo] / wall[p_hi]:.2f}x "
            f"| {col('calls', p_hi)} | {col('calls', p_lo)} | {col('mutating', p_hi)} "
            f"| {col('mutating', p_lo)} | {col('levels', p_hi)} | {col('levels', p_lo)} |")

    cp = critical_path(cfg)
    wall = {p: median([r["wall"] for r in realism[p]]) for p in PARALLELISMS}
    col = lambda key, p: fmt_count(median([r[key] for r in realism[p]]))  # noqa: E731
    ratio = wall[p_hi] / cp["bound"]
    verdict = "meets" if ratio <= TARGET_RATIO else "misses"
    out += [
        "",
        f"Realism mode (tables CREATING {cfg['table_creating_s']:g} s, IAM propagation "
        f"{cfg['role_propagation_s']:g} s, function Pending {cfg['function_pending_s']:g} s, "
        f"update InProgress {cfg['function_update_s']:g} s, concurrent modification on one API; "
        f"{cfg['latency_ms']:g} ms latency): fresh deploy, median of {runs} run{'s' if runs != 1 else ''}. "
        "Bound = "
        f"critical path from those clocks: max(function {cp['function']:.2f} s, "
        f"table {cp['table']:.2f} s, API {cp['api']:.2f} s). Refused = calls answered with an "
        "AWS timing error (then retried).",
        "",
        f"| deploy (fresh, realism) | wall P={p_hi} (s) | wall P={p_lo} (s) | calls P={p_hi} "
        f"| calls P={p_lo} | refused P={p_hi} | refused P={p_lo} | levels P={p_hi} "
        f"| levels P={p_lo} | bound (s) | wall P={p_hi} / bound |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| deploy (fresh) | {wall[p_hi]:.2f} | {wall[p_lo]:.2f} | {col('calls', p_hi)} "
        f"| {col('calls', p_lo)} | {col('faults', p_hi)} | {col('faults', p_lo)} "
        f"| {col('levels', p_hi)} | {col('levels', p_lo)} | {cp['bound']:.2f} "
        f"| {ratio:.2f} ({verdict} the {TARGET_RATIO:g} target) |",
        "",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True, help="wsconn binary")
    parser.add_argument("--endpoint", required=True, help="emulator URL")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "target/bench/deploy.md"))
    parser.add_argument("--only", choices=["domain"],
                        help="run one section alone (its Markdown goes to --out)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    def interrupted(signum, frame):
        # subprocess.run kills the running wsconn when this propagates through it.
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    emu = Emulator(args.endpoint)
    cfg = emu.config()
    runner = Runner(args.bin, emu, ROOT / "target/bench/logs")
    nonce = datetime.datetime.now().strftime("%H%M%S")
    if args.only == "domain":
        try:
            dom, dom_cfg = bench_domain(runner, args.runs, nonce)
        except BenchError as exc:
            sys.stderr.write(f"bench: error: {exc}\n")
            return 1
        markdown = render_domain(dom, dom_cfg, args.runs)
        Path(args.out).write_text(markdown)
        sys.stdout.write(markdown)
        return 0
    try:
        sys.stderr.write(f"==> deploy benchmark: {args.runs} run(s) per parallelism "
                         f"{'/'.join(map(str, PARALLELISMS))}, {cfg['latency_ms']:g} ms latency\n")
        warm_up(runner, nonce)
        results = bench_commands(runner, args.runs, nonce)
        sys.stderr.write("==> realism mode: fresh deploys\n")
        realism, realism_cfg = bench_realism(runner, args.runs, nonce)
        sys.stderr.write("==> examples/chat\n")
        chat, chat_realism = bench_chat(runner, args.runs, nonce)
        sys.stderr.write("==> releases: code-only changes and rollbacks\n")
        rel_changes, rel_rollbacks, rel_cfg = bench_releases(runner, args.runs, nonce)
        sys.stderr.write("==> a custom domain, the certificate pending 60 s\n")
        dom, dom_cfg = bench_domain(runner, args.runs, nonce)
    except BenchError as exc:
        sys.stderr.write(f"bench: error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("bench: interrupted\n")
        return 130
    markdown = render(results, realism, realism_cfg, args.runs, args.bin, cfg["latency_ms"])
    markdown += render_chat(chat, chat_realism, realism_cfg, args.runs)
    markdown += render_releases(rel_changes, rel_rollbacks, rel_cfg, args.runs)
    markdown += render_domain(dom, dom_cfg, args.runs)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown)
    sys.stdout.write(markdown)
    sys.stderr.write(f"==> written to {out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
