"""Type aliases for the public API's annotations (ANTs, keras and tensorflow are untyped: ``Any``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

#: a local path or a URL (``s3://...``)
PathLike: TypeAlias = str | os.PathLike[str]
#: an ``ants.ANTsImage``
Image: TypeAlias = Any
#: a transform: ``t(image)`` (dataset and loader x/y transforms) or ``t(x, y)`` (co-transforms)
Transform: TypeAlias = Callable[..., Any]
#: a torch ``nn.Module`` or a keras ``Model``
Model: TypeAlias = Any
#: a list of transforms, or None for none
Transforms: TypeAlias = Sequence[Transform] | None
