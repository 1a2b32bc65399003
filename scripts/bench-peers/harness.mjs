// The load and the measurements of the side-by-side chat benchmark (issue 16, "Measure").
// It runs against one target that is already listening; scripts/bench-peers/run.mjs
// starts and stops each target and calls bench() for it.
//
// A target is { name, url, pids, ddb? }:
//   url   the WebSocket URL with the chat's token in the query (?token=…)
//   pids  the process ids of what was started for it (the tree under each is measured)
//   ddb   { endpoint, table } of its connection table, when the harness can read it
//
// Phases, in order:
//   auth      one handshake without the token and one with a wrong token: their HTTP
//             statuses (AWS: 401 and 403), then one good connect and close (warm-up)
//   connect   CLIENTS clients connect at RATE per second, each ?token=…&user=uN;
//             handshake latency (constructor to open) p50/p99/max, and failures
//   tracked   the table's item count with everyone connected (when ddb is known)
//   fan-out   FANOUT_ROUNDS times: client 0 sends {"action":"sendmessage","data":"<unique>"};
//             time from the send until the first, the median and the last client
//             received <unique>. Before round 1 a stale item (a connection id that does
//             not exist) is put in the table: the handler should delete it on its 410.
//   echo      ECHO_CLIENTS clients each send ECHO_MESSAGES messages to $default, each
//             after a random think time of 0..2×THINK_MS, awaiting each echo (the event
//             back); echo p50/p99 and echoed messages per second
//   close     the clients close at RATE per second; the table is polled until it is
//             empty (≤ 15 s)
// Throughout, a worker thread samples the summed VmRSS of every process in the
// targets' trees every 50 ms (see sampleTree below) and stops the run when it passes
// RSS_LIMIT_MB, so a peer that forks without bound cannot exhaust the machine.
//
// Standalone: node harness.mjs --name NAME --url WS_URL [--pid PID]... [--ddb URL --table NAME]
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const toolsDir = path.resolve(here, '../../target/bench-peers/tools');

export const defaults = () => ({
  clients: Number(process.env.CLIENTS || 500),
  rate: Number(process.env.RATE || 200),
  fanoutRounds: Number(process.env.FANOUT_ROUNDS || 3),
  echoClients: Number(process.env.ECHO_CLIENTS || 100),
  echoMessages: Number(process.env.ECHO_MESSAGES || 10),
  thinkMs: Number(process.env.THINK_MS || 200),
  rssLimitMb: Number(process.env.RSS_LIMIT_MB || 6144),
  handshakeTimeoutMs: 15_000,
  fanoutDeadlineMs: 30_000,
  echoDeadlineMs: 120_000,
});

// ---------------------------------------------------------------------------------
// Memory: the sum of VmRSS over every process in the trees rooted at the target's pids,
// sampled every 50 ms. Summing each process's VmHWM instead would add peaks reached at
// different times, and would miss children that exit between samples (Architect's
// sandbox runs every invocation in a new process), so the sampled sum is the measure.
// VmRSS counts shared pages (the node binary's text) once per process, so the figure
// is an upper bound for trees of many processes. The peak process count is kept too.
function sampleTree(roots) {
  const parent = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(d), Number(fields[1]));
    } catch {}
  }
  const inTree = new Set(roots.filter((p) => parent.has(p)));
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of parent) {
      if (!inTree.has(pid) && inTree.has(ppid)) {
        inTree.add(pid);
        grew = true;
      }
    }
  }
  let kb = 0;
  for (const pid of inTree) {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) kb += Number(m[1]);
    } catch {}
  }
  return { kb, processes: inTree.size };
}

if (!isMainThread && workerData?.role === 'rss') {
  const { roots, limitKb } = workerData;
  let peakKb = 0;
  let peakProcs = 0;
  let over = false;
  let phase = 'start';
  const byPhase = {};
  const tick = () => {
    const { kb, processes } = sampleTree(roots);
    peakKb = Math.max(peakKb, kb);
    peakProcs = Math.max(peakProcs, processes);
    byPhase[phase] = Math.max(byPhase[phase] ?? 0, kb);
    if (kb > limitKb && !over) {
      over = true;
      parentPort.postMessage({ type: 'limit', kb });
    }
  };
  const timer = setInterval(tick, 50);
  parentPort.on('message', (m) => {
    if (m?.phase) {
      tick();
      phase = m.phase;
    } else if (m === 'stop') {
      clearInterval(timer);
      tick();
      parentPort.postMessage({ type: 'peak', peakKb, peakProcs, byPhase });
    }
  });
}

