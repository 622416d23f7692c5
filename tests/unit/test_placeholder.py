"""Placeholder PNGs: real, sized, deterministic, different per input, with the prompt drawn on them."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from mediagen.generators.placeholder import MAX_SIZE, MIN_SIZE, render_placeholder

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def near_white_pixels(image: Image.Image, box: tuple[int, int, int, int]) -> int:
    raw = image.convert("RGB").crop(box).tobytes()
    return sum(1 for i in range(0, len(raw), 3) if min(raw[i : i + 3]) >= 235)


def test_is_a_png_of_the_requested_size() -> None:
    data = render_placeholder("a corgi", 200, 120, "s")
    assert data.startswith(PNG_SIGNATURE)
    image = decode(data)
    assert (image.format, image.size, image.mode) == ("PNG", (200, 120), "RGB")


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [(10, 10, (MIN_SIZE, MIN_SIZE)), (5000, 80, (MAX_SIZE, 80)), (-3, 100, (MIN_SIZE, 100))],
)
def test_sizes_are_clamped(width: int, height: int, expected: tuple[int, int]) -> None:
    assert decode(render_placeholder("x", width, height, "s")).size == expected


def test_same_input_same_bytes() -> None:
    assert render_placeholder("a corgi", 160, 160, "seed/0") == render_placeholder("a corgi", 160, 160, "seed/0")


@pytest.mark.parametrize(
    "other", [("a corgi!", 160, 160, "seed/0"), ("a corgi", 160, 160, "seed/1"), ("a corgi", 161, 160, "seed/0")]
)
def test_any_change_changes_the_image(other: tuple[str, int, int, str]) -> None:
    base = decode(render_placeholder("a corgi", 160, 160, "seed/0"))
    changed = decode(render_placeholder(*other))
    assert base.size != changed.size or base.tobytes() != changed.tobytes()


def test_background_differs_between_seeds() -> None:
    # Corner pixels sit outside the text panel: a different seed must colour them differently.
    a = decode(render_placeholder("same", 128, 128, "seed/0")).getpixel((2, 2))
    b = decode(render_placeholder("same", 128, 128, "seed/1")).getpixel((2, 2))
    assert a != b


def test_prompt_text_is_drawn() -> None:
    # The background is saturated colour; white pixels in the middle band come from the text.
    with_text = decode(render_placeholder("WWWW MMMM", 256, 256, "s"))
    assert near_white_pixels(with_text, (20, 100, 236, 156)) > 50


def test_long_prompts_and_odd_text_do_not_break_rendering() -> None:
    for prompt in ("", "   ", "x" * 5000, "emoji 🐶 and\ttabs\nand newlines", "supercalifragilistic" * 20):
        image = decode(render_placeholder(prompt, 100, 64, "s"))
        assert image.size == (100, 64)
