"""CycleGAN networks mirroring xhujoy/CycleGAN-tensorflow (Zhu et al., ICCV 2017).

* `ResnetGenerator`: c7s1-ngf, d2ngf, d4ngf, N x R4ngf, u2ngf, ungf, c7s1-out with tanh.
* `UnetGenerator`: the 8-level U-Net (256 x 256 input) with dropout in its first three
  decoder stages.
* `PatchDiscriminator`: the 70 x 70 PatchGAN; logits of side input / 8.

Exactly as the original: no convolution has a bias; instance norm with learnable
``scale``/``offset`` and epsilon 1e-5; kernels initialised from a truncated N(0, 0.02);
strided convolutions use TF ``SAME`` padding (for kernel 3, stride 2 on an even side: 0 pixels
before, 1 after), the 7 x 7 and residual convolutions explicit reflection padding and
``VALID``. Layer names equal the TF1 variable scopes (``g_e1_c``, ``g_r3_bn2``, ``d_h3_pred``,
...), which is what the legacy-checkpoint mapping relies on. Inputs and outputs are NHWC in
[-1, 1]; discriminators return logits.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from facegan_tf.layers import (
    PACKAGE,
    ForwardGradConv2D,
    InstanceNormalization,
    ReflectionPadding2D,
    leaky_relu,
    truncated_normal_init,
)


def _conv(filters: int, kernel: int, stride: int, padding: str, name: str) -> layers.Conv2D:
    # Stride-1 VALID convolutions (after reflection padding) take their gradients through
    # forward convolutions: same outputs, several times faster backward pass on CPU.
    conv_class = ForwardGradConv2D if (stride, padding) == (1, "valid") else layers.Conv2D
    return conv_class(
        filters,
        kernel,
        strides=stride,
        padding=padding,
        use_bias=False,
        kernel_initializer=truncated_normal_init(0.02),
        name=name,
    )


def _deconv(filters: int, kernel: int, name: str) -> layers.Conv2DTranspose:
    return layers.Conv2DTranspose(
        filters,
        kernel,
        strides=2,
        padding="same",
        use_bias=False,
        kernel_initializer=truncated_normal_init(0.02),
        name=name,
    )


def _check_side(inputs, multiple: int, minimum: int, model_name: str) -> None:
    for axis, side_name in ((1, "height"), (2, "width")):
        side = inputs.shape[axis]
        if side is not None and (side % multiple or side < minimum):
            raise ValueError(
                f"{model_name} needs an input {side_name} that is a multiple of {multiple} "
                f"and at least {minimum}. Received: input_shape={tuple(inputs.shape)}"
            )


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResidualBlock(layers.Layer):
    """xhujoy ``residule_block``: reflect pad 1, conv 3x3 ``<p>_c1``, IN ``<p>_bn1``, ReLU,
    reflect pad 1, conv 3x3 ``<p>_c2``, IN ``<p>_bn2``, plus the input (no ReLU after the sum).

    Args:
        filters: channels of the input and of both convolutions.
        prefix: TF1 scope prefix of the sub-layers (``g_r1`` ... ``g_rN``).
    """

    def __init__(self, filters: int, prefix: str, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.prefix = prefix
        self.pad1 = ReflectionPadding2D(1, name=f"{prefix}_pad1")
        self.conv1 = _conv(filters, 3, 1, "valid", f"{prefix}_c1")
        self.norm1 = InstanceNormalization(name=f"{prefix}_bn1")
        self.pad2 = ReflectionPadding2D(1, name=f"{prefix}_pad2")
        self.conv2 = _conv(filters, 3, 1, "valid", f"{prefix}_c2")
        self.norm2 = InstanceNormalization(name=f"{prefix}_bn2")

    def build(self, input_shape):
        self.conv1.build(self.pad1.compute_output_shape(input_shape))
        self.norm1.build(input_shape)
        self.conv2.build(self.pad2.compute_output_shape(input_shape))
        self.norm2.build(input_shape)

    def call(self, inputs):
        y = ops.relu(self.norm1(self.conv1(self.pad1(inputs))))
        return inputs + self.norm2(self.conv2(self.pad2(y)))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "prefix": self.prefix}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResnetGenerator(keras.Model):
    """xhujoy ``generator_resnet``: two stride-2 downsamplings, residual blocks, two upsamplings.

    Residual block i: reflect pad 1, conv ``g_r{i}_c1``, IN ``g_r{i}_bn1``, ReLU, reflect pad 1,
    conv ``g_r{i}_c2``, IN ``g_r{i}_bn2``, add the block input (no ReLU after the addition).
    Input sides must be multiples of 4.

    Args:
        ngf: base width (``--ngf``, 64 in the original).
        num_blocks: number of residual blocks (9 in the original).
        output_channels: channels of the output image.
    """

    def __init__(self, ngf: int = 64, num_blocks: int = 9, output_channels: int = 3, **kwargs):
        super().__init__(**kwargs)
        if ngf < 1 or num_blocks < 0 or output_channels < 1:
            raise ValueError(
                "ResnetGenerator needs ngf >= 1, num_blocks >= 0 and output_channels >= 1. "
                f"Received: {ngf=}, {num_blocks=}, {output_channels=}"
            )
        self.ngf = ngf
        self.num_blocks = num_blocks
        self.output_channels = output_channels
        self.pad_in = ReflectionPadding2D(3, name="g_e1_pad")
        self.e1_conv = _conv(ngf, 7, 1, "valid", "g_e1_c")
        self.e1_norm = InstanceNormalization(name="g_e1_bn")
        self.e2_conv = _conv(ngf * 2, 3, 2, "same", "g_e2_c")
        self.e2_norm = InstanceNormalization(name="g_e2_bn")
        self.e3_conv = _conv(ngf * 4, 3, 2, "same", "g_e3_c")
        self.e3_norm = InstanceNormalization(name="g_e3_bn")
        self.blocks = [
            ResidualBlock(ngf * 4, f"g_r{i}", name=f"g_r{i}") for i in range(1, num_blocks + 1)
        ]
        self.d1_deconv = _deconv(ngf * 2, 3, "g_d1_dc")
        self.d1_norm = InstanceNormalization(name="g_d1_bn")
        self.d2_deconv = _deconv(ngf, 3, "g_d2_dc")
        self.d2_norm = InstanceNormalization(name="g_d2_bn")
        self.pad_out = ReflectionPadding2D(3, name="g_pred_pad")
        self.pred_conv = _conv(output_channels, 7, 1, "valid", "g_pred_c")

    def call(self, inputs, training=None):
        _check_side(inputs, 4, 8, "ResnetGenerator")
        x = ops.relu(self.e1_norm(self.e1_conv(self.pad_in(inputs))))
        x = ops.relu(self.e2_norm(self.e2_conv(x)))
        x = ops.relu(self.e3_norm(self.e3_conv(x)))
        for block in self.blocks:
            x = block(x)
        x = ops.relu(self.d1_norm(self.d1_deconv(x)))
        x = ops.relu(self.d2_norm(self.d2_deconv(x)))
        return ops.tanh(self.pred_conv(self.pad_out(x)))

    def get_config(self):
        return {
            **super().get_config(),
            "ngf": self.ngf,
            "num_blocks": self.num_blocks,
            "output_channels": self.output_channels,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class UnetGenerator(keras.Model):
    """xhujoy ``generator_unet``: 8 stride-2 encoder and 8 decoder stages with skips.

    Encoder e1..e8: conv k4 s2 (``g_e{i}_conv``) then IN (``instance_norm`` for e1 — the
    original's default scope name — and ``g_bn_e{i}`` after), each after a leaky ReLU (0.2)
    except e1. Decoder d1..d7: ReLU, transposed conv ``g_d{i}``, dropout 0.5 (d1..d3, training
    only), IN ``g_bn_d{i}``, concatenation [decoder, encoder e(8-i)]; d8: ReLU, transposed conv,
    tanh. IN over the 1 x 1 bottleneck makes e8 equal ``g_bn_e8/offset`` whatever the input,
    as in the original. Input sides must be multiples of 256.

    Args:
        ngf: base width.
        output_channels: channels of the output image.
        dropout_rate: dropout of d1..d3 when called with ``training=True`` (keep prob 0.5).
    """

    def __init__(
        self, ngf: int = 64, output_channels: int = 3, dropout_rate: float = 0.5, **kwargs
    ):
        super().__init__(**kwargs)
        self.ngf = ngf
        self.output_channels = output_channels
        self.dropout_rate = dropout_rate
        widths = [ngf, ngf * 2, ngf * 4] + [ngf * 8] * 5
        self.encoder_convs = [
            _conv(width, 4, 2, "same", f"g_e{i + 1}_conv") for i, width in enumerate(widths)
        ]
        self.encoder_norms = [InstanceNormalization(name="instance_norm")] + [
            InstanceNormalization(name=f"g_bn_e{i}") for i in range(2, 9)
        ]
        decoder_widths = [ngf * 8] * 4 + [ngf * 4, ngf * 2, ngf]
        self.decoder_deconvs = [
            _deconv(width, 4, f"g_d{i + 1}") for i, width in enumerate(decoder_widths)
        ]
        self.decoder_norms = [InstanceNormalization(name=f"g_bn_d{i}") for i in range(1, 8)]
        self.decoder_dropouts = [
            layers.Dropout(dropout_rate, name=f"g_d{i}_dropout") for i in range(1, 4)
        ]
        self.output_deconv = _deconv(output_channels, 4, "g_d8")

    def call(self, inputs, training=None):
        _check_side(inputs, 256, 256, "UnetGenerator")
        skips = []
        x = inputs
        for index, (conv, norm) in enumerate(zip(self.encoder_convs, self.encoder_norms)):
            if index > 0:
                x = ops.leaky_relu(x, negative_slope=0.2)
            x = norm(conv(x))
            skips.append(x)
        for index, (deconv, norm) in enumerate(zip(self.decoder_deconvs, self.decoder_norms)):
            x = deconv(ops.relu(x))
            if index < len(self.decoder_dropouts):
                x = self.decoder_dropouts[index](x, training=training)
            x = ops.concatenate([norm(x), skips[6 - index]], axis=-1)
        return ops.tanh(self.output_deconv(ops.relu(x)))

    def get_config(self):
        return {
            **super().get_config(),
            "ngf": self.ngf,
            "output_channels": self.output_channels,
            "dropout_rate": self.dropout_rate,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class PatchDiscriminator(keras.Model):
    """xhujoy ``discriminator``: the 70 x 70 PatchGAN (Isola et al., 2017).

    h0: conv k4 s2 ``d_h0_conv``, lrelu 0.2; h1, h2: conv k4 s2, IN ``d_bn1``/``d_bn2``, lrelu;
    h3: conv k4 **s1** ``d_h3_conv``, IN ``d_bn3``, lrelu; prediction conv k4 s1 to one channel
    ``d_h3_pred``. All ``SAME``; the stride-1 k4 convolutions pad 1 before and 2 after, so the
    logits have side input / 8 (32 x 32 at 256 px). Returns logits (no sigmoid).

    Args:
        ndf: base width (``--ndf``, 64 in the original).
    """

    def __init__(self, ndf: int = 64, **kwargs):
        super().__init__(**kwargs)
        if ndf < 1:
            raise ValueError(f"PatchDiscriminator needs ndf >= 1. Received: {ndf=}")
        self.ndf = ndf
        self.h0_conv = _conv(ndf, 4, 2, "same", "d_h0_conv")
        self.h1_conv = _conv(ndf * 2, 4, 2, "same", "d_h1_conv")
        self.h1_norm = InstanceNormalization(name="d_bn1")
        self.h2_conv = _conv(ndf * 4, 4, 2, "same", "d_h2_conv")
        self.h2_norm = InstanceNormalization(name="d_bn2")
        self.h3_conv = _conv(ndf * 8, 4, 1, "same", "d_h3_conv")
        self.h3_norm = InstanceNormalization(name="d_bn3")
        self.pred_conv = _conv(1, 4, 1, "same", "d_h3_pred")
        self.activation = leaky_relu(0.2, name="d_lrelu")

    def call(self, inputs, training=None):
        _check_side(inputs, 8, 8, "PatchDiscriminator")
        x = self.activation(self.h0_conv(inputs))
        x = self.activation(self.h1_norm(self.h1_conv(x)))
        x = self.activation(self.h2_norm(self.h2_conv(x)))
        x = self.activation(self.h3_norm(self.h3_conv(x)))
        return self.pred_conv(x)

    def get_config(self):
        return {**super().get_config(), "ndf": self.ndf}


def build_generator(
    use_resnet: bool,
    ngf: int,
    output_channels: int,
    num_blocks: int = 9,
    input_channels: int = 3,
    image_size: int | None = None,
    name: str = "generator",
) -> keras.Model:
    """A built ResNet or U-Net generator (weights created for ``input_channels``)."""
    if use_resnet:
        model = ResnetGenerator(ngf, num_blocks, output_channels, name=name)
        build_side = image_size or 32
    else:
        model = UnetGenerator(ngf, output_channels, name=name)
        build_side = image_size or 256
    model(keras.ops.zeros((1, build_side, build_side, input_channels)))
    return model


def build_discriminator(
    ndf: int, input_channels: int = 3, image_size: int | None = None, name: str = "discriminator"
) -> keras.Model:
    """A built `PatchDiscriminator` (weights created for ``input_channels``)."""
    model = PatchDiscriminator(ndf, name=name)
    side = image_size or 32
    model(keras.ops.zeros((1, side, side, input_channels)))
    return model
