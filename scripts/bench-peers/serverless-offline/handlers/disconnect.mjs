// $disconnect: what wsconn's disconnect.vtl does, as a Lambda function.
import { DynamoDBClient, DeleteItemCommand } from '@aws-sdk/client-dynamodb';

const dynamodb = new DynamoDBClient({});

export const handler = async (event) => {
  await dynamodb.send(new DeleteItemCommand({
    TableName: process.env.TABLE_NAME,
    Key: { connectionid: { S: event.requestContext.connectionId } },
  }));
  return { statusCode: 200 };
};
