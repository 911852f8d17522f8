"""IPCGAN generator and discriminator (Wang et al., "Face Aging with Identity-Preserved
Conditional Generative Adversarial Networks", CVPR 2018), as built by the authors' TF1 code
(dawei6875797, commit 4239b8f).

* `IPCGANGenerator`: input concat(image, condition) with the image as RGB minus
  [104, 117, 124] (0..255 scale, not rescaled) and the condition a one-hot age map
  [B, H, W, age_groups]. Layers: 7x7 conv (32) -> BN -> ReLU, 3x3/2 conv (64) -> BN -> ReLU,
  3x3/2 conv (128) -> BN -> ReLU, six residual units (conv -> BN -> ReLU -> conv -> BN, add the
  input, no ReLU after the addition), two 3x3/2 transposed convolutions (64, 32) each
  -> BN -> ReLU, 7x7 conv (3) -> tanh. Output in [-1, 1].
* `IPCGANDiscriminator`: input an image in [-1, 1] and a one-hot age map at half the image
  size. 4x4/2 conv (64) -> lrelu 0.2, concatenate the condition (64 + 5 = 69 channels),
  4x4/2 conv (128) -> BN -> lrelu, 4x4/2 conv (256) -> BN -> lrelu, 4x4/1 conv (512) -> BN
  -> lrelu, 4x4/1 conv (512) logits: [B, H/8, W/8, 512] (16x16x512 at 128 px).

As in the original: every convolution has a bias; padding is TF ``SAME`` with zeros (stride 2,
kernel 3 pads 0 before and 1 after; kernel 4 stride 1 pads 1 and 2); kernels are initialised
from a truncated N(0, 0.02) (transposed convolutions: plain N(0, 0.02)), biases with zeros.
Batch norm: y = gamma * (x - mean) / sqrt(var + 1e-3) + beta with TF1's zero-debiased
exponential moving average of decay 0.9 (`BatchNorm`).

Batch-norm modes, as the original:

* ``training=True``: every batch norm uses the batch mean and biased batch variance over
  (batch, height, width). The authors' test script runs the generator this way (each test
  image batched with 31 other faces); the discriminator is only ever run this way.
* ``training=False``: the generator's ``bn1``..``bn5`` and the discriminator's ``dis_bn*`` use
  the moving averages, but the twelve batch norms inside the residual units **still use batch
  statistics** (the original's ``residual()`` never passes its mode on). With a single image
  that makes those layers normalise over one image's pixels.

Moving averages are updated only when ``update_statistics`` is true (default: equal to
``training``), so inference in batch-statistics mode (``training=True,
update_statistics=False``) leaves the model unchanged. `clean_inference_generator` documents
the other inference alternative (moving statistics everywhere).

Layer names (``conv1``, ``bn1``, ``unit_3_sub1_conv1``, ``deconv2``, ``dis_bn0``, ...) equal the
TF1 scopes with ``/`` replaced by ``_``; `facegan_tf.migrate.ipcgan` maps them.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers, ops

from facegan_tf.layers import PACKAGE, truncated_normal_init

#: Caffe's BGR means, subtracted from the R, G, B channels in that order (as the original).
MEAN_RGB = (104.0, 117.0, 124.0)
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.9
LEAKY_SLOPE = 0.2
#: Target age groups of CACD in the original: 11-20, 21-30, 31-40, 41-50, 50+.
AGE_GROUPS = 5


def preprocess_generator_input(pixels):
    """RGB pixels on the 0..255 scale -> the generator's input convention: pixel - [104, 117, 124].

    The means are Caffe's BGR means applied to R, G, B in that order, exactly as the original.
    """
    return ops.cast(pixels, "float32") - ops.convert_to_tensor(MEAN_RGB, "float32")


def deprocess_generator_input(values):
    """Inverse of `preprocess_generator_input`: adds the means back (0..255 scale)."""
    return ops.cast(values, "float32") + ops.convert_to_tensor(MEAN_RGB, "float32")


def signed_to_generator_input(images):
    """Images in [-1, 1] -> pixel - mean, with pixel = (x + 1) * 127.5."""
    return preprocess_generator_input((ops.cast(images, "float32") + 1.0) * 127.5)


@keras.saving.register_keras_serializable(package=PACKAGE)
class BatchNorm(keras.layers.Layer):
    """Batch normalisation as the IPCGAN original's ``batch_norm`` (Ioffe & Szegedy, 2015).

    ``training=True``: mean and biased variance of the batch over all axes but the last;
    ``training=False``: the moving averages. Output ``gamma * (x - m) / sqrt(v + epsilon) +
    beta``.

    When ``update_statistics`` is true, each call moves the averages by one step of TF1's
    ``assign_moving_average(avg, value, decay)``. With ``zero_debias=True`` (TF1's default,
    which the original uses), per statistic s in (mean, variance), with d = 1 - decay:

        s_biased     <- s_biased - (s_biased - value) * d        (starts at 0)
        s_local_step <- s_local_step + 1                         (starts at 0)
        s_moving     <- s_moving - (s_moving - s_biased / (1 - (1 - d) ** s_local_step))

    so the moving average holds the debiased average of all values seen (after the first
    update it equals that update's value). With ``zero_debias=False``:
    ``s_moving <- s_moving - (s_moving - value) * d`` (Keras' plain EMA).

    Weights, Keras BatchNormalization order first: ``gamma``, ``beta``, ``moving_mean``,
    ``moving_variance``, then the debias state ``moving_mean_biased``,
    ``moving_mean_local_step``, ``moving_variance_biased``, ``moving_variance_local_step``
    (TF1: ``<scope>/<scope>/moving_mean/biased`` etc.; float32, the step a scalar). They
    exist in both modes, so checkpoints of either mode have the same variables.

    Args:
        momentum: EMA decay (0.9 in the original; Keras' default would be 0.99).
        epsilon: added to the variance (1e-3).
        synchronized: under a multi-replica strategy, compute batch statistics over the
            global batch (all-reduce) instead of each replica's part.
        zero_debias: the original's zero-debiased EMA (True) or the plain EMA (False).
    """

    def __init__(
        self,
        momentum: float = BN_MOMENTUM,
        epsilon: float = BN_EPSILON,
        synchronized: bool = False,
        zero_debias: bool = True,
        **kwargs,
    ):
        # Normalisation runs in float32 (the input is cast); under a mixed policy the
        # variables must be read as float32 too, not autocast to the compute dtype.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        if not 0.0 <= momentum < 1.0 or not epsilon > 0:
            raise ValueError(
                f"BatchNorm needs 0 <= momentum < 1 and epsilon > 0. Received: {momentum=}, "
                f"{epsilon=}"
            )
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.synchronized = bool(synchronized)
        self.zero_debias = bool(zero_debias)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(
                f"BatchNorm needs a known channel count. Received: input_shape={input_shape}"
            )
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros")
        self.moving_mean = self.add_weight(
            name="moving_mean", shape=(channels,), initializer="zeros", trainable=False
        )
        self.moving_variance = self.add_weight(
            name="moving_variance", shape=(channels,), initializer="ones", trainable=False
        )
        self.moving_mean_biased = self.add_weight(
            name="moving_mean_biased", shape=(channels,), initializer="zeros", trainable=False
        )
        self.moving_mean_local_step = self.add_weight(
            name="moving_mean_local_step", shape=(), initializer="zeros", trainable=False
        )
        self.moving_variance_biased = self.add_weight(
            name="moving_variance_biased", shape=(channels,), initializer="zeros",
            trainable=False,
        )
        self.moving_variance_local_step = self.add_weight(
            name="moving_variance_local_step", shape=(), initializer="zeros", trainable=False
        )

    def _batch_moments(self, x):
        axes = list(range(len(x.shape) - 1))
        replica = tf.distribute.get_replica_context()
        if self.synchronized and replica is not None and replica.num_replicas_in_sync > 1:
            count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), tf.float32)
            total, total_square, total_count = replica.all_reduce(
                tf.distribute.ReduceOp.SUM,
                [tf.reduce_sum(x, axis=axes), tf.reduce_sum(tf.square(x), axis=axes), count],
            )
            mean = total / total_count
            return mean, tf.maximum(total_square / total_count - tf.square(mean), 0.0)
        return tf.nn.moments(x, axes=axes)

    def _update(self, moving, biased, local_step, value):
        """One TF1 ``assign_moving_average`` step (see the class docstring)."""
        decay = tf.constant(1.0 - self.momentum, tf.float32)
        if not self.zero_debias:
            moving.assign_sub((moving - value) * decay)
            return
        biased.assign_sub((biased - value) * decay)
        local_step.assign_add(1.0)
        bias_factor = 1.0 - tf.pow(1.0 - decay, tf.convert_to_tensor(local_step))
        moving.assign_sub(moving - tf.convert_to_tensor(biased) / bias_factor)

    def call(self, inputs, training=False, update_statistics=None):
        x = ops.cast(inputs, "float32")
        if training:
            mean, variance = self._batch_moments(x)
            if update_statistics is None or update_statistics:
                self._update(
                    self.moving_mean, self.moving_mean_biased, self.moving_mean_local_step, mean
                )
                self._update(
                    self.moving_variance, self.moving_variance_biased,
                    self.moving_variance_local_step, variance,
                )
        else:
            mean, variance = self.moving_mean, self.moving_variance
        outputs = (x - mean) * ops.rsqrt(variance + self.epsilon) * self.gamma + self.beta
        return ops.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "synchronized": self.synchronized,
            "zero_debias": self.zero_debias,
        }


def _conv(filters: int, kernel: int, stride: int, name: str) -> layers.Conv2D:
    return layers.Conv2D(
        filters,
        kernel,
        strides=stride,
        padding="same",
        kernel_initializer=truncated_normal_init(0.02),
        bias_initializer="zeros",
        name=name,
    )


def _deconv(filters: int, name: str) -> layers.Conv2DTranspose:
    return layers.Conv2DTranspose(
        filters,
        3,
        strides=2,
        padding="same",
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.02),
        bias_initializer="zeros",
        name=name,
    )


def _check_pair(inputs, owner: str):
    if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
        raise ValueError(
            f"{owner} takes [images, condition]. Received: inputs of type {type(inputs).__name__}"
        )
    return inputs


def _check_shapes(images, condition, owner, age_groups, condition_scale, multiple):
    if images.shape[-1] is not None and images.shape[-1] != 3:
        raise ValueError(f"{owner} takes RGB images. Received: images.shape={tuple(images.shape)}")
    if condition.shape[-1] is not None and condition.shape[-1] != age_groups:
        raise ValueError(
            f"{owner} was built for age_groups={age_groups} condition channels. Received: "
            f"condition.shape={tuple(condition.shape)}"
        )
    for axis, side_name in ((1, "height"), (2, "width")):
        side, cond_side = images.shape[axis], condition.shape[axis]
        if side is not None and (side % multiple or side < multiple):
            raise ValueError(
                f"{owner} needs an image {side_name} that is a positive multiple of {multiple}. "
                f"Received: images.shape={tuple(images.shape)}"
            )
        if side is not None and cond_side is not None and cond_side * condition_scale != side:
            raise ValueError(
                f"{owner} needs condition maps of 1/{condition_scale} the image size. Received: "
                f"images.shape={tuple(images.shape)}, condition.shape={tuple(condition.shape)}"
            )


@keras.saving.register_keras_serializable(package=PACKAGE)
class IPCGANGenerator(keras.Model):
    """The original's ``ResnetGenerator`` (scope ``generator``).

    Call: ``generator([images, condition], training=..., update_statistics=None)`` with
    images [B, H, W, 3] as RGB minus [104, 117, 124] (see `preprocess_generator_input`) and
    condition [B, H, W, age_groups] one-hot maps (`facegan_tf.layers.condition_maps`); H, W
    multiples of 4. Returns [B, H, W, 3] in [-1, 1]. See the module docstring for the
    batch-norm modes.

    Args:
        base_filters: width of the first layer (32 in the original; the others are x2, x4).
        num_blocks: residual units (6).
        age_groups: channels of the condition map (5).
        synchronized_bn: batch statistics over the global batch under a multi-replica
            strategy (the original ran one device with batch 32).
        bn_zero_debias: moving averages as TF1's zero-debiased EMA (the original) or as a
            plain EMA (`BatchNorm`).
    """

    def __init__(
        self,
        base_filters: int = 32,
        num_blocks: int = 6,
        age_groups: int = AGE_GROUPS,
        synchronized_bn: bool = False,
        bn_zero_debias: bool = True,
        **kwargs,
    ):
        kwargs.setdefault("name", "generator")
        super().__init__(**kwargs)
        for key, value in (("base_filters", base_filters), ("age_groups", age_groups)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"IPCGANGenerator needs {key} >= 1. Received: {key}={value!r}")
        if not isinstance(num_blocks, int) or num_blocks < 0:
            raise ValueError(f"IPCGANGenerator needs num_blocks >= 0. Received: {num_blocks=}")
        self.base_filters = base_filters
        self.num_blocks = num_blocks
        self.age_groups = age_groups
        self.synchronized_bn = synchronized_bn
        self.bn_zero_debias = bool(bn_zero_debias)
        f = base_filters

        def bn(name):
            return BatchNorm(
                synchronized=synchronized_bn, zero_debias=self.bn_zero_debias, name=name
            )

        self.conv1, self.bn1 = _conv(f, 7, 1, "conv1"), bn("bn1")
        self.conv2, self.bn2 = _conv(2 * f, 3, 2, "conv2"), bn("bn2")
        self.conv3, self.bn3 = _conv(4 * f, 3, 2, "conv3"), bn("bn3")
        self.units = [
            (
                _conv(4 * f, 3, 1, f"unit_{i}_sub1_conv1"),
                bn(f"unit_{i}_sub1_bn1"),
                _conv(4 * f, 3, 1, f"unit_{i}_sub2_conv2"),
                bn(f"unit_{i}_sub2_bn2"),
            )
            for i in range(num_blocks)
        ]
        self.deconv1, self.bn4 = _deconv(2 * f, "deconv1"), bn("bn4")
        self.deconv2, self.bn5 = _deconv(f, "deconv2"), bn("bn5")
        self.conv4 = _conv(3, 7, 1, "conv4")

    def call(self, inputs, training=False, update_statistics=None):
        images, condition = _check_pair(inputs, "IPCGANGenerator")
        _check_shapes(images, condition, "IPCGANGenerator", self.age_groups, 1, 4)
        mode = {"training": bool(training), "update_statistics": update_statistics}
        # Residual units always normalise with batch statistics (original behaviour).
        always_batch = {"training": True, "update_statistics": update_statistics}
        if update_statistics is None:
            always_batch["update_statistics"] = bool(training)
        x = ops.concatenate(
            [ops.cast(images, "float32"), ops.cast(condition, "float32")], axis=-1
        )
        x = ops.relu(self.bn1(self.conv1(x), **mode))
        x = ops.relu(self.bn2(self.conv2(x), **mode))
        x = ops.relu(self.bn3(self.conv3(x), **mode))
        for conv_a, bn_a, conv_b, bn_b in self.units:
            y = ops.relu(bn_a(conv_a(x), **always_batch))
            x = x + bn_b(conv_b(y), **always_batch)
        x = ops.relu(self.bn4(self.deconv1(x), **mode))
        x = ops.relu(self.bn5(self.deconv2(x), **mode))
        return ops.tanh(self.conv4(x))

    def get_config(self):
        return {
            **super().get_config(),
            "base_filters": self.base_filters,
            "num_blocks": self.num_blocks,
            "age_groups": self.age_groups,
            "synchronized_bn": self.synchronized_bn,
            "bn_zero_debias": self.bn_zero_debias,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class IPCGANDiscriminator(keras.Model):
    """The original's conditional ``PatchDiscriminator`` (scope ``discriminator``).

    Call: ``discriminator([images, condition], training=...)`` with images [B, H, W, 3] in
    [-1, 1] and condition [B, H/2, W/2, age_groups] one-hot maps; H, W multiples of 8.
    Returns logits [B, H/8, W/8, output_channels] (no activation). The original only ever
    runs it with batch statistics (``training=True``).

    Args:
        base_filters: width of the first conv (64; then x2, x4, x8).
        output_channels: channels of the logits (512 in the original; default 8 x
            base_filters).
        age_groups: channels of the condition map (5).
        synchronized_bn, bn_zero_debias: see `IPCGANGenerator`.
    """

    def __init__(
        self,
        base_filters: int = 64,
        output_channels: int | None = None,
        age_groups: int = AGE_GROUPS,
        synchronized_bn: bool = False,
        bn_zero_debias: bool = True,
        **kwargs,
    ):
        kwargs.setdefault("name", "discriminator")
        super().__init__(**kwargs)
        if output_channels is None:
            output_channels = 8 * base_filters
        for key, value in (
            ("base_filters", base_filters),
            ("output_channels", output_channels),
            ("age_groups", age_groups),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"IPCGANDiscriminator needs {key} >= 1. Received: {key}={value!r}"
                )
        self.base_filters = base_filters
        self.output_channels = output_channels
        self.age_groups = age_groups
        self.synchronized_bn = synchronized_bn
        self.bn_zero_debias = bool(bn_zero_debias)
        f = base_filters

        def bn(name):
            return BatchNorm(
                synchronized=synchronized_bn, zero_debias=self.bn_zero_debias, name=name
            )

        self.dis = _conv(f, 4, 2, "dis")
        self.dis_1, self.dis_bn0 = _conv(2 * f, 4, 2, "dis_1"), bn("dis_bn0")
        self.dis_2, self.dis_bn1 = _conv(4 * f, 4, 2, "dis_2"), bn("dis_bn1")
        self.dis_3, self.dis_bn2 = _conv(8 * f, 4, 1, "dis_3"), bn("dis_bn2")
        self.dis_4 = _conv(output_channels, 4, 1, "dis_4")

    def call(self, inputs, training=False, update_statistics=None):
        images, condition = _check_pair(inputs, "IPCGANDiscriminator")
        _check_shapes(images, condition, "IPCGANDiscriminator", self.age_groups, 2, 8)
        mode = {"training": bool(training), "update_statistics": update_statistics}
        x = ops.leaky_relu(self.dis(ops.cast(images, "float32")), negative_slope=LEAKY_SLOPE)
        x = ops.concatenate([x, ops.cast(condition, "float32")], axis=-1)
        x = ops.leaky_relu(self.dis_bn0(self.dis_1(x), **mode), negative_slope=LEAKY_SLOPE)
        x = ops.leaky_relu(self.dis_bn1(self.dis_2(x), **mode), negative_slope=LEAKY_SLOPE)
        x = ops.leaky_relu(self.dis_bn2(self.dis_3(x), **mode), negative_slope=LEAKY_SLOPE)
        return self.dis_4(x)

    def get_config(self):
        return {
            **super().get_config(),
            "base_filters": self.base_filters,
            "output_channels": self.output_channels,
            "age_groups": self.age_groups,
            "synchronized_bn": self.synchronized_bn,
            "bn_zero_debias": self.bn_zero_debias,
        }


def build_generator(
    base_filters: int = 32,
    num_blocks: int = 6,
    age_groups: int = AGE_GROUPS,
    image_size: int = 128,
    synchronized_bn: bool = False,
    name: str = "generator",
    bn_zero_debias: bool = True,
) -> IPCGANGenerator:
    """A built `IPCGANGenerator` (weights created by one call on zeros, statistics untouched)."""
    model = IPCGANGenerator(
        base_filters, num_blocks, age_groups, synchronized_bn, bn_zero_debias, name=name
    )
    side = max(4, image_size)
    model(
        [ops.zeros((1, side, side, 3)), ops.zeros((1, side, side, age_groups))],
        training=False,
        update_statistics=False,
    )
    return model


def build_discriminator(
    base_filters: int = 64,
    output_channels: int | None = None,
    age_groups: int = AGE_GROUPS,
    image_size: int = 128,
    synchronized_bn: bool = False,
    name: str = "discriminator",
    bn_zero_debias: bool = True,
) -> IPCGANDiscriminator:
    """A built `IPCGANDiscriminator`."""
    model = IPCGANDiscriminator(
        base_filters, output_channels, age_groups, synchronized_bn, bn_zero_debias, name=name
    )
    side = max(8, image_size)
    model(
        [ops.zeros((1, side, side, 3)), ops.zeros((1, side // 2, side // 2, age_groups))],
        training=False,
        update_statistics=False,
    )
    return model


def clean_inference_generator(generator: IPCGANGenerator):
    """A callable running ``generator`` with moving statistics in ``bn1``..``bn5`` and no update.

    This is the "clean" inference alternative: outputs no longer depend on the other images
    of the batch through ``bn1``..``bn5`` (the residual units still use per-batch statistics,
    as in every mode of the original). The faithful alternative is ``training=True,
    update_statistics=False`` with the original's padding batch.
    """

    def run(images, condition):
        return generator([images, condition], training=False, update_statistics=False)

    return run
