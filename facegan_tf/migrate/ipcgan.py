"""IPCGAN (dawei6875797, Wang et al. CVPR 2018) TF1 checkpoints -> Keras models.

Kinds:

* ``"ipcgan"``: ``acgan.model-N`` -> ``{"generator": IPCGANGenerator, "discriminator":
  IPCGANDiscriminator}``: all 206 tensors, including the 80 zero-debias tensors of the 20
  batch norms (``<bn>/<bn>/moving_{mean,variance}/{biased,local_step}``), which become the
  `BatchNorm` debias state so that training continues the original's averages exactly. The
  stored ``moving_mean``/``moving_variance`` already hold the debiased averages (what
  inference uses).
* ``"ipcgan_alexnet"``: ``alexnet.model-N`` -> ``{"alexnet": AlexNet}`` (18 tensors).
* ``"ipcgan_age_classifier"``: ``age_classifier.model-N`` -> ``{"age_head":
  AgeClassifierHead}`` (6 tensors ``alexnet/age_fc{6,7,8}``).

Mapping table (Keras layer ``L`` of the model; TF1 scope ``S``):

================================  =====================================  ==============
Keras weight                      TF1 tensor                             transform
================================  =====================================  ==============
generator ``L.kernel``/``bias``   ``generator/S/weights``/``biases``      none
  ``conv1`` .. ``conv4``          ``S`` = ``conv1`` .. ``conv4``
  ``unit_i_sub1_conv1``           ``unit_i/sub1/conv1``
  ``unit_i_sub2_conv2``           ``unit_i/sub2/conv2``
  ``deconv1``, ``deconv2``        ``deconv1``, ``deconv2`` ([k,k,out,in])
generator BatchNorm ``L.gamma``,  ``generator/S/gamma``, ``beta``,        none
``beta``, ``moving_mean``,        ``moving_mean``, ``moving_variance``
``moving_variance``
  ``bn1`` .. ``bn5``              ``bn1`` .. ``bn5``
  ``unit_i_sub1_bn1``             ``unit_i/sub1/bn1``
  ``unit_i_sub2_bn2``             ``unit_i/sub2/bn2``
discriminator ``dis``,            ``discriminator/dis``, ``dis_1`` ..     none
``dis_1`` .. ``dis_4``            (``weights``, ``biases``)
discriminator ``dis_bn0..2``      ``discriminator/dis_bn0..2/*``          none
BatchNorm ``moving_mean_biased``,  ``<bn>/<bn>/moving_mean/biased``,      none
``moving_mean_local_step``,       ``.../moving_mean/local_step``,
``moving_variance_biased``,       ``.../moving_variance/biased``,
``moving_variance_local_step``    ``.../moving_variance/local_step``
  (``<bn>`` = full TF1 scope, e.g. ``generator/unit_3/sub1/bn1``)
alexnet ``conv1`` .. ``conv5``,   ``alexnet/<L>/weights``, ``biases``     none (grouped
``fc6``, ``fc7``, ``new_1``,                                             kernels keep
``new_2``                                                                [k,k,in/2,out])
age_head ``age_fc6..8``           ``alexnet/age_fc6..8/*``                none
================================  =====================================  ==============

Widths (generator base filters, residual units, age groups, discriminator widths, AlexNet
widths) are read from the tensor shapes and reported in ``info``.
"""

from __future__ import annotations

import os
import re

import keras

from facegan_tf.migrate.tf1 import (
    OPTIMIZER_IGNORE_PATTERNS,
    LegacyCheckpoint,
    LegacyCheckpointError,
    WeightSource,
    load_strict,
)
from facegan_tf.networks.alexnet import (
    AgeClassifierHead,
    AlexNet,
    build_age_head,
    build_alexnet,
    pool5_size,
)
from facegan_tf.networks.ipcgan import BatchNorm, build_discriminator, build_generator

