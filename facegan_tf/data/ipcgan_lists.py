"""IPCGAN list files, batch sampling and the tf.data input pipeline.

List formats of the original (Wang et al., CVPR 2018; dawei6875797 code):

* ``train_age_group_<k>.txt`` / ``test_age_group_<k>.txt`` (k = 0 .. age_groups - 1): one
  image per line; the first whitespace-separated token is the image name relative to the
  image root, the rest of the line is ignored; the age group is the file index.
* ``source.txt`` (the original's ``--source_file``): lines ``<name> <integer label>``; the
  generator's source faces (the authors used their group-0 training list).
* ``train_label_pair.txt``: lines ``<true group> <false group>`` with true != false; the
  original's file holds the 20 ordered pairs of 5 groups 20,000 times each, shuffled.

Names may be absolute or relative to the image root; blank lines are skipped. A missing
image, a malformed line or a group out of range raises an error naming the list file and
the line number.

One training step (`IPCGANSampler`): pair k -> target group t and wrong group f; the next
``batch`` names of group t's list (each group walks through its own reshuffled order; the
original never reshuffled group 0 after its first pass, here every group is reshuffled);
``batch`` sources from an independent shuffled stream over the source list. Every index is
a pure function of (seed, step), so a resumed run reads exactly the batches it would have
read.
"""

from __future__ import annotations

import dataclasses
import logging
import os

import numpy as np
import tensorflow as tf

from facegan_tf.data.age_groups import CACD_AGE_GROUPS as CACD_AGE_GROUPS
from facegan_tf.data.age_groups import age_group_of, parse_age_groups
from facegan_tf.data.images import ImageReadError, SkipCounter, read_image

logger = logging.getLogger(__name__)

MEAN_RGB = (104.0, 117.0, 124.0)
#: Side of the authors' aligned CACD crops; other sizes are resized (see `load_training_example`).
ORIGINAL_SOURCE_SIDE = 400


def group_list_name(mode: str, group: int) -> str:
    """``train_age_group_<k>.txt`` or ``test_age_group_<k>.txt``."""
    if mode not in ("train", "test"):
        raise ValueError(f"List mode must be 'train' or 'test'. Received: mode={mode!r}")
    return f"{mode}_age_group_{group}.txt"


def _resolve(name: str, image_root: str | None) -> str:
    if os.path.isabs(name) or not image_root:
        return name
    return os.path.join(image_root, name)


