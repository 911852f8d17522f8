"""A headless Chromium shared by the gallery tests (skipped when no browser is installed)."""

import pytest

from .headless import INSTALL_HINT, Browser, find_chromium


@pytest.fixture(scope="session")
def browser():
    binary = find_chromium()
    if binary is None:
        pytest.skip(
            f"no Chromium binary found, so the page is not checked in a browser ({INSTALL_HINT})"
        )
    instance = Browser(binary)
    yield instance
    instance.close()
