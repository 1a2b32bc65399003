// Benchmarks of the local runtime's newer features (issues 22 and 23): warm echo against
// the earlier figures, wss://, the runtime SDK's first install, workers on demand on a
// 50-route application, Python beside Node.js, packaging's refusal of a 3 GB tree, and a
// second deploy of a Python handler with requirements that runs no pip. Run by
// scripts/bench-runtime, which checks the tools and sets WSCONN_BIN; it prints Markdown
// and writes target/bench/runtime/runtime.md (and runtime.json, the raw figures).
//
// Sections (RUNTIME_SECTIONS, default all, in this order):
//   echo     scripts/bench-local (CHAT=0) ECHO_RUNS times (default 3) against WSCONN_BIN:
//            connect, echo p50/p99, echoed msg/s, the server's VmHWM, send --all
//   tls      one `local --tls` server; TLS_N (200) sequential new connections over
//            wss:// (the local CA trusted) and as many over ws://, interleaved, each
//            handshake + one message to the built-in $default echo + its echo + close;
//            p50/p99 of handshake-to-echo, and of the TLS handshake alone (tls.connect)
//   sdk      time from spawning `wsconn --output json local --port 0` to its ready line
//            for AWS's sample chat (tests/fixtures/aws-sample-chat: @aws-sdk clients,
//            no package.json) and examples/chat-python (boto3), with an empty
//            WSCONN_CACHE_DIR and npm's / pip's cache empty, then with npm's / pip's
//            cache warm, then with wsconn's cache warm (SDK_RUNS each, default 2; 4 warm)
//   workers  a generated 50-route application (each route its own directory, index.mjs
//            importing @aws-sdk/client-apigatewaymanagementapi and posting the data back
//            to the sender through CONNECTIONS_URL): the process tree's RSS at idle with
//            the default (on-demand) workers, the first message on 10 cold routes,
//            then the tree at idle with --warm; plus a breakdown of one cold start
//   python   two routes, one Node.js and one Python (python3.13), each returning the
//            body as the route response; PAIR_N (1000) round trips on each over one
//            connection, interleaved; p50/p99, python/node; each worker's VmRSS at idle
//   package  a handler directory with a link (inside) to a directory of 3 GiB of sparse
//            files (three of 1 GiB; then 3,072 of 1 MiB): `wsconn --config … diff` with
//            AWS_ENDPOINT_URL on a closed port, under /usr/bin/time -v, PACKAGE_RUNS (5) each
//   pip      the emulator (tests/emulator/launcher.py, 50 ms a call): examples/chat-python
//            plus requirements.txt (six==1.16.0) deployed with an empty WSCONN_CACHE_DIR
//            and an empty pip cache, then deployed again with
//            WSCONN_DEPLOY_PYTHON=/nonexistent/python3 (fails if pip runs); references: a
//            no-op deploy with pip, a diff after a changed requirement with no Python (must
//            fail), and the same pip install alone
//
// Before every measured run the 1-minute load average is read; above LOAD_LIMIT (1.0),
// or with the CPUs more than CPU_LIMIT (25) % busy over the last 2 s, the run waits,
// polling every 20 s, up to LOAD_WAIT_S (600) s. Each wait is reported, with the share
// of CPU time busy over the 2 s just before the run.
//
// Caches: WSCONN_DATA_DIR is target/bench/runtime/data (the local CA, made once); the
// warm WSCONN_CACHE_DIR is target/bench/runtime/cache (installed once, untimed, where a
// measure needs it warm); every cold measure gets an empty directory of its own.
import { spawn, execFile, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import fs from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(repo, 'target/node-tools/'));
const WebSocket = require('ws');

const BIN = process.env.WSCONN_BIN;
if (!BIN || !fs.existsSync(BIN)) {
  console.error('bench-runtime: set WSCONN_BIN to a wsconn binary (scripts/bench-runtime does)');
  process.exit(2);
}
const OUT = path.join(repo, 'target/bench/runtime');
const LOGS = path.join(OUT, 'logs');
const DATA_DIR = path.join(OUT, 'data');
const WARM_CACHE = path.join(OUT, 'cache');
const EMULATOR_PYTHON = process.env.WSCONN_EMULATOR_PYTHON || path.join(repo, 'target/emulator-venv/bin/python');
const SECTIONS = (process.env.RUNTIME_SECTIONS || 'echo tls sdk workers python package pip').split(/[\s,]+/).filter(Boolean);
const LOAD_LIMIT = Number(process.env.LOAD_LIMIT ?? 1.0);
const LOAD_WAIT_S = Number(process.env.LOAD_WAIT_S ?? 600);
const CPU_LIMIT = Number(process.env.CPU_LIMIT ?? 25);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const note = (m) => process.stderr.write(`==> ${m}\n`);
const f1 = (x) => (x == null || Number.isNaN(x) ? '–' : Number(x).toFixed(1));
const f2 = (x) => (x == null || Number.isNaN(x) ? '–' : Number(x).toFixed(2));
const mb = (kb) => (kb / 1024).toFixed(1);
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] : null;
};
const median = (xs) => pct(xs, 50);
const stats = (xs) => ({ n: xs.length, p50: pct(xs, 50), p99: pct(xs, 99), max: xs.length ? Math.max(...xs) : null, min: xs.length ? Math.min(...xs) : null, mean: xs.reduce((a, b) => a + b, 0) / (xs.length || 1) });
const uniq = () => Math.random().toString(36).slice(2, 10);

function fresh(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

function copyTree(from, to) {
  fs.rmSync(to, { recursive: true, force: true });
  fs.cpSync(from, to, { recursive: true, filter: (src) => !/(^|\/)(node_modules|__pycache__)(\/|$)/.test(path.relative(from, src)) });
  return to;
}

// ---------------------------------------------------------------------------------
// Machine fairness: the load gate.
const waits = [];

function load1() {
  return Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

function cpuTimes() {
  const v = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = v[3] + (v[4] || 0);
  return { idle, total: v.reduce((a, b) => a + b, 0) };
}

async function cpuBusyPct(ms) {
  const a = cpuTimes();
  await sleep(ms);
  const b = cpuTimes();
  const total = b.total - a.total;
  return total > 0 ? (100 * (total - (b.idle - a.idle))) / total : 0;
}

// The 1-minute average lags a job that has just started, so the CPU's busy share over
// the last 2 s is checked too (CPU_LIMIT, default 25 %: more than half a core).
async function quiet(label) {
  const t0 = Date.now();
  const first = load1();
  let l = first;
  let busy = await cpuBusyPct(2000);
  while ((l > LOAD_LIMIT || busy > CPU_LIMIT) && (Date.now() - t0) / 1000 < LOAD_WAIT_S) {
    note(`load ${l.toFixed(2)} (limit ${LOAD_LIMIT}), CPU ${busy.toFixed(0)} % busy (limit ${CPU_LIMIT}): waiting 20 s before "${label}"`);
    await sleep(20_000);
    l = load1();
    busy = await cpuBusyPct(2000);
  }
  const rec = {
    label,
    load_seen: first,
    waited_s: Math.round((Date.now() - t0) / 1000) - 2,
    load_at_start: l,
    gave_up: l > LOAD_LIMIT || busy > CPU_LIMIT,
    cpu_busy_pct: Math.round(busy * 10) / 10,
  };
  waits.push(rec);
  return rec;
}

// ---------------------------------------------------------------------------------
// Processes: the tree under a pid, its RSS, its CPU time.
function procTable() {
  const rows = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      rows.set(Number(d), { pid: Number(d), ppid: Number(f[1]), comm, ticks: Number(f[11]) + Number(f[12]) });
    } catch {}
  }
  return rows;
}

