// Starts each target in turn, runs harness.mjs against it, stops it, and prints one
// combined table (also written to target/bench-peers/results.md and results.json).
// scripts/bench-peers/run installs the pinned peers first; run that, not this file.
//
// usage: node scripts/bench-peers/run.mjs [TARGET...]   (default: every target)
// Targets: wsconn (needs WSCONN_BIN), serverless-offline, serverless-offline-inprocess,
// architect.
//
// Every target gets the same placeholder AWS credentials and region, so that no SDK
// looks further down its credential chain (instance metadata) on this machine.
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import path from 'node:path';
import { bench, markdown } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const out = path.join(root, 'target/bench-peers');
const TOKEN = 'chat-demo-token';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const baseEnv = () => ({
  ...process.env,
  AWS_ACCESS_KEY_ID: 'local',
  AWS_SECRET_ACCESS_KEY: 'local',
  AWS_REGION: 'us-east-1',
  AWS_DEFAULT_REGION: 'us-east-1',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
});

// A started process in its own process group, its output in a log file. The groups
// still running are killed if this script is interrupted.
const live = new Set();
const killLive = () => live.forEach((c) => { try { process.kill(-c.pid, 'SIGKILL'); } catch {} });
process.on('exit', killLive);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => { killLive(); process.exit(130); });

function start(name, cmd, args, { cwd, env, log }) {
  const fd = openSync(log, 'a');
  const child = spawn(cmd, args, { cwd, env, detached: true, stdio: ['ignore', fd, fd] });
  live.add(child);
  child.exitCode_ = null;
  child.on('exit', (code, signal) => { child.exitCode_ = code ?? signal; });
  child.label = name;
  return child;
}

// Stops a process group we started: SIGINT, then SIGTERM, then SIGKILL, each until the
// whole group is gone or its wait is over.
async function stop(child) {
  if (!child) return;
  const groupAlive = () => {
    try { process.kill(-child.pid, 0); return true; } catch { return false; }
  };
  for (const [sig, wait] of [['SIGINT', 3000], ['SIGTERM', 3000], ['SIGKILL', 2000]]) {
    if (!groupAlive()) break;
    try { process.kill(-child.pid, sig); } catch {}
    const until = Date.now() + wait;
    while (Date.now() < until && groupAlive()) await sleep(50);
  }
  live.delete(child);
}

async function waitFor(what, fn, { timeoutMs = 60_000, child } = {}) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child && child.exitCode_ !== null) throw new Error(`${child.label} exited (${child.exitCode_}) before ${what}`);
    try {
      const v = await fn();
      if (v) return v;
    } catch {}
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const logHas = (log, text) => () => existsSync(log) && readFileSync(log, 'utf8').includes(text);

async function ddb(endpoint, action, body) {
  const r = await fetch(endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.0',
      'x-amz-target': `DynamoDB_20120810.${action}`,
      'x-amz-date': '20260101T000000Z',
      authorization: 'AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0',
    },
    body: JSON.stringify(body),
  });
  const j = await r.json();
  if (!r.ok) throw new Error(`${action}: ${r.status} ${JSON.stringify(j)}`);
  return j;
}

