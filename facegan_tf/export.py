"""Exporting trained generators as .keras, SavedModel, TFLite and ONNX files.

Every family is wrapped in a `ServingGenerator` that fixes one calling convention:

* image-to-image models (CycleGAN ResNet/U-Net, IPCGAN) take ``images`` [N, H, W, C_in] and
  return ``generated`` [N, H, W, C_out];
* latent models (DCGAN, cGAN family) take ``z`` [N, z_dim] (and ``labels`` int32 [N]) and
  return ``generated`` [N, S, S, C_out];
* IPCGAN also takes ``age_group`` int32 [N], the target age group of each image.

Dtype rule: uint8 images are pixels 0..255, float32 images lie in [-1, 1]; the output has the
input's convention. uint8 -> float is ``x / 127.5 - 1``, float -> uint8 is
``clip(round((y + 1) * 127.5), 0, 255)``. The .keras wrapper dispatches on the input dtype;
SavedModel has two signatures, ``serving_float`` (also ``serving_default``) and
``serving_uint8``; TFLite and ONNX have one file per signature (``generator.tflite`` /
``generator_uint8.tflite``, ``generator.onnx`` / ``generator_uint8.onnx``). Latent models
take float z in both and differ only in the output dtype.

Channels: C_in and C_out are 1 (grayscale) or 3 (RGB), e.g. 1 -> 3 for a CycleGAN trained with
``input_nc=1, output_nc=3``; IPCGAN is RGB. The exported signatures take exactly C_in channels
(the manifest records ``input_channels`` and ``output_channels``). `ServingGenerator` (and so
the .keras file), `run_tflite`, `run_onnx` and `ExportedGenerator` also accept images of the
other count and convert them first as `facegan_tf.data.images.convert_channels` does: RGB ->
grayscale is the ITU-R 601 luma (for uint8 exactly PIL's ``convert("L")``), grayscale -> RGB
replicates the plane.

Sizes: ResNet CycleGAN and IPCGAN take any H, W that are multiples of 4 (ResNet: at least 8),
U-Net multiples of 256; batch and sides are dynamic in SavedModel, TFLite (the interpreter
resizes its input) and ONNX. The int8 TFLite file is quantised post-training (weights and
activations int8, float input and output) at a fixed ``image_size``.

IPCGAN: the generator's residual units always normalise with batch statistics (the
original's behaviour). The exported function computes those statistics per image, which is
the original's output for a batch of one image; ``bn1``..``bn5`` use the moving averages
(the "clean" inference mode of `facegan_tf.training.ipcgan_inference`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from facegan_tf.fileio import write_json_atomic
from facegan_tf.layers import PACKAGE

FORMATS = ("keras", "saved_model", "tflite", "onnx")
IMAGE_KINDS = ("cyclegan", "ipcgan")
LATENT_KINDS = ("dcgan", "cgan")
KINDS = IMAGE_KINDS + LATENT_KINDS
MANIFEST_FILE = "export_manifest.json"
ONNX_OPSET = 17
ONNX_INSTALL_HINT = 'ONNX export needs the onnx extra: pip install "facegan_tf[onnx]"'
DTYPE_RULE = (
    "uint8 images are pixels 0..255; float32 images lie in [-1, 1]; the output has the "
    "input's convention. uint8 -> float: x / 127.5 - 1; float -> uint8: "
    "clip(round((y + 1) * 127.5), 0, 255)."
)


# --------------------------------------------------------------------------- conversions
def uint8_to_signed(images):
    """uint8 pixels -> float32 x / 127.5 - 1."""
    return ops.cast(images, "float32") / 127.5 - 1.0


def signed_to_uint8(images):
    """[-1, 1] -> uint8 clip(round((y + 1) * 127.5), 0, 255)."""
    return ops.cast(ops.clip(ops.round((images + 1.0) * 127.5), 0.0, 255.0), "uint8")


def match_channels(images, channels: int):
    """Images [..., C] (C 1 or 3, uint8 or float) as [..., ``channels``], in Keras ops.

    Same values as `facegan_tf.data.images.convert_channels`: 3 -> 1 is the luma
    0.299 R + 0.587 G + 0.114 B (uint8: PIL's fixed point (19595 R + 38470 G + 7471 B +
    32768) >> 16), 1 -> 3 replicates. The channel count must be static.
    """
    have = images.shape[-1]
    if have == channels:
        return images
    if have not in (1, 3) or channels not in (1, 3):
        raise ValueError(
            f"Images must have 1 (grayscale) or 3 (RGB) channels for this generator, which "
            f"takes {channels}. Received: shape={tuple(images.shape)}"
        )
    if channels == 3:
        return ops.concatenate([images] * 3, axis=-1)
    if keras.backend.standardize_dtype(images.dtype) == "uint8":
        x = ops.cast(images, "int32")
        fixed = x[..., :1] * 19595 + x[..., 1:2] * 38470 + x[..., 2:3] * 7471 + 32768
        return ops.cast(ops.floor_divide(fixed, 65536), "uint8")
    x = ops.cast(images, "float32")
    return x[..., :1] * 0.299 + x[..., 1:2] * 0.587 + x[..., 2:3] * 0.114


def ipcgan_per_image(generator, images, condition):
    """IPCGAN generator with per-image statistics in its residual units.

    y = relu(BN_m(conv(x))) for ``conv1..3`` and the transposed convolutions, with BN_m the
    moving-average batch norm; each residual unit x + BN_i(conv(relu(BN_i(conv(x))))) uses
    BN_i(v) = gamma * (v - mean_hw(v)) / sqrt(var_hw(v) + eps) + beta, mean and biased
    variance over one image's pixels. For one image this equals
    ``generator([images, condition], training=False)``; for a batch each image's output no
    longer depends on the others.

    Args:
        images: [N, H, W, 3] as RGB minus [104, 117, 124] (`preprocess_generator_input`).
        condition: [N, H, W, age_groups] one-hot maps.
    """

    def moving(layer, x):
        return layer(x, training=False, update_statistics=False)

    def per_image(layer, x):
        mean, variance = ops.moments(x, axes=(1, 2), keepdims=True)
        return (x - mean) * ops.rsqrt(variance + layer.epsilon) * layer.gamma + layer.beta

    g = generator
    x = ops.concatenate([ops.cast(images, "float32"), ops.cast(condition, "float32")], axis=-1)
    x = ops.relu(moving(g.bn1, g.conv1(x)))
    x = ops.relu(moving(g.bn2, g.conv2(x)))
    x = ops.relu(moving(g.bn3, g.conv3(x)))
    for conv_a, bn_a, conv_b, bn_b in g.units:
        y = ops.relu(per_image(bn_a, conv_a(x)))
        x = x + per_image(bn_b, conv_b(y))
    x = ops.relu(moving(g.bn4, g.deconv1(x)))
    x = ops.relu(moving(g.bn5, g.deconv2(x)))
    return ops.tanh(g.conv4(x))


# --------------------------------------------------------------------------- the wrapper
@keras.saving.register_keras_serializable(package=PACKAGE)
class ServingGenerator(keras.Model):
    """A trained generator behind the export convention of this module (see its docstring).

    Call: image kinds ``model(images)`` (IPCGAN: ``model([images, age_group])``); latent
    kinds ``model(z)`` or ``model([z, labels])`` (cGAN), returning float [-1, 1] images, or
    ``model(..., uint8_output=True)`` for uint8 pixels. Image inputs of dtype uint8 give uint8
    outputs. Always inference mode.

    Args:
        generator: the family's generator (built).
        kind: ``cyclegan``, ``ipcgan``, ``dcgan`` or ``cgan``.
        input_channels: image channels the generator takes (image kinds).
        build_side: side used to build the generator when loading a .keras file.
        image_size: the side the model was trained at (default network side of apply).
    """

    def __init__(self, generator, kind: str, input_channels: int = 3, build_side: int = 32,
                 image_size: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if kind not in KINDS:
            raise ValueError(f"ServingGenerator kind must be one of {KINDS}. Received: {kind=}")
        self.generator = generator
        self.kind = kind
        self.input_channels = int(input_channels)
        self.build_side = int(build_side)
        self.image_size = None if image_size is None else int(image_size)
        self.built = True  # the generator comes built; this wrapper has no weights of its own

    @property
    def z_dim(self) -> int | None:
        return getattr(self.generator, "z_dim", None)

    @property
    def num_classes(self) -> int | None:
        return getattr(self.generator, "num_classes", None) if self.kind == "cgan" else None

    @property
    def age_groups(self) -> int | None:
        return self.generator.age_groups if self.kind == "ipcgan" else None

    @property
    def size_multiple(self) -> int | None:
        """Image sides must be multiples of this (image kinds)."""
        if self.kind == "ipcgan":
            return 4
        if self.kind == "cyclegan":
            return 4 if hasattr(self.generator, "blocks") else 256
        return None

    @property
    def output_channels(self) -> int:
        """Channels of the generated images (1 grayscale, 3 RGB)."""
        if self.kind == "ipcgan":
            return 3
        return int(
            getattr(self.generator, "output_channels", None)
            or getattr(self.generator, "image_channels", 3)
        )

    @property
    def output_size(self) -> int | None:
        """Side of the generated images (latent kinds)."""
        return getattr(self.generator, "image_size", None) if self.kind in LATENT_KINDS else None

    def call(self, inputs, uint8_output=False):
        if self.kind in LATENT_KINDS:
            if self.kind == "cgan":
                z, labels = inputs
                out = self.generator(
                    ops.cast(z, "float32"), ops.cast(labels, "int32"), training=False
                )
            else:
                out = self.generator(ops.cast(inputs, "float32"), training=False)
            out = ops.cast(out, "float32")
            return signed_to_uint8(out) if uint8_output else out
        if self.kind == "ipcgan":
            images, age_group = inputs
        else:
            images, age_group = inputs, None
        is_uint8 = keras.backend.standardize_dtype(images.dtype) == "uint8"
        images = match_channels(images, self.input_channels)
        signed = uint8_to_signed(images) if is_uint8 else ops.cast(images, "float32")
        if self.kind == "ipcgan":
            from facegan_tf.networks.ipcgan import signed_to_generator_input

            one_hot = ops.one_hot(ops.cast(age_group, "int32"), self.generator.age_groups)
            # [N, 1, 1, G] * [N, H, W, 1]: the one-hot planes at the image's size.
            condition = ops.expand_dims(ops.expand_dims(one_hot, 1), 1) * ops.ones_like(
                signed[..., :1]
            )
            out = ipcgan_per_image(self.generator, signed_to_generator_input(signed), condition)
        else:
            out = self.generator(signed, training=False)
        out = ops.cast(out, "float32")
        return signed_to_uint8(out) if (is_uint8 or uint8_output) else out

    def get_config(self):
        return {
            **super().get_config(),
            "generator": keras.saving.serialize_keras_object(self.generator),
            "kind": self.kind,
            "input_channels": self.input_channels,
            "build_side": self.build_side,
            "image_size": self.image_size,
        }

    @classmethod
    def from_config(cls, config):
        # Register the generator classes (their modules may not be imported yet).
        import facegan_tf.networks.cyclegan  # noqa: F401
        import facegan_tf.networks.dcgan  # noqa: F401
        import facegan_tf.networks.ipcgan  # noqa: F401

        config = dict(config)
        generator = keras.saving.deserialize_keras_object(config.pop("generator"))
        model = cls(generator, **config)
        model.build_generator()
        return model

    def build_generator(self) -> None:
        """Creates the generator's weights with one call on zeros."""
        side = self.build_side
        if self.kind == "cyclegan":
            self.generator(ops.zeros((1, side, side, self.input_channels)))
        elif self.kind == "ipcgan":
            groups = self.generator.age_groups
            self.generator(
                [ops.zeros((1, side, side, 3)), ops.zeros((1, side, side, groups))],
                training=False,
                update_statistics=False,
            )
        elif self.kind == "cgan":
            self.generator(ops.zeros((1, self.z_dim)), ops.zeros((1,), "int32"))
        else:
            self.generator(ops.zeros((1, self.z_dim)))

    def build(self, input_shape=None):
        self.built = True

    # ----------------------------------------------------------------- signatures
    def input_specs(self, dtype: str, image_size: int | None = None, batch: int | None = None):
        """The `tf.TensorSpec` list of the ``dtype`` (``float``/``uint8``) signature."""
        if self.kind in LATENT_KINDS:
            specs = [tf.TensorSpec([batch, self.z_dim], tf.float32, name="z")]
            if self.kind == "cgan":
                specs.append(tf.TensorSpec([batch], tf.int32, name="labels"))
            return specs
        side = image_size
        image_dtype = tf.uint8 if dtype == "uint8" else tf.float32
        specs = [
            tf.TensorSpec([batch, side, side, self.input_channels], image_dtype, name="images")
        ]
        if self.kind == "ipcgan":
            specs.append(tf.TensorSpec([batch], tf.int32, name="age_group"))
        return specs

    def serving_function(self, dtype: str, image_size: int | None = None,
                         batch: int | None = None):
        """A `tf.function` with a fixed input signature returning ``{"generated": ...}``."""
        if dtype not in ("float", "uint8"):
            raise ValueError(f"Signature dtype must be 'float' or 'uint8'. Received: {dtype=}")
        specs = self.input_specs(dtype, image_size, batch)
        uint8_output = dtype == "uint8"

        if len(specs) == 1:

            def serve(first):
                return {"generated": self(first, uint8_output=uint8_output)}
        else:

            def serve(first, second):
                return {"generated": self([first, second], uint8_output=uint8_output)}

        return tf.function(serve, input_signature=specs)

    def describe(self) -> dict:
        """Inputs and outputs of the signatures, for the manifest."""
        if self.kind in LATENT_KINDS:
            inputs = {"z": f"float32 [N, {self.z_dim}]"}
            if self.kind == "cgan":
                inputs["labels"] = f"int32 [N], class 0..{self.num_classes - 1}"
            side, out = self.output_size, self.output_channels
            return {
                "inputs": inputs,
                "outputs": {
                    "generated": f"serving_float: float32 [N, {side}, {side}, {out}] in "
                    f"[-1, 1]; serving_uint8: uint8 [N, {side}, {side}, {out}]"
                },
            }
        inputs = {
            "images": f"uint8 (0..255) or float32 ([-1, 1]) [N, H, W, {self.input_channels}] "
            f"({'grayscale' if self.input_channels == 1 else 'RGB'}), H and W multiples of "
            f"{self.size_multiple}"
        }
        if self.kind == "ipcgan":
            inputs["age_group"] = f"int32 [N], target age group 0..{self.age_groups - 1}"
        return {
            "inputs": inputs,
            "outputs": {
                "generated": f"[N, H, W, {self.output_channels}], the dtype and range of images"
            },
        }