function tree(root) {
  const rows = procTable();
  const inTree = new Set(rows.has(root) ? [root] : []);
  let grew = true;
  while (grew) {
    grew = false;
    for (const r of rows.values()) {
      if (!inTree.has(r.pid) && inTree.has(r.ppid)) {
        inTree.add(r.pid);
        grew = true;
      }
    }
  }
  const procs = [];
  for (const pid of inTree) {
    const r = rows.get(pid);
    try {
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      r.rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      r.hwmKb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
      try {
        r.pssKb = Number(/^Pss:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
      } catch {
        r.pssKb = 0;
      }
      procs.push(r);
    } catch {}
  }
  return { procs, rssKb: procs.reduce((a, p) => a + p.rssKb, 0), pssKb: procs.reduce((a, p) => a + p.pssKb, 0), ticks: procs.reduce((a, p) => a + p.ticks, 0) };
}

// Idle: the tree used no CPU (at most one clock tick) over QUIET_MS and its RSS moved
// less than 1 MB; gives up after maxMs.
async function waitIdle(root, { quietMs = 2000, maxMs = 60_000 } = {}) {
  const t0 = performance.now();
  let last = tree(root);
  let since = performance.now();
  while (performance.now() - t0 < maxMs) {
    await sleep(250);
    const now = tree(root);
    if (now.ticks - last.ticks > 1 || Math.abs(now.rssKb - last.rssKb) > 1024 || now.procs.length !== last.procs.length) {
      last = now;
      since = performance.now();
    } else if (performance.now() - since >= quietMs) {
      return { waited_ms: performance.now() - t0, idle: true, ...now };
    }
  }
  return { waited_ms: performance.now() - t0, idle: false, ...tree(root) };
}

// ---------------------------------------------------------------------------------
// `wsconn local`: started, its ready line timed, its log kept, stopped.
function baseEnv(extra = {}) {
  return { ...process.env, WSCONN_DATA_DIR: DATA_DIR, WSCONN_CACHE_DIR: WARM_CACHE, NO_COLOR: '1', ...extra };
}

function startLocal({ name, cwd = repo, config, args = [], env = baseEnv(), readyTimeoutMs = 900_000 }) {
  return new Promise((resolve, reject) => {
    fs.mkdirSync(LOGS, { recursive: true });
    const logFile = path.join(LOGS, `${name}.log`);
    const logStream = fs.createWriteStream(logFile);
    const argv = ['--output', 'json', ...(config ? ['--config', config] : []), 'local', '--port', '0', ...args];
    const t0 = performance.now();
    const child = spawn(BIN, argv, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stderr.on('data', (d) => {
      log += d;
      logStream.write(d);
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name}: no ready line within ${readyTimeoutMs / 1000} s; see ${logFile}`));
    }, readyTimeoutMs);
    const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${name}: wsconn exited (${code ?? signal}) before its ready line:\n${log.trim().split('\n').slice(-5).join('\n')}`));
    });
    readline.createInterface({ input: child.stdout }).once('line', (line) => {
      const readyMs = performance.now() - t0;
      clearTimeout(timer);
      let ready;
      try {
        ready = JSON.parse(line);
      } catch {
        child.kill('SIGKILL');
        reject(new Error(`${name}: unexpected first line: ${line}`));
        return;
      }
      resolve({
        name,
        child,
        pid: child.pid,
        ready,
        readyMs,
        logFile,
        log: () => log,
        async stop() {
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
          const r = await exited;
          clearTimeout(t);
          logStream.end();
          return r;
        },
      });
    });
  });
}

// A WebSocket client that keeps every frame it receives, and waits for one that matches.
function client(url, options = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    const waiters = [];
    ws.on('message', (d) => {
      const text = d.toString();
      const i = waiters.findIndex((w) => w.match(text));
      if (i >= 0) waiters.splice(i, 1)[0].resolve(text);
    });
    ws.once('open', () =>
      resolve({
        ws,
        next(match, timeoutMs = 30_000) {
          return new Promise((res, rej) => {
            const w = { match, resolve: (t) => { clearTimeout(w.timer); res(t); } };
            w.timer = setTimeout(() => {
              waiters.splice(waiters.indexOf(w), 1);
              rej(new Error(`no matching frame within ${timeoutMs} ms`));
            }, timeoutMs);
            waiters.push(w);
          });
        },
        close: () => new Promise((r) => { ws.once('close', r); ws.close(1000); }),
      }),
    );
    ws.once('error', reject);
    ws.once('unexpected-response', (_, res) => reject(new Error(`handshake refused: HTTP ${res.statusCode}`)));
  });
}

