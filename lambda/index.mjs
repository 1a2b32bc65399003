// $default route handler: echoes the event back to the caller.
// Node.js 24 (nodejs24.x) no longer supports callback-style handlers, so this is async.
export const handler = async (event) => ({ statusCode: 200, body: JSON.stringify(event) });
