"""xhujoy/CycleGAN-tensorflow ``cyclegan.model-N`` checkpoints -> Keras CycleGAN models.

Mapping table (``<scope>`` is the TF1 variable scope, ``<L>`` the Keras layer name, which
equals the TF1 sub-scope):

=====================================  ==============================================
Keras weight                           TF1 tensor
=====================================  ==============================================
Conv2D ``<L>.kernel``                  ``<scope>/<L>/Conv/weights`` [kh, kw, in, out]
Conv2DTranspose ``<L>.kernel``         ``<scope>/<L>/Conv2d_transpose/weights`` [kh, kw, out, in]
InstanceNormalization ``<L>.scale``    ``<scope>/<L>/scale``
InstanceNormalization ``<L>.offset``   ``<scope>/<L>/offset``
(ignored)                              ``*/Adam``, ``*/Adam_1``, ``beta1_power*``, ``beta2_power*``
=====================================  ==============================================

Scopes: ``generatorA2B`` -> ``generator_a2b``, ``generatorB2A`` -> ``generator_b2a``,
``discriminatorA`` -> ``discriminator_a`` (judges domain A), ``discriminatorB`` ->
``discriminator_b``. Kernels copy without transposition. The architecture (ResNet or U-Net),
``ngf``, ``ndf``, the number of residual blocks and the channel counts are read from the
tensor shapes.
"""

from __future__ import annotations

import re

import keras

from facegan_tf.layers import InstanceNormalization
from facegan_tf.migrate.tf1 import (
    OPTIMIZER_IGNORE_PATTERNS,
    LegacyCheckpoint,
    LegacyCheckpointError,
    WeightSource,
    load_strict,
)
from facegan_tf.networks.cyclegan import build_discriminator, build_generator

#: Keras model name -> TF1 scope.
SCOPES = {
    "generator_a2b": "generatorA2B",
    "generator_b2a": "generatorB2A",
    "discriminator_a": "discriminatorA",
    "discriminator_b": "discriminatorB",
}


def infer_hparams(checkpoint: LegacyCheckpoint) -> dict:
    """Reads architecture, widths, block count and channels from the tensor shapes."""
    shapes = checkpoint.shapes
    g = "generatorA2B"
    if f"{g}/g_e1_c/Conv/weights" in shapes:
        use_resnet = True
        first = shapes[f"{g}/g_e1_c/Conv/weights"]
        last_name = f"{g}/g_pred_c/Conv/weights"
        if last_name not in shapes:
            raise LegacyCheckpointError(
                f"{checkpoint.prefix!r}: ResNet generator without {last_name}."
            )
        output_channels = shapes[last_name][3]
        blocks = {
            int(m.group(1))
            for name in shapes
            if (m := re.fullmatch(rf"{g}/g_r(\d+)_c1/Conv/weights", name))
        }
        num_blocks = len(blocks)
        if blocks != set(range(1, num_blocks + 1)):
            raise LegacyCheckpointError(
                f"{checkpoint.prefix!r}: residual blocks are not numbered 1..N: {sorted(blocks)}"
            )
    elif f"{g}/g_e1_conv/Conv/weights" in shapes:
        use_resnet = False
        first = shapes[f"{g}/g_e1_conv/Conv/weights"]
        last_name = f"{g}/g_d8/Conv2d_transpose/weights"
        if last_name not in shapes:
            raise LegacyCheckpointError(
                f"{checkpoint.prefix!r}: U-Net generator without {last_name}."
            )
        output_channels = shapes[last_name][2]
        num_blocks = 0
    else:
        raise LegacyCheckpointError(
            f"{checkpoint.prefix!r} is not an xhujoy CycleGAN checkpoint: it has neither "
            f"{g}/g_e1_c/Conv/weights (ResNet) nor {g}/g_e1_conv/Conv/weights (U-Net). "
            f"First tensors: {checkpoint.names()[:5]}"
        )
    d_name = "discriminatorA/d_h0_conv/Conv/weights"
    if d_name not in shapes:
        raise LegacyCheckpointError(f"{checkpoint.prefix!r}: no discriminator tensor {d_name}.")
    return {
        "use_resnet": use_resnet,
        "ngf": int(first[3]),
        "ndf": int(shapes[d_name][3]),
        "num_blocks": num_blocks,
        "input_nc": int(first[2]),
        "output_nc": int(output_channels),
    }


def build_models(hparams: dict, image_size: int | None = None) -> dict[str, keras.Model]:
    """The four CycleGAN models for ``hparams`` (as returned by `infer_hparams`)."""
    input_nc, output_nc = hparams["input_nc"], hparams["output_nc"]
    common = {
        "use_resnet": hparams["use_resnet"],
        "ngf": hparams["ngf"],
        "num_blocks": hparams["num_blocks"],
        "image_size": image_size,
    }
    return {
        "generator_a2b": build_generator(
            output_channels=output_nc, input_channels=input_nc, name="generator_a2b", **common
        ),
        "generator_b2a": build_generator(
            output_channels=input_nc, input_channels=output_nc, name="generator_b2a", **common
        ),
        "discriminator_a": build_discriminator(
            hparams["ndf"], input_nc, image_size, name="discriminator_a"
        ),
        "discriminator_b": build_discriminator(
            hparams["ndf"], output_nc, image_size, name="discriminator_b"
        ),
    }


def weight_sources(models: dict[str, keras.Model]) -> list[WeightSource]:
    """One `WeightSource` per weight of the four models, following the module's table."""
    sources = []
    for model_name, model in models.items():
        scope = SCOPES[model_name]
        for layer in model._flatten_layers(include_self=False):
            prefix = f"{scope}/{layer.name}"
            if isinstance(layer, keras.layers.Conv2DTranspose):
                pairs = [(layer.kernel, f"{prefix}/Conv2d_transpose/weights")]
            elif isinstance(layer, keras.layers.Conv2D):
                pairs = [(layer.kernel, f"{prefix}/Conv/weights")]
            elif isinstance(layer, InstanceNormalization):
                pairs = [(layer.scale, f"{prefix}/scale"), (layer.offset, f"{prefix}/offset")]
            else:
                pairs = []
            for variable, tf1_name in pairs:
                sources.append(WeightSource(variable, tf1_name, f"{model_name}/{variable.path}"))
    return sources


def load(kind: str, path: str, image_size: int | None = None) -> tuple[dict, dict]:
    """Reads an xhujoy checkpoint (folder or prefix) into the four Keras models.

    Returns:
        (models, info) as described in `facegan_tf.migrate.load_legacy_with_info`.
    """
    if kind != "cyclegan_xhujoy":
        raise ValueError(f"This converter reads kind 'cyclegan_xhujoy'. Received: {kind=}")
    checkpoint = LegacyCheckpoint(path)
    hparams = infer_hparams(checkpoint)
    models = build_models(hparams, image_size)
    all_weights = [w for model in models.values() for w in model.weights]
    report = load_strict(checkpoint, weight_sources(models), all_weights, OPTIMIZER_IGNORE_PATTERNS)
    info = {
        **hparams,
        "prefix": report.prefix,
        "loaded": report.loaded,
        "ignored": report.ignored,
    }
    return models, info
