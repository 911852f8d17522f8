"""IPCGAN training (Wang et al., CVPR 2018) as in the authors' ``age_lsgan_transfer.py``.

One step on one batch (source faces s, real faces x of target group t, wrong group f):

1. Discriminator update on ``w_gan * 1/2 * [mean((D(x, t) - 1)^2) + 1/2 * (mean(D(x, f)^2)
   + mean(D(G(s, t), t)^2))]``.
2. Generator update, same batch, on ``w_gan * 1/2 * mean((D(G(s, t), t) - 1)^2)
   + w_fea * sum((phi(G'(s, t)) - phi(s))^2) + w_age * CE(age(G'(s, t)), t)`` where phi is a
   frozen AlexNet feature layer (conv5), ``age`` the frozen age head and G' the generator
   output mapped to 0..255, resized 128 -> 227 with TF1 legacy bilinear and mean-subtracted.

Two Adam optimisers (lr 1e-3, beta1 0.5, beta2 0.999, epsilon 1e-8), no schedule. Batch
norms use batch statistics in every call and update their moving averages (decay 0.9, TF1's
zero-debiased EMA unless ``bn_zero_debias=False``).
Per-example losses are averaged over the global batch with `tf.nn.compute_average_loss`.

Batch-norm statistics, as the original: it groups all 52 moving-average updates of the graph
(17 generator batch norms, and 3 discriminator batch norms x 3 discriminator calls, each for
mean and variance) into both its D and its G training op. So every update recomputes G(s, t)
and the three discriminator calls D(x, t), D(x, f), D(G(s, t), t) in training mode and moves
every average once per call:

* D update (weights before the update): G's averages once; D's three times, in the order
  D(x, t), D(x, f), D(G(s, t), t);
* G update (D already updated, G not yet): G's averages once; D's three times, same order.

G's averages thus move twice and D's six times per iteration. The original's ``tf.group``
leaves the order of the three D updates inside one ``session.run`` unspecified; this trainer
uses the order the original builds the calls in. The G update runs D(x, t) and D(x, f) only
for these statistics (their values enter no loss). ``mirror_d_statistics=False`` skips those
two calls (4 D updates per iteration; the statistics then follow only the calls the losses
need).

Checkpoints hold both models, both optimisers and the step (and the auxiliary nets when
they were randomly initialised); the batch of step k is a function of (seed, k), so a
resumed run continues exactly. The step itself draws no random numbers.

Scale: ``batch_size`` is the global batch, split evenly over the replicas of ``--strategy``
(``synchronized_bn`` makes batch statistics global as on the original's single device).
``mixed_precision`` builds G and D with the ``mixed_float16`` policy (the frozen AlexNet and
age head stay float32; G's output is cast to float32 before them and before every loss) and
wraps both Adams in dynamic loss-scale optimizers. ``xla`` jit-compiles each replica's
forward/backward passes of D and of G; the optimiser updates stay outside. Every step's
losses are checked for NaN/Inf before anything of the step is saved, and Ctrl-C stops the
run between steps after saving it.
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
from facegan_tf.data.ipcgan_lists import (
    IPCGANLists,
    IPCGANSampler,
    condition_batch,
    load_ipcgan_lists,
    training_dataset,
)
from facegan_tf.networks.alexnet import (
    FEATURE_LAYERS,
    build_age_head,
    build_alexnet,
    pool5_size,
)
from facegan_tf.networks.ipcgan import build_discriminator, build_generator
from facegan_tf.training import guards, precision
from facegan_tf.training.checkpointing import (
    TrainingCheckpoint,
    read_run_info,
    restore_models,
)
from facegan_tf.training.optimizers import TF1Adam, adam_moments
from facegan_tf.training.progress import ProgressBar
from facegan_tf.training.samples import save_grid, write_gallery
from facegan_tf.training.stats import StatsWriter
from facegan_tf.training.strategy import (
    checkpoint_directory,
    discard_worker_checkpoint,
    is_chief,
    make_strategy,
    weights_fingerprint,
)

logger = logging.getLogger(__name__)

KIND = "ipcgan"
#: Config fields that fix the variables of G and D.
ARCHITECTURE_FIELDS = (
    "g_base_filters", "num_blocks", "age_groups", "d_base_filters", "d_output_channels",
)


@dataclasses.dataclass(frozen=True)
class IPCGANConfig:
    """Resolved settings of an IPCGAN run; defaults equal the released run's flags."""

    list_dir: str = "./data/ipcgan_lists"
    image_root: str = ""
    source_file: str | None = None
    label_pair_file: str | None = None
    learning_rate: float = 0.001
    beta1: float = 0.5
    adam_epsilon: float = 1e-8
    batch_size: int = 32
    image_size: int = 128
    age_groups: int = 5
    max_steps: int = 200000
    gan_loss_weight: float = 75.0
    fea_loss_weight: float = 0.5e-4
    age_loss_weight: float = 30.0
    fea_layer_name: str = "conv5"
    checkpoint_dir: str = "./checkpoints/age/0_conv5_lsgan_transfer_g75_0.5f-4_a30"
    sample_dir: str = "age/0_conv5_lsgan_transfer_g75_0.5f-4_a30"
    log_dir: str | None = None
    alexnet_pretrained_model: str = "pre_trained/alexnet.model-292000"
    age_pretrained_model: str = "pre_trained/age_classifier.model-300000"
    source_checkpoint_dir: str | None = None
    g_base_filters: int = 32
    num_blocks: int = 6
    d_base_filters: int = 64
    d_output_channels: int = 512
    alexnet_conv_filters: tuple = (96, 256, 384, 384, 256)
    alexnet_fc_units: int = 4096
    alexnet_input_size: int = 227
    val_interval: int = 5000
    save_interval: int = 10000
    log_freq: int = 10
    max_to_keep: int = 5
    seed: int = 0
    strategy: str = "default"
    synchronized_bn: bool = False
    mixed_precision: bool = False
    xla: bool = False
    bn_zero_debias: bool = True
    mirror_d_statistics: bool = True

    def __post_init__(self):
        positive = (
            "batch_size", "image_size", "max_steps", "g_base_filters", "d_base_filters",
            "d_output_channels", "alexnet_fc_units", "val_interval", "save_interval",
            "log_freq", "max_to_keep",
        )
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"--{name} must be a positive integer. Received: {name}={value!r}")
        if self.age_groups < 2:
            raise ValueError(f"--age_groups must be >= 2. Received: age_groups={self.age_groups}")
        if self.num_blocks < 0:
            raise ValueError(f"--num_blocks must be >= 0. Received: num_blocks={self.num_blocks}")
        if self.image_size % 8:
            raise ValueError(
                "--image_size must be a multiple of 8 (generator /4, discriminator /8). "
                f"Received: image_size={self.image_size}"
            )
        if self.fea_layer_name not in FEATURE_LAYERS:
            raise ValueError(
                f"--fea_layer_name must be one of {FEATURE_LAYERS}. Received: "
                f"fea_layer_name={self.fea_layer_name!r}"
            )
        for name in ("gan_loss_weight", "fea_loss_weight", "age_loss_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name} must be >= 0. Received: {name}={getattr(self, name)}")
        if self.learning_rate <= 0 or not 0 < self.beta1 < 1 or self.adam_epsilon <= 0:
            raise ValueError(
                "--learning_rate and the Adam epsilon must be > 0 and beta1 in (0, 1). Received: "
                f"learning_rate={self.learning_rate}, beta1={self.beta1}, "
                f"adam_epsilon={self.adam_epsilon}"
            )
        pool5_size(tuple(self.alexnet_conv_filters), self.alexnet_input_size)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["alexnet_conv_filters"] = list(self.alexnet_conv_filters)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> IPCGANConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "alexnet_conv_filters" in known:
            known["alexnet_conv_filters"] = tuple(known["alexnet_conv_filters"])
        return cls(**known)

    def architecture(self) -> dict:
        return {name: getattr(self, name) for name in ARCHITECTURE_FIELDS}


