"""What ran a batch's tasks: this thread ("sequential"), this host's process pool ("process") or a Dask cluster
("dask", issue 14). The service streams every batch through a `Stream`, so its routes, sweeps, walk-forwards,
Monte Carlo runs and jobs never ask which; the batch's summary says it (`executor`, `workers`)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


class Stream:
    """A batch's results in input order, and who computed them. Close it when leaving early: that stops (or
    cancels) the tasks still running."""

    def __init__(self, results: Iterator[Any], executor: str, workers: Callable[[], int]) -> None:
        self._results, self.executor, self._workers = results, executor, workers

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return next(self._results)

    def close(self) -> None:
        close = getattr(self._results, "close", None)
        if close is not None:
            close()

    def describe(self) -> dict[str, Any]:
        """{"executor", "workers": how many ran the batch, "processes": the same number (kept for old readers)}."""
        workers = self._workers()
        return {"executor": self.executor, "workers": workers, "processes": workers}
