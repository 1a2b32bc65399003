// The chat's `sendmessage` route: a client sends {"action":"sendmessage","data":"hi"}
// and every connection in the table (the sender included) receives "hi" through
// @connections.
//
// wsconn wires this function to the pattern (the same names on AWS and under
// `wsconn local`):
// - TABLE_NAME       the connection table; its partition key is `connectionid` (S);
// - CONNECTIONS_URL  the @connections endpoint of this API's stage.
// Connections that answer 410 (GoneException) are gone: their items are deleted.
import { DynamoDBClient, ScanCommand, DeleteItemCommand } from '@aws-sdk/client-dynamodb';
import {
  ApiGatewayManagementApiClient,
  PostToConnectionCommand,
  GoneException,
} from '@aws-sdk/client-apigatewaymanagementapi';

// Created once per execution environment and reused by every warm invocation.
const dynamodb = new DynamoDBClient({});
const connections = new ApiGatewayManagementApiClient({ endpoint: process.env.CONNECTIONS_URL });

// At most this many @connections calls in flight at once.
const CONCURRENCY = 50;

const badRequest = (message) => ({
  statusCode: 400,
  body: JSON.stringify({ message }),
});

// Every connection id in the table, page by page.
async function connectionIds() {
  const ids = [];
  let ExclusiveStartKey;
  do {
    const page = await dynamodb.send(
      new ScanCommand({
        TableName: process.env.TABLE_NAME,
        ProjectionExpression: 'connectionid',
        ExclusiveStartKey,
      }),
    );
    for (const item of page.Items ?? []) {
      if (item.connectionid?.S) ids.push(item.connectionid.S);
    }
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return ids;
}

const isGone = (err) =>
  err instanceof GoneException || err?.name === 'GoneException' || err?.$metadata?.httpStatusCode === 410;

export const handler = async (event) => {
  let body;
  try {
    body = JSON.parse(event.body ?? '');
  } catch {
    return badRequest('the body is not JSON: send {"action":"sendmessage","data":"…"}');
  }
  if (body === null || typeof body !== 'object' || body.data === undefined) {
    return badRequest('no data: send {"action":"sendmessage","data":"…"}');
  }
  // The message goes out as it came: a string as is, anything else as its JSON.
  const data = typeof body.data === 'string' ? body.data : JSON.stringify(body.data);

  const ids = await connectionIds();
  let sent = 0;
  let gone = 0;
  let failed = 0;
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const ConnectionId = ids[next++];
      try {
        await connections.send(new PostToConnectionCommand({ ConnectionId, Data: data }));
        sent++;
      } catch (err) {
        if (isGone(err)) {
          gone++;
          try {
            await dynamodb.send(
              new DeleteItemCommand({
                TableName: process.env.TABLE_NAME,
                Key: { connectionid: { S: ConnectionId } },
              }),
            );
          } catch (deleteErr) {
            console.error(`deleting the item of gone ${ConnectionId} failed: ${deleteErr.name}: ${deleteErr.message}`);
          }
        } else {
          failed++;
          console.error(`post to ${ConnectionId} failed: ${err.name}: ${err.message}`);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, ids.length) }, worker));

  const from = event.requestContext?.connectionId ?? '?';
  console.log(`sendmessage from ${from}: ${ids.length} connections, sent ${sent}, gone ${gone} (deleted), failed ${failed}`);
  return { statusCode: 200 };
};
