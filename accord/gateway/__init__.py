"""The real-time gateway at /ws: sans-I/O protocol, connection loop, fan-out."""
