"""Small Keras 3 layers that the originals took from TF1 ops or tensorflow-addons.

Every layer is registered for `.keras` serialisation under the package name ``facegan_tf``
and implements ``get_config``.
"""

from __future__ import annotations

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
        x = ops.cast(inputs, "float32")
        mean, variance = ops.moments(x, axes=(1, 2), keepdims=True)
        outputs = ops.batch_normalization(
            x,
            mean,
            variance,
            axis=-1,
            offset=ops.cast(self.offset, "float32"),
            scale=ops.cast(self.scale, "float32"),
            epsilon=self.epsilon,
        )
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
