"""The Japanese translation is complete and the shipped .mo matches the .po."""

import gettext
import re
from pathlib import Path

import django_crosssell

LOCALE = Path(django_crosssell.__file__).parent / "locale" / "ja" / "LC_MESSAGES"


def _unquote(chunks: list[str]) -> str:
    return "".join(chunk.encode("raw_unicode_escape").decode("unicode_escape") for chunk in chunks)


def po_entries() -> dict[str, tuple[str, bool, bool]]:
    """msgid -> (first msgstr, fuzzy, plural) for every entry of django.po but the header."""
    text = (LOCALE / "django.po").read_text(encoding="utf-8")
    entries = {}
    for block in text.split("\n\n"):
        msgid = re.search(r'^msgid ((?:".*"\n?)+)', block, re.M)
        msgstr = re.search(r'^msgstr(?:\[0\])? ((?:".*"\n?)+)', block, re.M)
        if not msgid or not msgstr:
            continue
        key = _unquote(re.findall(r'"(.*)"', msgid.group(1)))
        if key:
            value = _unquote(re.findall(r'"(.*)"', msgstr.group(1)))
            entries[key] = (value, "#, fuzzy" in block, "msgid_plural" in block)
    return entries


def test_every_message_is_translated_and_none_is_fuzzy():
    entries = po_entries()
    assert len(entries) > 100
    assert [k for k, (v, _, _) in entries.items() if not v] == []
    assert [k for k, (_, fuzzy, _) in entries.items() if fuzzy] == []


def test_compiled_catalogue_matches_the_po_file():
    with (LOCALE / "django.mo").open("rb") as handle:
        catalogue = gettext.GNUTranslations(handle)
    stale = [
        msgid
        for msgid, (msgstr, _, plural) in po_entries().items()
        if catalogue._catalog.get((msgid, 0) if plural else msgid) != msgstr
    ]
    assert stale == [], "run `make messages` to recompile the .mo"