def read_image_list(
    list_file: str,
    image_root: str | None = None,
    require_label: bool = False,
    check_files: bool = True,
    num_groups: int | None = None,
) -> tuple[list[str], list[int | None]]:
    """Reads a list file into (paths, labels).

    Args:
        list_file: the list (UTF-8).
        image_root: folder that relative names are joined to (None: relative to the
            current directory, like the original's string concatenation with an empty root).
        require_label: every line must be ``<name> <int label>`` (``source.txt``).
        check_files: raise if a listed image does not exist.
        num_groups: if given, labels must lie in 0 .. num_groups - 1.

    Raises:
        FileNotFoundError: the list or a listed image is missing (naming list file and line).
        ValueError: a malformed line or a label out of range.
    """
    if not os.path.isfile(list_file):
        raise FileNotFoundError(f"List file {list_file!r} does not exist.")
    paths, labels = [], []
    with open(list_file, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            tokens = line.split()
            if not tokens:
                continue
            label = None
            if len(tokens) > 1:
                try:
                    label = int(tokens[1])
                except ValueError:
                    if require_label:
                        raise ValueError(
                            f"{list_file}:{number}: expected '<image name> <integer label>'. "
                            f"Received: line={line.rstrip()!r}"
                        ) from None
            elif require_label:
                raise ValueError(
                    f"{list_file}:{number}: expected '<image name> <integer label>'. "
                    f"Received: line={line.rstrip()!r}"
                )
            if label is not None and num_groups is not None and not 0 <= label < num_groups:
                raise ValueError(
                    f"{list_file}:{number}: label out of range 0..{num_groups - 1}. "
                    f"Received: label={label}"
                )
            path = _resolve(tokens[0], image_root)
            if check_files and not os.path.isfile(path):
                raise FileNotFoundError(
                    f"{list_file}:{number}: image {path!r} does not exist (names are relative "
                    f"to the image root {image_root!r})."
                )
            paths.append(path)
            labels.append(label)
    return paths, labels


def read_label_pairs(path: str, age_groups: int) -> np.ndarray:
    """Reads ``train_label_pair.txt`` into an int array [N, 2] of (true, false) groups."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Label pair file {path!r} does not exist.")
    pairs = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            tokens = line.split()
            if not tokens:
                continue
            try:
                true, false = int(tokens[0]), int(tokens[1])
            except (ValueError, IndexError):
                raise ValueError(
                    f"{path}:{number}: expected '<true group> <false group>'. "
                    f"Received: line={line.rstrip()!r}"
                ) from None
            for value in (true, false):
                if not 0 <= value < age_groups:
                    raise ValueError(
                        f"{path}:{number}: age group out of range 0..{age_groups - 1}. "
                        f"Received: line={line.rstrip()!r}"
                    )
            if true == false:
                raise ValueError(
                    f"{path}:{number}: the true and false groups must differ. "
                    f"Received: line={line.rstrip()!r}"
                )
            pairs.append((true, false))
    if not pairs:
        raise ValueError(f"Label pair file {path!r} holds no pairs.")
    return np.asarray(pairs, np.int64)


def generate_label_pairs(age_groups: int, repeats: int = 20000, seed: int = 0) -> np.ndarray:
    """Every ordered pair (true != false) ``repeats`` times, shuffled (the original's file:
    5 groups, 20,000 repeats = 400,000 lines)."""
    if age_groups < 2 or repeats < 1:
        raise ValueError(
            f"Label pairs need age_groups >= 2 and repeats >= 1. Received: {age_groups=}, "
            f"{repeats=}"
        )
    base = [(t, f) for t in range(age_groups) for f in range(age_groups) if t != f]
    pairs = np.asarray(base * repeats, np.int64)
    np.random.default_rng(seed).shuffle(pairs)
    return pairs


def write_label_pairs(path: str, pairs: np.ndarray) -> None:
    from facegan_tf.fileio import atomic_write

    with atomic_write(path) as f:
        for true, false in np.asarray(pairs):
            f.write(f"{int(true)} {int(false)}\n")


@dataclasses.dataclass(frozen=True)
class IPCGANLists:
    """Resolved image lists of one IPCGAN data set."""

    groups: tuple[tuple[str, ...], ...]
    sources: tuple[str, ...]
    pairs: np.ndarray

    @property
    def age_groups(self) -> int:
        return len(self.groups)


def load_ipcgan_lists(
    list_dir: str,
    image_root: str | None,
    age_groups: int = 5,
    mode: str = "train",
    source_file: str | None = None,
    label_pair_file: str | None = None,
    seed: int = 0,
    check_files: bool = True,
) -> IPCGANLists:
    """Reads ``<list_dir>/<mode>_age_group_<k>.txt`` for every group, the source list
    (default ``<list_dir>/source.txt``) and the label pairs (default
    ``<list_dir>/train_label_pair.txt`` if present, else generated from ``seed``)."""
    if not os.path.isdir(list_dir):
        raise FileNotFoundError(f"List folder {list_dir!r} does not exist.")
    groups = []
    for group in range(age_groups):
        paths, _ = read_image_list(
            os.path.join(list_dir, group_list_name(mode, group)), image_root,
            check_files=check_files,
        )
        if not paths:
            raise ValueError(
                f"{os.path.join(list_dir, group_list_name(mode, group))!r} lists no images; "
                "every age group needs real faces."
            )
        groups.append(tuple(paths))
    source_file = source_file or os.path.join(list_dir, "source.txt")
    sources, _ = read_image_list(
        source_file, image_root, require_label=True, check_files=check_files
    )
    if not sources:
        raise ValueError(f"Source list {source_file!r} lists no images.")
    default_pairs = os.path.join(list_dir, "train_label_pair.txt")
    if label_pair_file:
        pairs = read_label_pairs(label_pair_file, age_groups)
    elif os.path.isfile(default_pairs):
        pairs = read_label_pairs(default_pairs, age_groups)
    else:
        pairs = generate_label_pairs(age_groups, repeats=1000, seed=seed)
    return IPCGANLists(tuple(groups), tuple(sources), pairs)


class IPCGANSampler:
    """Which files and groups step k uses; a pure function of (seed, k).

    Args:
        lists: the data set.
        batch_size: global batch size.
        seed: seed of every shuffle.
    """

    def __init__(self, lists: IPCGANLists, batch_size: int, seed: int = 0):
        self.lists = lists
        self.batch_size = batch_size
        self.seed = seed
        for group, paths in enumerate(lists.groups):
            if len(paths) < batch_size:
                raise ValueError(
                    f"Age group {group} lists {len(paths)} image(s), fewer than the batch size. "
                    f"Received: batch_size={batch_size}"
                )
        pairs = lists.pairs
        one_hot = np.eye(lists.age_groups, dtype=np.int64)[pairs[:, 0]]
        self._draws_before = np.concatenate(
            [np.zeros((1, lists.age_groups), np.int64), np.cumsum(one_hot, axis=0)]
        )
        self._cache: dict = {}

    def _permutation(self, kind: int, index: int, epoch: int, size: int) -> np.ndarray:
        key = (kind, index, epoch)
        if key not in self._cache:
            if len(self._cache) > 64:
                self._cache.clear()
            rng = np.random.default_rng([self.seed, kind, index, epoch])
            self._cache[key] = rng.permutation(size)
        return self._cache[key]

    def step(self, step: int) -> dict:
        """Paths and groups of (0-based) step ``step``."""
        pairs = self.lists.pairs
        cycle, offset = divmod(step, len(pairs))
        true, false = (int(v) for v in pairs[offset])
        draws = cycle * int(self._draws_before[-1, true]) + int(self._draws_before[offset, true])
        group = self.lists.groups[true]
        per_epoch = len(group) // self.batch_size
        epoch, position = divmod(draws, per_epoch)
        order = self._permutation(0, true, epoch, len(group))
        start = position * self.batch_size
        reals = [group[i] for i in order[start:start + self.batch_size]]
        sources = []
        count = len(self.lists.sources)
        for flat in range(step * self.batch_size, (step + 1) * self.batch_size):
            source_epoch, source_index = divmod(flat, count)
            sources.append(self.lists.sources[
                self._permutation(1, 0, source_epoch, count)[source_index]
            ])
        return {"sources": sources, "reals": reals, "true_group": true, "false_group": false}


def _read_rgb(path) -> np.ndarray:
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    return read_image(path)


_warned_sizes: set = set()


def _read_source_rgb(path) -> np.ndarray:
    image = _read_rgb(path)
    shape = image.shape[:2]
    if shape != (ORIGINAL_SOURCE_SIDE, ORIGINAL_SOURCE_SIDE) and shape not in _warned_sizes:
        _warned_sizes.add(shape)
        logger.warning(
            "source face %s is %dx%d, not %dx%d like the original's CACD crops; it is resized "
            "as is (non-square faces are stretched). Further images of this size are not "
            "reported.", os.fsdecode(path), shape[1], shape[0], ORIGINAL_SOURCE_SIDE,
            ORIGINAL_SOURCE_SIDE,
        )
    return image


def decode_path(path: tf.Tensor, reader=_read_rgb) -> tf.Tensor:
    image = tf.numpy_function(reader, [path], tf.uint8, stateful=False)
    image.set_shape([None, None, 3])
    return image


def source_images(pixels: tf.Tensor, image_size: int, alexnet_size: int):
    """A decoded source face (uint8 RGB, any size) -> (generator input, AlexNet input).

    Both are TF1 legacy bilinear resizes of the whole image (the original decoded 400 x 400
    crops and resized them to 128 and 227) minus [104, 117, 124].
    """
    from facegan_tf.losses import legacy_resize_bilinear

    batch = tf.cast(pixels, tf.float32)[None]
    mean = tf.constant(MEAN_RGB, tf.float32)
    small = legacy_resize_bilinear(batch, image_size)[0] - mean
    large = legacy_resize_bilinear(batch, alexnet_size)[0] - mean
    return small, large


def real_image(pixels: tf.Tensor, image_size: int) -> tf.Tensor:
    """A decoded real face -> [-1, 1] at ``image_size``: bilinear resize with half-pixel centres
    (like the original's OpenCV INTER_LINEAR), rounded to whole grey levels, / 127.5 - 1."""
    resized = tf.image.resize(
        tf.cast(pixels, tf.float32), (image_size, image_size), method="bilinear", antialias=False
    )
    resized = tf.clip_by_value(tf.round(resized), 0.0, 255.0)
    return resized / 127.5 - 1.0


#: Files the IPCGAN training pipelines of this process could not decode (skipped).
SKIPPED = SkipCounter()


def _skipping(reader, skipped: SkipCounter):
    """Wraps an image reader so that an undecodable file yields an empty [0, 0, 3] array
    (dropped by the pipeline) and is counted, instead of stopping the run."""

    def read(path):
        try:
            return reader(path)
        except (ImageReadError, OSError) as error:
            name = os.fsdecode(path) if isinstance(path, bytes) else path
            skipped.add(name)
            logger.warning("skipping unreadable image (%d so far): %s", skipped.count, error)
            return np.zeros((0, 0, 3), np.uint8)

    return read


def training_dataset(
    sampler: IPCGANSampler,
    start_step: int,
    image_size: int = 128,
    alexnet_size: int = 227,
    num_steps: int | None = None,
    skipped: SkipCounter | None = None,
) -> tf.data.Dataset:
    """Global batches from ``start_step`` on: dicts with ``source`` [B, S, S, 3] (pixel - mean),
    ``source_alexnet`` [B, A, A, 3] (pixel - mean), ``real`` [B, S, S, 3] in [-1, 1],
    ``true_group`` and ``false_group`` [B] int32.

    A (source, real) record whose image cannot be decoded is dropped inside tf.data and the
    file is added to ``skipped`` (default: the process-wide `SKIPPED`), so a broken file in a
    multi-day run costs one record, not the run; later records fill the batch, so the run
    still has ``num_steps`` batches.
    """
    batch = sampler.batch_size
    skipped = SKIPPED if skipped is None else skipped
    read_source = _skipping(_read_source_rgb, skipped)
    read_real = _skipping(_read_rgb, skipped)

    def records():
        step = start_step
        while True:
            entry = sampler.step(step)
            for source, real in zip(entry["sources"], entry["reals"]):
                yield (
                    os.fsencode(source), os.fsencode(real),
                    entry["true_group"], entry["false_group"],
                )
            step += 1

    signature = (
        tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.string),
        tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32),
    )

    def decode(source_path, real_path, true, false):
        return decode_path(source_path, read_source), decode_path(real_path, read_real), true, false

    def readable(source, real, true, false):
        return tf.logical_and(tf.size(source) > 0, tf.size(real) > 0)

    def load(source_pixels, real_pixels, true, false):
        source, source_alexnet = source_images(source_pixels, image_size, alexnet_size)
        return {
            "source": source,
            "source_alexnet": source_alexnet,
            "real": real_image(real_pixels, image_size),
            "true_group": true,
            "false_group": false,
        }

    dataset = tf.data.Dataset.from_generator(records, output_signature=signature)
    dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.filter(readable)
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.batch(batch, drop_remainder=True)
    if num_steps is not None:
        dataset = dataset.take(num_steps)
    return dataset.prefetch(2)


