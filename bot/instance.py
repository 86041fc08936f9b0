"""Which worker instance this process is: an id its next incarnation shares, so a restart can release its leases.

The id is `<host>-<data dir digest>-<slot>`: the host (INSTANCE_ID, else the hostname: on Fly the machine id, stable
across restarts), the data directory (two deployments on one host stay apart), and a slot, the lowest
`DATA_DIR/instances/slot-N.lock` this process can lock. The kernel drops a lock when its process dies, even by
SIGKILL, so holding slot N proves that no live process holds the id: its leases belong to a dead incarnation.
Several worker processes on one host hold different slots, and never release each other's leases.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

MAX_SLOTS = 256
LOCK_DIR = "instances"


@dataclass
class Instance:
    """This process's instance id; `reusable` when a file lock proves no live process shares it."""

    id: str
    reusable: bool
    lock: IO[bytes] | None = None

    def close(self) -> None:
        """Give the slot up (the next process to start on this host may take it)."""
        if self.lock is not None:
            self.lock.close()
            self.lock = None


def _base(host: str, data_dir: Path) -> str:
    digest = hashlib.sha256(str(data_dir.expanduser().resolve()).encode()).hexdigest()[:8]
    return f"{host[:64]}-{digest}"


def _try_lock(path: Path) -> IO[bytes] | None:
    import fcntl

    handle = path.open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def claim_instance(data_dir: Path, host: str | None = None) -> Instance:
    """Take the lowest free slot under `data_dir`; without one (no lock support, read-only), a one-off id."""
    base = _base(host or socket.gethostname(), data_dir)
    try:
        folder = data_dir / LOCK_DIR
        folder.mkdir(parents=True, exist_ok=True)
        for slot in range(MAX_SLOTS):
            handle = _try_lock(folder / f"slot-{slot}.lock")
            if handle is not None:
                return Instance(f"{base}-{slot}", reusable=True, lock=handle)
    except (OSError, ImportError) as exc:
        log.warning("no instance slot under %s (%s): leases of a crashed run wait until they expire", data_dir, exc)
    return Instance(f"{base}-{os.getpid()}-{uuid.uuid4().hex[:8]}", reusable=False)
