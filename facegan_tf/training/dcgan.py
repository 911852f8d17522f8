"""DCGAN training as in sualab/DCGAN_Face_gen_tf (Radford et al., ICLR 2016).

One step, with the original's choices:

1. z ~ U(-1, 1)^{B x z_dim} (stateless, drawn for the global batch from (seed, step) and sliced
   per replica, see facegan_tf.training.gan_loop); one real batch x.
2. Discriminator update on ``d_loss = BCE(D(x), 1) + BCE(D(G(z)), 0)`` (a sum of the two
   means, not halved), real and fake through D in separate calls (separate BN statistics).
3. ``g_steps_per_d`` (2) generator updates on ``g_loss = BCE(D(G(z)), 1)`` (non-saturating)
   with the same z and batch.

Batch norm is TF1's fused kernel (`facegan_tf.layers.MovingStatsBatchNormalization`,
``"tf1_fused"``: unbiased variance into the moving variance). Every update of the original
runs all 20 batch-norm update ops of its graph, so each G update also runs D in training mode
on the real batch: per step G's moving statistics get 1 + ``g_steps_per_d`` updates and D's
2 (1 + ``g_steps_per_d``), real batch first. ``d_stats_in_g_updates=False`` keeps only the
passes each update needs (D's statistics: 2 + ``g_steps_per_d`` updates).

Everything runs with batch-statistics BN (the original's ``is_train=True``); grids and FID
use the moving averages (its sampler). Adam(lr 2e-4, beta1 0.9, beta2 0.999, epsilon 1e-8):
beta1 0.9 is what the original actually ran (its ``momentum=0.5`` never reaches Adam); 0.5 is
the DCGAN paper's value. Losses are averaged over the global batch with
``tf.nn.compute_average_loss``; per-replica BN statistics under a multi-replica strategy
unless ``sync_batch_norm`` (statistics over the global batch, so that N replicas x B equal one
device x N B). ``mixed_precision`` and ``xla`` as described in facegan_tf.training.gan_loop.
"""

from __future__ import annotations

import dataclasses
import logging
import os

import keras
import numpy as np
import tensorflow as tf

from facegan_tf import losses
from facegan_tf.fileio import read_json
from facegan_tf.migrate import dcgan_sualab
from facegan_tf.networks.dcgan import DCGANDiscriminator, DCGANGenerator
from facegan_tf.training.checkpointing import read_run_info
from facegan_tf.training.gan_loop import SEED_FIXED_Z, GANLoopTrainer, fixed_z
from facegan_tf.training.optimizers import TF1Adam
from facegan_tf.training.precision import to_float32
from facegan_tf.training.strategy import STRATEGIES

logger = logging.getLogger(__name__)

KIND = "dcgan"
Z_DISTRIBUTIONS = ("uniform", "normal")


def _check_positive(config, names) -> None:
    for name in names:
        value = getattr(config, name)
        if value < 1:
            raise ValueError(f"--{name} must be >= 1. Received: {name}={value}")


def _check_adam(config) -> None:
    if config.init_learning_rate <= 0:
        raise ValueError(
            "--init_learning_rate must be > 0. "
            f"Received: init_learning_rate={config.init_learning_rate}"
        )
    for name in ("beta1", "beta2"):
        if not 0.0 <= getattr(config, name) < 1.0:
            raise ValueError(
                f"--{name} must be in [0, 1). Received: {name}={getattr(config, name)}"
            )
    if config.eps <= 0:
        raise ValueError(f"--eps must be > 0. Received: eps={config.eps}")


def _check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"--strategy must be one of {STRATEGIES}. Received: strategy={strategy!r}")


def _check_image_size(image_size: int) -> None:
    if image_size < 8 or image_size & (image_size - 1):
        raise ValueError(
            "--image_size must be a power of two >= 8 (the DCGAN doubles 4 x 4 up to it). "
            f"Received: image_size={image_size}"
        )


