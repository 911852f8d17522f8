"""Reproducer of a TensorFlow 2.21 oneDNN abort: a stride-1 VALID `tf.nn.conv2d` whose kernel
is as large as the image kills the process.

The convolution is the kernel gradient of a 7 x 7 layer at 256 x 256 written as a forward
convolution (input [3, 262, 262, 1], kernel [256, 256, 1, 8]). With oneDNN on, TensorFlow
runs it through its oneDNN kernel (``MklConvOp``); oneDNN's ``brg_conv_fwd:avx512_core``
implementation asks for a 32.75 GiB scratchpad, the ``mklcpu`` allocator refuses it, and
``MklConvOp::Compute`` goes on with the unallocated scratchpad tensor (float) read as uint8:

    F tensor.cc:896] Check failed: dtype() == expected_dtype (1 vs. 4)  uint8 expected, got float

(SIGABRT, no Python exception). With oneDNN off the same op runs. facegan_tf avoids the
pattern (`facegan_tf.layers.ForwardGradConv2D` uses TensorFlow's own gradients under
oneDNN); docs/troubleshooting.md has the details.

Runs the convolution in a child process per setting and prints, as the last line, one JSON
object: ``{"onednn_on": {...}, "onednn_off": {...}, "reproduced": bool}``. Exits 0 either
way (a reproducer, not a test)::

    python bench/onednn_conv_abort.py                 # 256 x 256: aborts on oneDNN
    python bench/onednn_conv_abort.py --image_size=128  # runs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = """
import sys
import tensorflow as tf
size, kernel, batch, channels = (int(v) for v in sys.argv[1:5])
conv = tf.function(lambda x, k: tf.nn.conv2d(x, k, 1, "VALID"))
x = tf.random.normal([batch, size + kernel - 1, size + kernel - 1, 1])
k = tf.random.normal([size, size, 1, channels])
print("output shape", conv(x, k).shape, flush=True)
"""


def run(onednn: str, args) -> dict:
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=onednn, TF_CPP_MIN_LOG_LEVEL="1")
    command = [sys.executable, "-c", CHILD, str(args.image_size), str(args.kernel),
               str(args.batch), str(args.channels)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    lines = result.stderr.splitlines()
    check = next((line for line in lines if "Check failed" in line), None)
    allocation = next((line for line in lines if "ran out of memory trying" in line), None)
    return {
        "returncode": result.returncode,
        "check_failed": check.split("]", 1)[-1].strip() if check else None,
        "allocation": allocation.split("]", 1)[-1].strip() if allocation else None,
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image_size", type=int, default=256, help="Output side = kernel side.")
    parser.add_argument("--kernel", type=int, default=7, help="Side of the layer's kernel.")
    parser.add_argument("--batch", type=int, default=3, help="Input channels of the layer.")
    parser.add_argument("--channels", type=int, default=8, help="Output channels of the layer.")
    args = parser.parse_args(argv)
    report = {"onednn_on": run("1", args), "onednn_off": run("0", args)}
    report["reproduced"] = (
        report["onednn_on"]["check_failed"] is not None and report["onednn_off"]["returncode"] == 0
    )
    for name in ("onednn_on", "onednn_off"):
        print(f"{name}: {report[name]}")
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
