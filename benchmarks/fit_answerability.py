"""Fit the answerability model on the development questions only, print its trade-off, write the coefficients.

    python benchmarks/fit_answerability.py [--data-dir DIR] [--write]

For every dev question whose answer comes from retrieved sentences (the answerability model decides: facts,
lists, deadlines without an extracted task), the answer is composed as if accepted and judged: right when every expected fact is in it
(whole words; dates as dates); out-of-scope questions are never right. A logistic regression (scikit-learn)
on the Evidence features gives the probability of being right; the threshold minimises 5 × wrong answers + false
refusals on held-out folds of dev (a wrong answer costs five refusals). The curve (threshold → wrong answers, false refusals) is
printed; --write stores bot/answerability.json. The test split is never read here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.answerability import FEATURES, MODEL_FILE, Answerability  # noqa: E402
from bot.extractive import ExtractiveAnswerer  # noqa: E402
from bot.followup import resolve  # noqa: E402
from bot.models import Turn  # noqa: E402
from bot.question import Question  # noqa: E402
from index.evaluation import fact_present  # noqa: E402
from index.search import open_index  # noqa: E402
from index.settings import IndexSettings  # noqa: E402

DEV_FILES = (
    "questions.jsonl",
    "questions.dev.jsonl",
    "questions.dev2.jsonl",
    "questions.dev3.jsonl",
    "questions.dev4.jsonl",
    "questions.dev5.jsonl",
    "questions.dev6.jsonl",
)
WRONG_COST = 5


def has_fact(answer: str, fact: str | list[str]) -> bool:
    """The eval's own judgement (whole words; dates as dates), so tuning and reporting agree."""
    return fact_present(answer, fact)


def questions(data: Path) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for name in DEV_FILES:
        path = data / "eval" / name
        if path.exists():
            out += [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    return out


def read(answerer: ExtractiveAnswerer, item: dict[str, object]) -> Question:
    """The question as the service reads it after its history, each earlier turn answered (as the eval does)."""
    as_of = dt.date.fromisoformat(str(item["as_of"])) if item.get("as_of") else None
    history: list[Turn] = []
    for i, earlier in enumerate(item.get("history") or []):  # type: ignore[union-attr]
        draft = answerer.answer(
            resolve(str(earlier), history, lambda m: answerer.analyze(m, as_of)), None, as_of
        )
        history.append(Turn(message_id=str(i), question=str(earlier), answer=draft.answer, answered=draft.answered,
                            passage_ids=[p.passage_id for p in draft.sources]))  # fmt: skip
    return resolve(str(item["question"]), history, lambda m: answerer.analyze(m, as_of))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    from sklearn.linear_model import LogisticRegression

    settings = IndexSettings(data_dir=args.data_dir) if args.data_dir else IndexSettings()
    answerer = ExtractiveAnswerer(open_index(settings))
    accept_all = Answerability(answerer.model.weights, -1e9, 0.0)
    rows, labels = [], []
    for item in questions(ROOT / "data"):
        question = read(answerer, item)
        feats = answerer.features(question)
        saved, answerer.model = answerer.model, accept_all  # compose the answer as if accepted
        try:
            draft = answerer.answer(question)
        finally:
            answerer.model = saved
        if not draft.gated:
            continue  # answered (or refused) before the model had a say: task data, metadata, unknown numbers
        expect = item.get("expect") or []
        right = (
            bool(item.get("answerable", True))
            and draft.answered
            and all(
                has_fact(draft.answer, f)
                for f in expect  # type: ignore[union-attr, arg-type]
            )
        )
        rows.append([feats[f] for f in FEATURES])
        labels.append(1 if right else 0)
    x, y = np.array(rows), np.array(labels)
    print(
        f"dev decisions: {len(y)} ({int(y.sum())} right when answered, {int((1 - y).sum())} wrong/out of scope)"
    )
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # the curve from held-out folds (5-fold), so the threshold is not chosen on answers the model has seen
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=7)
    p = cross_val_predict(pipeline, x, y, cv=folds, method="predict_proba")[:, 1]
    print("threshold  answered  wrong  wrong%  false_refusals   (held-out folds)")
    best_cost, chosen = None, 0.9
    for t in np.arange(0.05, 0.96, 0.05):
        answered = p >= t
        wrong = int((answered & (y == 0)).sum())
        refused_right = int((~answered & (y == 1)).sum())
        share = wrong / max(int(answered.sum()), 1)
        print(f"  {t:.2f}     {int(answered.sum()):4d}    {wrong:3d}   {share:6.1%}   {refused_right:3d}")
        cost = WRONG_COST * wrong + refused_right  # a wrong answer costs five refusals
        if best_cost is None or cost < best_cost:
            best_cost, chosen = cost, float(t)
    # the coefficients from all dev decisions, for the raw (unscaled) features
    mean, std = x.mean(axis=0), np.where(x.std(axis=0) > 1e-9, x.std(axis=0), 1.0)
    model = LogisticRegression(C=1.0, max_iter=2000).fit((x - mean) / std, y)
    coef = model.coef_[0] / std
    bias = float(model.intercept_[0] - (model.coef_[0] * mean / std).sum())
    weights = {f: round(float(w), 4) for f, w in zip(FEATURES, coef, strict=True)}
    out = {"fitted_on": f"dev: {', '.join(DEV_FILES)} ({len(y)} decisions)", "weights": weights,
           "bias": round(bias, 4), "threshold": round(chosen, 2)}  # fmt: skip
    print(json.dumps(out, ensure_ascii=False, indent=1))
    if args.write:
        MODEL_FILE.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", "utf-8")
        print(f"written {MODEL_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
