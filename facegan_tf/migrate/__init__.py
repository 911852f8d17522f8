"""Load legacy TF1 checkpoints of the original repositories into Keras models.

`load_legacy(kind, path)` returns a dict of built Keras models whose outputs equal the
original graph's. Kinds:

* ``"cyclegan_xhujoy"``: xhujoy/CycleGAN-tensorflow ``cyclegan.model-N`` ->
  ``generator_a2b``, ``generator_b2a``, ``discriminator_a``, ``discriminator_b``.
* ``"dcgan_sualab"``: sualab/DCGAN_Face_gen_tf ``model_N.ckpt`` -> ``generator``,
  ``discriminator``.
* ``"ipcgan"``: IPCGAN ``acgan.model-N`` -> ``generator``, ``discriminator``.
* ``"ipcgan_alexnet"``, ``"ipcgan_age_classifier"``: IPCGAN's pretrained AlexNet checkpoints.
"""

from __future__ import annotations

from facegan_tf.migrate.tf1 import (
    LegacyCheckpoint,
    LegacyCheckpointError,
    resolve_checkpoint_prefix,
)

KINDS = (
    "cyclegan_xhujoy",
    "dcgan_sualab",
    "ipcgan",
    "ipcgan_alexnet",
    "ipcgan_age_classifier",
)


def _converter(kind: str):
    if kind == "cyclegan_xhujoy":
        from facegan_tf.migrate import cyclegan_xhujoy

        return cyclegan_xhujoy
    if kind == "dcgan_sualab":
        from facegan_tf.migrate import dcgan_sualab

        return dcgan_sualab
    if kind in ("ipcgan", "ipcgan_alexnet", "ipcgan_age_classifier"):
        from facegan_tf.migrate import ipcgan

        return ipcgan
    raise ValueError(f"Unknown legacy checkpoint kind. Expected one of {KINDS}. Received: {kind=}")


def load_legacy(kind: str, path: str, **options) -> dict:
    """Reads a legacy TF1 checkpoint (folder or prefix) into a dict of built Keras models."""
    models, _ = load_legacy_with_info(kind, path, **options)
    return models


def load_legacy_with_info(kind: str, path: str, **options) -> tuple[dict, dict]:
    """Like `load_legacy`, also returning what was inferred from the tensors.

    Returns:
        (models, info): the models, and a dict with the inferred hyper-parameters (e.g.
        ``ngf``, ``num_blocks``), ``"prefix"``, and the lists ``"loaded"`` and ``"ignored"``
        of checkpoint tensor names.
    """
    return _converter(kind).load(kind, path, **options)


__all__ = [
    "KINDS",
    "LegacyCheckpoint",
    "LegacyCheckpointError",
    "load_legacy",
    "load_legacy_with_info",
    "resolve_checkpoint_prefix",
]
