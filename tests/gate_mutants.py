"""Hand-made mutants of the citation gate as `ChatService._finish` applies it (bot/service.py is outside mutmut's
scope) → which ones tests/bot/test_gate.py kills. Each mutant is applied to a copy of the tree, never in place.

    python -m tests.gate_mutants        # `make mutation` runs it after mutmut; exit 1 when a mutant survives
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVICE = "bot/service.py"
TESTS = ["tests/bot/test_gate.py"]
GATE = "problems = gate(answer, citations, self._source_text, answered)"
REFUSAL = "answer, citations, answered = refusal.answer, [], False"

# name → (text in bot/service.py, what the mutant puts in its place)
MUTANTS: dict[str, tuple[str, str]] = {
    "the gate is not called": (GATE, "problems: list[str] = []"),
    "the gate is told nothing is answered": (GATE, GATE.replace("answered)", "False)")),
    "the gate is told everything is answered": (GATE, GATE.replace("answered)", "True)")),
    "the gate's problems are ignored": ("        if problems:\n", "        if False:\n"),
    "a refused answer keeps its text": (REFUSAL, REFUSAL.replace("refusal.answer", "answer")),
    "a refused answer keeps its citations": (REFUSAL, REFUSAL.replace("[]", "citations")),
    "a refused answer still counts as answered": (REFUSAL, REFUSAL.replace("False", "True")),
}


def run(name: str, old: str, new: str) -> bool:
    """True when the tests fail with the mutant (it is killed)."""
    with tempfile.TemporaryDirectory(prefix="gate-mutant-") as tmp:
        for part in ["bot", "index", "api", "prompts", "tests", "pyproject.toml", "data/corpus"]:
            src, dst = ROOT / part, Path(tmp) / part
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(src, dst)
        service = Path(tmp) / SERVICE
        code = service.read_text("utf-8")
        if code.count(old) != 1:
            raise SystemExit(f"{name}: {old!r} is not once in {SERVICE}; update tests/gate_mutants.py")
        service.write_text(code.replace(old, new), "utf-8")
        env = {**os.environ, "PYTHONPATH": tmp}
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", *TESTS]
        done = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
        last = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
        killed = done.returncode == 1  # tests failed; any other code (collection error …) is not a kill
        print(f"{'killed  ' if killed else 'SURVIVED'} {name}: {last}", flush=True)
        return killed


def main() -> int:
    results = [run(name, old, new) for name, (old, new) in MUTANTS.items()]
    print(f"{sum(results)} of {len(results)} gate mutants killed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
