// Checks examples/chat's handlers with plain Node.js, without wsconn: the sendmessage
// handler runs against dynalite (a DynamoDB-compatible server, in memory) and a small
// HTTP server that plays @connections; the authorizer is called with AWS's REQUEST
// authorizer event.
//
// What it checks:
// - every live connection receives the message's `data` once, exactly as sent;
// - a connection that answers 410 has its item deleted, and only that one;
// - the table is read page by page (items are padded so a Scan needs several pages);
// - a body without data, or that is not JSON, gets 400 with a JSON error body;
// - the authorizer allows the right token (principalId = user, default "anonymous",
//   context.user), denies any other token explicitly on the methodArn, and never logs
//   the token.
//
// usage: node scripts/bench-peers/check-chat-handlers.mjs
//   (run scripts/bench-peers/install first, and `npm install` in examples/chat)
// Prints one line per check and "N passed, M failed"; exits 1 when any failed.
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const chat = path.join(root, 'examples/chat');
const tools = path.join(root, 'target/bench-peers/tools');
const require = createRequire(path.join(tools, 'package.json'));
const dynalite = require('dynalite');

let passed = 0;
let failed = 0;
function check(name, ok, detail = '') {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${!ok && detail ? `: ${detail}` : ''}`);
}

// DynamoDB: dynalite, counting Scan requests.
const ddb = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
let scans = 0;
ddb.prependListener('request', (req) => {
  if (String(req.headers['x-amz-target']).endsWith('.Scan')) scans++;
});
ddb.listen(0, '127.0.0.1');
await once(ddb, 'listening');
const ddbUrl = `http://127.0.0.1:${ddb.address().port}`;

// @connections: POST /api/@connections/<id>; ids in `gone` answer 410 as API Gateway does.
const gone = new Set();
const received = new Map();
const conns = createServer((req, res) => {
  const m = /^\/api\/@connections\/([^/?]+)$/.exec(req.url);
  if (req.method !== 'POST' || !m) {
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"Not Found"}');
    return;
  }
  const id = decodeURIComponent(m[1]);
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (gone.has(id)) {
      res.writeHead(410, { 'content-type': 'application/json', 'x-amzn-errortype': 'GoneException' });
      res.end('{"message":null}');
      return;
    }
    const list = received.get(id) ?? [];
    list.push(Buffer.concat(chunks).toString('utf8'));
    received.set(id, list);
    res.writeHead(200, { 'content-type': 'application/json' }).end();
  });
});
conns.listen(0, '127.0.0.1');
await once(conns, 'listening');

const TABLE = 'chat-connections';
Object.assign(process.env, {
  TABLE_NAME: TABLE,
  CONNECTIONS_URL: `http://127.0.0.1:${conns.address().port}/api`,
  AWS_ENDPOINT_URL_DYNAMODB: ddbUrl,
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'local',
  AWS_SECRET_ACCESS_KEY: 'local',
  CHAT_TOKEN: 'chat-demo-token',
  // SDK releases since late 2026 warn once on Node.js < 22; the warning is noise here.
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
});

// The SDK the handlers import (examples/chat/node_modules), for setting up the table.
const chatRequire = createRequire(path.join(chat, 'package.json'));
const { DynamoDBClient, CreateTableCommand, PutItemCommand, ScanCommand } = chatRequire('@aws-sdk/client-dynamodb');
const client = new DynamoDBClient({});
await client.send(new CreateTableCommand({
  TableName: TABLE,
  AttributeDefinitions: [{ AttributeName: 'connectionid', AttributeType: 'S' }],
  KeySchema: [{ AttributeName: 'connectionid', KeyType: 'HASH' }],
  BillingMode: 'PAY_PER_REQUEST',
}));

// API Gateway's connection id form: 11 random bytes in base64 (16 characters, may hold + / =).
const newId = () => Buffer.from(crypto.getRandomValues(new Uint8Array(11))).toString('base64');
const ids = Array.from({ length: 120 }, newId);
const padding = 'x'.repeat(20_000); // 120 × 20 KB: a Scan takes 3 pages of 1 MB
for (const id of ids) {
  await client.send(new PutItemCommand({
    TableName: TABLE,
    Item: { connectionid: { S: id }, userAgent: { S: padding }, principalId: { S: 'alice' } },
  }));
}
const staleIds = ids.slice(-3);
for (const id of staleIds) gone.add(id);
const liveIds = ids.filter((id) => !gone.has(id));

const { handler: sendmessage } = await import(path.join(chat, 'handlers/sendmessage/index.mjs'));
const logs = [];
const realLog = console.log;
const capture = async (fn) => {
  console.log = (...a) => logs.push(a.join(' '));
  try { return await fn(); } finally { console.log = realLog; }
};
const event = (body) => ({
  requestContext: { routeKey: 'sendmessage', eventType: 'MESSAGE', connectionId: ids[0], stage: 'api' },
  body,
  isBase64Encoded: false,
});

