"""DCGAN networks mirroring sualab/DCGAN_Face_gen_tf, and conditional variants.

Unconditional (Radford et al., ICLR 2016, as built by sualab):

* `DCGANGenerator`: dense z -> 4 x 4 x ``fc_channels``, BN, ReLU, then transposed convolutions
  5 x 5, stride 2, ``SAME`` (BN + ReLU after each but the last), tanh. At 64 x 64 with the
  sualab widths the transposed convolutions give 256, 128, 64, 3 channels.
* `DCGANDiscriminator`: convolutions 5 x 5, stride 2, ``SAME`` with 64, 128, 256, 512 channels
  (BN after every one but the first), leaky ReLU 0.2, flatten (NHWC order), dense to one logit.

Both use batch norm with momentum 0.9 and epsilon 1e-5 and initialise every kernel from
N(0, 0.02) and every bias with 0, like the original. The number of resolution steps follows
from ``image_size`` (4 * 2**n pixels, n >= 1), so tests can use 16 or 32 pixel models with
the same code. Layer names (``g_dense``, ``g_bn_0``, ``g_deconv_0`` ... ``d_conv_0``,
``d_bn_1``, ``d_dense``) are stable: the legacy-checkpoint table in
`facegan_tf.migrate.dcgan_sualab` refers to them.

Conditional variants (class labels are integers in [0, num_classes)):

* `ConditionalDCGANGenerator`: the DCGAN generator fed concat(z, Embedding(y)) (Mirza &
  Osindero, 2014); the embedding has ``num_classes`` dimensions and N(0, 1) initial values
  like the PyTorch ``nn.Embedding`` of the mask project.
* `ConditionalDCGANDiscriminator`: the DCGAN discriminator on concat(image, label plane),
  where the plane is Embedding(y) with H*W values reshaped to [H, W, 1]. With
  ``batch_norm=False`` it is the conditional WGAN-GP critic (Gulrajani et al., 2017, sec. 4:
  no batch norm in the critic, because the gradient penalty is per example).
* `ACGANDiscriminator`: the DCGAN discriminator trunk with two heads, a real/fake logit and
  class logits (Odena et al., ICML 2017).
* `MLPConditionalGenerator`, `MLPConditionalDiscriminator`: the "simple cGAN" of the mask
  project (fully connected layers; dropout 0.4 in D).

Inputs and outputs are NHWC in [-1, 1]; every discriminator returns logits.
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops

from facegan_tf.layers import PACKAGE, MovingStatsBatchNormalization

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5
LEAKY_SLOPE = 0.2
#: Moving-statistics rule of the sualab networks (TF1 fused batch norm) and of the
#: conditional networks (PyTorch batch norm, as the mask project); see
#: `facegan_tf.layers.MovingStatsBatchNormalization`.
SUALAB_BN_RULE = "tf1_fused"
PYTORCH_BN_RULE = "pytorch"


def _normal_init():
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


def _num_upsamplings(image_size: int, owner: str) -> int:
    steps = math.log2(image_size / 4) if image_size >= 8 else 0
    if image_size < 8 or steps != int(steps):
        raise ValueError(
            f"{owner} needs image_size = 4 * 2**n with n >= 1 (8, 16, 32, 64, 128, ...). "
            f"Received: image_size={image_size}"
        )
    return int(steps)


def _check_positive(owner: str, **values) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{owner} needs a positive integer {name}. Received: {name}={value!r}")


def _batch_norm(
    name: str, momentum: float, epsilon: float, update_rule: str
) -> MovingStatsBatchNormalization:
    return MovingStatsBatchNormalization(
        update_rule=update_rule, momentum=momentum, epsilon=epsilon, name=name
    )


def _attach(model, attribute: str, layer_list: list) -> None:
    """Keeps ``layer_list`` reachable as ``model.<attribute>`` while every layer is also a
    named attribute (its layer name), so each layer has one stable place in the model's
    tracked attributes and its weights a stable path (``generator/g_bn_1/gamma``)."""
    for layer in layer_list:
        setattr(model, layer.name, layer)
    object.__setattr__(model, f"_{attribute}_names", tuple(layer.name for layer in layer_list))


def _first_hidden_with_label(first_dense, inputs, embedded, label_units: int):
    """First hidden layer of the MLP cGAN with the label (Mirza & Osindero, 2014).

    With a label pathway (``label_units`` > 0) the input and the embedded label pass their own
    layers and are joined after their leaky ReLUs; without one the embedding is concatenated
    to the input before the first dense layer.
    """
    if label_units:
        return ops.concatenate(
            [
                ops.leaky_relu(first_dense(inputs), negative_slope=LEAKY_SLOPE),
                ops.leaky_relu(embedded, negative_slope=LEAKY_SLOPE),
            ],
            axis=-1,
        )
    return ops.leaky_relu(
        first_dense(ops.concatenate([inputs, embedded], axis=-1)), negative_slope=LEAKY_SLOPE
    )


def _attached(model, attribute: str) -> list:
    return [getattr(model, name) for name in getattr(model, f"_{attribute}_names")]


def generator_widths(channels: int, num_upsamplings: int, image_channels: int) -> list[int]:
    """Output channels of the transposed convolutions: channels * 2**(n-2-i), then the image.

    sualab at 64 x 64 (n = 4) with ``G_channel`` 64: [256, 128, 64, 3].
    """
    return [channels * 2 ** (num_upsamplings - 2 - i) for i in range(num_upsamplings - 1)] + [
        image_channels
    ]


def discriminator_widths(channels: int, num_downsamplings: int) -> list[int]:
    """Output channels of the discriminator convolutions: channels * 2**i (64, 128, 256, 512)."""
    return [channels * 2**i for i in range(num_downsamplings)]


@keras.saving.register_keras_serializable(package=PACKAGE)
class DCGANGenerator(keras.Model):
    """sualab ``_build_generator``: z -> image in [-1, 1] (tanh).

    x = ReLU(BN(reshape(z W + b, [4, 4, fc_channels])));
    x = ReLU(BN(deconv_i(x))) for every transposed convolution but the last; tanh(deconv(x)).

    The original samples z from U(-1, 1) (``z_dim`` 100) for training, grids and FID; the
    network itself accepts any z. ``training=True`` normalises with batch statistics (the
    original training graph), ``training=False`` with the moving averages (its sampler).

    Args:
        z_dim: latent size (``z_dim``, 100).
        fc_channels: channels of the 4 x 4 dense output (``G_FC_layer_channel``, 512).
        channels: base width (``G_channel``, 64); see `generator_widths`.
        image_size: output side, 4 * 2**n (64).
        image_channels: output channels (3, RGB).
        bn_momentum, bn_epsilon: batch-norm constants (0.9, 1e-5 as the original).
        bn_update_rule: moving-statistics rule of the batch norms, ``"tf1_fused"`` (the
            original's TF1 fused kernel) or ``"pytorch"``; see
            `facegan_tf.layers.MovingStatsBatchNormalization`.
    """

    def __init__(
        self,
        z_dim: int = 100,
        fc_channels: int = 512,
        channels: int = 64,
        image_size: int = 64,
        image_channels: int = 3,
        bn_momentum: float = BN_MOMENTUM,
        bn_epsilon: float = BN_EPSILON,
        bn_update_rule: str = SUALAB_BN_RULE,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_positive(
            type(self).__name__,
            z_dim=z_dim,
            fc_channels=fc_channels,
            channels=channels,
            image_channels=image_channels,
        )
        self.num_upsamplings = _num_upsamplings(image_size, type(self).__name__)
        self.z_dim = z_dim
        self.fc_channels = fc_channels
        self.channels = channels
        self.image_size = image_size
        self.image_channels = image_channels
        self.bn_momentum = bn_momentum
        self.bn_epsilon = bn_epsilon
        self.bn_update_rule = bn_update_rule
        self.dense = layers.Dense(
            4 * 4 * fc_channels, kernel_initializer=_normal_init(), name="g_dense"
        )
        self.reshape = layers.Reshape((4, 4, fc_channels), name="g_reshape")
        widths = generator_widths(channels, self.num_upsamplings, image_channels)
        norms = [_batch_norm("g_bn_0", bn_momentum, bn_epsilon, bn_update_rule)]
        deconvs = []
        for index, width in enumerate(widths):
            deconvs.append(
                layers.Conv2DTranspose(
                    width,
                    5,
                    strides=2,
                    padding="same",
                    kernel_initializer=_normal_init(),
                    name=f"g_deconv_{index}",
                )
            )
            if index < len(widths) - 1:
                norms.append(
                    _batch_norm(f"g_bn_{index + 1}", bn_momentum, bn_epsilon, bn_update_rule)
                )
        _attach(self, "norms", norms)
        _attach(self, "deconvs", deconvs)

    @property
    def norms(self) -> list:
        return _attached(self, "norms")

    @property
    def deconvs(self) -> list:
        return _attached(self, "deconvs")

    def _synthesise(self, latent, training):
        norms, deconvs = self.norms, self.deconvs
        x = self.reshape(self.dense(latent))
        x = ops.relu(norms[0](x, training=training))
        for index, deconv in enumerate(deconvs):
            x = deconv(x)
            if index < len(deconvs) - 1:
                x = ops.relu(norms[index + 1](x, training=training))
        return ops.tanh(x)

    def call(self, z, training=False):
        return self._synthesise(z, training)

    def get_config(self):
        return {
            **super().get_config(),
            "z_dim": self.z_dim,
            "fc_channels": self.fc_channels,
            "channels": self.channels,
            "image_size": self.image_size,
            "image_channels": self.image_channels,
            "bn_momentum": self.bn_momentum,
            "bn_epsilon": self.bn_epsilon,
            "bn_update_rule": self.bn_update_rule,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class DCGANDiscriminator(keras.Model):
    """sualab ``_build_discriminator``: image -> [B, 1] logits (no sigmoid).

    x = LReLU_0.2(conv_0(x)); x = LReLU_0.2(BN(conv_i(x))) for i >= 1;
    logits = flatten_NHWC(x) W + b.

    The original calls D separately on the real and on the generated batch, so each call
    normalises with its own batch statistics; callers should do the same for parity.

    Args:
        channels: base width (``D_channel``, 64); see `discriminator_widths`.
        image_size: input side, 4 * 2**n (64); the last feature map is 4 x 4.
        image_channels: input channels (3).
        batch_norm: False drops every batch norm (the WGAN-GP critic).
        bn_momentum, bn_epsilon: batch-norm constants (0.9, 1e-5).
        bn_update_rule: ``"tf1_fused"`` (the original's) or ``"pytorch"``.
    """

    def __init__(
        self,
        channels: int = 64,
        image_size: int = 64,
        image_channels: int = 3,
        batch_norm: bool = True,
        bn_momentum: float = BN_MOMENTUM,
        bn_epsilon: float = BN_EPSILON,
        bn_update_rule: str = SUALAB_BN_RULE,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_positive(type(self).__name__, channels=channels, image_channels=image_channels)
        self.num_downsamplings = _num_upsamplings(image_size, type(self).__name__)
        self.channels = channels
        self.image_size = image_size
        self.image_channels = image_channels
        self.batch_norm = bool(batch_norm)
        self.bn_momentum = bn_momentum
        self.bn_epsilon = bn_epsilon
        self.bn_update_rule = bn_update_rule
        convs = []
        norms = []
        for index, width in enumerate(discriminator_widths(channels, self.num_downsamplings)):
            convs.append(
                layers.Conv2D(
                    width,
                    5,
                    strides=2,
                    padding="same",
                    kernel_initializer=_normal_init(),
                    name=f"d_conv_{index}",
                )
            )
            if index > 0 and self.batch_norm:
                norms.append(_batch_norm(f"d_bn_{index}", bn_momentum, bn_epsilon, bn_update_rule))
        _attach(self, "convs", convs)
        _attach(self, "norms", norms)
        self.flatten = layers.Flatten(name="d_flatten")
        self.dense = layers.Dense(1, kernel_initializer=_normal_init(), name="d_dense")

    def _check_input(self, images):
        expected = (self.image_size, self.image_size, self.image_channels)
        if tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"{type(self).__name__} expects images of shape [B, {expected[0]}, "
                f"{expected[1]}, {expected[2]}]. Received: shape={tuple(images.shape)}"
            )

    @property
    def convs(self) -> list:
        return _attached(self, "convs")

    @property
    def norms(self) -> list:
        return _attached(self, "norms")

    def features(self, x, training=False):
        """The flattened last feature map (input of the logit layer)."""
        norms = self.norms
        for index, conv in enumerate(self.convs):
            x = conv(x)
            if index > 0 and self.batch_norm:
                x = norms[index - 1](x, training=training)
            x = ops.leaky_relu(x, negative_slope=LEAKY_SLOPE)
        return self.flatten(x)

    def call(self, images, training=False):
        self._check_input(images)
        return self.dense(self.features(images, training=training))

    def get_config(self):
        return {
            **super().get_config(),
            "channels": self.channels,
            "image_size": self.image_size,
            "image_channels": self.image_channels,
            "batch_norm": self.batch_norm,
            "bn_momentum": self.bn_momentum,
            "bn_epsilon": self.bn_epsilon,
            "bn_update_rule": self.bn_update_rule,
        }


def _label_embedding(num_classes: int, dim: int, name: str) -> layers.Embedding:
    return layers.Embedding(
        num_classes,
        dim,
        embeddings_initializer=keras.initializers.RandomNormal(mean=0.0, stddev=1.0),
        name=name,
    )


def _check_label_units(owner: str, label_units: int) -> int:
    if not isinstance(label_units, int) or label_units < 0:
        raise ValueError(
            f"{owner} needs label_units >= 0 (0: the label joins the first layer's inputs). "
            f"Received: label_units={label_units!r}"
        )
    return label_units


def _check_classes(owner: str, num_classes: int) -> None:
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(
            f"{owner} needs num_classes >= 2 (a conditional GAN needs at least two classes). "
            f"Received: num_classes={num_classes!r}"
        )


@keras.saving.register_keras_serializable(package=PACKAGE)
class ConditionalDCGANGenerator(DCGANGenerator):
    """DCGAN generator on concat(z, Embedding(y)) (Mirza & Osindero, 2014).

    Called as ``generator(z, labels, training=...)`` with integer labels [B].

    Batch norm follows PyTorch (``bn_update_rule="pytorch"``) like the mask project's
    networks.

    Args:
        num_classes: number of classes (>= 2); also the embedding size, as the mask
            project's ``nn.Embedding(2, 2)``.
        Other arguments as `DCGANGenerator`.
    """

    def __init__(self, num_classes: int = 2, **kwargs):
        kwargs.setdefault("bn_update_rule", PYTORCH_BN_RULE)
        super().__init__(**kwargs)
        _check_classes(type(self).__name__, num_classes)
        self.num_classes = num_classes
        self.label_embedding = _label_embedding(num_classes, num_classes, "g_label_embedding")

    def call(self, z, labels, training=False):
        embedded = self.label_embedding(ops.cast(labels, "int32"))
        latent = ops.concatenate([ops.cast(z, embedded.dtype), embedded], axis=-1)
        return self._synthesise(latent, training)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ConditionalDCGANDiscriminator(DCGANDiscriminator):
    """DCGAN discriminator on concat(image, label plane) -> [B, 1] logits.

    The plane is Embedding(y) with image_size**2 values reshaped to [H, W, 1], concatenated
    after the image channels (the mask project's conditional DCGAN discriminator input).
    With ``batch_norm=False`` this is the conditional WGAN-GP critic.

    Called as ``discriminator(images, labels, training=...)``.
    """

    def __init__(self, num_classes: int = 2, **kwargs):
        kwargs.setdefault("bn_update_rule", PYTORCH_BN_RULE)
        super().__init__(**kwargs)
        _check_classes(type(self).__name__, num_classes)
        self.num_classes = num_classes
        self.label_embedding = _label_embedding(
            num_classes, self.image_size * self.image_size, "d_label_embedding"
        )

    def call(self, images, labels, training=False):
        self._check_input(images)
        plane = self.label_embedding(ops.cast(labels, "int32"))
        plane = ops.reshape(plane, (-1, self.image_size, self.image_size, 1))
        x = ops.concatenate([ops.cast(images, plane.dtype), plane], axis=-1)
        return self.dense(self.features(x, training=training))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ACGANDiscriminator(DCGANDiscriminator):
    """AC-GAN discriminator (Odena et al., 2017): one trunk, two heads.

    Returns ``(adversarial_logits [B, 1], class_logits [B, num_classes])``; the class head
    is a dense layer ``d_class`` on the same flattened features as the real/fake head.
    """

    def __init__(self, num_classes: int = 2, **kwargs):
        kwargs.setdefault("bn_update_rule", PYTORCH_BN_RULE)
        super().__init__(**kwargs)
        _check_classes(type(self).__name__, num_classes)
        self.num_classes = num_classes
        self.class_dense = layers.Dense(
            num_classes, kernel_initializer=_normal_init(), name="d_class"
        )

    def call(self, images, training=False):
        self._check_input(images)
        features = self.features(images, training=training)
        return self.dense(features), self.class_dense(features)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package=PACKAGE)
class MLPConditionalGenerator(keras.Model):
    """The "simple cGAN" generator (Mirza & Osindero, 2014), widths of the mask project.

    With ``label_units`` > 0 (default 128), the label gets its own hidden layer as in the
    paper's MNIST model (z -> 200 ReLU units and y -> 1000 ReLU units, concatenated into the
    joint hidden layer): h = concat(LReLU(W0 z + b0), LReLU(E[y])) with a learned
    ``label_units``-wide embedding E (one-hot y times a bias-free dense layer).
    ``label_units=0`` is the mask project's layout, h = LReLU(W0 concat(z, Embedding_K(y)) + b0),
    where the label is K of the first layer's inputs.

    The other hidden layers are h = LReLU(BN(W_i h + b_i)); image = tanh(W_out h + b_out)
    reshaped to [H, W, C]. The mask project's widths: 128, 256, 512, 1024, 2048.

    Args:
        num_classes: classes (>= 2).
        z_dim: latent size.
        image_size, image_channels: output shape.
        hidden_units: widths of the hidden layers; BN on all but the first.
        label_units: width of the label's hidden layer (0: the mask project's concat).
        bn_momentum, bn_epsilon: batch-norm constants (PyTorch defaults 0.9 / 1e-5; the
            original's ``BatchNorm1d(n, 0.8)`` sets epsilon 0.8 by a positional slip).
        bn_update_rule: ``"pytorch"`` (default: unbiased running variance, as the mask
            project's ``nn.BatchNorm1d``) or ``"tf1_fused"``.
    """

    def __init__(
        self,
        num_classes: int = 2,
        z_dim: int = 100,
        image_size: int = 64,
        image_channels: int = 3,
        hidden_units=(128, 256, 512, 1024, 2048),
        label_units: int = 128,
        bn_momentum: float = BN_MOMENTUM,
        bn_epsilon: float = BN_EPSILON,
        bn_update_rule: str = PYTORCH_BN_RULE,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_classes(type(self).__name__, num_classes)
        _check_positive(
            type(self).__name__, z_dim=z_dim, image_size=image_size, image_channels=image_channels
        )
        hidden_units = tuple(int(u) for u in hidden_units)
        if not hidden_units or min(hidden_units) < 1:
            raise ValueError(
                f"{type(self).__name__} needs at least one positive hidden width. "
                f"Received: hidden_units={hidden_units}"
            )
        self.num_classes = num_classes
        self.z_dim = z_dim
        self.image_size = image_size
        self.image_channels = image_channels
        self.hidden_units = hidden_units
        self.label_units = _check_label_units(type(self).__name__, label_units)
        self.bn_momentum = bn_momentum
        self.bn_epsilon = bn_epsilon
        self.bn_update_rule = bn_update_rule
        self.label_embedding = _label_embedding(
            num_classes, label_units or num_classes, "g_label_embedding"
        )
        _attach(
            self, "hidden", [layers.Dense(u, name=f"g_fc_{i}") for i, u in enumerate(hidden_units)]
        )
        _attach(
            self,
            "norms",
            [
                _batch_norm(f"g_bn_{i}", bn_momentum, bn_epsilon, bn_update_rule)
                for i in range(1, len(hidden_units))
            ],
        )
        self.output_dense = layers.Dense(image_size * image_size * image_channels, name="g_fc_out")
        self.reshape = layers.Reshape((image_size, image_size, image_channels), name="g_reshape")

    def call(self, z, labels, training=False):
        embedded = self.label_embedding(ops.cast(labels, "int32"))
        z = ops.cast(z, embedded.dtype)
        norms = _attached(self, "norms")
        hidden = _attached(self, "hidden")
        x = _first_hidden_with_label(hidden[0], z, embedded, self.label_units)
        for index, dense in enumerate(hidden[1:]):
            x = ops.leaky_relu(norms[index](dense(x), training=training), LEAKY_SLOPE)
        return ops.tanh(self.reshape(self.output_dense(x)))

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "z_dim": self.z_dim,
            "image_size": self.image_size,
            "image_channels": self.image_channels,
            "hidden_units": list(self.hidden_units),
            "label_units": self.label_units,
            "bn_momentum": self.bn_momentum,
            "bn_epsilon": self.bn_epsilon,
            "bn_update_rule": self.bn_update_rule,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class MLPConditionalDiscriminator(keras.Model):
    """The "simple cGAN" discriminator (Mirza & Osindero, 2014) -> [B, 1] logits.

    With ``label_units`` > 0 (default 128), the label has its own hidden layer joined with the
    image's first hidden layer, as in the paper (x -> 240 maxout units, y -> 50 maxout units,
    joint layer): h = concat(LReLU(W0 flatten(x) + b0), LReLU(E[y])). ``label_units=0`` is the
    mask project's layout, h = LReLU(W0 [flatten(x); Embedding_K(y)] + b0), where the label
    is K of thousands of inputs and a fresh network barely sees it.

    The other hidden layers are h = LReLU(Dropout_p(W_i h + b_i)); logit = W_out h + b_out
    (mask project: 512 units, 4 layers, dropout 0.4, no sigmoid). ``dropout_rate=0`` gives the
    conditional WGAN-GP MLP critic's layout (no dropout, no BN).
    """

    def __init__(
        self,
        num_classes: int = 2,
        image_size: int = 64,
        image_channels: int = 3,
        hidden_units=(512, 512, 512, 512),
        dropout_rate: float = 0.4,
        label_units: int = 128,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_classes(type(self).__name__, num_classes)
        hidden_units = tuple(int(u) for u in hidden_units)
        if not hidden_units or min(hidden_units) < 1:
            raise ValueError(
                f"{type(self).__name__} needs at least one positive hidden width. "
                f"Received: hidden_units={hidden_units}"
            )
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(
                f"dropout_rate must be in [0, 1). Received: dropout_rate={dropout_rate}"
            )
        self.num_classes = num_classes
        self.image_size = image_size
        self.image_channels = image_channels
        self.hidden_units = hidden_units
        self.dropout_rate = float(dropout_rate)
        self.label_units = _check_label_units(type(self).__name__, label_units)
        self.label_embedding = _label_embedding(
            num_classes, label_units or num_classes, "d_label_embedding"
        )
        self.flatten = layers.Flatten(name="d_flatten")
        _attach(
            self, "hidden", [layers.Dense(u, name=f"d_fc_{i}") for i, u in enumerate(hidden_units)]
        )
        _attach(
            self,
            "dropouts",
            [
                layers.Dropout(self.dropout_rate, name=f"d_dropout_{i}")
                for i in range(1, len(hidden_units))
            ],
        )
        self.output_dense = layers.Dense(1, name="d_fc_out")

    def call(self, images, labels, training=False):
        if tuple(images.shape[1:]) != (self.image_size, self.image_size, self.image_channels):
            raise ValueError(
                f"{type(self).__name__} expects images of shape [B, {self.image_size}, "
                f"{self.image_size}, {self.image_channels}]. Received: shape={tuple(images.shape)}"
            )
        embedded = self.label_embedding(ops.cast(labels, "int32"))
        pixels = ops.cast(self.flatten(images), embedded.dtype)
        dropouts = _attached(self, "dropouts")
        hidden = _attached(self, "hidden")
        x = _first_hidden_with_label(hidden[0], pixels, embedded, self.label_units)
        for index, dense in enumerate(hidden[1:]):
            x = dense(x)
            if self.dropout_rate > 0:
                x = dropouts[index](x, training=training)
            x = ops.leaky_relu(x, negative_slope=LEAKY_SLOPE)
        return self.output_dense(x)

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "image_size": self.image_size,
            "image_channels": self.image_channels,
            "hidden_units": list(self.hidden_units),
            "dropout_rate": self.dropout_rate,
            "label_units": self.label_units,
        }


def build_dcgan(
    z_dim: int = 100,
    fc_channels: int = 512,
    g_channels: int = 64,
    d_channels: int = 64,
    image_size: int = 64,
    image_channels: int = 3,
) -> tuple[DCGANGenerator, DCGANDiscriminator]:
    """A built (weights created) sualab generator and discriminator."""
    generator = DCGANGenerator(
        z_dim=z_dim,
        fc_channels=fc_channels,
        channels=g_channels,
        image_size=image_size,
        image_channels=image_channels,
        name="generator",
    )
    discriminator = DCGANDiscriminator(
        channels=d_channels,
        image_size=image_size,
        image_channels=image_channels,
        name="discriminator",
    )
    generator(ops.zeros((1, z_dim)))
    discriminator(ops.zeros((1, image_size, image_size, image_channels)))
    return generator, discriminator