function run(cmd, args, { env, cwd = repo, timeoutMs = 900_000 } = {}) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    execFile(cmd, args, { env, cwd, timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

// The SDK caches every warm measure uses, installed once and untimed.
let warmed = false;
async function warmCache() {
  if (warmed) return;
  warmed = true;
  for (const [name, app] of [['warm-node-sdk', 'tests/fixtures/aws-sample-chat'], ['warm-python-sdk', 'examples/chat-python']]) {
    const dir = copyTree(path.join(repo, app), path.join(OUT, 'apps', name));
    const s = await startLocal({ name, cwd: dir, config: path.join(dir, 'wsconn.toml') });
    await s.stop();
  }
}

// ---------------------------------------------------------------------------------
// Sections. Each returns { md: [lines], data }.

async function sectionEcho() {
  const runs = Number(process.env.ECHO_RUNS || 3);
  const rows = [];
  for (let i = 0; i < runs; i++) {
    const gate = await quiet(`echo run ${i + 1}`);
    note(`echo: scripts/bench-local run ${i + 1} of ${runs}`);
    const r = await run(path.join(repo, 'scripts/bench-local'), [], { env: baseEnv({ WSCONN_BIN: BIN, CHAT: '0' }) });
    if (r.code !== 0) throw new Error(`scripts/bench-local failed (${r.code}):\n${r.stderr.slice(-2000)}`);
    const t = fs.readFileSync(path.join(repo, 'target/bench/local.md'), 'utf8');
    const grab = (re) => re.exec(t)?.slice(1).map(Number);
    const [cp50, cp99] = grab(/connect p50 \/ p99 \| ([\d.]+) \/ ([\d.]+) ms/) ?? [];
    const [ep50, ep99, emax] = grab(/echo p50 \/ p99 \| ([\d.]+) \/ ([\d.]+) ms \(max ([\d.]+)\)/) ?? [];
    const [rate, msgs, secs, wrong] = grab(/echoed messages per second \| (\d+) \((\d+) in ([\d.]+) s, (\d+) wrong\)/) ?? [];
    const [tracked, of] = grab(/items while all connected \| (\d+) of (\d+)/) ?? [];
    const [left] = grab(/items after all disconnected \| (\d+)/) ?? [];
    const [rss] = grab(/server peak RSS \(VmHWM\) \| ([\d.]+) MB/) ?? [];
    const [code] = grab(/exit code after SIGTERM \| (\d+)/) ?? [];
    const [sendS, sendRate, , , , recv] = grab(/send --all` to \d+ clients \| ([\d.]+) s \((\d+) msg\/s; sent (\d+), gone (\d+), failed (\d+); (\d+) received\)/) ?? [];
    rows.push({ run: i + 1, gate, cp50, cp99, ep50, ep99, emax, rate, msgs, secs, wrong, tracked, of, left, rss, code, sendS, sendRate, recv });
  }
  const md = [
    '### 1. Warm invocations: scripts/bench-local\'s echo',
    '',
    `\`WSCONN_BIN=${path.relative(repo, BIN)} CHAT=0 scripts/bench-local\`, ${runs} runs: 1,000 clients connect at 500/s; each sends 10 messages to the built-in \`$default\` echo (a warm Node.js worker), awaiting each echo, after a random think time of 0–400 ms; then disconnects. RSS is the wsconn process's VmHWM (the worker is not counted, as before).`,
    '',
    '| run | connect p50 / p99 | echo p50 / p99 (max) | echoed msg/s | server VmHWM | items tracked / left | `send --all` to 1,000 | exit |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.run} | ${f1(r.cp50)} / ${f1(r.cp99)} ms | ${f1(r.ep50)} / ${f1(r.ep99)} ms (${f1(r.emax)}) | ${r.rate} (${r.msgs} in ${f2(r.secs)} s, ${r.wrong} wrong) | ${f1(r.rss)} MB | ${r.tracked} of ${r.of} / ${r.left} | ${f2(r.sendS)} s (${r.recv} received) | ${r.code} |`),
    `| median | ${f1(median(rows.map((r) => r.cp50)))} / ${f1(median(rows.map((r) => r.cp99)))} ms | ${f1(median(rows.map((r) => r.ep50)))} / ${f1(median(rows.map((r) => r.ep99)))} ms | ${median(rows.map((r) => r.rate))} | ${f1(median(rows.map((r) => r.rss)))} MB | | ${f2(median(rows.map((r) => r.sendS)))} s | |`,
    '',
  ];
  return { md, data: rows };
}

// One new connection: handshake, one message to the echo, its echo, close (awaited).
function connectEcho(url, options) {
  return new Promise((resolve, reject) => {
    const payload = `bench-${uniq()}`;
    const t0 = performance.now();
    let tOpen;
    const ws = new WebSocket(url, options);
    ws.once('open', () => {
      tOpen = performance.now();
      ws.send(payload);
    });
    ws.once('message', (d) => {
      const tEcho = performance.now();
      let ok = false;
      try {
        ok = JSON.parse(d.toString()).body === payload;
      } catch {}
      ws.once('close', () => resolve({ total: tEcho - t0, open: tOpen - t0, echo: tEcho - tOpen, ok }));
      ws.close(1000);
    });
    ws.once('error', reject);
    ws.once('unexpected-response', (_, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
}

function tlsHandshake(host, port, ca) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const s = tls.connect({ host, port, ca, servername: net.isIP(host) ? undefined : host }, () => {
      const ms = performance.now() - t0;
      s.once('close', () => resolve(ms));
      s.end();
    });
    s.once('error', reject);
  });
}

async function sectionTls() {
  const N = Number(process.env.TLS_N || 200);
  const s = await startLocal({ name: 'tls', args: ['--tls'] });
  const wss = s.ready.websocket_url;
  const u = new URL(wss);
  const plain = `ws://${u.host}${u.pathname}`;
  const caFile = path.join(DATA_DIR, 'local-ca/ca.pem');
  const ca = fs.readFileSync(caFile);
  try {
    for (let i = 0; i < 20; i++) {
      await connectEcho(wss, { ca });
      await connectEcho(plain, {});
      await tlsHandshake(u.hostname, Number(u.port), ca);
    }
    const gate = await quiet('tls');
    note(`tls: ${N} wss:// and ${N} ws:// connections, interleaved`);
    const a = [];
    const b = [];
    const h = [];
    let wrong = 0;
    for (let i = 0; i < N; i++) {
      const x = await connectEcho(wss, { ca });
      const y = await connectEcho(plain, {});
      h.push(await tlsHandshake(u.hostname, Number(u.port), ca));
      if (!x.ok || !y.ok) wrong++;
      a.push(x);
      b.push(y);
    }
    // Without the CA the handshake is refused (nothing was installed system-wide).
    let untrusted;
    try {
      await connectEcho(wss, {});
      untrusted = 'connected (unexpected)';
    } catch (e) {
      untrusted = `refused: ${e.code || e.message}`;
    }
    const S = (xs, k) => stats(xs.map((x) => x[k]));
    const data = { gate, n: N, wss: { total: S(a, 'total'), open: S(a, 'open'), echo: S(a, 'echo') }, ws: { total: S(b, 'total'), open: S(b, 'open'), echo: S(b, 'echo') }, tls_only: stats(h), wrong, untrusted };
    const row = (label, st) => `| ${label} | ${f1(st.p50)} | ${f1(st.p99)} | ${f1(st.max)} |`;
    const md = [
      '### 2. TLS: a new wss:// connection and one echo',
      '',
      `One \`wsconn local --tls\` (the built-in stack), its certificate from the local CA in \`$WSCONN_DATA_DIR/local-ca/ca.pem\` (made once before the run). ${N} times, sequentially: a new connection with the CA trusted (ws's default: no TLS session reuse, a full handshake each time), one message to the built-in \`$default\` echo, its echo received, close (awaited, not timed); each wss:// connection is followed by a ws:// one to the same port (it speaks both), then a bare TLS handshake (\`tls.connect\` to secureConnect). After 20 untimed rounds. Client: Node.js ${process.version} with ws 8.`,
      '',
      '| ms | p50 | p99 | max |',
      '|---|---:|---:|---:|',
      row('wss://: constructor → echo received', data.wss.total),
      row('wss://: of which the handshake (TCP + TLS + upgrade + `$connect` PutItem)', data.wss.open),
      row('wss://: of which the echo round trip', data.wss.echo),
      row('ws://: constructor → echo received', data.ws.total),
      row('ws://: of which the handshake (TCP + upgrade + `$connect` PutItem)', data.ws.open),
      row('ws://: of which the echo round trip', data.ws.echo),
      row('TLS handshake alone (tls.connect → secureConnect)', data.tls_only),
      '',
      `Wrong echoes: ${wrong}. Without the CA: ${untrusted}.`,
      '',
    ];
    return { md, data };
  } finally {
    await s.stop();
  }
}

async function timeReady(label, app, env, extraLogRe) {
  const dir = copyTree(path.join(repo, app), path.join(OUT, 'apps', `sdk-${label}`));
  const gate = await quiet(`sdk ${label}`);
  const s = await startLocal({ name: `sdk-${label}`, cwd: dir, config: path.join(dir, 'wsconn.toml'), env });
  const log = s.log();
  await s.stop();
  const installed = extraLogRe.exec(log);
  return { label, readyMs: s.readyMs, installS: installed ? Number(installed[1]) : null, gate };
}

async function sectionSdk() {
  const runs = Number(process.env.SDK_RUNS || 2);
  const warmRuns = Number(process.env.SDK_WARM_RUNS || 4);
  const apps = [
    { lang: 'node', app: 'tests/fixtures/aws-sample-chat', re: /installed the AWS SDK for JavaScript in ([\d.]+) s/, toolCache: 'npm_config_cache', tool: 'npm' },
    { lang: 'python', app: 'examples/chat-python', re: /installed boto3 in ([\d.]+) s/, toolCache: 'PIP_CACHE_DIR', tool: 'pip' },
  ];
  const out = {};
  for (const a of apps) {
    const rows = [];
    const toolWarm = path.join(OUT, `${a.tool}-cache-warm`);
    for (let i = 0; i < runs; i++) {
      const cache = fresh(path.join(OUT, `sdk-cold-${a.lang}`));
      const toolCold = fresh(path.join(OUT, `${a.tool}-cache-cold`));
      note(`sdk: ${a.lang}, empty caches, run ${i + 1}`);
      rows.push({ kind: `empty WSCONN_CACHE_DIR, empty ${a.tool} cache`, ...(await timeReady(`${a.lang}-cold-${i}`, a.app, baseEnv({ WSCONN_CACHE_DIR: cache, [a.toolCache]: toolCold }), a.re)) });
    }
    // The tool's cache warmed by one untimed install, then kept.
    fresh(toolWarm);
    await timeReady(`${a.lang}-prime`, a.app, baseEnv({ WSCONN_CACHE_DIR: fresh(path.join(OUT, `sdk-cold-${a.lang}`)), [a.toolCache]: toolWarm }), a.re);
    waits.pop();
    for (let i = 0; i < runs; i++) {
      const cache = fresh(path.join(OUT, `sdk-cold-${a.lang}`));
      note(`sdk: ${a.lang}, empty WSCONN_CACHE_DIR, warm ${a.tool} cache, run ${i + 1}`);
      rows.push({ kind: `empty WSCONN_CACHE_DIR, warm ${a.tool} cache`, ...(await timeReady(`${a.lang}-toolwarm-${i}`, a.app, baseEnv({ WSCONN_CACHE_DIR: cache, [a.toolCache]: toolWarm }), a.re)) });
    }
    const warmCacheDir = path.join(OUT, `sdk-cold-${a.lang}`);
    for (let i = 0; i < warmRuns; i++) {
      note(`sdk: ${a.lang}, warm WSCONN_CACHE_DIR, run ${i + 1}`);
      rows.push({ kind: 'warm WSCONN_CACHE_DIR (installed)', ...(await timeReady(`${a.lang}-warm-${i}`, a.app, baseEnv({ WSCONN_CACHE_DIR: warmCacheDir, [a.toolCache]: toolWarm }), a.re)) });
    }
    out[a.lang] = rows;
  }
  // Reference: the built-in stack (one Node.js worker, no SDK), same measure.
  const ref = [];
  for (let i = 0; i < warmRuns; i++) {
    const gate = await quiet('sdk reference');
    const s = await startLocal({ name: `sdk-reference-${i}`, env: baseEnv() });
    await s.stop();
    ref.push({ readyMs: s.readyMs, gate });
  }
  const defaultNpm = path.join(os.homedir(), '.npm');
  const md = [
    '### 3. The first run\'s SDK install',
    '',
    `Time from spawning \`wsconn --output json local --port 0\` to its ready line (the install happens before it, and the ready line also waits for the warm workers: the authorizer's and \`$default\`'s). Node.js: a copy of tests/fixtures/aws-sample-chat (AWS's sample sendmessage handlers, importing @aws-sdk/client-dynamodb, @aws-sdk/lib-dynamodb and @aws-sdk/client-apigatewaymanagementapi, no package.json): wsconn runs \`npm ci\` of its pinned lockfile into its cache. Python: a copy of examples/chat-python (boto3): wsconn makes a virtualenv and pip-installs its pinned boto3. "Empty" caches are new empty directories (\`WSCONN_CACHE_DIR\`, and \`npm_config_cache\` / \`PIP_CACHE_DIR\`: packages come from the registries over the network); "warm npm/pip cache" is one that a previous untimed install filled. Every run names its own npm and pip cache; the developer's own (${defaultNpm}, ~/.cache/pip) is not used. install = wsconn's own "installed … in N s" note. Python here is \`python3\` on PATH: ${pythonOnPath()}.`,
    '',
    '| application | caches | runs | ready line: each run (s) | install alone (s) |',
    '|---|---|---:|---|---|',
  ];
  for (const [lang, rows] of Object.entries(out)) {
    const kinds = [...new Set(rows.map((r) => r.kind))];
    for (const k of kinds) {
      const rs = rows.filter((r) => r.kind === k);
      md.push(`| ${lang === 'node' ? 'aws-sample-chat (Node.js, 3 SDK clients)' : 'chat-python (boto3)'} | ${k} | ${rs.length} | ${rs.map((r) => f2(r.readyMs / 1000)).join(', ')} | ${rs.map((r) => (r.installS == null ? '–' : f1(r.installS))).join(', ')} |`);
    }
  }
  md.push(`| the built-in stack (no SDK; reference) | – | ${ref.length} | ${ref.map((r) => f2(r.readyMs / 1000)).join(', ')} | – |`);
  md.push('');
  return { md, data: { ...out, reference: ref } };
}

// What `python3` on PATH is: its version, and whether it is a pyenv shim (a shell script
// that adds its own start-up time to every Python start).
function pythonOnPath() {
  const version = execFileSync('python3', ['--version']).toString().trim();
  const where = (process.env.PATH || '').split(':').map((d) => path.join(d, 'python3')).find((f) => fs.existsSync(f)) || '';
  return `${version}${where.includes('/shims/') ? ' (through a pyenv shim)' : ''}${version.includes(' 3.13.') ? '' : ', not the 3.13 the Python handlers declare'}`;
}

// The 50-route application.
const ROUTES50 = Array.from({ length: 50 }, (_, i) => `r${String(i + 1).padStart(2, '0')}`);
const COLD_ROUTES = ['r17', 'r03', 'r29', 'r41', 'r08', 'r50', 'r12', 'r33', 'r25', 'r46'];

function makeApp50() {
  const dir = fresh(path.join(OUT, 'apps', 'routes50'));
  const toml = ['# 50 routes, each its own function (generated by scripts/bench-runtime.mjs).', 'stack = "routes50"', ''];
  for (const r of ROUTES50) {
    toml.push(`[routes.${r}]`, `handler = "handlers/${r}"`, '');
    const h = path.join(dir, 'handlers', r);
    fs.mkdirSync(h, { recursive: true });
    fs.writeFileSync(path.join(h, 'index.mjs'), `// Route ${r}: posts the message's data back to the sender through @connections, with the
// AWS SDK that Lambda's runtime provides (no package.json).
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';

const client = new ApiGatewayManagementApiClient({ endpoint: process.env.CONNECTIONS_URL });

export const handler = async (event) => {
  const { data } = JSON.parse(event.body);
  await client.send(new PostToConnectionCommand({
    ConnectionId: event.requestContext.connectionId,
    Data: '${r} ' + data,
  }));
  return { statusCode: 200 };
};
`);
  }
  fs.writeFileSync(path.join(dir, 'wsconn.toml'), toml.join('\n'));
  return dir;
}

function coldStarts(log) {
  const out = {};
  for (const m of log.matchAll(/node (\S+): (cold start: )?worker pid (\d+) loaded .*? in (\d+) ms/g)) {
    (out[m[1]] ??= []).push({ cold: !!m[2], pid: Number(m[3]), ms: Number(m[4]) });
  }
  return out;
}

// Where the time of a cold start goes, outside wsconn: node's own start; importing the
// client from wsconn's cache, plain and behind a module.register resolve hook (what the
// worker installs on Node.js 20 for the runtime's SDK); the client's first and second
// PostToConnection (to a gone id: 410).
async function profileColdStart(connectionsUrl) {
  const nm = fs.readdirSync(path.join(WARM_CACHE, 'node-sdk')).map((d) => path.join(WARM_CACHE, 'node-sdk', d, 'node_modules')).find((d) => fs.existsSync(path.join(d, '@aws-sdk/client-apigatewaymanagementapi')));
  const dir = fresh(path.join(OUT, 'apps', 'probe'));
  fs.symlinkSync(nm, path.join(dir, 'node_modules'));
  const probe = `
const t0 = performance.now();
const m = await import('@aws-sdk/client-apigatewaymanagementapi');
const t1 = performance.now();
const c = new m.ApiGatewayManagementApiClient({ endpoint: process.argv[2] });
const post = async () => { try { await c.send(new m.PostToConnectionCommand({ ConnectionId: 'AAAAAAAAAAAAAAA=', Data: 'x' })); } catch {} };
await post();
const t2 = performance.now();
await post();
const t3 = performance.now();
console.log(JSON.stringify({ boot_ms: t0, import_ms: t1 - t0, first_call_ms: t2 - t1, second_call_ms: t3 - t2 }));
`;
  fs.writeFileSync(path.join(dir, 'probe.mjs'), probe);
  // The hook: the same shape as worker.mjs's (a resolve hook registered off-thread).
  fs.writeFileSync(path.join(dir, 'hooked.mjs'), `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent('export async function resolve(s, c, n) { return n(s, c); }'), import.meta.url);
await import('./probe.mjs');
`);
  const rows = { node_empty: [], plain: [], hooked: [] };
  for (let i = 0; i < 10; i++) {
    let t = performance.now();
    execFileSync(process.execPath, ['-e', '0']);
    rows.node_empty.push(performance.now() - t);
    for (const k of ['plain', 'hooked']) {
      t = performance.now();
      const o = JSON.parse(execFileSync(process.execPath, [path.join(dir, k === 'plain' ? 'probe.mjs' : 'hooked.mjs'), connectionsUrl], { cwd: dir }).toString());
      rows[k].push({ wall_ms: performance.now() - t, ...o });
    }
  }
  // A worker's memory, piece by piece: an idle node; with the resolve hook registered
  // (its loader thread); with the client imported and one call made; both.
  fs.writeFileSync(path.join(dir, 'idle.mjs'), `const mode = process.argv[2];
if (mode.includes('hook')) {
  const { register } = await import('node:module');
  register('data:text/javascript,' + encodeURIComponent('export async function resolve(s, c, n) { return n(s, c); }'), import.meta.url);
}
if (mode.includes('sdk')) {
  const m = await import('@aws-sdk/client-apigatewaymanagementapi');
  const c = new m.ApiGatewayManagementApiClient({ endpoint: process.argv[3] });
  try { await c.send(new m.PostToConnectionCommand({ ConnectionId: 'AAAAAAAAAAAAAAA=', Data: 'x' })); } catch {}
}
process.stdout.write('ready\\n');
setInterval(() => {}, 1e9);
`);
  const rss = {};
  for (const mode of ['bare', 'hook', 'sdk', 'hook+sdk']) {
    const kbs = [];
    for (let i = 0; i < 3; i++) {
      const child = spawn(process.execPath, ['--max-old-space-size=128', path.join(dir, 'idle.mjs'), mode, connectionsUrl], { cwd: dir, stdio: ['ignore', 'pipe', 'ignore'] });
      await new Promise((r) => child.stdout.once('data', r));
      await sleep(1000);
      kbs.push(Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    rss[mode] = median(kbs);
  }
  const m = (xs, k) => median(xs.map((x) => x[k]));
  return {
    rss,
    node_empty_ms: median(rows.node_empty),
    plain: { wall: m(rows.plain, 'wall_ms'), boot: m(rows.plain, 'boot_ms'), import: m(rows.plain, 'import_ms'), first: m(rows.plain, 'first_call_ms'), second: m(rows.plain, 'second_call_ms') },
    hooked: { wall: m(rows.hooked, 'wall_ms'), boot: m(rows.hooked, 'boot_ms'), import: m(rows.hooked, 'import_ms'), first: m(rows.hooked, 'first_call_ms'), second: m(rows.hooked, 'second_call_ms') },
  };
}

async function sectionWorkers() {
  await warmCache();
  const dir = makeApp50();
  const config = path.join(dir, 'wsconn.toml');
  const res = {};

  // On demand (the default).
  let gate = await quiet('workers on demand: start');
  let s = await startLocal({ name: 'routes50-on-demand', cwd: dir, config });
  try {
    res.onDemand = { gate, readyMs: s.readyMs };
    const idle = await waitIdle(s.pid);
    res.onDemand.idle = { rssKb: idle.rssKb, pssKb: idle.pssKb, procs: idle.procs.length, waited_ms: idle.waited_ms, idle: idle.idle };
    gate = await quiet('workers on demand: cold routes');
    const c = await client(s.ready.websocket_url);
    const cold = [];
    for (const r of COLD_ROUTES) {
      const token = uniq();
      const t0 = performance.now();
      c.ws.send(JSON.stringify({ action: r, data: token }));
      await c.next((t) => t === `${r} ${token}`);
      const coldMs = performance.now() - t0;
      const token2 = uniq();
      const t1 = performance.now();
      c.ws.send(JSON.stringify({ action: r, data: token2 }));
      await c.next((t) => t === `${r} ${token2}`);
      cold.push({ route: r, coldMs, warmMs: performance.now() - t1 });
      await sleep(300);
    }
    const starts = coldStarts(s.log());
    for (const x of cold) x.loadMs = starts[`routes50-${x.route}`]?.find((e) => e.cold)?.ms ?? null;
    res.cold = { gate, rows: cold };
    const after = await waitIdle(s.pid);
    res.onDemand.afterCold = { rssKb: after.rssKb, pssKb: after.pssKb, procs: after.procs.length };
    res.profile = await profileColdStart(s.ready.connections_url.replace(/\/@connections$/, ''));
    await c.close();
  } finally {
    await s.stop();
  }

  // Every worker warm.
  gate = await quiet('workers --warm: start');
  s = await startLocal({ name: 'routes50-warm', cwd: dir, config, args: ['--warm'] });
  try {
    const idle = await waitIdle(s.pid, { maxMs: 120_000 });
    const loads = Object.values(coldStarts(s.log())).flat().map((e) => e.ms);
    const perWorker = idle.procs.filter((p) => p.pid !== s.pid).map((p) => p.rssKb);
    const self = idle.procs.find((p) => p.pid === s.pid);
    res.warm = { gate, readyMs: s.readyMs, rssKb: idle.rssKb, pssKb: idle.pssKb, procs: idle.procs.length, idle: idle.idle, waited_ms: idle.waited_ms, load: stats(loads), workerRssKb: stats(perWorker), wsconnRssKb: self?.rssKb };
    // A first message on a route that was started at launch.
    const c = await client(s.ready.websocket_url);
    const warmFirst = [];
    for (const r of COLD_ROUTES.slice(0, 5)) {
      const token = uniq();
      const t0 = performance.now();
      c.ws.send(JSON.stringify({ action: r, data: token }));
      await c.next((t) => t === `${r} ${token}`);
      warmFirst.push(performance.now() - t0);
    }
    res.warm.firstMessage = stats(warmFirst);
    await c.close();
  } finally {
    await s.stop();
  }

  const cs = stats(res.cold.rows.map((r) => r.coldMs));
  const ws = stats(res.cold.rows.map((r) => r.warmMs));
  const ls = stats(res.cold.rows.map((r) => r.loadMs).filter((x) => x != null));
  const p = res.profile;
  const md = [
    '### 4. Workers on demand: a 50-route application',
    '',
    'Generated by the script: `[routes.r01]` … `[routes.r50]`, each its own directory with an index.mjs that imports @aws-sdk/client-apigatewaymanagementapi (from wsconn\'s cache, warm) and posts the message\'s data back to the sender with PostToConnection through `CONNECTIONS_URL`, returning `{statusCode: 200}`. RSS = the sum of VmRSS over wsconn and every process under it (/proc; shared pages, such as the node binary\'s, count once per process; PSS, from smaps_rollup, shares them out), read once the tree is idle (no CPU tick for 2 s, RSS steady within 1 MB). Cold route: one connection sends `{"action":"r17","data":"<token>"}` and waits for the frame the handler posts back; 10 different cold routes in turn, each followed by a second (warm) message on the same route; "worker load" is wsconn\'s own log figure (spawn to the handler loaded).',
    '',
    '| figure | value |',
    '|---|---|',
    `| on demand: ready line after spawn | ${f2(res.onDemand.readyMs / 1000)} s |`,
    `| on demand: tree RSS at idle | ${mb(res.onDemand.idle.rssKb)} MB (${res.onDemand.idle.procs} processes: wsconn and the \`$default\` worker; PSS ${mb(res.onDemand.idle.pssKb)} MB) |`,
    `| first message on a cold route: p50 / max (10 routes) | ${f1(cs.p50)} / ${f1(cs.max)} ms |`,
    `| of which the worker's start and load (wsconn's log): p50 / max | ${f1(ls.p50)} / ${f1(ls.max)} ms |`,
    `| the next message on the same route: p50 / max | ${f1(ws.p50)} / ${f1(ws.max)} ms |`,
    `| tree RSS at idle after the 10 cold routes (their workers kept for --idle-workers, 5 min by default) | ${mb(res.onDemand.afterCold.rssKb)} MB (${res.onDemand.afterCold.procs} processes; PSS ${mb(res.onDemand.afterCold.pssKb)} MB) |`,
    `| --warm: ready line after spawn (51 workers started at once) | ${f2(res.warm.readyMs / 1000)} s (worker loads p50 ${f1(res.warm.load.p50)}, max ${f1(res.warm.load.max)} ms) |`,
    `| --warm: tree RSS at idle | ${mb(res.warm.rssKb)} MB (${res.warm.procs} processes; PSS ${mb(res.warm.pssKb)} MB; wsconn ${mb(res.warm.wsconnRssKb)} MB, a worker p50 ${mb(res.warm.workerRssKb.p50)} MB, max ${mb(res.warm.workerRssKb.max)} MB)${res.warm.idle ? '' : ' (not idle after 120 s)'} |`,
    `| --warm: first message on a route started at launch: p50 / max (5 routes) | ${f1(res.warm.firstMessage.p50)} / ${f1(res.warm.firstMessage.max)} ms |`,
    '',
    'Each cold route: ' + res.cold.rows.map((r) => `${r.route} ${f1(r.coldMs)} ms (load ${r.loadMs ?? '–'})`).join(', ') + '.',
    '',
    `Where a cold start goes, measured outside wsconn (medians of 10, Node.js ${process.version}, the same client from the same cache): \`node -e 0\` ${f1(p.node_empty_ms)} ms; a script that imports the client, makes it and posts twice (to a gone id, 410 from the same server): ${f1(p.plain.wall)} ms in all, of which Node's start to the script's first line ${f1(p.plain.boot)} ms, the import ${f1(p.plain.import)} ms, the first PostToConnection ${f1(p.plain.first)} ms, the second ${f1(p.plain.second)} ms. The same with a module.register resolve hook in place first (what worker.mjs installs on Node.js 20 to resolve the runtime's SDK from the cache): ${f1(p.hooked.wall)} ms in all, import ${f1(p.hooked.import)} ms, first call ${f1(p.hooked.first)} ms. A worker's VmRSS piece by piece (idle processes, median of 3, \`--max-old-space-size=128\` as wsconn gives a 128 MB function): an idle node ${mb(p.rss.bare)} MB; with the resolve hook registered ${mb(p.rss.hook)} MB; with the client imported and one call made ${mb(p.rss.sdk)} MB; both ${mb(p.rss['hook+sdk'])} MB.`,
    '',
  ];
  return { md, data: res };
}

async function sectionPython() {
  const N = Number(process.env.PAIR_N || 1000);
  const dir = fresh(path.join(OUT, 'apps', 'pair'));
  fs.mkdirSync(path.join(dir, 'handlers/node'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'handlers/py'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'handlers/node/index.mjs'), 'export const handler = async (event) => ({ statusCode: 200, body: event.body });\n');
  fs.writeFileSync(path.join(dir, 'handlers/py/app.py'), 'def lambda_handler(event, context):\n    return {"statusCode": 200, "body": event["body"]}\n');
  fs.writeFileSync(path.join(dir, 'wsconn.toml'), [
    '# One Node.js route and one Python route, each returning the body (scripts/bench-runtime.mjs).',
    'stack = "pair"',
    '',
    '[routes.node]',
    'handler = "handlers/node"',
    '',
    '[routes.py]',
    'handler = "handlers/py"',
    'runtime = "python3.13"',
    'entry = "app.lambda_handler"',
    '',
  ].join('\n'));
  const s = await startLocal({ name: 'pair', cwd: dir, config: path.join(dir, 'wsconn.toml') });
  try {
    const c = await client(s.ready.websocket_url);
    const rt = async (action, i) => {
      const body = JSON.stringify({ action, data: `${action}-${i}` });
      const t0 = performance.now();
      c.ws.send(body);
      await c.next((t) => t === body);
      return performance.now() - t0;
    };
    for (let i = 0; i < 100; i++) {
      await rt('node', -i - 1);
      await rt('py', -i - 1);
    }
    const gate = await quiet('python vs node');
    note(`python: ${N} round trips each, interleaved`);
    const node = [];
    const py = [];
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      node.push(await rt('node', i));
      py.push(await rt('py', i));
    }
    const seconds = (performance.now() - t0) / 1000;
    await c.close();
    const idle = await waitIdle(s.pid);
    const starts = coldStarts(s.log());
    const pyStart = [...s.log().matchAll(/python (\S+): (?:cold start: )?worker pid (\d+) loaded .*? in (\d+) ms/g)].map((m) => ({ fn: m[1], pid: Number(m[2]), ms: Number(m[3]) }));
    const byPid = (pid) => idle.procs.find((p) => p.pid === pid);
    const nodeW = byPid(starts['pair-node']?.at(-1)?.pid);
    const defW = byPid(starts['pair-default']?.at(-1)?.pid);
    const pyW = byPid(pyStart.at(-1)?.pid);
    const self = byPid(s.pid);
    const n = stats(node);
    const p = stats(py);
    const versionNote = /note: python3\.13 functions run in ([^\n]*)/.exec(s.log())?.[0] ?? '';
    const data = { gate, n: N, seconds, node: n, python: p, ratio_p50: p.p50 / n.p50, ratio_p99: p.p99 / n.p99, rss: { wsconn: self?.rssKb, node: nodeW?.rssKb, python: pyW?.rssKb, default: defW?.rssKb, nodeHwm: nodeW?.hwmKb, pythonHwm: pyW?.hwmKb }, loads: { node: starts['pair-node']?.at(-1)?.ms, python: pyStart.at(-1)?.ms }, versionNote };
    const md = [
      '### 5. Python beside Node.js: warm round trips',
      '',
      `Two routes: \`node\` (index.mjs, \`async (event) => ({ statusCode: 200, body: event.body })\`) and \`py\` (runtime = "python3.13", app.py returning \`{"statusCode": 200, "body": event["body"]}\`), each answering through the route response. One connection; 100 untimed round trips on each, then ${N} on each, sequential and interleaved (node, py, node, py, …): time from the send to the frame back. Then, the tree idle, each worker's VmRSS (children of the wsconn process, named by the pid in wsconn's log). ${versionNote ? `wsconn said: "${versionNote}".` : ''}`,
      '',
      '| | p50 | p99 | mean | max |',
      '|---|---:|---:|---:|---:|',
      `| Node.js route | ${f2(n.p50)} ms | ${f2(n.p99)} ms | ${f2(n.mean)} ms | ${f1(n.max)} ms |`,
      `| Python route | ${f2(p.p50)} ms | ${f2(p.p99)} ms | ${f2(p.mean)} ms | ${f1(p.max)} ms |`,
      `| python / node | ${f2(data.ratio_p50)} | ${f2(data.ratio_p99)} | ${f2(p.mean / n.mean)} | |`,
      '',
      '| process at idle after the run | VmRSS | VmHWM |',
      '|---|---:|---:|',
      `| Node.js worker (pair-node) | ${mb(nodeW?.rssKb ?? 0)} MB | ${mb(nodeW?.hwmKb ?? 0)} MB |`,
      `| Python worker (pair-py) | ${mb(pyW?.rssKb ?? 0)} MB | ${mb(pyW?.hwmKb ?? 0)} MB |`,
      `| Node.js worker of the built-in \`$default\` | ${mb(defW?.rssKb ?? 0)} MB | ${mb(defW?.hwmKb ?? 0)} MB |`,
      `| wsconn | ${mb(self?.rssKb ?? 0)} MB | ${mb(self?.hwmKb ?? 0)} MB |`,
      '',
      `${2 * N} round trips in ${f2(seconds)} s. Worker loads (wsconn's log, on the warm-up's first message): Node.js ${data.loads.node ?? '–'} ms, Python ${data.loads.python ?? '–'} ms.`,
      '',
    ];
    return { md, data };
  } finally {
    await s.stop();
  }
}

// Two layouts of the 3 GB: three sparse 1 GiB files (the test's), and 3,072 sparse
// 1 MiB files (each under the limit, so only the running total stops the count).
function makePackageApp(layout) {
  const dir = copyTree(path.join(repo, 'examples/chat-python'), path.join(OUT, 'apps', `package-${layout}`));
  const h = path.join(dir, 'handlers/sendmessage');
  const big = path.join(h, 'data');
  fs.mkdirSync(big, { recursive: true });
  if (layout === 'large') {
    for (let i = 0; i < 3; i++) execFileSync('truncate', ['-s', '1G', path.join(big, `part${i}.bin`)]);
  } else {
    for (let i = 0; i < 3072; i++) {
      const file = path.join(big, `part${String(i).padStart(4, '0')}.bin`);
      fs.closeSync(fs.openSync(file, 'w'));
      fs.truncateSync(file, 1 << 20);
    }
  }
  fs.symlinkSync(big, path.join(h, 'more'));
  return { dir, big };
}

async function sectionPackage() {
  const runs = Number(process.env.PACKAGE_RUNS || 5);
  const closed = await new Promise((r) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => r(port));
    });
  });
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    WSCONN_CACHE_DIR: WARM_CACHE,
    WSCONN_DATA_DIR: DATA_DIR,
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL: `http://127.0.0.1:${closed}`,
    AWS_EC2_METADATA_DISABLED: 'true',
    NO_COLOR: '1',
  };
  const hasTime = fs.existsSync('/usr/bin/time');
  const rows = [];
  const sizes = {};
  for (const layout of ['large', 'many']) {
    const { dir, big } = makePackageApp(layout);
    sizes[layout] = {
      apparent: execFileSync('du', ['-sh', '--apparent-size', big]).toString().split('\t')[0],
      disk: execFileSync('du', ['-sh', big]).toString().split('\t')[0],
    };
    for (let i = 0; i < runs; i++) {
      const gate = await quiet(`package ${layout} run ${i + 1}`);
      const args = ['--config', path.join(dir, 'wsconn.toml'), 'diff'];
      let r;
      let peakKb = null;
      if (hasTime) {
        r = await run('/usr/bin/time', ['-v', BIN, ...args], { env, cwd: dir });
        peakKb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1]);
      } else {
        r = await run(BIN, args, { env, cwd: dir });
      }
      const error = r.stderr.split('\n').find((l) => l.startsWith('error:')) ?? '';
      rows.push({ layout, gate, code: r.code, ms: r.ms, peakKb, error });
    }
  }
  const label = { large: 'three 1 GiB files', many: '3,072 files of 1 MiB' };
  const md = [
    '### 6. Packaging: a link to a 3 GB tree',
    '',
    `A copy of examples/chat-python whose handlers/sendmessage holds \`data/\` with 3 GiB of sparse files and \`more\`, a link (inside the directory) to \`data/\`; two layouts: three 1 GiB files (\`truncate -s 1G\`, as tests/python.rs), and 3,072 files of 1 MiB (each under the limit: only the running total can stop the count). \`wsconn --config … diff\` with AWS_ENDPOINT_URL on a closed port, under \`/usr/bin/time -v\` (maximum RSS; wall time of the whole command from this script), ${runs} runs each.`,
    '',
    '| layout | exit | wall: each run | wall max | peak RSS max |',
    '|---|---:|---|---:|---:|',
    ...['large', 'many'].map((l) => {
      const rs = rows.filter((r) => r.layout === l);
      return `| ${label[l]} (${sizes[l].apparent} apparent, ${sizes[l].disk} on disk) | ${[...new Set(rs.map((r) => r.code))].join(', ')} | ${rs.map((r) => f1(r.ms)).join(', ')} ms | ${f1(Math.max(...rs.map((r) => r.ms)))} ms | ${mb(Math.max(...rs.map((r) => r.peakKb ?? 0)))} MB |`;
    }),
    '',
    ...['large', 'many'].map((l) => `The error line (${label[l]}): \`${rows.find((r) => r.layout === l)?.error}\``),
    '',
  ];
  return { md, data: rows };
}