def condition_batch(groups, age_groups: int, side: int) -> tf.Tensor:
    """One-hot age maps [B, side, side, age_groups] for integer groups [B]."""
    one_hot = tf.one_hot(tf.cast(groups, tf.int32), age_groups, dtype=tf.float32)
    return tf.tile(one_hot[:, None, None, :], [1, side, side, 1])


def write_lists(list_dir: str, groups: dict[int, list[str]], sources: list[str],
                mode: str = "train", age_groups: int = 5) -> dict:
    """Writes ``<mode>_age_group_<k>.txt`` (lines ``<name> <k>``) for k in 0..age_groups-1 and,
    for ``train``, ``source.txt`` (lines ``<name> 0``). Names are written as given."""
    from facegan_tf.fileio import atomic_write

    for name in list(groups) + [None]:
        if name is not None and not 0 <= name < age_groups:
            raise ValueError(f"Age group out of range 0..{age_groups - 1}. Received: group={name}")
    counts = {}
    for group in range(age_groups):
        names = groups.get(group, [])
        with atomic_write(os.path.join(list_dir, group_list_name(mode, group))) as f:
            for item in names:
                f.write(f"{item} {group}\n")
        counts[f"{mode}_age_group_{group}"] = len(names)
    if mode == "train":
        with atomic_write(os.path.join(list_dir, "source.txt")) as f:
            for item in sources:
                f.write(f"{item} 0\n")
        counts["source"] = len(sources)
    return counts


