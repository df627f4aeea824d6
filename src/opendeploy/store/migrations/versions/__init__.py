"""Migration scripts: ``0001_core`` (platform and identity tables), ``0002_deployments`` ..."""
