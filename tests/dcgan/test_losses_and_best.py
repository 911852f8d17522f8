"""GAN losses against their formulas computed in numpy, and the best-by-FID checkpoint rule."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from facegan_tf import losses
from facegan_tf.data.faces import FaceSet
from facegan_tf.training.dcgan import DCGANConfig, DCGANTrainer

RNG = np.random.default_rng(11)
REAL = RNG.normal(size=(5, 1)).astype(np.float32) * 2
FAKE = RNG.normal(size=(5, 1)).astype(np.float32) * 2


def test_wasserstein_losses_match_formulas():
    """Critic D(G(z)) - D(x), generator -D(G(z)) (Arjovsky et al., 2017), per example."""
    critic = np.asarray(losses.wgan_critic_loss(REAL, FAKE))
    np.testing.assert_allclose(critic, FAKE[:, 0] - REAL[:, 0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(losses.wgan_generator_loss(FAKE)), -FAKE[:, 0])


def test_hinge_loss_matches_formula():
    """relu(1 - D(x)) + relu(1 + D(G(z))) (Lim & Ye, 2017)."""
    expected = np.maximum(0, 1 - REAL[:, 0]) + np.maximum(0, 1 + FAKE[:, 0])
    np.testing.assert_allclose(
        np.asarray(losses.hinge_discriminator_loss(REAL, FAKE)), expected, rtol=1e-6
    )
    assert (expected > 0).any() and (np.maximum(0, 1 - REAL[:, 0]) == 0).any()


def test_class_cross_entropy_matches_formula():
    """-log softmax(logits)[y] (AC-GAN L_C), on logits."""
    logits = RNG.normal(size=(6, 3)).astype(np.float64) * 3
    labels = np.array([0, 1, 2, 2, 1, 0])
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -log_softmax[np.arange(6), labels]
    got = np.asarray(losses.class_cross_entropy_loss(labels, logits.astype(np.float32)))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_gradient_penalty_matches_formula():
    """(||grad_x_hat D(x_hat)||_2 - 1)^2 with x_hat = x + alpha (G(z) - x) (Gulrajani et al.,
    2017, eq. 3), for the critic D(x) = sum(w * tanh(x)) whose gradient w (1 - tanh^2) is
    written out in numpy."""
    shape = (3, 4, 4, 2)
    real = RNG.normal(size=shape).astype(np.float32)
    fake = RNG.normal(size=shape).astype(np.float32)
    alpha = np.array([0.0, 0.3, 1.0], np.float32)
    w = RNG.normal(size=shape[1:]).astype(np.float32) * 0.2

    def critic(x):
        return tf.reduce_sum(w * tf.tanh(x), axis=(1, 2, 3))[:, None]

    got = np.asarray(losses.gradient_penalty(critic, real, fake, alpha))
    x_hat = real.astype(np.float64) + alpha[:, None, None, None] * (fake - real)
    gradient = w * (1 - np.tanh(x_hat) ** 2)
    norm = np.sqrt((gradient.reshape(3, -1) ** 2).sum(axis=1))
    np.testing.assert_allclose(got, (norm - 1) ** 2, rtol=1e-5)
    assert np.ptp(got) > 0.01  # alpha moves x_hat, so the penalties differ


def best_by_fid_run(tmp_path, score_threshold, scores):
    """A tiny DCGAN run of 4 epochs whose evaluation returns ``scores`` in turn (a stand-in
    for FID on generated images); returns the trainer and the generator weights seen at each
    evaluation."""
    images = np.random.default_rng(2).integers(0, 256, (16, 16, 16, 3), dtype=np.uint8)
    data = FaceSet(images, np.zeros(16, np.int32), ("faces",), "random")
    config = DCGANConfig(
        save_dir=str(tmp_path),
        image_size=16,
        batch_size=8,
        num_epochs=len(scores),
        z_dim=8,
        fc_channels=8,
        g_channels=4,
        d_channels=4,
        sample_H=1,
        sample_W=2,
        eval_sample_size=4,
        batch_size_eval=4,
        score_threshold=score_threshold,
    )
    trainer = DCGANTrainer(config)
    seen = []

    def metric(generated):
        assert generated.shape == (4, 16, 16, 3) and generated.dtype == np.uint8
        seen.append([v.numpy() for v in trainer.models["generator"].weights])
        return {"fid": scores[len(seen) - 1]}

    summary = trainer.fit(data, metrics={"": metric}, progress=False)
    return trainer, seen, summary


@pytest.mark.parametrize(
    "threshold, best_epoch",
    [(1e-4, 2), (0.0, 3)],
)
def test_best_checkpoint_follows_score_threshold(tmp_path, threshold, best_epoch):
    """A new best needs FID < best * (1 - score_threshold) (sualab's rule): 8.9995 after 9
    is no improvement at 1e-4 but is one at 0; the kept checkpoint holds the weights of the
    best epoch (2 steps per epoch)."""
    scores = [10.0, 9.0, 8.9995, 9.5]
    trainer, seen, summary = best_by_fid_run(tmp_path, threshold, scores)
    flags = [bool(r.get("best")) for r in trainer.history["epochs"]]
    expected_flags = [True, True, False, False] if threshold else [True, True, True, False]
    assert flags == expected_flags
    assert summary["best_fid"] == scores[best_epoch - 1]
    assert [r["fid"] for r in trainer.history["epochs"]] == scores
    fresh = DCGANTrainer(dataclasses.replace(trainer.config, save_dir=str(tmp_path / "other")))
    fresh.restore(summary["best_checkpoint"])
    assert int(fresh.step.numpy()) == 2 * best_epoch
    for value, variable in zip(seen[best_epoch - 1], fresh.models["generator"].weights):
        np.testing.assert_array_equal(variable.numpy(), value)