@dataclasses.dataclass(frozen=True)
class DCGANConfig:
    """Resolved settings of a DCGAN run; defaults equal sualab's ``train.py``.

    Names of the original's hyper-parameters are kept (``G_FC_layer_channel`` ->
    ``fc_channels``, ``G_channel`` -> ``g_channels``, ``D_channel`` -> ``d_channels``).
    """

    data_dir: str = "data/FFHQ/thumbnails128x128"
    save_dir: str = "./DCGAN_training_FFHQ_z_100_96crop"
    image_size: int = 64
    crop_size: int = 96
    batch_size: int = 64
    num_epochs: int = 100
    init_learning_rate: float = 2e-4
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    z_dim: int = 100
    z_distribution: str = "uniform"
    fc_channels: int = 512
    g_channels: int = 64
    d_channels: int = 64
    g_steps_per_d: int = 2
    d_stats_in_g_updates: bool = True
    eval_sample_size: int = 10000
    batch_size_eval: int = 50
    eval_every_epochs: int = 1
    score_threshold: float = 1e-4
    sample_H: int = 20
    sample_W: int = 16
    log_every_steps: int = 10
    max_steps: int = 0
    max_to_keep: int = 3
    seed: int = 0
    strategy: str = "default"
    sync_batch_norm: bool = False
    mixed_precision: bool = False
    xla: bool = False

    def __post_init__(self):
        _check_strategy(self.strategy)
        _check_positive(
            self,
            (
                "batch_size",
                "num_epochs",
                "z_dim",
                "fc_channels",
                "g_channels",
                "d_channels",
                "g_steps_per_d",
                "eval_sample_size",
                "batch_size_eval",
                "eval_every_epochs",
                "sample_H",
                "sample_W",
                "log_every_steps",
                "max_to_keep",
            ),
        )
        _check_image_size(self.image_size)
        _check_adam(self)
        if self.crop_size < 0:
            raise ValueError(
                f"--crop_size must be >= 0 (0: no crop). Received: crop_size={self.crop_size}"
            )
        if self.z_distribution not in Z_DISTRIBUTIONS:
            raise ValueError(
                f"--z_distribution must be one of {Z_DISTRIBUTIONS}. "
                f"Received: z_distribution={self.z_distribution!r}"
            )
        if self.max_steps < 0:
            raise ValueError(
                f"--max_steps must be >= 0 (0: no limit). Received: max_steps={self.max_steps}"
            )
        if not 0 <= self.score_threshold < 1:
            raise ValueError(
                "--score_threshold must be in [0, 1). "
                f"Received: score_threshold={self.score_threshold}"
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


ARCHITECTURE_FIELDS = ("image_size", "z_dim", "fc_channels", "g_channels", "d_channels")


def adam(config) -> keras.optimizers.Adam:
    """TF1 ``AdamOptimizer`` constants: epsilon 1e-8 (Keras' default is 1e-7)."""
    return TF1Adam(
        learning_rate=config.init_learning_rate,
        beta_1=config.beta1,
        beta_2=config.beta2,
        epsilon=config.eps,
    )


class DCGANTrainer(GANLoopTrainer):
    """sualab DCGAN under a `tf.distribute` strategy; see the module docstring."""

    KIND = KIND
    ARCHITECTURE_FIELDS = ARCHITECTURE_FIELDS

    def __init__(self, config: DCGANConfig, strategy: tf.distribute.Strategy | None = None):
        super().__init__(config, strategy)
        self._compiled_step = None
        self.sample_z = fixed_z(
            config.sample_H * config.sample_W,
            config.z_dim,
            config.z_distribution,
            config.seed,
            SEED_FIXED_Z,
        )

    def restore(self, path: str | None = None) -> str:
        """Restores the latest checkpoint of ``save_dir``; a folder written by
        ``convert_tf1_checkpoint --kind=dcgan_sualab`` (no run of ours yet) starts from the
        converted models and, when the conversion kept them, the original's Adam slots and
        step counts (`restore_converted`)."""
        folder = self.config.save_dir
        converted = os.path.join(folder, dcgan_sualab.CONVERSION_FILE)
        if path is None and read_run_info(folder) is None and os.path.isfile(converted):
            return self.restore_converted(folder)
        return super().restore(path)

    def restore_converted(self, folder: str) -> str:
        """Loads a converted sualab checkpoint (models and Adam state) into this trainer.

        Raises:
            ValueError: the conversion is of another kind or other widths than the config.
        """
        record = read_json(os.path.join(folder, dcgan_sualab.CONVERSION_FILE))
        if record.get("kind") != dcgan_sualab.KIND:
            raise ValueError(
                f"--resume: {folder!r} holds a {record.get('kind')!r} conversion, expected "
                f"{dcgan_sualab.KIND!r}."
            )
        hyper = record.get("hyperparameters", {})
        flags = {
            "image_size": ("image_size", self.config.image_size),
            "z_dim": ("z_dim", self.config.z_dim),
            "G_FC_layer_channel": ("G_FC_layer_channel", self.config.fc_channels),
            "G_channel": ("G_channel", self.config.g_channels),
            "D_channel": ("D_channel", self.config.d_channels),
        }
        differing = {
            flag: (hyper.get(key), value)
            for key, (flag, value) in flags.items()
            if hyper.get(key) != value
        }
        if differing:
            raise ValueError(
                f"--resume: the converted checkpoint in {folder!r} has other widths than the "
                "flags; pass "
                + " ".join(f"--{flag}={saved}" for flag, (saved, _) in differing.items())
                + ". Received: "
                + ", ".join(f"{flag}={value}" for flag, (_, value) in differing.items())
            )
        for name, model in self.models.items():
            loaded = keras.models.load_model(os.path.join(folder, f"{name}.keras"))
            model.set_weights(loaded.get_weights())
        state_path = os.path.join(folder, dcgan_sualab.ADAM_STATE_FILE)
        if os.path.isfile(state_path):
            state = dcgan_sualab.read_adam_state_file(state_path)
            for name in ("generator", "discriminator"):
                moments = {p: (state[name]["m"][p], state[name]["v"][p]) for p in state[name]["m"]}
                self.set_adam_state(name, state[name]["iterations"], moments)
        else:
            logger.warning(
                "%s has no %s (converted before it was written): Adam starts fresh.",
                folder,
                dcgan_sualab.ADAM_STATE_FILE,
            )
        return folder

    def build(self):
        config = self.config
        generator = DCGANGenerator(
            z_dim=config.z_dim,
            fc_channels=config.fc_channels,
            channels=config.g_channels,
            image_size=config.image_size,
            name="generator",
        )
        discriminator = DCGANDiscriminator(
            channels=config.d_channels, image_size=config.image_size, name="discriminator"
        )
        generator(tf.zeros((1, config.z_dim)))
        discriminator(tf.zeros((1, config.image_size, config.image_size, 3)))
        optimizers = {"generator": adam(config), "discriminator": adam(config)}
        return {"generator": generator, "discriminator": discriminator}, optimizers

    def _discriminator_gradients(self, real, z):
        """Forward/backward of d_loss = BCE(D(x), 1) + BCE(D(G(z)), 0) (no variable changes
        except batch-norm statistics: G's once, D's from the real then the fake batch)."""
        generator = self.models["generator"]
        discriminator = self.models["discriminator"]
        with tf.GradientTape() as tape:
            fake = generator(z, training=True)
            real_logits = to_float32(discriminator(real, training=True))
            fake_logits = to_float32(discriminator(fake, training=True))
            d_real = losses.bce_loss(real_logits, 1.0)
            d_fake = losses.bce_loss(fake_logits, 0.0)
            d_loss = self.average(d_real + d_fake)
        values = {
            "d_loss": d_loss,
            "d_loss_real": self.average(d_real),
            "d_loss_fake": self.average(d_fake),
            "d_real_prob": self.average(tf.sigmoid(real_logits[:, 0])),
            "d_fake_prob": self.average(tf.sigmoid(fake_logits[:, 0])),
        }
        return self.gradients("discriminator", tape, d_loss), values

    def _generator_gradients(self, real, z):
        """Forward/backward of the non-saturating g_loss = BCE(D(G(z)), 1).

        With ``d_stats_in_g_updates`` D first runs in training mode on the real batch, whose
        output is unused: the original's G update runs every batch-norm update op of the
        graph, so D's moving statistics also take the real batch's moments (then the fake
        batch's) in each G update."""
        generator = self.models["generator"]
        discriminator = self.models["discriminator"]
        if self.config.d_stats_in_g_updates:
            discriminator(real, training=True)
        with tf.GradientTape() as tape:
            logits = to_float32(discriminator(generator(z, training=True), training=True))
            g_loss = self.average(losses.bce_loss(logits, 1.0))
        return self.gradients("generator", tape, g_loss), g_loss

    def _step_fn(self, batch, step, z=None):
        real = batch["image"]
        z = self.replica_z(step) if z is None else self.replica_rows(lambda count: z)
        gradients, values = self._d_gradients(real, z)
        self.apply_gradients("discriminator", gradients)
        g_loss = tf.constant(0.0)
        for index in range(self.config.g_steps_per_d):
            gradients, g_loss = self._g_gradients(real, z)
            self.apply_gradients("generator", gradients)
            values[f"g_loss_{index + 1}"] = g_loss
        return {"g_loss": g_loss, **values}

    def train_step(self, batch, z=None) -> dict:
        """One iteration: a D update, then ``g_steps_per_d`` G updates on the same batch and z.

        Args:
            batch: ``{"image": [global batch, H, W, 3]}`` in [-1, 1] (arrays or tensors), or
                a batch of ``strategy.experimental_distribute_dataset``.
            z: optional latent vectors [global batch, z_dim] used by all updates of the step
                in place of the draw from (seed, step); replica r takes rows [r B, (r + 1) B).

        Returns:
            Replica-summed means: ``d_loss`` (and its ``d_loss_real``, ``d_loss_fake`` terms,
            ``d_real_prob``, ``d_fake_prob``), measured before the D update; ``g_loss_<i>``
            of G update i (i = 1 .. g_steps_per_d) before that update; ``g_loss`` = the last
            one (the value the original prints).
        """
        if self._compiled_step is None:
            self._d_gradients = self.compiled(self._discriminator_gradients)
            self._g_gradients = self.compiled(self._generator_gradients)

            @tf.function
            def compiled(batch, z):
                step = self.step + 1
                values = self.strategy.run(self._step_fn, args=(batch, step, z))
                self.step.assign(step)
                return self.reduce(values)

            self._compiled_step = compiled
        return self._compiled_step(self.distribute_batch(batch), self.global_latents(z))

    def generate(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """G(z) with moving-statistics BN (the original sampler), [-1, 1]."""
        images = self.models["generator"](tf.constant(z, tf.float32), training=False)
        return np.asarray(to_float32(images))

    def write_epoch_samples(self, epoch: int, step: int) -> list[str]:
        """``samples/sample_image_{step}.png``: a sample_H x sample_W grid of the fixed z."""
        if not self.chief:
            return []
        sample_dir = os.path.join(self.config.save_dir, "samples")
        images = np.concatenate(
            [
                self.generate(self.sample_z[i : i + self.config.batch_size_eval])
                for i in range(0, len(self.sample_z), self.config.batch_size_eval)
            ]
        )
        path = self.save_sample_grid(
            os.path.join(sample_dir, f"sample_image_{step}.png"),
            images,
            self.config.sample_H,
            self.config.sample_W,
            tag="Samples/fixed_z",
            step=step,
        )
        self.write_sample_page(sample_dir, "DCGAN samples (fixed z, newest first)")
        return [path]


def interpolate_latents(z_a: np.ndarray, z_b: np.ndarray, num_intermediate: int = 9) -> np.ndarray:
    """sualab ``test.py``: z_k = z_a + k (z_b - z_a) / (W + 1), k = 0 .. W + 1 (W + 2 vectors)."""
    steps = num_intermediate + 1
    k = np.arange(steps + 1, dtype=np.float64)[:, None]
    return (z_a[None, :] + k * (z_b - z_a)[None, :] / steps).astype(np.float32)
