"""Placeholder images for the mock generator: a gradient derived from the input, with the prompt on it.

Deterministic: the same prompt, size and seed material give the same PNG bytes (for a given Pillow and zlib),
so mock outputs behave like real files: stable hashes, idempotent uploads, visible in a browser.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import re
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

MIN_SIZE = 64
MAX_SIZE = 2048
MAX_PROMPT_CHARS = 600
LABEL = "mediagen mock"

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
_WHITESPACE = re.compile(r"\s+")


def clamp_size(value: int) -> int:
    """``value`` limited to ``MIN_SIZE..MAX_SIZE`` pixels."""
    return max(MIN_SIZE, min(MAX_SIZE, value))


@lru_cache(maxsize=32)
def _font(size: int) -> Font:
    try:
        # Pillow >= 10.1 ships a scalable default font; it needs FreeType, so fall back to the bitmap one.
        return ImageFont.load_default(size=size)
    except (ImportError, OSError, TypeError):  # pragma: no cover - Pillow built without FreeType
        return ImageFont.load_default()


def _colour(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return round(r * 255), round(g * 255), round(b * 255)


def _background(width: int, height: int, digest: bytes) -> Image.Image:
    """Two analogous colours blended along a direction picked by ``digest``."""
    hue = digest[0] / 255
    start = _colour(hue, 0.45 + digest[1] / 255 * 0.25, 0.55 + digest[2] / 255 * 0.25)
    end = _colour(hue + 0.08 + digest[3] / 255 * 0.17, 0.5 + digest[4] / 255 * 0.25, 0.7 + digest[5] / 255 * 0.2)
    vertical = Image.linear_gradient("L")
    horizontal = vertical.transpose(Image.Transpose.ROTATE_90)
    mask = Image.blend(vertical, horizontal, digest[6] / 255)
    if digest[7] & 1:
        mask = mask.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    mask = mask.resize((width, height), Image.Resampling.BILINEAR)
    return Image.composite(Image.new("RGB", (width, height), end), Image.new("RGB", (width, height), start), mask)


def _bubbles(overlay: ImageDraw.ImageDraw, width: int, height: int, digest: bytes) -> None:
    """A few soft translucent circles, placed by ``digest``: enough to tell images apart at a glance."""
    short = min(width, height)
    for i in range(5):
        x = digest[8 + 3 * i] / 255 * width
        y = digest[9 + 3 * i] / 255 * height
        r = short * (0.08 + digest[10 + 3 * i] / 255 * 0.22)
        overlay.ellipse((x - r, y - r, x + r, y + r), fill=(255, 255, 255, 28 + 6 * i))


def _wrap(text: str, font: Font, draw: ImageDraw.ImageDraw, max_width: float) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if draw.textlength(candidate, font=font) <= max_width:
            current = candidate
            continue
        if current:
            lines.append(current)
        # A word wider than the image is broken wherever it has to be.
        current = ""
        for char in word:
            if current and draw.textlength(current + char, font=font) > max_width:
                lines.append(current)
                current = ""
            current += char
    if current:
        lines.append(current)
    return lines


def _fit_lines(lines: list[str], max_lines: int, font: Font, draw: ImageDraw.ImageDraw, width: float) -> list[str]:
    if len(lines) <= max_lines:
        return lines
    kept = lines[:max_lines]
    last = kept[-1]
    while last and draw.textlength(last + "…", font=font) > width:
        last = last[:-1]
    kept[-1] = last.rstrip() + "…"
    return kept


def _draw_prompt(overlay: ImageDraw.ImageDraw, prompt: str, width: int, height: int) -> None:
    short = min(width, height)
    font = _font(max(10, round(short / 14)))
    margin = max(6, round(short * 0.08))
    text_width = width - 2 * margin
    line_height = round(font.size * 1.25) if isinstance(font, ImageFont.FreeTypeFont) else 12
    max_lines = max(1, (height - 3 * margin) // line_height)
    lines = _fit_lines(_wrap(prompt, font, overlay, text_width), max_lines, font, overlay, text_width)
    block_height = line_height * len(lines)
    top = (height - block_height) / 2
    pad = margin / 2
    overlay.rounded_rectangle(
        (margin - pad, top - pad, width - margin + pad, top + block_height + pad),
        radius=pad,
        fill=(0, 0, 0, 70),
    )
    for i, line in enumerate(lines):
        y = top + i * line_height + line_height / 2
        overlay.text((width / 2, y), line, font=font, fill=(255, 255, 255, 255), anchor="mm")


def _draw_label(overlay: ImageDraw.ImageDraw, width: int, height: int) -> None:
    short = min(width, height)
    font = _font(max(8, round(short / 36)))
    inset = max(3, round(short * 0.02))
    overlay.text((width - inset, height - inset), LABEL, font=font, fill=(255, 255, 255, 170), anchor="rd")


def render_placeholder(prompt: str, width: int, height: int, seed_material: str) -> bytes:
    """A PNG of ``width`` x ``height`` (each clamped to 64..2048) showing ``prompt`` on a gradient.

    The colours and shapes come from a hash of all inputs: change any of them, including ``seed_material``,
    and the image changes; keep them and the bytes stay the same."""
    width, height = clamp_size(width), clamp_size(height)
    text = _WHITESPACE.sub(" ", prompt).strip()[:MAX_PROMPT_CHARS] or "(no prompt)"
    digest = hashlib.sha256(f"{prompt}\x00{width}x{height}\x00{seed_material}".encode()).digest()

    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    _bubbles(draw, width, height, digest)
    _draw_prompt(draw, text, width, height)
    _draw_label(draw, width, height)
    image = Image.alpha_composite(_background(width, height, digest).convert("RGBA"), layer).convert("RGB")

    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=6)
    return out.getvalue()
