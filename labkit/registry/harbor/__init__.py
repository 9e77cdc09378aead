"""Harbor in front of the lab registry: projects, users, robots, labels, immutability, quotas, the audit log."""