# --------------------------------------------------------------------------- loading
def _legacy_folder(path: str) -> str:
    """``path``, or its only sub-folder holding a TF1 checkpoint (xhujoy's
    ``<dataset>_<fine_size>`` layout)."""
    from facegan_tf.migrate.tf1 import STATE_FILE

    if not os.path.isdir(path) or os.path.isfile(os.path.join(path, STATE_FILE)):
        return path
    if any(name.endswith(".index") for name in os.listdir(path)):
        return path
    subfolders = [
        os.path.join(path, name)
        for name in sorted(os.listdir(path))
        if os.path.isfile(os.path.join(path, name, STATE_FILE))
    ]
    return subfolders[0] if len(subfolders) == 1 else path


def _legacy_kind(path: str) -> str | None:
    """Which original wrote the TF1 checkpoint at ``path`` (from its variable names)."""
    from facegan_tf.migrate import resolve_checkpoint_prefix

    path = _legacy_folder(path)
    try:
        prefix = resolve_checkpoint_prefix(path)
        names = [name for name, _ in tf.train.list_variables(prefix)]
    except (FileNotFoundError, ValueError, tf.errors.OpError):
        return None
    if any(name.startswith("generatorA2B/") for name in names):
        return "cyclegan"
    if any(name.startswith("generator/conv1/") for name in names):
        return "ipcgan"
    if any(name.startswith("generator/") for name in names):
        return "dcgan"
    return None


