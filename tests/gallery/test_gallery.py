"""The shared HTML gallery: structure, links and what a browser really shows."""

import html.parser
import os
from urllib.parse import unquote

import numpy as np
import pytest

from facegan_tf.data.images import save_image
from facegan_tf.training.samples import write_gallery

#: Checks every <img> after scrolling it into view (the gallery loads images lazily, as a
#: person scrolling the page would), then reports what the browser built from the page.
INSPECT = """(async () => {
  const images = [...document.images];
  for (const image of images) {
    image.scrollIntoView();
    await image.decode().catch(() => {});
  }
  const cells = row => [...row.children].map(c => ({
    tag: c.tagName.toLowerCase(), text: c.textContent.trim(),
    images: c.querySelectorAll('img').length,
  }));
  return {
    doctype: document.doctype && document.doctype.name,
    charset: document.characterSet,
    title: document.title,
    header: [...document.querySelectorAll('table > thead > tr')].map(cells),
    rows: [...document.querySelectorAll('table > tbody > tr')].map(cells),
    notes: [...document.querySelectorAll('dl.notes dt')].map(d => [d.textContent,
            d.nextElementSibling.textContent]),
    images: images.map(i => ({
      src: decodeURIComponent(new URL(i.src).pathname), complete: i.complete,
      natural: [i.naturalWidth, i.naturalHeight],
      shown: [Math.round(i.getBoundingClientRect().width),
              Math.round(i.getBoundingClientRect().height)],
      rendering: getComputedStyle(i).imageRendering,
      link: decodeURIComponent(new URL(i.closest('a').href).pathname),
    })),
  };
})()"""


def _image(path, height, width, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    save_image(str(path), pixels)
    return str(path)


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    """A page in a nested folder whose images sit in sibling folders with awkward names."""
    root = tmp_path_factory.mktemp("gallery")
    images = root / "results" / "Ältere Gesichter"
    inputs = root / "data" / "test set"
    pages = root / "pages" / "run 1"
    sources = [
        _image(inputs / "Zoë 1.png", 16, 16, 0),  # tiny: shown 8x enlarged, pixelated
        _image(inputs / "face #2?.jpg", 64, 48, 1),
        _image(inputs / "顔.png", 40, 40, 2),
    ]
    rows, captions = [], []
    for index, source in enumerate(sources):
        outputs = [_image(images / f"{index}_group {g}.png", 300, 400, 10 + g) for g in range(3)]
        rows.append([source, *outputs])
        captions.append(f"{os.path.basename(source)} <row {index}>")
    # More rows than fit on one screen, so lazily loaded images below the fold count too.
    for index in range(3, 12):
        rows.append([sources[0], f"{index}_group 0.png was skipped", ""])
        captions.append(f"row {index}")
    page = write_gallery(
        str(pages / "index.html"),
        "IPCGAN test results <demo>",
        ["input", "group 0", "group 1", "group 2"],
        rows,
        captions=captions,
        notes={"checkpoint": "ckpt/ipcgan-100", "date": "2026-11-01"},
    )
    return page, rows, captions


def test_gallery_in_a_real_browser(browser, gallery):
    page, rows, captions = gallery
    seen = browser.open(page).evaluate(INSPECT)

    assert seen["doctype"] == "html" and seen["charset"] == "UTF-8"
    assert seen["title"] == "IPCGAN test results <demo>"
    assert seen["notes"] == [["checkpoint", "ckpt/ipcgan-100"], ["date", "2026-11-01"]]
    assert [[c["text"] for c in row] for row in seen["header"]] == [
        ["name", "input", "group 0", "group 1", "group 2"]
    ]
    assert len(seen["rows"]) == len(rows)
    for row, caption, cells in zip(rows, captions, seen["rows"]):
        assert [c["tag"] for c in cells] == ["th", "td", "td", "td", "td"]
        assert cells[0]["text"] == caption
        expected_images = [
            int(str(v).endswith((".png", ".jpg")) and os.sep in str(v)) for v in row
        ] + [0] * (4 - len(row))
        assert [c["images"] for c in cells[1:]] == expected_images

    image_cells = [v for row in rows for v in row if os.sep in str(v)]
    assert len(seen["images"]) == len(image_cells)
    for shown, path in zip(seen["images"], image_cells):
        assert shown["complete"] and shown["natural"][0] > 0, f"{path} did not load"
        assert os.path.realpath(shown["src"]) == os.path.realpath(path)
        assert os.path.realpath(shown["link"]) == os.path.realpath(path)
        assert shown["natural"] == _pil_size(path)
    tiny = seen["images"][0]
    assert tiny["natural"] == [16, 16] and tiny["shown"] == [128, 128]
    assert tiny["rendering"] == "pixelated"
    wide = seen["images"][1]  # 400x300, four image columns: shrunk to 256 px wide
    assert wide["shown"] == [256, 192] and wide["rendering"] == "auto"


def _pil_size(path):
    from PIL import Image

    with Image.open(path) as image:
        return list(image.size)


class _Structure(html.parser.HTMLParser):
    VOID = {"meta", "img", "br", "link"}

    def __init__(self):
        super().__init__()
        self.stack, self.images, self.links, self.doctype = [], [], [], None

    def handle_decl(self, decl):
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            assert attrs.get("alt"), "every image needs alt text"
            self.images.append(attrs["src"])
        if tag == "a":
            self.links.append(attrs["href"])
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}> in {self.stack}"
        self.stack.pop()


