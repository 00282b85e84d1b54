"""Model architectures (torch or keras 3, 2-D and 3-D) and a registry of pretrained models.

```
from nitrain import models
models.list_architectures()               # names, dims, modes, smallest input size
models.list_architectures(details=True)   # and every option, its default and what it does
model = models.fetch_architecture('basic', dim=3)((32, 32, 32, 1), number_of_outcomes=2)
keras_model = models.fetch_architecture('basic', dim=3, framework='keras')((32, 32, 32, 1), 2)
models.register_pretrained(model, 'my-model')
model = models.fetch_pretrained('my-model')
```

``input_image_size`` is channels-last as in the original nitrain; the torch modules take channels-first
``(N, C, *spatial)`` tensors, the keras models channels-last ``(N, *spatial, C)`` input. Both versions of
an architecture have the same layers, widths, options and output sizes. ``framework`` defaults to
``$NITRAIN_FRAMEWORK``, else torch if installed, else keras ('tensorflow' and 'tf' also mean keras; the
keras backend is ``$KERAS_BACKEND``'s). Importing this package imports neither framework; building a
model does.

Layout: ``_architectures`` (the table: name, plan, dims, modes, builders), ``_plans`` and ``_spec``
(framework-free: each architecture's options, their checks and the sizes its layers get), ``torch/`` and
``keras/`` (one builder module per architecture, turning a plan into layers), ``pretrained`` (the
registry: registering, fetching and listing models) and ``_registry`` (its storage, names and model cards).
"""

from nitrain.models._architectures import (
    ArchitectureTable,
    FrameworkNotAvailableError,
    fetch_architecture,
    list_architectures,
)
from nitrain.models._spec import MODES
from nitrain.models.pretrained import (
    ChecksumError,
    ModelCardError,
    PretrainedNotFoundError,
    RegistryWarning,
    fetch_pretrained,
    list_pretrained,
    model_card,
    register_model,
    register_pretrained,
)

__all__ = [
    "MODES",
    "ArchitectureTable",
    "ChecksumError",
    "ModelCardError",
    "FrameworkNotAvailableError",
    "PretrainedNotFoundError",
    "RegistryWarning",
    "fetch_architecture",
    "fetch_pretrained",
    "list_architectures",
    "list_pretrained",
    "model_card",
    "register_model",
    "register_pretrained",
]
