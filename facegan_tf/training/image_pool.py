"""The history pool of generated images (Shrivastava et al., 2017) as xhujoy CycleGAN uses it.

The pool keeps up to ``max_size`` entries, one per training step, each holding the batch of
fake A and the batch of fake B of that step. `query` behaves like the original:

* ``max_size <= 0``: return the inputs.
* fewer than ``max_size`` entries: store the inputs, return them unchanged.
* full: with probability 0.5 (one draw for the pair) pick a slot for A and, independently,
  a slot for B; return the stored batches and put the new ones in their place. Otherwise
  return the inputs and store nothing.

The pool lives in variables (so it is saved in checkpoints and works inside `tf.function`);
its random draws come from a caller-given stateless seed. Under a `tf.distribute` strategy
the variables are per replica (``ON_READ``): each replica keeps a pool of its own fakes, and
a checkpoint holds replica 0's pool.
"""

from __future__ import annotations

import tensorflow as tf


class ImagePool(tf.Module):
    """Fixed-shape pool of (fake A batch, fake B batch) entries.

    Args:
        max_size: number of entries (``--max_size``, 50 in the original); 0 disables it.
        batch_shape_a, batch_shape_b: per-replica batch shapes [B, H, W, C] of the fakes.
    """

    def __init__(self, max_size: int, batch_shape_a, batch_shape_b, name: str = "image_pool"):
        super().__init__(name=name)
        self.max_size = int(max_size)
        slots = max(self.max_size, 1)
        sync = {
            "synchronization": tf.VariableSynchronization.ON_READ,
            "aggregation": tf.VariableAggregation.ONLY_FIRST_REPLICA,
            "trainable": False,
        }
        self.images_a = tf.Variable(tf.zeros([slots, *batch_shape_a]), name="images_a", **sync)
        self.images_b = tf.Variable(tf.zeros([slots, *batch_shape_b]), name="images_b", **sync)
        self.count = tf.Variable(0, dtype=tf.int32, name="count", **sync)

    def query(self, fake_a: tf.Tensor, fake_b: tf.Tensor, seed: tf.Tensor):
        """Returns the (A, B) batches to show the discriminators; see the module docstring."""
        if self.max_size <= 0:
            return fake_a, fake_b
        draws = tf.random.stateless_uniform([3], seed=seed)
        max_size = tf.constant(self.max_size, tf.int32)

        def store():
            index = self.count.read_value()
            stored = [_put(self.images_a, index, fake_a), _put(self.images_b, index, fake_b)]
            with tf.control_dependencies(stored):
                self.count.assign_add(1)
            return tf.identity(fake_a), tf.identity(fake_b)

        def swap():
            index_a = tf.cast(draws[1] * self.max_size, tf.int32)
            index_b = tf.cast(draws[2] * self.max_size, tf.int32)
            old_a = tf.identity(self.images_a[index_a])
            old_b = tf.identity(self.images_b[index_b])
            with tf.control_dependencies([old_a, old_b]):
                stored = [
                    _put(self.images_a, index_a, fake_a),
                    _put(self.images_b, index_b, fake_b),
                ]
            with tf.control_dependencies(stored):
                return tf.identity(old_a), tf.identity(old_b)

        def keep():
            return tf.identity(fake_a), tf.identity(fake_b)

        return tf.cond(
            self.count < max_size,
            store,
            lambda: tf.cond(draws[0] > 0.5, swap, keep),
        )


def _put(pool_images: tf.Variable, index: tf.Tensor, batch: tf.Tensor):
    """Writes ``batch`` into slot ``index`` of ``pool_images``; returns the assign op.

    A whole-variable assign, because per-replica (``ON_READ``) variables have no scatter
    update inside a replica context.
    """
    updated = tf.tensor_scatter_nd_update(pool_images.read_value(), [[index]], batch[None])
    return pool_images.assign(updated)
