// The worker that runs a function's handler under `wsconn local` (src/local/worker.mjs),
// driven as src/local/node.rs drives it. Run with `node --test tests/local/worker_js/`.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  FIXTURES, API_HOST, DYNAMODB_HOST, UNLISTED_HOST,
  fileUrl, fixtureCopy, loadWorker, makeCertificates, startServer, startWorker, tempDir,
  writePackage,
} from './support.mjs';

/** Loads fixtures/<name>/<file>, invokes it once, and returns the result. */
async function runOnce(name, file, { exportName = 'handler', event = {}, env } = {}) {
  const worker = await loadWorker({ url: fileUrl(join(FIXTURES, name, file)), export: exportName }, { env });
  try {
    const reply = await worker.invoke(event);
    assert.equal(reply.error, undefined, `the handler threw: ${JSON.stringify(reply.error)}\n${worker.stderr()}`);
    return reply.result;
  } finally {
    await worker.close();
  }
}

/** The worker's answer to an init line that should fail. */
async function loadFailure(url, spec = {}, env = {}) {
  const worker = startWorker({ env });
  try {
    const ready = await worker.init({ url, ...spec });
    assert.equal(ready.ready, false, `expected the load to fail; it succeeded`);
    return ready.error;
  } finally {
    await worker.close();
  }
}

describe('the handler setting', () => {
  const cases = [
    ['esm', 'index.mjs', 'esm .mjs', 'esm'],
    ['js-module', 'index.js', 'js type module', 'esm'],
    ['js-module/legacy', 'index.js', 'js nearest type commonjs', 'commonjs'],
    ['js-commonjs', 'index.js', 'js type commonjs', 'commonjs'],
    ['cjs-exports', 'index.cjs', 'cjs exports.handler', 'commonjs'],
    ['cjs-module-exports', 'index.cjs', 'cjs module.exports = { handler }', 'commonjs'],
    ['cjs-module-exports-prop', 'index.cjs', 'cjs module.exports.handler', 'commonjs'],
    ['cjs-computed', 'index.cjs', 'cjs computed export', 'commonjs'],
  ];
  for (const [dir, file, kind, moduleSystem] of cases) {
    test(`${dir}/${file} loads as ${moduleSystem} and its handler runs`, async () => {
      const result = await runOnce(dir, file);
      assert.equal(result.kind, kind);
      assert.equal(result.moduleSystem, moduleSystem);
    });
  }

  test('a dotted export is followed, as Lambda does', async () => {
    const result = await runOnce('nested-export', 'index.mjs', { exportName: 'handlers.message' });
    assert.equal(result.kind, 'nested export');
  });

  test('a missing export is Runtime.HandlerNotFound with Lambda\'s message', async () => {
    const url = fileUrl(join(FIXTURES, 'no-export', 'index.mjs'));
    assert.deepEqual(pick(await loadFailure(url)), {
      errorType: 'Runtime.HandlerNotFound',
      errorMessage: 'index.handler is undefined or not exported',
    });
    // With Lambda's Handler setting in _HANDLER, the message names it.
    assert.deepEqual(pick(await loadFailure(url, { export: 'onMessage' }, { _HANDLER: 'src/chat.onMessage' })), {
      errorType: 'Runtime.HandlerNotFound',
      errorMessage: 'src/chat.onMessage is undefined or not exported',
    });
  });

  test('a missing CommonJS export is Runtime.HandlerNotFound too', async () => {
    const url = fileUrl(join(FIXTURES, 'cjs-exports', 'index.cjs'));
    assert.deepEqual(pick(await loadFailure(url, { export: 'onConnect' })), {
      errorType: 'Runtime.HandlerNotFound',
      errorMessage: 'index.onConnect is undefined or not exported',
    });
  });

  test('an export that is not a function is Runtime.HandlerNotFound', async () => {
    const error = await loadFailure(fileUrl(join(FIXTURES, 'not-function', 'index.mjs')));
    assert.deepEqual(pick(error), { errorType: 'Runtime.HandlerNotFound', errorMessage: 'index.handler is not a function' });
  });

  test('a missing file is Runtime.ImportModuleError with Lambda\'s message', async () => {
    const file = join(FIXTURES, 'no-such-dir', 'app.mjs');
    const error = await loadFailure(fileUrl(file));
    assert.deepEqual(pick(error), { errorType: 'Runtime.ImportModuleError', errorMessage: `Error: Cannot find module '${file}'` });
  });

  test('a require that finds nothing is Runtime.ImportModuleError', async () => {
    const error = await loadFailure(fileUrl(join(FIXTURES, 'cjs-missing-require', 'index.cjs')));
    assert.equal(error.errorType, 'Runtime.ImportModuleError');
    assert.match(error.errorMessage, /^Error: Cannot find module 'wsconn-test-package-that-does-not-exist'/);
  });

  test('a syntax error is Runtime.UserCodeSyntaxError', async () => {
    const error = await loadFailure(fileUrl(join(FIXTURES, 'syntax-error', 'index.mjs')));
    assert.equal(error.errorType, 'Runtime.UserCodeSyntaxError');
    assert.match(error.errorMessage, /^SyntaxError: /);
  });

  test('an error thrown while the module loads is reported as thrown', async () => {
    const error = await loadFailure(fileUrl(join(FIXTURES, 'throws-at-load', 'index.mjs')));
    assert.deepEqual(pick(error), { errorType: 'TypeError', errorMessage: 'TABLE_NAME is not set' });
  });

  test('the built-in handler still loads from a data: URL', async () => {
    const source = 'export const handler = async (e) => ({ echoed: e.body });';
    const url = `data:text/javascript;base64,${Buffer.from(source).toString('base64')}`;
    const worker = await loadWorker({ url });
    try {
      assert.deepEqual((await worker.invoke({ body: 'hi' })).result, { echoed: 'hi' });
    } finally {
      await worker.close();
    }
  });
});

