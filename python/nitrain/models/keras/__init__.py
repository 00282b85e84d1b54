"""keras 3 versions of the architectures in ``nitrain.models`` (one module per architecture).

Reach them through ``nitrain.models.fetch_architecture(name, dim, framework='keras')``. Each builder takes
the arguments of the torch builder of the same name (``nitrain.models.torch``) and checks them through the
same framework-free plan (``nitrain.models._plans``), so options, defaults and errors are one; it has the
same output shapes, layer structure and widths; the models take channels-last ``(N, *spatial, C)`` input,
as ``input_image_size`` is written. Importing a builder module imports keras (``KERAS_BACKEND`` picks its
backend); this package's ``__init__`` imports nothing.
"""
