"""Allocators behind one interface, and the registry that names them (``--allocator NAME``).

``make_allocator(name, **options)`` builds one from its registered class; an unknown name or option is an
error that lists the valid ones. Every allocator takes a :class:`SideProblem` and a NumPy ``Generator``
and returns an :class:`AllocationResult`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import InvalidParameterError
from ._base import (
    AllocationResult,
    Allocator,
    Binding,
    SideProblem,
    empty_result,
    entropy_nats,
    water_fill,
)
from ._baselines import FlatAllocator, GreedyAllocator, ProgressionAllocator
from ._convex import ConcaveSolution, ImpactAllocator, allocate_concave
from ._entropy import EntropyAllocator, EntropyState, project_to_min_entropy
from ._stealth import ImpactDirichletAllocator, ImpactPosteriorAllocator

#: name -> allocator class; each class is constructible from keyword options alone.
ALLOCATORS: dict[str, type] = {
    ImpactAllocator.name: ImpactAllocator,
    ImpactDirichletAllocator.name: ImpactDirichletAllocator,
    ImpactPosteriorAllocator.name: ImpactPosteriorAllocator,
    EntropyAllocator.name: EntropyAllocator,
    GreedyAllocator.name: GreedyAllocator,
    FlatAllocator.name: FlatAllocator,
    ProgressionAllocator.name: ProgressionAllocator,
}


def make_allocator(name: str, /, **options: Any) -> Allocator:
    """Build the allocator registered as ``name`` with ``options`` (its dataclass fields).

    Raises
    ------
    InvalidParameterError
        Unknown name (the message lists the registered ones) or unknown option (lists the valid ones).
    """
    try:
        cls = ALLOCATORS[name]
    except KeyError:
        raise InvalidParameterError(f"unknown allocator {name!r}; choose one of {sorted(ALLOCATORS)}") from None
    valid = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise InvalidParameterError(
            f"invalid option {unknown[0]!r} for allocator {name!r}; valid options are {sorted(valid)}"
        )
    try:
        return cls(**options)  # type: ignore[no-any-return]
    except TypeError as exc:  # a wrong type that the constructor's own checks did not name
        raise InvalidParameterError(f"allocator {name!r}: {exc}") from None


__all__ = [
    "ALLOCATORS",
    "AllocationResult",
    "Allocator",
    "Binding",
    "ConcaveSolution",
    "EntropyAllocator",
    "EntropyState",
    "FlatAllocator",
    "GreedyAllocator",
    "ImpactAllocator",
    "ImpactDirichletAllocator",
    "ImpactPosteriorAllocator",
    "ProgressionAllocator",
    "SideProblem",
    "allocate_concave",
    "empty_result",
    "entropy_nats",
    "make_allocator",
    "project_to_min_entropy",
    "water_fill",
]
