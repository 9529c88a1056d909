"""fold: short texts (words, phrases) are kept once folded; long ones are folded each time; same result."""

from __future__ import annotations

import pytest

from index import textnorm
from index.textnorm import fold


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Ủy", "uy"),
        ("Bộ Tư pháp", "bo tu phap"),
        ("ĐẢNG ỦY", "dang uy"),
        ("Kết luận " * 10, "ket luan " * 10),  # longer than what is kept
    ],
)
def test_fold_is_the_same_short_or_long(text: str, folded: str) -> None:
    textnorm._fold_short.cache_clear()
    assert fold(text) == textnorm._fold(text) == folded
    assert fold(text) == folded
    kept = len(text) <= textnorm._SHORT
    assert textnorm._fold_short.cache_info().hits == (1 if kept else 0)
