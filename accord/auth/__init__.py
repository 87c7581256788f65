"""Credentials: token generation and hashing, password hashing, principals."""
