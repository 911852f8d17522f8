"""Tiny generators of every family (shared by the export and apply tests), with weights drawn so
that outputs vary with the input."""

import numpy as np
import pytest

from facegan_tf.export import ServingGenerator


def randomize(model: ServingGenerator, seed: int = 0) -> ServingGenerator:
    """Kernels ~ N(0, 1 / fan_in), biases and BN offsets ~ N(0, 0.1), scales ~ 1 + N(0, 0.1).

    Keeps activations of order one, so tanh outputs spread over [-1, 1] instead of sitting
    at one value (fresh DCGAN/IPCGAN weights give near-constant outputs).
    """
    rng = np.random.default_rng(seed)
    for variable in model.generator.weights:
        shape = tuple(variable.shape)
        name = variable.path.split("/")[-1]
        if name == "kernel" or name == "embeddings":
            fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
            value = rng.normal(0, 1.0 / np.sqrt(max(fan_in, 1)), shape)
        elif name in ("gamma", "scale"):
            value = 1.0 + rng.normal(0, 0.1, shape)
        elif name == "moving_variance":
            value = np.ones(shape)
        elif name == "moving_mean":
            value = np.zeros(shape)
        else:
            value = rng.normal(0, 0.1, shape)
        variable.assign(value.astype(np.float32))
    return model


def tiny(kind: str, seed: int = 0) -> ServingGenerator:
    """A tiny `ServingGenerator` of ``kind`` (16 px, few filters)."""
    if kind == "cyclegan":
        from facegan_tf.networks.cyclegan import build_generator

        model = ServingGenerator(build_generator(True, 4, 3, num_blocks=1, image_size=16),
                                 "cyclegan", 3, 32)
    elif kind == "ipcgan":
        from facegan_tf.networks.ipcgan import build_generator

        model = ServingGenerator(build_generator(4, 1, 3, 16), "ipcgan", 3, 8)
    elif kind == "dcgan":
        from facegan_tf.networks.dcgan import DCGANGenerator

        generator = DCGANGenerator(z_dim=8, fc_channels=16, channels=4, image_size=16)
        model = ServingGenerator(generator, "dcgan", 3, 16)
        model.build_generator()
    else:
        from facegan_tf.networks.dcgan import ConditionalDCGANGenerator

        generator = ConditionalDCGANGenerator(
            num_classes=3, z_dim=8, fc_channels=16, channels=4, image_size=16
        )
        model = ServingGenerator(generator, "cgan", 3, 16)
        model.build_generator()
    return randomize(model, seed)


@pytest.fixture(scope="session")
def tiny_model():
    return tiny


@pytest.fixture(scope="session")
def randomize_weights():
    return randomize


#: The channel layout of tools/train_cyclegan.py --demo (grayscale A and B) at tiny widths.
DEMO_CHANNELS = {"input_nc": 1, "output_nc": 1, "identity_lambda": 0.5, "use_lsgan": False}


def save_cyclegan_run(folder: str, seed: int = 1, **changes) -> dict:
    """Writes a run folder as tools/train_cyclegan.py does (tiny widths, weights drawn by
    `randomize`) and returns its models."""
    from facegan_tf.training.checkpointing import TrainingCheckpoint
    from facegan_tf.training.cyclegan import CycleGANConfig, build_cyclegan_models

    config = CycleGANConfig(ngf=4, ndf=4, num_blocks=1, load_size=18, fine_size=16, **changes)
    models = build_cyclegan_models(config)
    randomize(ServingGenerator(models["generator_a2b"], "cyclegan"), seed=seed)
    randomize(ServingGenerator(models["generator_b2a"], "cyclegan"), seed=seed + 1)
    TrainingCheckpoint(folder, "cyclegan", config.to_dict(), **models).save(1)
    return models


@pytest.fixture(scope="session")
def gray_run(tmp_path_factory):
    """A grayscale CycleGAN run folder laid out like the demo's (``<demo>/checkpoint``)."""
    folder = str(tmp_path_factory.mktemp("demo") / "checkpoint")
    return folder, save_cyclegan_run(folder, seed=11, **DEMO_CHANNELS)
