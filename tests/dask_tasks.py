"""Worker functions the Dask tests send to a cluster's workers (importable there: they import this package)."""
from __future__ import annotations

import os
import time
from typing import Any


def slow_pid(crypto: dict[str, Any], seconds: float) -> tuple[int, int]:
    """(this crypto's id, the worker's pid) after `seconds`: a task long enough to kill its worker under it."""
    time.sleep(seconds)
    return crypto["id"], os.getpid()


slow_pid.lost = lambda task_args, failure: (task_args[0]["id"], failure.code)  # type: ignore[attr-defined]