def test_gallery_markup_is_balanced_html5_with_quoted_relative_links(gallery):
    page, rows, _ = gallery
    with open(page, encoding="utf-8") as f:
        text = f.read()
    parser = _Structure()
    parser.feed(text)
    assert parser.doctype == "DOCTYPE html" and parser.stack == []
    assert '<meta charset="utf-8">' in text and "<row 0>" not in text  # text is escaped
    base = os.path.dirname(page)
    for src in parser.images + parser.links:
        assert src.startswith("../../") and " " not in src and src.isascii(), src
        assert os.path.isfile(os.path.join(base, unquote(src))), src
    assert parser.images == parser.links


def test_gallery_keeps_the_callers_signature_and_checks_its_input(tmp_path):
    image = _image(tmp_path / "a.png", 8, 8, 0)
    page = write_gallery(str(tmp_path / "index.html"), "t", ["image"], [[image], ["text"]])
    with open(page, encoding="utf-8") as f:
        text = f.read()
    assert '<img src="a.png"' in text and "<td>text</td>" in text and ">name<" not in text
    with pytest.raises(ValueError, match="one caption per row"):
        write_gallery(str(tmp_path / "x.html"), "t", ["a"], [[image]], captions=["1", "2"])
    with pytest.raises(ValueError, match="2 cells but the gallery has 1 columns"):
        write_gallery(str(tmp_path / "x.html"), "t", ["a"], [[image, image]])
    assert not os.path.exists(tmp_path / "x.html")


def test_test_cyclegan_page_in_a_real_browser(browser, tool, tmp_path):
    """End to end: the page `tools/test_cyclegan.py` writes shows every input and output."""
    fixture = os.path.join(os.path.dirname(__file__), "..", "fixtures", "cyclegan_xhujoy_resnet")
    source = tmp_path / "photos" / "new faces"
    inputs = [_image(source / name, 64, 64, i) for i, name in enumerate(["ä 0.png", "b 1.jpg"])]
    out = tmp_path / "results" / "test run"
    result = tool(
        "test_cyclegan",
        f"--checkpoint_dir={fixture}/checkpoint",
        f"--source={source}",
        f"--test_dir={out}",
        "--fine_size=64",
        "--which_direction=AtoB",
    )
    assert result.returncode == 0, result.stderr
    seen = browser.open(str(out / "index.html")).evaluate(INSPECT)
    assert [[c["text"] for c in row] for row in seen["header"]] == [["name", "input", "output"]]
    assert [[c["images"] for c in row] for row in seen["rows"]] == [[0, 1, 1]] * len(inputs)
    assert len(seen["images"]) == 2 * len(inputs)
    for shown in seen["images"]:
        assert shown["complete"] and shown["natural"] == [64, 64], shown
    assert sorted(os.path.realpath(s["src"]) for s in seen["images"][::2]) == sorted(
        os.path.realpath(p) for p in inputs
    )
