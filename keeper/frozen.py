"""A quicker constructor for the frozen dataclasses built in hot loops (exact quotes, size search).

A frozen dataclass's generated __init__ sets each field through object.__setattr__ (to get past
its own guard): one call per field, about four times the cost of a plain dataclass. `quick_init`
replaces that __init__ by one that fills the instance dict directly. Nothing else changes: the
class is still frozen (assignment and deletion raise FrozenInstanceError), equal, hashed, printed,
replaced and pickled as before, and __post_init__ still runs. For classes without __slots__,
whose fields are plain init fields (defaults allowed, no default factories), or fields outside
__init__ that their __post_init__ sets.
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

T = TypeVar("T")


def quick_init(cls: type[T]) -> type[T]:
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen:
        raise TypeError(f"{cls.__name__}: quick_init is for @dataclass(frozen=True) classes")
    if "__slots__" in cls.__dict__:
        raise TypeError(f"{cls.__name__}: quick_init needs an instance dict (no slots)")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    defaults: dict[str, object] = {}
    args = []
    post_init = hasattr(cls, "__post_init__")
    init_fields = []
    for f in fields:
        if f.name in ("self", "_fields_"):
            raise TypeError(f"{cls.__name__}.{f.name}: a field name quick_init's __init__ uses itself")
        if not f.init and post_init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            continue  # set by __post_init__, as with the generated __init__
        if not f.init or f.default_factory is not dataclasses.MISSING or f.kw_only:
            raise TypeError(f"{cls.__name__}.{f.name}: quick_init takes plain positional init fields only")
        init_fields.append(f)
        if f.default is dataclasses.MISSING:
            args.append(f.name)
        else:
            defaults[f"_default_{f.name}"] = f.default
            args.append(f"{f.name}=_default_{f.name}")
    body = "".join(f"    _fields_[{f.name!r}] = {f.name}\n" for f in init_fields)
    post = "    self.__post_init__()\n" if post_init else ""
    source = f"def __init__(self, {', '.join(args)}):\n    _fields_ = self.__dict__\n{body}{post}"
    namespace: dict[str, object] = dict(defaults)
    exec(source, namespace)  # noqa: S102 - generated from the class's own field names, as dataclasses does
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"  # type: ignore[attr-defined]
    init.__doc__ = cls.__init__.__doc__  # type: ignore[misc]
    cls.__init__ = init  # type: ignore[misc]
    return cls
