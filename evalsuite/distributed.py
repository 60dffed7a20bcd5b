"""Distributed evaluation on torch.distributed (launched by `torchrun ... -m evalsuite score ...`).

Generation and feature extraction are sharded across ranks (sample i goes to rank i mod W); float64 (n, Σx, Σxxᵀ)
statistics are summed with all_reduce, features and per-sample results gathered back into the original order, so
every rank holds exactly what a single process would have computed. Only rank 0 writes results, once every task
has finished on every rank. A rank that fails makes every rank stop with a clear error naming it: each sharded
section ends with an exchange of statuses, so no rank waits forever and nothing partial is stored."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence, TypeVar

import numpy as np
import torch

from evalsuite.errors import EvalsuiteError
from evalsuite.stats import StreamingStats

T = TypeVar("T")


class DistributedRankError(EvalsuiteError):
    """Some rank failed; every rank raises this so the run ends everywhere with the same message."""


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, items: Sequence[T]) -> list[T]:
        return list(items[self.rank::self.world])

    def unshard(self, parts: list[list[T]]) -> list[T]:
        """Inverse of shard: parts[r] holds items r, r+W, r+2W, ... of the whole."""
        out: list[T] = []
        for i in range(max((len(p) for p in parts), default=0)):
            out.extend(p[i] for p in parts if i < len(p))
        return out

    def gather(self, obj: Any) -> list[Any]:
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world
        torch.distributed.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: Any) -> Any:
        if not self.enabled:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def collectively(self, fn: Callable[[], T], what: str) -> T:
        """Run `fn` on every rank; if any rank raised, raise DistributedRankError on all of them — except when every
        rank raised a skip (TaskSkipped, missing weights): that is the same decision everywhere, so it stands."""
        error: BaseException | None = None
        result = None
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 (re-raised below, on every rank)
            error = exc
        if not self.enabled:
            if error is not None:
                raise error
            return result  # type: ignore[return-value]
        from evalsuite.errors import MissingWeightsError, TaskSkipped

        skip = isinstance(error, (TaskSkipped, MissingWeightsError))
        statuses = self.gather(None if error is None else (skip, f"{type(error).__name__}: {error}"))
        failed = [(r, s[1]) for r, s in enumerate(statuses) if s is not None]
        if failed and len(failed) == self.world and all(s[0] for s in statuses) and error is not None:
            raise error  # every rank skips alike
        if failed:
            rank, message = failed[0]
            raise DistributedRankError(f"{what} failed on rank {rank} of {self.world}: {message}",
                                       "fix the cause on that rank; no result was stored") from error
        return result  # type: ignore[return-value]

    def reduce_stats(self, stats: StreamingStats) -> StreamingStats:
        """Sum float64 (n, Σx, Σxxᵀ) over ranks (exact up to float64 summation order)."""
        if not self.enabled:
            return stats
        packed = torch.from_numpy(np.concatenate([[float(stats.n)], stats.sum, stats.sum_outer.reshape(-1)]))
        torch.distributed.all_reduce(packed, op=torch.distributed.ReduceOp.SUM)
        arr = packed.numpy()
        d = stats.dim
        return StreamingStats(d, int(round(arr[0])), arr[1:1 + d].copy(), arr[1 + d:].reshape(d, d).copy())


_STATE = Dist()


def current() -> Dist:
    return _STATE


def shutdown(synchronize: bool = True) -> None:
    """Leave the process group before the interpreter exits.

    With `synchronize` (a run that finished on this rank) every rank first meets at a barrier. gloo's worker threads
    release a collective's tensors only after the caller has its result, and releasing them takes the GIL; a rank
    that goes straight from its last collective to interpreter shutdown can leave such a thread waiting for the GIL,
    which then aborts the process (SIGABRT, "terminate called without an active exception") after a correct run. The
    barrier waits without the GIL, after every earlier collective has completed, so those threads finish first. A
    rank that is failing skips it: the others may never arrive."""
    global _STATE
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        if synchronize:
            torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    _STATE = Dist()


def init_from_env() -> Dist:
    """Join the process group torchrun describes (gloo on CPU, nccl when CUDA is used); single process otherwise."""
    global _STATE
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        _STATE = Dist()
        return _STATE
    if not torch.distributed.is_initialized():
        backend = os.environ.get("EVALSUITE_DIST_BACKEND") or ("nccl" if torch.cuda.is_available() else "gloo")
        torch.distributed.init_process_group(backend=backend)
    _STATE = Dist(torch.distributed.get_rank(), torch.distributed.get_world_size())
    return _STATE


@contextlib.contextmanager
def session() -> Iterator[Dist]:
    """The process group torchrun describes, joined for the body and left after it: synchronised when the body
    finished, at once when it raised (see `shutdown`)."""
    dist = init_from_env()
    try:
        yield dist
    except BaseException:
        shutdown(synchronize=False)
        raise
    shutdown()
