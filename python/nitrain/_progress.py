"""Progress bars for nitrain's long-running work (``tqdm.auto``: a widget in Jupyter, text elsewhere)."""

from __future__ import annotations

import sys
from typing import Any


def interactive() -> bool:
    """Whether someone is watching: stderr is a terminal, or the code runs in a Jupyter kernel."""
    try:
        if sys.stderr is not None and sys.stderr.isatty():
            return True
    except (AttributeError, ValueError):  # a replaced or closed stderr
        pass
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def progress_bar(total: float | None, desc: str, progress: bool | None = None, unit: str = "it") -> Any:
    """A ``tqdm.auto`` bar (on stderr, or a notebook widget) over ``total`` steps.

    ``progress``: ``True`` shows it, ``False`` hides it, ``None`` shows it when ``interactive()``. A hidden
    bar is still a bar: ``update`` and ``close`` do nothing."""
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"{desc}: progress must be True, False or None, got {progress!r}")
    from tqdm.auto import tqdm

    show = interactive() if progress is None else progress
    return tqdm(total=total, desc=desc, unit=unit, disable=not show, leave=False, dynamic_ncols=True)
