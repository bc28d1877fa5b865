"""Ray Data under kbert's teacher passes (`kbert predict --engine ray`,
`kbert materials --engine ray`): one place that starts or joins Ray, hands
work items to a pool of actors (each a callable class that loads its model
once) and turns a failed Ray job back into a kbert error.

Ray is an optional extra (`pip install "kbert[ray]"`); nothing here imports
it until a job asks for it.
"""

import contextlib
import logging
import os

from kbert.errors import ConfigError, KbertError

logger = logging.getLogger(__name__)


def ray_module():
    """`ray` with Ray Data, or a ConfigError saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ConfigError('--engine ray needs Ray Data: pip install "kbert[ray]"') from None
    return ray


@contextlib.contextmanager
def ray_session(address, backend, verbose):
    """Ray for the block: the running instance if there is one, else the
    cluster at `address`, else a Ray instance on this machine started for
    the block (and shut down after it).  Yields the `ray` module.

    Workers started here build their models on `backend` (set as
    KERAS_BACKEND in their environment), so that every item of a job is
    computed as the caller's would be."""
    ray = ray_module()
    started_here = not ray.is_initialized()
    if started_here:
        try:
            # "local": a new instance here, whatever RAY_ADDRESS or a running
            # `ray start` says; a cluster is joined only when named.
            ray.init(address=address or "local", num_cpus=None if address else os.cpu_count(),
                     include_dashboard=False, log_to_driver=verbose, configure_logging=True,
                     logging_level=logging.INFO if logger.isEnabledFor(logging.INFO) else logging.ERROR,
                     runtime_env={"env_vars": {"KERAS_BACKEND": backend}})
        except (ValueError, ConnectionError, RuntimeError, OSError) as e:
            where = f"--ray-address {address}" if address else "a Ray instance on this machine"
            raise ConfigError(f"{where}: Ray did not start: {e}") from None
    try:
        yield ray
    finally:
        if started_here:
            ray.shutdown()


class Actor:
    """The base of kbert's Ray Data actors: `start(*args)` loads what the
    actor holds, `answer(batch)` answers a batch.  A kbert error raised
    while starting is kept and raised by the first batch: Ray reports a
    constructor's exception only as the text of an `ActorDiedError`, while
    a task's comes back whole (and `kbert_error` finds it)."""

    def __init__(self, *args):
        self.error = None
        try:
            self.start(*args)
        except KbertError as e:
            self.error = e

    def __call__(self, batch):
        if self.error is not None:
            raise self.error
        return self.answer(batch)


def actor_count(ray, workers, items):
    """`workers`, or one actor per CPU the cluster offers, at most one per item."""
    return workers or max(1, min(items, int(ray.available_resources().get("CPU", 1))))


def map_actors(ray, items, worker, args, workers):
    """Yield `worker`'s output rows for `items` (a list of row dicts), as
    they finish, in any order: a Ray Data job with one item a task, handed
    to a pool of `workers` actors of the `Actor` class `worker` (built
    with `args`), each taking one item at a time.  A failed job raises the
    kbert error it carries (`kbert_error`)."""
    from ray.data.exceptions import ExecutionTimeoutError

    if not items:
        return
    context = ray.data.DataContext.get_current()
    settings = {
        "enable_progress_bars": False,
        # A worker's own exception, not Ray Data's `UserCodeException`, whose
        # cause is lost on the way back to the caller.
        "raise_original_map_exception": True,
        # No deadline: one item of a large teacher on one CPU may take long.
        "execution_no_progress_timeout_s": -1,
    }
    before = {name: getattr(context, name) for name in settings if hasattr(context, name)}
    for name in before:
        setattr(context, name, settings[name])
    try:
        dataset = ray.data.from_items(items, override_num_blocks=len(items))
        dataset = dataset.map_batches(
            worker, fn_constructor_args=args, batch_size=1,
            # One item at a time per actor: else the first actor up takes several, the others idle.
            compute=ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=1), num_cpus=1)
        yield from dataset.iter_rows()
    except (ray.exceptions.RayError, ExecutionTimeoutError) as e:
        raise kbert_error(e) from None
    finally:
        for name, value in before.items():
            setattr(context, name, value)


def kbert_error(error):
    """A Ray task's failure as the kbert error it carries (a worker's
    DataError stays a DataError), else as a ConfigError naming it."""
    seen, cause = set(), error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, KbertError):
            if type(cause).__module__.startswith("kbert."):
                return cause
            # Ray's wrapper class derives from the cause's class and holds the cause itself.
            inner = getattr(cause, "cause", None)
            if isinstance(inner, KbertError):
                return inner
            plain = next(kind for kind in type(cause).__mro__ if kind.__module__.startswith("kbert."))
            return plain(str(cause))
        cause = getattr(cause, "cause", None) or cause.__cause__
    return ConfigError(f"--engine ray: the job failed: {type(error).__name__}: {error}")


def check_backend(expected):
    """In a worker: a ConfigError unless Keras runs on the caller's backend."""
    import keras

    if keras.backend.backend() != expected:
        raise ConfigError(f"a Ray worker runs Keras on {keras.backend.backend()}, the call on {expected}: "
                          "set KERAS_BACKEND alike on the cluster")
