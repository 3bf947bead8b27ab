"""Placeholder product images for the demo: one small SVG per catalogue product.

The demo ships no photographs (licensing); a coloured tile with the product's name, the hue
chosen by what the product is (shirts one colour, lenses another), makes cards look like a
shop's. ``python -m example_shop.shop.placeholders`` rewrites the files in
``shop/static/shop/products/`` from ``seed_demo``'s catalogue; the shop's adapter serves
them, and ``placeholder.svg`` for products that have none (those created in the admin).
"""

from __future__ import annotations

import hashlib
import textwrap
from html import escape
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static" / "shop" / "products"

FONTS = "IPAPGothic, 'Hiragino Sans', 'Noto Sans CJK JP', sans-serif"
SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="320" height="320" viewBox="0 0 320 320"'
    ' role="img" aria-label="{label}">\n'
    '<rect width="320" height="320" rx="24" fill="hsl({hue} 45% 88%)"/>\n'
    '<circle cx="160" cy="120" r="64" fill="hsl({hue} 40% 70%)"/>\n'
    '<text x="160" y="236" font-family="{fonts}" font-size="24" text-anchor="middle"'
    ' fill="hsl({hue} 45% 25%)">{lines}</text>\n'
    "</svg>\n"
)


def hue_of(text: str) -> int:
    """A stable hue per text (md5, not ``hash()``, so it is the same in every process)."""
    return int(hashlib.md5(text.encode()).hexdigest()[:4], 16) % 360


def svg(name: str, group: str) -> str:
    lines = textwrap.wrap(name, 11)[:2] or [""]
    tspans = "".join(
        f'<tspan x="160" dy="{0 if i == 0 else 30}">{escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    return SVG.format(hue=hue_of(group), label=escape(name), lines=tspans, fonts=FONTS)


def write_all() -> int:
    from .management.commands.seed_demo import CATALOGUE

    STATIC_DIR.mkdir(parents=True, exist_ok=True)
    count = 0
    for role, (_category, _text, products) in CATALOGUE.items():
        for slug, name, _price in products:
            (STATIC_DIR / f"{slug}.svg").write_text(svg(name, role), encoding="utf-8")
            count += 1
    (STATIC_DIR / "placeholder.svg").write_text(svg("", "placeholder"), encoding="utf-8")
    return count


if __name__ == "__main__":
    import django

    django.setup()
    print(f"{write_all()} images written to {STATIC_DIR}")