def _load_cgan_run(path: str, info: dict) -> tuple[keras.Model, dict]:
    import dataclasses

    from facegan_tf.training.cgan import ConditionalGANConfig, build_conditional_models
    from facegan_tf.training.checkpointing import restore_models

    fields = {f.name for f in dataclasses.fields(ConditionalGANConfig)}
    values = {
        k: tuple(v) if isinstance(v, list) else v
        for k, v in info["config"].items()
        if k in fields
    }
    config = ConditionalGANConfig(**values)
    generator = build_conditional_models(config)["generator"]
    best_dir = os.path.join(path, "best")
    checkpoint = (
        tf.train.latest_checkpoint(best_dir) if os.path.isdir(best_dir) else None
    ) or tf.train.latest_checkpoint(path)
    if checkpoint is None:
        raise FileNotFoundError(f"--model {path!r} has a run file but no checkpoint.")
    restore_models(checkpoint, generator=generator)
    return generator, {
        "source": "facegan_tf",
        "checkpoint": checkpoint,
        "model": config.model,
        "z_distribution": getattr(config, "z_distribution", "normal"),
        "image_size": config.image_size,
    }


def load_serving_generator(
    path: str, direction: str = "AtoB", image_size: int | None = None
) -> tuple[ServingGenerator, dict]:
    """The generator stored at ``path`` wrapped in a `ServingGenerator`, and facts about it.

    ``path`` may be a run folder of ours (kinds ``cyclegan``, ``ipcgan``, ``dcgan``,
    ``cgan``), a folder converted by tools/convert_tf1_checkpoint.py (DCGAN), a legacy TF1
    checkpoint folder or prefix of xhujoy CycleGAN, IPCGAN or sualab DCGAN (recognised by its
    variable names), a ``.keras`` file written by `export_generator`, or an export folder,
    its ``saved_model`` folder or one of its ``.tflite`` / ``.onnx`` files (then the model is
    an `ExportedGenerator`; an export folder is read through its ``generator.keras`` when
    it has one).

    Args:
        direction: ``AtoB`` or ``BtoA`` (CycleGAN).
        image_size: the side the model was trained at (CycleGAN's ``fine_size``, IPCGAN's
            128); None uses the run's value or the original's default.

    Returns:
        (model, info) with ``info["kind"]``, ``info["source"]``, ``info["checkpoint"]`` and
        ``info["image_size"]``.
    """
    if direction not in ("AtoB", "BtoA"):
        raise ValueError(f"--direction must be AtoB or BtoA. Received: direction={direction!r}")
    if os.path.isfile(os.path.join(path, MANIFEST_FILE)) and os.path.isfile(
        os.path.join(path, "generator.keras")
    ):
        path = os.path.join(path, "generator.keras")
    exported = _exported_path(path)
    if exported is not None:
        model = ExportedGenerator(exported)
        info = model.info()
        if image_size:
            info["image_size"] = image_size
        return model, info
    if path.endswith(".keras"):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"--model {path!r} does not exist.")
        try:
            model = keras.models.load_model(path)
        except (ValueError, OSError, TypeError) as error:
            raise ValueError(f"Cannot load --model {path!r}: {error}") from error
        if not isinstance(model, ServingGenerator):
            raise ValueError(
                f"--model {path!r} is not a generator exported by tools/export_generator.py."
            )
        return model, {"kind": model.kind, "source": "keras", "checkpoint": path,
                       "image_size": image_size or model.image_size or model.build_side}
    if not os.path.exists(path) and not os.path.isfile(path + ".index"):
        raise FileNotFoundError(
            f"--model {path!r} does not exist. Expected a checkpoint folder of ours, a legacy "
            "TF1 checkpoint folder or prefix, or an exported .keras file."
        )
    from facegan_tf.training.checkpointing import read_run_info

    run = read_run_info(path) if os.path.isdir(path) else None
    kind = run["kind"] if run is not None else None
    if kind is None:
        from facegan_tf.migrate.dcgan_sualab import CONVERSION_FILE

        if os.path.isdir(path) and os.path.isfile(os.path.join(path, CONVERSION_FILE)):
            kind = "dcgan"
        else:
            kind = _legacy_kind(path)
    if kind is None:
        raise FileNotFoundError(
            f"No generator found at --model {path!r}: expected a facegan_tf run folder "
            "(facegan_run.json), a converted DCGAN folder, a legacy TF1 checkpoint of xhujoy "
            "CycleGAN, IPCGAN or sualab DCGAN, or an exported .keras file."
        )
    if kind == "cyclegan":
        from facegan_tf.training.cyclegan_inference import load_cyclegan_models

        legacy_side = re.search(r"_(\d+)$", os.path.basename(_legacy_folder(path).rstrip("/")))
        default_side = int(legacy_side.group(1)) if legacy_side and run is None else 256
        side = image_size or (run or {}).get("config", {}).get("fine_size", default_side)
        models, info = load_cyclegan_models(path, None, side)
        key = "generator_a2b" if direction == "AtoB" else "generator_b2a"
        channels = info.get("input_nc", 3) if direction == "AtoB" else info.get("output_nc", 3)
        generator = models[key]
        info = {**info, "direction": direction, "image_size": side}
        build_side = side if not hasattr(generator, "blocks") else 32
    elif kind == "ipcgan":
        from facegan_tf.training.ipcgan_inference import load_ipcgan_models

        side = image_size or (run or {}).get("config", {}).get("image_size", 128)
        models, info = load_ipcgan_models(path, side)
        generator, channels, build_side = models["generator"], 3, 8
        info = {**info, "image_size": side}
    elif kind == "dcgan":
        from facegan_tf.training.dcgan_inference import load_dcgan_generator

        generator, info = load_dcgan_generator(path)
        channels, build_side = 3, info["image_size"]
    elif kind == "cgan":
        generator, info = _load_cgan_run(path, run)
        channels, build_side = 3, info["image_size"]
    else:
        raise ValueError(
            f"--model {path!r} holds a {kind!r} run; export needs a generator of one of "
            f"{KINDS}."
        )
    model = ServingGenerator(
        generator, kind, channels, build_side, info.get("image_size"), name=f"{kind}_serving"
    )
    info = {k: v for k, v in info.items() if isinstance(v, (str, int, float, bool, type(None)))}
    return model, {**info, "kind": kind}


