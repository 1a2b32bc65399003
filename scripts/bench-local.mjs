// Load generator for `wsconn local` (run by scripts/bench-local).
//
// CLIENTS clients connect (ramped at RATE new connections per second, API Gateway's
// default quota being 500/s), the table is counted while all of them are connected,
// then each client sends MESSAGES messages, awaiting each echo, with a random think
// time of 0..2*THINK_MS before each one, and disconnects; finally the table is polled
// until it is empty. Prints one JSON object with the figures.
//
// A second, closed-loop phase (SATURATE=1) has every client send its messages back to
// back with no think time: its latency is then mostly queueing behind the other
// clients' messages, and its rate is the server's ceiling.
//
// Between the two, with every client connected and idle, `wsconn connections send --all`
// (WSCONN_BIN, against this server) pushes one message to all of them: its wall time,
// its rate, and how many clients received exactly that message.
//
// usage: node scripts/bench-local.mjs WS_URL DYNAMODB_URL TABLE
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';

const require = createRequire(new URL('../target/node-tools/', import.meta.url));
const WebSocket = require('ws');

const [wsUrl, ddbUrl, table] = process.argv.slice(2);
const CLIENTS = Number(process.env.CLIENTS || 1000);
const MESSAGES = Number(process.env.MESSAGES || 10);
const RATE = Number(process.env.RATE || 500);
const THINK_MS = Number(process.env.THINK_MS || 200);
const SATURATE = process.env.SATURATE === '1';
const DEADLINE_MS = 120_000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function count() {
  const r = await fetch(ddbUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.0',
      'x-amz-target': 'DynamoDB_20120810.Scan',
      'x-amz-date': '20260101T000000Z',
      authorization: 'AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0',
    },
    body: JSON.stringify({ TableName: table, Select: 'COUNT' }),
  });
  const j = await r.json();
  if (typeof j.Count !== 'number') throw new Error(`Scan failed: ${JSON.stringify(j)}`);
  return j.Count;
}

function pct(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function connect() {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const ws = new WebSocket(wsUrl);
    const waiting = [];
    ws.on('message', (data) => {
      const w = waiting.shift();
      if (w) w(data.toString());
    });
    ws.once('open', () => resolve({ ws, waiting, connectMs: performance.now() - t0 }));
    ws.once('error', reject);
    ws.once('unexpected-response', (_, res) => reject(new Error(`handshake refused: HTTP ${res.statusCode}`)));
  });
}

function echo(c, payload) {
  return new Promise((resolve) => {
    c.waiting.push(resolve);
    c.ws.send(payload);
  });
}

async function run(clients, think) {
  const latencies = [];
  let errors = 0;
  const t0 = performance.now();
  await Promise.all(
    clients.map(async (c, i) => {
      for (let m = 0; m < MESSAGES; m++) {
        if (think) await sleep(Math.random() * 2 * THINK_MS);
        const payload = JSON.stringify({ client: i, message: m, first_name: 'Jane', last_name: 'Doe' });
        const s = performance.now();
        const reply = await echo(c, payload);
        latencies.push(performance.now() - s);
        let ok = false;
        try {
          ok = JSON.parse(reply).body === payload;
        } catch {}
        if (!ok) errors++;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    messages: latencies.length,
    wrong_echoes: errors,
    seconds,
    messages_per_second: latencies.length / seconds,
    echo_p50_ms: pct(latencies, 50),
    echo_p99_ms: pct(latencies, 99),
    echo_max_ms: latencies[latencies.length - 1],
  };
}

// `wsconn connections send --all` to every connected client, timed around the process.
async function sendAll(clients) {
  const addr = new URL(wsUrl).host;
  const stack = table.replace(/-connections$/, '');
  const text = `broadcast-${Date.now()}`;
  const got = clients.map((c) => new Promise((resolve) => {
    c.waiting.push((m) => resolve(m === text));
  }));
  const t0 = performance.now();
  const out = await new Promise((resolve, reject) => {
    execFile(process.env.WSCONN_BIN, ['--stack', stack, '--output', 'json', 'connections', 'send', '--all', '--message', text, '--local', addr],
      { maxBuffer: 64 << 20 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
  });
  const seconds = (performance.now() - t0) / 1000;
  const received = (await Promise.all(got)).filter(Boolean).length;
  const r = JSON.parse(out);
  return { seconds, sent: r.sent.length, gone: r.gone.length, failed: r.failed.length, received, messages_per_second: r.sent.length / seconds };
}

async function main() {
  const started = performance.now();
  const clients = [];
  const connectMs = [];
  const opening = [];
  for (let i = 0; i < CLIENTS; i++) {
    opening.push(connect().then((c) => { clients.push(c); connectMs.push(c.connectMs); }));
    // Ramp: RATE new connections per second.
    if ((i + 1) % Math.max(1, Math.round(RATE / 50)) === 0) await sleep(20);
  }
  await Promise.all(opening);
  connectMs.sort((a, b) => a - b);
  const trackedWhileConnected = await count();
  const broadcast = process.env.WSCONN_BIN ? await sendAll(clients) : null;

  const paced = await run(clients, true);
  const saturated = SATURATE ? await run(clients, false) : null;

  for (const c of clients) c.ws.close(1000);
  const deadline = Date.now() + DEADLINE_MS;
  let left = await count();
  while (left > 0 && Date.now() < deadline) {
    await sleep(100);
    left = await count();
  }
  console.log(JSON.stringify({
    clients: CLIENTS,
    messages_per_client: MESSAGES,
    connect_rate_per_second: RATE,
    think_ms_mean: THINK_MS,
    connect_p50_ms: pct(connectMs, 50),
    connect_p99_ms: pct(connectMs, 99),
    tracked_while_connected: trackedWhileConnected,
    left_after_disconnect: left,
    paced,
    saturated,
    broadcast,
    total_seconds: (performance.now() - started) / 1000,
  }));
  process.exit(0);
}

main().catch((e) => {
  console.error(`bench-local: ${e.stack || e}`);
  process.exit(1);
});