def write_demo_data(root: str, age_groups: int = 5, test_count: int = 4) -> dict:
    """The smoke-demo data set: the 100 embedded LFW faces with **pseudo** age groups.

    Face i goes to group ``i % age_groups`` (these faces carry no age labels; the demo only
    shows that training and testing run end to end). Writes ``<root>/images/lfw_<i>.png``,
    the train lists and ``source.txt`` in ``<root>/lists``, and ``<root>/test`` (the first
    ``test_count`` group-0 faces, which are left out of training) and ``<root>/train``
    (padding faces for the faithful test mode: the other group-0 faces).
    """
    from facegan_tf.data.demo import load_lfw_faces
    from facegan_tf.data.images import save_image

    faces = load_lfw_faces()
    image_dir = os.path.join(root, "images")
    names = []
    for index, face in enumerate(faces):
        name = f"lfw_{index:03d}.png"
        save_image(os.path.join(image_dir, name), face)
        names.append(name)
    young = [n for i, n in enumerate(names) if i % age_groups == 0]
    test, padding = young[:test_count], young[test_count:]
    groups = {
        g: [n for i, n in enumerate(names) if i % age_groups == g and n not in test]
        for g in range(age_groups)
    }
    counts = write_lists(os.path.join(root, "lists"), groups, padding, "train", age_groups)
    for folder, items in (("test", test), ("train", padding)):
        for name in items:
            save_image(os.path.join(root, folder, name), faces[names.index(name)])
    counts.update({"test": len(test), "padding": len(padding)})
    return counts


