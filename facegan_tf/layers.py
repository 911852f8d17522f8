"""Small Keras 3 layers that the originals took from TF1 ops or tensorflow-addons.

Every layer is registered for `.keras` serialisation under the package name ``facegan_tf``
and implements ``get_config``.
"""

from __future__ import annotations

import functools
import os

import keras
from keras import ops

PACKAGE = "facegan_tf"


@keras.saving.register_keras_serializable(package=PACKAGE)
class ReflectionPadding2D(keras.layers.Layer):
    """Pads height and width by mirroring, without repeating the edge pixel.

    Equivalent to TF1 ``tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], "REFLECT")`` as used by the
    xhujoy CycleGAN before each 7x7 and each residual 3x3 convolution.

    Args:
        padding: int, pixels added on every side of height and width. Must be smaller than
            the input's height and width (a reflection cannot be wider than the image).
    """

    def __init__(self, padding: int = 1, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(padding, int) or padding < 0:
            raise ValueError(
                f"`padding` must be a non-negative integer. Received: padding={padding!r}"
            )
        self.padding = padding

    def build(self, input_shape):
        height, width = input_shape[1], input_shape[2]
        for side_name, side in (("height", height), ("width", width)):
            if side is not None and side <= self.padding:
                raise ValueError(
                    f"ReflectionPadding2D({self.padding}) needs an input {side_name} larger "
                    f"than the padding. Received: input_shape={tuple(input_shape)}"
                )

    def call(self, inputs):
        p = self.padding
        return ops.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        grow = 2 * self.padding
        return (
            batch,
            None if height is None else height + grow,
            None if width is None else width + grow,
            channels,
        )

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


@keras.saving.register_keras_serializable(package=PACKAGE)
class InstanceNormalization(keras.layers.Layer):
    """Instance normalisation with learnable ``scale`` and ``offset`` (Ulyanov et al., 2016).

    For x of shape [N, H, W, C]: mu[n, c] and the biased variance var[n, c] are taken over
    (H, W), and ``y = scale[c] * (x - mu) / sqrt(var + epsilon) + offset[c]``. Statistics are
    per sample and identical in training and inference (no running averages). They are
    computed in float32 even under mixed precision.

    The defaults reproduce xhujoy CycleGAN's ``instance_norm``: epsilon 1e-5, ``scale``
    initialised from N(1, 0.02) (plain normal, not truncated), ``offset`` zeros. Weight names
    are ``scale`` and ``offset`` like the TF1 variables.

    Args:
        epsilon: float added to the variance. Always explicit: Keras' GroupNormalization
            defaults to 1e-3, which changes outputs on low-contrast inputs.
        scale_initializer: initialiser of ``scale``; None means N(1, 0.02).
        offset_initializer: initialiser of ``offset``.
    """

    def __init__(
        self,
        epsilon: float = 1e-5,
        scale_initializer=None,
        offset_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not epsilon > 0:
            raise ValueError(f"`epsilon` must be positive. Received: epsilon={epsilon!r}")
        self.epsilon = float(epsilon)
        if scale_initializer is None:
            scale_initializer = keras.initializers.RandomNormal(mean=1.0, stddev=0.02)
        self.scale_initializer = keras.initializers.get(scale_initializer)
        self.offset_initializer = keras.initializers.get(offset_initializer)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(
                "InstanceNormalization needs a known channel count. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self.scale = self.add_weight(
            name="scale", shape=(channels,), initializer=self.scale_initializer
        )
        self.offset = self.add_weight(
            name="offset", shape=(channels,), initializer=self.offset_initializer
        )

    def call(self, inputs):
        # The original's op order: ``scale * ((x - mean) * rsqrt(var + eps)) + offset``.
        # Where a map is 1 x 1 (the U-Net bottleneck at 256 px) x - mean is exactly 0 and
        # the output exactly ``offset``; the folded form x * inv + (offset - mean * inv) of
        # ``batch_normalization`` leaves a rounding residue there that later layers amplify.
        x = ops.cast(inputs, "float32")
        mean, variance = ops.moments(x, axes=(1, 2), keepdims=True)
        inv = ops.rsqrt(variance + self.epsilon)
        normalized = (x - mean) * inv
        outputs = ops.cast(self.scale, "float32") * normalized + ops.cast(self.offset, "float32")
        return ops.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "epsilon": self.epsilon,
            "scale_initializer": keras.initializers.serialize(self.scale_initializer),
            "offset_initializer": keras.initializers.serialize(self.offset_initializer),
        }


def _stride1_valid_conv(inputs, kernel, input_gradient_by_forward: bool):
    """``conv(inputs, kernel)`` (stride 1, VALID, NHWC) whose gradients are forward convolutions.

    For x [N, H + kh - 1, W + kw - 1, Ci], k [kh, kw, Ci, Co] and upstream g [N, H, W, Co]:

    * dL/dk[i, j, c, o] = sum_{n, h, w} x[n, h + i, w + j, c] g[n, h, w, o]: a VALID
      convolution of x^T [Ci, H + kh - 1, W + kw - 1, N] with g^T [H, W, N, Co] as kernel,
      giving [Ci, kh, kw, Co], transposed back;
    * dL/dx = g zero-padded by (kh - 1, kw - 1) convolved with k flipped in space and with
      its channel axes swapped (a "full" correlation) when ``input_gradient_by_forward``,
      else the transposed convolution of g (TensorFlow's own ``Conv2DBackpropInput``).

    The values equal TensorFlow's gradients of the same convolution up to float summation
    order; the forward pass is the same op as `keras.layers.Conv2D`'s. On CPU, TensorFlow's
    ``Conv2DBackpropFilter`` (and ``Conv2DBackpropInput`` when Ci > Co) run several times
    slower than a forward convolution of the same size (7 x 7, 64 -> 3 at 128 x 128: about
    200 ms against 30 ms single-threaded), see docs/performance.md.
    """

    @ops.custom_gradient
    def conv(x, k):
        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            kh, kw = k.shape[0], k.shape[1]
            patches = ops.transpose(x, (3, 1, 2, 0))
            filters = ops.transpose(upstream, (1, 2, 0, 3))
            d_kernel = ops.transpose(ops.conv(patches, filters, padding="valid"), (1, 2, 0, 3))
            if input_gradient_by_forward:
                padded = ops.pad(upstream, [[0, 0], [kh - 1, kh - 1], [kw - 1, kw - 1], [0, 0]])
                flipped = ops.transpose(ops.flip(ops.flip(k, 0), 1), (0, 1, 3, 2))
                d_inputs = ops.conv(padded, flipped, padding="valid")
            else:
                d_inputs = ops.conv_transpose(upstream, k, 1, padding="valid")
            return d_inputs, d_kernel

        return ops.conv(x, k, strides=1, padding="valid"), grad

    return conv(inputs, kernel)


@functools.cache
def onednn_enabled() -> bool:
    """Whether TensorFlow runs its CPU kernels through oneDNN in this process.

    TensorFlow decides once per process: ``TF_ENABLE_ONEDNN_OPTS=1``/``0`` forces it; unset,
    Linux builds turn it on for CPUs with AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX (see
    docs/performance.md). Read from TensorFlow itself; when that is not possible, from the
    environment variable, counting "unset" as on.
    """
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        value = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "").strip().lower()
        return value not in ("0", "false")


