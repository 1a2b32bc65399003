"""The chat's $connect authorizer (a Lambda REQUEST authorizer), in Python.

A handshake is allowed when its `token` query parameter equals CHAT_TOKEN; the user is
the `user` query parameter ("anonymous" when there is none). API Gateway answers 401 by
itself when `token` is missing (it is the identity source), 403 on the Deny below, and
500 if this function raises.

Allowed connections carry the user as $context.authorizer.principalId in the $connect
template (the table item's `principalId`) and as requestContext.authorizer in every
later event of the connection.
"""

import os


def policy(principal_id, effect, resource, context=None):
    answer = {
        "principalId": principal_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
    }
    if context:
        answer["context"] = context
    return answer


def lambda_handler(event, context):
    query = event.get("queryStringParameters") or {}
    user = query.get("user") or "anonymous"
    expected = os.environ.get("CHAT_TOKEN", "")
    allowed = expected != "" and query.get("token") == expected
    connection_id = event.get("requestContext", {}).get("connectionId", "?")
    # Never log the token itself.
    print(f"{'allow' if allowed else 'deny'} {connection_id} user={user!r}{'' if allowed else ' (wrong token)'}")
    if allowed:
        return policy(user, "Allow", event["methodArn"], {"user": user})
    return policy(user, "Deny", event["methodArn"])