def read_age_table(path: str) -> dict[str, int]:
    """A CSV of file name and age: columns ``name``/``file``/``filename`` and ``age`` (header)
    or two columns without header. Returns {file name: age}."""
    import csv

    if not os.path.isfile(path):
        raise FileNotFoundError(f"Age table {path!r} does not exist.")
    ages = {}
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ValueError(f"Age table {path!r} is empty.")
    header = [c.strip().lower() for c in rows[0]]
    name_col, age_col, start = 0, 1, 0
    if "age" in header:
        age_col = header.index("age")
        names = [c for c in ("name", "file", "filename", "image", "path") if c in header]
        if not names:
            raise ValueError(
                f"Age table {path!r} has an 'age' column but no name column "
                f"(name/file/filename/image/path). Received: header={rows[0]}"
            )
        name_col, start = header.index(names[0]), 1
    for number, row in enumerate(rows[start:], start=start + 1):
        if not row or not "".join(row).strip():
            continue
        try:
            ages[row[name_col].strip()] = int(float(row[age_col]))
        except (ValueError, IndexError):
            raise ValueError(
                f"{path}:{number}: expected '<file name>,<age>'. Received: row={row}"
            ) from None
    return ages


def cacd_age(name: str) -> int | None:
    """The age prefix of a CACD file name ``<age>_<First>_<Last>_<NNNN>.jpg``."""
    head = os.path.basename(name).split("_", 1)[0]
    return int(head) if head.isdigit() else None