@keras.saving.register_keras_serializable(package=PACKAGE)
class ForwardGradConv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` whose stride-1 ``valid`` convolution has gradients computed by
    forward convolutions (see `_stride1_valid_conv`); any other setting is plain Conv2D.

    Same weights, names, outputs and serialised config as Conv2D; only the backward pass
    takes another (faster on CPU) route to the same values. Used for the reflection-padded
    7 x 7 and 3 x 3 convolutions of the CycleGAN ResNet generator.

    When TensorFlow runs on oneDNN (`onednn_enabled`), the layer is plain Conv2D: oneDNN's
    own backward convolutions are as fast as the forward route or faster, and the kernel
    gradient written as a forward convolution has a kernel as large as the image, for
    which oneDNN's convolution asks a scratchpad it cannot allocate at 256 x 256 (32.75 GiB
    for the first 7 x 7 layer at ngf 8), and TensorFlow 2.21 then aborts the process
    (docs/troubleshooting.md, bench/onednn_conv_abort.py).
    """

    def convolution_op(self, inputs, kernel):
        if (
            onednn_enabled()
            or keras.backend.backend() != "tensorflow"
            or tuple(self.strides) != (1, 1)
            or self.padding != "valid"
            or tuple(self.dilation_rate) != (1, 1)
            or self.data_format != "channels_last"
            or self.groups != 1
        ):
            return super().convolution_op(inputs, kernel)
        import tensorflow as tf

        # A tensor (the variable's read), so the custom gradient sees no variable inside.
        kernel = tf.convert_to_tensor(kernel)
        if kernel.dtype != inputs.dtype:
            kernel = ops.cast(kernel, inputs.dtype)
        return _stride1_valid_conv(
            inputs, kernel, input_gradient_by_forward=kernel.shape[2] > kernel.shape[3]
        )


def leaky_relu(negative_slope: float = 0.2, name: str | None = None) -> keras.layers.Layer:
    """max(x, slope * x) as a layer; the originals use slope 0.2 (Keras' default is 0.3)."""
    return keras.layers.LeakyReLU(negative_slope=negative_slope, name=name)


def truncated_normal_init(stddev: float = 0.02, seed: int | None = None):
    """TF1 ``truncated_normal_initializer(stddev)``: N(0, stddev) redrawn beyond 2 stddev."""
    return keras.initializers.TruncatedNormal(mean=0.0, stddev=stddev, seed=seed)


def condition_maps(labels, num_classes: int, height: int, width: int):
    """One-hot label maps [B, H, W, num_classes] from integer labels [B].

    Conditional GANs (IPCGAN, cDCGAN) feed the class as constant one-hot planes concatenated
    on the channel axis.
    """
    one_hot = ops.one_hot(ops.cast(labels, "int32"), num_classes)
    one_hot = ops.reshape(one_hot, (-1, 1, 1, num_classes))
    return ops.tile(one_hot, (1, height, width, 1))


#: TF1's ``tf.nn.fused_batch_norm`` raises any smaller epsilon to this value (a cuDNN limit).
TF1_FUSED_MIN_EPSILON = 1.001e-5
MOVING_STATS_RULES = ("tf1_fused", "pytorch")


@keras.saving.register_keras_serializable(package=PACKAGE)
class MovingStatsBatchNormalization(keras.layers.BatchNormalization):
    """Batch normalisation (Ioffe & Szegedy, 2015) with the originals' moving statistics.

    In training mode the output is ``gamma * (x - mean) / sqrt(var + epsilon) + beta`` with
    the batch mean and the **biased** batch variance over every axis but the last (the
    channels). Unlike Keras' `BatchNormalization`, the variance averaged into
    ``moving_variance`` is the **unbiased** one, var * n / (n - 1) with n the number of
    values per channel (B * H * W), as TF1's fused kernel and PyTorch do. Two update rules:

    * ``"tf1_fused"`` (TF1 ``tf.layers.batch_normalization(fused=True)``, sualab DCGAN):
      ``m <- m - (m - x) * decay`` with ``decay = float32(1) - float32(momentum)``, and an
      epsilon of at least 1.001e-5 in training and inference (``tf.nn.fused_batch_norm``
      raises smaller values). Without ``synchronized`` the batch moments come from the same
      kernel, ``FusedBatchNormV3``.
    * ``"pytorch"`` (``torch.nn.BatchNorm1d/2d``): ``m <- momentum * m + (1 - momentum) * x``,
      where Keras' ``momentum`` 0.9 is PyTorch's ``momentum`` 0.1; epsilon as given.

    Inference mode normalises with ``moving_mean`` and ``moving_variance``. Weights, their
    names and order (``gamma``, ``beta``, ``moving_mean``, ``moving_variance``) and every
    other argument are those of `keras.layers.BatchNormalization`; ``synchronized=True``
    takes the moments over all replicas of a `tf.distribute` strategy (n is then the global
    count). Statistics are computed in float32 under mixed precision. ``renorm`` and masks
    are not supported; the channel axis must be the last.

    Args:
        update_rule: ``"tf1_fused"`` or ``"pytorch"``.
        **kwargs: arguments of `keras.layers.BatchNormalization`.
    """

    def __init__(self, update_rule: str = "tf1_fused", **kwargs):
        super().__init__(**kwargs)
        if update_rule not in MOVING_STATS_RULES:
            raise ValueError(
                f"`update_rule` must be one of {MOVING_STATS_RULES}. "
                f"Received: update_rule={update_rule!r}"
            )
        if self.renorm:
            raise ValueError(
                "MovingStatsBatchNormalization does not support batch renormalisation. "
                "Received: renorm=True"
            )
        if self.axis != -1:
            raise ValueError(
                "MovingStatsBatchNormalization normalises the last axis (channels last). "
                f"Received: axis={self.axis}"
            )
        self.update_rule = update_rule

    @property
    def effective_epsilon(self) -> float:
        """The epsilon the normalisation uses (TF1's fused kernel raises it to 1.001e-5)."""
        if self.update_rule == "tf1_fused":
            return max(self.epsilon, TF1_FUSED_MIN_EPSILON)
        return self.epsilon

    def _affine(self, dtype):
        channels = self.moving_mean.shape[0]
        gamma = ops.cast(self.gamma, dtype) if self.scale else ops.ones((channels,), dtype)
        beta = ops.cast(self.beta, dtype) if self.center else ops.zeros((channels,), dtype)
        return gamma, beta

    def _fused(self, x, gamma, beta, training: bool):
        """TF's ``FusedBatchNormV3`` on x [..., C] (viewed as NHWC); in training it returns
        the batch mean and the unbiased batch variance."""
        import tensorflow as tf

        shape = tf.shape(x)
        channels = self.moving_mean.shape[0]
        if len(x.shape) == 4:
            x4 = x
        else:
            x4 = tf.reshape(x, (-1, 1, 1, channels))
        if training:
            mean, variance = tf.zeros((0,), x.dtype), tf.zeros((0,), x.dtype)
        else:
            mean = ops.cast(self.moving_mean, x.dtype)
            variance = ops.cast(self.moving_variance, x.dtype)
        result = tf.raw_ops.FusedBatchNormV3(
            x=x4,
            scale=gamma,
            offset=beta,
            mean=mean,
            variance=variance,
            epsilon=self.effective_epsilon,
            exponential_avg_factor=1.0,
            data_format="NHWC",
            is_training=training,
        )
        y = result.y if len(x.shape) == 4 else tf.reshape(result.y, shape)
        return y, result.batch_mean, result.batch_variance

    def _synchronized_moments(self, x):
        """Mean, biased and unbiased variance over all replicas."""
        import tensorflow as tf

        axes = list(range(len(x.shape) - 1))
        mean, variance = ops.moments(x, axes=axes, synchronized=True)
        count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), x.dtype)
        context = tf.distribute.get_replica_context()
        if context is not None:
            count = count * context.num_replicas_in_sync
        return mean, variance, variance * count / tf.maximum(count - 1.0, 1.0)

    def _update(self, variable, value):
        value = ops.cast(value, variable.dtype)
        if self.update_rule == "tf1_fused":
            decay = ops.subtract(
                ops.convert_to_tensor(1.0, "float32"),
                ops.convert_to_tensor(self.momentum, "float32"),
            )
            variable.assign_sub((variable - value) * decay)
        else:
            variable.assign(variable * self.momentum + value * (1.0 - self.momentum))

    def call(self, inputs, training=None, mask=None):
        if mask is not None:
            raise ValueError("MovingStatsBatchNormalization does not support masks.")
        input_dtype = inputs.dtype
        x = ops.cast(inputs, "float32")
        gamma, beta = self._affine(x.dtype)
        if training and self.trainable:
            if self.synchronized:
                mean, variance, unbiased = self._synchronized_moments(x)
                outputs = (x - mean) * ops.rsqrt(variance + self.effective_epsilon) * gamma + beta
            else:
                outputs, mean, unbiased = self._fused(x, gamma, beta, training=True)
            self._update(self.moving_mean, ops.stop_gradient(mean))
            self._update(self.moving_variance, ops.stop_gradient(unbiased))
        elif self.update_rule == "tf1_fused":
            outputs, _, _ = self._fused(x, gamma, beta, training=False)
        else:
            outputs = ops.batch_normalization(
                x,
                ops.cast(self.moving_mean, x.dtype),
                ops.cast(self.moving_variance, x.dtype),
                axis=-1,
                offset=beta,
                scale=gamma,
                epsilon=self.effective_epsilon,
            )
        return ops.cast(outputs, input_dtype)

    def get_config(self):
        return {**super().get_config(), "update_rule": self.update_rule}
