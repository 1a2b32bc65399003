// $connect: what wsconn's connect.vtl does through the DynamoDB integration, as a Lambda
// function (serverless-offline has no service integrations).
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';

const dynamodb = new DynamoDBClient({});

export const handler = async (event) => {
  const ctx = event.requestContext;
  const item = {
    connectionid: { S: ctx.connectionId },
    ttl: { N: String(Math.floor(ctx.requestTimeEpoch / 1000) + 86400) },
    connectedAt: { N: String(ctx.connectedAt ?? Date.now()) },
    sourceIp: { S: ctx.identity?.sourceIp ?? '' },
    querystring: { M: Object.fromEntries(Object.entries(event.queryStringParameters ?? {}).map(([k, v]) => [k, { S: String(v) }])) },
  };
  if (ctx.authorizer?.principalId) item.principalId = { S: String(ctx.authorizer.principalId) };
  await dynamodb.send(new PutItemCommand({
    TableName: process.env.TABLE_NAME,
    Item: item,
    ConditionExpression: 'attribute_not_exists(connectionid)',
  }));
  return { statusCode: 200 };
};
