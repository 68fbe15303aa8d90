"""A test's helper process: ``python -m MODULE ARGS`` from the repository root, used once it says it is ready.

The child prints one agreed word on stdout when it is ready (a publisher has announced, guessers guess); the
parent waits for that line instead of sleeping, and kills the child (SIGKILL ends a frozen one too) on exit.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def ready_child(
    module: str, *args: str, ready: str, timeout: float, what: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Start the child; yield it once its first line is ``ready`` (else fail naming ``what``)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(timeout):
            line = await process.stdout.readline()
        assert line.decode().strip() == ready, f"{what} did not start (it said {line!r})"
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
