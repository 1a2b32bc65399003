// The chat's sendmessage, written as an Architect user would: @architect/functions for
// the table (arc.tables) and for @connections (arc.ws.send). The same behaviour as
// examples/chat/handlers/sendmessage: every connection receives `data`, at most 50
// posts in flight, and a connection that answers 410 has its item deleted.
import arc from '@architect/functions';

const CONCURRENCY = 50;

const isGone = (err) =>
  err?.statusCode === 410 || err?.name === 'GoneException' || err?.code === 'GoneException'
  || err?.metadata?.statusCode === 410;

export async function handler(event) {
  let body;
  try {
    body = JSON.parse(event.body ?? '');
  } catch {
    body = null;
  }
  if (body === null || typeof body !== 'object' || body.data === undefined) {
    return { statusCode: 400, body: JSON.stringify({ message: 'no data: send {"action":"sendmessage","data":"…"}' }) };
  }
  const payload = typeof body.data === 'string' ? body.data : JSON.stringify(body.data);
  const data = await arc.tables();
  const items = await data.connections.scanAll({ ProjectionExpression: 'connectionid' });
  const ids = items.map((i) => i.connectionid);
  let sent = 0;
  let gone = 0;
  let failed = 0;
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++];
      try {
        await arc.ws.send({ id, payload });
        sent++;
      } catch (err) {
        if (isGone(err)) {
          gone++;
          await data.connections.delete({ connectionid: id }).catch((e) => console.error(`delete ${id}: ${e.message}`));
        } else {
          failed++;
          console.error(`post to ${id} failed: ${err.name}: ${err.message}`);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, ids.length) }, worker));
  console.log(`sendmessage from ${event.requestContext.connectionId}: ${ids.length} connections, sent ${sent}, gone ${gone} (deleted), failed ${failed}`);
  return { statusCode: 200 };
}
