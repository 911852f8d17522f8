"""AlexNet of IPCGAN: identity features and the 5-way age classifier.

The trunk is AlexNet (Krizhevsky et al., NIPS 2012) in the caffe-tensorflow layout that the
IPCGAN original (Wang et al., CVPR 2018) uses as a frozen identity and age network:

=========  ====================================================  ==============
layer      operation                                             output (227 px)
=========  ====================================================  ==============
conv1      11x11/4 VALID conv (96) -> ReLU                       55x55x96
pool1      3x3/2 VALID max pool                                  27x27x96
norm1      LRN (depth radius 2, alpha 2e-5, beta 0.75, bias 1)   27x27x96
conv2      5x5 SAME conv (256), 2 groups -> ReLU                 27x27x256
pool2      3x3/2 VALID max pool, then LRN (norm2)                13x13x256
conv3      3x3 SAME conv (384) -> ReLU                           13x13x384
conv4      3x3 SAME conv (384), 2 groups -> ReLU                 13x13x384
conv5      3x3 SAME conv (256), 2 groups -> ReLU                 13x13x256
pool5      3x3/2 VALID max pool, flattened in NHWC order          9216
fc6, fc7   dense (4096) -> ReLU                                  4096
new_1      dense (256) -> ReLU                                   256
new_2      dense (2000) identity logits (CACD celebrities)       2000
=========  ====================================================  ==============

The order is conv -> pool -> LRN. Grouped convolutions split input and kernel into two halves
along the channels (Keras ``Conv2D(groups=2)``, same kernel layout). Dropout of the original
has keep probability 1 and is omitted.

`AgeClassifierHead`: ``age_fc6`` (4096) -> ReLU -> ``age_fc7`` (4096) -> ReLU -> ``age_fc8`` (5
logits) on the same flattened pool5 features; the original restores it from a separate
checkpoint and uses it to classify the age group of generated faces.

Input: [B, 227, 227, 3] RGB minus [104, 117, 124] (see
`facegan_tf.networks.ipcgan.preprocess_generator_input`). Identity-feature taps (all after
ReLU): ``conv3``, ``conv4``, ``conv5``, ``pool5``, ``fc6``, ``fc7``.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers, ops

from facegan_tf.layers import PACKAGE

FEATURE_LAYERS = ("conv3", "conv4", "conv5", "pool5", "fc6", "fc7")
INPUT_SIZE = 227
LRN = {"depth_radius": 2, "alpha": 2e-5, "beta": 0.75, "bias": 1.0}


def _positive(owner: str, **values) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{owner} needs a positive integer {name}. Received: {name}={value!r}")


def _dense(units: int, name: str, activation=None) -> layers.Dense:
    return layers.Dense(units, activation=activation, name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class AlexNet(keras.Model):
    """The identity AlexNet of IPCGAN (scope ``alexnet``; see the module docstring).

    ``alexnet(x)`` returns a dict with the feature taps ``conv3``, ``conv4``, ``conv5``,
    ``pool5`` (flattened), ``fc6``, ``fc7`` and the identity ``logits`` (``new_2``);
    `features` stops at the requested tap.

    Args:
        conv_filters: widths of conv1..conv5 ((96, 256, 384, 384, 256)); conv2, conv4 and
            conv5 use 2 groups, so the widths of conv1, conv3, conv4 and conv5 must be even.
        fc_units: width of fc6 and fc7 (4096).
        embedding_units: width of new_1 (256).
        num_identities: classes of new_2 (2000).
    """

    def __init__(
        self,
        conv_filters: tuple = (96, 256, 384, 384, 256),
        fc_units: int = 4096,
        embedding_units: int = 256,
        num_identities: int = 2000,
        **kwargs,
    ):
        kwargs.setdefault("name", "alexnet")
        super().__init__(**kwargs)
        conv_filters = tuple(int(c) for c in conv_filters)
        if len(conv_filters) != 5 or any(c < 2 or c % 2 for c in conv_filters):
            raise ValueError(
                "AlexNet needs five even conv widths (grouped convolutions split them in 2). "
                f"Received: conv_filters={conv_filters}"
            )
        _positive("AlexNet", fc_units=fc_units, embedding_units=embedding_units,
                  num_identities=num_identities)
        self.conv_filters = conv_filters
        self.fc_units = fc_units
        self.embedding_units = embedding_units
        self.num_identities = num_identities
        c1, c2, c3, c4, c5 = conv_filters
        self.conv1 = layers.Conv2D(c1, 11, strides=4, padding="valid", activation="relu",
                                   name="conv1")
        self.conv2 = layers.Conv2D(c2, 5, padding="same", groups=2, activation="relu",
                                   name="conv2")
        self.conv3 = layers.Conv2D(c3, 3, padding="same", activation="relu", name="conv3")
        self.conv4 = layers.Conv2D(c4, 3, padding="same", groups=2, activation="relu",
                                   name="conv4")
        self.conv5 = layers.Conv2D(c5, 3, padding="same", groups=2, activation="relu",
                                   name="conv5")
        self.fc6 = _dense(fc_units, "fc6", "relu")
        self.fc7 = _dense(fc_units, "fc7", "relu")
        self.new_1 = _dense(embedding_units, "new_1", "relu")
        self.new_2 = _dense(num_identities, "new_2")

    @staticmethod
    def _pool(x):
        return tf.nn.max_pool2d(x, ksize=3, strides=2, padding="VALID")

    @staticmethod
    def _lrn(x):
        return tf.nn.local_response_normalization(x, **LRN)

    def features(self, inputs, layer_name: str = "conv5"):
        """The post-ReLU activation of ``layer_name`` (one of `FEATURE_LAYERS`, or ``logits``)."""
        if layer_name not in FEATURE_LAYERS + ("logits",):
            raise ValueError(
                f"Unknown feature layer. Expected one of {FEATURE_LAYERS}. Received: "
                f"fea_layer_name={layer_name!r}"
            )
        taps = self._forward(inputs, stop=layer_name)
        return taps[layer_name]

    def pool5(self, inputs):
        """Flattened pool5 features (the input of the age head)."""
        return self._forward(inputs, stop="pool5")["pool5"]

    def _forward(self, inputs, stop: str | None = None) -> dict:
        x = ops.cast(inputs, "float32")
        if x.shape[-1] is not None and x.shape[-1] != 3:
            raise ValueError(f"AlexNet takes RGB input. Received: input_shape={tuple(x.shape)}")
        taps = {}
        x = self._lrn(self._pool(self.conv1(x)))
        x = self._lrn(self._pool(self.conv2(x)))
        for name, layer in (("conv3", self.conv3), ("conv4", self.conv4), ("conv5", self.conv5)):
            x = layer(x)
            taps[name] = x
            if stop == name:
                return taps
        x = self._pool(x)
        x = ops.reshape(x, (-1, x.shape[1] * x.shape[2] * x.shape[3]))
        taps["pool5"] = x
        if stop == "pool5":
            return taps
        x = self.fc6(x)
        taps["fc6"] = x
        if stop == "fc6":
            return taps
        x = self.fc7(x)
        taps["fc7"] = x
        if stop == "fc7":
            return taps
        taps["logits"] = self.new_2(self.new_1(x))
        return taps

    def call(self, inputs, training=None):
        return self._forward(inputs)

    def get_config(self):
        return {
            **super().get_config(),
            "conv_filters": list(self.conv_filters),
            "fc_units": self.fc_units,
            "embedding_units": self.embedding_units,
            "num_identities": self.num_identities,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class AgeClassifierHead(keras.Model):
    """The age head ``age_fc6`` -> ``age_fc7`` -> ``age_fc8`` on flattened pool5 features.

    Args:
        fc_units: width of age_fc6 and age_fc7 (4096).
        age_groups: logits of age_fc8 (5).
    """

    def __init__(self, fc_units: int = 4096, age_groups: int = 5, **kwargs):
        kwargs.setdefault("name", "age_head")
        super().__init__(**kwargs)
        _positive("AgeClassifierHead", fc_units=fc_units, age_groups=age_groups)
        self.fc_units = fc_units
        self.age_groups = age_groups
        self.age_fc6 = _dense(fc_units, "age_fc6", "relu")
        self.age_fc7 = _dense(fc_units, "age_fc7", "relu")
        self.age_fc8 = _dense(age_groups, "age_fc8")

    def call(self, pool5, training=None):
        return self.age_fc8(self.age_fc7(self.age_fc6(pool5)))

    def get_config(self):
        return {**super().get_config(), "fc_units": self.fc_units, "age_groups": self.age_groups}


def pool5_size(conv_filters: tuple, input_size: int = INPUT_SIZE) -> int:
    """Length of the flattened pool5 vector for ``input_size`` inputs (9216 at 227 px)."""
    side = (input_size - 11) // 4 + 1
    for _ in range(3):
        side = (side - 3) // 2 + 1
    if side < 1:
        raise ValueError(
            f"AlexNet input too small: pool5 would be empty. Received: input_size={input_size}"
        )
    return side * side * int(conv_filters[4])


def build_alexnet(
    conv_filters: tuple = (96, 256, 384, 384, 256),
    fc_units: int = 4096,
    embedding_units: int = 256,
    num_identities: int = 2000,
    input_size: int = INPUT_SIZE,
) -> AlexNet:
    """A built `AlexNet` for ``input_size`` x ``input_size`` inputs."""
    pool5_size(conv_filters, input_size)
    model = AlexNet(conv_filters, fc_units, embedding_units, num_identities)
    model(ops.zeros((1, input_size, input_size, 3)))
    return model


def build_age_head(pool5_features: int = 9216, fc_units: int = 4096,
                   age_groups: int = 5) -> AgeClassifierHead:
    """A built `AgeClassifierHead` taking ``pool5_features`` inputs."""
    model = AgeClassifierHead(fc_units, age_groups)
    model(ops.zeros((1, pool5_features)))
    return model
