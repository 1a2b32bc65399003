// The real AWS SDK for JavaScript v3 under the worker: resolved from WSCONN_SDK_NODE_MODULES
// (the handlers have no dependencies), its requests to AWS's hostnames redirected to a
// local HTTPS server. The SDK is installed once with npm into target/worker_js_sdk (its
// npm cache beside it, so reruns are offline); without npm or the registry these tests
// are skipped, saying why.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  FIXTURES, REPO, API_HOST, DYNAMODB_HOST,
  fileUrl, loadWorker, makeCertificates, startServer,
} from './support.mjs';

/** One current version for both clients (they are released together). */
const SDK_VERSION = '3.1178.0';
const PACKAGES = ['@aws-sdk/client-apigatewaymanagementapi', '@aws-sdk/client-dynamodb'];
const WANTED = PACKAGES.map((name) => `${name}@${SDK_VERSION}`).join(', ');
const INSTALL_DIR = join(REPO, 'target', 'worker_js_sdk', SDK_VERSION);

function installed() {
  return PACKAGES.every((name) => {
    const manifest = join(INSTALL_DIR, 'node_modules', ...name.split('/'), 'package.json');
    return existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).version === SDK_VERSION;
  });
}

/** Installs the SDK if it is not there yet; returns why it cannot be had, or null. */
function installSdk() {
  if (installed()) return null;
  mkdirSync(INSTALL_DIR, { recursive: true });
  writeFileSync(join(INSTALL_DIR, 'package.json'), JSON.stringify({
    name: 'wsconn-worker-test-sdk',
    private: true,
    dependencies: Object.fromEntries(PACKAGES.map((name) => [name, SDK_VERSION])),
  }, null, 2));
  try {
    execFileSync('npm', [
      'install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error',
      '--cache', join(REPO, 'target', 'worker_js_sdk', 'npm-cache'),
    ], { cwd: INSTALL_DIR, stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 });
  } catch (e) {
    const why = String(e.stderr || e.message).trim().split('\n').slice(-3).join(' ');
    return `npm install of ${WANTED} failed: ${why}`;
  }
  return installed() ? null : `npm install left no ${WANTED} in ${INSTALL_DIR}`;
}

describe(`the AWS SDK v3 (${SDK_VERSION}) from WSCONN_SDK_NODE_MODULES, redirected`, () => {
  let skipReason = null;
  let certs;
  let local;

  before(async () => {
    skipReason = installSdk();
    if (skipReason) {
      process.stderr.write(`SKIPPING the real AWS SDK tests: ${skipReason}\n`);
      return;
    }
    certs = makeCertificates();
    // What wsconn local answers: @connections POST is 200 with no body, and DynamoDB's
    // JSON protocol names the operation in X-Amz-Target.
    local = await startServer('local', certs, (req) => {
      if (req.url.startsWith('/api/@connections/')) return { status: 200, body: '' };
      if (req.headers['x-amz-target'] === 'DynamoDB_20120810.ListTables') {
        return {
          status: 200,
          headers: { 'content-type': 'application/x-amz-json-1.0' },
          body: JSON.stringify({ TableNames: ['chat-connections'] }),
        };
      }
      return { status: 400, body: JSON.stringify({ __type: 'UnknownOperationException' }) };
    });
  });

  after(async () => {
    await local?.close();
  });

  for (const [name, file] of [['sdk-real-esm', 'index.mjs'], ['sdk-real-cjs', 'index.cjs']]) {
    test(`${file}: PostToConnection and new DynamoDBClient({}) reach the local server`, async (t) => {
      if (skipReason) {
        t.skip(skipReason);
        return;
      }
      const worker = await loadWorker({ url: fileUrl(join(FIXTURES, name, file)) }, {
        env: {
          AWS_REGION: 'us-east-1',
          AWS_DEFAULT_REGION: 'us-east-1',
          AWS_ACCESS_KEY_ID: 'AKIDLOCAL',
          AWS_SECRET_ACCESS_KEY: 'local',
          // No shared config file of this machine's may point the SDK elsewhere.
          AWS_CONFIG_FILE: '/nonexistent/wsconn-test/config',
          AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/wsconn-test/credentials',
          NODE_EXTRA_CA_CERTS: certs.caPath,
          WSCONN_SDK_NODE_MODULES: join(INSTALL_DIR, 'node_modules'),
          WSCONN_REDIRECT_HOSTS: `${API_HOST},${DYNAMODB_HOST}`,
          WSCONN_REDIRECT_TO: `127.0.0.1:${local.port}`,
        },
      });
      const before = local.requests.length;
      try {
        const reply = await worker.invoke({
          endpoint: `https://${API_HOST}/api`,
          connectionId: `conn-${name}`,
          data: 'hello from the SDK',
        });
        assert.equal(reply.error, undefined, `${JSON.stringify(reply.error)}\n${worker.stderr()}`);
        assert.deepEqual(reply.result, { tableNames: ['chat-connections'] });
      } finally {
        await worker.close();
      }
      const seen = local.requests.slice(before);
      const post = seen.find((r) => r.url === `/api/@connections/conn-${name}`);
      assert.ok(post, `no @connections request arrived: ${JSON.stringify(seen.map((r) => [r.host, r.url]))}`);
      assert.equal(post.method, 'POST');
      assert.equal(post.tls, true);
      assert.equal(post.host, API_HOST);
      assert.equal(post.servername, API_HOST);
      assert.equal(post.body, 'hello from the SDK');
      assert.match(post.headers.authorization, /^AWS4-HMAC-SHA256 Credential=AKIDLOCAL\/\d{8}\/us-east-1\/execute-api\/aws4_request/);
      const list = seen.find((r) => r.headers['x-amz-target'] === 'DynamoDB_20120810.ListTables');
      assert.ok(list, `no DynamoDB request arrived: ${JSON.stringify(seen.map((r) => [r.host, r.url]))}`);
      assert.equal(list.tls, true);
      assert.equal(list.host, DYNAMODB_HOST);
      assert.equal(list.servername, DYNAMODB_HOST);
      assert.match(list.headers.authorization, /Credential=AKIDLOCAL\/\d{8}\/us-east-1\/dynamodb\/aws4_request/);
    });
  }
});
