"""GAN losses as pure functions of logits and images.

Every function returns a **per-example** loss of shape [B]: the mean over all non-batch
axes. A trainer averages it over the global batch with
``tf.nn.compute_average_loss(per_example, global_batch_size=...)``, which equals the
originals' mean over all elements when every replica holds the same number of examples.
"""

from __future__ import annotations

import tensorflow as tf

ADVERSARIAL_KINDS = ("lsgan", "bce")


def _mean_per_example(x: tf.Tensor) -> tf.Tensor:
    x = tf.cast(x, tf.float32)
    return tf.reduce_mean(tf.reshape(x, (tf.shape(x)[0], -1)), axis=1)


def lsgan_loss(logits: tf.Tensor, target: float) -> tf.Tensor:
    """Least-squares GAN criterion (Mao et al., 2017): mean of (D(x) - target)^2.

    xhujoy CycleGAN calls this ``mae_criterion`` although it computes the squared error.
    """
    logits = tf.cast(logits, tf.float32)
    return _mean_per_example(tf.square(logits - target))


def bce_loss(logits: tf.Tensor, target: float) -> tf.Tensor:
    """Sigmoid cross-entropy with logits against a constant target (Goodfellow et al., 2014)."""
    logits = tf.cast(logits, tf.float32)
    labels = tf.fill(tf.shape(logits), tf.cast(target, tf.float32))
    return _mean_per_example(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def adversarial_loss(kind: str, logits: tf.Tensor, target: float) -> tf.Tensor:
    """``lsgan`` or ``bce`` criterion of ``logits`` against a constant ``target``."""
    if kind == "lsgan":
        return lsgan_loss(logits, target)
    if kind == "bce":
        return bce_loss(logits, target)
    raise ValueError(
        f"Unknown adversarial loss. Expected one of {ADVERSARIAL_KINDS}. Received: {kind=}"
    )


def l1_loss(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """Mean absolute error per example; the cycle and identity terms of CycleGAN."""
    return _mean_per_example(tf.abs(tf.cast(x, tf.float32) - tf.cast(y, tf.float32)))


def cycle_loss(real: tf.Tensor, reconstructed: tf.Tensor) -> tf.Tensor:
    """Cycle-consistency L1 ||F(G(x)) - x||_1 (Zhu et al., 2017, eq. 2), mean per example."""
    return l1_loss(real, reconstructed)


def identity_loss(real: tf.Tensor, same: tf.Tensor) -> tf.Tensor:
    """Identity-mapping L1 ||G(y) - y||_1 (Zhu et al., 2017, sec. 5.2), mean per example."""
    return l1_loss(real, same)


def wgan_critic_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    """Wasserstein critic loss D(fake) - D(real) (Arjovsky et al., 2017), per example."""
    return _mean_per_example(fake_logits) - _mean_per_example(real_logits)


def wgan_generator_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """Wasserstein generator loss -D(G(z)), per example."""
    return -_mean_per_example(fake_logits)


def hinge_discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    """Hinge loss relu(1 - D(x)) + relu(1 + D(G(z))) (Lim & Ye, 2017), per example."""
    return _mean_per_example(tf.nn.relu(1.0 - tf.cast(real_logits, tf.float32))) + (
        _mean_per_example(tf.nn.relu(1.0 + tf.cast(fake_logits, tf.float32)))
    )


def gradient_penalty(critic, real: tf.Tensor, fake: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
    """WGAN-GP penalty (||grad_x_hat D(x_hat)||_2 - 1)^2 (Gulrajani et al., 2017, eq. 3).

    Args:
        critic: callable x -> logits (any extra inputs such as labels bound by the caller).
        real, fake: [B, ...] batches.
        alpha: [B] interpolation coefficients, drawn by the caller from U(0, 1).

    Returns:
        Per-example penalty [B] (multiply by lambda, e.g. 10).
    """
    real = tf.cast(real, tf.float32)
    fake = tf.cast(fake, tf.float32)
    shape = tf.concat([tf.shape(alpha)[:1], tf.ones([tf.rank(real) - 1], tf.int32)], axis=0)
    alpha = tf.reshape(tf.cast(alpha, tf.float32), shape)
    interpolated = real + alpha * (fake - real)
    with tf.GradientTape() as tape:
        tape.watch(interpolated)
        logits = critic(interpolated)
    gradients = tape.gradient(logits, interpolated)
    flat = tf.reshape(gradients, (tf.shape(gradients)[0], -1))
    norm = tf.sqrt(tf.reduce_sum(tf.square(flat), axis=1) + 1e-12)
    return tf.square(norm - 1.0)


def class_cross_entropy_loss(labels: tf.Tensor, class_logits: tf.Tensor) -> tf.Tensor:
    """Softmax cross-entropy -log softmax(logits)[y] per example: the AC-GAN class term L_C
    (Odena et al., 2017, eq. 2), on logits (the mask project's double softmax is not kept)."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=tf.cast(class_logits, tf.float32)
    )


# --------------------------------------------------------------------------------- IPCGAN
# Wang et al., "Face Aging with Identity-Preserved Conditional Generative Adversarial
# Networks", CVPR 2018; weights and factors of the authors' TF1 code (released run:
# gan 75, feature 5e-5 on conv5, age 30).

IPCGAN_MEAN_RGB = (104.0, 117.0, 124.0)


def legacy_resize_bilinear(images: tf.Tensor, size: int | tuple[int, int]) -> tf.Tensor:
    """TF1 ``resize_bilinear`` (no corner alignment, no half-pixel centres), as IPCGAN used.

    TF2's ``tf.image.resize`` samples at half-pixel centres and differs by up to tens of grey
    levels on 128 -> 227 resizes; this is the original's op.
    """
    if isinstance(size, int):
        size = (size, size)
    return tf.compat.v1.image.resize_bilinear(
        tf.cast(images, tf.float32), size, align_corners=False, half_pixel_centers=False
    )


def ipcgan_generated_to_alexnet_input(generated: tf.Tensor, size: int = 227) -> tf.Tensor:
    """Generator output in [-1, 1] -> AlexNet input: resize((G + 1) * 127.5) - [104, 117, 124].

    The resize is `legacy_resize_bilinear` to ``size`` x ``size`` (227 in the original).
    """
    pixels = (tf.cast(generated, tf.float32) + 1.0) * 127.5
    return legacy_resize_bilinear(pixels, size) - tf.constant(IPCGAN_MEAN_RGB, tf.float32)


def ipcgan_discriminator_loss(
    real_logits: tf.Tensor,
    wrong_label_logits: tf.Tensor,
    fake_logits: tf.Tensor,
    weight: float = 75.0,
) -> tf.Tensor:
    """IPCGAN's conditional LSGAN discriminator loss (Mao et al., 2017), per example.

    ``w * 1/2 * [ mean((D(x, t) - 1)^2) + 1/2 * (mean(D(x, f)^2) + mean(D(G(s, t), t)^2)) ]``
    where x is a real face of the target group t, f a wrong group and s a source face.
    """
    real = lsgan_loss(real_logits, 1.0)
    wrong = lsgan_loss(wrong_label_logits, 0.0)
    fake = lsgan_loss(fake_logits, 0.0)
    return weight * 0.5 * (real + 0.5 * (wrong + fake))


def ipcgan_generator_adversarial_loss(fake_logits: tf.Tensor, weight: float = 75.0) -> tf.Tensor:
    """IPCGAN's LSGAN generator term ``w * 1/2 * mean((D(G(s, t), t) - 1)^2)``, per example."""
    return weight * 0.5 * lsgan_loss(fake_logits, 1.0)


def ipcgan_age_loss(
    age_logits: tf.Tensor, target_groups: tf.Tensor, weight: float = 30.0
) -> tf.Tensor:
    """Age-classification loss ``w * CE(softmax(age(G(s, t))), t)`` (Wang et al.), per example."""
    return weight * tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(target_groups, tf.int32), logits=tf.cast(age_logits, tf.float32)
    )


def ipcgan_identity_loss(
    source_features: tf.Tensor, generated_features: tf.Tensor, weight: float = 5e-5
) -> tf.Tensor:
    """Identity-preserving loss ``w * sum((phi(G(s, t)) - phi(s))^2)`` (Wang et al.).

    A per-example **sum** over all feature elements (13 x 13 x 256 for conv5), as the
    original; averaging over the batch gives its value.
    """
    difference = tf.cast(generated_features, tf.float32) - tf.cast(source_features, tf.float32)
    flat = tf.reshape(tf.square(difference), (tf.shape(difference)[0], -1))
    return weight * tf.reduce_sum(flat, axis=1)


def ipcgan_generator_losses(
    generated: tf.Tensor,
    fake_logits: tf.Tensor,
    source_features: tf.Tensor,
    target_groups: tf.Tensor,
    feature_extractor,
    age_classifier,
    gan_weight: float = 75.0,
    feature_weight: float = 5e-5,
    age_weight: float = 30.0,
    alexnet_input_size: int = 227,
) -> dict:
    """All per-example generator terms of IPCGAN.

    Args:
        generated: G(s, t) in [-1, 1].
        fake_logits: D(G(s, t), t).
        source_features: phi(s), the identity features of the source (227 px AlexNet input).
        target_groups: [B] target age groups t.
        feature_extractor: callable AlexNet input -> identity features (conv5 by default).
        age_classifier: callable AlexNet input -> age logits.

    Returns:
        ``{"adversarial", "identity", "age", "total"}``, each [B].
    """
    alexnet_input = ipcgan_generated_to_alexnet_input(generated, alexnet_input_size)
    adversarial = ipcgan_generator_adversarial_loss(fake_logits, gan_weight)
    generated_features = feature_extractor(alexnet_input)
    identity = ipcgan_identity_loss(source_features, generated_features, feature_weight)
    age = ipcgan_age_loss(age_classifier(alexnet_input), target_groups, age_weight)
    return {
        "adversarial": adversarial,
        "identity": identity,
        "age": age,
        "total": adversarial + identity + age,
    }
