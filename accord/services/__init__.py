"""Business rules, one module per resource: permissions, storage calls, events."""
