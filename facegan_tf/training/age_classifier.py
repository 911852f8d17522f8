"""Training IPCGAN's auxiliary AlexNet: identity and age heads on labelled faces.

The released ``alexnet.model-292000`` and ``age_classifier.model-300000`` of the IPCGAN
authors (Wang et al., CVPR 2018) are no longer downloadable and their training code was never
published, so this trainer is ours. It trains the AlexNet trunk (Krizhevsky et al., 2012) with
two softmax heads on the same flattened pool5 features:

``loss = CE(age_head(pool5(x)), group) + w_id * CE(new_2(fc7(x)), identity)``

with the age group given by the ``train_age_group_<k>.txt`` list a face is in and, when
``identity_loss_weight`` > 0, the identity parsed from CACD file names
``<age>_<First>_<Last>_<NNNN>.jpg``. Inputs: TF1 legacy bilinear resize to 227 px, minus
[104, 117, 124] (the IPCGAN convention). One Adam optimiser over trunk and heads. The result
(kind ``ipcgan_alexnet_age``) serves as both ``--alexnet_pretrained_model`` and
``--age_pretrained_model`` of ``train_ipcgan``.

Scale: ``batch_size`` is the global batch, split over the replicas of ``--strategy``.
``mixed_precision`` builds both nets with the ``mixed_float16`` policy (float32 variables),
casts logits to float32 before the cross-entropies and wraps Adam in a dynamic loss-scale
optimizer; ``xla`` jit-compiles each replica's forward/backward pass (the update stays
outside). Every step's losses are checked for NaN/Inf before anything of the step is saved;
Ctrl-C stops between steps after saving. The exported ``.keras`` models keep the policy
they were trained with.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time

import keras
import numpy as np
import tensorflow as tf

from facegan_tf.data.ipcgan_lists import decode_path, group_list_name, read_image_list
from facegan_tf.losses import legacy_resize_bilinear
from facegan_tf.networks.alexnet import build_age_head, build_alexnet, pool5_size
from facegan_tf.networks.ipcgan import MEAN_RGB
from facegan_tf.training import guards, precision
from facegan_tf.training.checkpointing import TrainingCheckpoint, read_run_info
from facegan_tf.training.optimizers import TF1Adam, adam_moments
from facegan_tf.training.progress import ProgressBar
from facegan_tf.training.stats import StatsWriter
from facegan_tf.training.strategy import (
    checkpoint_directory,
    discard_worker_checkpoint,
    is_chief,
    make_strategy,
)

KIND = "ipcgan_alexnet_age"
_CACD_NAME = re.compile(r"^(\d+)_(.+)_(\d+)\.[^.]+$")


def cacd_identity(path: str) -> str | None:
    """``First_Last`` from a CACD name ``<age>_<First>_<Last>_<NNNN>.jpg``, else None."""
    match = _CACD_NAME.match(os.path.basename(path))
    return match.group(2) if match else None


@dataclasses.dataclass(frozen=True)
class AgeClassifierConfig:
    """Settings of an AlexNet identity + age training run."""

    list_dir: str = "./data/ipcgan_lists"
    image_root: str = ""
    age_groups: int = 5
    batch_size: int = 32
    learning_rate: float = 1e-4
    beta1: float = 0.9
    adam_epsilon: float = 1e-8
    max_steps: int = 100000
    identity_loss_weight: float = 1.0
    conv_filters: tuple = (96, 256, 384, 384, 256)
    fc_units: int = 4096
    embedding_units: int = 256
    input_size: int = 227
    checkpoint_dir: str = "./checkpoints/pre_trained/alexnet_age"
    log_dir: str | None = None
    save_interval: int = 10000
    log_freq: int = 10
    max_to_keep: int = 3
    seed: int = 0
    strategy: str = "default"
    mixed_precision: bool = False
    xla: bool = False

    def __post_init__(self):
        for name in ("batch_size", "max_steps", "fc_units", "embedding_units", "save_interval",
                     "log_freq", "max_to_keep"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"--{name} must be a positive integer. Received: {name}={value!r}")
        if self.age_groups < 2:
            raise ValueError(f"--age_groups must be >= 2. Received: age_groups={self.age_groups}")
        if self.learning_rate <= 0 or self.identity_loss_weight < 0:
            raise ValueError(
                "--learning_rate must be > 0 and --identity_loss_weight >= 0. Received: "
                f"learning_rate={self.learning_rate}, "
                f"identity_loss_weight={self.identity_loss_weight}"
            )
        pool5_size(tuple(self.conv_filters), self.input_size)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["conv_filters"] = list(self.conv_filters)
        return data


@dataclasses.dataclass(frozen=True)
class LabelledFaces:
    paths: tuple[str, ...]
    groups: np.ndarray
    identities: np.ndarray
    identity_names: tuple[str, ...]


def load_labelled_faces(config: AgeClassifierConfig) -> LabelledFaces:
    """Every face of the ``train_age_group_<k>.txt`` lists with its group (and identity)."""
    paths, groups = [], []
    for group in range(config.age_groups):
        listed, _ = read_image_list(
            os.path.join(config.list_dir, group_list_name("train", group)), config.image_root
        )
        paths += listed
        groups += [group] * len(listed)
    if len(paths) < config.batch_size:
        raise ValueError(
            f"The lists in {config.list_dir!r} hold {len(paths)} faces, fewer than the batch. "
            f"Received: batch_size={config.batch_size}"
        )
    names = [""] * len(paths)
    if config.identity_loss_weight > 0:
        names = [cacd_identity(p) for p in paths]
        bad = [p for p, n in zip(paths, names) if n is None]
        if bad:
            raise ValueError(
                f"{len(bad)} file name(s) are not CACD-style '<age>_<First>_<Last>_<NNNN>.jpg' "
                f"(first: {bad[0]!r}), so identities are unknown. Pass "
                "--identity_loss_weight=0 to train the age head only."
            )
    identity_names = tuple(sorted(set(names)))
    index = {name: i for i, name in enumerate(identity_names)}
    return LabelledFaces(
        tuple(paths), np.asarray(groups, np.int32),
        np.asarray([index[n] for n in names], np.int32), identity_names,
    )


class AgeClassifierTrainer:
    """Trains `AlexNet` + `AgeClassifierHead`; resumable (the batch of step k depends only on
    (seed, k))."""

    def __init__(self, config: AgeClassifierConfig, faces: LabelledFaces | None = None,
                 strategy: tf.distribute.Strategy | None = None):
        self.config = config
        self.faces = faces or load_labelled_faces(config)
        self.strategy = strategy or make_strategy(config.strategy)
        if config.batch_size % self.strategy.num_replicas_in_sync:
            raise ValueError(
                f"--batch_size must be a multiple of the {self.strategy.num_replicas_in_sync} "
                f"replicas. Received: batch_size={config.batch_size}"
            )
        self.chief = is_chief(self.strategy)
        num_identities = max(len(self.faces.identity_names), 1)
        features = pool5_size(tuple(config.conv_filters), config.input_size)
        with self.strategy.scope():
            keras.utils.set_random_seed(config.seed)
            with precision.dtype_policy(config.mixed_precision):
                self.alexnet = build_alexnet(
                    tuple(config.conv_filters), config.fc_units, config.embedding_units,
                    num_identities, config.input_size,
                )
                self.age_head = build_age_head(features, config.fc_units, config.age_groups)
            self.variables = self.alexnet.trainable_variables + self.age_head.trainable_variables
            self.optimizer = precision.loss_scaled(
                TF1Adam(
                    config.learning_rate, beta_1=config.beta1, epsilon=config.adam_epsilon
                ),
                config.mixed_precision,
            )
            self.optimizer.build(self.variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        run_config = {
            **config.to_dict(),
            "num_identities": num_identities,
            "pool5_features": features,
            "identity_names": list(self.faces.identity_names)[:100000],
        }
        self._run_config = run_config
        self._checkpoint_objects = {
            "step": self.step,
            **precision.checkpoint_optimizers(optimizer=self.optimizer),
            "alexnet": self.alexnet,
            "age_head": self.age_head,
        }
        self._checkpoint_folder = checkpoint_directory(config.checkpoint_dir, self.chief)
        self.checkpoint = self._make_checkpoint(self._checkpoint_objects)
        self._train_step = None
        self._last_saved = -1  # the step of the checkpoint on disk that equals the state
        self._gradients = tf.function(
            self._loss_gradients, jit_compile=True if config.xla else None
        )

    def _make_checkpoint(self, objects: dict) -> TrainingCheckpoint:
        return TrainingCheckpoint(
            self._checkpoint_folder, KIND, self._run_config,
            max_to_keep=self.config.max_to_keep, enabled=self.chief, **objects,
        )

    def batch_indices(self, step: int) -> np.ndarray:
        count, batch = len(self.faces.paths), self.config.batch_size
        indices = []
        for flat in range(step * batch, (step + 1) * batch):
            epoch, position = divmod(flat, count)
            order = np.random.default_rng([self.config.seed, epoch]).permutation(count)
            indices.append(order[position])
        return np.asarray(indices)

    def dataset(self, start: int, steps: int) -> tf.data.Dataset:
        faces, size = self.faces, self.config.input_size

        def records():
            for step in range(start, start + steps):
                for i in self.batch_indices(step):
                    yield os.fsencode(faces.paths[i]), faces.groups[i], faces.identities[i]

        def load(path, group, identity):
            pixels = tf.cast(decode_path(path), tf.float32)[None]
            image = legacy_resize_bilinear(pixels, size)[0] - tf.constant(MEAN_RGB, tf.float32)
            return {"image": image, "group": group, "identity": identity}

        dataset = tf.data.Dataset.from_generator(records, output_signature=(
            tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32),
        ))
        dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return dataset.batch(self.config.batch_size, drop_remainder=True).prefetch(2)

    def _loss_gradients(self, batch):
        """Forward and backward of ``CE(age) + w_id * CE(identity)`` on one replica's batch."""
        def average(per_example):
            return tf.nn.compute_average_loss(per_example, global_batch_size=self.config.batch_size)

        with tf.GradientTape() as tape:
            taps = self.alexnet(batch["image"], training=True)
            age_logits = precision.to_float32(self.age_head(taps["pool5"], training=True))
            age = tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=batch["group"], logits=age_logits
            )
            identity = tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=batch["identity"], logits=precision.to_float32(taps["logits"])
            )
            loss = average(age + self.config.identity_loss_weight * identity)
            scaled_loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled_loss, self.variables)
        correct = tf.cast(tf.equal(tf.argmax(age_logits, -1, output_type=tf.int32),
                                   batch["group"]), tf.float32)
        return gradients, {"loss": loss, "age_loss": average(age),
                           "identity_loss": average(identity), "age_accuracy": average(correct)}

    def _step_fn(self, batch):
        gradients, values = self._gradients(batch)
        self.optimizer.apply_gradients(zip(gradients, self.variables))
        return values

    def train_step(self, batch) -> dict:
        """One Adam step on a global batch ``{"image", "group", "identity"}`` (images 227 px,
        pixel - mean); returns ``loss``, ``age_loss``, ``identity_loss``, ``age_accuracy``."""
        if self._train_step is None:

            @tf.function
            def train_step(batch):
                values = self.strategy.run(self._step_fn, args=(batch,))
                self.step.assign_add(1)
                return {k: self.strategy.reduce("SUM", v, axis=None) for k, v in values.items()}

            self._train_step = train_step
        return self._train_step(batch)

    # -------------------------------------------------------------- training surface
    @property
    def models(self) -> dict:
        """``{"alexnet": AlexNet, "age_head": AgeClassifierHead}`` (the checkpoint's keys)."""
        return {"alexnet": self.alexnet, "age_head": self.age_head}

    @property
    def learning_rate(self) -> float:
        """The learning rate in force (constant)."""
        return float(precision.inner_optimizer(self.optimizer).learning_rate.numpy())

    def optimizer_moments(self, which: str, variable_path: str) -> dict[str, np.ndarray]:
        """Adam's first (``"m"``) and second (``"v"``) moment of one trainable variable.

        Args:
            which: ``"optimizer"`` (the one Adam over trunk and heads).
            variable_path: the variable's ``path``, e.g. ``"alexnet/conv5/kernel"``.
        """
        return adam_moments(
            {"optimizer": self.optimizer}, {"optimizer": self.variables}, which, variable_path
        )

    def restore(self) -> str:
        """Restores the latest checkpoint of ``checkpoint_dir`` (either precision's)."""
        restored = precision.restore_in_either_precision(
            self.config.checkpoint_dir,
            None,
            self.checkpoint,
            self._checkpoint_objects,
            self._make_checkpoint,
        )
        self._last_saved = int(self.step.numpy())
        return restored

    def save(self) -> str | None:
        """Saves the run state (every worker takes part; only the chief's copy is kept)."""
        step = int(self.step.numpy())
        path = self.checkpoint.save(step)
        self._last_saved = step
        if not self.chief:
            discard_worker_checkpoint(self._checkpoint_folder, self.config.checkpoint_dir)
            return None
        return path

    def _save_unsaved(self) -> str | None:
        if int(self.step.numpy()) == self._last_saved:
            return tf.train.latest_checkpoint(self.config.checkpoint_dir)
        return self.save()

    def export_models(self) -> list[str]:
        """Writes ``alexnet.keras`` and ``age_head.keras`` next to the checkpoints (what
        ``--alexnet_pretrained_model`` / ``--age_pretrained_model`` load)."""
        paths = []
        for name, model in (("alexnet", self.alexnet), ("age_head", self.age_head)):
            target = os.path.join(self.config.checkpoint_dir, f"{name}.keras")
            temporary = os.path.join(self.config.checkpoint_dir, f".tmp-{name}.keras")
            model.save(temporary)
            os.replace(temporary, target)
            paths.append(target)
        return paths

    def fit(self, progress: bool = True) -> dict:
        config = self.config
        start = int(self.step.numpy())
        remaining = max(config.max_steps - start, 0)
        stats = StatsWriter(config.log_dir or os.path.join(config.checkpoint_dir, "logs"),
                            enabled=self.chief)
        bar = ProgressBar(remaining, label="age classifier", unit="step",
                          enabled=self.chief and progress)
        started, last = time.perf_counter(), {}
        current_step = lambda: int(self.step.numpy())  # noqa: E731
        if remaining:
            batches = self.strategy.experimental_distribute_dataset(self.dataset(start, remaining))
            try:
                with guards.interruptible(self._save_unsaved, current_step) as request:
                    for batch in batches:
                        values = self.train_step(batch)
                        step = current_step()
                        losses_now = {k: float(v) for k, v in values.items()}
                        guards.check_finite(step, losses_now, lambda: self.checkpoint.latest)
                        if step % config.log_freq == 0 or step == config.max_steps:
                            last = losses_now
                            stats.write(step, {f"AgeClassifier/{k}": v for k, v in last.items()})
                        bar.update(1, loss=losses_now["loss"])
                        if step % config.save_interval == 0:
                            self.save()
                        request.raise_if_requested()
            finally:
                bar.close()
        else:
            bar.close()
        step = current_step()
        if step != self._last_saved or not tf.train.latest_checkpoint(config.checkpoint_dir):
            self.save()
        if self.chief:
            self.export_models()
        stats.close()
        return {"step": step, "seconds": time.perf_counter() - started, "losses": last,
                "checkpoint": tf.train.latest_checkpoint(config.checkpoint_dir)}


def existing_run(directory: str) -> dict | None:
    return read_run_info(directory) if os.path.isdir(directory) else None
