// wsconn local: the warm Node.js worker that runs one function of the stack.
//
// wsconn starts it once per function with `node --input-type=module -e <this file>` and
// reuses it; many invocations are in flight at once, since the handler is async. It is one
// self-contained module with no file of its own and no dependencies (Node.js 20 or later).
//
// The protocol is one JSON object per line:
//   stdin:  {"init": {"url", "export", "functionName", "memoryMb", "region"}}   (first line)
//             url:    import URL of the handler's module (file: or data:); `.mjs` is ESM,
//                     `.cjs` CommonJS, `.js` follows the nearest package.json `type`, as
//                     on Lambda (Node's own import() makes that choice)
//             export: the handler's name in it, the part of Lambda's Handler setting after
//                     the module (`handler`; a dotted path `a.b` is followed, as Lambda does)
//             region: the function's region, for context.invokedFunctionArn
//           {"id": N, "event": {...}, "timeoutMs": T}                           (one per invocation)
//   stdout: {"ready": true} | {"ready": false, "error": {errorType, errorMessage, stack}}
//                                                                       (answer to init)
//           {"id": N, "result": ...} | {"id": N, "error": {...}}       (one per invocation)
// stdout carries nothing else: the handler's console output and process.stdout writes go
// to stderr, which wsconn copies into its log.
//
// A handler that fails to load is reported with Lambda's error types and messages (from
// aws-lambda-nodejs-runtime-interface-client): `Runtime.HandlerNotFound` "<module>.<export>
// is undefined or not exported" (or "... is not a function"), `Runtime.ImportModuleError`
// "Error: Cannot find module '...'" for a missing file or a CommonJS require that finds
// nothing, `Runtime.UserCodeSyntaxError` for a syntax error, and anything else as thrown.
//
// Environment it reads (all optional; without them it runs the handler and nothing more):
//   WSCONN_SDK_NODE_MODULES  absolute path of a `node_modules` directory holding `@aws-sdk/*`
//                            and `@smithy/*` packages: Lambda's Node.js runtimes ship the AWS
//                            SDK for JavaScript v3, so a handler's `import`/`require` of one
//                            that its own resolution cannot find is resolved from there. A
//                            copy the handler bundles is found first and wins, as on Lambda.
//                            (ESM: a resolve hook, module.registerHooks or module.register;
//                            CommonJS: Module._resolveFilename. Other packages in the
//                            directory, the SDK's own dependencies, are not offered.)
//   WSCONN_REDIRECT_HOSTS    comma-separated exact hostnames (e.g. `abc123.execute-api.
//   WSCONN_REDIRECT_TO       us-east-1.amazonaws.com`; case and a final dot do not matter)
//                            and the `host:port` (`[::1]:port` for IPv6) to send every
//                            connection to them to instead (any port, TLS or plain). TLS still
//                            verifies the certificate against the original hostname, so it
//                            takes a CA the process trusts: wsconn sets NODE_EXTRA_CA_CERTS,
//                            which Node reads at start for https, tls and fetch alike.
//   _HANDLER                 Lambda's Handler setting, for the HandlerNotFound message.
//   AWS_REGION               the region when the init line names none.
// The WSCONN_* variables are removed from process.env once read, so the handler (and any
// program it starts) sees Lambda's environment only.
import { createInterface } from 'node:readline';
import { format } from 'node:util';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import net from 'node:net';
// The default export is Module itself; `registerHooks` and `register` are read from it, not
// imported by name, because a named import that this Node lacks would stop the module linking.
import Module from 'node:module';

const protocolWrite = process.stdout.write.bind(process.stdout);
process.stdout.write = (chunk, encoding, cb) => process.stderr.write(chunk, encoding, cb);
for (const level of ['log', 'info', 'debug', 'trace', 'warn', 'error']) {
  console[level] = (...args) => process.stderr.write(format(...args) + '\n');
}

function warn(message) {
  process.stderr.write(`wsconn worker: ${message}\n`);
}

