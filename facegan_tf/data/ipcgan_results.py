"""Names of IPCGAN test results and how to pair them again.

The original's ``test.py`` (Wang et al., CVPR 2018, authors' code) saves, for every test
image ``<name>``, its 128 x 128 copy under the same name and one output per target group j
as ``<name>_<j>.jpg`` in one folder (e.g. ``15_Chris_Colfer_0009.jpg_0.jpg`` and
``15_Chris_Colfer_0009.jpg_0.jpg_1.jpg``); ``tools/test_ipcgan.py`` keeps that layout.
"""

from __future__ import annotations

import os
import re

from facegan_tf.data.images import is_image_file


def aged_name(name: str, group: int) -> str:
    """The original's output name for input file ``name`` aged to ``group``:
    ``<name>_<group>.jpg`` (e.g. ``15_Chris_Colfer_0009.jpg_0.jpg_1.jpg``)."""
    return f"{name}_{int(group)}.jpg"


_AGED_NAME = re.compile(r"^(?P<name>.+)_(?P<group>\d+)\.jpg$", re.DOTALL)


def find_aged_faces(folder: str) -> dict:
    """Pairs the files of an `age_folder` result folder: an image ``<name>_<j>.jpg`` whose
    ``<name>`` is also in the folder is the output of input ``<name>`` for group j; every
    other image is an input.

    Returns:
        ``{"inputs": [path, ...], "outputs": [(path, input_index, group), ...],
        "unpaired_inputs": [path, ...]}``; ``inputs`` holds only inputs with outputs.

    Raises:
        ValueError: no pairs, or a name that is both an output and the input of another
            output (ambiguous).
    """
    names = {
        name for name in os.listdir(folder)
        if is_image_file(name) and not name.startswith(".tmp-")
        and os.path.isfile(os.path.join(folder, name))
    }
    pairs = {}
    for name in names:
        match = _AGED_NAME.match(name)
        if match and match.group("name") in names:
            pairs[name] = (match.group("name"), int(match.group("group")))
    chained = sorted(name for name, (source, _) in pairs.items() if source in pairs)
    if chained:
        raise ValueError(
            f"Ambiguous names in {folder!r}: {chained[0]!r} would be the output of "
            f"{pairs[chained[0]][0]!r}, itself an output. Received: folder={folder!r}"
        )
    sources = sorted({source for source, _ in pairs.values()})
    if not sources:
        raise ValueError(
            f"{folder!r} holds no aged faces: expected inputs <name> with outputs "
            f"<name>_<group>.jpg as written by test_ipcgan. Received: folder={folder!r}"
        )
    index = {source: i for i, source in enumerate(sources)}
    outputs = sorted(
        (os.path.join(folder, name), index[source], group)
        for name, (source, group) in pairs.items()
    )
    unpaired = sorted(names - set(pairs) - set(sources))
    return {
        "inputs": [os.path.join(folder, source) for source in sources],
        "outputs": outputs,
        "unpaired_inputs": [os.path.join(folder, name) for name in unpaired],
    }
