// $default: wsconn's built-in echo (the event back to its sender). Sandbox does not send
// a handler's returned body to the client, so the echo goes through @connections.
import arc from '@architect/functions';

export async function handler(event) {
  await arc.ws.send({ id: event.requestContext.connectionId, payload: JSON.stringify(event) });
  return { statusCode: 200 };
}
