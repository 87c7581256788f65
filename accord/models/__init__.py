"""Frozen dataclasses for each resource, with their wire shapes (API.md 2, CLIENT.md 5)."""
