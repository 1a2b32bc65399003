// wsconn local: the warm Node.js worker that runs the stack's $default handler.
//
// wsconn starts it once with `node --input-type=module -e <this file>` and reuses it; many
// invocations are in flight at once, since the handler is async. The protocol is one
// JSON object per line:
//   stdin:  {"init": {"url", "export", "functionName", "memoryMb"}}   (first line)
//           {"id": N, "event": {...}, "timeoutMs": T}                 (one per invocation)
//   stdout: {"ready": true} | {"ready": false, "error": {...}}         (answer to init)
//           {"id": N, "result": ...} | {"id": N, "error": {...}}       (one per invocation)
// stdout carries nothing else: the handler's console output and process.stdout writes go
// to stderr, which wsconn copies into its log.
import { createInterface } from 'node:readline';
import { format } from 'node:util';
import { randomUUID } from 'node:crypto';

const protocolWrite = process.stdout.write.bind(process.stdout);
process.stdout.write = (chunk, encoding, cb) => process.stderr.write(chunk, encoding, cb);
for (const level of ['log', 'info', 'debug', 'trace', 'warn', 'error']) {
  console[level] = (...args) => process.stderr.write(format(...args) + '\n');
}

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

let handler = null;
let init = null;

async function load(spec) {
  init = spec;
  try {
    const mod = await import(spec.url);
    const fn = mod[spec.export];
    if (typeof fn !== 'function') {
      throw new Error(`${spec.export} is not exported as a function by the handler module`);
    }
    handler = fn;
    send({ ready: true });
  } catch (e) {
    const err = errorOf(e);
    err.errorType = 'Runtime.ImportModuleError';
    send({ ready: false, error: err });
  }
}

async function invoke(id, event, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  const context = {
    awsRequestId: randomUUID(),
    functionName: init.functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${init.functionName}`,
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
    process.stderr.write(`wsconn worker: unreadable request line: ${e.message}\n`);
    return;
  }
  if (msg.init) {
    load(msg.init);
  } else if (handler) {
    invoke(msg.id, msg.event, msg.timeoutMs);
  } else {
    send({ id: msg.id, error: { errorType: 'Runtime.ImportModuleError', errorMessage: 'the handler is not loaded', stack: '' } });
  }
});
// When wsconn closes stdin to retire this worker, the invocations in flight finish and
// the process exits once nothing is left to run.
