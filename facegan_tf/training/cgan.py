"""Conditional GANs on labelled face folders: cGAN, conditional DCGAN, conditional WGAN-GP, AC-GAN.

Models (``model``), after the mask project (clayryu maskgan) with the changes listed in
docs/cgan.md:

* ``cgan`` — Mirza & Osindero (2014) with MLPs (`MLPConditionalGenerator`/`...Discriminator`),
  least-squares loss on the logits by default.
* ``cdcgan`` — the sualab DCGAN generator on concat(z, Embedding(y)) and discriminator on
  concat(image, label plane); sigmoid cross-entropy by default.
* ``cwgan_gp`` — Gulrajani et al. (2017): conditional DCGAN generator, critic without batch
  norm; L_D = D(G(z, y)) - D(x, y) + lambda * (||grad D(x_hat, y)||_2 - 1)^2 with
  x_hat = alpha x + (1 - alpha) G(z, y), alpha ~ U(0, 1) per example, lambda 10; the fakes use
  the real batch's labels; the generator (L_G = -D(G(z, y))) is updated after every
  ``n_critic`` (5) critic updates, with the same z.
* ``acgan`` — Odena et al. (2017): unconditional-input discriminator with a real/fake logit
  and class logits; L_D = 1/2 [1/2 (BCE_real + CE_real) + 1/2 (BCE_fake + CE_fake)],
  L_G = 1/2 (BCE(D(G(z, c)), 1) + CE(c)) (the mask project's weights, on logits).

Order of one step for ``cgan``, ``cdcgan`` and ``acgan`` (the mask project's): generator
update with random labels c ~ U{0..K-1} first, then the discriminator update on the real
batch with its labels and on the (pre-update) fakes with c; L_D = (real + fake) / 2.

Batch norm follows PyTorch, as the mask project's modules (`MovingStatsBatchNormalization`
rule ``"pytorch"``: unbiased running variance, PyTorch momentum 0.1 = Keras 0.9). Per step
G's statistics are updated by G(z, c) of the G update, D's by D(G(z, c)) of the G update and
then by the real and the fake batch of the D update, the project's order.

z, the fake labels c and the penalty's alpha are drawn for the global batch from
(seed, purpose, step) and sliced per replica (facegan_tf.training.gan_loop), so N replicas x B
see the draws of one device x N B. Distribution, ``sync_batch_norm``, ``mixed_precision`` and
``xla`` as in facegan_tf.training.gan_loop; under mixed precision the gradient penalty is
computed in float32 (float32 interpolates, the critic's logits cast to float32 before the
inner gradient, float32 norm).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf

from facegan_tf import losses
from facegan_tf.networks.dcgan import (
    ACGANDiscriminator,
    ConditionalDCGANDiscriminator,
    ConditionalDCGANGenerator,
    MLPConditionalDiscriminator,
    MLPConditionalGenerator,
)
from facegan_tf.training.dcgan import (
    Z_DISTRIBUTIONS,
    _check_adam,
    _check_image_size,
    _check_positive,
    _check_strategy,
    adam,
)
from facegan_tf.training.gan_loop import (
    SEED_ALPHA,
    SEED_FIXED_Z,
    SEED_LABELS,
    GANLoopTrainer,
    fixed_z,
    step_seed,
)
from facegan_tf.training.precision import to_float32

KIND = "cgan"
MODELS = ("cgan", "cdcgan", "cwgan_gp", "acgan")
LOSSES = ("lsgan", "bce")
DEFAULT_LOSS = {"cgan": "lsgan", "cdcgan": "bce"}


@dataclasses.dataclass(frozen=True)
class ConditionalGANConfig:
    """Resolved settings of a conditional-GAN run (defaults: the mask project's)."""

    model: str = "cdcgan"
    data_dir: str = ""
    save_dir: str = "./cgan_run"
    num_classes: int = 2
    class_names: tuple[str, ...] = ()
    image_size: int = 64
    crop_size: int = 0
    batch_size: int = 64
    num_epochs: int = 100
    init_learning_rate: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    eps: float = 1e-8
    z_dim: int = 100
    z_distribution: str = "normal"
    loss: str = ""
    fc_channels: int = 512
    g_channels: int = 64
    d_channels: int = 64
    mlp_g_units: tuple[int, ...] = (128, 256, 512, 1024, 2048)
    mlp_d_units: tuple[int, ...] = (512, 512, 512, 512)
    mlp_dropout: float = 0.4
    mlp_label_units: int = 128
    bn_epsilon: float = 1e-5
    n_critic: int = 5
    gp_lambda: float = 10.0
    eval_sample_size: int = 1000
    batch_size_eval: int = 50
    eval_every_epochs: int = 1
    score_threshold: float = 1e-4
    sample_H: int = 8
    sample_W: int = 8
    log_every_steps: int = 10
    max_steps: int = 0
    max_to_keep: int = 3
    seed: int = 0
    strategy: str = "default"
    sync_batch_norm: bool = False
    mixed_precision: bool = False
    xla: bool = False

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"--model must be one of {MODELS}. Received: model={self.model!r}")
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
                "n_critic",
                "eval_sample_size",
                "batch_size_eval",
                "eval_every_epochs",
                "sample_H",
                "sample_W",
                "log_every_steps",
                "max_to_keep",
            ),
        )
        if self.num_classes < 2:
            raise ValueError(
                "A conditional GAN needs at least two classes. "
                f"Received: num_classes={self.num_classes}"
            )
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"class_names {self.class_names} do not match num_classes={self.num_classes}"
            )
        _check_image_size(self.image_size)
        _check_adam(self)
        if self.loss and self.loss not in LOSSES:
            raise ValueError(
                f"--loss must be one of {LOSSES} or empty. Received: loss={self.loss!r}"
            )
        if self.loss and self.model not in DEFAULT_LOSS:
            raise ValueError(
                f"--loss applies to cgan and cdcgan only ({self.model} has a fixed loss). "
                f"Received: loss={self.loss!r}"
            )
        if self.z_distribution not in Z_DISTRIBUTIONS:
            raise ValueError(
                f"--z_distribution must be one of {Z_DISTRIBUTIONS}. "
                f"Received: z_distribution={self.z_distribution!r}"
            )
        if self.gp_lambda < 0 or not 0 <= self.mlp_dropout < 1 or self.bn_epsilon <= 0:
            raise ValueError(
                "--gp_lambda must be >= 0, --mlp_dropout in [0, 1), --bn_epsilon > 0. Received: "
                f"gp_lambda={self.gp_lambda}, mlp_dropout={self.mlp_dropout}, "
                f"bn_epsilon={self.bn_epsilon}"
            )
        if self.mlp_label_units < 0:
            raise ValueError(
                "--mlp_label_units must be >= 0 (0: the mask project's concat at the input). "
                f"Received: mlp_label_units={self.mlp_label_units}"
            )
        if self.crop_size < 0 or self.max_steps < 0:
            raise ValueError(
                "--crop_size and --max_steps must be >= 0. Received: "
                f"crop_size={self.crop_size}, max_steps={self.max_steps}"
            )

    @property
    def adversarial_loss(self) -> str:
        return self.loss or DEFAULT_LOSS.get(self.model, "")

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        for name in ("class_names", "mlp_g_units", "mlp_d_units"):
            values[name] = list(values[name])
        return values


