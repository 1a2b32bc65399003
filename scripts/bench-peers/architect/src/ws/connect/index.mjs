// $connect. Architect has no authorizers, so the chat's token check happens here: a
// missing token answers 401 and a wrong one 403, which sandbox (like API Gateway)
// turns into the handshake's status. The item is what wsconn's connect.vtl writes,
// with the user as principalId.
import arc from '@architect/functions';

export async function handler(event) {
  const query = event.queryStringParameters ?? {};
  if (!query.token) return { statusCode: 401 };
  if (query.token !== process.env.CHAT_TOKEN) {
    console.log(`deny ${event.requestContext.connectionId} (wrong token)`);
    return { statusCode: 403 };
  }
  const ctx = event.requestContext;
  const data = await arc.tables();
  await data.connections.put({
    connectionid: ctx.connectionId,
    principalId: query.user || 'anonymous',
    ttl: Math.floor(ctx.requestTimeEpoch / 1000) + 86400,
    connectedAt: ctx.connectedAt,
    sourceIp: ctx.identity?.sourceIp ?? '',
    querystring: query,
  });
  return { statusCode: 200 };
}
