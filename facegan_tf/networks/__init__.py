"""Keras models mirroring the original networks; they never touch files, flags or datasets."""