# --------------------------------------------------------------------------- runtimes
def tflite_interpreter(path: str):
    """A TFLite interpreter for ``path``: LiteRT's (``ai-edge-litert``) when installed,
    else ``tf.lite.Interpreter``."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - depends on the environment
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return tf.lite.Interpreter(model_path=path)
    return Interpreter(model_path=path)


def _with_channels(inputs: dict, channels: int | None) -> dict:
    """``inputs`` with its ``images`` converted to ``channels`` (see `convert_channels`)."""
    arrays = {k: np.asarray(v) for k, v in inputs.items()}
    if channels in (1, 3) and "images" in arrays and arrays["images"].ndim == 4:
        from facegan_tf.data.images import convert_channels

        arrays["images"] = convert_channels(arrays["images"], int(channels))
    return arrays


def run_tflite(path: str, inputs: dict) -> np.ndarray:
    """Runs the only signature of a TFLite file on ``inputs`` (name -> array; the input is
    resized to the arrays' shapes) and returns its only output. ``images`` of the other
    channel count (1 or 3) are converted to the file's first (see the module docstring)."""
    interpreter = tflite_interpreter(path)
    runner = interpreter.get_signature_runner()
    details = runner.get_input_details().get("images")
    channels = int(details["shape_signature"][-1]) if details is not None else None
    outputs = runner(**_with_channels(inputs, channels))
    return np.asarray(next(iter(outputs.values())))


def run_onnx(path: str, inputs: dict) -> np.ndarray:
    """Runs an ONNX file with onnxruntime (CPU) and returns its ``generated`` output.
    ``images`` of the other channel count (1 or 3) are converted to the file's first."""
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    shapes = {i.name: i.shape for i in session.get_inputs()}
    channels = shapes.get("images", [None])[-1]
    channels = channels if isinstance(channels, int) else None
    return session.run(["generated"], _with_channels(inputs, channels))[0]


class ExportedGenerator:
    """A SavedModel, TFLite or ONNX file written by `export_generator`, called like a
    `ServingGenerator` (float inputs in [-1, 1], float outputs) so `facegan_tf.training.apply`
    can run it.

    Reads the float signature (``serving_float``, ``generator.tflite``, ``generator.onnx``) or
    a uint8 one (``serving_uint8`` is not used; ``generator_uint8.*`` files get pixels
    ``round((x + 1) * 127.5)`` and their output is mapped back by ``y / 127.5 - 1``). The
    int8 TFLite file takes one ``image_size`` square image per call (`fixed_side`). Facts
    (kind, sizes) come from ``export_manifest.json`` in the file's folder; channel counts
    from the file itself. Images of the other channel count are converted first.
    """

    def __init__(self, path: str):
        path = path.rstrip("/\\") if os.path.isdir(path) else path
        self.path = path
        self.folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isfile(os.path.join(self.folder, MANIFEST_FILE)):
            raise FileNotFoundError(
                f"--model {path!r} has no {MANIFEST_FILE} beside it: expected a file or "
                "saved_model/ folder written by tools/export_generator.py, in its folder."
            )
        manifest = read_manifest(self.folder)
        self.manifest = manifest
        self.kind = manifest["kind"]
        signature = manifest.get("signature", {}).get("inputs", {})
        groups = re.search(r"0\.\.(\d+)", signature.get("age_group", ""))
        classes = re.search(r"0\.\.(\d+)", signature.get("labels", ""))
        self.age_groups = manifest.get("age_groups") or (
            int(groups.group(1)) + 1 if groups else None
        )
        self.num_classes = manifest.get("num_classes") or (
            int(classes.group(1)) + 1 if classes else None
        )
        self.size_multiple = manifest.get("size_multiple")
        self.image_size = manifest.get("image_size")
        self.build_side = self.image_size
        self.fixed_side = None
        self.uint8 = False
        if path.endswith(".tflite"):
            self.format = "tflite"
            self._runner = tflite_interpreter(path).get_signature_runner()
            specs = {
                name: (list(d["shape_signature"]), np.dtype(d["dtype"]))
                for name, d in self._runner.get_input_details().items()
            }
        elif path.endswith(".onnx"):
            try:
                import onnxruntime
            except ImportError:
                raise ValueError(ONNX_INSTALL_HINT) from None

            self.format = "onnx"
            self._session = onnxruntime.InferenceSession(
                path, providers=["CPUExecutionProvider"]
            )
            specs = {
                i.name: (
                    [d if isinstance(d, int) else -1 for d in i.shape],
                    np.dtype(np.uint8) if i.type == "tensor(uint8)" else np.dtype(np.float32),
                )
                for i in self._session.get_inputs()
            }
        else:
            self.format = "saved_model"
            self._function = tf.saved_model.load(path).signatures["serving_float"]
            specs = {
                name: (spec.shape.as_list(), np.dtype(spec.dtype.as_numpy_dtype))
                for name, spec in self._function.structured_input_signature[1].items()
            }
        self._specs = specs
        first = "images" if self.kind in IMAGE_KINDS else "z"
        shape, dtype = specs[first]
        self.uint8 = dtype == np.uint8
        if self.kind in IMAGE_KINDS:
            self.input_channels = int(shape[-1])
            if shape[0] == 1 and shape[1] and shape[1] > 0:
                self.fixed_side = int(shape[1])
        else:
            self.z_dim = int(shape[-1])
        self.output_channels = manifest.get("output_channels", 3)

    def _run(self, arrays: dict) -> np.ndarray:
        if self.format == "tflite":
            return np.asarray(next(iter(self._runner(**arrays).values())))
        if self.format == "onnx":
            return self._session.run(["generated"], arrays)[0]
        out = self._function(**{k: tf.constant(v) for k, v in arrays.items()})["generated"]
        return out.numpy()

    def __call__(self, inputs) -> np.ndarray:
        arrays = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        names = ["images", "age_group"] if self.kind in IMAGE_KINDS else ["z", "labels"]
        feed = {name: np.asarray(a) for name, a in zip(names, arrays)}
        if self.kind in IMAGE_KINDS:
            from facegan_tf.data.images import convert_channels, to_uint8

            images = convert_channels(feed["images"].astype(np.float32), self.input_channels)
            feed["images"] = to_uint8(images) if self.uint8 else images
        for name, (_, dtype) in self._specs.items():
            feed[name] = feed[name].astype(dtype)
        if self.fixed_side:
            out = np.concatenate(
                [self._run({k: v[i : i + 1] for k, v in feed.items()})
                 for i in range(len(feed["images"]))]
            )
        else:
            out = self._run(feed)
        if out.dtype == np.uint8:
            out = out.astype(np.float32) / 127.5 - 1.0
        return out.astype(np.float32)

    def info(self) -> dict:
        source = self.manifest.get("source", {})
        facts = {
            "kind": self.kind,
            "source": self.format,
            "checkpoint": self.path,
            "image_size": self.fixed_side or self.image_size,
            "exported_from": source.get("checkpoint", ""),
        }
        if "z_distribution" in source:
            facts["z_distribution"] = source["z_distribution"]
        return facts


def _exported_path(path: str) -> str | None:
    """The file `ExportedGenerator` should read for ``path``, or None: a ``.tflite`` or
    ``.onnx`` file, a ``saved_model`` folder, or an export folder (its ``saved_model/``,
    else ``generator.tflite``, else ``generator.onnx``)."""
    if path.endswith((".tflite", ".onnx")) and os.path.isfile(path):
        return path
    if not os.path.isdir(path):
        return None
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    if os.path.isfile(os.path.join(path, MANIFEST_FILE)):
        for name in ("saved_model", "generator.tflite", "generator.onnx"):
            candidate = os.path.join(path, name)
            if os.path.exists(candidate):
                return candidate
    return None


def onnx_available() -> bool:
    """Whether tf2onnx, onnx and onnxruntime import."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- writers
def _frozen(function):
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    return convert_variables_to_constants_v2(function.get_concrete_function())


def _tflite_bytes(model: ServingGenerator, dtype: str, image_size=None, representative=None):
    # Keras 3 variables stay resource variables in a SavedModel and TFLite leaves them
    # uninitialised, so the weights are frozen into constants first. The frozen function
    # goes through a variable-free SavedModel because converting concrete functions
    # directly does not always keep the named signature (inputs then lose their names).
    batch = 1 if representative else None
    frozen = _frozen(model.serving_function(dtype, image_size, batch))

    def serve(*inputs):
        outputs = frozen(*inputs)
        return {"generated": outputs[0] if isinstance(outputs, (list, tuple)) else outputs}

    key = f"serving_{dtype}"
    function = tf.function(serve, input_signature=model.input_specs(dtype, image_size, batch))
    with tempfile.TemporaryDirectory(prefix="facegan-tflite-") as folder:
        tf.saved_model.save(
            tf.Module(),
            folder,
            signatures={key: function.get_concrete_function()},
            options=tf.saved_model.SaveOptions(experimental_custom_gradients=False),
        )
        converter = tf.lite.TFLiteConverter.from_saved_model(folder, signature_keys=[key])
        return _convert(converter, representative)


def _convert(converter, representative) -> bytes:
    if representative is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.float32
        converter.inference_output_type = tf.float32
    return converter.convert()


def _onnx_bytes(model: ServingGenerator, dtype: str) -> bytes:
    import tf2onnx

    frozen = _frozen(model.serving_function(dtype))
    graph_def = frozen.graph.as_graph_def()
    input_names = [t.name for t in frozen.inputs]
    output_names = [t.name for t in frozen.outputs]
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        proto, _ = tf2onnx.convert.from_graph_def(
            graph_def, input_names=input_names, output_names=output_names, opset=ONNX_OPSET
        )
    spec_names = [spec.name for spec in model.input_specs(dtype)]
    renames = dict(zip(input_names, spec_names))
    renames[output_names[0]] = "generated"
    for node in proto.graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    for value in list(proto.graph.input) + list(proto.graph.output):
        value.name = renames.get(value.name, value.name)
    return proto.SerializeToString()


def sha256(path: str) -> str:
    """Hex SHA-256 of a file, or of every file of a folder (sorted relative paths)."""
    digest = hashlib.sha256()
    files = [path]
    if os.path.isdir(path):
        files = sorted(
            os.path.join(root, name) for root, _, names in os.walk(path) for name in names
        )
    for file in files:
        if os.path.isdir(path):
            digest.update(os.path.relpath(file, path).encode())
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _write_bytes(path: str, data: bytes) -> None:
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "wb") as f:
        f.write(data)
    os.replace(temporary, path)


def check_formats(formats) -> list[str]:
    formats = [f.strip() for f in formats if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(
            f"--formats must be a comma-separated subset of {','.join(FORMATS)}. "
            f"Received: formats={','.join(formats)}"
        )
    if "onnx" in formats and not onnx_available():
        raise ValueError(ONNX_INSTALL_HINT)
    return formats


def demo_inputs(
    model: ServingGenerator, count: int, image_size: int, seed: int = 0,
    z_distribution: str = "normal",
) -> list:
    """Inputs for calibration and checks: smooth random images in [-1, 1] (bicubic upsampling
    of 4 x 4 uniform noise plus N(0, 0.05) noise), or z (``normal`` N(0, 1) or ``uniform``
    U(-1, 1)) and labels cycling through the classes."""
    rng = np.random.default_rng(seed)
    if model.kind in LATENT_KINDS:
        if z_distribution == "uniform":
            z = rng.uniform(-1.0, 1.0, (count, model.z_dim)).astype(np.float32)
        else:
            z = rng.standard_normal((count, model.z_dim)).astype(np.float32)
        if model.kind == "cgan":
            return [z, (np.arange(count) % model.num_classes).astype(np.int32)]
        return [z]
    coarse = rng.uniform(-1, 1, (count, 4, 4, model.input_channels)).astype(np.float32)
    images = tf.image.resize(coarse, (image_size, image_size), method="bicubic").numpy()
    images = np.clip(images + rng.normal(0, 0.05, images.shape), -1, 1).astype(np.float32)
    if model.kind == "ipcgan":
        return [images, (np.arange(count) % model.age_groups).astype(np.int32)]
    return [images]


def _signature_inputs(model: ServingGenerator, arrays: list, dtype: str = "float") -> dict:
    names = [spec.name for spec in model.input_specs(dtype)]
    return dict(zip(names, arrays))


def export_generator(
    model: ServingGenerator,
    output_dir: str,
    formats=FORMATS,
    image_size: int | None = None,
    int8: bool = False,
    calibration: np.ndarray | None = None,
    info: dict | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> dict:
    """Writes ``model`` in the given formats into ``output_dir`` with ``export_manifest.json``.

    Files: ``generator.keras``; ``saved_model/`` (signatures ``serving_float`` =
    ``serving_default`` and ``serving_uint8``); ``generator.tflite`` (float) and
    ``generator_uint8.tflite``; with ``int8`` ``generator_int8.tflite`` (float input/output,
    int8 inside, fixed side ``image_size``), calibrated on ``calibration`` (float images in
    [-1, 1], [N, H, W, C] with C 1 or 3, converted to the model's input channels) or on
    `demo_inputs`; ``generator.onnx`` and
    ``generator_uint8.onnx``. The manifest records the kind, the signature description, the
    dtype rule, the sha256 of every file and, for int8, the maximum and mean absolute
    difference to the float TFLite model and their correlation.

    Raises:
        ValueError: unknown format; ONNX requested without the extra; ``output_dir`` holds
            an export already and ``overwrite`` is false.
    """
    formats = check_formats(list(formats))
    info = dict(info or {})
    side = int(image_size or info.get("image_size") or model.build_side)
    if model.size_multiple and (side % model.size_multiple or side < model.size_multiple):
        raise ValueError(
            f"--image_size must be a positive multiple of {model.size_multiple} for a "
            f"{model.kind} generator. Received: image_size={side}"
        )
    if os.path.isfile(os.path.join(output_dir, MANIFEST_FILE)) and not overwrite:
        raise ValueError(
            f"--output_dir {output_dir!r} already holds an export ({MANIFEST_FILE}); choose "
            "another folder or pass --overwrite."
        )
    os.makedirs(output_dir, exist_ok=True)
    files: dict[str, dict] = {}
    from facegan_tf.training.progress import ProgressBar

    steps = sum({"keras": 1, "saved_model": 1, "tflite": 2 + int(int8), "onnx": 2}[f]
                for f in formats)
    bar = ProgressBar(steps, label="export", unit="file", enabled=progress, min_interval_s=0)

    def record(key, name, **facts):
        path = os.path.join(output_dir, name)
        files[key] = {"path": name, "sha256": sha256(path), **facts}
        bar.update(1, file=name)

    if "keras" in formats:
        path = os.path.join(output_dir, "generator.keras")
        model.save(f"{path}.tmp.keras")
        os.replace(f"{path}.tmp.keras", path)
        record("keras", "generator.keras", signature="call; dtype dispatch on images")
    if "saved_model" in formats:
        target = os.path.join(output_dir, "saved_model")
        temporary = tempfile.mkdtemp(prefix=".saved_model-", dir=output_dir)
        module = tf.Module()
        # Track the weights, not the Keras model: Keras would add its own serving
        # signature, which cannot trace generators that take two inputs.
        module.weights = [variable.value for variable in model.variables]
        float_fn = model.serving_function("float")
        uint8_fn = model.serving_function("uint8")
        tf.saved_model.save(
            module,
            temporary,
            signatures={
                "serving_default": float_fn,
                "serving_float": float_fn,
                "serving_uint8": uint8_fn,
            },
        )
        if os.path.isdir(target):
            shutil.rmtree(target)
        os.replace(temporary, target)
        record("saved_model", "saved_model",
               signatures=["serving_default", "serving_float", "serving_uint8"])
    if "tflite" in formats:
        for dtype, name in (("float", "generator.tflite"), ("uint8", "generator_uint8.tflite")):
            _write_bytes(os.path.join(output_dir, name), _tflite_bytes(model, dtype))
            record(f"tflite_{dtype}", name, signature=f"serving_{dtype}", dynamic_shape=True)
        if int8:
            files["tflite_int8"] = _export_int8(
                model, output_dir, side, calibration, info.get("z_distribution", "normal")
            )
            bar.update(1, file="generator_int8.tflite")
    if "onnx" in formats:
        for dtype, name in (("float", "generator.onnx"), ("uint8", "generator_uint8.onnx")):
            _write_bytes(os.path.join(output_dir, name), _onnx_bytes(model, dtype))
            record(f"onnx_{dtype}", name, signature=f"serving_{dtype}", opset=ONNX_OPSET,
                   dynamic_shape=True)
    bar.close()
    manifest = {
        "kind": model.kind,
        "source": info,
        "formats": formats,
        "signature": model.describe(),
        "dtype_rule": DTYPE_RULE,
        "size_multiple": model.size_multiple,
        "image_size": side if model.kind in IMAGE_KINDS else model.output_size,
        **model_facts(model),
        "files": files,
    }
    write_json_atomic(os.path.join(output_dir, MANIFEST_FILE), manifest)
    return manifest


def model_facts(model: ServingGenerator) -> dict:
    """Channel counts and the sizes of the other inputs, as recorded in the manifest."""
    facts = {"output_channels": model.output_channels}
    if model.kind in IMAGE_KINDS:
        facts["input_channels"] = model.input_channels
    if model.kind == "ipcgan":
        facts["age_groups"] = model.age_groups
    if model.kind in LATENT_KINDS:
        facts["z_dim"] = model.z_dim
    if model.kind == "cgan":
        facts["num_classes"] = model.num_classes
    return facts


def _export_int8(
    model: ServingGenerator, output_dir: str, side: int, calibration, z_distribution: str
) -> dict:
    if calibration is not None:
        from facegan_tf.data.images import convert_channels

        calibration = convert_channels(np.asarray(calibration, np.float32), model.input_channels)
    if calibration is None:
        arrays = demo_inputs(model, 8, side, 1, z_distribution)
    elif model.kind == "ipcgan":
        count = len(calibration)
        arrays = [calibration, (np.arange(count) % model.age_groups).astype(np.int32)]
    else:
        arrays = [calibration]

    def representative():
        for index in range(len(arrays[0])):
            # Named inputs: the TFLite file may order its inputs differently.
            yield _signature_inputs(model, [a[index : index + 1] for a in arrays])

    name = "generator_int8.tflite"
    path = os.path.join(output_dir, name)
    _write_bytes(path, _tflite_bytes(model, "float", side, representative))
    float_path = os.path.join(output_dir, "generator.tflite")
    if calibration is not None:
        check = [a[:2] for a in arrays]
    else:
        check = demo_inputs(model, 2, side, 2, z_distribution)
    int8_out, float_out = [], []
    for index in range(2):
        one = _signature_inputs(model, [a[index : index + 1] for a in check])
        int8_out.append(run_tflite(path, one))
        float_out.append(run_tflite(float_path, one))
    a, b = np.concatenate(int8_out).ravel(), np.concatenate(float_out).ravel()
    return {
        "path": name,
        "sha256": sha256(path),
        "signature": "serving_float",
        "dynamic_shape": False,
        "batch": 1,
        "image_size": side,
        "quantisation": "post-training int8 weights and activations, float32 input/output",
        "error_vs_float": {
            "max_abs": float(np.abs(a - b).max()),
            "mean_abs": float(np.abs(a - b).mean()),
            "correlation": _correlation(a, b),
            "inputs": "the first 2 calibration images" if calibration is not None
            else "2 demo inputs (seed 2)",
        },
    }


def _correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson correlation, None when either side is constant."""
    if a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def read_manifest(output_dir: str) -> dict:
    """The ``export_manifest.json`` of an export folder."""
    with open(os.path.join(output_dir, MANIFEST_FILE), encoding="utf-8") as f:
        return json.load(f)
