"""Slugs from names in any script, for the admin: 「砥石」 gives "toishi", never "".

Django's ``slugify`` (and the admin's JavaScript) keeps only ASCII letters, digits and
hyphens, so a Japanese name gives an empty slug (a "required" error on a field staff never
filled in) or only its digits (「お茶 よりどり2点で10%オフ」 -> "210"). With pykakasi
installed (the ``ja`` extra) kana and kanji are written in Hepburn romaji; whatever is still
too short falls back to a stable hash of the name, so the same name always gives the same
slug. Uniqueness is the caller's model's: :func:`unique_slug` adds ``-2``, ``-3``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache
from typing import Any

from django.db import models
from django.utils.text import slugify

#: A slug with fewer ASCII letters than this says little about the name: use the fallback.
MIN_LETTERS = 2


@lru_cache(maxsize=1)
def _kakasi() -> Any:
    try:
        import pykakasi
    except ImportError:
        return None
    return pykakasi.kakasi()


def romanize(text: str) -> str:
    """``text`` with Japanese written in romaji (unchanged without pykakasi)."""
    converter = _kakasi()
    if converter is None:
        return text
    return " ".join(part["hepburn"] for part in converter.convert(text))


def slug_for(name: str, *, max_length: int = 200, prefix: str = "item") -> str:
    """A readable ASCII slug for ``name``, stable for the same name."""
    text = romanize(unicodedata.normalize("NFKC", name or "")).replace("%", " percent ")
    slug = slugify(text)[:max_length].strip("-")
    # Letters slugify would drop (kana and kanji that nothing romanized) carry the meaning:
    # without them the slug is the name's digits ("210"), so the hash stands in instead.
    lost = any(ch.isalpha() and not ch.isascii() for ch in text)
    if not lost and len(re.findall(r"[a-z]", slug)) >= MIN_LETTERS:
        return slug
    digest = hashlib.sha1((name or "").encode("utf-8")).hexdigest()[:8]
    return f"{prefix}-{digest}"


def unique_slug(model: type[models.Model], slug: str, *, exclude_pk: Any = None) -> str:
    """``slug``, or ``slug-2``, ``slug-3``... whichever ``model`` does not have yet (one query)."""
    field = model._meta.get_field("slug")
    max_length = getattr(field, "max_length", None) or 50
    base = slug[: max_length - 4]
    taken_qs = model._default_manager.filter(slug__startswith=base)
    if exclude_pk is not None:
        taken_qs = taken_qs.exclude(pk=exclude_pk)
    taken = set(taken_qs.values_list("slug", flat=True))
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate
