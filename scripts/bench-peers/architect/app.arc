# The chat of examples/chat as an Architect app, run by Architect's sandbox.
# Architect has no authorizers: the token check is in the connect handler.
@app
chat

@ws
sendmessage

@tables
connections
  connectionid *String

@aws
runtime nodejs20.x
region us-east-1
memory 256
timeout 10
