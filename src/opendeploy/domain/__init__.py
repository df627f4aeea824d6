"""Pure rules over plain data: deployment configs, batching, tag matching, health, ids and ARNs."""
