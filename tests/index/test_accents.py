"""Accents given back to a question typed without them, spelled as the corpus spells each word."""

from __future__ import annotations

from index.lexical import accent_table, restore_accents


def test_a_syllable_on_its_own_takes_the_spelling_it_has_as_a_word_of_its_own() -> None:
    # "hợp" is the more frequent syllable (inside compounds), "họp" the word the corpus uses on its own
    words = ["phối hợp", "phối hợp", "phù hợp", "tổng hợp", "họp", "Bộ Chính trị", "mấy", "lần"]
    table = accent_table(words)
    assert table["hop"][0] == "họp"
    assert table["phoi_hop"][0] == "phối hợp"
    assert restore_accents("bo chinh tri hop may lan", table) == "bộ chính trị họp mấy lần"


def test_a_syllable_never_on_its_own_takes_its_most_frequent_spelling() -> None:
    table = accent_table(["phối hợp", "phù hợp", "hợp tác"])
    assert table["hop"][0] == "hợp"
