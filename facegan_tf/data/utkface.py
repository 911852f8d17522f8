"""Building CycleGAN folders from UTKFace (Zhang et al., CVPR 2017).

UTKFace file names are ``[age]_[gender]_[race]_[date&time].jpg`` (gender 0 = male,
1 = female); the aligned release appends suffixes such as ``.chip.jpg``. Only the leading
fields are parsed; names with a missing or empty field are skipped and counted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil

from facegan_tf.data.images import is_image_file

_NAME = re.compile(r"^(\d+)_(\d+)_(\d+)_(\d+)")


@dataclasses.dataclass(frozen=True)
class UTKFaceRecord:
    path: str
    age: int
    gender: int
    race: int


def parse_utkface_name(name: str) -> tuple[int, int, int] | None:
    """(age, gender, race) of a UTKFace file name, or None when it does not follow the scheme."""
    match = _NAME.match(os.path.basename(name))
    if not match:
        return None
    age, gender, race = int(match.group(1)), int(match.group(2)), int(match.group(3))
    if gender not in (0, 1) or race > 4:
        return None
    return age, gender, race


def scan_utkface(folder: str) -> tuple[list[UTKFaceRecord], list[str]]:
    """Parsed records and the names that could not be parsed."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"UTKFace folder {folder!r} does not exist.")
    records, malformed = [], []
    for name in sorted(os.listdir(folder)):
        if not is_image_file(name):
            continue
        fields = parse_utkface_name(name)
        if fields is None:
            malformed.append(name)
        else:
            records.append(UTKFaceRecord(os.path.join(folder, name), *fields))
    if not records:
        raise ValueError(
            f"No UTKFace images in {folder!r}: expected names like 26_0_2_20170104023102422.jpg."
        )
    return records, malformed


def is_test_file(name: str, test_fraction: float) -> bool:
    """Deterministic split by a hash of the file name (stable across machines and runs)."""
    digest = hashlib.sha256(os.path.basename(name).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < test_fraction


def place(source: str, target: str, mode: str) -> str:
    """Links (``symlink``/``hardlink``) or copies ``source`` to ``target``; returns the mode used.

    ``auto`` tries a symbolic link, then a hard link, then a copy.
    """
    if os.path.lexists(target):
        return "exists"
    modes = ["symlink", "hardlink", "copy"] if mode == "auto" else [mode]
    for candidate in modes:
        try:
            if candidate == "symlink":
                os.symlink(os.path.abspath(source), target)
            elif candidate == "hardlink":
                os.link(source, target)
            else:
                shutil.copy2(source, target)
            return candidate
        except OSError:
            if candidate == modes[-1]:
                raise
    return modes[-1]


def build_cyclegan_folder(
    records: list[UTKFaceRecord],
    output_dir: str,
    split: str = "age",
    domain_a: tuple[int, int] = (18, 25),
    domain_b: tuple[int, int] = (50, 60),
    test_fraction: float = 0.1,
    mode: str = "auto",
) -> dict:
    """Writes ``trainA/ trainB/ testA/ testB/`` for an age split (inclusive ranges) or a
    gender split (A = male, B = female) and returns the counts per folder."""
    if split not in ("age", "gender"):
        raise ValueError(f"--split must be 'age' or 'gender'. Received: {split!r}")
    if not 0 <= test_fraction < 1:
        raise ValueError(f"--test_fraction must be in [0, 1). Received: {test_fraction}")
    for low, high in (domain_a, domain_b):
        if low > high:
            raise ValueError(
                f"An age range must be low-high with low <= high. Received: {low}-{high}"
            )
    counts = {sub: 0 for sub in ("trainA", "trainB", "testA", "testB")}
    modes_used = set()
    for sub in counts:
        os.makedirs(os.path.join(output_dir, sub), exist_ok=True)
    for record in records:
        if split == "age":
            in_a = domain_a[0] <= record.age <= domain_a[1]
            in_b = domain_b[0] <= record.age <= domain_b[1]
        else:
            in_a, in_b = record.gender == 0, record.gender == 1
        if not (in_a or in_b) or (in_a and in_b):
            continue
        domain = "A" if in_a else "B"
        sub = ("test" if is_test_file(record.path, test_fraction) else "train") + domain
        target = os.path.join(output_dir, sub, os.path.basename(record.path))
        modes_used.add(place(record.path, target, mode))
        counts[sub] += 1
    counts["placed_by"] = sorted(modes_used)
    return counts