// ---------------------------------------------------------------------------------------
// The runtime's AWS SDK.

/** The packages Lambda's runtime provides: the SDK v3 and the Smithy packages it is built on. */
function isRuntimeSdk(specifier) {
  return specifier.startsWith('@aws-sdk/') || specifier.startsWith('@smithy/');
}

// Whether an import that failed to resolve is tried again from the SDK's directory: a
// runtime-SDK package that was not found at all (ERR_MODULE_NOT_FOUND; a bundled copy that
// lacks a subpath is the handler's own error), not already looked up there. The normal
// resolution always goes first, so a bundled copy wins. Self-contained: its source is
// also pasted into the loader-thread hook below.
function retriesFromSdk(specifier, context, error, sdkParentURL) {
  return (specifier.startsWith('@aws-sdk/') || specifier.startsWith('@smithy/')) &&
    error !== null && typeof error === 'object' && error.code === 'ERR_MODULE_NOT_FOUND' &&
    context.parentURL !== sdkParentURL;
}

// The same hook for module.register (Node 20.6 to 22.14), which runs hooks on a loader
// thread from a module of their own: this worker has no file, so it is a data: URL.
const ASYNC_SDK_HOOK = `
${retriesFromSdk}
let sdkParentURL = null;
export function initialize(data) {
  sdkParentURL = data.sdkParentURL;
}
export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (e) {
    if (retriesFromSdk(specifier, context, e, sdkParentURL)) {
      try {
        return await nextResolve(specifier, { ...context, parentURL: sdkParentURL });
      } catch {
        // Not in the SDK's directory either: the handler gets Node's own error.
      }
    }
    throw e;
  }
}
`;

function installSdkFallback(dir) {
  if (basename(dir) !== 'node_modules') {
    warn(`WSCONN_SDK_NODE_MODULES=${dir} is not a node_modules directory; packages in it may not be found`);
  }
  // ESM (import and import()): resolved again as if from a (nonexistent) module inside
  // `dir`; Node's package lookup from there walks `dir/node_modules`, then `dir` itself.
  const sdkParentURL = pathToFileURL(join(dir, 'wsconn-sdk-parent.mjs')).href;
  if (typeof Module.registerHooks === 'function') {
    // Node 22.15 and later: in-thread, synchronous hooks; module.register is deprecated
    // from Node 26 (DEP0205) and warns.
    Module.registerHooks({
      resolve(specifier, context, nextResolve) {
        try {
          return nextResolve(specifier, context);
        } catch (e) {
          if (retriesFromSdk(specifier, context, e, sdkParentURL)) {
            try {
              return nextResolve(specifier, { ...context, parentURL: sdkParentURL });
            } catch {
              // Not in the SDK's directory either: the handler gets Node's own error.
            }
          }
          throw e;
        }
      },
    });
  } else if (typeof Module.register === 'function') {
    Module.register(`data:text/javascript,${encodeURIComponent(ASYNC_SDK_HOOK)}`, {
      parentURL: pathToFileURL(join(process.cwd(), '/')).href,
      data: { sdkParentURL },
    });
  } else {
    warn(`Node.js ${process.version} has no module.register (20.6 or later has): imports of the runtime's AWS SDK are not resolved from ${dir}`);
  }
  // CommonJS: the same fallback in require's resolver. NODE_PATH would do it too, but it
  // would expose every package of the cache (tslib, ...) and leak into child processes.
  // The SDK's own requires from inside `dir` find their dependencies by the normal walk.
  const resolveFilename = Module._resolveFilename;
  Module._resolveFilename = function (request, parent, isMain, options) {
    try {
      return resolveFilename.call(this, request, parent, isMain, options);
    } catch (e) {
      if (e && e.code === 'MODULE_NOT_FOUND' && typeof request === 'string' && isRuntimeSdk(request)) {
        try {
          return resolveFilename.call(this, request, parent, isMain, { ...options, paths: [dir] });
        } catch {
          // Not there either: the original error names the requiring module.
        }
      }
      throw e;
    }
  };
}

