"""The agent command service (``CodeDeployCommandService_v20141006``): what host agents call.

PollHostCommand (a long poll), GetDeploymentSpecification (a ``PKCS7/JSON`` envelope signed with the
server's key), PutHostCommandAcknowledgement, PutHostCommandComplete and PostHostCommandUpdate,
SigV4-signed (``codedeploy-commands``) with each instance's own credentials; an instance only ever sees
and answers its own commands.
"""
