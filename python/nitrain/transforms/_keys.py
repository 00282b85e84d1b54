"""Keys that name a transform's work the same way in every process, for caches shared across processes.

A key must change whenever the output could change and must never depend on memory addresses. Values are
keyed by content: ``None``, booleans, numbers, strings and bytes by value; lists, tuples, sets and dicts
by their items; numpy arrays and ANTs images by dtype, shape (and header) and a hash of their data;
modules and classes by name. Functions are keyed by module, qualified name and a hash of their code
(bytecode, constants, nested code), defaults, closure values and the values of the module globals they
read: other functions of the same module by their code too, functions of other modules (libraries) by
name; builtins and numpy ufuncs by name. A nitrain transform, or a callable object of a class written in
Python, is keyed by its ``cache_key()`` when it has one, else by its class and attributes (``_rng``
aside), plus, for classes defined outside nitrain, the code of their methods.

Anything else (an open file, a lock, a tensor, a random generator, ...) raises ``Unkeyable``: a cache then
uses a key private to the object and this process (``process_local_key``): never shared, never colliding.
"""

from __future__ import annotations

import dis
import functools
import hashlib
import sys
import types
import uuid
import weakref

import numpy as np

from nitrain.transforms._checks import is_image


class Unkeyable(TypeError):
    """A value has no key that is the same in every process."""


_SIMPLE = (type(None), bool, int, float, complex, str, bytes)
_TOKENS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: set for classes defined by a class statement
_GLOBAL_OPS = {"LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL"}


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def process_local_key(obj) -> str:
    """A key unique to ``obj`` in this process (a new one per call when ``obj`` cannot be weakly
    referenced): entries written under it are never found by another process or another object."""
    token = f"process-local:{uuid.uuid4().hex}"
    try:
        return _TOKENS.setdefault(obj, token)
    except TypeError:
        return token


def value_key(v, _seen: frozenset = frozenset()) -> str:
    """The key of a value (see the module docstring); ``Unkeyable`` when it has none."""
    if isinstance(v, _SIMPLE) or v is Ellipsis:
        return f"{type(v).__qualname__}:{v!r}"
    if id(v) in _seen:
        raise Unkeyable(f"{type(v).__qualname__} refers to itself")
    seen = _seen | {id(v)}
    if isinstance(v, list | tuple):
        return f"{type(v).__qualname__}[{','.join(value_key(x, seen) for x in v)}]"
    if isinstance(v, set | frozenset):
        return f"{type(v).__qualname__}{{{','.join(sorted(value_key(x, seen) for x in v))}}}"
    if isinstance(v, dict):
        items = sorted(f"{value_key(k, seen)}={value_key(x, seen)}" for k, x in v.items())
        return f"{type(v).__qualname__}{{{','.join(items)}}}"
    if isinstance(v, np.ndarray):
        if v.dtype.hasobject:
            raise Unkeyable("a numpy array of Python objects")
        return f"ndarray:{v.dtype.str}:{v.shape}:{_digest(np.ascontiguousarray(v).tobytes())}"
    if isinstance(v, np.generic):
        return f"{v.dtype.str}:{v.item()!r}"
    if isinstance(v, np.dtype):
        return f"dtype:{v.str}"
    if is_image(v):
        header = (v.pixeltype, v.components, v.shape, v.spacing, v.origin, v.direction.tolist())
        return f"ANTsImage:{header!r}:{_digest(np.ascontiguousarray(v.numpy()).tobytes())}"
    if isinstance(v, types.ModuleType):
        return f"module:{v.__name__}"
    if isinstance(v, type):
        return f"class:{v.__module__}.{v.__qualname__}"
    if callable(v):
        return callable_key(v, seen)
    raise Unkeyable(f"no stable key for a {type(v).__module__}.{type(v).__qualname__}")


@functools.lru_cache(maxsize=4096)
def _code_key(code: types.CodeType) -> tuple[str, tuple[str, ...]]:
    """(hash of the code, names of the globals it reads), nested code objects included."""
    parts = [sys.implementation.cache_tag or "", code.co_code.hex(), repr(code.co_names)]
    parts += [repr(code.co_freevars), repr((code.co_argcount, code.co_kwonlyargcount, code.co_flags))]
    names = {i.argval for i in dis.get_instructions(code) if i.opname in _GLOBAL_OPS}
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            sub, sub_names = _code_key(c)
            parts.append(sub)
            names.update(sub_names)
        else:
            parts.append(value_key(c))
    return _digest("\x00".join(parts).encode()), tuple(sorted(names))


