"""The standard FID feature network: TF Inception-v3 of 2015-12-05, ``pool_3`` features.

This is the network of TTUR's ``classify_image_graph_def.pb`` (Heusel et al. 2017, "GANs
Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium"), which
stylegan2-ada, stylegan3 and clean-fid's ``legacy_tensorflow`` mode also use through NVIDIA's
TorchScript conversion. The model reproduces, for images of any size:

1. cast to float32 in [0, 255];
2. TF1 legacy bilinear resize to 299x299 (``ResizeBilinear`` with ``align_corners=False`` and
   no half-pixel centres: source coordinate ``dst * in / 299``), applied even to 299x299
   inputs, as the TF graph and NVIDIA's wrapper do;
3. scaling ``x = (x - 128) / 128`` to [-1, 0.9921875];
4. the conv trunk: every conv is conv (no bias) -> inference batch norm without scale,
   ``y = (x - mean) / sqrt(var + 1e-3) + beta`` -> ReLU; tower average pools are 3x3 stride 1
   'SAME' pools that leave padding out of the count; the pooling tower of ``mixed_10`` uses
   *max* pooling (the quirk of the 2015 graph);
5. the 8x8 average pool ``pool_3`` -> (N, 2048).

Weights are named like the TF graph (``mixed_9/tower/mixed/conv``); see
``facegan_tf.eval.weights`` for the loaders. The network itself reads no file.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf

#: Identifier recorded with every statistic computed by this network.
FID_NETWORK_ID = "inception-2015-12-05/pool_3/tf-legacy-bilinear-299"
FEATURE_DIM = 2048
INPUT_SIZE = 299
BATCH_NORM_EPSILON = 1e-3

#: Suffixes of the four arrays that make one conv unit in the weights file.
UNIT_ARRAYS = ("conv2d_params", "batchnorm/beta", "batchnorm/moving_mean",
               "batchnorm/moving_variance")


@dataclass(frozen=True)
class ConvSpec:
    """One conv unit: ``name`` is its TF graph scope, e.g. ``mixed_4/tower_1/conv_3``."""

    name: str
    kernel: tuple[int, int]
    in_channels: int
    filters: int
    strides: int = 1
    padding: str = "SAME"

    @property
    def kernel_shape(self) -> tuple[int, int, int, int]:
        """HWIO shape of ``conv2d_params``."""
        return (*self.kernel, self.in_channels, self.filters)

    @property
    def local_name(self) -> str:
        """Name inside its block (``tower/mixed/conv``) or the stem (``conv_2``)."""
        return self.name.split("/", 1)[1] if "/" in self.name else self.name


def _stem_specs() -> list[ConvSpec]:
    return [
        ConvSpec("conv", (3, 3), 3, 32, strides=2, padding="VALID"),
        ConvSpec("conv_1", (3, 3), 32, 32, padding="VALID"),
        ConvSpec("conv_2", (3, 3), 32, 64),
        ConvSpec("conv_3", (1, 1), 64, 80, padding="VALID"),
        ConvSpec("conv_4", (3, 3), 80, 192, padding="VALID"),
    ]


def _block_a_specs(block: str, cin: int, pool_filters: int) -> list[ConvSpec]:
    return [
        ConvSpec(f"{block}/conv", (1, 1), cin, 64),
        ConvSpec(f"{block}/tower/conv", (1, 1), cin, 48),
        ConvSpec(f"{block}/tower/conv_1", (5, 5), 48, 64),
        ConvSpec(f"{block}/tower_1/conv", (1, 1), cin, 64),
        ConvSpec(f"{block}/tower_1/conv_1", (3, 3), 64, 96),
        ConvSpec(f"{block}/tower_1/conv_2", (3, 3), 96, 96),
        ConvSpec(f"{block}/tower_2/conv", (1, 1), cin, pool_filters),
    ]


def _block_b_specs(block: str, cin: int) -> list[ConvSpec]:
    return [
        ConvSpec(f"{block}/conv", (3, 3), cin, 384, strides=2, padding="VALID"),
        ConvSpec(f"{block}/tower/conv", (1, 1), cin, 64),
        ConvSpec(f"{block}/tower/conv_1", (3, 3), 64, 96),
        ConvSpec(f"{block}/tower/conv_2", (3, 3), 96, 96, strides=2, padding="VALID"),
    ]


def _block_c_specs(block: str, cin: int, width: int) -> list[ConvSpec]:
    return [
        ConvSpec(f"{block}/conv", (1, 1), cin, 192),
        ConvSpec(f"{block}/tower/conv", (1, 1), cin, width),
        ConvSpec(f"{block}/tower/conv_1", (1, 7), width, width),
        ConvSpec(f"{block}/tower/conv_2", (7, 1), width, 192),
        ConvSpec(f"{block}/tower_1/conv", (1, 1), cin, width),
        ConvSpec(f"{block}/tower_1/conv_1", (7, 1), width, width),
        ConvSpec(f"{block}/tower_1/conv_2", (1, 7), width, width),
        ConvSpec(f"{block}/tower_1/conv_3", (7, 1), width, width),
        ConvSpec(f"{block}/tower_1/conv_4", (1, 7), width, 192),
        ConvSpec(f"{block}/tower_2/conv", (1, 1), cin, 192),
    ]


def _block_d_specs(block: str, cin: int) -> list[ConvSpec]:
    return [
        ConvSpec(f"{block}/tower/conv", (1, 1), cin, 192),
        ConvSpec(f"{block}/tower/conv_1", (3, 3), 192, 320, strides=2, padding="VALID"),
        ConvSpec(f"{block}/tower_1/conv", (1, 1), cin, 192),
        ConvSpec(f"{block}/tower_1/conv_1", (1, 7), 192, 192),
        ConvSpec(f"{block}/tower_1/conv_2", (7, 1), 192, 192),
        ConvSpec(f"{block}/tower_1/conv_3", (3, 3), 192, 192, strides=2, padding="VALID"),
    ]


def _block_e_specs(block: str, cin: int) -> list[ConvSpec]:
    return [
        ConvSpec(f"{block}/conv", (1, 1), cin, 320),
        ConvSpec(f"{block}/tower/conv", (1, 1), cin, 384),
        ConvSpec(f"{block}/tower/mixed/conv", (1, 3), 384, 384),
        ConvSpec(f"{block}/tower/mixed/conv_1", (3, 1), 384, 384),
        ConvSpec(f"{block}/tower_1/conv", (1, 1), cin, 448),
        ConvSpec(f"{block}/tower_1/conv_1", (3, 3), 448, 384),
        ConvSpec(f"{block}/tower_1/mixed/conv", (1, 3), 384, 384),
        ConvSpec(f"{block}/tower_1/mixed/conv_1", (3, 1), 384, 384),
        ConvSpec(f"{block}/tower_2/conv", (1, 1), cin, 192),
    ]


#: (block name, block type, its conv units) in network order.
_BLOCKS = (
    ("mixed", "A", _block_a_specs("mixed", 192, 32)),
    ("mixed_1", "A", _block_a_specs("mixed_1", 256, 64)),
    ("mixed_2", "A", _block_a_specs("mixed_2", 288, 64)),
    ("mixed_3", "B", _block_b_specs("mixed_3", 288)),
    ("mixed_4", "C", _block_c_specs("mixed_4", 768, 128)),
    ("mixed_5", "C", _block_c_specs("mixed_5", 768, 160)),
    ("mixed_6", "C", _block_c_specs("mixed_6", 768, 160)),
    ("mixed_7", "C", _block_c_specs("mixed_7", 768, 192)),
    ("mixed_8", "D", _block_d_specs("mixed_8", 768)),
    ("mixed_9", "E", _block_e_specs("mixed_9", 1280)),
    ("mixed_10", "E", _block_e_specs("mixed_10", 2048)),
)


def conv_specs() -> list[ConvSpec]:
    """All 94 conv units of the network, in forward order."""
    specs = _stem_specs()
    for _, _, block_specs in _BLOCKS:
        specs.extend(block_specs)
    return specs


def expected_weight_shapes() -> dict[str, tuple[int, ...]]:
    """``{"<scope>/conv2d_params": HWIO, "<scope>/batchnorm/beta": (C,), ...}``, 376 arrays."""
    shapes: dict[str, tuple[int, ...]] = {}
    for spec in conv_specs():
        shapes[f"{spec.name}/conv2d_params"] = spec.kernel_shape
        for suffix in UNIT_ARRAYS[1:]:
            shapes[f"{spec.name}/{suffix}"] = (spec.filters,)
    return shapes


def preprocess_fid_input(images) -> tf.Tensor:
    """[N, H, W, 3] uint8 or float in [0, 255] -> the scaled 299x299 input ``Mul:0``.

    TF1 legacy bilinear resize (``half_pixel_centers=False``, ``align_corners=False``), always
    applied, then ``(x - 128) / 128``.
    """
    images = tf.convert_to_tensor(images)
    if images.shape.rank != 4 or (images.shape[-1] is not None and images.shape[-1] != 3):
        raise ValueError(
            "FID Inception expects RGB images [N, H, W, 3] with values in [0, 255]. "
            f"Received: images.shape={images.shape}"
        )
    images = tf.cast(images, tf.float32)
    resized = tf.raw_ops.ResizeBilinear(
        images=images,
        size=tf.constant([INPUT_SIZE, INPUT_SIZE], tf.int32),
        align_corners=False,
        half_pixel_centers=False,
    )
    return (resized - 128.0) / 128.0


class ConvUnit(keras.layers.Layer):
    """conv (no bias) -> batch norm with gamma fixed to 1, eps 1e-3 -> ReLU (inference only)."""

    def __init__(self, spec: ConvSpec, **kwargs):
        kwargs.setdefault("name", spec.local_name.replace("/", "_"))
        super().__init__(trainable=False, **kwargs)
        self.spec = spec

    def build(self, input_shape=None):
        spec = self.spec
        self.kernel = self.add_weight(name="conv2d_params", shape=spec.kernel_shape,
                                      initializer="zeros", trainable=False)
        self.beta = self.add_weight(name="beta", shape=(spec.filters,),
                                    initializer="zeros", trainable=False)
        self.moving_mean = self.add_weight(name="moving_mean", shape=(spec.filters,),
                                           initializer="zeros", trainable=False)
        self.moving_variance = self.add_weight(name="moving_variance", shape=(spec.filters,),
                                               initializer="ones", trainable=False)
        self.built = True

    def call(self, inputs):
        x = tf.nn.conv2d(inputs, self.kernel, strides=self.spec.strides,
                         padding=self.spec.padding)
        x = (x - self.moving_mean) * tf.math.rsqrt(self.moving_variance + BATCH_NORM_EPSILON)
        return tf.nn.relu(x + self.beta)

    def unit_arrays(self) -> dict[str, keras.Variable]:
        """The four variables, keyed by their names in the weights file."""
        name = self.spec.name
        return {
            f"{name}/conv2d_params": self.kernel,
            f"{name}/batchnorm/beta": self.beta,
            f"{name}/batchnorm/moving_mean": self.moving_mean,
            f"{name}/batchnorm/moving_variance": self.moving_variance,
        }


def _avg_pool_same(x):
    """3x3 stride-1 average pool; padded positions are left out of the count (TF 'SAME')."""
    return tf.nn.avg_pool2d(x, ksize=3, strides=1, padding="SAME")


def _max_pool_reduce(x):
    return tf.nn.max_pool2d(x, ksize=3, strides=2, padding="VALID")


class InceptionBlock(keras.layers.Layer):
    """One mixed block. ``block_type`` A/B/C/D/E as in the 2015 graph.

    Branches are concatenated in graph order (conv, tower, tower_1, tower_2 / pool). For
    type E, ``max_pool_tower=True`` selects the max pool of ``mixed_10``.
    """

    def __init__(self, block_type: str, specs: list[ConvSpec], max_pool_tower: bool = False,
                 **kwargs):
        super().__init__(trainable=False, **kwargs)
        if block_type not in "ABCDE" or len(block_type) != 1:
            raise ValueError(f"block_type must be one of A, B, C, D, E. "
                             f"Received: block_type={block_type!r}")
        self.block_type = block_type
        self.max_pool_tower = max_pool_tower
        self.units = {spec.local_name: ConvUnit(spec) for spec in specs}

    def build(self, input_shape=None):
        for unit in self.units.values():
            unit.build()
        self.built = True

    def _chain(self, x, *names):
        for name in names:
            x = self.units[name](x)
        return x

    def call(self, x):
        t = self.block_type
        if t == "A":
            branches = [
                self._chain(x, "conv"),
                self._chain(x, "tower/conv", "tower/conv_1"),
                self._chain(x, "tower_1/conv", "tower_1/conv_1", "tower_1/conv_2"),
                self._chain(_avg_pool_same(x), "tower_2/conv"),
            ]
        elif t == "B":
            branches = [
                self._chain(x, "conv"),
                self._chain(x, "tower/conv", "tower/conv_1", "tower/conv_2"),
                _max_pool_reduce(x),
            ]
        elif t == "C":
            branches = [
                self._chain(x, "conv"),
                self._chain(x, "tower/conv", "tower/conv_1", "tower/conv_2"),
                self._chain(x, "tower_1/conv", "tower_1/conv_1", "tower_1/conv_2",
                            "tower_1/conv_3", "tower_1/conv_4"),
                self._chain(_avg_pool_same(x), "tower_2/conv"),
            ]
        elif t == "D":
            branches = [
                self._chain(x, "tower/conv", "tower/conv_1"),
                self._chain(x, "tower_1/conv", "tower_1/conv_1", "tower_1/conv_2",
                            "tower_1/conv_3"),
                _max_pool_reduce(x),
            ]
        else:
            tower = self._chain(x, "tower/conv")
            tower_1 = self._chain(x, "tower_1/conv", "tower_1/conv_1")
            if self.max_pool_tower:
                pooled = tf.nn.max_pool2d(x, ksize=3, strides=1, padding="SAME")
            else:
                pooled = _avg_pool_same(x)
            branches = [
                self._chain(x, "conv"),
                self._chain(tower, "tower/mixed/conv"),
                self._chain(tower, "tower/mixed/conv_1"),
                self._chain(tower_1, "tower_1/mixed/conv"),
                self._chain(tower_1, "tower_1/mixed/conv_1"),
                self._chain(pooled, "tower_2/conv"),
            ]
        return tf.concat(branches, axis=-1)


class FIDInceptionV3(keras.Model):
    """TF Inception-v3 (2015-12-05) up to ``pool_3``: images in [0, 255] -> (N, 2048).

    Input: [N, H, W, 3] uint8 or float RGB in [0, 255], any H and W (resized to 299 inside,
    see ``preprocess_fid_input``). Output: float32 (N, 2048) ``pool_3`` features, as used by
    FID (Heusel et al. 2017) and KID (Bińkowski et al. 2018).

    Weights start at zero; fill them with ``set_fid_weights`` (arrays named like the TF graph)
    or build the model with ``facegan_tf.eval.weights.load_fid_inception``.
    """

    def __init__(self, name: str = "fid_inception_v3", **kwargs):
        super().__init__(name=name, trainable=False, **kwargs)
        self.stem = {spec.name: ConvUnit(spec) for spec in _stem_specs()}
        self.blocks = {
            block: InceptionBlock(block_type, specs, max_pool_tower=(block == "mixed_10"),
                                  name=block)
            for block, block_type, specs in _BLOCKS
        }
        for unit in self.stem.values():
            unit.build()
        for block in self.blocks.values():
            block.build()
        self.built = True

    def conv_units(self) -> list[ConvUnit]:
        """All 94 conv units, in forward order."""
        units = list(self.stem.values())
        for block in self.blocks.values():
            units.extend(block.units.values())
        return units

    def set_fid_weights(self, arrays: dict) -> None:
        """Assigns the 376 arrays named as in ``expected_weight_shapes()``; strict both ways."""
        check_weight_arrays(arrays, source="arrays")
        for unit in self.conv_units():
            for key, variable in unit.unit_arrays().items():
                variable.assign(arrays[key])

    def get_fid_weights(self) -> dict:
        """The 376 arrays as numpy, named as in ``expected_weight_shapes()``."""
        result = {}
        for unit in self.conv_units():
            for key, variable in unit.unit_arrays().items():
                result[key] = keras.ops.convert_to_numpy(variable)
        return result

    def stage_outputs(self, images) -> dict[str, tf.Tensor]:
        """``input_299``, ``pool1`` (stem output), each ``mixed*`` and ``pool_3`` features."""
        x = preprocess_fid_input(images)
        stages = {"input_299": x}
        stem = self.stem
        x = stem["conv_2"](stem["conv_1"](stem["conv"](x)))
        x = _max_pool_reduce(x)
        x = stem["conv_4"](stem["conv_3"](x))
        x = _max_pool_reduce(x)
        stages["pool1"] = x
        for name, block in self.blocks.items():
            x = block(x)
            stages[name] = x
        stages["pool_3"] = tf.reduce_mean(x, axis=(1, 2))
        return stages

    def call(self, images):
        return self.stage_outputs(images)["pool_3"]


def check_weight_arrays(arrays: dict, source: str) -> None:
    """Raises ValueError unless ``arrays`` holds exactly the 376 FID arrays with their shapes."""
    expected = expected_weight_shapes()
    missing = sorted(set(expected) - set(arrays))
    unexpected = sorted(set(arrays) - set(expected))
    wrong = sorted(
        f"{key}: {tuple(arrays[key].shape)} (expected {expected[key]})"
        for key in set(expected) & set(arrays)
        if tuple(arrays[key].shape) != expected[key]
    )
    if missing or unexpected or wrong:
        details = []
        if missing:
            details.append(f"{len(missing)} missing (e.g. {missing[:3]})")
        if unexpected:
            details.append(f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
        if wrong:
            details.append(f"{len(wrong)} with a wrong shape (e.g. {wrong[:3]})")
        raise ValueError(
            f"{source} does not hold the FID Inception-v3 (2015-12-05) weights: "
            f"{'; '.join(details)}. Expected the {len(expected)} arrays of "
            "facegan_tf.eval.inception.expected_weight_shapes()."
        )
