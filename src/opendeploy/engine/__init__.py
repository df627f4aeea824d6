"""Drives deployments: reconciler, persistent timers, one strategy per platform and deployment type."""
