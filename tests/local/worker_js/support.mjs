// Shared by the worker's tests: runs src/local/worker.mjs exactly as src/local/node.rs does
// (`node --input-type=module -e <source>`, a cleared environment, JSON lines on
// stdin/stdout), makes a throwaway CA and a certificate for AWS's hostnames, and serves
// HTTP and HTTPS on one local port, as wsconn local does, recording what arrives.
import { spawn, execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, rmSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import net from 'node:net';
import http from 'node:http';
import https from 'node:https';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const FIXTURES = join(HERE, 'fixtures');
export const REPO = join(HERE, '..', '..', '..');
export const WORKER_SOURCE = readFileSync(join(REPO, 'src', 'local', 'worker.mjs'), 'utf8');

export const API_HOST = 'abc123.execute-api.us-east-1.amazonaws.com';
export const DYNAMODB_HOST = 'dynamodb.us-east-1.amazonaws.com';
/** On the certificate, but never in WSCONN_REDIRECT_HOSTS. */
export const UNLISTED_HOST = 'unlisted.execute-api.us-east-1.amazonaws.com';

/** A fresh temporary directory, removed when the process exits. */
export function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), `wsconn-worker-${prefix}-`));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Copies fixtures/<name> into a temporary directory and returns the copy's path. */
export function fixtureCopy(name) {
  const dir = join(tempDir(name), name);
  cpSync(join(FIXTURES, name), dir, { recursive: true });
  return dir;
}

export function fileUrl(path) {
  return pathToFileURL(path).href;
}

/** Writes a package: `files` maps a path inside it to its text. */
export function writePackage(nodeModules, name, files) {
  const dir = join(nodeModules, ...name.split('/'));
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    writeFileSync(join(dir, file), typeof text === 'string' ? text : JSON.stringify(text));
  }
  return dir;
}

/**
 * One worker process. `init` resolves with the worker's answer to the init line; `invoke`
 * with its answer to one invocation. Everything it writes to stderr is kept for messages.
 */
export function startWorker({ env = {}, cwd } = {}) {
  const child = spawn(
    process.execPath,
    ['--max-old-space-size=256', '--input-type=module', '-e', WORKER_SOURCE],
    {
      // node.rs clears the environment and passes the function's own: nothing leaks.
      env: { PATH: process.env.PATH, LANG: 'en_US.UTF-8', TZ: 'UTC', ...env },
      cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const waiting = new Map();
  let readyWaiter = null;
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  exited.then(({ code, signal }) => {
    const why = new Error(`the worker exited (${code ?? signal}); its stderr:\n${stderr}`);
    readyWaiter?.reject(why);
    for (const w of waiting.values()) w.reject(why);
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    let msg;
    try {
      msg = JSON.parse(line);
    } catch {
      throw new Error(`the worker wrote a line that is not JSON on stdout: ${line}`);
    }
    if ('ready' in msg) {
      readyWaiter?.resolve(msg);
      readyWaiter = null;
    } else {
      waiting.get(msg.id)?.resolve(msg);
      waiting.delete(msg.id);
    }
  });
  let nextId = 1;
  return {
    child,
    stderr: () => stderr,
    init(spec) {
      const line = {
        init: { functionName: 'chat-default', memoryMb: 128, region: 'us-east-1', export: 'handler', ...spec },
      };
      return new Promise((resolve, reject) => {
        readyWaiter = { resolve, reject };
        child.stdin.write(JSON.stringify(line) + '\n');
      });
    },
    invoke(event = {}, timeoutMs = 10_000) {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        child.stdin.write(JSON.stringify({ id, timeoutMs, event }) + '\n');
      });
    },
    /** Closes stdin, as wsconn does to retire a worker, and waits for the exit. */
    async close() {
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Starts a worker, loads `spec`, and fails with the worker's stderr when it is not ready. */
export async function loadWorker(spec, options) {
  const worker = startWorker(options);
  const ready = await worker.init(spec);
  if (!ready.ready) {
    await worker.close();
    throw new Error(`the handler did not load: ${JSON.stringify(ready.error)}\n${worker.stderr()}`);
  }
  return worker;
}

/**
 * A throwaway CA and a server certificate for AWS's hostnames, 127.0.0.1 and localhost,
 * made with openssl. Returns the paths and PEM texts.
 */
export function makeCertificates() {
  const dir = tempDir('ca');
  const run = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem',
    '-days', '2', '-subj', '/CN=wsconn worker test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr',
    '-subj', `/CN=${API_HOST}`);
  writeFileSync(join(dir, 'ext.cnf'), [
    'basicConstraints=CA:FALSE',
    'keyUsage=digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    `subjectAltName=DNS:${API_HOST},DNS:${DYNAMODB_HOST},DNS:${UNLISTED_HOST},DNS:localhost,IP:127.0.0.1`,
    '',
  ].join('\n'));
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf');
  return {
    caPath: join(dir, 'ca.pem'),
    key: readFileSync(join(dir, 'server.key')),
    cert: readFileSync(join(dir, 'server.pem')),
  };
}

/**
 * HTTP and HTTPS on one port of 127.0.0.1, told apart by the first byte (a TLS record
 * starts with 0x16), as wsconn local serves them. Every request is recorded as
 * {server, tls, servername, host, method, url, headers, body}; `respond(req, body)` may
 * give {status, headers, body}; by default the answer is the record as JSON.
 */
export async function startServer(name, { key, cert }, respond = () => null) {
  const requests = [];
  const handle = (tls) => (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      const record = {
        server: name,
        tls,
        servername: tls ? req.socket.servername || null : null,
        host: req.headers.host,
        method: req.method,
        url: req.url,
        headers: req.headers,
        body,
      };
      requests.push(record);
      const answer = respond(record) ?? { status: 200, body: JSON.stringify(record) };
      res.writeHead(answer.status, { 'content-type': 'application/json', ...(answer.headers ?? {}) });
      res.end(answer.body ?? '');
    });
  };
  const plain = http.createServer(handle(false));
  const secure = https.createServer({ key, cert }, handle(true));
  const sockets = new Set();
  const front = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.once('readable', () => {
      const first = socket.read(1);
      if (first === null) return;
      socket.unshift(first);
      (first[0] === 0x16 ? secure : plain).emit('connection', socket);
    });
  });
  await new Promise((resolve) => front.listen(0, '127.0.0.1', resolve));
  return {
    port: front.address().port,
    requests,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => front.close(resolve));
    },
  };
}
