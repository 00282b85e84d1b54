"""keras 3 versions of the architectures in ``nitrain.models`` (one module per architecture).

Reach them through ``nitrain.models.fetch_architecture(name, dim, framework='keras')``. Each builder has
the signature, options, modes, argument checks and output shapes of the torch builder of the same name,
and the same layer structure and widths; the models take channels-last ``(N, *spatial, C)`` input, as
``input_image_size`` is written. Importing a builder module imports keras (``KERAS_BACKEND`` picks its
backend); this package's ``__init__`` imports nothing.
"""