KINDS = ("ipcgan", "ipcgan_alexnet", "ipcgan_age_classifier")

#: The zero-debias state of TF1 ``assign_moving_average`` (scope path doubled); loaded into
#: `BatchNorm`'s debias weights.
BN_BOOKKEEPING_PATTERNS = (
    r"(generator|discriminator)/.+/moving_(mean|variance)/(biased|local_step)",
)
_ALEXNET_IDENTITY = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "new_1", "new_2")
_ALEXNET_AGE = ("age_fc6", "age_fc7", "age_fc8")


def tf1_scope(layer_name: str) -> str:
    """Keras layer name -> TF1 scope relative to the model scope (``unit_3_sub1_bn1`` ->
    ``unit_3/sub1/bn1``; other names unchanged)."""
    match = re.fullmatch(r"unit_(\d+)_(sub\d)_(\w+)", layer_name)
    if match:
        return f"unit_{match.group(1)}/{match.group(2)}/{match.group(3)}"
    return layer_name


def _layer_pairs(layer, prefix: str) -> list[tuple[object, str]]:
    if isinstance(layer, BatchNorm):
        return [
            (layer.gamma, f"{prefix}/gamma"),
            (layer.beta, f"{prefix}/beta"),
            (layer.moving_mean, f"{prefix}/moving_mean"),
            (layer.moving_variance, f"{prefix}/moving_variance"),
            (layer.moving_mean_biased, f"{prefix}/{prefix}/moving_mean/biased"),
            (layer.moving_mean_local_step, f"{prefix}/{prefix}/moving_mean/local_step"),
            (layer.moving_variance_biased, f"{prefix}/{prefix}/moving_variance/biased"),
            (layer.moving_variance_local_step, f"{prefix}/{prefix}/moving_variance/local_step"),
        ]
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose, keras.layers.Dense)):
        return [(layer.kernel, f"{prefix}/weights"), (layer.bias, f"{prefix}/biases")]
    return []


def weight_sources(model: keras.Model, scope: str, model_label: str) -> list[WeightSource]:
    """One `WeightSource` per weight of ``model`` (TF1 scope ``scope``), per the table."""
    sources = []
    for layer in model._flatten_layers(include_self=False):
        for variable, tf1_name in _layer_pairs(layer, f"{scope}/{tf1_scope(layer.name)}"):
            sources.append(WeightSource(variable, tf1_name, f"{model_label}/{variable.path}"))
    return sources


def _shape(checkpoint: LegacyCheckpoint, name: str, what: str) -> tuple[int, ...]:
    if name not in checkpoint:
        raise LegacyCheckpointError(
            f"{checkpoint.prefix!r} is not {what}: tensor {name!r} is missing. First tensors: "
            f"{checkpoint.names()[:5]}"
        )
    return checkpoint.shapes[name]


def infer_ipcgan_hparams(checkpoint: LegacyCheckpoint) -> dict:
    """Generator/discriminator widths from an ``acgan.model-N`` checkpoint."""
    what = "an IPCGAN acgan.model checkpoint"
    conv1 = _shape(checkpoint, "generator/conv1/weights", what)
    dis = _shape(checkpoint, "discriminator/dis/weights", what)
    dis_1 = _shape(checkpoint, "discriminator/dis_1/weights", what)
    dis_4 = _shape(checkpoint, "discriminator/dis_4/weights", what)
    units = {
        int(m.group(1))
        for name in checkpoint.names()
        if (m := re.fullmatch(r"generator/unit_(\d+)/sub1/conv1/weights", name))
    }
    if units != set(range(len(units))):
        raise LegacyCheckpointError(
            f"{checkpoint.prefix!r}: residual units are not numbered 0..N-1: {sorted(units)}"
        )
    age_groups = int(conv1[2]) - 3
    if age_groups < 1 or int(dis_1[2]) - int(dis[3]) != age_groups:
        raise LegacyCheckpointError(
            f"{checkpoint.prefix!r}: generator and discriminator disagree on the number of age "
            f"groups (conv1 input {conv1[2]} = 3 + groups; dis_1 input {dis_1[2]} = "
            f"{dis[3]} + groups)."
        )
    return {
        "g_base_filters": int(conv1[3]),
        "num_blocks": len(units),
        "age_groups": age_groups,
        "d_base_filters": int(dis[3]),
        "d_output_channels": int(dis_4[3]),
    }