function startRss(roots, limitMb, onLimit) {
  const w = new Worker(fileURLToPath(import.meta.url), {
    workerData: { role: 'rss', roots, limitKb: limitMb * 1024 },
  });
  w.on('message', (m) => {
    if (m.type === 'limit') onLimit(m.kb);
  });
  return {
    phase: (name) => w.postMessage({ phase: name }),
    stop: () => new Promise((resolve) => {
      w.on('message', (m) => {
        if (m.type === 'peak') {
          w.terminate();
          resolve(m);
        }
      });
      w.postMessage('stop');
    }),
  };
}

// ---------------------------------------------------------------------------------
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : null);
const round1 = (x) => (x == null ? null : Math.round(x * 10) / 10);
const uniq = () => Math.random().toString(36).slice(2, 10);

function withQuery(url, params) {
  const u = new URL(url);
  for (const [k, v] of Object.entries(params)) {
    if (v === null) u.searchParams.delete(k);
    else u.searchParams.set(k, v);
  }
  return u.toString();
}

// DynamoDB JSON API, unsigned apart from a well-formed header (local tables do not check it).
async function ddbCall(ddb, action, body) {
  const r = await fetch(ddb.endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.0',
      'x-amz-target': `DynamoDB_20120810.${action}`,
      'x-amz-date': '20260101T000000Z',
      authorization: 'AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0',
    },
    body: JSON.stringify({ TableName: ddb.table, ...body }),
  });
  const j = await r.json();
  if (!r.ok) throw new Error(`${action}: ${r.status} ${JSON.stringify(j)}`);
  return j;
}

async function countItems(ddb) {
  let n = 0;
  let start;
  do {
    const page = await ddbCall(ddb, 'Scan', { Select: 'COUNT', ...(start ? { ExclusiveStartKey: start } : {}) });
    n += page.Count;
    start = page.LastEvaluatedKey;
  } while (start);
  return n;
}

