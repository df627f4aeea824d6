"""HTTP layer: protocol adapters (awsJson 1.1, S3 REST), SigV4, and shape <-> domain translation."""
