"""Where the pipeline's tasks run: a local Ray (started once per process) or a cluster at
RAY_ADDRESS / --ray-address; and the map that the driver hands to planning and manifest
building, so that their independent tasks use the cluster's cores."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Callable

from ..config import ConfigError


@dataclass
class RaySpec:
    address: str | None = None  # None: RAY_ADDRESS if set, else a local Ray started here
    num_cpus: int | None = None  # for the local Ray only
    object_store_memory: int | None = None  # bytes, local Ray only
    tokenizer_actors: int | None = None  # actor pool size; default: one per GPU, none on CPU-only clusters
    # the measure step (Whisper, DNSMOS) in an actor pool of its own; default: one per GPU when
    # `measure:` is set and the cluster has GPUs, none on CPU-only clusters (it runs in the shard task)
    measure_actors: int | None = None
    # GPUs per actor of each staged step on GPU clusters: {tokenize: 1, measure: 0.5}; fractions
    # share a card (defaults: 1 for tokenize alone; 0.5 each when both pools run)
    num_gpus: dict[str, float] = field(default_factory=dict)

    def validate(self) -> None:
        for stage, n in self.num_gpus.items():
            if stage not in GPU_STAGES:
                raise ConfigError("ray.num_gpus", f"unknown stage {stage!r}; stages with models: {', '.join(GPU_STAGES)}")
            if not isinstance(n, (int, float)) or not 0 <= n <= 64:
                raise ConfigError(f"ray.num_gpus.{stage}", f"GPUs per actor in [0, 64] (fractions share a card), got {n!r}")
        for name in ("tokenizer_actors", "measure_actors"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ConfigError(f"ray.{name}", f"an actor count >= 1, got {v}")


GPU_STAGES = ("tokenize", "measure")


MapFn = Callable[[Callable, list[tuple]], list]


def init_ray(spec: RaySpec) -> None:
    """Join RAY_ADDRESS / --ray-address, or start a local Ray once per process."""
    import ray

    if ray.is_initialized():
        return
    address = spec.address or os.environ.get("RAY_ADDRESS")
    kw = dict(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    if address:
        ray.init(address=address, **kw)
    else:
        # Ray 2.60 turns token authentication on for a new local cluster (good) and warns about it
        # at every start (noise for a local run); its own warnings about tokens still show for clusters
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
        ray.init(num_cpus=spec.num_cpus, object_store_memory=spec.object_store_memory, **kw)


def data_context():
    """Ray Data's context for our runs: its progress bars off (the pipeline draws its own) and
    quiet about that, since it is on purpose."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    return ctx


def serial_map(fn: Callable, arglist: list[tuple]) -> list:
    """Run tasks here, one after another (small inputs, tests)."""
    return [fn(*args) for args in arglist]


def cluster_map(spec: RaySpec, min_tasks: int = 2) -> MapFn:
    """A map that runs `fn(*args)` for each args as Ray tasks (one CPU each, results in order)
    once there are `min_tasks` of them, starting Ray then; fewer run here (no Ray start for a
    small corpus). Tasks must be idempotent: Ray retries a task whose worker died."""
    remote: dict[Callable, object] = {}

    def map_fn(fn: Callable, arglist: list[tuple]) -> list:
        if len(arglist) < min_tasks:
            return serial_map(fn, arglist)
        init_ray(spec)
        import ray

        if fn not in remote:
            remote[fn] = ray.remote(num_cpus=1, max_retries=3)(fn)
        return ray.get([remote[fn].remote(*args) for args in arglist])

    return map_fn