async function sectionPip() {
  if (!fs.existsSync(EMULATOR_PYTHON)) throw new Error(`no emulator python at ${EMULATOR_PYTHON} (scripts/test or scripts/bench creates target/emulator-venv)`);
  const latency = process.env.BENCH_LATENCY_MS || '50';
  const port = await new Promise((r) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port: p } = srv.address();
      srv.close(() => r(p));
    });
  });
  fs.mkdirSync(LOGS, { recursive: true });
  const emuLog = fs.openSync(path.join(LOGS, 'pip-emulator.log'), 'w');
  const emu = spawn(EMULATOR_PYTHON, [path.join(repo, 'tests/emulator/launcher.py'), '--port', String(port), '--latency-ms', latency], { stdio: ['ignore', emuLog, emuLog] });
  const url = `http://127.0.0.1:${port}`;
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        if ((await fetch(`${url}/_wsconn/health`)).ok) break;
      } catch {}
      if (Date.now() > deadline) throw new Error('the emulator did not become healthy in 60 s');
      await sleep(100);
    }
    const dir = copyTree(path.join(repo, 'examples/chat-python'), path.join(OUT, 'apps', 'pip'));
    fs.writeFileSync(path.join(dir, 'handlers/sendmessage/requirements.txt'), 'six==1.16.0\n');
    const cache = fresh(path.join(OUT, 'pip-deploy-cache'));
    const pipCache = fresh(path.join(OUT, 'pip-deploy-pip-cache'));
    const env = (extra = {}) => ({
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      WSCONN_CACHE_DIR: cache,
      WSCONN_DATA_DIR: DATA_DIR,
      PIP_CACHE_DIR: pipCache,
      AWS_ACCESS_KEY_ID: 'bench',
      AWS_SECRET_ACCESS_KEY: 'bench',
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL: url,
      AWS_EC2_METADATA_DISABLED: 'true',
      NO_COLOR: '1',
      ...extra,
    });
    const cfg = ['--config', path.join(dir, 'wsconn.toml')];
    const mutating = async () => (await (await fetch(`${url}/_wsconn/calls`)).json()).filter((c) => c.mutating).length;
    const calls = async () => (await (await fetch(`${url}/_wsconn/calls`)).json()).length;
    const reset = () => fetch(`${url}/_wsconn/calls/reset`, { method: 'POST' });
    const steps = [];
    const step = async (label, args, extra, expect) => {
      const gate = await quiet(`pip: ${label}`);
      await reset();
      const r = await run(BIN, [...cfg, ...args], { env: env(extra), cwd: dir });
      const row = { label, gate, code: r.code, ms: r.ms, calls: await calls(), mutating: await mutating(), error: r.stderr.split('\n').find((l) => l.startsWith('error:')) ?? '', expect };
      steps.push(row);
      if (expect != null && r.code !== expect) note(`pip: ${label}: exit ${r.code} (expected ${expect}):\n${r.stderr.slice(-1500)}`);
      return row;
    };
    await step('first deploy, empty WSCONN_CACHE_DIR and pip cache (pip runs)', ['deploy', '--yes'], {}, 0);
    const pipDirs = fs.existsSync(path.join(cache, 'pip')) ? fs.readdirSync(path.join(cache, 'pip')).filter((d) => !d.startsWith('.')) : [];
    await step('second deploy, unchanged, WSCONN_DEPLOY_PYTHON=/nonexistent/python3', ['deploy', '--yes'], { WSCONN_DEPLOY_PYTHON: '/nonexistent/python3' }, 0);
    await step('no-op deploy again, with pip available (reference)', ['deploy', '--yes'], {}, 0);
    // The guard is live: a changed requirement with no Python fails.
    fs.writeFileSync(path.join(dir, 'handlers/sendmessage/requirements.txt'), 'six==1.16.0\n# changed\n');
    await step('diff after a changed requirements.txt, WSCONN_DEPLOY_PYTHON=/nonexistent/python3 (control)', ['diff'], { WSCONN_DEPLOY_PYTHON: '/nonexistent/python3' }, 1);
    // pip alone: the command wsconn runs for the first deploy, with an empty pip cache.
    const gate = await quiet('pip: pip alone');
    fs.writeFileSync(path.join(OUT, 'pip-alone-requirements.txt'), 'six==1.16.0\n');
    const pipAlone = await run('python3', ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-compile', '-r', path.join(OUT, 'pip-alone-requirements.txt'), '--target', fresh(path.join(OUT, 'pip-alone-target')), '--platform', 'manylinux2014_x86_64', '--only-binary=:all:', '--python-version', '3.13', '--implementation', 'cp'], { env: { ...process.env, PIP_CACHE_DIR: fresh(path.join(OUT, 'pip-alone-cache')) } });
    steps.push({ label: 'reference: that pip install alone (`python3 -m pip install -r … --target … --platform manylinux2014_x86_64 --only-binary=:all: --python-version 3.13 --implementation cp`), empty pip cache', gate, code: pipAlone.code, ms: pipAlone.ms, calls: '–', mutating: '–', error: '' });
    const md = [
      '### 7. A second deploy of an unchanged Python handler runs no pip',
      '',
      `The emulator (tests/emulator/launcher.py, moto, ${latency} ms a call, as scripts/bench). A copy of examples/chat-python with handlers/sendmessage/requirements.txt = \`six==1.16.0\`, deployed with an empty WSCONN_CACHE_DIR and an empty pip cache (PIP_CACHE_DIR: six comes from PyPI); then deployed again unchanged with WSCONN_DEPLOY_PYTHON=/nonexistent/python3, which fails if pip would run; then once more with pip available, as a reference; then a control: after a one-line change to requirements.txt, \`diff\` with the same nonexistent Python must fail. Wall time of the wsconn process; calls from the emulator's recorder. pip's output was cached under WSCONN_CACHE_DIR/pip (${pipDirs.length} entr${pipDirs.length === 1 ? 'y' : 'ies'} after the first deploy).`,
      '',
      '| step | exit | wall | calls | mutating |',
      '|---|---:|---:|---:|---:|',
      ...steps.map((s) => `| ${s.label} | ${s.code} | ${f2(s.ms / 1000)} s | ${s.calls} | ${s.mutating} |`),
      '',
      `The control's error line: \`${steps.find((x) => x.label.startsWith('diff after')).error}\``,
      '',
    ];
    return { md, data: steps };
  } finally {
    emu.kill('SIGTERM');
    await new Promise((r) => emu.once('exit', r));
  }
}