def infer_alexnet_hparams(checkpoint: LegacyCheckpoint) -> dict:
    what = "an IPCGAN AlexNet checkpoint"
    conv_filters = [
        int(_shape(checkpoint, f"alexnet/conv{i}/weights", what)[3]) for i in range(1, 6)
    ]
    return {
        "conv_filters": conv_filters,
        "fc_units": int(_shape(checkpoint, "alexnet/fc6/weights", what)[1]),
        "embedding_units": int(_shape(checkpoint, "alexnet/new_1/weights", what)[1]),
        "num_identities": int(_shape(checkpoint, "alexnet/new_2/weights", what)[1]),
    }


def infer_age_head_hparams(checkpoint: LegacyCheckpoint) -> dict:
    what = "an IPCGAN age-classifier checkpoint"
    fc6 = _shape(checkpoint, "alexnet/age_fc6/weights", what)
    return {
        "pool5_features": int(fc6[0]),
        "fc_units": int(fc6[1]),
        "age_groups": int(_shape(checkpoint, "alexnet/age_fc8/weights", what)[1]),
    }


def build_ipcgan_models(hparams: dict, image_size: int = 128) -> dict[str, keras.Model]:
    return {
        "generator": build_generator(
            hparams["g_base_filters"], hparams["num_blocks"], hparams["age_groups"], image_size
        ),
        "discriminator": build_discriminator(
            hparams["d_base_filters"], hparams["d_output_channels"], hparams["age_groups"],
            image_size,
        ),
    }


def _alexnet_input_size(conv_filters, pool5_features: int | None) -> int:
    """227, or the smallest input giving ``pool5_features`` (for cut-down checkpoints)."""
    if pool5_features is None or pool5_size(conv_filters) == pool5_features:
        return 227
    for size in range(67, 1024):
        try:
            if pool5_size(conv_filters, size) == pool5_features:
                return size
        except ValueError:
            continue
    raise LegacyCheckpointError(
        f"No AlexNet input size gives {pool5_features} pool5 features with conv5 width "
        f"{conv_filters[4]}."
    )


