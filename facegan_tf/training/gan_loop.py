"""The epoch loop shared by the DCGAN and conditional-GAN trainers.

A subclass builds its models and optimisers and defines one training step; this class
provides what every noise-to-image GAN run needs, following sualab's ``Optimizer.train``:

* initial weights drawn after ``keras.utils.set_random_seed(seed)``;
* an epoch loop over full global batches, resumable mid-epoch (step, epoch, batch position,
  best FID and every optimiser slot are in the checkpoint; all randomness is a function of
  (seed, purpose, step) or (seed, epoch));
* at the end of each epoch: a fixed-z sample grid, the image metrics (FID/KID) every
  ``eval_every_epochs`` epochs, a checkpoint, the best-by-FID checkpoint (kept when
  FID < best * (1 - score_threshold), sualab's rule), ``history.json`` and a learning-curve PNG.

Distribution (``strategy``): the data set yields global batches of ``batch_size x replicas``
images which `tf.distribute` splits into consecutive per-replica slices; losses are summed per
replica and divided by the global batch (``tf.nn.compute_average_loss``), and the optimisers
sum the replicas' gradients, so a step equals one single-device step on the global batch
(exactly so when batch norm is synchronised, ``sync_batch_norm``; otherwise each replica
normalises with its own batch statistics). Per-step noise (z, fake labels, gradient-penalty
alpha) is drawn for the whole global batch from the stateless seed (seed, purpose, step) and
replica r takes rows [r B, (r + 1) B): replicas get different draws, their union is the
single-device draw, and a resumed run draws the same stream. Samples, logs and checkpoints
are written by the chief only; a checkpoint restores under any replica count.

Precision and compilation: ``mixed_precision`` builds the models under ``mixed_float16`` and
wraps every optimiser in a dynamic loss-scale optimiser (facegan_tf.training.precision);
model outputs are cast to float32 before the losses. The checkpoint keeps the inner
optimiser under the usual key, so a run resumes in either precision (the loss scale restarts
at its initial value). ``xla`` jit-compiles each per-replica forward/backward pass; the
optimiser updates stay outside the compiled function.

Stopping: every step's losses are checked (`guards.check_finite`); a NaN or infinite value
stops the run before anything of that step is written, so the newest checkpoint is the last
good state. Ctrl-C (SIGINT) stops at the end of the current step, saves a checkpoint of that
step (unless the newest one already is that step) and raises `guards.TrainingInterrupted`;
a second Ctrl-C stops at once and saves the state as it is then. A resumed run takes the
learning rate from the config, so a run stopped by a non-finite loss can resume with a lower
``init_learning_rate``.

Output layout under ``save_dir``: ``ckpt-<step>.*`` + ``checkpoint`` + ``facegan_run.json``
(resumable state), ``best/`` (best-by-FID state), ``samples/`` (grids, ``index.html``),
``logs/`` (TensorBoard + ``stats.jsonl``), ``history.json``, ``learning_curve.png``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from facegan_tf.data.faces import FaceSet, epoch_dataset, steps_per_epoch
from facegan_tf.data.images import to_uint8
from facegan_tf.fileio import read_json, write_json_atomic
from facegan_tf.training import guards
from facegan_tf.training.checkpointing import TrainingCheckpoint, read_run_info
from facegan_tf.training.curves import save_learning_curve
from facegan_tf.training.optimizers import adam_moments, adam_slots
from facegan_tf.training.precision import dtype_policy, inner_optimizer, loss_scaled
from facegan_tf.training.progress import ProgressBar
from facegan_tf.training.samples import make_grid, newest_first, save_grid, write_gallery
from facegan_tf.training.stats import StatsWriter
from facegan_tf.training.strategy import is_chief, make_strategy

logger = logging.getLogger(__name__)

#: A metric on generated uint8 images [N, H, W, 3] -> {"fid": ..., "kid": ..., ...}.
ImageMetric = Callable[[np.ndarray], dict]

# Purposes folded into stateless seeds, so different draws of one step never coincide.
SEED_Z, SEED_LABELS, SEED_ALPHA, SEED_FIXED_Z, SEED_EVAL_Z = 1, 2, 3, 4, 5


def step_seed(seed: int, purpose: int, step, replica=None) -> tf.Tensor:
    """A stateless seed [2] from (seed, purpose, step[, replica id]).

    The training steps draw with (seed, purpose, step) for the global batch and slice it per
    replica (`GANLoopTrainer.replica_rows`).
    """
    base = tf.constant([int(seed), int(purpose)], tf.int64)
    key = tf.random.experimental.stateless_fold_in(base, tf.cast(step, tf.int64))
    if replica is not None:
        key = tf.random.experimental.stateless_fold_in(key, tf.cast(replica, tf.int64))
    return key


def replica_id() -> tf.Tensor:
    return tf.distribute.get_replica_context().replica_id_in_sync_group


def synchronize_batch_norm(model: keras.Model) -> int:
    """Makes every `BatchNormalization` of ``model`` compute its batch statistics over all
    replicas (Keras' ``synchronized=True``); returns how many layers were changed."""
    count = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True
            count += 1
    return count


def sample_z(shape, distribution: str, seed) -> tf.Tensor:
    """z ~ U(-1, 1) (sualab) or N(0, 1) (mask project), stateless."""
    if distribution == "uniform":
        return tf.random.stateless_uniform(shape, seed, minval=-1.0, maxval=1.0)
    if distribution == "normal":
        return tf.random.stateless_normal(shape, seed)
    raise ValueError(
        f"Unknown z distribution. Expected 'uniform' or 'normal'. Received: {distribution!r}"
    )


def fixed_z(count: int, z_dim: int, distribution: str, seed: int, purpose: int) -> np.ndarray:
    """A fixed set of latent vectors (the same every epoch and after a resume)."""
    return sample_z((count, z_dim), distribution, step_seed(seed, purpose, 0)).numpy()


def check_new_run(save_dir: str, resume: bool) -> None:
    """Refuses to start a fresh run in a folder that already holds one.

    Raises:
        ValueError: ``save_dir`` holds a run and ``resume`` is False.
    """
    if not resume and read_run_info(save_dir) is not None:
        raise ValueError(
            f"--save_dir {save_dir!r} already holds a run. Pass --resume to continue it, "
            "or choose another --save_dir (nothing was overwritten)."
        )


class GANLoopTrainer:
    """Base trainer; see the module docstring.

    Subclasses set ``KIND`` and ``ARCHITECTURE_FIELDS`` and implement `build`,
    `train_step`, `generate` and `write_epoch_samples`. The config needs the fields
    ``save_dir``, ``batch_size``, ``num_epochs``, ``seed``, ``strategy``, ``max_steps``,
    ``log_every_steps``, ``eval_every_epochs``, ``eval_sample_size``, ``batch_size_eval``,
    ``score_threshold``, ``max_to_keep`` and ``to_dict()``.
    """

    KIND = ""
    ARCHITECTURE_FIELDS: tuple[str, ...] = ()

    def __init__(self, config, strategy: tf.distribute.Strategy | None = None):
        self.config = config
        self.strategy = strategy or make_strategy(config.strategy)
        self.replicas = self.strategy.num_replicas_in_sync
        self.global_batch = config.batch_size * self.replicas
        self.chief = is_chief(self.strategy)
        self.mixed_precision = bool(getattr(config, "mixed_precision", False))
        self.xla = bool(getattr(config, "xla", False))
        sync_batch_norm = bool(getattr(config, "sync_batch_norm", False))
        if sync_batch_norm and self.xla and self.replicas > 1:
            raise ValueError(
                "--sync_batch_norm cannot be combined with --xla on more than one replica "
                "(the cross-replica batch statistics cannot run inside an XLA-compiled "
                f"function). Received: sync_batch_norm=True, xla=True, replicas={self.replicas}"
            )
        keras.utils.set_random_seed(int(config.seed))
        with self.strategy.scope():
            with dtype_policy(self.mixed_precision):
                self.models, optimizers = self.build()
            if sync_batch_norm:
                for model in self.models.values():
                    synchronize_batch_norm(model)
            self.optimizers = {
                name: loss_scaled(optimizer, self.mixed_precision)
                for name, optimizer in optimizers.items()
            }
            for name, optimizer in self.optimizers.items():
                optimizer.build(self.trainable_variables(name))
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
            self.batch_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="batch")
            self.best_fid = tf.Variable(math.inf, dtype=tf.float64, trainable=False, name="best")
            extras = self.checkpoint_extras()
        objects = dict(
            **extras,
            step=self.step,
            epoch=self.epoch,
            batch_in_epoch=self.batch_in_epoch,
            best_fid=self.best_fid,
            **self.models,
            # The inner optimiser (Adam's slots and iteration count) under the same key in
            # either precision; the dynamic loss scale is not saved.
            **{f"{name}_optimizer": inner_optimizer(opt) for name, opt in self.optimizers.items()},
        )
        self.checkpoint = TrainingCheckpoint(
            config.save_dir,
            self.KIND,
            config.to_dict(),
            max_to_keep=config.max_to_keep,
            enabled=self.chief,
            **objects,
        )
        self.best_checkpoint = TrainingCheckpoint(
            os.path.join(config.save_dir, "best"),
            self.KIND,
            config.to_dict(),
            max_to_keep=1,
            enabled=self.chief,
            **objects,
        )
        self.history = {"steps": [], "epochs": []}
        self._stats: StatsWriter | None = None

    # ------------------------------------------------------------------ subclass API
    def build(self) -> tuple[dict, dict]:
        """Returns ({name: model}, {name: optimizer}); called inside the strategy scope."""
        raise NotImplementedError

    def checkpoint_extras(self) -> dict:
        """Further state to checkpoint ({name: trackable}); created inside the strategy
        scope."""
        return {}

    def trainable_variables(self, optimizer_name: str) -> list:
        """Variables updated by optimizer ``optimizer_name`` (``generator``/``discriminator``)."""
        return self.models[optimizer_name].trainable_variables

    def train_step(self, distributed_batch) -> dict:
        raise NotImplementedError

    def generate(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def write_epoch_samples(self, epoch: int, step: int) -> list[str]:
        raise NotImplementedError

    def evaluation_sets(self) -> dict[str, np.ndarray | None]:
        """Metric key -> labels to generate for (None for an unconditional generator)."""
        return {"": None}

    # ---------------------------------------------------------------- shared helpers
    def average(self, per_example):
        return tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch)

    def gradients(self, name: str, tape: tf.GradientTape, loss) -> list:
        """d loss / d variables of optimiser ``name``; under mixed precision the loss is
        multiplied by the loss scale first (the optimiser divides it out again)."""
        with tape:  # the scaling is part of the recorded computation
            scaled = self.optimizers[name].scale_loss(loss)
        return tape.gradient(scaled, self.trainable_variables(name))

    def apply_gradients(self, name: str, gradients) -> None:
        self.optimizers[name].apply_gradients(zip(gradients, self.trainable_variables(name)))

    def compiled(self, function):
        """``function`` jit-compiled with XLA under ``xla``, else unchanged (it then runs in
        the step's own graph, where synchronised batch norm can reach the other replicas)."""
        if not self.xla:
            return function
        return tf.function(function, autograph=False, jit_compile=True)

    def replica_rows(self, draw: Callable[[int], tf.Tensor]) -> tf.Tensor:
        """This replica's rows [r B, (r + 1) B) of ``draw(global batch)`` (a draw, or a given
        global-batch tensor returned by ``draw``)."""
        rows = self.config.batch_size
        start = tf.cast(replica_id(), tf.int32) * rows
        return draw(self.global_batch)[start : start + rows]

    def replica_z(self, step) -> tf.Tensor:
        """z [B, z_dim] of this replica at ``step``: a slice of the global batch's draw."""
        config = self.config
        seed = step_seed(config.seed, SEED_Z, step)
        return self.replica_rows(
            lambda count: sample_z((count, config.z_dim), config.z_distribution, seed)
        )

    def distribute_batch(self, batch):
        """A batch for `train_step`: a dict of global-batch arrays/tensors is checked and split
        over the replicas (rows [r B, (r + 1) B) to replica r); a batch that
        ``strategy.experimental_distribute_dataset`` made passes unchanged."""
        if not isinstance(batch, dict) or any(
            isinstance(v, tf.distribute.DistributedValues) for v in batch.values()
        ):
            return batch
        values = {k: tf.convert_to_tensor(v) for k, v in batch.items()}
        if "image" in values:
            values["image"] = tf.cast(values["image"], tf.float32)
        for name, value in values.items():
            if value.shape.rank and value.shape[0] != self.global_batch:
                raise ValueError(
                    f"train_step expects a global batch of {self.global_batch} rows "
                    f"({self.config.batch_size} x {self.replicas} replica(s)). "
                    f"Received: {name}.shape={tuple(value.shape)}"
                )
        if self.replicas == 1:
            return values
        dataset = tf.data.Dataset.from_tensors(values)
        return next(iter(self.strategy.experimental_distribute_dataset(dataset)))

    def global_input(self, value, name: str, shape: tuple, dtype) -> tf.Tensor | None:
        """A given per-step input of the global batch (z, labels, alpha) as a tensor of
        ``shape``, or None; replica r uses rows [r B, (r + 1) B) (`replica_rows`)."""
        if value is None:
            return None
        tensor = tf.cast(tf.convert_to_tensor(value), dtype)
        if tuple(tensor.shape) != tuple(shape):
            raise ValueError(
                f"train_step expects {name} of shape {list(shape)} (the global batch). "
                f"Received: {name}.shape={list(tensor.shape)}"
            )
        return tensor

    def global_latents(self, z) -> tf.Tensor | None:
        return self.global_input(z, "z", (self.global_batch, self.config.z_dim), tf.float32)

    @property
    def learning_rate(self) -> float:
        """The Adam learning rate in force (the same for every optimiser)."""
        rates = {
            name: float(np.asarray(inner_optimizer(opt).learning_rate))
            for name, opt in self.optimizers.items()
        }
        values = set(rates.values())
        if len(values) != 1:
            raise ValueError(f"The optimisers have different learning rates: {rates}")
        return values.pop()

    def optimizer_moments(self, optimizer_name: str, path: str) -> dict:
        """Adam's moments of the variable ``path`` (e.g. ``"generator/g_bn_0/gamma"``) held
        by optimiser ``optimizer_name``: ``{"m": first moment, "v": second moment}`` as
        numpy arrays.

        Raises:
            ValueError: no optimiser of that name, or it updates no variable with that path.
        """
        return adam_moments(
            self.optimizers,
            {name: self.trainable_variables(name) for name in self.optimizers},
            optimizer_name,
            path,
        )


    def set_adam_state(self, optimizer_name: str, iterations: int, moments: dict) -> None:
        """Sets optimiser ``optimizer_name``'s update count and, for every variable path in
        ``moments`` (``{path: (m, v)}``), its Adam moments (continuing a legacy run).

        Raises:
            ValueError: a path is unknown or a moment has another shape.
        """
        variables = {v.path: v for v in self.trainable_variables(optimizer_name)}
        unknown = sorted(set(moments) - set(variables))
        missing = sorted(set(variables) - set(moments))
        if unknown or missing:
            raise ValueError(
                f"Adam state for {optimizer_name!r} does not fit the model: unknown paths "
                f"{unknown[:4]}, missing paths {missing[:4]}."
            )
        for path, (m, v) in moments.items():
            first, second = adam_slots(self.optimizers[optimizer_name], path)
            for slot, value in ((first, m), (second, v)):
                if tuple(np.shape(value)) != tuple(slot.shape):
                    raise ValueError(
                        f"Adam moment of {path!r} has shape {list(np.shape(value))}, expected "
                        f"{list(slot.shape)}."
                    )
                slot.assign(np.asarray(value, np.float32))
        inner_optimizer(self.optimizers[optimizer_name]).iterations.assign(int(iterations))

    def reduce(self, per_replica: dict) -> dict:
        return {
            name: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
            for name, value in per_replica.items()
        }

    def generate_uint8(self, count: int, labels_value: int | None, seed_purpose: int) -> np.ndarray:
        """``count`` images from the fixed evaluation z (inference mode) as uint8."""
        config = self.config
        z_all = fixed_z(count, config.z_dim, config.z_distribution, config.seed, seed_purpose)
        output = []
        for start in range(0, count, config.batch_size_eval):
            z = z_all[start : start + config.batch_size_eval]
            labels = None if labels_value is None else np.full(len(z), labels_value, np.int32)
            output.append(to_uint8(self.generate(z, labels)))
        return np.concatenate(output)

    # ---------------------------------------------------------------------- resuming
    def restore(self, path: str | None = None) -> str:
        """Restores the latest checkpoint of ``save_dir`` after checking the architecture."""
        info = read_run_info(self.config.save_dir)
        if info is not None and info.get("kind") == self.KIND:
            saved = info.get("config", {})
            wanted = self.config.to_dict()
            differing = {
                k: (saved.get(k), wanted[k])
                for k in self.ARCHITECTURE_FIELDS
                if saved.get(k) != wanted[k]
            }
            if differing:
                details = ", ".join(
                    f"{k}: checkpoint {a!r} vs flags {b!r}" for k, (a, b) in differing.items()
                )
                raise ValueError(
                    f"--resume: the checkpoint in {self.config.save_dir!r} was made with "
                    f"another architecture ({details}). Use the same flags or another "
                    "--save_dir."
                )
        restored = self.checkpoint.restore(path)
        rate = getattr(self.config, "init_learning_rate", None)
        if rate is not None:
            for optimizer in self.optimizers.values():
                optimizer.learning_rate = float(rate)
        history_path = os.path.join(self.config.save_dir, "history.json")
        if os.path.isfile(history_path):
            history = read_json(history_path)
            step = int(self.step.numpy())
            epoch = int(self.epoch.numpy())
            self.history = {
                "steps": [r for r in history.get("steps", []) if r["step"] <= step],
                "epochs": [r for r in history.get("epochs", []) if r["epoch"] < epoch],
            }
        return restored

    # ---------------------------------------------------------------------- the loop
    def fit(
        self,
        faces: FaceSet,
        metrics: dict[str, ImageMetric] | None = None,
        metrics_note: str = "",
        progress: bool = True,
    ) -> dict:
        """Trains until ``num_epochs`` or ``max_steps``; returns a summary.

        Args:
            faces: the training images (and labels).
            metrics: metric key (see `evaluation_sets`) -> callable on generated uint8
                images; None skips FID/KID, and ``metrics_note`` says why.
        """
        config = self.config
        per_epoch = steps_per_epoch(len(faces.images), self.global_batch)
        if per_epoch < 1:
            raise ValueError(
                f"The data set {faces.source!r} has {len(faces.images)} images, fewer than one "
                f"global batch ({config.batch_size} x {self.replicas} replica(s)); lower "
                "--batch_size."
            )
        total_steps = config.num_epochs * per_epoch
        if config.max_steps:
            total_steps = min(total_steps, config.max_steps)
        if metrics is None and metrics_note and self.chief:
            logger.warning("FID/KID skipped: %s", metrics_note)
        stats = StatsWriter(os.path.join(config.save_dir, "logs"), enabled=self.chief)
        self._stats = stats
        start_step = int(self.step.numpy())
        bar = ProgressBar(
            max(total_steps - start_step, 0),
            label=self.KIND,
            unit="step",
            enabled=progress and self.chief,
        )
        started = time.perf_counter()
        last: dict = {}
        try:
            with (
                guards.save_on_interrupt(self.save_interrupted, lambda: int(self.step.numpy())),
                guards.deferred_interrupt() as interrupt,
            ):
                last = self._epochs(faces, metrics, stats, bar, interrupt, per_epoch, total_steps)
                if not self.checkpoint.latest or int(self.step.numpy()) != _checkpoint_step(
                    self.checkpoint.latest
                ):
                    self.write_epoch_samples(int(self.epoch.numpy()), int(self.step.numpy()))
                    self.save()
                    if self.chief:  # the loss records of the steps since the last epoch end
                        write_json_atomic(
                            os.path.join(config.save_dir, "history.json"), self.history
                        )
        finally:
            bar.close()
            self._stats = None
            stats.close()
        return {
            "step": int(self.step.numpy()),
            "epoch": int(self.epoch.numpy()),
            "seconds": time.perf_counter() - started,
            "losses": last,
            "best_fid": float(self.best_fid.numpy()),
            "last_metrics": self.history["epochs"][-1] if self.history["epochs"] else {},
            "checkpoint": self.checkpoint.latest,
            "best_checkpoint": self.best_checkpoint.latest,
            "metrics_note": metrics_note if metrics is None else "",
        }

    def _epochs(self, faces, metrics, stats, bar, interrupt, per_epoch: int, total_steps: int):
        """The epoch loop of `fit`; returns the losses of the last logged step."""
        config = self.config
        last: dict = {}
        while int(self.epoch.numpy()) < config.num_epochs and int(self.step.numpy()) < total_steps:
            epoch = int(self.epoch.numpy())
            dataset = epoch_dataset(
                faces,
                self.global_batch,
                config.seed,
                epoch,
                skip_batches=int(self.batch_in_epoch.numpy()),
            )
            for batch in self.strategy.experimental_distribute_dataset(dataset):
                tick = time.perf_counter()
                values = {k: float(v) for k, v in self.train_step(batch).items()}
                step = int(self.step.numpy())
                guards.check_finite(step, values, self.checkpoint.latest)
                self.batch_in_epoch.assign_add(1)
                if step % config.log_every_steps == 0 or step == total_steps:
                    last = values
                    self.history["steps"].append({"step": step, **last})
                    stats.write(step, {f"Loss/{k}": v for k, v in last.items()})
                bar.update(
                    1,
                    epoch=epoch,
                    g=values["g_loss"],
                    d=values["d_loss"],
                    img_s=round(self.global_batch / max(time.perf_counter() - tick, 1e-9), 1),
                )
                interrupt.raise_if_requested()
                if step >= total_steps:
                    break
            if int(self.batch_in_epoch.numpy()) >= per_epoch:
                self.epoch.assign_add(1)
                self.batch_in_epoch.assign(0)
                self.end_of_epoch(epoch, metrics, stats, final=epoch + 1 == config.num_epochs)
                interrupt.raise_if_requested()
            elif int(self.step.numpy()) >= total_steps:
                break
        return last

    def save_interrupted(self) -> str | None:
        """The save of an interrupted run: a checkpoint of the current step (the newest one
        when it already holds this step) and ``history.json``."""
        step = int(self.step.numpy())
        latest = self.checkpoint.latest
        if latest and _checkpoint_step(latest) == step:
            return latest
        path = self.save()
        if self.chief:
            history = {
                "steps": [r for r in self.history["steps"] if r["step"] <= step],
                "epochs": self.history["epochs"],
            }
            write_json_atomic(os.path.join(self.config.save_dir, "history.json"), history)
        return path

    def end_of_epoch(self, epoch: int, metrics, stats: StatsWriter, final: bool) -> None:
        config = self.config
        step = int(self.step.numpy())
        self.write_epoch_samples(epoch, step)
        record = {"epoch": epoch + 1, "step": step}
        evaluate = metrics is not None and ((epoch + 1) % config.eval_every_epochs == 0 or final)
        if evaluate:
            record.update(self.evaluate(metrics))
            stats.write(
                step, {f"Metrics/{k}": v for k, v in record.items() if k not in ("epoch", "step")}
            )
        score = record.get("fid")
        if score is not None and math.isfinite(score):
            best = float(self.best_fid.numpy())
            if not math.isfinite(best) or score < best * (1.0 - config.score_threshold):
                self.best_fid.assign(score)
                record["best"] = True
                self.best_checkpoint.save(step)
        self.history["epochs"].append(record)
        self.save()
        if self.chief:
            write_json_atomic(os.path.join(config.save_dir, "history.json"), self.history)
            self.write_learning_curve()

    def evaluate(self, metrics: dict[str, ImageMetric]) -> dict:
        """FID/KID of ``eval_sample_size`` generated images per evaluation set.

        Keys: ``fid``, ``kid``, ``kid_std`` for an unconditional model; ``fid/<class>`` ...
        per class plus ``fid`` = mean over classes for a conditional one.
        """
        results: dict = {}
        per_class = []
        for key, label in self.evaluation_sets().items():
            if key not in metrics:
                continue
            images = self.generate_uint8(self.config.eval_sample_size, label, SEED_EVAL_Z)
            values = metrics[key](images)
            for name, value in values.items():
                results[f"{name}/{key}" if key else name] = float(value)
            if key:
                per_class.append(values)
        if per_class:
            for name in per_class[0]:
                results[name] = float(np.mean([v[name] for v in per_class]))
        return results

    def save(self) -> str:
        return self.checkpoint.save(int(self.step.numpy()))

    def write_learning_curve(self) -> str:
        steps = self.history["steps"]
        losses = {
            "G loss": [(r["step"], r["g_loss"]) for r in steps if "g_loss" in r],
            "D loss": [(r["step"], r["d_loss"]) for r in steps if "d_loss" in r],
        }
        metric_names = sorted(
            {
                k
                for r in self.history["epochs"]
                for k in r
                if k.startswith(("fid", "kid")) and not k.startswith("kid_std")
            }
        )
        metrics = {
            name: [(r["epoch"], r[name]) for r in self.history["epochs"] if name in r]
            for name in metric_names
        }
        return save_learning_curve(
            os.path.join(self.config.save_dir, "learning_curve.png"),
            losses,
            metrics,
            title=f"{self.KIND}: G loss (red), D loss (blue)",
        )

    def write_sample_page(self, sample_dir: str, title: str) -> str:
        names = newest_first(f for f in os.listdir(sample_dir) if f.endswith(".png"))
        return write_gallery(
            os.path.join(sample_dir, "index.html"),
            title,
            ["samples"],
            [[os.path.join(sample_dir, n)] for n in names],
            captions=names,
        )

    def save_sample_grid(
        self, path: str, images: np.ndarray, rows: int, cols: int, tag: str = "", step: int = 0
    ) -> str:
        """Saves a PNG grid; with ``tag``, also a TensorBoard image of the same grid (during
        `fit`)."""
        images = np.asarray(images, np.float32)
        scale = max(1, 64 // images.shape[1])
        if tag and self._stats is not None:
            grid = make_grid(images, rows, cols).astype(np.float32) / 127.5 - 1.0
            self._stats.write_images(step, {tag: grid[None]}, max_outputs=1)
        return save_grid(path, images, rows, cols, scale=scale)


def _checkpoint_step(path: str) -> int:
    try:
        return int(path.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1
