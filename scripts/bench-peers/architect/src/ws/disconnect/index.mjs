// $disconnect: delete the connection's item.
import arc from '@architect/functions';

export async function handler(event) {
  const data = await arc.tables();
  await data.connections.delete({ connectionid: event.requestContext.connectionId });
  return { statusCode: 200 };
}