def build_lists_from_folder(
    image_dir: str,
    output_dir: str,
    age_table: str | None = None,
    age_groups: str = "11-20,21-30,31-40,41-50,51-",
    test_fraction: float = 0.1,
    split: str = "random",
    seed: int = 0,
    label_pair_repeats: int = 20000,
    source_group: int = 0,
) -> dict:
    """Writes the original's lists for the faces of ``image_dir``.

    Ages come from ``age_table`` (CSV) or from CACD-style names. Per group, a ``random``
    split (seeded; the guyuchao/IPCGANs-Pytorch convention) or ``every_nth`` (every
    round(1/test_fraction)-th face to test) writes ``train_age_group_<k>.txt`` and
    ``test_age_group_<k>.txt`` (lines ``<name> <k>``, names relative to ``image_dir``),
    ``source.txt`` (the training faces of ``source_group``) and ``train_label_pair.txt``
    (every ordered pair ``label_pair_repeats`` times, shuffled).
    """
    groups = parse_age_groups(age_groups)
    if not 0 <= test_fraction < 1:
        raise ValueError(f"--test_fraction must be in [0, 1). Received: {test_fraction=}")
    if split not in ("random", "every_nth"):
        raise ValueError(f"--split must be 'random' or 'every_nth'. Received: {split=}")
    if not 0 <= source_group < len(groups):
        raise ValueError(
            f"--source_group must be in 0..{len(groups) - 1}. Received: {source_group=}"
        )
    from facegan_tf.data.images import is_image_file

    if not os.path.isdir(image_dir):
        raise FileNotFoundError(f"--image_dir {image_dir!r} does not exist.")
    names = sorted(
        n for n in os.listdir(image_dir)
        if is_image_file(n) and os.path.isfile(os.path.join(image_dir, n))
    )
    table = read_age_table(age_table) if age_table else None
    per_group: dict[int, list[str]] = {g: [] for g in range(len(groups))}
    skipped = {"no_age": 0, "outside_groups": 0}
    for name in names:
        age = table.get(name) if table is not None else cacd_age(name)
        if age is None:
            skipped["no_age"] += 1
            continue
        group = age_group_of(age, groups)
        if group is None:
            skipped["outside_groups"] += 1
            continue
        per_group[group].append(name)
    if not any(per_group.values()):
        source = f"age table {age_table!r}" if age_table else "CACD-style names '<age>_...'"
        raise ValueError(f"No face in {image_dir!r} got an age group from the {source}.")
    train, test = {}, {}
    rng = np.random.default_rng(seed)
    for group, items in per_group.items():
        if split == "random":
            order = rng.permutation(len(items))
            count = int(round(len(items) * test_fraction))
            test_idx = set(order[:count].tolist())
        else:
            step = int(round(1 / test_fraction)) if test_fraction > 0 else 0
            test_idx = set(range(0, len(items), step)) if step else set()
        test[group] = [n for i, n in enumerate(items) if i in test_idx]
        train[group] = [n for i, n in enumerate(items) if i not in test_idx]
    counts = write_lists(output_dir, train, train[source_group], "train", len(groups))
    counts.update(write_lists(output_dir, test, [], "test", len(groups)))
    if len(groups) >= 2:
        write_label_pairs(
            os.path.join(output_dir, "train_label_pair.txt"),
            generate_label_pairs(len(groups), label_pair_repeats, seed),
        )
    counts.update(skipped)
    return counts