// ---------------------------------------------------------------------------------------
// AWS's hostnames, redirected to wsconn local.

/**
 * Sends every connection to one of `hosts` to `to` (`host:port`) instead.
 *
 * It wraps net.Socket.prototype.connect, the one place every TCP connection of this
 * process passes through: http's and https's agents (the AWS SDK's NodeHttpHandler, with
 * or without keep-alive), net.connect, tls.connect and undici's connector behind the
 * global fetch. Wrapping net.connect/net.createConnection/tls.connect would not do: undici
 * calls them through the module objects, but Node 20's http.Agent keeps its own reference
 * to net.createConnection, taken when http loads (Node 22 looks it up at each call), so
 * plain-HTTP requests would slip past. A dns.lookup wrapper would not either: the port
 * must change too.
 *
 * Only the address the socket connects to changes: tls.connect has already taken the
 * servername (SNI) and the hostname it checks the certificate against from its own
 * options, and http and fetch the Host header from the URL, so all of them still say the
 * original hostname. The new address is an IP, so no DNS lookup is made for it.
 */
function installRedirect(hostsList, to) {
  const hosts = new Set(
    hostsList.split(',').map((h) => h.trim().toLowerCase().replace(/\.$/, '')).filter(Boolean),
  );
  const colon = to.lastIndexOf(':');
  const toHost = to.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const toPort = Number(to.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(toPort) || toPort <= 0 || toPort > 65535) {
    warn(`WSCONN_REDIRECT_TO=${to} is not HOST:PORT; nothing is redirected`);
    return;
  }
  const listed = (host) =>
    typeof host === 'string' && hosts.has(host.toLowerCase().replace(/\.$/, ''));
  const redirected = (options) =>
    options.path == null && listed(options.host) ? { ...options, host: toHost, port: toPort } : options;

  const connect = net.Socket.prototype.connect;
  net.Socket.prototype.connect = function (...args) {
    const first = args[0];
    if (Array.isArray(first)) {
      // net.connect and tls.connect pass their already-normalised [options, callback];
      // the array carries Node's private marker, so it is edited in place.
      if (first[0] && typeof first[0] === 'object') first[0] = redirected(first[0]);
    } else if (first && typeof first === 'object') {
      args[0] = redirected(first);
    } else if ((typeof first === 'number' || typeof first === 'string') && listed(args[1])) {
      // socket.connect(port, host[, listener])
      args[0] = toPort;
      args[1] = toHost;
    }
    return connect.apply(this, args);
  };
}

// Both are installed before the handler's module is imported, so its top-level code
// (clients made at load time) already sees them.
const sdkDir = process.env.WSCONN_SDK_NODE_MODULES;
if (sdkDir) installSdkFallback(sdkDir);
const redirectHosts = process.env.WSCONN_REDIRECT_HOSTS;
const redirectTo = process.env.WSCONN_REDIRECT_TO;
if (redirectHosts && redirectTo) installRedirect(redirectHosts, redirectTo);
for (const name of ['WSCONN_SDK_NODE_MODULES', 'WSCONN_REDIRECT_HOSTS', 'WSCONN_REDIRECT_TO']) {
  delete process.env[name];
}

// ---------------------------------------------------------------------------------------
// The protocol.

let pending = [];
let flushQueued = false;
// Replies finished in the same turn of the event loop go out in one write.
function send(obj) {
  let line;
  try {
    line = JSON.stringify(obj);
  } catch (e) {
    line = JSON.stringify({ id: obj.id, error: errorOf(e) });
  }
  pending.push(line);
  if (!flushQueued) {
    flushQueued = true;
    setImmediate(() => {
      flushQueued = false;
      const out = pending.join('\n') + '\n';
      pending = [];
      protocolWrite(out);
    });
  }
}

