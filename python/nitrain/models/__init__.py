"""Model architectures (torch, 2-D and 3-D) and a registry of pretrained models.

```
from nitrain import models
models.list_architectures()
model = models.fetch_architecture('basic', dim=3)((32, 32, 32, 1), number_of_outcomes=2)
models.register_pretrained(model, 'my-model')
model = models.fetch_pretrained('my-model')
```

``input_image_size`` is channels-last as in the original nitrain; the torch modules take channels-first
``(N, C, *spatial)`` tensors. Importing this package does not import torch; building a model does.
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
    PretrainedNotFoundError,
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
    "FrameworkNotAvailableError",
    "PretrainedNotFoundError",
    "fetch_architecture",
    "fetch_pretrained",
    "list_architectures",
    "list_pretrained",
    "model_card",
    "register_model",
    "register_pretrained",
]