const data = `héllo "chat" ${Date.now()} ✓`;
const r1 = await capture(() => sendmessage(event(JSON.stringify({ action: 'sendmessage', data }))));
check('sendmessage returns 200 without a body', r1?.statusCode === 200 && r1.body === undefined, JSON.stringify(r1));
check('the table was read in several pages', scans >= 3, `${scans} Scan requests`);
const wrong = liveIds.filter((id) => JSON.stringify(received.get(id)) !== JSON.stringify([data]));
check(`each of the ${liveIds.length} live connections (the sender included) received the data once, as sent`, wrong.length === 0, `${wrong.length} did not, e.g. ${JSON.stringify(received.get(wrong[0]))}`);
check('nothing was posted to the gone connections', staleIds.every((id) => !received.has(id)));
const left = [];
let start;
do {
  const page = await client.send(new ScanCommand({ TableName: TABLE, ProjectionExpression: 'connectionid', ExclusiveStartKey: start }));
  left.push(...page.Items.map((i) => i.connectionid.S));
  start = page.LastEvaluatedKey;
} while (start);
check('the gone connections\' items were deleted', staleIds.every((id) => !left.includes(id)), `left: ${staleIds.filter((id) => left.includes(id))}`);
check('the live connections\' items were kept', liveIds.every((id) => left.includes(id)), `${left.length} left`);
check('one summary log line with the counts', logs.some((l) => l.includes(`sent ${liveIds.length}`) && l.includes('gone 3')), JSON.stringify(logs));

received.clear();
const r2 = await capture(() => sendmessage(event(JSON.stringify({ action: 'sendmessage', data: 'again' }))));
check('a warm second invocation reaches everyone, with no gone left', r2?.statusCode === 200 && liveIds.every((id) => received.get(id)?.[0] === 'again') && logs.at(-1).includes('gone 0'), logs.at(-1));

for (const [what, body] of [['no data', '{"action":"sendmessage"}'], ['a body that is not JSON', 'hi'], ['a JSON body that is not an object', '"hi"'], ['no body', undefined]]) {
  received.clear();
  const r = await capture(() => sendmessage(event(body)));
  let message;
  try { message = JSON.parse(r.body).message; } catch {}
  check(`${what}: 400 with a JSON error body, nothing sent`, r?.statusCode === 400 && typeof message === 'string' && received.size === 0, JSON.stringify(r));
}

// The authorizer, with AWS's WebSocket REQUEST authorizer event.
const { handler: authorizer } = await import(path.join(chat, 'handlers/authorizer/index.mjs'));
const methodArn = 'arn:aws:execute-api:us-east-1:123456789012:abcdef1234/api/$connect';
const authEvent = (query) => ({
  type: 'REQUEST',
  methodArn,
  headers: { Host: '127.0.0.1:8080' },
  queryStringParameters: query,
  multiValueQueryStringParameters: Object.fromEntries(Object.entries(query).map(([k, v]) => [k, [v]])),
  stageVariables: {},
  requestContext: { routeKey: '$connect', eventType: 'CONNECT', connectionId: newId(), stage: 'api', apiId: 'abcdef1234' },
});
const statement = (p) => p?.policyDocument?.Statement?.[0] ?? {};
logs.length = 0;
const allow = await capture(() => authorizer(authEvent({ token: 'chat-demo-token', user: 'alice' })));
check('right token: Allow execute-api:Invoke on the methodArn, principalId and context.user from ?user',
  allow.principalId === 'alice' && allow.policyDocument.Version === '2012-10-17' && statement(allow).Effect === 'Allow'
  && statement(allow).Action === 'execute-api:Invoke' && statement(allow).Resource === methodArn && allow.context?.user === 'alice',
  JSON.stringify(allow));
const anon = await capture(() => authorizer(authEvent({ token: 'chat-demo-token' })));
check('right token, no user: principalId "anonymous"', anon.principalId === 'anonymous' && statement(anon).Effect === 'Allow', JSON.stringify(anon));
const deny = await capture(() => authorizer(authEvent({ token: 'nope', user: 'mallory' })));
check('wrong token: an explicit Deny on the methodArn', statement(deny).Effect === 'Deny' && statement(deny).Resource === methodArn, JSON.stringify(deny));
const none = await capture(() => authorizer({ ...authEvent({}), queryStringParameters: null }));
check('no query string at all: Deny, no crash', statement(none).Effect === 'Deny', JSON.stringify(none));
check('the decision is logged, the token never', logs.length === 4 && logs.every((l) => !l.includes('chat-demo-token') && !l.includes('nope')), JSON.stringify(logs));

ddb.close();
conns.close();
client.destroy();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
