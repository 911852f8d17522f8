"""A 2-process MultiWorkerMirroredStrategy CycleGAN run on localhost.

Both workers must end with identical weights (the fingerprint each prints), equal to the
weights in the one checkpoint series that only the chief (worker 0) writes.
"""

import hashlib
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from facegan_tf.training.cyclegan import CycleGANConfig, CycleGANTrainer

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT = 420


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def write_images(folder, count, seed):
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        pixels = rng.integers(0, 256, (16, 16), dtype=np.uint8)
        Image.fromarray(pixels, "L").save(os.path.join(folder, f"{i}.png"))


def fingerprint(models):
    """SHA-256 over (model name, variable path) in sorted order, written out here."""
    digest = hashlib.sha256()
    for name in sorted(models):
        for variable in sorted(models[name].weights, key=lambda v: v.path):
            value = np.ascontiguousarray(variable.numpy())
            digest.update(f"{name}/{variable.path}:{value.dtype.str}:{value.shape}".encode())
            digest.update(value.tobytes())
    return digest.hexdigest()


def test_two_workers_end_equal_and_only_the_chief_saves(tmp_path):
    data = tmp_path / "data"
    for sub, seed in (("trainA", 0), ("trainB", 1), ("testA", 2), ("testB", 3)):
        write_images(str(data / sub), 4, seed)
    settings = dict(
        dataset_dir=str(data), epochs=1, epoch_step=1, batch_size=1, load_size=16,
        fine_size=16, ngf=4, ndf=4, num_blocks=1, input_nc=1, output_nc=1, max_size=2,
        max_steps=2, checkpoint_dir=str(tmp_path / "ckpt"), sample_dir=str(tmp_path / "s"),
        log_dir=str(tmp_path / "logs"), seed=5,
    )
    flags = [
        f"--dataset_dir={data}", "--epoch=1", "--epoch_step=1", "--batch_size=1",
        "--load_size=16", "--fine_size=16", "--ngf=4", "--ndf=4", "--num_blocks=1",
        "--input_nc=1", "--output_nc=1", "--max_size=2", "--max_steps=2", "--seed=5",
        "--save_freq=1000", "--print_freq=1000", f"--checkpoint_dir={tmp_path / 'ckpt'}",
        f"--sample_dir={tmp_path / 's'}", f"--log_dir={tmp_path / 'logs'}",
        "--strategy=multi_worker",
    ]
    workers = [f"localhost:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = dict(
            os.environ, TF_CONFIG=json.dumps(tf_config), TF_CPP_MIN_LOG_LEVEL="2",
            CUDA_VISIBLE_DEVICES="",
        )
        processes.append(subprocess.Popen(
            [sys.executable, os.path.join(REPO_ROOT, "tools", "train_cyclegan.py"), *flags],
            cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        ))
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=TIMEOUT))
    except subprocess.TimeoutExpired:
        for process in processes:
            process.kill()
        pytest.fail(f"the multi-worker run did not finish within {TIMEOUT} s (deadlock?)")
    summaries = []
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
        summaries.append(json.loads(out.strip().splitlines()[-1]))
    assert [s["step"] for s in summaries] == [2, 2]
    assert summaries[0]["weights_sha256"] == summaries[1]["weights_sha256"]

    files = sorted(os.listdir(tmp_path / "ckpt"))
    assert files == [
        "checkpoint", "ckpt-2.data-00000-of-00001", "ckpt-2.index", "facegan_run.json",
        "run_status.json",
    ], files
    assert sorted(os.listdir(tmp_path)) == ["ckpt", "data", "logs", "s"]

    trainer = CycleGANTrainer(CycleGANConfig(**settings))
    assert fingerprint(trainer.models) != summaries[0]["weights_sha256"]  # the run trained
    assert trainer.restore().endswith("ckpt-2")
    assert int(trainer.step.numpy()) == 2
    assert fingerprint(trainer.models) == summaries[0]["weights_sha256"]