def load(kind: str, path: str, image_size: int = 128, strict_extras: bool = False):
    """Reads an IPCGAN checkpoint (folder or prefix) of ``kind``.

    Args:
        kind: ``"ipcgan"``, ``"ipcgan_alexnet"`` or ``"ipcgan_age_classifier"``.
        path: checkpoint folder (resolved through its ``checkpoint`` state file) or prefix.
        image_size: side used to build the generator/discriminator (any multiple of 8 works
            afterwards).
        strict_extras: AlexNet kinds only. By default the other part's tensors (the age head
            in an AlexNet checkpoint, the trunk in an age-classifier checkpoint), optimiser
            slots and ``global_step`` are skipped explicitly, since the original restored
            only its 18 + 6 tensors from checkpoints that may hold more; True refuses them.

    Returns:
        (models, info): built models and a dict with the inferred widths, ``"prefix"``,
        ``"loaded"`` and ``"ignored"`` tensor names.
    """
    if kind not in KINDS:
        raise ValueError(f"This converter reads kinds {KINDS}. Received: {kind=}")
    checkpoint = LegacyCheckpoint(path)
    if kind == "ipcgan":
        hparams = infer_ipcgan_hparams(checkpoint)
        models = build_ipcgan_models(hparams, image_size)
        sources = weight_sources(models["generator"], "generator", "generator") + weight_sources(
            models["discriminator"], "discriminator", "discriminator"
        )
        ignore = ()
    elif kind == "ipcgan_alexnet":
        hparams = infer_alexnet_hparams(checkpoint)
        pool5_features = None
        if "alexnet/fc6/weights" in checkpoint:
            pool5_features = checkpoint.shapes["alexnet/fc6/weights"][0]
        input_size = _alexnet_input_size(hparams["conv_filters"], pool5_features)
        hparams["input_size"] = input_size
        models = {"alexnet": build_alexnet(
            tuple(hparams["conv_filters"]), hparams["fc_units"], hparams["embedding_units"],
            hparams["num_identities"], input_size,
        )}
        sources = weight_sources(models["alexnet"], "alexnet", "alexnet")
        ignore = () if strict_extras else (
            *OPTIMIZER_IGNORE_PATTERNS,
            r"alexnet/({})/(weights|biases)".format("|".join(_ALEXNET_AGE)),
        )
    else:
        hparams = infer_age_head_hparams(checkpoint)
        models = {"age_head": build_age_head(
            hparams["pool5_features"], hparams["fc_units"], hparams["age_groups"]
        )}
        sources = weight_sources(models["age_head"], "alexnet", "age_head")
        ignore = () if strict_extras else (
            *OPTIMIZER_IGNORE_PATTERNS,
            r"alexnet/({})/(weights|biases)".format("|".join(_ALEXNET_IDENTITY)),
        )
    all_weights = [w for model in models.values() for w in model.weights]
    report = load_strict(checkpoint, sources, all_weights, ignore)
    step = re.search(r"-(\d+)$", report.prefix)
    info = {
        "kind": kind,
        **hparams,
        "step": int(step.group(1)) if step else None,
        "prefix": report.prefix,
        "loaded": report.loaded,
        "ignored": report.ignored,
    }
    return models, info


def convert_ipcgan(kind: str, tf1_checkpoint: str, output_dir: str) -> dict:
    """Converts a legacy IPCGAN checkpoint into a checkpoint folder of ours.

    ``output_dir`` receives a `facegan_tf.training.checkpointing.TrainingCheckpoint` folder of
    kind ``kind`` (``facegan_run.json`` with the inferred widths as config, ``ckpt-<step>``)
    and one ``<model>.keras`` file per model. The folder is accepted by
    ``test_ipcgan --checkpoint_dir``, by ``train_ipcgan --source_checkpoint_dir`` (kind
    ``ipcgan``) and by ``--alexnet_pretrained_model`` / ``--age_pretrained_model``.

    Returns:
        the ``info`` of `load` plus ``"output_dir"``, ``"checkpoint"`` and ``"keras_files"``.
    """
    from facegan_tf.training.checkpointing import TrainingCheckpoint, read_run_info

    existing = read_run_info(output_dir) if os.path.isdir(output_dir) else None
    if existing is not None:
        raise ValueError(
            f"Output folder {output_dir!r} already holds a {existing.get('kind')!r} checkpoint; "
            "choose an empty folder. Received: output_dir=" + repr(output_dir)
        )
    models, info = load(kind, tf1_checkpoint)
    config = {
        k: v for k, v in info.items() if k not in ("loaded", "ignored", "prefix", "kind")
    }
    config["converted_from"] = os.path.abspath(info["prefix"])
    checkpoint = TrainingCheckpoint(output_dir, kind, config, max_to_keep=1, **models)
    saved = checkpoint.save(info["step"] or 0)
    keras_files = []
    for name, model in models.items():
        target = os.path.join(output_dir, f"{name}.keras")
        model.save(target)
        keras_files.append(target)
    return {**info, "output_dir": output_dir, "checkpoint": saved, "keras_files": keras_files}


__all__ = [
    "AgeClassifierHead",
    "AlexNet",
    "KINDS",
    "convert_ipcgan",
    "load",
    "tf1_scope",
    "weight_sources",
]
