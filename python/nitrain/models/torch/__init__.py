"""torch versions of the architectures in ``nitrain.models`` (one module per architecture).

Reach them through ``nitrain.models.fetch_architecture(name, dim, framework='torch')``. Each builder
``build(input_image_size, number_of_outcomes, mode, dim, **options)`` checks its arguments through the
framework-free plan of the same name (``nitrain.models._plans``), which its keras twin in
``nitrain.models.keras`` shares, so options, defaults and errors are one; only the layers differ. The
modules take channels-first ``(N, C, *spatial)`` tensors. Importing a builder module imports torch; this
package's ``__init__`` imports nothing.
"""
