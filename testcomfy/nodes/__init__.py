"""Node implementations: real image, video and audio nodes, model fakes, and a fallback for every other class."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import cache
from typing import Any

from . import image as _image  # noqa: F401  (registers implementations)
from . import media as _media  # noqa: F401
from . import models as _models  # noqa: F401
from .base import REGISTRY, Fake, NodeContext, Out
from .models import fallback, sampler_steps

__all__ = ["Fake", "NodeContext", "Out", "run_node", "sampler_steps"]


def run_node(ctx: NodeContext, values: dict[str, Any]) -> Out:
    """Call the implementation of ``ctx.class_type`` (or the fallback) and normalise its result."""
    fn = REGISTRY.get(ctx.class_type)
    if fn is None:
        result = fallback(ctx, **values)
    else:
        accepted = _parameters(fn)
        result = fn(ctx, **(values if accepted is None else {k: v for k, v in values.items() if k in accepted}))
    if isinstance(result, Out):
        return result
    return Out(tuple(result), None)


@cache
def _parameters(fn: Callable[..., Any]) -> frozenset[str] | None:
    """Keyword names an implementation takes (None if it takes **kwargs)."""
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return frozenset(p.name for p in params)