export async function bench(target, options = {}) {
  const o = { ...defaults(), ...options };
  const require = createRequire(path.join(toolsDir, 'package.json'));
  const WebSocket = require('ws');
  const result = { target: target.name, url: target.url, load: { ...o }, loadavg_at_start: os.loadavg().map((x) => round1(x)) };

  let aborted = null;
  let abortNow;
  const abortedP = new Promise((r) => { abortNow = r; });
  let phase = 'auth';
  const enter = (name) => { phase = name; rss.phase(name); };
  const rss = startRss(target.pids, o.rssLimitMb, (kb) => {
    aborted = `the target's process tree passed RSS_LIMIT_MB=${o.rssLimitMb} (${Math.round(kb / 1024)} MB) during the ${phase} phase, and was stopped`;
    result.stopped_in_phase = phase;
    abortNow(false);
    target.onLimit?.();
  });
  const check = () => {
    if (aborted) throw new Error(aborted);
  };

  // A handshake: resolves with { ws, ms } or { status | error, ms }.
  const open = (url) => new Promise((resolve) => {
    const t0 = performance.now();
    const ws = new WebSocket(url, { handshakeTimeout: o.handshakeTimeoutMs, perMessageDeflate: false });
    const done = (r) => resolve({ ...r, ms: performance.now() - t0 });
    ws.once('open', () => done({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      done({ status: res.statusCode });
      ws.terminate();
    });
    ws.once('error', (err) => done({ error: err.message }));
  });

  const clients = [];
  try {
    // --- auth ------------------------------------------------------------------------
    const noToken = await open(withQuery(target.url, { token: null }));
    const wrongToken = await open(withQuery(target.url, { token: 'wrong-token' }));
    for (const r of [noToken, wrongToken]) r.ws?.close();
    result.auth = {
      no_token: noToken.ws ? 'connected' : noToken.status ?? noToken.error,
      wrong_token: wrongToken.ws ? 'connected' : wrongToken.status ?? wrongToken.error,
    };
    const warm = await open(withQuery(target.url, { user: 'warmup' }));
    if (!warm.ws) throw new Error(`the warm-up handshake failed: ${warm.status ?? warm.error}`);
    result.auth.first_connect_ms = round1(warm.ms);
    warm.ws.close();
    await sleep(500);

    // --- connect -----------------------------------------------------------------------
    enter('connect');
    const latencies = [];
    const failures = {};
    const t0 = performance.now();
    const pending = [];
    for (let i = 0; i < o.clients; i++) {
      const due = t0 + (i * 1000) / o.rate;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      check();
      pending.push(open(withQuery(target.url, { user: `u${i}` })).then((r) => {
        if (r.ws) {
          latencies.push(r.ms);
          const c = { ws: r.ws, i, handlers: new Set() };
          r.ws.on('message', (data) => {
            const text = String(data);
            for (const h of c.handlers) h(text);
          });
          clients.push(c);
        } else {
          const key = r.status ? `HTTP ${r.status}` : r.error;
          failures[key] = (failures[key] || 0) + 1;
        }
      }));
    }
    await Promise.all(pending);
    const connectSeconds = (performance.now() - t0) / 1000;
    latencies.sort((a, b) => a - b);
    clients.sort((a, b) => a.i - b.i);
    result.connect = {
      attempted: o.clients,
      connected: clients.length,
      failures,
      seconds: round1(connectSeconds),
      p50_ms: round1(pct(latencies, 50)),
      p99_ms: round1(pct(latencies, 99)),
      max_ms: round1(latencies.at(-1)),
    };
    check();
    if (!clients.length) throw new Error('no client connected');

    // --- tracked -----------------------------------------------------------------------
    let staleId = null;
    if (target.ddb) {
      await sleep(200);
      result.tracked_while_connected = await countItems(target.ddb);
    }
    if (target.ddb && o.fanoutRounds > 0) {
      // API Gateway's form (11 bytes in base64: 15 characters and "="), kept to [A-Za-z0-9].
      staleId = `${Buffer.from(crypto.getRandomValues(new Uint8Array(11))).toString('base64').slice(0, 15).replace(/[+/]/g, 'A')}=`;
      await ddbCall(target.ddb, 'PutItem', { Item: { connectionid: { S: staleId }, principalId: { S: 'ghost' } } });
    }

    // --- fan-out -----------------------------------------------------------------------
    enter('fan-out');
    result.fanout = [];
    for (let round = 0; round < o.fanoutRounds; round++) {
      check();
      const marker = `fanout-${round}-${uniq()}`;
      const arrivals = [];
      let exact = 0;
      let allIn;
      const everyone = new Promise((r) => { allIn = r; });
      const seen = new Set();
      for (const c of clients) {
        const h = (text) => {
          let match = text === marker;
          if (match) exact++;
          else if (text.includes(marker)) {
            try { match = JSON.parse(text) === marker; } catch {}
          }
          if (match && !seen.has(c.i)) {
            seen.add(c.i);
            arrivals.push(performance.now() - sent);
            if (seen.size === clients.length) allIn();
          }
        };
        c.h = h;
        c.handlers.add(h);
      }
      const sent = performance.now();
      clients[0].ws.send(JSON.stringify({ action: 'sendmessage', data: marker }));
      await Promise.race([everyone, abortedP, sleep(o.fanoutDeadlineMs)]);
      for (const c of clients) c.handlers.delete(c.h);
      arrivals.sort((a, b) => a - b);
      result.fanout.push({
        clients: clients.length,
        received: arrivals.length,
        received_exactly_as_sent: exact,
        first_ms: round1(arrivals[0]),
        p50_ms: round1(pct(arrivals, 50)),
        last_ms: arrivals.length === clients.length ? round1(arrivals.at(-1)) : null,
      });
      if (round === 0 && staleId) {
        await sleep(500);
        const got = await ddbCall(target.ddb, 'GetItem', { Key: { connectionid: { S: staleId } } });
        result.stale_item_deleted = !got.Item;
        // Not left behind to be counted as a connection that $disconnect missed.
        if (got.Item) await ddbCall(target.ddb, 'DeleteItem', { Key: { connectionid: { S: staleId } } });
      }
      await sleep(1000);
    }

    // --- echo --------------------------------------------------------------------------
    if (o.echoMessages > 0 && o.echoClients > 0) {
      enter('echo');
      const echoers = clients.slice(0, o.echoClients);
      const times = [];
      let unanswered = 0;
      const e0 = performance.now();
      const deadline = e0 + o.echoDeadlineMs;
      await Promise.all(echoers.map(async (c) => {
        for (let m = 0; m < o.echoMessages; m++) {
          await sleep(Math.random() * 2 * o.thinkMs);
          if (aborted || performance.now() > deadline) {
            unanswered += o.echoMessages - m;
            return;
          }
          const marker = `echo-${c.i}-${m}-${uniq()}`;
          let h;
          const answered = new Promise((r) => {
            h = (text) => { if (text.includes(marker)) r(true); };
            c.handlers.add(h);
          });
          const s = performance.now();
          c.ws.send(JSON.stringify({ message: marker }));
          const ok = await Promise.race([answered, abortedP, sleep(Math.max(0, deadline - s)).then(() => false)]);
          c.handlers.delete(h);
          if (ok) times.push(performance.now() - s);
          else unanswered++;
        }
      }));
      const seconds = (performance.now() - e0) / 1000;
      times.sort((a, b) => a - b);
      result.echo = {
        clients: echoers.length,
        messages: times.length,
        unanswered,
        seconds: round1(seconds),
        messages_per_second: Math.round(times.length / seconds),
        p50_ms: round1(pct(times, 50)),
        p99_ms: round1(pct(times, 99)),
        max_ms: round1(times.at(-1)),
      };
    }
  } catch (err) {
    result.error = err.message;
  } finally {
    // --- close -------------------------------------------------------------------------
    if (!aborted) enter('close');
    // At the connect rate, as they came: closing all at once would also measure how a
    // peer copes with a burst of $disconnect invocations, which no other phase asks.
    const closing = [];
    const c0 = performance.now();
    for (const [k, c] of clients.entries()) {
      const wait = c0 + (k * 1000) / o.rate - performance.now();
      if (wait > 0 && !aborted) await sleep(wait);
      closing.push(new Promise((r) => {
        if (c.ws.readyState === WebSocket.CLOSED) return r();
        c.ws.once('close', r);
        c.ws.close(1000);
        setTimeout(() => { c.ws.terminate(); r(); }, 5000);
      }));
    }
    await Promise.all(closing);
    if (target.ddb && !aborted) {
      await sleep(100);
      const until = performance.now() + 15_000;
      let left;
      try {
        do {
          left = await countItems(target.ddb);
          if (left === 0) break;
          await sleep(250);
        } while (performance.now() < until);
      } catch (err) {
        left = `error: ${err.message}`;
      }
      result.left_after_disconnect = left;
    }
    const peak = await rss.stop();
    result.peak_rss_mb = round1(peak.peakKb / 1024);
    result.peak_rss_mb_by_phase = Object.fromEntries(Object.entries(peak.byPhase).map(([k, v]) => [k, round1(v / 1024)]));
    result.peak_processes = peak.peakProcs;
    if (aborted) result.error = aborted;
  }
  return result;
}

// ---------------------------------------------------------------------------------
// The combined table (one column per target).
export function markdown(results, machine) {
  const cols = results.map((r) => r.target);
  const f = (x, unit = '') => (x == null ? '–' : `${x}${unit}`);
  const row = (label, fn) => `| ${label} | ${results.map((r) => {
    if (r.skipped) return 'skipped';
    try { return fn(r) ?? '–'; } catch { return '–'; }
  }).join(' | ')} |`;
  const load = results.find((r) => r.load)?.load ?? defaults();
  const fan = (r, i) => {
    const x = r.fanout?.[i];
    if (!x) return null;
    if (x.last_ms == null) return `${x.received} of ${x.clients} in ${load.fanoutDeadlineMs / 1000} s`;
    return `${x.last_ms} ms (first ${x.first_ms}, p50 ${x.p50_ms})`;
  };
  const lines = [
    `# Chat side by side: wsconn local and its peers`,
    '',
    `- date: ${new Date().toISOString()}`,
    `- machine: ${machine}`,
    `- load: ${load.clients} clients with the token at ${load.rate} connects/s (unless the column's connect rate says otherwise); ${load.fanoutRounds} sendmessage fan-outs to all of them; then some of them (see the echo load) send messages to $default (think time 0–${2 * load.thinkMs} ms, awaiting each echo); then they close at the connect rate`,
    '- memory: the summed VmRSS of the target\'s process tree, sampled every 50 ms (an upper bound where the tree has many processes: shared pages count once per process)',
    '',
    `| figure | ${cols.join(' | ')} |`,
    `|---|${cols.map(() => '---').join('|')}|`,
    row('handshake without token / wrong token', (r) => `${r.auth.no_token} / ${r.auth.wrong_token}`),
    row(`connected (of ${load.clients})`, (r) => (r.stopped_in_phase === 'connect' ? `${r.connect.connected} when stopped` : `${r.connect.connected}${Object.keys(r.connect.failures).length ? ` (failed: ${Object.entries(r.connect.failures).map(([k, v]) => `${v}× ${k}`).join(', ')})` : ''}`)),
    row('first good handshake, idle', (r) => f(r.auth.first_connect_ms, ' ms')),
    row('connect rate', (r) => `${r.load.rate}/s`),
    row('connect p50 / p99 / max', (r) => `${f(r.connect.p50_ms)} / ${f(r.connect.p99_ms)} / ${f(r.connect.max_ms)} ms`),
    row('items while all connected', (r) => f(r.tracked_while_connected)),
    row('fan-out, round 1: last client received', (r) => fan(r, 0)),
    row(`fan-out, later rounds: last client received`, (r) => r.fanout?.slice(1).map((x) => (x.last_ms == null ? `${x.received}/${x.clients}` : `${x.last_ms} ms`)).join(', ')),
    row('fan-out frames exactly as sent', (r) => r.fanout?.[0] && `${r.fanout[0].received_exactly_as_sent} of ${r.fanout[0].received}`),
    row('stale item (410) deleted by the handler', (r) => (r.stale_item_deleted == null ? null : r.stale_item_deleted ? 'yes' : 'no')),
    row('echo load', (r) => `${r.load.echoClients} clients × ${r.load.echoMessages}`),
    row('echo p50 / p99', (r) => r.echo && `${f(r.echo.p50_ms)} / ${f(r.echo.p99_ms)} ms`),
    row('echoed messages per second', (r) => r.echo && `${r.echo.messages_per_second} (${r.echo.messages} in ${r.echo.seconds} s${r.echo.unanswered ? `, ${r.echo.unanswered} unanswered` : ''})`),
    row('items left after all closed (polled up to 15 s)', (r) => (r.stopped_in_phase ? null : f(r.left_after_disconnect))),
    row('peak RSS by phase: connect / fan-out / echo / close', (r) => ['connect', 'fan-out', 'echo', 'close'].map((k) => f(r.peak_rss_mb_by_phase?.[k])).join(' / ') + ' MB'),
    row('peak RSS of the process tree', (r) => (r.stopped_in_phase
      ? `over ${r.load.rssLimitMb} MB in the ${r.stopped_in_phase} phase: stopped (${r.peak_processes} processes)`
      : `${f(r.peak_rss_mb)} MB (${r.peak_processes} processes)`)),
  ];
  const notes = results.filter((r) => r.skipped || r.error);
  if (notes.length) {
    lines.push('');
    for (const r of notes) lines.push(`- **${r.target}**: ${r.skipped ? `skipped: ${r.skipped}` : `error: ${r.error}`}`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------
if (isMainThread && process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const get = (k) => args.filter((_, i) => args[i - 1] === k);
  const [name] = get('--name');
  const [url] = get('--url');
  if (!url) {
    console.error('usage: node harness.mjs --name NAME --url WS_URL [--pid PID]... [--ddb URL --table NAME]');
    process.exit(2);
  }
  const [endpoint] = get('--ddb');
  const [table] = get('--table');
  const r = await bench({
    name: name ?? url,
    url,
    pids: get('--pid').map(Number),
    ddb: endpoint ? { endpoint, table } : undefined,
  });
  console.log(JSON.stringify(r, null, 2));
  console.log(markdown([r], 'this machine'));
}
