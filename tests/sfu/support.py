"""Shared helpers for tests that run a real SFU-mode process (`python -m accord` with
ACCORD_MODE=sfu) as a subprocess and read what it logs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import trio

REPO_ROOT = str(Path(__file__).resolve().parents[2])


class Node:
    """A running node process; `collect` gathers its combined stdout/stderr line by line."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.output: list[str] = []
        self._changed = trio.Event()

    async def collect(self) -> None:
        assert self.process.stdout is not None
        buffer = b""
        async for chunk in self.process.stdout:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            self.output += [line.decode(errors="replace") for line in lines]
            self._changed.set()
            self._changed = trio.Event()

    async def wait_for(self, pattern: str, timeout: float = 20, *, nth: int = 1) -> re.Match[str]:
        """The `nth` complete output line matching `pattern` (waiting up to `timeout`)."""
        with trio.fail_after(timeout):
            while True:
                matches = [m for m in (re.search(pattern, line) for line in self.output) if m]
                if len(matches) >= nth:
                    return matches[nth - 1]
                await self._changed.wait()


async def start_node_process(nursery: trio.Nursery, settings: Mapping[str, str]) -> Node:
    """Start an SFU-mode node on loopback with ephemeral ports; `settings` (node id, main URL,
    secret, capacity, ...) go over the defaults."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "ACCORD_MODE": "sfu",
        "ACCORD_SFU_REGION": "local",
        "ACCORD_SFU_ENDPOINT": "ws://127.0.0.1:0/ws",
        "ACCORD_SFU_UDP_PORT": "0",
        "ACCORD_BIND": "127.0.0.1",
        "PORT": "0",
        "ACCORD_LOG": "accord=info,hypercorn=warning",
        **settings,
    }
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "accord"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=REPO_ROOT,
    )
    node = Node(process)
    nursery.start_soon(node.collect)
    return node