def build_ipcgan_models(config: IPCGANConfig) -> dict[str, keras.Model]:
    """Generator and discriminator of a run, built."""
    return {
        "generator": build_generator(
            config.g_base_filters, config.num_blocks, config.age_groups, config.image_size,
            config.synchronized_bn, bn_zero_debias=config.bn_zero_debias,
        ),
        "discriminator": build_discriminator(
            config.d_base_filters, config.d_output_channels, config.age_groups,
            config.image_size, config.synchronized_bn, bn_zero_debias=config.bn_zero_debias,
        ),
    }


#: Kinds of our checkpoint folders that hold each auxiliary model.
PRETRAINED_KINDS = {
    "alexnet": ("ipcgan_alexnet", "ipcgan_alexnet_age"),
    "age_head": ("ipcgan_age_classifier", "ipcgan_alexnet_age"),
}


def load_pretrained(path: str, which: str) -> keras.Model:
    """``alexnet`` or ``age_head`` from a legacy TF1 checkpoint (prefix or folder) or from a
    checkpoint folder of ours that holds that model (converted, or trained by
    ``train_age_classifier``)."""
    if which not in ("alexnet", "age_head"):
        raise ValueError(f"which must be 'alexnet' or 'age_head'. Received: {which=}")
    if os.path.isdir(path) and read_run_info(path) is not None:
        info = read_run_info(path)
        config = info["config"]
        allowed = PRETRAINED_KINDS[which]
        exported = os.path.join(path, f"{which}.keras")
        if info["kind"] in allowed and os.path.isfile(exported):
            return keras.models.load_model(exported)
        if info["kind"] not in allowed:
            from facegan_tf.training.checkpointing import CheckpointKindError

            raise CheckpointKindError(
                f"{path!r} holds a {info['kind']!r} checkpoint; a pretrained {which} comes from "
                f"a checkpoint of kind {' or '.join(allowed)}."
            )
        if which == "alexnet":
            model = build_alexnet(
                tuple(config["conv_filters"]), config["fc_units"], config["embedding_units"],
                config["num_identities"], config.get("input_size", 227),
            )
        else:
            model = build_age_head(
                config.get("pool5_features")
                or pool5_size(tuple(config["conv_filters"]), config.get("input_size", 227)),
                config.get("age_fc_units", config.get("fc_units")), config["age_groups"],
            )
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            raise FileNotFoundError(f"{path!r} has a run file but no checkpoint.")
        try:
            restore_models(latest, **{which: model})
        except ValueError as error:
            raise ValueError(
                f"{path!r} (kind {info['kind']!r}) holds no usable {which!r} model: {error}"
            ) from error
        return model
    from facegan_tf.migrate import load_legacy

    kind = "ipcgan_alexnet" if which == "alexnet" else "ipcgan_age_classifier"
    return load_legacy(kind, path)[which]


