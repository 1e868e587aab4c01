"""Progress display for CP-ALS: a rich progress bar on stderr (iteration, fit, seconds per iteration)."""

from __future__ import annotations

from typing import Any


class NoProgress:
    """Does nothing; used when ``progress=False``."""

    def __enter__(self) -> NoProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def update(self, iteration: int, fit: float | None, seconds: float) -> None:
        """Ignore an iteration's report."""


class RichProgress:
    """A rich progress bar on stderr, advanced once per iteration."""

    def __init__(self, method: str, rank: int, max_iter: int) -> None:
        self._label = f"CP-ALS {method}, rank {rank}"
        self._max_iter = max_iter
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> RichProgress:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("fit {task.fields[fit]}"),
            TextColumn("{task.fields[per_iter]} s/iter"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        self._progress.__enter__()
        self._task = self._progress.add_task(self._label, total=self._max_iter, fit="-", per_iter="-")
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.__exit__(*exc)

    def update(self, iteration: int, fit: float | None, seconds: float) -> None:
        """Show that ``iteration`` finished in ``seconds`` (with its fit when it was evaluated)."""
        fields: dict[str, Any] = {"per_iter": f"{seconds:.3g}"}
        if fit is not None:
            fields["fit"] = f"{fit:.6f}"
        self._progress.update(self._task, completed=iteration, **fields)
