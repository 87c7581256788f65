"""Test doubles for third-party network services, written as small real servers."""