def _adam(config: IPCGANConfig) -> keras.optimizers.Adam:
    return TF1Adam(
        learning_rate=config.learning_rate, beta_1=config.beta1, beta_2=0.999,
        epsilon=config.adam_epsilon,
    )


class IPCGANTrainer:
    """Builds models, frozen auxiliary nets and optimisers under a strategy and trains them."""

    def __init__(self, config: IPCGANConfig, strategy: tf.distribute.Strategy | None = None):
        self.config = config
        self.strategy = strategy or make_strategy(config.strategy)
        self.replicas = self.strategy.num_replicas_in_sync
        if config.batch_size % self.replicas:
            raise ValueError(
                f"--batch_size (the global batch) must be a multiple of the {self.replicas} "
                f"replicas. Received: batch_size={config.batch_size}"
            )
        self.global_batch = config.batch_size
        self.chief = is_chief(self.strategy)
        extra = {}
        with self.strategy.scope():
            keras.utils.set_random_seed(config.seed)
            with precision.dtype_policy(config.mixed_precision):
                self.models = build_ipcgan_models(config)
            if config.source_checkpoint_dir:
                self._transfer(config.source_checkpoint_dir)
            self.alexnet, random_alexnet = self._auxiliary("alexnet")
            self.age_head, random_age = self._auxiliary("age_head")
            if random_alexnet:
                extra["alexnet"] = self.alexnet
            if random_age:
                extra["age_head"] = self.age_head
            self.alexnet.trainable = False
            self.age_head.trainable = False
            self.g_optimizer = precision.loss_scaled(_adam(config), config.mixed_precision)
            self.d_optimizer = precision.loss_scaled(_adam(config), config.mixed_precision)
            self.g_variables = self.models["generator"].trainable_variables
            self.d_variables = self.models["discriminator"].trainable_variables
            self.g_optimizer.build(self.g_variables)
            self.d_optimizer.build(self.d_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self._checkpoint_objects = {
            "step": self.step,
            **precision.checkpoint_optimizers(
                g_optimizer=self.g_optimizer, d_optimizer=self.d_optimizer
            ),
            **self.models,
            **extra,
        }
        self._checkpoint_folder = checkpoint_directory(config.checkpoint_dir, self.chief)
        self.checkpoint = self._make_checkpoint(self._checkpoint_objects)
        self._train_step = None
        self._last_saved = -1  # the step of the checkpoint on disk that equals the state
        # Without --xla the passes are traced inline in the step: a nested tf.function cannot
        # hold the cross-replica all-reduce of synchronized batch norm.
        self._d_gradients = self._discriminator_gradients
        self._g_gradients = self._generator_gradients
        if config.xla:
            if config.synchronized_bn and self.replicas > 1:
                raise ValueError(
                    "--xla cannot compile the cross-replica batch statistics of "
                    "--synchronized_bn on several replicas. Received: xla=True, "
                    f"synchronized_bn=True, replicas={self.replicas}"
                )
            self._d_gradients = tf.function(self._discriminator_gradients, jit_compile=True)
            self._g_gradients = tf.function(self._generator_gradients, jit_compile=True)

    def _make_checkpoint(self, objects: dict) -> TrainingCheckpoint:
        return TrainingCheckpoint(
            self._checkpoint_folder, KIND, self.config.to_dict(),
            max_to_keep=self.config.max_to_keep, enabled=self.chief, **objects,
        )

    def _auxiliary(self, which: str):
        config = self.config
        if which == "alexnet":
            path = config.alexnet_pretrained_model
        else:
            path = config.age_pretrained_model
        if path:
            model = load_pretrained(path, which)
            expected = pool5_size(tuple(config.alexnet_conv_filters), config.alexnet_input_size)
            if which == "age_head" and model.age_groups != config.age_groups:
                raise ValueError(
                    f"--age_pretrained_model {path!r} classifies {model.age_groups} age groups. "
                    f"Received: age_groups={config.age_groups}"
                )
            if which == "alexnet":
                got = pool5_size(model.conv_filters, config.alexnet_input_size)
                if got != expected:
                    raise ValueError(
                        f"--alexnet_pretrained_model {path!r} has conv widths "
                        f"{model.conv_filters}, the run expects {config.alexnet_conv_filters}."
                    )
            return model, False
        logger.warning(
            "No --%s given: the frozen %s is randomly initialised (smoke tests and demos only).",
            "alexnet_pretrained_model" if which == "alexnet" else "age_pretrained_model", which,
        )
        keras.utils.set_random_seed(config.seed + (1 if which == "alexnet" else 2))
        if which == "alexnet":
            return build_alexnet(
                tuple(config.alexnet_conv_filters), config.alexnet_fc_units, 256, 2000,
                config.alexnet_input_size,
            ), True
        features = pool5_size(tuple(config.alexnet_conv_filters), config.alexnet_input_size)
        return build_age_head(features, config.alexnet_fc_units, config.age_groups), True

    def _transfer(self, folder: str) -> None:
        """Initialises G and D from another IPCGAN checkpoint (the original's "transfer")."""
        from facegan_tf.training.ipcgan_inference import load_ipcgan_models

        source, _ = load_ipcgan_models(folder, image_size=self.config.image_size)
        for name, model in self.models.items():
            if len(model.weights) != len(source[name].weights) or any(
                tuple(a.shape) != tuple(b.shape)
                for a, b in zip(model.weights, source[name].weights)
            ):
                raise ValueError(
                    f"--source_checkpoint_dir {folder!r}: its {name} has other widths than this "
                    "run's."
                )
            for target, value in zip(model.weights, source[name].weights):
                target.assign(value)

    # ---------------------------------------------------------------------------- step
    def _features(self, images):
        return self.alexnet.features(images, self.config.fea_layer_name)

    def _age_logits(self, images):
        return self.age_head(self.alexnet.pool5(images))

    def _average(self, per_example):
        return tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch)

    def _conditions(self, batch):
        size, groups = self.config.image_size, self.config.age_groups
        return (
            condition_batch(batch["true_group"], groups, size),
            condition_batch(batch["true_group"], groups, size // 2),
            condition_batch(batch["false_group"], groups, size // 2),
        )

    def _discriminator_gradients(self, batch):
        """Forward and backward of D's objective on real, wrong-group and generated faces.

        Moves G's averages once and D's three times (D(x, t), D(x, f), D(G(s, t), t)).
        """
        generator, discriminator = self.models["generator"], self.models["discriminator"]
        cond_g, cond_true, cond_false = self._conditions(batch)
        as32 = precision.to_float32
        fake = generator([batch["source"], cond_g], training=True)
        with tf.GradientTape() as tape:
            d_real = as32(discriminator([batch["real"], cond_true], training=True))
            d_wrong = as32(discriminator([batch["real"], cond_false], training=True))
            d_fake = as32(discriminator([fake, cond_true], training=True))
            d_per_example = losses.ipcgan_discriminator_loss(
                d_real, d_wrong, d_fake, self.config.gan_loss_weight
            )
            d_loss = self._average(d_per_example)
            scaled_loss = self.d_optimizer.scale_loss(d_loss)
        values = {
            "d_loss": d_loss,
            "d_loss_real": self._average(losses.lsgan_loss(d_real, 1.0)),
            "d_loss_fake1": self._average(losses.lsgan_loss(d_wrong, 0.0)),
            "d_loss_fake2": self._average(losses.lsgan_loss(d_fake, 0.0)),
        }
        return tape.gradient(scaled_loss, self.d_variables), values

    def _generator_gradients(self, batch):
        """Forward and backward of G's adversarial + identity + age objective.

        Moves G's averages once and, with ``mirror_d_statistics``, D's three times
        (D(x, t) and D(x, f) run for their statistics only, then D(G(s, t), t)); else once.
        ``batch["g_source"]`` / ``batch["g_source_alexnet"]``, when given, replace the
        sources of this update (the original's G update dequeued its own source batch).
        """
        config = self.config
        generator, discriminator = self.models["generator"], self.models["discriminator"]
        cond_g, cond_true, cond_false = self._conditions(batch)
        as32 = precision.to_float32
        source = batch.get("g_source", batch["source"])
        source_alexnet = batch.get("g_source_alexnet", batch["source_alexnet"])
        if config.mirror_d_statistics:
            discriminator([batch["real"], cond_true], training=True)
            discriminator([batch["real"], cond_false], training=True)
        source_features = tf.stop_gradient(self._features(source_alexnet))
        with tf.GradientTape() as tape:
            fake = as32(generator([source, cond_g], training=True))
            d_fake = as32(discriminator([fake, cond_true], training=True))
            terms = losses.ipcgan_generator_losses(
                fake, d_fake, source_features, batch["true_group"], self._features,
                self._age_logits, config.gan_loss_weight, config.fea_loss_weight,
                config.age_loss_weight, config.alexnet_input_size,
            )
            g_loss = self._average(terms["total"])
            scaled_loss = self.g_optimizer.scale_loss(g_loss)
        values = {
            "g_loss": self._average(terms["adversarial"]),
            "fea_loss": self._average(terms["identity"]),
            "age_loss": self._average(terms["age"]),
            "g_total_loss": g_loss,
        }
        return tape.gradient(scaled_loss, self.g_variables), values

    def _step_fn(self, batch):
        """One replica's step: D update, then G update on the same batch."""
        d_gradients, d_values = self._d_gradients(batch)
        self.d_optimizer.apply_gradients(zip(d_gradients, self.d_variables))
        g_gradients, g_values = self._g_gradients(batch)
        self.g_optimizer.apply_gradients(zip(g_gradients, self.g_variables))
        return {**d_values, **g_values}

    def train_step(self, distributed_batch) -> dict:
        """One training iteration on the given global batch: the D update, then the G update.

        Args:
            distributed_batch: a dict ``source`` [B, S, S, 3] (pixel - mean), ``source_alexnet``
                [B, A, A, 3] (pixel - mean), ``real`` [B, S, S, 3] in [-1, 1], ``true_group``
                and ``false_group`` [B] int32 (optionally ``g_source``, ``g_source_alexnet``
                for the G update); numpy or tensors, or a distributed batch under a
                multi-replica strategy.

        Returns:
            scalar tensors under the original graph's names (weighted as there): ``d_loss``,
            ``d_loss_real``, ``d_loss_fake1``, ``d_loss_fake2`` (the three unweighted LSGAN
            means), ``g_loss`` (adversarial term), ``fea_loss``, ``age_loss``, and
            ``g_total_loss`` (g_loss + fea_loss + age_loss, what G minimises). `unweighted`
            gives the original's log-line values.
        """
        if self._train_step is None:

            @tf.function
            def train_step(batch):
                per_replica = self.strategy.run(self._step_fn, args=(batch,))
                self.step.assign_add(1)
                return {
                    name: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                    for name, value in per_replica.items()
                }

            self._train_step = train_step
        return self._train_step(distributed_batch)

    def unweighted(self, values: dict) -> dict:
        """The original's log line: each loss divided by its weight."""
        config = self.config

        def divide(value, weight):
            return float(value) / weight if weight else 0.0

        return {
            "d_loss": divide(values["d_loss"], config.gan_loss_weight),
            "g_loss": divide(values["g_loss"], config.gan_loss_weight),
            "fea_loss": divide(values["fea_loss"], config.fea_loss_weight),
            "age_loss": divide(values["age_loss"], config.age_loss_weight),
        }

    def log_line(self, step: int, values: dict, when: str | None = None) -> str:
        """The original's per-step print: ``'<time>: step <k>, d_loss = %.3f, g_loss = %.3f,
        fea_loss=%.3f, age_loss=%.3f'`` with the unweighted losses (``step`` counts from 0
        there: the k-th iteration prints k - 1)."""
        import datetime

        u = self.unweighted(values)
        when = when or str(datetime.datetime.now())
        return (
            f"{when}: step {step}, d_loss = {u['d_loss']:.3f}, g_loss = {u['g_loss']:.3f}, "
            f"fea_loss={u['fea_loss']:.3f}, age_loss={u['age_loss']:.3f}"
        )

    # -------------------------------------------------------------- training surface
    @property
    def learning_rate(self) -> float:
        """The learning rate in force (constant; both Adams use it, as the original)."""
        return float(precision.inner_optimizer(self.g_optimizer).learning_rate.numpy())

    def optimizer_moments(self, which: str, variable_path: str) -> dict[str, np.ndarray]:
        """Adam's first (``"m"``) and second (``"v"``) moment of one trainable variable.

        Args:
            which: ``"generator"`` or ``"discriminator"`` (the optimiser of that model).
            variable_path: the variable's ``path``, e.g. ``"generator/conv1/kernel"``.
        """
        return adam_moments(
            {"generator": self.g_optimizer, "discriminator": self.d_optimizer},
            {"generator": self.g_variables, "discriminator": self.d_variables},
            which,
            variable_path,
        )

    # --------------------------------------------------------------------- resuming
    def restore(self) -> str:
        """Restores the latest checkpoint of ``checkpoint_dir`` after checking the widths.

        A folder converted from the original's ``acgan.model-N`` (``convert_tf1_checkpoint
        --kind=ipcgan``) restores G and D, batch-norm debias state included; the step starts
        at 0 and both Adams fresh, as the original's own restart (its checkpoints hold no
        optimiser state and its step counter restarts at 0).
        """
        info = read_run_info(self.config.checkpoint_dir)
        if info is not None and info.get("kind") == KIND and "converted_from" in info.get(
            "config", {}
        ):
            return self._restore_converted(info)
        if info is not None and info.get("kind") == KIND:
            saved = IPCGANConfig.from_dict(info["config"]).architecture()
            wanted = self.config.architecture()
            differing = {k: (saved[k], wanted[k]) for k in saved if saved[k] != wanted[k]}
            if differing:
                details = ", ".join(f"{k}: checkpoint {a!r} vs flags {b!r}"
                                    for k, (a, b) in differing.items())
                raise ValueError(
                    f"The checkpoint in {self.config.checkpoint_dir!r} was made with other "
                    f"widths ({details}). Use the same flags or another --checkpoint_dir."
                )
        from facegan_tf.training.ipcgan_inference import (
            continue_plain_averages,
            lacks_debias_state,
            without_debias_state,
        )

        path = tf.train.latest_checkpoint(self.config.checkpoint_dir)
        if path is not None and lacks_debias_state(path):
            # Written before the batch norms kept their debias state: restore the rest and
            # continue the plain averages.
            objects = {
                **self._checkpoint_objects,
                **{name: without_debias_state(model) for name, model in self.models.items()},
            }
            restored = precision.restore_in_either_precision(
                self.config.checkpoint_dir, path, self._make_checkpoint(objects), objects,
                self._make_checkpoint,
            )
            continue_plain_averages(self.models)
        else:
            restored = precision.restore_in_either_precision(
                self.config.checkpoint_dir,
                None,
                self.checkpoint,
                self._checkpoint_objects,
                self._make_checkpoint,
            )
        self._last_saved = int(self.step.numpy())
        return restored

    def _restore_converted(self, info: dict) -> str:
        saved = info["config"]
        wanted = self.config.architecture()
        differing = {
            k: (saved.get(k), wanted[k]) for k in wanted if saved.get(k) != wanted[k]
        }
        if differing:
            details = ", ".join(
                f"{k}: checkpoint {a!r} vs flags {b!r}" for k, (a, b) in differing.items()
            )
            raise ValueError(
                f"The converted checkpoint in {self.config.checkpoint_dir!r} has other widths "
                f"({details}). Use the same flags or another --checkpoint_dir."
            )
        path = tf.train.latest_checkpoint(self.config.checkpoint_dir)
        if path is None:
            raise FileNotFoundError(
                f"No checkpoint to resume from in {self.config.checkpoint_dir!r}."
            )
        restore_models(path, **self.models)
        return path

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

    def _save_unsaved(self) -> str | None:
        """Saves unless the current step is already the latest checkpoint; returns it."""
        if int(self.step.numpy()) == self._last_saved:
            return tf.train.latest_checkpoint(self.config.checkpoint_dir)
        return self.save()

    # ------------------------------------------------------------------------ loop
    def fit(
        self, lists: IPCGANLists | None = None, progress: bool = True,
        until_step: int | None = None, log_lines=None,
    ) -> dict:
        """Trains until ``max_steps`` (or ``until_step``, if smaller); writes stats, samples
        and checkpoints, and saves at the end. ``log_lines``, when given, receives the
        original's log line (`log_line`) of every logged step."""
        config = self.config
        last_step = min(config.max_steps, until_step or config.max_steps)
        if lists is None:
            lists = load_ipcgan_lists(
                config.list_dir, config.image_root, config.age_groups, "train",
                config.source_file, config.label_pair_file, config.seed,
            )
        if lists.age_groups != config.age_groups:
            raise ValueError(
                f"The data set has {lists.age_groups} age groups. Received: "
                f"age_groups={config.age_groups}"
            )
        sampler = IPCGANSampler(lists, self.global_batch, config.seed)
        start = int(self.step.numpy())
        remaining = max(last_step - start, 0)
        log_dir = config.log_dir or os.path.join(config.checkpoint_dir, "logs")
        stats = StatsWriter(log_dir, enabled=self.chief)
        sample_sources = self._sample_sources(lists)
        bar = ProgressBar(remaining, label="ipcgan", unit="step", enabled=self.chief and progress)
        started = time.perf_counter()
        last: dict = {}
        if remaining:
            dataset = training_dataset(
                sampler, start, config.image_size, config.alexnet_input_size, remaining
            )
            current_step = lambda: int(self.step.numpy())  # noqa: E731
            try:
                with guards.interruptible(self._save_unsaved, current_step) as request:
                    for batch in self.strategy.experimental_distribute_dataset(dataset):
                        step_start = time.perf_counter()
                        values = self.train_step(batch)
                        step = current_step()
                        seconds = time.perf_counter() - step_start
                        losses_now = {k: float(v) for k, v in values.items()}
                        guards.check_finite(step, losses_now, lambda: self.checkpoint.latest)
                        if step % config.log_freq == 0 or step == last_step or step == start + 1:
                            last = losses_now
                            unweighted = self.unweighted(losses_now)
                            stats.write(step, {
                                **{f"Loss/{k}": v for k, v in last.items()},
                                **{f"Unweighted/{k}": v for k, v in unweighted.items()},
                                "images_per_second": self.global_batch / max(seconds, 1e-9),
                            })
                            if log_lines is not None:
                                log_lines(self.log_line(step - 1, losses_now))
                        bar.update(1, d=losses_now["d_loss"], g=losses_now["g_loss"])
                        if step % config.val_interval == 0:
                            self.write_samples(sample_sources, step, stats)
                        if step % config.save_interval == 0:
                            self.save()
                        if step >= last_step:
                            break
                        request.raise_if_requested()
                    request.raise_if_requested()
            finally:
                bar.close()
        step = int(self.step.numpy())
        if step != self._last_saved or not tf.train.latest_checkpoint(config.checkpoint_dir):
            self.save()
        self.write_samples(sample_sources, step, stats)
        stats.close()
        return {
            "step": step,
            "seconds": time.perf_counter() - started,
            "losses": last,
            "checkpoint": tf.train.latest_checkpoint(config.checkpoint_dir),
            "weights_sha256": weights_fingerprint(self.models),
        }

    # --------------------------------------------------------------------- samples
    def _sample_sources(self, lists: IPCGANLists) -> np.ndarray:
        from facegan_tf.data.images import read_image
        from facegan_tf.data.ipcgan_lists import source_images

        count = min(self.global_batch, len(lists.sources))
        images = []
        for path in lists.sources[:count]:
            small, _ = source_images(
                tf.constant(read_image(path)), self.config.image_size,
                self.config.alexnet_input_size,
            )
            images.append(small.numpy())
        return np.stack(images).astype(np.float32)

    def write_samples(
        self, sources: np.ndarray, step: int, stats: StatsWriter | None = None
    ) -> None:
        """``<sample_dir>/<step>/source.png`` and ``test_<j>.png`` grids (batch-statistics BN,
        no statistics update), plus ``<sample_dir>/index.html``; with ``stats``, also
        TensorBoard images ``samples/source`` and ``samples/group_<j>`` (in [-1, 1])."""
        if not self.chief:
            return
        config = self.config
        folder = os.path.join(config.sample_dir, str(step))
        generator = self.models["generator"]
        count = len(sources)
        cols = min(8, count)
        rows = -(-count // cols)
        scale = max(1, 128 // config.image_size)
        pixels = np.clip(sources + np.asarray(losses.IPCGAN_MEAN_RGB, np.float32), 0, 255)
        save_grid(os.path.join(folder, "source.png"), np.round(pixels).astype(np.uint8),
                  rows, cols, scale)
        images = {"samples/source": pixels / 127.5 - 1.0}
        for group in range(config.age_groups):
            condition = condition_batch(np.full([count], group), config.age_groups,
                                        config.image_size)
            output = np.asarray(
                generator([sources, condition], training=True, update_statistics=False),
                np.float32,
            )
            save_grid(os.path.join(folder, f"test_{group}.png"), output, rows, cols, scale)
            images[f"samples/group_{group}"] = output
        if stats is not None:
            stats.write_images(step, images)
        steps = sorted(
            (int(name) for name in os.listdir(config.sample_dir) if name.isdigit()), reverse=True
        )
        write_gallery(
            os.path.join(config.sample_dir, "index.html"),
            "IPCGAN samples (source, then target age groups 0..N-1)",
            ["source"] + [f"group {g}" for g in range(config.age_groups)],
            [
                [os.path.join(config.sample_dir, str(s), "source.png")]
                + [os.path.join(config.sample_dir, str(s), f"test_{g}.png")
                   for g in range(config.age_groups)]
                for s in steps
            ],
            captions=[f"step {s}" for s in steps],
        )
