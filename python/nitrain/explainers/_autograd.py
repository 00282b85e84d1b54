"""The two things gradient explanations ask of a framework, for torch modules and keras 3 models.

``input_grads(batch, target)``: the gradient of output ``target`` with respect to each input of a numpy batch
``(N, *spatial)``, as a numpy array of the same shape. ``layer_grads(batch, target, layer)``: the layer's
activations and the gradient of output ``target`` with respect to them, both numpy ``(N, C, *spatial)``
(channels first whatever the framework's layout). Everything else (SmoothGrad's noise, the Integrated
Gradients path, Grad-CAM's weighting and upsampling) is framework-free, in ``gradients.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nitrain._frameworks import framework_of, require_keras, require_tensorflow, require_torch
from nitrain._layout import add_channel, drop_channel, from_data_format, move_axis

OWNER = "GradientExplainer"


def gradient_backend(model, where: str):
    """The gradient backend for ``model``, fed channels ``where`` (``'first'`` or ``'last'``)."""
    framework = framework_of(model)
    if framework == "torch":
        return TorchGradients(model, where)
    if framework == "keras":
        return KerasGradients(model, where)
    raise TypeError(
        f"{OWNER}: gradient methods need a torch model or a keras model, got {type(model).__name__}"
    )


def _check_outputs(out_shape, target: int):
    if len(out_shape) == 0:
        raise ValueError(f"{OWNER}: the model returned a scalar; it must return one row of outputs per input")
    n_out = int(np.prod(out_shape[1:], dtype=np.int64))
    if not 0 <= target < n_out:
        raise ValueError(f"{OWNER}: target {target} is out of range for a model with {n_out} outputs")


class TorchGradients:
    def __init__(self, model, where: str):
        self.torch = require_torch(OWNER)
        self.model, self.where = model, where
        self.device = next(model.parameters(), self.torch.zeros(0)).device

    def default_layer(self):
        nn = self.torch.nn
        convs = [m for m in self.model.modules() if isinstance(m, nn.Conv2d | nn.Conv3d)]
        if not convs:
            raise ValueError(f"{OWNER}: gradcam needs a convolution layer in the model; pass layer=")
        return convs[-1]

    def resolve_layer(self, layer):
        if isinstance(layer, str):
            named = dict(self.model.named_modules())
            if layer not in named:
                raise ValueError(f"{OWNER}: the model has no layer named {layer!r}")
            return named[layer]
        if not isinstance(layer, self.torch.nn.Module):
            raise TypeError(f"{OWNER}: layer must be a torch module or its name, got {type(layer).__name__}")
        return layer

    def _input(self, batch: np.ndarray):
        x = self.torch.from_numpy(add_channel(batch, self.where, np.float32)).to(self.device)
        return x.requires_grad_(True)

    def _target(self, out, target: int):
        if not isinstance(out, self.torch.Tensor):
            raise TypeError(f"{OWNER}: the model must return one tensor, got {type(out).__name__}")
        _check_outputs(tuple(out.shape), target)
        return out.reshape(len(out), -1)[:, target].sum()

    def input_grads(self, batch: np.ndarray, target: int) -> np.ndarray:
        torch, model = self.torch, self.model.eval()
        with torch.enable_grad():
            x = self._input(batch)
            (g,) = torch.autograd.grad(self._target(model(x), target), x)
        return drop_channel(g.detach().float().cpu().numpy(), self.where)

    def layer_grads(self, batch: np.ndarray, target: int, layer):
        torch, model = self.torch, self.model.eval()
        store: dict[str, Any] = {}
        hook = layer.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
        try:
            with torch.enable_grad():
                out = model(self._input(batch))
                if "a" not in store:
                    raise ValueError(f"{OWNER}: layer {type(layer).__name__} is not used by the model")
                (g,) = torch.autograd.grad(self._target(out, target), store["a"])
        finally:
            hook.remove()
        return store["a"].detach().float().cpu().numpy(), g.detach().float().cpu().numpy()


_KERAS_CONVS = (
    "Conv2D",
    "Conv3D",
    "SeparableConv2D",
    "DepthwiseConv2D",
    "Conv2DTranspose",
    "Conv3DTranspose",
)


class KerasGradients:
    """Keras 3 on the tensorflow backend (``tf.GradientTape``) or the torch backend (torch autograd)."""

    def __init__(self, model, where: str):
        self.keras = require_keras(OWNER)
        self.backend = self.keras.backend.backend()
        if self.backend == "tensorflow":
            self.tf = require_tensorflow(OWNER)
        elif self.backend == "torch":
            self.torch = require_torch(OWNER)
        else:
            raise ValueError(
                f"{OWNER}: gradients of keras models need the tensorflow or torch backend, but keras runs on "
                f"{self.backend!r}; set KERAS_BACKEND=tensorflow before importing keras"
            )
        self.model, self.where = model, where
        self._submodels: dict[Any, Any] = {}

    def default_layer(self):
        convs = tuple(getattr(self.keras.layers, n) for n in _KERAS_CONVS)
        found = [la for la in getattr(self.model, "layers", []) if isinstance(la, convs)]
        if not found:
            raise ValueError(
                f"{OWNER}: gradcam needs a convolution layer among the model's layers "
                f"({', '.join(_KERAS_CONVS)}); pass layer="
            )
        return found[-1]

    def resolve_layer(self, layer):
        if isinstance(layer, str):
            try:
                return self.model.get_layer(layer)
            except ValueError as e:
                raise ValueError(f"{OWNER}: the model has no layer named {layer!r}") from e
        if not isinstance(layer, self.keras.layers.Layer):
            raise TypeError(f"{OWNER}: layer must be a keras layer or its name, got {type(layer).__name__}")
        return layer

    def _submodel(self, layer):
        """``inputs -> [layer output, model output]``: reachable only in a functional or Sequential graph."""
        key = id(layer)
        if key not in self._submodels:
            model = self.model
            try:
                outputs = list(model.outputs)
                if len(outputs) != 1:
                    raise ValueError(f"gradcam explains single-output models; this one has {len(outputs)}")
                sub = self.keras.Model(model.inputs, [layer.output, outputs[0]])
            except (AttributeError, ValueError) as e:
                raise ValueError(
                    f"{OWNER}: gradcam needs the output of layer {layer.name!r} reachable from the inputs of "
                    f"the model, as in a functional or Sequential keras model; {type(model).__name__} does "
                    f"not give it (a subclassed model hides its layers' outputs: build it functionally, or "
                    f"use 'saliency', 'smoothgrad' or 'integrated_gradients'). Keras said: {e}"
                ) from e
            layout = from_data_format(getattr(layer, "data_format", "channels_last"), "first")
            self._submodels[key] = (sub, layout)
        return self._submodels[key]

    def _select(self, out, target: int):
        if isinstance(out, list | tuple | dict):
            raise TypeError(f"{OWNER}: the model must return one tensor, got {type(out).__name__}")
        _check_outputs(tuple(out.shape), target)
        return out

    def input_grads(self, batch: np.ndarray, target: int) -> np.ndarray:
        x = add_channel(batch, self.where, np.float32)
        if self.backend == "tensorflow":
            tf = self.tf
            x = tf.convert_to_tensor(x)
            with tf.GradientTape() as tape:
                tape.watch(x)
                out = self._select(self.model(x, training=False), target)
                total = tf.reduce_sum(tf.reshape(out, (len(batch), -1))[:, target])
            g = tape.gradient(total, x).numpy()
        else:
            x = self.keras.ops.convert_to_tensor(x).requires_grad_(True)
            with self.torch.enable_grad():
                out = self._select(self.model(x, training=False), target)
                (g,) = self.torch.autograd.grad(out.reshape(len(batch), -1)[:, target].sum(), x)
            g = g.detach().float().cpu().numpy()
        return drop_channel(g, self.where)

    def layer_grads(self, batch: np.ndarray, target: int, layer):
        sub, layout = self._submodel(layer)
        x = add_channel(batch, self.where, np.float32)
        if self.backend == "tensorflow":
            tf = self.tf
            x = tf.convert_to_tensor(x)
            with tf.GradientTape() as tape:
                tape.watch(x)
                act, out = sub(x, training=False)
                out = self._select(out, target)
                total = tf.reduce_sum(tf.reshape(out, (len(batch), -1))[:, target])
            g, act = tape.gradient(total, act).numpy(), act.numpy()
        else:
            x = self.keras.ops.convert_to_tensor(x).requires_grad_(True)
            with self.torch.enable_grad():
                act, out = sub(x, training=False)
                out = self._select(out, target)
                (g,) = self.torch.autograd.grad(out.reshape(len(batch), -1)[:, target].sum(), act)
            g, act = g.detach().float().cpu().numpy(), act.detach().float().cpu().numpy()
        return move_axis(act, layout, "first"), move_axis(g, layout, "first")
