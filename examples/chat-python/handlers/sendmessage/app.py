"""The chat's `sendmessage` route, in Python: a client sends
{"action":"sendmessage","data":"hi"} and every connection in the table (the sender
included) receives "hi" through @connections.

wsconn wires this function to the pattern (the same names on AWS and under
`wsconn local`):
- TABLE_NAME       the connection table; its partition key is `connectionid` (S);
- CONNECTIONS_URL  the @connections endpoint of this API's stage.
Connections that answer 410 (GoneException) are gone: their items are deleted.

boto3 comes from the runtime, as on Lambda: there is nothing to install.
"""

import json
import os
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.exceptions import ClientError

# Created once per execution environment and reused by every warm invocation.
dynamodb = boto3.client("dynamodb")
connections = boto3.client("apigatewaymanagementapi", endpoint_url=os.environ["CONNECTIONS_URL"])
TABLE = os.environ["TABLE_NAME"]

# At most this many @connections calls in flight at once.
CONCURRENCY = 50


def bad_request(message):
    return {"statusCode": 400, "body": json.dumps({"message": message})}


def connection_ids():
    """Every connection id in the table, page by page."""
    ids = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=TABLE, ProjectionExpression="connectionid"):
        ids.extend(item["connectionid"]["S"] for item in page.get("Items", []) if "connectionid" in item)
    return ids


def post(connection_id, data):
    """'sent', 'gone' (its item deleted) or 'failed'."""
    try:
        connections.post_to_connection(ConnectionId=connection_id, Data=data.encode())
        return "sent"
    except ClientError as err:
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if err.response.get("Error", {}).get("Code") == "GoneException" or status == 410:
            try:
                dynamodb.delete_item(TableName=TABLE, Key={"connectionid": {"S": connection_id}})
            except ClientError as delete_err:
                print(f"deleting the item of gone {connection_id} failed: {delete_err}")
            return "gone"
        print(f"post to {connection_id} failed: {err}")
        return "failed"


def lambda_handler(event, context):
    try:
        body = json.loads(event.get("body") or "")
    except ValueError:
        return bad_request('the body is not JSON: send {"action":"sendmessage","data":"…"}')
    if not isinstance(body, dict) or "data" not in body:
        return bad_request('no data: send {"action":"sendmessage","data":"…"}')
    # The message goes out as it came: a string as is, anything else as its JSON.
    data = body["data"] if isinstance(body["data"], str) else json.dumps(body["data"])

    ids = connection_ids()
    with ThreadPoolExecutor(max_workers=max(1, min(CONCURRENCY, len(ids)))) as pool:
        outcomes = list(pool.map(lambda i: post(i, data), ids))
    sender = event.get("requestContext", {}).get("connectionId", "?")
    print(
        f"sendmessage from {sender}: {len(ids)} connections, sent {outcomes.count('sent')}, "
        f"gone {outcomes.count('gone')} (deleted), failed {outcomes.count('failed')}"
    )
    return {"statusCode": 200}