function pick(error) {
  return { errorType: error.errorType, errorMessage: error.errorMessage };
}

describe('the context', () => {
  test('invokedFunctionArn names the init line\'s region', async () => {
    const worker = await loadWorker(
      { url: fileUrl(join(FIXTURES, 'esm', 'index.mjs')), region: 'eu-west-3', functionName: 'chat-sendmessage' },
      { env: { AWS_REGION: 'ap-south-1' } },
    );
    try {
      const { result } = await worker.invoke({});
      assert.equal(result.invokedFunctionArn, 'arn:aws:lambda:eu-west-3:000000000000:function:chat-sendmessage');
      assert.equal(result.functionName, 'chat-sendmessage');
    } finally {
      await worker.close();
    }
  });
});

describe('the runtime\'s AWS SDK (WSCONN_SDK_NODE_MODULES)', () => {
  let sdk;
  before(() => {
    // The runtime's copy: client-fake has ESM and CommonJS entry points (so each handler
    // shows which one it got) and depends on @smithy/fake-core, found inside the cache.
    sdk = join(tempDir('sdk'), 'node_modules');
    writePackage(sdk, '@aws-sdk/client-fake', {
      'package.json': {
        name: '@aws-sdk/client-fake',
        version: '3.0.0',
        exports: { '.': { import: './index.mjs', require: './index.cjs' } },
      },
      'index.mjs': "import core from '@smithy/fake-core';\nexport const marker = 'runtime-esm';\nexport const coreMarker = core.core;\n",
      'index.cjs': "exports.marker = 'runtime-cjs';\nexports.coreMarker = require('@smithy/fake-core').core;\n",
    });
    writePackage(sdk, '@smithy/fake-core', {
      'package.json': { name: '@smithy/fake-core', version: '1.0.0', main: 'index.js' },
      'index.js': "exports.core = 'runtime-core';\n",
    });
    writePackage(sdk, 'fake-sdk-dependency', {
      'package.json': { name: 'fake-sdk-dependency', version: '1.0.0', main: 'index.js' },
      'index.js': "module.exports = 'should not be found';\n",
    });
  });

  const env = () => ({ WSCONN_SDK_NODE_MODULES: sdk });

  test('an ES module handler imports it with no dependency of its own', async () => {
    const result = await runOnce('sdk-esm', 'index.mjs', { env: env() });
    assert.deepEqual(result, { marker: 'runtime-esm', coreMarker: 'runtime-core', dynamicMarker: 'runtime-esm' });
  });

  test('a CommonJS handler requires it with no dependency of its own', async () => {
    const result = await runOnce('sdk-cjs', 'index.cjs', { env: env() });
    assert.equal(result.marker, 'runtime-cjs');
    assert.equal(result.coreMarker, 'runtime-core');
    assert.equal(result.dynamicMarker, 'runtime-esm');
    assert.equal(result.resolvedCore, join(sdk, '@smithy', 'fake-core', 'index.js'));
  });

  for (const [name, file] of [['sdk-esm', 'index.mjs'], ['sdk-cjs', 'index.cjs']]) {
    test(`a copy bundled with the handler wins (${file})`, async () => {
      const dir = fixtureCopy(name);
      // The bundled client has no @smithy/fake-core of its own: its require of it falls
      // back to the runtime's, as on Lambda.
      writePackage(join(dir, 'node_modules'), '@aws-sdk/client-fake', {
        'package.json': { name: '@aws-sdk/client-fake', version: '3.1.0', main: 'index.js' },
        'index.js': "exports.marker = 'bundled';\nexports.coreMarker = require('@smithy/fake-core').core;\n",
      });
      const worker = await loadWorker({ url: fileUrl(join(dir, file)) }, { env: env() });
      try {
        const { result } = await worker.invoke({});
        assert.equal(result.marker, 'bundled');
        assert.equal(result.dynamicMarker, 'bundled');
        assert.equal(result.coreMarker, 'runtime-core');
      } finally {
        await worker.close();
      }
    });
  }

  test('without the variable, nothing is resolved from elsewhere', async () => {
    const error = await loadFailure(fileUrl(join(FIXTURES, 'sdk-esm', 'index.mjs')));
    assert.match(error.errorMessage, /Cannot find package '@aws-sdk\/client-fake'/);
    const cjs = await loadFailure(fileUrl(join(FIXTURES, 'sdk-cjs', 'index.cjs')));
    assert.equal(cjs.errorType, 'Runtime.ImportModuleError');
    assert.match(cjs.errorMessage, /^Error: Cannot find module '@aws-sdk\/client-fake'/);
  });

  test('a package in neither place gives Node\'s own error', async () => {
    const esm = await loadFailure(fileUrl(join(FIXTURES, 'sdk-missing-esm', 'index.mjs')), {}, env());
    assert.equal(esm.errorType, 'Error');
    assert.match(esm.errorMessage, /^Cannot find package '@aws-sdk\/client-missing' imported from .*sdk-missing-esm/);
    const cjs = await loadFailure(fileUrl(join(FIXTURES, 'sdk-missing-cjs', 'index.cjs')), {}, env());
    assert.equal(cjs.errorType, 'Runtime.ImportModuleError');
    assert.match(cjs.errorMessage, /^Error: Cannot find module '@aws-sdk\/client-missing'\nRequire stack:\n- .*sdk-missing-cjs/);
  });

  test('only @aws-sdk/* and @smithy/* come from the SDK\'s directory', async () => {
    const error = await loadFailure(fileUrl(join(FIXTURES, 'not-sdk', 'index.mjs')), {}, env());
    assert.match(error.errorMessage, /Cannot find package 'fake-sdk-dependency'/);
  });

  test('the handler does not see the WSCONN_ variables', async () => {
    const source = 'export const handler = async () => Object.keys(process.env).filter((k) => k.startsWith("WSCONN_"));';
    const url = `data:text/javascript;base64,${Buffer.from(source).toString('base64')}`;
    const worker = await loadWorker({ url }, { env: { ...env(), WSCONN_REDIRECT_HOSTS: API_HOST, WSCONN_REDIRECT_TO: '127.0.0.1:9' } });
    try {
      assert.deepEqual((await worker.invoke({})).result, []);
    } finally {
      await worker.close();
    }
  });
});

