// The chat's $connect authorizer (a Lambda REQUEST authorizer).
//
// A handshake is allowed when its `token` query parameter equals CHAT_TOKEN; the user
// is the `user` query parameter ("anonymous" when there is none). API Gateway answers
// 401 by itself when `token` is missing (it is the identity source), 403 on the Deny
// below, and 500 if this function throws.
//
// Allowed connections carry the user as $context.authorizer.principalId in the $connect
// template (the table item's `principalId`) and as requestContext.authorizer in every
// later event of the connection.
const policy = (principalId, effect, resource, context) => ({
  principalId,
  policyDocument: {
    Version: '2012-10-17',
    Statement: [{ Action: 'execute-api:Invoke', Effect: effect, Resource: resource }],
  },
  ...(context ? { context } : {}),
});

export const handler = async (event) => {
  const query = event.queryStringParameters ?? {};
  const user = query.user || 'anonymous';
  const expected = process.env.CHAT_TOKEN;
  const allowed = typeof expected === 'string' && expected !== '' && query.token === expected;
  const connectionId = event.requestContext?.connectionId ?? '?';
  // Never log the token itself.
  console.log(`${allowed ? 'allow' : 'deny'} ${connectionId} user=${JSON.stringify(user)}${allowed ? '' : ' (wrong token)'}`);
  return allowed
    ? policy(user, 'Allow', event.methodArn, { user })
    : policy(user, 'Deny', event.methodArn);
};
