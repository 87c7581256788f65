"""HTTP entry points: one blueprint per resource; every module with a `blueprint` is mounted.

Handlers parse the request, resolve the caller, call one service, and encode the answer.
They never touch storage.
"""
