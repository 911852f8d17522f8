"""Crash-safety soak: train a tiny CycleGAN, SIGKILL it at random moments, resume, repeat.

Each round starts a training process that restores the latest checkpoint (``--continue_train``
semantics: `CycleGANTrainer.restore`, then `CycleGANTrainer.fit`) of a 16 px grayscale
CycleGAN (ngf = ndf = 4, one residual block) saving every step, and kills it with SIGKILL
either after a random delay or, for ``--write_fraction`` of the rounds, the instant a
checkpoint write is seen in progress (a ``ckpt-<n>_temp`` folder or an unlisted index file).
The first ``--held_kills`` rounds kill it at a known moment inside a write instead: the worker
runs with ``FACEGAN_CHECKPOINT_HOLD`` set (see `facegan_tf.training.checkpointing`), so every
save stops once its files are written and before the state file lists them; the round lets
the write go on while no checkpoint is listed yet and kills the worker in the next held write.
After every kill the soak checks, with TensorFlow's own checkpoint reader:

* every checkpoint the state file lists loads completely (``unloadable`` counts those that do
  not);
* no checkpoint that was complete and should still be kept went missing, and the latest step
  never goes back (``lost``);
* the next process resumes exactly the latest checkpoint: the state it restored, written out
  again, holds the same values for every saved variable (step, epoch, position in the epoch,
  both Adams' moments and iteration counts, image pool, weights) (``resume_mismatches``).

Importing TensorFlow and tracing the train step costs seconds per process, and a SIGKILL
ends the process, so ``--warm`` workers are started ahead: each imports TensorFlow, builds the
trainer and traces one step on a throw-away copy of the state, then waits; a round hands the
next idle worker the go, which restores the current latest checkpoint and trains until it is
killed. The killed process is a complete trainer at work, not a simulation.

Usage:
    python bench/soak.py --kills 200 --seed 0 --max_minutes 30

The last line printed is JSON with the figures; the exit code is 1 if any checkpoint was lost
or unloadable, or a resume did not match.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

SIZE = 16
HOLD_ENV = "FACEGAN_CHECKPOINT_HOLD"  # facegan_tf.training.checkpointing.HOLD_ENV


def tiny_config(root: str):
    from facegan_tf.training.cyclegan import CycleGANConfig

    return CycleGANConfig(
        dataset_dir=os.path.join(root, "data"),
        epochs=100000,
        epoch_step=100000,
        load_size=SIZE,
        fine_size=SIZE,
        ngf=4,
        ndf=4,
        num_blocks=1,
        input_nc=1,
        output_nc=1,
        max_size=2,
        save_freq=1,
        sample_freq=10**9,
        log_freq=10**9,
        max_to_keep=3,
        checkpoint_dir=os.path.join(root, "checkpoint"),
        sample_dir=os.path.join(root, "sample"),
        log_dir=os.path.join(root, "logs"),
        num_sample_images=1,
    )


def write_data(root: str, seed: int, count: int = 6) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for sub in ("trainA", "trainB"):
        folder = os.path.join(root, "data", sub)
        os.makedirs(folder, exist_ok=True)
        for index in range(count):
            pixels = rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8)
            Image.fromarray(pixels).save(os.path.join(folder, f"{index}.png"))


# ------------------------------------------------------------------------------- worker
def worker(root: str) -> None:
    """A warm training process: prepares, says READY, trains from the latest checkpoint on GO."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    import tensorflow as tf

    from facegan_tf.data.unpaired import cyclegan_epoch_dataset, scan_unpaired_folders
    from facegan_tf.training.cyclegan import CycleGANTrainer

    config = tiny_config(root)
    trainer = CycleGANTrainer(config)
    folders = scan_unpaired_folders(config.dataset_dir)
    private = tempfile.mkdtemp(prefix=f"worker-{os.getpid()}-", dir=os.path.join(root, "work"))
    # Trace the step once, then put the untouched initial state back.
    initial = trainer.checkpoint.checkpoint.write(os.path.join(private, "initial"))
    batch = next(
        iter(
            cyclegan_epoch_dataset(
                folders, epoch=0, seed=config.seed, batch_size=1, load_size=SIZE,
                fine_size=SIZE, channels_a=1, channels_b=1,
            )
        )
    )
    trainer.train_step(batch)
    trainer.checkpoint.checkpoint.read(initial).assert_existing_objects_matched()
    print("READY", flush=True)
    if sys.stdin.readline().strip() != "GO":
        return
    latest = tf.train.latest_checkpoint(config.checkpoint_dir)
    resumed = "none"
    if latest is not None:
        trainer.restore()
        resumed = trainer.checkpoint.checkpoint.write(os.path.join(private, "resumed"))
    print(f"RESUMED {latest or 'none'} {resumed}", flush=True)
    trainer.fit(folders, progress=False)
    print("DONE", flush=True)


