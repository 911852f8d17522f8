"""CycleGAN training as in xhujoy/CycleGAN-tensorflow, resumable and distributable.

One step (Zhu et al., 2017, with the original's choices):

1. Generator update on ``g_loss = crit(D_A(F(B)), 1) + crit(D_B(G(A)), 1)
   + lambda * (|F(G(A)) - A|_1 + |G(F(B)) - B|_1)
   [+ lambda * lambda_idt * (|G(B) - B|_1 + |F(A) - A|_1)]``, one Adam over both generators.
2. The fakes of step 1 (computed before the update) go through the image pool.
3. Discriminator update on ``d_loss = da_loss + db_loss`` with
   ``da_loss = (crit(D_A(A), 1) + crit(D_A(pool_A), 0)) / 2`` (likewise ``db_loss``), one Adam
   over both discriminators.

``crit`` is the least-squares criterion (default) or sigmoid cross-entropy. The learning rate
is ``lr`` for epochs ``0 .. epoch_step - 1`` and ``lr * (epochs - e) / (epochs - epoch_step)``
from epoch ``epoch_step`` on (the original's formula, which never reaches 0).

Checkpoints hold the four models, both optimisers (Adam moments and iteration counts), the
step, epoch and position in the epoch, and the image pool; every random draw is a function
of (seed, step) or (seed, epoch, index), so a resumed run continues exactly.

Scale (``--strategy``, ``--mixed_precision``, ``--xla``):

* Under a `tf.distribute` strategy ``batch_size`` is per replica; each replica averages its
  per-example losses over the global batch (``batch_size * replicas``) and the gradients are
  summed across replicas, so one step on R replicas with batch B equals one step on one
  device with batch R * B.
* Image pool under several replicas: each replica keeps its own pool of its own fakes (the
  pool's variables are per replica, ``ON_READ``), with its own draws (seeded by step and
  replica id). While a pool is filling it returns the current fakes, so the first
  ``max_size`` steps equal a single-device run exactly; after that each replica's D sees
  fakes from its own history, not from the global one. Checkpoints hold replica 0's pool;
  a run restored under another replica count gives that pool to every replica.
* Checkpoints, samples and logs are written by the chief only; other workers take part in
  each save into a private temporary folder that is removed at once.
* ``mixed_precision``: layers compute in float16 with float32 variables; model outputs are
  cast to float32 before every loss; both Adams are wrapped in a dynamic loss-scale
  optimizer, which skips a step whose scaled gradients are not finite and halves the
  scale. Checkpoints keep Adam's state under the same keys as float32 runs and the scale
  separately, so either precision resumes the other's checkpoints.
* ``xla``: the per-replica forward/backward passes are jit-compiled; the optimiser
  updates and the pool stay outside.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time

import keras
import numpy as np
import tensorflow as tf

from facegan_tf import losses
from facegan_tf.data.unpaired import (
    SkipCounter,
    UnpairedFolders,
    batches_per_epoch,
    cyclegan_epoch_dataset,
    load_for_model,
    scan_unpaired_folders,
)
from facegan_tf.networks.cyclegan import build_discriminator, build_generator
from facegan_tf.training import guards, precision
from facegan_tf.training.checkpointing import TrainingCheckpoint, read_run_info
from facegan_tf.training.image_pool import ImagePool
from facegan_tf.training.optimizers import TF1Adam, adam_moments
from facegan_tf.training.progress import ProgressBar
from facegan_tf.training.samples import save_grid, stack_panels, write_gallery
from facegan_tf.training.stats import StatsWriter
from facegan_tf.training.strategy import (
    checkpoint_directory,
    discard_worker_checkpoint,
    is_chief,
    make_strategy,
    weights_fingerprint,
)

logger = logging.getLogger(__name__)

KIND = "cyclegan"

#: Config fields that fix the model's variables; a resumed run must keep them.
ARCHITECTURE_FIELDS = ("use_resnet", "ngf", "ndf", "num_blocks", "input_nc", "output_nc")


@dataclasses.dataclass(frozen=True)
class CycleGANConfig:
    """Resolved settings of a CycleGAN run; defaults equal xhujoy's ``main.py``."""

    dataset_dir: str = "horse2zebra"
    epochs: int = 200
    epoch_step: int = 100
    batch_size: int = 1
    train_size: int | None = None
    load_size: int = 286
    fine_size: int = 256
    ngf: int = 64
    ndf: int = 64
    num_blocks: int = 9
    input_nc: int = 3
    output_nc: int = 3
    lr: float = 0.0002
    beta1: float = 0.5
    adam_epsilon: float = 1e-8
    l1_lambda: float = 10.0
    identity_lambda: float = 0.0
    use_resnet: bool = True
    use_lsgan: bool = True
    max_size: int = 50
    save_freq: int = 1000
    sample_freq: int = 100
    log_freq: int = 10
    max_steps: int | None = None
    seed: int = 19
    checkpoint_dir: str = "./checkpoint"
    sample_dir: str = "./sample"
    log_dir: str = "./logs"
    max_to_keep: int = 5
    legacy_bytescale: bool = False
    legacy_crop: bool = False
    strategy: str = "default"
    xla: bool = False
    mixed_precision: bool = False
    num_sample_images: int = 4

    def __post_init__(self):
        positive = (
            "epochs",
            "batch_size",
            "load_size",
            "fine_size",
            "ngf",
            "ndf",
            "save_freq",
            "sample_freq",
            "log_freq",
            "max_to_keep",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1. Received: {name}={getattr(self, name)}")
        if not 0 <= self.epoch_step <= self.epochs:
            raise ValueError(
                f"--epoch_step must be in 0..--epochs ({self.epochs}). "
                f"Received: epoch_step={self.epoch_step}"
            )
        if self.load_size < self.fine_size:
            raise ValueError(
                "--load_size must be >= --fine_size (images are resized to load_size, then "
                f"cropped to fine_size). Received: load_size={self.load_size}, "
                f"fine_size={self.fine_size}"
            )
        if self.use_resnet and (self.fine_size % 4 or self.fine_size < 8):
            raise ValueError(
                "The ResNet generator needs --fine_size to be a multiple of 4 and >= 8. "
                f"Received: fine_size={self.fine_size}"
            )
        if not self.use_resnet and self.fine_size % 256:
            raise ValueError(
                "The U-Net generator (--use_resnet=false) needs --fine_size to be a multiple "
                f"of 256. Received: fine_size={self.fine_size}"
            )
        for name in ("input_nc", "output_nc"):
            if getattr(self, name) not in (1, 3):
                raise ValueError(f"--{name} must be 1 or 3. Received: {name}={getattr(self, name)}")
        if self.identity_lambda < 0 or self.l1_lambda < 0:
            raise ValueError(
                "--L1_lambda and --identity_lambda must be >= 0. Received: "
                f"L1_lambda={self.l1_lambda}, identity_lambda={self.identity_lambda}"
            )
        if self.identity_lambda > 0 and self.input_nc != self.output_nc:
            raise ValueError(
                "The identity loss needs --input_nc == --output_nc. Received: "
                f"input_nc={self.input_nc}, output_nc={self.output_nc}"
            )
        if self.num_blocks < 0 or self.max_size < 0:
            raise ValueError(
                "--num_blocks and --max_size must be >= 0. Received: "
                f"num_blocks={self.num_blocks}, max_size={self.max_size}"
            )
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"--max_steps must be >= 1. Received: max_steps={self.max_steps}")
        if not 0 < self.beta1 < 1 or self.lr <= 0:
            raise ValueError(
                "--lr must be > 0 and --beta1 in (0, 1). "
                f"Received: lr={self.lr}, beta1={self.beta1}"
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def architecture(self) -> dict:
        return {name: getattr(self, name) for name in ARCHITECTURE_FIELDS}


def learning_rate_for_epoch(config: CycleGANConfig, epoch: int) -> float:
    """xhujoy schedule: ``lr`` before ``epoch_step``, then
    ``lr * (epochs - e) / (epochs - epoch_step)``."""
    if epoch < config.epoch_step or config.epochs == config.epoch_step:
        return config.lr
    return config.lr * (config.epochs - epoch) / (config.epochs - config.epoch_step)


def build_cyclegan_models(config: CycleGANConfig) -> dict[str, keras.Model]:
    """The four models of a run: G (A->B), F (B->A), D_A and D_B, built."""
    size = config.fine_size
    common = {"use_resnet": config.use_resnet, "ngf": config.ngf, "num_blocks": config.num_blocks}
    return {
        "generator_a2b": build_generator(
            output_channels=config.output_nc,
            input_channels=config.input_nc,
            image_size=size,
            name="generator_a2b",
            **common,
        ),
        "generator_b2a": build_generator(
            output_channels=config.input_nc,
            input_channels=config.output_nc,
            image_size=size,
            name="generator_b2a",
            **common,
        ),
        "discriminator_a": build_discriminator(
            config.ndf, config.input_nc, size, "discriminator_a"
        ),
        "discriminator_b": build_discriminator(
            config.ndf, config.output_nc, size, "discriminator_b"
        ),
    }


def _adam(config: CycleGANConfig) -> keras.optimizers.Adam:
    return TF1Adam(
        learning_rate=config.lr, beta_1=config.beta1, beta_2=0.999, epsilon=config.adam_epsilon
    )


class CycleGANTrainer:
    """Builds a run's models, optimisers and state under a strategy and trains them.

    Args:
        config: the resolved run settings.
        strategy: a `tf.distribute.Strategy`; by default the one named in ``config.strategy``.
    """

    def __init__(self, config: CycleGANConfig, strategy: tf.distribute.Strategy | None = None):
        self.config = config
        self.strategy = strategy or make_strategy(config.strategy)
        self.replicas = self.strategy.num_replicas_in_sync
        self.global_batch = config.batch_size * self.replicas
        self.chief = is_chief(self.strategy)
        size = config.fine_size
        keras.utils.set_random_seed(config.seed)
        with self.strategy.scope():
            with precision.dtype_policy(config.mixed_precision):
                self.models = build_cyclegan_models(config)
            self.g_optimizer = precision.loss_scaled(_adam(config), config.mixed_precision)
            self.d_optimizer = precision.loss_scaled(_adam(config), config.mixed_precision)
            self.generator_variables = (
                self.models["generator_a2b"].trainable_variables
                + self.models["generator_b2a"].trainable_variables
            )
            self.discriminator_variables = (
                self.models["discriminator_a"].trainable_variables
                + self.models["discriminator_b"].trainable_variables
            )
            self.g_optimizer.build(self.generator_variables)
            self.d_optimizer.build(self.discriminator_variables)
            self.pool = ImagePool(
                config.max_size,
                [config.batch_size, size, size, config.input_nc],
                [config.batch_size, size, size, config.output_nc],
            )
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
            self.batch_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="batch")
        self._checkpoint_objects = {
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            **precision.checkpoint_optimizers(
                g_optimizer=self.g_optimizer, d_optimizer=self.d_optimizer
            ),
            "image_pool": self.pool,
            **self.models,
        }
        self._checkpoint_folder = checkpoint_directory(config.checkpoint_dir, self.chief)
        self.checkpoint = self._make_checkpoint(self._checkpoint_objects)
        self._train_step = None
        self._last_saved = -1  # the step of the checkpoint on disk that equals the state
        self.skipped = SkipCounter()
        # With --xla the per-replica forward/backward passes are compiled; optimiser updates
        # and the pool stay outside (XLA cannot wrap strategy.run with several replicas).
        # Autograph is off: the step has no data-dependent Python control flow, and converting
        # every Keras call while tracing would multiply the first-step time.
        compile_options = {"autograph": False, "jit_compile": True if config.xla else None}
        self._g_gradients = tf.function(self._generator_gradients, **compile_options)
        self._d_gradients = tf.function(self._discriminator_gradients, **compile_options)

    def _make_checkpoint(self, objects: dict) -> TrainingCheckpoint:
        return TrainingCheckpoint(
            self._checkpoint_folder,
            KIND,
            self.config.to_dict(),
            max_to_keep=self.config.max_to_keep,
            enabled=self.chief,
            **objects,
        )

    # ----------------------------------------------------------------------------- step
    def _average(self, per_example: tf.Tensor) -> tf.Tensor:
        return tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch)

    def _generator_gradients(self, real_a, real_b):
        """Forward and backward of the generator objective (no variable is changed)."""
        config = self.config
        g_a2b, g_b2a = self.models["generator_a2b"], self.models["generator_b2a"]
        d_a, d_b = self.models["discriminator_a"], self.models["discriminator_b"]
        criterion = "lsgan" if config.use_lsgan else "bce"
        as32 = precision.to_float32
        with tf.GradientTape() as tape:
            fake_b = g_a2b(real_a, training=True)
            rec_a = as32(g_b2a(fake_b, training=True))
            fake_a = g_b2a(real_b, training=True)
            rec_b = as32(g_a2b(fake_a, training=True))
            adv_a2b = losses.adversarial_loss(criterion, as32(d_b(fake_b, training=True)), 1.0)
            adv_b2a = losses.adversarial_loss(criterion, as32(d_a(fake_a, training=True)), 1.0)
            cycle = config.l1_lambda * (
                losses.cycle_loss(real_a, rec_a) + losses.cycle_loss(real_b, rec_b)
            )
            g_per_example = adv_a2b + adv_b2a + cycle
            if config.identity_lambda > 0:
                identity = (config.l1_lambda * config.identity_lambda) * (
                    losses.identity_loss(real_b, as32(g_a2b(real_b, training=True)))
                    + losses.identity_loss(real_a, as32(g_b2a(real_a, training=True)))
                )
                g_per_example += identity
            else:
                identity = tf.zeros_like(cycle)
            g_loss = self._average(g_per_example)
            scaled_loss = self.g_optimizer.scale_loss(g_loss)
        gradients = tape.gradient(scaled_loss, self.generator_variables)
        values = {
            "g_loss": g_loss,
            "g_loss_a2b": self._average(adv_a2b + cycle),
            "g_loss_b2a": self._average(adv_b2a + cycle),
            "cycle_loss": self._average(cycle),
            "identity_loss": self._average(identity),
        }
        return gradients, values, as32(fake_a), as32(fake_b)

    def _discriminator_gradients(self, real_a, real_b, pool_a, pool_b):
        """Forward and backward of the discriminator objective on real and pooled images."""
        criterion = "lsgan" if self.config.use_lsgan else "bce"
        d_a, d_b = self.models["discriminator_a"], self.models["discriminator_b"]
        as32 = precision.to_float32
        with tf.GradientTape() as tape:
            da_real = losses.adversarial_loss(criterion, as32(d_a(real_a, training=True)), 1.0)
            da_fake = losses.adversarial_loss(criterion, as32(d_a(pool_a, training=True)), 0.0)
            db_real = losses.adversarial_loss(criterion, as32(d_b(real_b, training=True)), 1.0)
            db_fake = losses.adversarial_loss(criterion, as32(d_b(pool_b, training=True)), 0.0)
            da_loss = (da_real + da_fake) / 2.0
            db_loss = (db_real + db_fake) / 2.0
            d_loss = self._average(da_loss + db_loss)
            scaled_loss = self.d_optimizer.scale_loss(d_loss)
        gradients = tape.gradient(scaled_loss, self.discriminator_variables)
        values = {
            "d_loss": d_loss,
            "da_loss": self._average(da_loss),
            "da_loss_real": self._average(da_real),
            "da_loss_fake": self._average(da_fake),
            "db_loss": self._average(db_loss),
            "db_loss_real": self._average(db_real),
            "db_loss_fake": self._average(db_fake),
        }
        return gradients, values

    def _step_fn(self, batch, step):
        """One replica's step: G update, image pool, D update (see the module docstring)."""
        real_a, real_b = batch["real_a"], batch["real_b"]
        g_gradients, g_values, fake_a, fake_b = self._g_gradients(real_a, real_b)
        self.g_optimizer.apply_gradients(zip(g_gradients, self.generator_variables))

        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        pool_seed = tf.stack(
            [tf.cast(self.config.seed, tf.int64), step * 1024 + tf.cast(replica, tf.int64)]
        )
        pool_a, pool_b = self.pool.query(fake_a, fake_b, pool_seed)

        d_gradients, d_values = self._d_gradients(real_a, real_b, pool_a, pool_b)
        self.d_optimizer.apply_gradients(zip(d_gradients, self.discriminator_variables))
        return {**g_values, **d_values}

    def train_step(self, batch) -> dict:
        """One training iteration of the original on ``batch``: G update, pool, D update.

        Args:
            batch: ``{"real_a": [B, H, W, input_nc], "real_b": [B, H, W, output_nc]}`` in
                [-1, 1] (arrays or tensors; on several replicas, the global batch is split
                between them), or a batch of ``strategy.experimental_distribute_dataset``.

        Returns:
            The losses under the original's summary names, as float32 scalar tensors:
            ``g_loss``, ``g_loss_a2b``, ``g_loss_b2a`` (at the generators' weights before
            this update), ``d_loss``, ``da_loss``, ``da_loss_real``, ``da_loss_fake``,
            ``db_loss``, ``db_loss_real``, ``db_loss_fake`` (at the discriminators' weights
            before their update, on the pooled fakes), and ``cycle_loss``, ``identity_loss``.
        """
        if isinstance(batch, dict) and not any(
            isinstance(value, tf.distribute.DistributedValues) for value in batch.values()
        ):
            batch = {name: tf.convert_to_tensor(value, tf.float32) for name, value in batch.items()}
            if self.replicas > 1:
                batch = next(
                    iter(
                        self.strategy.experimental_distribute_dataset(
                            tf.data.Dataset.from_tensors(batch)
                        )
                    )
                )
        if self._train_step is None:

            @tf.function(autograph=False)
            def train_step(batch):
                step = self.step + 1
                per_replica = self.strategy.run(self._step_fn, args=(batch, step))
                self.step.assign(step)
                return {
                    name: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                    for name, value in per_replica.items()
                }

            self._train_step = train_step
        return self._train_step(batch)

    # -------------------------------------------------------------- training surface
    @property
    def learning_rate(self) -> float:
        """The learning rate in force (both optimisers use it; see `set_learning_rate`)."""
        return float(precision.inner_optimizer(self.g_optimizer).learning_rate.numpy())

    def optimizer_moments(self, which: str, variable_path: str) -> dict[str, np.ndarray]:
        """Adam's first (``"m"``) and second (``"v"``) moment of one trainable variable.

        Args:
            which: ``"generator"`` (the Adam over both generators) or ``"discriminator"``.
            variable_path: the variable's ``path``, e.g. ``"generator_a2b/g_e1_c/kernel"``.
        """
        return adam_moments(
            {"generator": self.g_optimizer, "discriminator": self.d_optimizer},
            {"generator": self.generator_variables, "discriminator": self.discriminator_variables},
            which,
            variable_path,
        )

    # ------------------------------------------------------------------------ resuming
    def restore(self, path: str | None = None) -> str:
        """Restores ``path`` or the latest checkpoint of ``config.checkpoint_dir``
        (``--continue_train``)."""
        info = read_run_info(self.config.checkpoint_dir)
        if info is not None and info.get("kind") == KIND:
            saved = {k: info["config"].get(k) for k in ARCHITECTURE_FIELDS}
            wanted = self.config.architecture()
            differing = {
                k: (saved[k], wanted[k]) for k in ARCHITECTURE_FIELDS if saved[k] != wanted[k]
            }
            if differing:
                details = ", ".join(
                    f"{k}: checkpoint {a!r} vs flags {b!r}" for k, (a, b) in differing.items()
                )
                raise ValueError(
                    f"--continue_train: the checkpoint in {self.config.checkpoint_dir!r} was "
                    f"made with another architecture ({details}). Use the same flags or "
                    "another --checkpoint_dir."
                )
        restored = precision.restore_in_either_precision(
            self.config.checkpoint_dir,
            path,
            self.checkpoint,
            self._checkpoint_objects,
            self._make_checkpoint,
        )
        self._last_saved = int(self.step.numpy())
        return restored

    # ------------------------------------------------------------------------- the loop
    def set_learning_rate(self, epoch: int) -> float:
        rate = learning_rate_for_epoch(self.config, epoch)
        self.g_optimizer.learning_rate.assign(rate)
        self.d_optimizer.learning_rate.assign(rate)
        return rate

    def fit(self, folders: UnpairedFolders | None = None, progress: bool = True) -> dict:
        """Trains until ``epochs`` are done or ``max_steps`` is reached; returns a summary.

        Every step's losses are checked (`guards.check_finite`): a NaN or infinite loss
        raises `guards.NonFiniteLossError` naming the step before anything of that step is
        saved, so the latest checkpoint stays the last good state. Ctrl-C stops the run
        between two steps, saves that state and raises `guards.TrainingInterrupted`.
        """
        config = self.config
        folders = folders or scan_unpaired_folders(config.dataset_dir)
        per_epoch = batches_per_epoch(
            len(folders.train_a), len(folders.train_b), self.global_batch, config.train_size
        )
        if per_epoch < 1:
            raise ValueError(
                f"Too few training images for --batch_size={config.batch_size} on "
                f"{self.replicas} replica(s): trainA has {len(folders.train_a)}, trainB has "
                f"{len(folders.train_b)} in {folders.root!r}."
            )
        stats = StatsWriter(config.log_dir, enabled=self.chief)
        sample_a, sample_b = self._sample_inputs(folders)
        start_step = int(self.step.numpy())
        total_steps = config.epochs * per_epoch
        if config.max_steps is not None:
            total_steps = min(total_steps, config.max_steps)
        bar = ProgressBar(
            max(total_steps - start_step, 0),
            label="cyclegan",
            unit="step",
            enabled=self.chief and progress,
        )
        last_losses: dict = {}
        started = time.perf_counter()
        current_step = lambda: int(self.step.numpy())  # noqa: E731
        try:
            with guards.interruptible(self._save_unsaved, current_step) as request:
                while int(self.epoch.numpy()) < config.epochs and current_step() < total_steps:
                    epoch = int(self.epoch.numpy())
                    rate = self.set_learning_rate(epoch)
                    dataset = self._epoch_dataset(folders, epoch)
                    for batch in self.strategy.experimental_distribute_dataset(dataset):
                        step_start = time.perf_counter()
                        values = self.train_step(batch)
                        self.batch_in_epoch.assign_add(1)
                        step = current_step()
                        elapsed = time.perf_counter() - step_start
                        losses_now = {k: float(v) for k, v in values.items()}
                        guards.check_finite(step, losses_now, lambda: self.checkpoint.latest)
                        images_per_second = self.global_batch / max(elapsed, 1e-9)
                        if (
                            step % config.log_freq == 0
                            or step == total_steps
                            or step == start_step + 1
                        ):
                            last_losses = losses_now
                            stats.write(
                                step,
                                {
                                    **last_losses,
                                    "learning_rate": rate,
                                    "images_per_second": images_per_second,
                                },
                            )
                        bar.update(
                            1,
                            epoch=epoch,
                            g=losses_now["g_loss"],
                            d=losses_now["d_loss"],
                            img_s=round(images_per_second, 2),
                        )
                        if step % config.sample_freq == 0:
                            self.write_samples(sample_a, sample_b, epoch, step, stats)
                        if step % config.save_freq == 0:
                            self.save()
                        if step >= total_steps:
                            break
                        request.raise_if_requested()
                    else:
                        self.epoch.assign_add(1)
                        self.batch_in_epoch.assign(0)
                        request.raise_if_requested()
                        continue
                    break
                if int(self.batch_in_epoch.numpy()) >= per_epoch:
                    self.epoch.assign_add(1)
                    self.batch_in_epoch.assign(0)
                request.raise_if_requested()
        finally:
            bar.close()
        step = current_step()
        self._save_unsaved()
        if step % config.sample_freq:
            self.write_samples(sample_a, sample_b, int(self.epoch.numpy()), step, stats)
        stats.close()
        if self.skipped.count:
            logger.warning(
                "%d image file(s) could not be decoded and were skipped", self.skipped.count
            )
        return {
            "step": step,
            "epoch": int(self.epoch.numpy()),
            "seconds": time.perf_counter() - started,
            "losses": last_losses,
            "skipped_files": self.skipped.count + len(folders.skipped),
            "checkpoint": tf.train.latest_checkpoint(config.checkpoint_dir),
            "weights_sha256": weights_fingerprint(self.models),
        }

    def _epoch_dataset(self, folders: UnpairedFolders, epoch: int) -> tf.data.Dataset:
        """The global batches of ``epoch`` from the saved position in it on."""
        config = self.config
        return cyclegan_epoch_dataset(
            folders,
            epoch=epoch,
            seed=config.seed,
            batch_size=self.global_batch,
            load_size=config.load_size,
            fine_size=config.fine_size,
            train_size=config.train_size,
            skip_batches=int(self.batch_in_epoch.numpy()),
            legacy_bytescale_mode=config.legacy_bytescale,
            legacy_crop=config.legacy_crop,
            skipped=self.skipped,
            channels_a=config.input_nc,
            channels_b=config.output_nc,
        )

    def _save_unsaved(self) -> str | None:
        """Saves unless the current step is already the latest checkpoint; returns it."""
        if int(self.step.numpy()) == self._last_saved:
            return tf.train.latest_checkpoint(self.config.checkpoint_dir)
        return self.save()

    def save(self) -> str | None:
        """Saves the run state (every worker takes part; only the chief's copy is kept) and
        returns the checkpoint path in ``checkpoint_dir``."""
        step = int(self.step.numpy())
        path = self.checkpoint.save(step)
        self._last_saved = step
        if not self.chief:
            discard_worker_checkpoint(self._checkpoint_folder, self.config.checkpoint_dir)
            return None
        return path

    # -------------------------------------------------------------------------- samples
    def _sample_inputs(self, folders: UnpairedFolders):
        count = self.config.num_sample_images
        source_a = folders.test_a or folders.train_a
        source_b = folders.test_b or folders.train_b
        size = self.config.fine_size

        def load(paths, channels):
            return np.stack(
                [
                    load_for_model(p, size, self.config.legacy_bytescale, channels)
                    for p in paths[:count]
                ]
            ).astype(np.float32)

        return load(source_a, self.config.input_nc), load(source_b, self.config.output_nc)

    def write_samples(self, sample_a, sample_b, epoch: int, step: int, stats: StatsWriter):
        """Writes A | G(A) | F(G(A)) and B | F(B) | G(F(B)) grids (inference mode) and a page."""
        if not self.chief:
            return
        g_a2b = self.models["generator_a2b"]
        g_b2a = self.models["generator_b2a"]
        def run(model, images):
            return np.asarray(model(images, training=False), np.float32)

        fake_b = run(g_a2b, sample_a)
        rec_a = run(g_b2a, fake_b)
        fake_a = run(g_b2a, sample_b)
        rec_b = run(g_a2b, fake_a)
        os.makedirs(self.config.sample_dir, exist_ok=True)
        scale = max(1, 128 // self.config.fine_size)
        names = []
        for direction, rows in (
            ("A2B", (sample_a, fake_b, rec_a)),
            ("B2A", (sample_b, fake_a, rec_b)),
        ):
            grid = stack_panels(rows)  # input_nc != output_nc: both shown as RGB
            path = os.path.join(self.config.sample_dir, f"{direction}_{epoch:03d}_{step:07d}.png")
            save_grid(path, grid, rows=len(rows[0]), cols=3, scale=scale)
            names.append(path)
        stats.write_images(step, {"samples/fake_B": fake_b, "samples/fake_A": fake_a})
        samples = sorted(
            f
            for f in os.listdir(self.config.sample_dir)
            if f.endswith(".png") and f[:3] in ("A2B", "B2A")
        )
        rows = {}
        for name in samples:
            direction, epoch_text, step_text = name[:-4].split("_")
            rows.setdefault((int(step_text), int(epoch_text)), {})[direction] = os.path.join(
                self.config.sample_dir, name
            )
        ordered = sorted(rows.items(), reverse=True)
        write_gallery(
            os.path.join(self.config.sample_dir, "index.html"),
            "CycleGAN samples (rows: input | translated | reconstructed)",
            ["A -> B", "B -> A"],
            [[cells.get("A2B", ""), cells.get("B2A", "")] for _, cells in ordered],
            captions=[f"epoch {e}, step {s}" for (s, e), _ in ordered],
        )
