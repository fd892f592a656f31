"""The training engine shared by the deep-clustering recipes.

A recipe (``experiments/recipes/*.py``) describes *what* to optimise as a list of :class:`Phase`
objects (e.g. DEC: autoencoder pretraining, then clustering with periodic target updates); this
module does the rest the same way for every recipe:

- data: the dataset lives on the devices once; each step gathers a batch by index. Batch indices
  come from a per-epoch permutation seeded by ``(seed, epoch)``, so the data order is a pure
  function of the step and a resumed run sees exactly the batches it would have seen;
- the step: one ``jax.jit`` with the state donated, the batch indices sharded over the mesh's
  ``data`` axis and the state replicated (data parallelism; XLA inserts the gradient reductions).
  Consecutive steps run as one compiled loop per call (up to ``log_every`` steps, cut at every
  refresh, evaluation, checkpoint and phase boundary), which removes the per-step dispatch and
  host round trip. The loop's trip count is an argument, so each phase compiles one program
  whatever the chunk lengths; the cut points depend only on the global step, so a resumed run
  replays the same calls;
- checkpoints: orbax, every ``checkpoint_every`` steps and at phase ends, holding the whole state
  (parameters, optimiser state, recipe state, step); restoring one and continuing gives
  bit-identical parameters on CPU (``tests/experiments/test_resume.py``);
- logging: a progress line with the live loss, speed and ETA, and a JSONL log
  (``metrics.jsonl``) of training losses and evaluation metrics.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import pathlib
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

PyTree = Any


class TrainState(NamedTuple):
    """Everything a run needs to continue: checkpointed as one pytree.

    Attributes:
      step: global step (over all phases), int32 scalar.
      params: model parameters (one tree for the whole recipe, e.g. autoencoder and centroids).
      batch_stats: BatchNorm statistics (an empty dict for models without BatchNorm).
      opt_state: the current phase's optimiser state.
      extra: recipe state that is not trained by gradients (e.g. DEC's target distribution).
      key: raw PRNG key data (uint32); the key of step ``s`` is ``fold_in(key, s)``.
    """

    step: jax.Array
    params: PyTree
    batch_stats: PyTree
    opt_state: PyTree
    extra: PyTree
    key: jax.Array


@dataclasses.dataclass(frozen=True)
class Phase:
    """One stage of a recipe.

    Attributes:
      name: shown in logs.
      num_steps: optimisation steps in this phase.
      optimizer: the optax transformation used in this phase (its state is reset at the start).
      loss_fn: ``(params, batch_stats, extra, batch, key) -> (loss, (metrics, batch_stats))``
        where ``batch`` is a dict with ``x`` (inputs), ``index`` (dataset rows), ``step``
        (the global step, traced, e.g. for schedules) and ``dataset`` (all inputs, for losses
        that look up other rows, e.g. SCAN's neighbours; closing over the dataset instead would
        make it a constant of the compiled program) and
        ``metrics`` a dict of scalars to log. Must be jit-able.
      start_fn: ``(state, data) -> state``, run once on the host when the phase begins (e.g.
        k-means on the pretrained embedding to initialise centroids). Not re-run on resume.
      refresh_every: run ``refresh_fn`` every this many steps of the phase (0: never), starting
        at the phase's first step.
      refresh_fn: ``(state, data) -> extra``, e.g. recomputing DEC's targets on the whole dataset.
      post_update_fn: ``params -> params`` applied after each update inside the step (e.g. SwAV's
        prototype renormalisation).
      trainable: ``name -> bool`` on the top-level groups of ``params`` (a dict): only the groups
        it accepts are differentiated and optimised in this phase (e.g. DEC's clustering phase
        drops the decoder); None trains every group.
    """

    name: str
    num_steps: int
    optimizer: optax.GradientTransformation
    loss_fn: Callable
    start_fn: Callable | None = None
    refresh_every: int = 0
    refresh_fn: Callable | None = None
    post_update_fn: Callable | None = None
    trainable: Callable[[str], bool] | None = None

    def split(self, params: PyTree) -> tuple[PyTree, PyTree]:
        """``(trained, fixed)`` groups of ``params`` in this phase."""
        if self.trainable is None:
            return params, {}
        trained = {name: v for name, v in params.items() if self.trainable(name)}
        return trained, {name: v for name, v in params.items() if name not in trained}


@dataclasses.dataclass
class Data:
    """The dataset as the engine sees it: device-resident inputs and, optionally, labels."""

    x: jax.Array  # [n, ...] replicated over the mesh
    y: np.ndarray | None
    name: str
    mesh: jax.sharding.Mesh

    @property
    def n(self) -> int:
        return int(self.x.shape[0])


def batch_indices(n: int, batch_size: int, seed: int, step: int) -> np.ndarray:
    """Rows of the batch at ``step``: epoch ``e = step // steps_per_epoch`` is a permutation of
    ``range(n)`` seeded by ``(seed, e)`` and cut into ``n // batch_size`` batches (the remainder
    of each epoch is dropped, as the peers' data loaders with ``drop_last`` do)."""
    per_epoch = n // batch_size
    epoch, b = divmod(step, per_epoch)
    return _epoch_permutation(n, seed, epoch)[b * batch_size:(b + 1) * batch_size]


@functools.lru_cache(maxsize=2)
def _epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The data order of one epoch, computed once per epoch rather than once per step."""
    perm = np.random.default_rng([seed, epoch]).permutation(n).astype(np.int32)
    perm.setflags(write=False)
    return perm


class _Progress:
    """One status line: phase, step, live loss, steps per second and ETA."""

    def __init__(self, total: int, start: int, stream=sys.stderr):
        self.total, self.start, self.stream = total, start, stream
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.tty = stream.isatty()

    def update(self, step: int, phase: str, loss: float, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last < (0.5 if self.tty else 15.0):
            return
        self.last = now
        done = step - self.start
        rate = done / max(now - self.t0, 1e-9)
        eta = (self.total - step) / rate if rate > 0 else float("nan")
        width = 24
        filled = int(width * step / max(self.total, 1))
        bar = "#" * filled + "." * (width - filled)
        eta_s = time.strftime("%M:%S", time.gmtime(eta)) if math.isfinite(eta) else "--:--"
        line = (f"[{bar}] {step}/{self.total} {phase:<10} loss {loss:.4f}  "
                f"{rate:.1f} it/s  ETA {eta_s}")
        if self.tty:
            self.stream.write("\r" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _checkpoint_manager(directory: pathlib.Path):
    import orbax.checkpoint as ocp

    return ocp.CheckpointManager(
        directory.absolute(),
        options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True),
    )


def _phase_file(manager) -> pathlib.Path:
    return pathlib.Path(manager.directory) / "phases.json"


def _save(manager, state: TrainState, phase: int) -> None:
    """Saves ``state``; the phase it belongs to (which fixes the optimiser-state structure) goes
    to a small ``phases.json`` next to the checkpoints."""
    import orbax.checkpoint as ocp

    step = int(state.step)
    manager.save(step, args=ocp.args.StandardSave(state._asdict()), force=True)
    manager.wait_until_finished()
    if jax.process_index() == 0:
        path = _phase_file(manager)
        phases = json.loads(path.read_text()) if path.exists() else {}
        phases[str(step)] = phase
        path.write_text(json.dumps(phases))


def _latest(manager) -> tuple[int, int] | None:
    """``(step, phase)`` of the newest checkpoint, or None."""
    step = manager.latest_step()
    if step is None:
        return None
    phases = json.loads(_phase_file(manager).read_text())
    return step, int(phases[str(step)])


def _restore(manager, step: int, template: TrainState) -> TrainState:
    import orbax.checkpoint as ocp

    abstract = jax.tree.map(_abstract, template._asdict())
    return TrainState(**manager.restore(step, args=ocp.args.StandardRestore(abstract)))


def _abstract(x):
    if isinstance(x, jax.Array):
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
    return x


class Trainer:
    """Runs the phases of a recipe with checkpoints, logging and exact resume.

    Args:
      phases: the recipe's phases, in order.
      data: the dataset (see :class:`Data`).
      batch_size: global batch size; must divide by the number of devices on the data axis.
      seed: seeds the data order (and, through ``TrainState.key``, the recipe's randomness).
      workdir: where ``checkpoints/`` and ``metrics.jsonl`` go.
      checkpoint_every: steps between checkpoints (0: only at phase ends and at the end).
      log_every: steps between JSONL training-loss records.
      eval_fn: ``(state) -> dict`` of metrics, called every ``eval_every`` steps and at the end.
      eval_every: steps between evaluations (0: only at phase ends).
      stop_after: stop (as if killed) once this global step is reached; for resume tests.
    """

    def __init__(self, phases: Sequence[Phase], data: Data, *, batch_size: int, seed: int,
                 workdir: str | pathlib.Path, checkpoint_every: int = 0, log_every: int = 50,
                 eval_fn: Callable | None = None, eval_every: int = 0,
                 stop_after: int | None = None, quiet: bool = False):
        self.phases = [p for p in phases if p.num_steps > 0]  # a 0-step phase does nothing
        if not self.phases:
            raise ValueError("every phase has num_steps=0; nothing to train.")
        self.data = data
        self.batch_size = batch_size
        self.seed = seed
        self.workdir = pathlib.Path(workdir)
        self.checkpoint_every = checkpoint_every
        self.log_every = max(1, log_every)
        self.eval_fn = eval_fn
        self.eval_every = eval_every
        self.stop_after = stop_after
        self.quiet = quiet
        self.bounds = np.cumsum([0] + [p.num_steps for p in self.phases])
        devices = data.mesh.shape.get("data", 1)
        if batch_size % devices:
            raise ValueError(
                f"batch_size={batch_size} must be divisible by the {devices} devices on the "
                "mesh's 'data' axis.")
        if batch_size > data.n:
            raise ValueError(f"batch_size={batch_size} exceeds the dataset size {data.n}.")
        self.replicated = NamedSharding(data.mesh, P())
        self.chunk_sharding = NamedSharding(data.mesh, P(None, "data"))
        self._steps: dict[int, Callable] = {}
        self.log_path = self.workdir / "metrics.jsonl"

    # ------------------------------------------------------------------------------------------
    def _steps_fn(self, p: int) -> Callable:
        """``(state, x, idx[L, batch], count) -> (state, metrics[L])``: the first ``count`` of
        ``L = log_every`` steps of phase ``p`` (metrics past ``count`` are zeros) on the dataset
        ``x``, an argument rather than a closed-over constant, which XLA would embed in (and
        hash, and compile into) the program: 16 MB for MNIST-5k."""
        if p in self._steps:
            return self._steps[p]
        phase = self.phases[p]

        def step(state: TrainState, x_all, idx):
            key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
            batch = {"x": x_all[idx], "index": idx, "step": state.step, "dataset": x_all}
            trained, fixed = phase.split(state.params)

            def loss(trained):
                params = {**trained, **fixed} if fixed else trained
                return phase.loss_fn(params, state.batch_stats, state.extra, batch, key)

            (value, (metrics, batch_stats)), grads = jax.value_and_grad(loss, has_aux=True)(
                trained)
            updates, opt_state = phase.optimizer.update(grads, state.opt_state, trained)
            trained = optax.apply_updates(trained, updates)
            params = {**trained, **fixed} if fixed else trained
            if phase.post_update_fn is not None:
                params = phase.post_update_fn(params)
            metrics = {"loss": value, **metrics}
            return state._replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                                  opt_state=opt_state), metrics

        def steps(state: TrainState, x_all, idx, count):
            # One compiled loop for every chunk length: ``idx`` is padded to ``log_every`` rows
            # and the loop runs the first ``count`` (a traced trip count, so the short chunks
            # at phase ends and checkpoints do not each compile their own program).
            _, shapes = jax.eval_shape(step, state, x_all, idx[0])
            buffers = jax.tree.map(lambda s: jnp.zeros(idx.shape[:1] + s.shape, s.dtype), shapes)

            def body(i, carry):
                state, buffers = carry
                state, metrics = step(state, x_all, idx[i])
                return state, jax.tree.map(lambda b, v: b.at[i].set(v), buffers, metrics)

            return jax.lax.fori_loop(0, count, body, (state, buffers))

        fn = jax.jit(steps, donate_argnums=0,
                     in_shardings=(self.replicated, self.replicated, self.chunk_sharding,
                                   self.replicated),
                     out_shardings=(self.replicated, self.replicated))
        self._steps[p] = fn
        return fn

    def _chunk_end(self, step: int, p: int) -> int:
        """The end of the call that starts at ``step``: the next log, refresh, evaluation,
        checkpoint, stop or phase boundary (a function of the global step only)."""
        phase, start, end = self.phases[p], int(self.bounds[p]), int(self.bounds[p + 1])
        stops = [end, (step // self.log_every + 1) * self.log_every]
        if phase.refresh_fn is not None and phase.refresh_every:
            stops.append(start + ((step - start) // phase.refresh_every + 1) * phase.refresh_every)
        for every in (self.eval_every if self.eval_fn is not None else 0, self.checkpoint_every):
            if every:
                stops.append((step // every + 1) * every)
        if self.stop_after is not None and self.stop_after > step:
            stops.append(self.stop_after)
        return min(stops)

    def _phase_of(self, step: int) -> int:
        return int(np.searchsorted(self.bounds[1:], step, side="right"))

    def _log(self, record: dict) -> None:
        if jax.process_index() != 0:  # one writer when several processes share the workdir
            return
        with self.log_path.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def _begin_phase(self, state: TrainState, p: int) -> TrainState:
        phase = self.phases[p]
        if phase.start_fn is not None:
            state = phase.start_fn(state, self.data)
        return state._replace(opt_state=self._opt_init(p, state.params))

    def _opt_init(self, p: int, params: PyTree) -> PyTree:
        phase = self.phases[p]
        init = lambda params: phase.optimizer.init(phase.split(params)[0])  # noqa: E731
        return jax.jit(init, out_shardings=self.replicated)(params)

    def run(self, state: TrainState, *, resume: bool = True) -> TrainState:
        """Runs (or resumes) every phase from ``state`` (the freshly initialised state)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not resume and (self.workdir / "checkpoints").exists():
            shutil.rmtree(self.workdir / "checkpoints")
        manager = _checkpoint_manager(self.workdir / "checkpoints")
        state = jax.device_put(state, self.replicated)
        total = int(self.bounds[-1])
        latest = _latest(manager) if resume else None
        if latest is not None:
            step, p = latest
            opt_template = self._opt_init(p, state.params)
            state = _restore(manager, step, state._replace(opt_state=opt_template))
            state = jax.device_put(state, self.replicated)
            if not self.quiet:
                print(f"resumed from step {step} ({self.phases[p].name})", file=sys.stderr)
            if self.stop_after is not None and step >= self.stop_after:
                manager.close()  # already where it was asked to stop
                return state
            if step >= self.bounds[p + 1] and p + 1 < len(self.phases):
                p += 1
                state = self._begin_phase(state, p)
        else:
            if self.log_path.exists() and jax.process_index() == 0:
                self.log_path.unlink()
            p, step = 0, 0
            state = self._begin_phase(state, 0)
        progress = None if self.quiet else _Progress(total, step)
        running: dict[str, list] = {}
        count = 0
        while step < total:
            phase = self.phases[p]
            in_phase = step - int(self.bounds[p])
            if phase.refresh_fn is not None and phase.refresh_every and \
                    in_phase % phase.refresh_every == 0:
                state = state._replace(extra=jax.device_put(
                    phase.refresh_fn(state, self.data), self.replicated))
            stop = self._chunk_end(step, p)
            idx = np.zeros((self.log_every, self.batch_size), np.int32)
            for row, s in enumerate(range(step, stop)):
                idx[row] = batch_indices(self.data.n, self.batch_size, self.seed, s)
            state, metrics = self._steps_fn(p)(
                state, self.data.x, jax.device_put(idx, self.chunk_sharding),
                jax.device_put(np.int32(stop - step), self.replicated))
            for name, value in metrics.items():  # summed on the host when the log line is due
                running.setdefault(name, []).append((value, stop - step))
            count += stop - step
            step = stop
            if step % self.log_every == 0 or step == self.bounds[p + 1]:
                record = {name: sum(float(np.asarray(v)[:c].sum()) for v, c in chunks) / count
                          for name, chunks in running.items()}
                if not all(math.isfinite(v) for v in record.values()):
                    raise FloatingPointError(f"non-finite training metrics at step {step}: {record}")
                self._log({"step": step, "phase": phase.name, **record})
                if progress is not None:
                    progress.update(step, phase.name, record["loss"], force=step == total)
                running, count = {}, 0
            end_of_phase = step == self.bounds[p + 1]
            if self.eval_fn is not None and ((self.eval_every and step % self.eval_every == 0)
                                             or end_of_phase):
                self._log({"step": step, "phase": phase.name, "eval": self.eval_fn(state)})
            if (self.checkpoint_every and step % self.checkpoint_every == 0) or end_of_phase:
                _save(manager, state, p)
            if self.stop_after is not None and step >= self.stop_after and step < total:
                if progress is not None:
                    progress.close()
                manager.close()
                return state
            if end_of_phase and p + 1 < len(self.phases):
                p += 1
                state = self._begin_phase(state, p)
        if progress is not None:
            progress.close()
        manager.close()
        return state


def read_log(path: str | pathlib.Path) -> list[dict]:
    """The records of a ``metrics.jsonl`` file."""
    return [json.loads(line) for line in pathlib.Path(path).read_text().splitlines() if line]


def new_state(params, batch_stats, extra, seed: int) -> TrainState:
    """A fresh :class:`TrainState` at step 0 (``opt_state`` is filled in by the first phase)."""
    return TrainState(
        step=jnp.int32(0), params=params, batch_stats=batch_stats, opt_state=(), extra=extra,
        key=jax.random.key_data(jax.random.key(seed)),
    )
