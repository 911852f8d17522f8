"""Network layout against the facts of the sualab graph (parameter counts, shapes, names)."""

import keras
import numpy as np
import pytest

from facegan_tf.networks import dcgan


def test_sualab_widths_have_the_original_parameter_counts():
    generator, discriminator = dcgan.build_dcgan()
    count = lambda m: sum(int(np.prod(v.shape)) for v in m.trainable_variables)  # noqa: E731
    # 5,135,363 and 4,316,545 trainable parameters in the rebuilt TF1 graph.
    assert count(generator) == 5_135_363
    assert count(discriminator) == 4_316_545
    assert [d.filters for d in generator.deconvs] == [256, 128, 64, 3]
    assert [c.filters for c in discriminator.convs] == [64, 128, 256, 512]
    for norm in generator.norms + discriminator.norms:
        assert norm.momentum == 0.9 and norm.epsilon == 1e-5


def test_conditional_variants_shapes_and_config_round_trip():
    z, labels = np.zeros((3, 8), "float32"), np.array([0, 1, 2])
    images = np.zeros((3, 16, 16, 3), "float32")
    generator = dcgan.ConditionalDCGANGenerator(
        num_classes=3, z_dim=8, fc_channels=8, channels=4, image_size=16
    )
    assert generator(z, labels).shape == (3, 16, 16, 3)
    clone = dcgan.ConditionalDCGANGenerator.from_config(generator.get_config())
    assert clone(z, labels).shape == (3, 16, 16, 3)
    critic = dcgan.ConditionalDCGANDiscriminator(
        num_classes=3, channels=4, image_size=16, batch_norm=False
    )
    assert critic(images, labels).shape == (3, 1)
    norms = [x for x in critic._flatten_layers() if isinstance(x, keras.layers.BatchNormalization)]
    assert not norms
    adv, cls = dcgan.ACGANDiscriminator(num_classes=3, channels=4, image_size=16)(images)
    assert adv.shape == (3, 1) and cls.shape == (3, 3)
    mlp_g = dcgan.MLPConditionalGenerator(
        num_classes=3, z_dim=8, image_size=16, hidden_units=(8, 8)
    )
    assert mlp_g(z, labels).shape == (3, 16, 16, 3)
    mlp_d = dcgan.MLPConditionalDiscriminator(num_classes=3, image_size=16, hidden_units=(8, 8))
    assert mlp_d(images, labels).shape == (3, 1)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: dcgan.DCGANGenerator(image_size=48), "image_size = 4 \\* 2\\*\\*n"),
        (lambda: dcgan.ConditionalDCGANGenerator(num_classes=1), "num_classes >= 2"),
        (lambda: dcgan.DCGANDiscriminator(channels=0), "positive integer channels"),
    ],
)
def test_bad_arguments_are_named(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_discriminator_rejects_other_image_shapes():
    discriminator = dcgan.DCGANDiscriminator(channels=4, image_size=16)
    with pytest.raises(ValueError, match=r"\[B, 16, 16, 3\]"):
        discriminator(np.zeros((1, 32, 32, 3), "float32"))
