"""sualab/DCGAN_Face_gen_tf ``model_N.ckpt`` -> Keras `DCGANGenerator` / `DCGANDiscriminator`.

The original saves every global variable after building its two Adam optimisers, so a
checkpoint holds the 48 model tensors (at 64 x 64), one ``<var>/Adam`` and ``<var>/Adam_1``
slot per trainable variable and the beta powers of both optimisers. `load` skips the slots
and powers and consumes every model tensor exactly once
(`facegan_tf.migrate.tf1.load_strict`); `read_adam_state` reads them for continuing the
training.

Widths are read from the tensor shapes: ``z_dim`` and ``G_FC_layer_channel`` from
``generator/weights`` [z_dim, 16 * fc], the number of transposed convolutions (hence the image
side 4 * 2**n) from ``generator/conv2d_transpose*``, ``G_channel`` from the output channels
of the last-but-one transposed convolution, ``D_channel`` from ``discriminator/conv2d/kernel``.

Conventions of the converted generator (the original's): z ~ U(-1, 1) with ``z_dim``
values (100 in the original); output NHWC **RGB** in [-1, 1] (tanh), i.e. pixel = (x + 1) *
127.5. The discriminator takes RGB images in [-1, 1] and returns [B, 1] logits. Call both
with ``training=False`` for the moving-statistics batch norm of the original sampler, or
``training=True`` for its training graph (batch statistics, which also updates the moving
averages in Keras).

Mapping (TF1 name -> Keras weight, no transposition; kernel layouts are identical):

================================================  ===========================================
TF1 tensor                                         Keras weight
================================================  ===========================================
``generator/weights``, ``generator/biases``        ``generator/g_dense/kernel``, ``/bias``
``generator/batch_normalization/*``                ``generator/g_bn_0/*``
``generator/conv2d_transpose{,_1,..}/kernel|bias``  ``generator/g_deconv_{0,1,..}/kernel|bias``
``generator/batch_normalization_{i}/*``            ``generator/g_bn_{i}/*``
``discriminator/conv2d{,_1,..}/kernel|bias``       ``discriminator/d_conv_{0,1,..}/kernel|bias``
``discriminator/batch_normalization{,_1,_2}/*``    ``discriminator/d_bn_{1,2,3}/*``
``discriminator/weights``, ``discriminator/biases``  ``discriminator/d_dense/kernel``, ``/bias``
================================================  ===========================================

where ``*`` is ``gamma``, ``beta``, ``moving_mean``, ``moving_variance``.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

from facegan_tf.fileio import write_json_atomic
from facegan_tf.migrate.tf1 import (
    OPTIMIZER_IGNORE_PATTERNS,
    LegacyCheckpoint,
    LegacyCheckpointError,
    WeightSource,
    load_strict,
)
from facegan_tf.networks.dcgan import build_dcgan, generator_widths

KIND = "dcgan_sualab"
HYPERPARAM_FILE = "hyperparam.json"
CONVERSION_FILE = "conversion.json"
#: Adam slots and step counts of both optimisers, written next to the converted models.
ADAM_STATE_FILE = "adam_state.npz"
#: The original's optimisers: the generator's is built first (``beta1_power``, ``beta2_power``),
#: the discriminator's second (``beta1_power_1``, ``beta2_power_1``).
BETA_POWER_SUFFIX = {"generator": "", "discriminator": "_1"}
#: The original's data preprocessing: centre crop 96 of the 128 x 128 FFHQ thumbnails.
SUALAB_CROP_SIZE = 96
#: Files that mark a folder as holding a conversion or a facegan_tf training run.
RUN_MARKERS = (CONVERSION_FILE, "generator.keras", "facegan_run.json", "checkpoint")
BN_VARIABLES = ("gamma", "beta", "moving_mean", "moving_variance")

#: Options that `load` accepts, in the original's hyper-parameter names.
WIDTH_OPTIONS = ("z_dim", "G_FC_layer_channel", "G_channel", "D_channel")


def tf1_layer_name(scope: str, base: str, index: int) -> str:
    """TF1 auto-naming: ``conv2d``, ``conv2d_1``, ``conv2d_2``, ... inside ``scope``."""
    return f"{scope}/{base}" + (f"_{index}" if index else "")


def _count_layers(checkpoint: LegacyCheckpoint, scope: str, base: str) -> int:
    pattern = re.compile(rf"^{scope}/{base}(_(\d+))?/kernel$")
    indices = sorted(
        int(m.group(2) or 0) for m in (pattern.match(n) for n in checkpoint.names()) if m
    )
    if indices != list(range(len(indices))):
        raise LegacyCheckpointError(
            f"Checkpoint {checkpoint.prefix!r} has non-consecutive {scope}/{base} layers "
            f"{indices}; expected {base}, {base}_1, {base}_2, ... as sualab DCGAN writes them."
        )
    return len(indices)


def _deconv_kernel(index: int) -> str:
    return tf1_layer_name("generator", "conv2d_transpose", index) + "/kernel"


def infer_hyperparameters(checkpoint: LegacyCheckpoint) -> dict:
    """The sualab width hyper-parameters implied by the tensor shapes.

    Raises:
        LegacyCheckpointError: the checkpoint is not a sualab DCGAN or its widths do not
            follow the DCGAN pattern (each layer twice as wide as the next).
    """
    required = ("generator/weights", "discriminator/conv2d/kernel", "discriminator/weights")
    missing = [name for name in required if name not in checkpoint]
    if missing:
        raise LegacyCheckpointError(
            f"Checkpoint {checkpoint.prefix!r} is not a sualab DCGAN checkpoint: missing "
            f"{missing} (expected tensors such as 'generator/weights' and "
            "'discriminator/conv2d/kernel')."
        )
    z_dim, dense_units = checkpoint.shapes["generator/weights"]
    if dense_units % 16:
        raise LegacyCheckpointError(
            f"'generator/weights' in {checkpoint.prefix!r} has shape "
            f"{list(checkpoint.shapes['generator/weights'])}; expected [z_dim, 4 * 4 * "
            "G_FC_layer_channel]."
        )
    num_deconvs = _count_layers(checkpoint, "generator", "conv2d_transpose")
    num_convs = _count_layers(checkpoint, "discriminator", "conv2d")
    if num_deconvs < 2 or num_deconvs != num_convs:
        raise LegacyCheckpointError(
            f"Checkpoint {checkpoint.prefix!r} has {num_deconvs} generator transposed "
            f"convolutions and {num_convs} discriminator convolutions; a sualab DCGAN has the "
            "same number (4 at 64 x 64), at least 2."
        )
    last = checkpoint.shapes[_deconv_kernel(num_deconvs - 1)]
    before_last = checkpoint.shapes[_deconv_kernel(num_deconvs - 2)]
    image_channels = last[2]
    g_channel = before_last[2]
    d_channel = checkpoint.shapes["discriminator/conv2d/kernel"][3]
    hyper = {
        "z_dim": int(z_dim),
        "G_FC_layer_channel": int(dense_units // 16),
        "G_channel": int(g_channel),
        "D_channel": int(d_channel),
        "image_size": int(4 * 2**num_deconvs),
        "image_channels": int(image_channels),
    }
    expected = generator_widths(g_channel, num_deconvs, image_channels)
    stored = [checkpoint.shapes[_deconv_kernel(i)][2] for i in range(num_deconvs)]
    if stored != expected:
        raise LegacyCheckpointError(
            f"Checkpoint {checkpoint.prefix!r}: generator transposed-convolution widths "
            f"{stored} do not follow the DCGAN pattern {expected} (G_channel={g_channel}, "
            "each layer twice as wide as the next)."
        )
    return hyper


def _bn_sources(layer, tf1_scope: str, owner: str) -> list[WeightSource]:
    by_name = {v.name: v for v in layer.weights}
    return [
        WeightSource(by_name[name], f"{tf1_scope}/{name}", f"{owner}/{layer.name}/{name}")
        for name in BN_VARIABLES
    ]


def _dense_or_conv_sources(layer, kernel: str, bias: str, owner: str) -> list[WeightSource]:
    return [
        WeightSource(layer.kernel, kernel, f"{owner}/{layer.name}/kernel"),
        WeightSource(layer.bias, bias, f"{owner}/{layer.name}/bias"),
    ]


def weight_sources(generator, discriminator) -> list[WeightSource]:
    """The mapping table of the module docstring, for built models."""
    sources = _dense_or_conv_sources(
        generator.dense, "generator/weights", "generator/biases", "generator"
    )
    for index, norm in enumerate(generator.norms):
        sources += _bn_sources(
            norm, tf1_layer_name("generator", "batch_normalization", index), "generator"
        )
    for index, deconv in enumerate(generator.deconvs):
        scope = tf1_layer_name("generator", "conv2d_transpose", index)
        sources += _dense_or_conv_sources(deconv, f"{scope}/kernel", f"{scope}/bias", "generator")
    for index, conv in enumerate(discriminator.convs):
        scope = tf1_layer_name("discriminator", "conv2d", index)
        sources += _dense_or_conv_sources(conv, f"{scope}/kernel", f"{scope}/bias", "discriminator")
    for index, norm in enumerate(discriminator.norms):
        sources += _bn_sources(
            norm, tf1_layer_name("discriminator", "batch_normalization", index), "discriminator"
        )
    sources += _dense_or_conv_sources(
        discriminator.dense, "discriminator/weights", "discriminator/biases", "discriminator"
    )
    return sources


def adam_iterations(beta1_power: float, beta2_power: float, beta1: float, beta2: float) -> int:
    """Keras Adam's ``iterations`` for TF1 ``AdamOptimizer`` beta powers.

    TF1 stores beta^(k + 1) after k updates and corrects the next update with it; Keras
    corrects with beta^(iterations + 1), so iterations = k = log(power) / log(beta) - 1. The
    count is taken from ``beta2_power`` (``beta1_power`` underflows to 0 after about 980
    updates); when both have underflowed, a count at which both corrections are 1 in float32.
    """
    for power, beta in ((beta2_power, beta2), (beta1_power, beta1)):
        if 0.0 < power < 1.0 and 0.0 < beta < 1.0:
            return max(int(round(np.log(power) / np.log(beta))) - 1, 0)
    return int(np.ceil(np.log(np.finfo(np.float32).tiny) / np.log(max(beta1, beta2))))


def read_adam_state(
    checkpoint: LegacyCheckpoint, generator, discriminator, beta1: float = 0.9, beta2: float = 0.999
) -> dict:
    """The Adam state of both optimisers in a sualab checkpoint, keyed by Keras weight path.

    Returns:
        ``{"generator": {"iterations": k, "beta1_power": p1, "beta2_power": p2,
        "m": {path: array}, "v": {path: array}}, "discriminator": {...}}`` where ``m`` is the
        ``<var>/Adam`` slot and ``v`` the ``<var>/Adam_1`` slot of every trainable variable.

    Raises:
        LegacyCheckpointError: a slot or a beta power is missing (a checkpoint saved without
            its optimisers, as ``test.py``'s Saver writes).
    """
    sources = {id(s.variable): s for s in weight_sources(generator, discriminator)}
    state = {}
    for owner, model in (("generator", generator), ("discriminator", discriminator)):
        suffix = BETA_POWER_SUFFIX[owner]
        names = [f"beta1_power{suffix}", f"beta2_power{suffix}"]
        for variable in model.trainable_variables:
            tf1_name = sources[id(variable)].tf1_name
            names += [f"{tf1_name}/Adam", f"{tf1_name}/Adam_1"]
        missing = [name for name in names if name not in checkpoint]
        if missing:
            raise LegacyCheckpointError(
                f"Checkpoint {checkpoint.prefix!r} holds no Adam state for the {owner} "
                f"(missing {missing[:4]}{' ...' if len(missing) > 4 else ''}); expected the "
                "slots and beta powers that the original's training Saver writes."
            )
        powers = [float(checkpoint.get(name)) for name in names[:2]]
        state[owner] = {
            "iterations": adam_iterations(*powers, beta1, beta2),
            "beta1_power": powers[0],
            "beta2_power": powers[1],
            "m": {},
            "v": {},
        }
        for variable in model.trainable_variables:
            tf1_name = sources[id(variable)].tf1_name
            state[owner]["m"][variable.path] = checkpoint.get(f"{tf1_name}/Adam")
            state[owner]["v"][variable.path] = checkpoint.get(f"{tf1_name}/Adam_1")
    return state


def write_adam_state(path: str, state: dict) -> None:
    """Writes `read_adam_state`'s result as ``.npz`` (keys ``<owner>/iterations``,
    ``<owner>/beta{1,2}_power``, ``<owner>/m/<path>``, ``<owner>/v/<path>``)."""
    arrays = {}
    for owner, values in state.items():
        for key in ("iterations", "beta1_power", "beta2_power"):
            arrays[f"{owner}/{key}"] = np.asarray(values[key])
        for slot in ("m", "v"):
            for weight_path, value in values[slot].items():
                arrays[f"{owner}/{slot}/{weight_path}"] = value
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(directory, f".{os.path.basename(path)}.tmp.npz")
    np.savez(temporary, **arrays)
    os.replace(temporary, path)


def read_adam_state_file(path: str) -> dict:
    """The state `write_adam_state` wrote."""
    state: dict = {}
    with np.load(path) as data:
        for key in data.files:
            owner, rest = key.split("/", 1)
            values = state.setdefault(owner, {"m": {}, "v": {}})
            if rest in ("iterations", "beta1_power", "beta2_power"):
                values[rest] = data[key].item()
            else:
                slot, weight_path = rest.split("/", 1)
                values[slot][weight_path] = data[key]
    return state


def _read_hyperparam_file(prefix: str) -> dict | None:
    path = os.path.join(os.path.dirname(prefix), HYPERPARAM_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return None


def load(kind: str, path: str, **options) -> tuple[dict, dict]:
    """Builds the sualab generator and discriminator and fills them from a TF1 checkpoint.

    Args:
        kind: ``"dcgan_sualab"``.
        path: a ``model_N.ckpt`` prefix, or its folder (resolved through the ``checkpoint``
            state file like the original ``test.py``).
        **options: optional expected widths, in the original's names (``z_dim``,
            ``G_FC_layer_channel``, ``G_channel``, ``D_channel``). Given values build the
            models; a checkpoint of other widths is then refused. Omitted ones are inferred.

    Returns:
        ``({"generator": G, "discriminator": D}, info)``; ``info`` holds the widths, the
        ``image_size``, ``"prefix"``, the consumed (``"loaded"``) and skipped (``"ignored"``)
        tensor names, and ``"hyperparam_json"`` (the original's file next to the checkpoint,
        if any).

    Raises:
        FileNotFoundError: no checkpoint at ``path``.
        LegacyCheckpointError (a ValueError): the tensors do not fit (other model, widths).
    """
    if kind != KIND:
        raise ValueError(f"This converter reads kind {KIND!r}. Received: kind={kind!r}")
    unknown = sorted(set(options) - set(WIDTH_OPTIONS))
    if unknown:
        raise ValueError(
            f"Unknown option(s) {unknown} for kind {KIND!r}; expected some of {WIDTH_OPTIONS}."
        )
    checkpoint = LegacyCheckpoint(path)
    hyper = infer_hyperparameters(checkpoint)
    for name, value in options.items():
        if value is not None:
            hyper[name] = int(value)
    generator, discriminator = build_dcgan(
        z_dim=hyper["z_dim"],
        fc_channels=hyper["G_FC_layer_channel"],
        g_channels=hyper["G_channel"],
        d_channels=hyper["D_channel"],
        image_size=hyper["image_size"],
        image_channels=hyper["image_channels"],
    )
    report = load_strict(
        checkpoint,
        weight_sources(generator, discriminator),
        list(generator.weights) + list(discriminator.weights),
        ignore_patterns=OPTIMIZER_IGNORE_PATTERNS,
    )
    info = {
        **hyper,
        "prefix": report.prefix,
        "loaded": report.loaded,
        "ignored": report.ignored,
        "hyperparam_json": _read_hyperparam_file(report.prefix),
        "z_distribution": "uniform(-1, 1)",
        "output": "RGB NHWC in [-1, 1] (tanh)",
    }
    return {"generator": generator, "discriminator": discriminator}, info


def convert_dcgan_sualab(tf1_checkpoint: str, output_dir: str) -> dict:
    """Converts a sualab checkpoint into ``.keras`` files plus a JSON record.

    Writes ``<output_dir>/generator.keras``, ``discriminator.keras``, ``adam_state.npz``
    (both optimisers' Adam slots and step counts, when the checkpoint holds them; see
    `read_adam_state`) and, last, ``conversion.json`` (source prefix, widths, the original's
    crop size 96, consumed and skipped tensors, and a check value: the generator's output on
    a fixed z, to verify a later reload). ``tools/test_dcgan.py --checkpoint_dir=<output_dir>``
    samples from the result; ``tools/train_dcgan.py --save_dir=<output_dir> --resume``
    continues its training.

    Returns:
        The record written to ``conversion.json``.

    Raises:
        ValueError: ``output_dir`` already holds a conversion or a training run.
    """
    held = [name for name in RUN_MARKERS if os.path.exists(os.path.join(output_dir, name))]
    if held:
        raise ValueError(
            f"--output_dir {output_dir!r} already holds a run or a conversion ({held[0]}); "
            "choose an empty folder (nothing was overwritten)."
        )
    models, info = load(KIND, tf1_checkpoint)
    checkpoint = LegacyCheckpoint(info["prefix"])
    try:
        adam_state = read_adam_state(checkpoint, models["generator"], models["discriminator"])
    except LegacyCheckpointError:
        adam_state = None
    os.makedirs(output_dir, exist_ok=True)
    files = {}
    for name, model in models.items():
        path = os.path.join(output_dir, f"{name}.keras")
        model.save(path)
        files[name] = path
    if adam_state is not None:
        files["adam_state"] = os.path.join(output_dir, ADAM_STATE_FILE)
        write_adam_state(files["adam_state"], adam_state)
    z = np.random.default_rng(0).uniform(-1.0, 1.0, (2, info["z_dim"])).astype(np.float32)
    check = np.asarray(models["generator"](z, training=False))
    record = {
        "kind": KIND,
        "source_prefix": info["prefix"],
        "files": files,
        "hyperparameters": {
            k: info[k]
            for k in ("z_dim", "G_FC_layer_channel", "G_channel", "D_channel", "image_size")
        },
        "loaded": info["loaded"],
        "ignored": info["ignored"],
        "z_distribution": info["z_distribution"],
        "output": info["output"],
        "crop_size": SUALAB_CROP_SIZE,
        "check": {
            "z_rng": "numpy.random.default_rng(0).uniform(-1, 1, (2, z_dim)) float32",
            "generator_output_sum": float(check.astype(np.float64).sum()),
        },
    }
    write_json_atomic(os.path.join(output_dir, CONVERSION_FILE), record)
    return record
