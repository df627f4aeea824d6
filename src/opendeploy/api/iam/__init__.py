"""A small IAM API (Query protocol) on the server, so instance identities can be created remotely.

``aws deploy register`` / ``deregister`` and ``opendeploy register`` / ``deregister`` create and
delete an on-premises instance's IAM user, its access key and its inline policy through it. Only the
administrator key may call it. Users and policies are recorded; keys are the server's own access
keys with the user's ARN as principal, so the command service knows the instance that signs with
one. Policies are not evaluated: an instance key may read bundles and talk to the command service,
nothing else (see ``user_policies``).
"""