def _function_key(fn: types.FunctionType, seen: frozenset) -> str:
    code, global_names = _code_key(fn.__code__)
    parts = [f"{fn.__module__}.{fn.__qualname__}", code]
    parts.append(value_key(fn.__defaults__ or (), seen))
    parts.append(value_key(fn.__kwdefaults__ or {}, seen))
    for cell in fn.__closure__ or ():
        try:
            parts.append(value_key(cell.cell_contents, seen))
        except ValueError:  # an empty cell
            parts.append("<empty cell>")
    raw = fn.__builtins__  # type: ignore[attr-defined,unused-ignore]  # missing from some typeshed versions
    builtins = raw if isinstance(raw, dict) else vars(raw)
    for name in global_names:
        if name in fn.__globals__:
            g = fn.__globals__[name]
            if isinstance(g, types.FunctionType) and (g.__module__ != fn.__module__ or id(g) in seen):
                parts.append(f"{name}=function:{g.__module__}.{g.__qualname__}")
            else:
                parts.append(f"{name}={value_key(g, seen)}")
        elif name in builtins:
            parts.append(f"{name}=builtin")
        else:
            parts.append(f"{name}=<undefined>")
    return f"function:{fn.__module__}.{fn.__qualname__}:{_digest(chr(0).join(parts).encode())}"


def _class_code_key(cls: type) -> str:
    """A hash of the code of the methods that ``cls`` and its bases outside nitrain define."""
    parts = []
    for klass in cls.__mro__:
        if klass.__module__ in ("builtins", "abc") or klass.__module__.startswith("nitrain."):
            continue
        for name, member in sorted(vars(klass).items()):
            fn = getattr(member, "__func__", member)  # staticmethod / classmethod
            if isinstance(fn, types.FunctionType):
                parts.append(f"{klass.__qualname__}.{name}:{_code_key(fn.__code__)[0]}")
    return _digest("\x00".join(parts).encode())


def _python_class(cls: type) -> bool:
    """Whether ``cls`` and its bases (``object`` aside) are classes written in Python, whose instances keep
    their state in ``__dict__``."""
    return all(k is object or k.__flags__ & _HEAPTYPE for k in cls.__mro__)


def transform_key(t, _seen: frozenset = frozenset()) -> str:
    """The key of a transform object (see the module docstring); ``Unkeyable`` when it has none."""
    own = getattr(t, "cache_key", None)
    if callable(own) and not isinstance(t, type):
        return f"{type(t).__module__}.{type(t).__qualname__}:{own()}"
    cls = type(t)
    state = getattr(t, "__dict__", None)
    if state is None:
        raise Unkeyable(f"{cls.__qualname__} has no attributes to key it by")
    attrs = {k: v for k, v in state.items() if k != "_rng"}
    key = f"{cls.__module__}.{cls.__qualname__}({value_key(attrs, _seen | {id(t)})})"
    if not cls.__module__.startswith("nitrain."):
        key += f"#code:{_class_code_key(cls)}"
    return key


def callable_key(fn, _seen: frozenset = frozenset()) -> str:
    """The key of a function or callable object (see the module docstring); ``Unkeyable`` when it has
    none."""
    if isinstance(fn, types.FunctionType):
        return _function_key(fn, _seen | {id(fn)})
    if isinstance(fn, functools.partial):
        args = f"{value_key(fn.args, _seen)},{value_key(fn.keywords, _seen)}"
        return f"partial({callable_key(fn.func, _seen)},{args})"
    if isinstance(fn, types.MethodType):
        return f"method({callable_key(fn.__func__, _seen)},self={value_key(fn.__self__, _seen)})"
    if (
        isinstance(fn, types.BuiltinFunctionType | np.ufunc)
        or type(fn).__name__ == "_ArrayFunctionDispatcher"
    ):
        owner = getattr(fn, "__self__", None)
        name = f"{getattr(fn, '__module__', None)}.{getattr(fn, '__qualname__', fn.__name__)}"
        if owner is not None and not isinstance(owner, types.ModuleType):
            return f"builtin:{name}(self={value_key(owner, _seen)})"
        return f"builtin:{name}"
    from nitrain.transforms.base import BaseTransform

    if isinstance(fn, BaseTransform) or callable(getattr(fn, "cache_key", None)) or _python_class(type(fn)):
        return transform_key(fn, _seen)
    raise Unkeyable(f"no stable key for a {type(fn).__module__}.{type(fn).__qualname__}")