describe('AWS hostnames redirected (WSCONN_REDIRECT_HOSTS, WSCONN_REDIRECT_TO)', () => {
  let certs;
  let local; // wsconn local's port: where listed hostnames must arrive
  let other; // anything else
  let worker;
  const url = `https://${API_HOST}/api/@connections/x`;

  before(async () => {
    certs = makeCertificates();
    local = await startServer('local', certs);
    other = await startServer('other', certs);
    worker = await loadWorker(
      { url: fileUrl(join(FIXTURES, 'redirect', 'index.mjs')) },
      {
        env: {
          NODE_EXTRA_CA_CERTS: certs.caPath,
          WSCONN_REDIRECT_HOSTS: `${API_HOST},${DYNAMODB_HOST.toUpperCase()}`,
          WSCONN_REDIRECT_TO: `127.0.0.1:${local.port}`,
        },
      },
    );
  });

  after(async () => {
    await worker?.close();
    await local?.close();
    await other?.close();
  });

  async function call(event) {
    const reply = await worker.invoke(event);
    assert.equal(reply.error, undefined, JSON.stringify(reply.error));
    return reply.result;
  }

  test('https.request reaches the local port, over TLS checked against the original name', async () => {
    const result = await call({ how: 'https', url });
    assert.equal(result.status, 200, JSON.stringify(result));
    assert.equal(result.body.server, 'local');
    assert.equal(result.body.tls, true);
    assert.equal(result.body.host, API_HOST);
    assert.equal(result.body.servername, API_HOST);
    assert.equal(result.body.url, '/api/@connections/x');
    assert.equal(result.body.body, 'hello');
  });

  test('fetch reaches the local port, over TLS checked against the original name', async () => {
    const result = await call({ how: 'fetch', url });
    assert.equal(result.status, 200, JSON.stringify(result));
    assert.equal(result.body.server, 'local');
    assert.equal(result.body.tls, true);
    assert.equal(result.body.host, API_HOST);
    assert.equal(result.body.servername, API_HOST);
    assert.equal(result.body.url, '/api/@connections/x');
  });

  test('a keep-alive agent reuses its redirected connection', async () => {
    const [first, second] = await call({ how: 'keepalive', url: `https://${DYNAMODB_HOST}/` });
    assert.equal(first.body.server, 'local', JSON.stringify(first));
    assert.equal(second.body.server, 'local', JSON.stringify(second));
    assert.equal(second.body.host, DYNAMODB_HOST);
    assert.equal(second.reusedSocket, true);
  });

  test('plain HTTP on another port is redirected too', async () => {
    for (const how of ['http', 'fetch']) {
      const result = await call({ how, url: `http://${DYNAMODB_HOST}:8000/tables` });
      assert.equal(result.status, 200, `${how}: ${JSON.stringify(result)}`);
      assert.equal(result.body.server, 'local');
      assert.equal(result.body.tls, false);
      assert.equal(result.body.host, `${DYNAMODB_HOST}:8000`);
    }
  });

  test('https://127.0.0.1:PORT (the event\'s domainName locally) needs only the CA', async () => {
    for (const how of ['https', 'fetch']) {
      const result = await call({ how, url: `https://127.0.0.1:${local.port}/api/@connections/x` });
      assert.equal(result.status, 200, `${how}: ${JSON.stringify(result)}`);
      assert.equal(result.body.server, 'local');
      assert.equal(result.body.tls, true);
      assert.equal(result.body.host, `127.0.0.1:${local.port}`);
    }
  });

  test('a hostname not listed goes where it resolves', async () => {
    const result = await call({ how: 'https', url: `https://${UNLISTED_HOST}/api`, lookupTo: other.port });
    assert.equal(result.body?.server, 'other', JSON.stringify(result));
    assert.equal(result.body.host, UNLISTED_HOST);
    const viaLocalhost = await call({ how: 'fetch', url: `https://localhost:${other.port}/x` });
    assert.equal(viaLocalhost.body?.server, 'other', JSON.stringify(viaLocalhost));
    assert.ok(!local.requests.some((r) => r.host.startsWith(UNLISTED_HOST) || r.host.startsWith('localhost')));
  });

  test('without the variables nothing is redirected', async () => {
    const plain = await loadWorker(
      { url: fileUrl(join(FIXTURES, 'redirect', 'index.mjs')) },
      { env: { NODE_EXTRA_CA_CERTS: certs.caPath } },
    );
    try {
      const before = local.requests.length;
      const viaLookup = (await plain.invoke({ how: 'https', url, lookupTo: other.port })).result;
      assert.equal(viaLookup.body?.server, 'other', JSON.stringify(viaLookup));
      const viaFetch = (await plain.invoke({ how: 'fetch', url })).result;
      assert.equal(viaFetch.error, 'ETESTGUARD', JSON.stringify(viaFetch));
      assert.equal(local.requests.length, before);
    } finally {
      await plain.close();
    }
  });
});