ARCHITECTURE_FIELDS = (
    "model",
    "num_classes",
    "image_size",
    "z_dim",
    "fc_channels",
    "g_channels",
    "d_channels",
    "mlp_g_units",
    "mlp_d_units",
    "mlp_label_units",
)


def build_conditional_models(config: ConditionalGANConfig) -> dict:
    """The built generator and discriminator (or critic) of ``config.model``."""
    k, size = config.num_classes, config.image_size
    if config.model == "cgan":
        generator = MLPConditionalGenerator(
            num_classes=k,
            z_dim=config.z_dim,
            image_size=size,
            hidden_units=config.mlp_g_units,
            label_units=config.mlp_label_units,
            bn_epsilon=config.bn_epsilon,
            name="generator",
        )
        discriminator = MLPConditionalDiscriminator(
            num_classes=k,
            image_size=size,
            hidden_units=config.mlp_d_units,
            dropout_rate=config.mlp_dropout,
            label_units=config.mlp_label_units,
            name="discriminator",
        )
    else:
        generator = ConditionalDCGANGenerator(
            num_classes=k,
            z_dim=config.z_dim,
            fc_channels=config.fc_channels,
            channels=config.g_channels,
            image_size=size,
            bn_epsilon=config.bn_epsilon,
            name="generator",
        )
        if config.model == "acgan":
            discriminator = ACGANDiscriminator(
                num_classes=k,
                channels=config.d_channels,
                image_size=size,
                bn_epsilon=config.bn_epsilon,
                name="discriminator",
            )
        else:
            discriminator = ConditionalDCGANDiscriminator(
                num_classes=k,
                channels=config.d_channels,
                image_size=size,
                batch_norm=config.model != "cwgan_gp",
                bn_epsilon=config.bn_epsilon,
                name="discriminator",
            )
    labels = tf.zeros((1,), tf.int32)
    generator(tf.zeros((1, config.z_dim)), labels)
    images = tf.zeros((1, size, size, 3))
    if config.model == "acgan":
        discriminator(images)
    else:
        discriminator(images, labels)
    return {"generator": generator, "discriminator": discriminator}