# -------------------------------------------------------------------------------- checks
def state_digest(prefix: str) -> tuple[str, int]:
    """SHA-256 over every saved variable of a checkpoint (sorted keys, raw values; the save
    counter excluded) and its ``step``; raises if any tensor cannot be read."""
    import numpy as np
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefix)
    digest = hashlib.sha256()
    for key in sorted(reader.get_variable_to_shape_map()):
        if key == "_CHECKPOINTABLE_OBJECT_GRAPH" or key.startswith("save_counter"):
            continue
        value = np.asarray(reader.get_tensor(key))
        digest.update(key.encode())
        digest.update(value.tobytes())
    return digest.hexdigest(), int(reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"))


def write_in_progress(checkpoint_dir: str) -> bool:
    """A checkpoint write has started and its state-file update has not happened yet."""
    from facegan_tf.training.checkpointing import listed_checkpoints

    try:
        names = os.listdir(checkpoint_dir)
    except FileNotFoundError:
        return False
    if any(name.endswith("_temp") for name in names):
        return True
    listed = set(listed_checkpoints(checkpoint_dir))
    return any(n.endswith(".index") and n[: -len(".index")] not in listed for n in names)


class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.root = tempfile.mkdtemp(prefix="facegan_soak_")
        os.makedirs(os.path.join(self.root, "work"))
        write_data(self.root, args.seed)
        self.checkpoint_dir = tiny_config(self.root).checkpoint_dir
        self.verified: dict[str, int] = {}  # checkpoint name -> step, once verified loadable
        self.latest_step = -1
        self.latest_digest = None
        self.figures = {
            "kills": 0,
            "kills_during_write": 0,
            "lost": 0,
            "unloadable": 0,
            "resume_mismatches": 0,
            "resumes": 0,
            "runs_without_checkpoint": 0,
            "final_step": 0,
        }
        self.idle: list[subprocess.Popen] = []
        self.spawned = 0

    def spawn(self) -> subprocess.Popen:
        """Starts a worker; the n-th worker spawned serves round n (workers are used in
        order), so the first ``--held_kills`` ones hold inside their checkpoint writes."""
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
        env.pop(HOLD_ENV, None)
        self.spawned += 1
        hold = None
        if self.spawned <= self.args.held_kills:
            hold = os.path.join(self.root, "work", f"hold-{self.spawned}")
            env[HOLD_ENV] = hold
        log = open(os.path.join(self.root, "work", f"worker-{self.spawned}.log"), "w")
        process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--_worker", self.root],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )
        process.log_path = log.name
        process.hold = hold
        log.close()
        return process

    def ready_worker(self) -> subprocess.Popen:
        while len(self.idle) < self.args.warm:
            self.idle.append(self.spawn())
        process = self.idle.pop(0)
        self.idle.append(self.spawn())
        line = process.stdout.readline().strip()
        if line != "READY":
            process.wait()
            with open(process.log_path, encoding="utf-8", errors="replace") as f:
                tail = f.read()[-2000:]
            raise RuntimeError(f"worker failed to start (said {line!r}); its log ends:\n{tail}")
        return process

    def verify(self) -> None:
        """Checks the folder after a kill (see the module docstring)."""
        import tensorflow as tf

        from facegan_tf.training.checkpointing import listed_checkpoints

        listed = listed_checkpoints(self.checkpoint_dir)
        steps = {}
        for name in listed:
            try:
                digest, step = state_digest(os.path.join(self.checkpoint_dir, name))
            except Exception:  # noqa: BLE001 - any failure to read counts
                self.figures["unloadable"] += 1
                continue
            steps[name] = step
            if name == listed[-1]:
                self.latest_digest = digest
        known = {**self.verified, **steps}
        keep = sorted(known, key=known.get)[-tiny_config(self.root).max_to_keep :]
        self.figures["lost"] += sum(1 for name in keep if name not in steps)
        latest = tf.train.latest_checkpoint(self.checkpoint_dir)
        latest_step = steps.get(os.path.basename(latest), -1) if latest else -1
        if latest_step < self.latest_step:
            self.figures["lost"] += 1
        self.latest_step = max(self.latest_step, latest_step)
        self.verified = steps

    def round(self) -> None:
        process = self.ready_worker()
        process.stdin.write("GO\n")
        process.stdin.flush()
        line = process.stdout.readline().split()
        if len(line) != 3 or line[0] != "RESUMED":
            raise RuntimeError(f"worker did not resume (said {line!r})")
        _, restored, snapshot = line
        if restored == "none":
            self.figures["runs_without_checkpoint"] += 1
        else:
            self.figures["resumes"] += 1
            digest, _ = state_digest(snapshot)
            expected = os.path.join(self.checkpoint_dir, os.path.basename(restored))
            if os.path.basename(restored) != f"ckpt-{self.latest_step}" or (
                digest != self.latest_digest
            ):
                self.figures["resume_mismatches"] += 1
                print(f"resume mismatch: {restored} vs {expected}", flush=True)
        during_write = False
        if process.hold is not None:
            during_write = self.wait_inside_write(process)
        elif self.rng.random() < self.args.write_fraction:
            deadline = time.monotonic() + self.args.max_delay * 4
            while time.monotonic() < deadline and process.poll() is None:
                if write_in_progress(self.checkpoint_dir):
                    during_write = True
                    break
                time.sleep(0.0005)
        else:
            time.sleep(self.rng.uniform(0.0, self.args.max_delay))
            during_write = write_in_progress(self.checkpoint_dir)
        if process.poll() is not None:
            raise RuntimeError("the training process ended before it was killed")
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        process.stdout.close()
        process.stdin.close()
        self.figures["kills"] += 1
        self.figures["kills_during_write"] += int(during_write)
        self.verify()

    def wait_inside_write(self, process: subprocess.Popen) -> bool:
        """Waits until the worker holds inside a checkpoint write with an earlier checkpoint
        listed (earlier held writes are let go); True once the held checkpoint is seen
        written and not listed, the moment to kill."""
        from facegan_tf.training.checkpointing import listed_checkpoints

        deadline = time.monotonic() + max(60.0, self.args.max_delay * 20)
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with open(process.hold, encoding="utf-8") as f:
                    held = os.path.basename(f.read().strip())
            except FileNotFoundError:
                time.sleep(0.005)
                continue
            listed = listed_checkpoints(self.checkpoint_dir)
            if not listed:
                os.remove(process.hold)  # nothing to keep yet: let this write finish
                continue
            written = os.path.isfile(os.path.join(self.checkpoint_dir, held + ".index"))
            return written and held not in listed
        raise RuntimeError("the worker never held inside a checkpoint write")

    def run(self) -> dict:
        started = time.monotonic()
        try:
            while self.figures["kills"] < self.args.kills:
                if time.monotonic() - started > self.args.max_minutes * 60:
                    break
                self.round()
                if self.args.verbose:
                    print(json.dumps(self.figures), flush=True)
        finally:
            for process in self.idle:
                process.kill()
                process.wait()
        self.figures["final_step"] = self.latest_step
        self.figures["minutes"] = round((time.monotonic() - started) / 60, 2)
        self.figures["warm_workers"] = self.args.warm
        self.figures["held_kills"] = min(self.args.held_kills, self.figures["kills"])
        if not self.args.keep:
            shutil.rmtree(self.root, ignore_errors=True)
        else:
            self.figures["folder"] = self.root
        return self.figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=200, help="SIGKILLs to survive.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the kill schedule.")
    parser.add_argument("--max_minutes", type=float, default=30.0, help="Stop after this long.")
    parser.add_argument("--max_delay", type=float, default=1.5,
                        help="Longest random delay (s) between resume and kill.")
    parser.add_argument("--write_fraction", type=float, default=0.5,
                        help="Share of rounds that kill as soon as a checkpoint write is seen.")
    parser.add_argument("--held_kills", type=int, default=0,
                        help="The first N rounds kill inside a held checkpoint write.")
    parser.add_argument("--warm", type=int, default=2, help="Workers prepared ahead.")
    parser.add_argument("--keep", action="store_true", help="Keep the soak folder.")
    parser.add_argument("--verbose", action="store_true", help="Print figures every round.")
    parser.add_argument("--_worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._worker:
        worker(args._worker)
        return 0
    if args.kills < 1 or args.warm < 1 or not 0 <= args.write_fraction <= 1:
        parser.error("--kills and --warm must be >= 1, --write_fraction in [0, 1]")
    if args.held_kills < 0:
        parser.error(f"--held_kills must be >= 0. Received: held_kills={args.held_kills}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    figures = Soak(args).run()
    command = "python bench/soak.py " + " ".join(sys.argv[1:] if argv is None else argv)
    figures["command"] = command.strip()
    print(json.dumps(figures))
    bad = figures["lost"] + figures["unloadable"] + figures["resume_mismatches"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
