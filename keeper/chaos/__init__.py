"""Chaos for the live loop: a loopback JSON-RPC fault proxy and a scenario runner (`make chaos`)."""
