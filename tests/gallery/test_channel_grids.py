"""Sample grids of domains with different channel counts (CycleGAN --input_nc=1
--output_nc=3): every panel is shown, grayscale ones as gray RGB."""

import numpy as np
from PIL import Image

from facegan_tf.training.samples import make_grid, save_grid


def _to_uint8(signed):
    return np.clip(np.round((np.asarray(signed, np.float64) + 1.0) * 127.5), 0, 255).astype(
        np.uint8
    )


def _panel(grid, row, col, size, padding=2):
    top, left = padding + row * (size + padding), padding + col * (size + padding)
    return grid[top : top + size, left : left + size]


def test_grayscale_and_rgb_panels_share_one_grid(tmp_path):
    from facegan_tf.training.samples import stack_panels

    rng = np.random.default_rng(0)
    gray = rng.uniform(-1, 1, (2, 4, 4, 1)).astype(np.float32)
    color = rng.uniform(-1, 1, (2, 4, 4, 3)).astype(np.float32)
    batch = stack_panels([gray, color])
    assert batch.shape == (4, 4, 4, 3)
    path = save_grid(str(tmp_path / "grid.png"), batch, rows=2, cols=2)
    with Image.open(path) as image:
        assert image.mode == "RGB"
        grid = np.asarray(image)
    np.testing.assert_array_equal(grid, make_grid(batch, 2, 2))
    for row in range(2):
        np.testing.assert_array_equal(
            _panel(grid, row, 0, 4), np.repeat(_to_uint8(gray[row]), 3, axis=-1)
        )
        np.testing.assert_array_equal(_panel(grid, row, 1, 4), _to_uint8(color[row]))


def test_cyclegan_one_to_three_channel_samples(tmp_path):
    """The trainer's sample grids for input_nc=1, output_nc=3 (was: "all input arrays must
    have the same shape" at the first sample step): rows A | G(A) | F(G(A)) and
    B | F(B) | G(F(B)), the grayscale panels replicated to RGB."""
    import tensorflow as tf

    from facegan_tf.training.cyclegan import CycleGANConfig, CycleGANTrainer
    from facegan_tf.training.stats import StatsWriter

    config = CycleGANConfig(
        ngf=4, ndf=4, num_blocks=1, load_size=16, fine_size=16, input_nc=1, output_nc=3,
        checkpoint_dir=str(tmp_path / "checkpoint"), sample_dir=str(tmp_path / "sample"),
        log_dir=str(tmp_path / "logs"),
    )
    trainer = CycleGANTrainer(config)
    rng = np.random.default_rng(1)
    sample_a = rng.uniform(-1, 1, (2, 16, 16, 1)).astype(np.float32)
    sample_b = rng.uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    stats = StatsWriter(config.log_dir)
    trainer.write_samples(sample_a, sample_b, epoch=0, step=5, stats=stats)
    stats.close()

    def run(name, images):
        return trainer.models[name](tf.constant(images), training=False).numpy()

    fake_b = run("generator_a2b", sample_a)
    fake_a = run("generator_b2a", sample_b)
    expected = {
        "A2B": (sample_a, fake_b, run("generator_b2a", fake_b)),
        "B2A": (sample_b, fake_a, run("generator_a2b", fake_a)),
    }
    for direction, panels in expected.items():
        with Image.open(tmp_path / "sample" / f"{direction}_000_0000005.png") as image:
            assert image.mode == "RGB"
            grid = np.asarray(image)[::8, ::8]  # 16 px panels are enlarged 8 times
        for row in range(2):
            for col, images in enumerate(panels):
                shown = _panel(grid, row, col, 16)
                want = _to_uint8(images[row])
                if want.shape[-1] == 1:
                    want = np.repeat(want, 3, axis=-1)
                assert np.abs(shown.astype(int) - want).max() <= 1, (direction, row, col)
    page = (tmp_path / "sample" / "index.html").read_text(encoding="utf-8")
    assert "A2B_000_0000005.png" in page and "B2A_000_0000005.png" in page