function errorOf(e) {
  if (e instanceof Error) {
    return { errorType: e.name || 'Error', errorMessage: e.message, stack: String(e.stack || '') };
  }
  return { errorType: typeof e, errorMessage: String(e), stack: '' };
}

function runtimeError(errorType, errorMessage, stack = '') {
  return { errorType, errorMessage, stack };
}

let handler = null;
let init = null;

/** Lambda's Handler setting, for messages: `_HANDLER` when it names this export. */
function handlerString(spec) {
  const setting = process.env._HANDLER;
  if (setting && setting.endsWith(`.${spec.export}`)) return setting;
  let module = 'index';
  if (spec.url.startsWith('file:')) {
    const file = basename(fileURLToPath(spec.url));
    module = file.slice(0, file.length - extname(file).length);
  }
  return `${module}.${spec.export}`;
}

/** The export a handler names: a named export, else the same path under `default`. */
function findHandler(mod, exportPath) {
  const find = (root) =>
    exportPath.split('.').reduce((o, key) => (o !== null && (typeof o === 'object' || typeof o === 'function') ? o[key] : undefined), root);
  // A CommonJS module's named exports are what Node's static analysis finds; whatever it
  // misses (module.exports = someObject) is still on `default`, which is module.exports.
  return find(mod) ?? find(mod.default);
}

async function load(spec) {
  init = spec;
  if (spec.url.startsWith('file:')) {
    const file = fileURLToPath(spec.url);
    if (!existsSync(file)) {
      send({ ready: false, error: runtimeError('Runtime.ImportModuleError', `Error: Cannot find module '${file}'`) });
      return;
    }
  }
  let mod;
  try {
    mod = await import(spec.url);
  } catch (e) {
    // As Lambda's runtime: a syntax error and a CommonJS require that finds nothing are
    // wrapped with the original error's text; anything else (an ESM import that finds
    // nothing, an exception at the module's top level) is reported as thrown.
    let err = errorOf(e);
    if (e instanceof SyntaxError) {
      err = runtimeError('Runtime.UserCodeSyntaxError', String(e), err.stack);
    } else if (e && e.code === 'MODULE_NOT_FOUND') {
      err = runtimeError('Runtime.ImportModuleError', String(e), err.stack);
    }
    send({ ready: false, error: err });
    return;
  }
  const fn = findHandler(mod, spec.export);
  if (fn === undefined || fn === null) {
    send({ ready: false, error: runtimeError('Runtime.HandlerNotFound', `${handlerString(spec)} is undefined or not exported`) });
  } else if (typeof fn !== 'function') {
    send({ ready: false, error: runtimeError('Runtime.HandlerNotFound', `${handlerString(spec)} is not a function`) });
  } else {
    handler = fn;
    send({ ready: true });
  }
}

async function invoke(id, event, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  const region = init.region || process.env.AWS_REGION || 'local';
  const context = {
    awsRequestId: randomUUID(),
    functionName: init.functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:000000000000:function:${init.functionName}`,
    memoryLimitInMB: String(init.memoryMb),
    logGroupName: `/aws/lambda/${init.functionName}`,
    logStreamName: 'local',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
  try {
    const result = await handler(event, context);
    send({ id, result: result === undefined ? null : result });
  } catch (e) {
    send({ id, error: errorOf(e) });
  }
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on('line', (line) => {
  if (!line) return;
  let msg;
  try {
    msg = JSON.parse(line);
  } catch (e) {
    warn(`unreadable request line: ${e.message}`);
    return;
  }
  if (msg.init) {
    load(msg.init);
  } else if (handler) {
    invoke(msg.id, msg.event, msg.timeoutMs);
  } else {
    send({ id: msg.id, error: runtimeError('Runtime.ImportModuleError', 'the handler is not loaded') });
  }
});
// When wsconn closes stdin to retire this worker, the invocations in flight finish and
// the process exits once nothing is left to run.
