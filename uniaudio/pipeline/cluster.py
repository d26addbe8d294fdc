"""Where the pipeline's tasks run: a local Ray (started once per process) or a cluster at
RAY_ADDRESS / --ray-address; and the map that the driver hands to planning and manifest
building, so that their independent tasks use the cluster's cores."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Callable


@dataclass
class RaySpec:
    address: str | None = None  # None: RAY_ADDRESS if set, else a local Ray started here
    num_cpus: int | None = None  # for the local Ray only
    object_store_memory: int | None = None  # bytes, local Ray only
    tokenizer_actors: int | None = None  # actor pool size; default: one per GPU, none on CPU-only clusters


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
