"""Outside systems behind small interfaces: load balancers, alarms, notifications, revision sources."""
