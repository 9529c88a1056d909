"""Recorded questions → what the operator's console shows: questions per day by channel, answer rate,
latency percentiles, the unanswered questions grouped by similarity (what to add next), thumbs-down."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import Any

import numpy as np
from rapidfuzz import fuzz

from bot.analytics import QuestionRecord
from index.textnorm import normalize

SIMILAR = 75  # token-set ratio at which two unanswered questions count as the same need


def per_day(records: list[QuestionRecord], days: int, today: dt.date | None = None) -> list[dict[str, Any]]:
    """One row a day for the last `days` days (oldest first): {"day", "total", channel: count …}."""
    today = today or dt.datetime.now(dt.UTC).date()
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for r in records:
        counts[dt.datetime.fromtimestamp(r.at, dt.UTC).date().isoformat()][r.channel] += 1
    rows = []
    for back in range(days - 1, -1, -1):
        day = (today - dt.timedelta(days=back)).isoformat()
        row: dict[str, Any] = {"day": day, "total": sum(counts[day].values())}
        row.update(counts[day])
        rows.append(row)
    return rows


def unanswered_groups(records: list[QuestionRecord], top: int = 10) -> list[dict[str, Any]]:
    """Unanswered questions clustered greedily by similarity, biggest group first."""
    groups: list[dict[str, Any]] = []
    for r in sorted(records, key=lambda r: r.at, reverse=True):
        if r.answered:
            continue
        key = normalize(r.text).lower()
        for g in groups:
            if fuzz.token_set_ratio(key, g["key"]) >= SIMILAR:
                g["count"] += 1
                if len(g["examples"]) < 3 and r.text not in g["examples"]:
                    g["examples"].append(r.text)
                break
        else:
            groups.append({"key": key, "question": r.text, "count": 1, "examples": [r.text]})
    groups.sort(key=lambda g: -g["count"])
    return [{k: v for k, v in g.items() if k != "key"} for g in groups[:top]]


def summary(records: list[QuestionRecord], days: int = 30) -> dict[str, Any]:
    latencies = np.array([r.latency_ms for r in records], dtype=float)
    percentiles = (
        {f"p{p}": round(float(np.percentile(latencies, p)), 1) for p in (50, 90, 99)}
        if len(latencies)
        else {}
    )
    answered = sum(r.answered for r in records)
    return {
        "questions": len(records),
        "answered": answered,
        "answer_rate": round(answered / len(records), 3) if records else None,
        "latency_ms": percentiles,
        "channels": dict(Counter(r.channel for r in records)),
        "per_day": per_day(records, days),
        "unanswered": unanswered_groups(records),
        "thumbs_down": [
            {"text": r.text, "comment": r.comment, "answer": r.answer, "at": r.public()["at"]}
            for r in records
            if r.feedback == "down"
        ][:50],
    }
