"""An independent float64 computation of xhujoy's U-Net generator and PatchGAN discriminator.

Written from the original's graph (``generator_unet``, ``discriminator``, ``instance_norm``
of xhujoy/CycleGAN-tensorflow) with raw ``tf.nn`` ops, taking weights by TF1 variable name:
instance norm is ``scale * ((x - mean) * rsqrt(var + 1e-5)) + offset`` with the moments of
``tf.nn.moments``; convolutions are k4 s2 ``SAME`` without bias; no dropout (keep prob 1).
"""

import tensorflow as tf


def instance_norm(x, weights, scope):
    mean, variance = tf.nn.moments(x, axes=[1, 2], keepdims=True)
    normalized = (x - mean) * tf.math.rsqrt(variance + 1e-5)
    return weights[f"{scope}/scale"] * normalized + weights[f"{scope}/offset"]


def conv(x, weights, scope, stride=2):
    return tf.nn.conv2d(x, weights[f"{scope}/Conv/weights"], stride, "SAME")


def deconv(x, weights, scope):
    kernel = weights[f"{scope}/Conv2d_transpose/weights"]
    shape = tf.shape(x)
    output_shape = tf.stack([shape[0], shape[1] * 2, shape[2] * 2, kernel.shape[2]])
    return tf.nn.conv2d_transpose(x, kernel, output_shape, 2, "SAME")


def lrelu(x):
    return tf.maximum(x, 0.2 * x)


def unet_generator(image, weights, scope):
    """``generator_unet`` with weights ``{"<scope>/<tf1 name>": tensor}``; no dropout."""
    w = {name[len(scope) + 1 :]: value for name, value in weights.items() if name.startswith(scope)}
    skips = [instance_norm(conv(image, w, "g_e1_conv"), w, "instance_norm")]
    for i in range(2, 9):
        skips.append(instance_norm(conv(lrelu(skips[-1]), w, f"g_e{i}_conv"), w, f"g_bn_e{i}"))
    x = skips[-1]
    for i in range(1, 8):
        x = deconv(tf.nn.relu(x), w, f"g_d{i}")
        x = tf.concat([instance_norm(x, w, f"g_bn_d{i}"), skips[7 - i]], axis=3)
    return tf.tanh(deconv(tf.nn.relu(x), w, "g_d8"))


def discriminator(image, weights, scope):
    """``discriminator`` (70 x 70 PatchGAN) with weights by TF1 name; returns logits."""
    w = {name[len(scope) + 1 :]: value for name, value in weights.items() if name.startswith(scope)}
    h = lrelu(conv(image, w, "d_h0_conv"))
    h = lrelu(instance_norm(conv(h, w, "d_h1_conv"), w, "d_bn1"))
    h = lrelu(instance_norm(conv(h, w, "d_h2_conv"), w, "d_bn2"))
    h = lrelu(instance_norm(conv(h, w, "d_h3_conv", stride=1), w, "d_bn3"))
    return conv(h, w, "d_h3_pred", stride=1)


def generator_loss(real_a, real_b, weights, l1_lambda=10.0):
    """The original's ``g_loss`` with the least-squares criterion."""
    fake_b = unet_generator(real_a, weights, "generatorA2B")
    rec_a = unet_generator(fake_b, weights, "generatorB2A")
    fake_a = unet_generator(real_b, weights, "generatorB2A")
    rec_b = unet_generator(fake_a, weights, "generatorA2B")
    d_b_fake = discriminator(fake_b, weights, "discriminatorB")
    d_a_fake = discriminator(fake_a, weights, "discriminatorA")
    return (
        tf.reduce_mean((d_a_fake - 1.0) ** 2)
        + tf.reduce_mean((d_b_fake - 1.0) ** 2)
        + l1_lambda * tf.reduce_mean(tf.abs(real_a - rec_a))
        + l1_lambda * tf.reduce_mean(tf.abs(real_b - rec_b))
    )
