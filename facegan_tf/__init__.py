"""facegan_tf: face GANs (CycleGAN, IPCGAN, DCGAN, conditional GANs) and FID on TF2 / Keras 3."""

__version__ = "0.1.0"
