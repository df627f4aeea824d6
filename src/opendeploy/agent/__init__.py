"""Host side: bundle fetch and extraction, installer, permissions, hook runner, deployment root, poller."""
