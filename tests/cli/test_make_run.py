"""`make run` on a fresh clone: creates its venv, builds, starts, answers /health.

This is the README's first command, run for real on a clone of the committed tree (so it
also proves nothing needed is left uncommitted). It takes about a minute.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
import trio

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
async def test_make_run_on_fresh_clone(tmp_path: Path) -> None:
    if shutil.which("git") is None or shutil.which("make") is None:
        pytest.fail("git and make are required")
    clone = tmp_path / "clone"
    await trio.run_process(["git", "clone", "-q", str(REPO), str(clone)])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCORD_", "VIRTUAL_ENV"))}
    env.update({"PORT": "0", "ACCORD_BIND": "127.0.0.1"})
    proc = await trio.lowlevel.open_process(
        ["make", "run"],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert proc.stdout is not None
    output = b""
    try:
        with trio.fail_after(420):
            match = None
            while match is None:
                chunk = await proc.stdout.receive_some(65536)
                if not chunk:
                    raise AssertionError(f"make run ended early:\n{output.decode()[-3000:]}")
                output += chunk
                match = re.search(rb"listening on (http://\S+)", output)
            url = match.group(1).decode().replace("0.0.0.0", "127.0.0.1")
            async with httpx.AsyncClient() as http:
                r = await http.get(f"{url}/health")
        assert r.status_code == 200
        assert r.text == "ok"
        assert (clone / "data" / "accord.db").exists()
        assert list((clone / "accord" / "media").glob("_forward*.so"))
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGTERM)
        with trio.move_on_after(20):
            await proc.wait()
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