// ---------------------------------------------------------------------------------
async function main() {
  fs.mkdirSync(OUT, { recursive: true });
  fs.mkdirSync(DATA_DIR, { recursive: true });
  const commit = (() => {
    try {
      const c = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repo }).toString().trim();
      const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'Cargo.toml', 'Cargo.lock'], { cwd: repo }).toString().trim();
      return dirty ? `${c} (src modified)` : c;
    } catch {
      return 'unknown';
    }
  })();
  const version = execFileSync(BIN, ['--version']).toString().trim();
  const origin = process.env.WSCONN_BIN_ORIGIN || BIN;
  const built = fs.statSync(origin).mtime.toISOString().replace(/\.\d+Z$/, 'Z');
  const header = [
    '## Local runtime: handlers as written for AWS, Python, workers on demand (issues 22, 23)',
    '',
    `- date: ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}; commit ${commit}; ${version} (${path.relative(repo, origin)}, built ${built}, copied before the run)`,
    `- machine: ${os.cpus().length} × ${os.cpus()[0].model}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${process.platform} ${os.release()}; Node.js ${process.version}; ${execFileSync('python3', ['--version']).toString().trim()}; npm ${execFileSync('npm', ['--version']).toString().trim()}`,
    `- made by \`scripts/bench-runtime\` (sections: ${SECTIONS.join(', ')})`,
    '',
  ];
  const results = {};
  const body = [];
  const table = { echo: sectionEcho, tls: sectionTls, sdk: sectionSdk, workers: sectionWorkers, python: sectionPython, package: sectionPackage, pip: sectionPip };
  for (const name of SECTIONS) {
    const fn = table[name];
    if (!fn) throw new Error(`unknown section ${name} (${Object.keys(table).join(', ')})`);
    note(`section ${name}`);
    try {
      const r = await fn();
      results[name] = r.data;
      body.push(...r.md);
    } catch (e) {
      results[name] = { error: String(e.stack || e) };
      body.push(`### ${name}`, '', `**FAILED**: ${String(e.message || e).split('\n')[0]}`, '');
      note(`section ${name} failed: ${e.stack || e}`);
    }
    fs.writeFileSync(path.join(OUT, 'runtime.json'), JSON.stringify({ results, waits }, null, 2));
  }
  const gates = [
    `Load gate before each measured run: wait, polling every 20 s, up to ${LOAD_WAIT_S} s, while the 1-minute load average is above ${LOAD_LIMIT} or the CPUs were more than ${CPU_LIMIT} % busy over the last 2 s (the average lags a job that has just started). CPU busy = share of both cores' time busy over the 2 s before the run:`,
    '',
    '| run | load seen | waited | load at start | CPU busy |',
    '|---|---:|---:|---:|---:|',
    ...waits.map((w) => `| ${w.label} | ${w.load_seen.toFixed(2)} | ${w.waited_s > 0 ? `${w.waited_s} s` : '–'}${w.gave_up ? ' (gave up)' : ''} | ${w.load_at_start.toFixed(2)} | ${w.cpu_busy_pct} % |`),
    '',
  ];
  const md = [...header, ...body, ...gates].join('\n');
  fs.writeFileSync(path.join(OUT, 'runtime.md'), md);
  fs.writeFileSync(path.join(OUT, 'runtime.json'), JSON.stringify({ results, waits }, null, 2));
  console.log(md);
  process.exit(Object.values(results).some((r) => r?.error) ? 1 : 0);
}

main().catch((e) => {
  console.error(`bench-runtime: ${e.stack || e}`);
  process.exit(1);
});