// ---------------------------------------------------------------------------------
// Targets: each start() returns { target (for the harness), children (to stop) } or
// { skipped: reason }.
const targets = {
  // wsconn local with examples/chat. Needs a wsconn that reads [routes] and
  // [authorizer] from wsconn.toml (issue 16); an older one refuses the file, and the
  // target is skipped with its error.
  async wsconn(log) {
    const bin = process.env.WSCONN_BIN;
    if (!bin) return { skipped: 'WSCONN_BIN is not set (the path of a wsconn binary)' };
    if (!existsSync(bin)) return { skipped: `WSCONN_BIN=${bin} does not exist` };
    const chat = path.join(root, 'examples/chat');
    if (!existsSync(path.join(chat, 'node_modules/@aws-sdk/client-dynamodb'))) {
      execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: chat, stdio: ['ignore', 2, 2] });
    }
    const child = start('wsconn local', bin, ['--output', 'json', '--config', path.join(chat, 'wsconn.toml'), 'local', '--port', '0'], { cwd: chat, env: baseEnv(), log });
    let ready;
    try {
      ready = await waitFor('its ready line', () => {
        const first = readFileSync(log, 'utf8').split('\n').find((l) => l.startsWith('{"websocket_url"'));
        return first && JSON.parse(first);
      }, { timeoutMs: 30_000, child });
    } catch (err) {
      await stop(child);
      const tail = readFileSync(log, 'utf8').trim().split('\n').slice(-3).join(' / ');
      return { skipped: `this wsconn cannot run examples/chat yet (${err.message}): ${tail}` };
    }
    return {
      children: [child],
      target: {
        name: 'wsconn local',
        url: `${ready.websocket_url}?token=${TOKEN}`,
        pids: [child.pid],
        ddb: { endpoint: ready.dynamodb_endpoint, table: ready.table_name },
      },
    };
  },

  // serverless-offline (Serverless Framework v3) with dynalite as the table.
  async 'serverless-offline'(log, extraArgs = []) {
    const dir = path.join(out, 'serverless-offline');
    const [dbPort, wsPort, httpPort, lambdaPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const endpoint = `http://127.0.0.1:${dbPort}`;
    const env = {
      ...baseEnv(),
      AWS_ENDPOINT_URL_DYNAMODB: endpoint,
      SLS_WS_PORT: String(wsPort),
      SLS_HTTP_PORT: String(httpPort),
      SLS_LAMBDA_PORT: String(lambdaPort),
      SLS_TELEMETRY_DISABLED: '1',
      SLS_NOTIFICATIONS_MODE: 'off',
    };
    const db = start('dynalite', process.execPath, ['node_modules/dynalite/cli.js', '--port', String(dbPort), '--host', '127.0.0.1', '--createTableMs', '0', '--deleteTableMs', '0'], { cwd: dir, env, log });
    try {
      await waitFor('dynalite', () => ddb(endpoint, 'ListTables', {}), { child: db });
      await ddb(endpoint, 'CreateTable', {
        TableName: 'chat-connections',
        AttributeDefinitions: [{ AttributeName: 'connectionid', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'connectionid', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
      });
    } catch (err) {
      await stop(db);
      throw err;
    }
    const sls = start('serverless offline', process.execPath, ['node_modules/serverless/bin/serverless.js', 'offline', 'start', ...extraArgs], { cwd: dir, env, log });
    try {
      await waitFor('serverless-offline', logHas(log, 'Offline [http for websocket] listening'), { child: sls });
    } catch (err) {
      await stop(sls);
      await stop(db);
      throw err;
    }
    return {
      children: [sls, db],
      target: {
        name: 'serverless-offline',
        url: `ws://127.0.0.1:${wsPort}/?token=${TOKEN}`,
        pids: [sls.pid, db.pid],
        ddb: { endpoint, table: 'chat-connections' },
      },
    };
  },

  // The same service with serverless-offline's --useInProcess: every handler runs in
  // serverless-offline's own process instead of one worker thread per concurrent
  // invocation (the default), which is lighter but shares one module scope.
  async 'serverless-offline-inprocess'(log) {
    const s = await targets['serverless-offline'](log, ['--useInProcess']);
    if (s.target) s.target.name = 'serverless-offline --useInProcess';
    return s;
  },

  // Architect's sandbox: the HTTP/WebSocket port, its in-process dynalite for @tables,
  // and its internal port (the Lambda runtime API and @connections).
  async architect(log) {
    const dir = path.join(out, 'architect');
    const [httpPort, tablesPort, internalPort] = [await freePort(), await freePort(), await freePort()];
    const env = { ...baseEnv(), ARC_TABLES_PORT: String(tablesPort), ARC_INTERNAL_PORT: String(internalPort), ARC_ENV: 'testing' };
    const child = start('sandbox', process.execPath, ['node_modules/@architect/sandbox/src/cli/cli.js', '--port', String(httpPort), '--host', '127.0.0.1'], { cwd: dir, env, log });
    const endpoint = `http://127.0.0.1:${tablesPort}`;
    let table;
    try {
      await waitFor('sandbox', logHas(log, 'Local environment ready'), { child });
      const { TableNames } = await ddb(endpoint, 'ListTables', {});
      // Sandbox makes APP-staging-NAME and APP-production-NAME; @architect/functions uses staging locally.
      table = TableNames.find((t) => t.endsWith('-staging-connections'));
    } catch (err) {
      await stop(child);
      throw err;
    }
    return {
      children: [child],
      target: {
        name: 'Architect sandbox',
        url: `ws://127.0.0.1:${httpPort}/?token=${TOKEN}`,
        pids: [child.pid],
        ddb: table ? { endpoint, table } : undefined,
      },
    };
  },
};

// ---------------------------------------------------------------------------------
const FALLBACK_RATE = Number(process.env.FALLBACK_RATE ?? 5);
const FALLBACK_ECHO_CLIENTS = Number(process.env.FALLBACK_ECHO_CLIENTS ?? 10);
const wanted = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(targets);
for (const w of wanted) {
  if (!targets[w]) {
    console.error(`unknown target ${w}; known: ${Object.keys(targets).join(', ')}`);
    process.exit(2);
  }
}
mkdirSync(out, { recursive: true });
const results = [];
for (const name of wanted) {
  const log = path.join(out, `${name}.log`);
  writeFileSync(log, '');
  console.error(`==> ${name} (log: ${path.relative(root, log)})`);
  let started;
  try {
    started = await targets[name](log);
  } catch (err) {
    started = { skipped: `did not start: ${err.message}` };
  }
  if (started.skipped) {
    console.error(`    skipped: ${started.skipped}`);
    results.push({ target: name, skipped: started.skipped });
    continue;
  }
  const r = await run(started);
  results.push(r);
  // A peer that could not take the connect rate (stopped by the RSS guard) is run again
  // at FALLBACK_RATE, with FALLBACK_ECHO_CLIENTS echoing, so that its other figures
  // exist too.
  if (r.stopped_in_phase === 'connect' && FALLBACK_RATE > 0) {
    const log2 = path.join(out, `${name}-at-${FALLBACK_RATE}.log`);
    writeFileSync(log2, '');
    console.error(`==> ${name} again at ${FALLBACK_RATE} connects/s (log: ${path.relative(root, log2)})`);
    let again;
    try {
      again = await targets[name](log2);
    } catch (err) {
      again = { skipped: `did not start: ${err.message}` };
    }
    if (again.skipped) results.push({ target: `${name} at ${FALLBACK_RATE}/s`, skipped: again.skipped });
    else {
      again.target.name += ` at ${FALLBACK_RATE}/s`;
      results.push(await run(again, { rate: FALLBACK_RATE, echoClients: FALLBACK_ECHO_CLIENTS }));
    }
  }
}

async function run(started, options) {
  started.target.onLimit = () => started.children.forEach((c) => { try { process.kill(-c.pid, 'SIGKILL'); } catch {} });
  const r = await bench(started.target, options);
  for (const c of started.children) await stop(c);
  console.error(`    ${r.error ? `error: ${r.error}` : 'done'}`);
  return r;
}

const cpu = os.cpus();
const node = process.version;
const machine = `${cpu.length} × ${cpu[0]?.model ?? 'CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.platform()} ${os.release()}; Node.js ${node}; the harness runs on the same cores`;
const md = markdown(results, machine);
// RESULTS_NAME: the files' name (scripts/bench-local uses its own, local-chat).
const name = process.env.RESULTS_NAME || 'results';
writeFileSync(path.join(out, `${name}.json`), JSON.stringify({ machine, results }, null, 2) + '\n');
writeFileSync(path.join(out, `${name}.md`), md + '\n');
console.log(md);