class ConditionalGANTrainer(GANLoopTrainer):
    """Trains one of `MODELS` under a `tf.distribute` strategy; see the module docstring."""

    KIND = KIND
    ARCHITECTURE_FIELDS = ARCHITECTURE_FIELDS

    def __init__(
        self, config: ConditionalGANConfig, strategy: tf.distribute.Strategy | None = None
    ):
        super().__init__(config, strategy)
        self._compiled = {}
        self._passes = {}
        count = config.sample_H * config.sample_W
        self.sample_z = fixed_z(
            count, config.z_dim, config.z_distribution, config.seed, SEED_FIXED_Z
        )

    def checkpoint_extras(self) -> dict:
        # cwgan_gp reports the last G update's loss on critic-only steps; a resumed run
        # reports the same value.
        self._last_g_loss = tf.Variable(0.0, trainable=False, name="last_g_loss")
        return {"last_g_loss": self._last_g_loss}

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.config.class_names or tuple(str(i) for i in range(self.config.num_classes))

    def build(self):
        models = build_conditional_models(self.config)
        return models, {"generator": adam(self.config), "discriminator": adam(self.config)}

    def evaluation_sets(self) -> dict:
        return {name: index for index, name in enumerate(self.class_names)}

    # ---------------------------------------------------------------------------- steps
    def _noise(self, batch, step, given=None):
        """(real, labels, z, fake labels c) of this replica; z and c are its slices of the
        global batch's draws, or of the global tensors in ``given`` (``z``, ``labels``)."""
        config = self.config
        given = given or {}
        if given.get("z") is not None:
            z = self.replica_rows(lambda count: given["z"])
        else:
            z = self.replica_z(step)
        if given.get("labels") is not None:
            fake_labels = self.replica_rows(lambda count: given["labels"])
        else:
            label_seed = step_seed(config.seed, SEED_LABELS, step)
            fake_labels = self.replica_rows(
                lambda count: tf.random.stateless_uniform(
                    (count,), label_seed, minval=0, maxval=config.num_classes, dtype=tf.int32
                )
            )
        return batch["image"], tf.cast(batch["label"], tf.int32), z, fake_labels

    def _adversarial(self, logits, target):
        return losses.adversarial_loss(self.config.adversarial_loss, to_float32(logits), target)

    # Forward/backward passes (jit-compiled under --xla); they change no variable except
    # batch-norm statistics and dropout seeds.
    def _conditional_g_gradients(self, z, fake_labels):
        generator, discriminator = self.models["generator"], self.models["discriminator"]
        with tf.GradientTape() as tape:
            fake = generator(z, fake_labels, training=True)
            g_per_example = self._adversarial(discriminator(fake, fake_labels, training=True), 1.0)
            g_loss = self.average(g_per_example)
        return self.gradients("generator", tape, g_loss), g_loss, fake

    def _conditional_d_gradients(self, real, labels, fake, fake_labels):
        discriminator = self.models["discriminator"]
        with tf.GradientTape() as tape:
            real_logits = to_float32(discriminator(real, labels, training=True))
            fake_logits = to_float32(discriminator(fake, fake_labels, training=True))
            d_real = self._adversarial(real_logits, 1.0)
            d_fake = self._adversarial(fake_logits, 0.0)
            d_loss = self.average((d_real + d_fake) / 2.0)
        values = {
            "d_loss": d_loss,
            "d_real_score": self.average(real_logits[:, 0]),
            "d_fake_score": self.average(fake_logits[:, 0]),
        }
        return self.gradients("discriminator", tape, d_loss), values

    def _acgan_g_gradients(self, z, fake_labels):
        generator, discriminator = self.models["generator"], self.models["discriminator"]
        with tf.GradientTape() as tape:
            fake = generator(z, fake_labels, training=True)
            adv, cls = to_float32(discriminator(fake, training=True))
            g_loss = self.average(
                0.5
                * (losses.bce_loss(adv, 1.0) + losses.class_cross_entropy_loss(fake_labels, cls))
            )
        return self.gradients("generator", tape, g_loss), g_loss, fake

    def _acgan_d_gradients(self, real, labels, fake, fake_labels):
        discriminator = self.models["discriminator"]
        with tf.GradientTape() as tape:
            real_adv, real_cls = to_float32(discriminator(real, training=True))
            fake_adv, fake_cls = to_float32(discriminator(fake, training=True))
            d_real = 0.5 * (
                losses.bce_loss(real_adv, 1.0) + losses.class_cross_entropy_loss(labels, real_cls)
            )
            d_fake = 0.5 * (
                losses.bce_loss(fake_adv, 0.0)
                + losses.class_cross_entropy_loss(fake_labels, fake_cls)
            )
            d_loss = self.average(0.5 * (d_real + d_fake))
        correct = tf.cast(
            tf.equal(tf.argmax(real_cls, axis=-1, output_type=tf.int32), labels), tf.float32
        )
        values = {
            "d_loss": d_loss,
            "d_real_score": self.average(real_adv[:, 0]),
            "d_fake_score": self.average(fake_adv[:, 0]),
            "d_class_accuracy": self.average(correct),
        }
        return self.gradients("discriminator", tape, d_loss), values

    def _critic_gradients(self, real, labels, z, alpha):
        generator, critic = self.models["generator"], self.models["discriminator"]
        fake = to_float32(generator(z, labels, training=True))
        with tf.GradientTape() as tape:
            real_logits = to_float32(critic(real, labels, training=True))
            fake_logits = to_float32(critic(fake, labels, training=True))
            # The penalty interpolates alpha * fake + (1 - alpha) * real; with alpha ~ U(0, 1)
            # this has the distribution of the original's alpha * real + (1 - alpha) * fake.
            penalty = losses.gradient_penalty(
                lambda x: to_float32(critic(x, labels, training=True)), real, fake, alpha
            )
            wasserstein = losses.wgan_critic_loss(real_logits, fake_logits)
            d_loss = self.average(wasserstein + self.config.gp_lambda * penalty)
        values = {
            "d_loss": d_loss,
            "gradient_penalty": self.average(penalty),
            "wasserstein_estimate": -self.average(wasserstein),
            "d_real_score": self.average(real_logits[:, 0]),
            "d_fake_score": self.average(fake_logits[:, 0]),
        }
        return self.gradients("discriminator", tape, d_loss), values

    def _wgan_g_gradients(self, z, labels):
        generator, critic = self.models["generator"], self.models["discriminator"]
        with tf.GradientTape() as tape:
            fake = generator(z, labels, training=True)
            logits = to_float32(critic(fake, labels, training=True))
            g_loss = self.average(losses.wgan_generator_loss(logits))
        return self.gradients("generator", tape, g_loss), g_loss

    def _pass(self, name):
        """The forward/backward method ``name``, compiled once (XLA under ``xla``)."""
        if name not in self._passes:
            self._passes[name] = self.compiled(getattr(self, name))
        return self._passes[name]

    # ---------------------------------------------------------------------------- steps
    def _conditional_step(self, batch, step, given):
        """cgan / cdcgan: G step (random labels) then D step; L_D = (real + fake) / 2."""
        real, labels, z, fake_labels = self._noise(batch, step, given)
        gradients, g_loss, fake = self._pass("_conditional_g_gradients")(z, fake_labels)
        self.apply_gradients("generator", gradients)
        gradients, values = self._pass("_conditional_d_gradients")(
            real, labels, tf.stop_gradient(fake), fake_labels
        )
        self.apply_gradients("discriminator", gradients)
        return {"g_loss": g_loss, **values}

    def _acgan_step(self, batch, step, given):
        """AC-GAN: G step on 1/2 (BCE + CE) then D step on the nested halves."""
        real, labels, z, fake_labels = self._noise(batch, step, given)
        gradients, g_loss, fake = self._pass("_acgan_g_gradients")(z, fake_labels)
        self.apply_gradients("generator", gradients)
        gradients, values = self._pass("_acgan_d_gradients")(
            real, labels, tf.stop_gradient(fake), fake_labels
        )
        self.apply_gradients("discriminator", gradients)
        return {"g_loss": g_loss, **values}

    def _critic_step(self, batch, step, given):
        """WGAN-GP critic update: D(G(z, y)) - D(x, y) + lambda GP, fakes with the real labels."""
        real, labels, z, _ = self._noise(batch, step, given)
        if given.get("alpha") is not None:
            alpha = self.replica_rows(lambda count: given["alpha"])
        else:
            alpha_seed = step_seed(self.config.seed, SEED_ALPHA, step)
            alpha = self.replica_rows(
                lambda count: tf.random.stateless_uniform((count,), alpha_seed)
            )
        gradients, values = self._pass("_critic_gradients")(real, labels, z, alpha)
        self.apply_gradients("discriminator", gradients)
        return values

    def _wgan_generator_step(self, batch, step, given):
        _, labels, z, _ = self._noise(batch, step, given)
        gradients, g_loss = self._pass("_wgan_g_gradients")(z, labels)
        self.apply_gradients("generator", gradients)
        return {"g_loss": g_loss}

    def _compile(self, name, step_fn, advance: bool):
        if name not in self._compiled:

            @tf.function
            def compiled(batch, given):
                step = self.step + 1 if advance else self.step
                values = self.strategy.run(step_fn, args=(batch, step, given))
                if advance:
                    self.step.assign(step)
                return self.reduce(values)

            self._compiled[name] = compiled
        return self._compiled[name]

    def train_step(self, batch, z=None, labels=None, alpha=None) -> dict:
        """One iteration; for ``cwgan_gp`` a critic update plus a G update every n_critic.

        Args:
            batch: ``{"image": [global batch, H, W, 3], "label": [global batch]}`` (arrays or
                tensors), or a batch of ``strategy.experimental_distribute_dataset``.
            z: optional latent vectors [global batch, z_dim] in place of the draw from
                (seed, step); every update of the iteration uses them.
            labels: optional class labels [global batch] of the generated images of the G
                and D updates (cgan, cdcgan, acgan) in place of the draw; ``cwgan_gp``
                generates with the real batch's labels, as the original.
            alpha: optional ``cwgan_gp`` interpolation coefficients [global batch] in [0, 1].

        Returns:
            Replica-summed means: ``g_loss`` (before the G update; for ``cwgan_gp`` the last
            G update's when this iteration has none), ``d_loss`` (before the D update) and
            the monitoring values of the model (see the module docstring).
        """
        model = self.config.model
        rows = self.global_batch
        given = {
            "z": self.global_latents(z),
            "labels": self.global_input(labels, "labels", (rows,), tf.int32),
            "alpha": self.global_input(alpha, "alpha", (rows,), tf.float32),
        }
        given = {k: v for k, v in given.items() if v is not None}
        batch = self.distribute_batch(batch)
        if model in ("cgan", "cdcgan"):
            return self._compile("conditional", self._conditional_step, True)(batch, given)
        if model == "acgan":
            return self._compile("acgan", self._acgan_step, True)(batch, given)
        values = self._compile("critic", self._critic_step, True)(batch, given)
        if int(self.step.numpy()) % self.config.n_critic == 0:
            values.update(
                self._compile("generator", self._wgan_generator_step, False)(batch, given)
            )
            self._last_g_loss.assign(values["g_loss"])
        else:
            values["g_loss"] = self._last_g_loss.read_value()
        return values

    # -------------------------------------------------------------------------- samples
    def generate(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """G(z, labels) with moving-statistics BN, [-1, 1]."""
        labels = np.zeros(len(z), np.int32) if labels is None else labels
        images = self.models["generator"](
            tf.constant(z, tf.float32), tf.constant(labels, tf.int32), training=False
        )
        return np.asarray(to_float32(images))

    def write_epoch_samples(self, epoch: int, step: int) -> list[str]:
        """One fixed-z grid per class: ``samples/<class>_{step}.png`` (same z for all classes)."""
        if not self.chief:
            return []
        sample_dir = os.path.join(self.config.save_dir, "samples")
        paths = []
        for index, name in enumerate(self.class_names):
            images = np.concatenate(
                [
                    self.generate(
                        self.sample_z[i : i + self.config.batch_size_eval],
                        np.full(
                            len(self.sample_z[i : i + self.config.batch_size_eval]), index, np.int32
                        ),
                    )
                    for i in range(0, len(self.sample_z), self.config.batch_size_eval)
                ]
            )
            paths.append(
                self.save_sample_grid(
                    os.path.join(sample_dir, f"{name}_{step}.png"),
                    images,
                    self.config.sample_H,
                    self.config.sample_W,
                    tag=f"Samples/{name}",
                    step=step,
                )
            )
        self.write_sample_page(
            sample_dir, f"{self.config.model} samples per class (fixed z, newest first)"
        )
        return paths
