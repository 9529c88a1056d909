"""Passages of the Kết luận → the tasks they assign (who leads, who co-ordinates, what, by when) and the documents
they mention; one stage of the build.

The rules read the style of Party directives, not any one text: an issuer's verb before the agencies it assigns
("Giao X …", "Yêu cầu X …", "Chỉ đạo X …"), an agency as the subject of a clause ("X khẩn trương …", "X được
giao …", "X chủ trì, phối hợp với Y …"), a clause without an agency that belongs to its enclosing head (a mục's
first sentence, an item list's lead-in), a deadline after a cue, and statements that assign nothing (ghi nhận,
biểu dương, phê bình, thống nhất với Báo cáo). The word lists are in language/data/directive_words.tsv.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from index.language import agencies as agency_names
from index.language.agencies import Mention, aligned_fold
from index.language.dates import Deadline, find_deadlines
from index.language.references import find_references
from index.models import Directive, Passage, Reference, Source
from index.textnorm import fold

WORDS = Path(__file__).with_name("language") / "data" / "directive_words.tsv"
VERSION = 2  # bump when the rules change: cached extractions of unchanged passages are then redone
CACHE_FILE = "extraction.jsonl"
TASK_KINDS = ("paragraph", "item")


@cache
def _words() -> dict[str, tuple[str, ...]]:
    table: dict[str, list[str]] = defaultdict(list)
    for line in WORDS.read_text("utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            kind, phrase = line.split("\t", 1)
            table[kind.strip()].append(fold(phrase.strip()))
    return {k: tuple(sorted(v, key=len, reverse=True)) for k, v in table.items()}


def _alternation(kind: str) -> str:
    return "|".join(re.escape(w).replace(r"\ ", r"\s+").replace(",", r"\s*,") for w in _words()[kind])


@cache
def _patterns() -> dict[str, re.Pattern[str]]:
    return {
        "verb": re.compile(r"(?:" + _alternation("verb") + r")(?!\w)"),
        "passive": re.compile(r"\s*(?:" + _alternation("passive") + r")(?!\w)"),
        "predicate": re.compile(r"\s*(?:cung\s+)?(?:" + _alternation("predicate") + r")(?!\w)"),
        "not_task": re.compile(r"(?<!\w)(?:" + _alternation("not_task") + r")(?!\w)"),
        "opener": re.compile(r"(?:" + _alternation("opener") + r")\s*,\s*"),
    }


# list markers that open a clause: "1. ", "(1) ", "(ii) ", "a) ", "- "
_MARKER = re.compile(r"(?:\(\s*(?:\d{1,2}|[ivx]{1,5})\s*\)|\d{1,2}\.(?=\s)|[a-zđ]\)|[-–•+])\s*")
_BREAK = re.compile(r"(?<=[.!?…])\s+|(?<=;)\s+(?=\d{1,2}\.\s)|\s+(?=\(\d{1,2}\)\s)")


def _sentence_breaks(text: str) -> list[tuple[int, int]]:
    """(start, end) of the whitespace between sentences: after . ! ? … when the next word is capitalised, and
    before an inline list marker ("; 3. ", " (2) ")."""
    out: list[tuple[int, int]] = []
    for m in _BREAK.finditer(text):
        nxt = text[m.end() : m.end() + 2].lstrip('("“')
        if (
            m.group(0).strip() == ""
            and text[m.start() - 1 : m.start()] in ".!?…"
            and not (nxt[:1].isupper() or nxt[:1].isdigit())
        ):
            continue
        if m.start() < 3 and text[: m.start()].rstrip(".").isdigit():
            continue  # "3.  Giao …": a list marker, not a sentence
        out.append(m.span())
    return out


_PARTNER = re.compile(r"\s*,?\s*(?:(?:tiep tuc|co trach nhiem|khan truong)\s+)*(?:chu tri\s*,\s*)?phoi hop"
                      r"(?:\s+chat che)?(?:\s+(?:voi|cung))?\s+")  # fmt: skip
_LEAD_PARTNER = re.compile(r"(?:chu tri\s*,\s*)?phoi hop(?:\s+chat che)?(?:\s+(?:voi|cung))?\s+")


@dataclass
class Task:
    """One task of one passage, offsets relative to the passage text."""

    agencies: list[str]
    partners: list[str]
    start: int
    end: int
    verb: str | None
    implicit: bool
    deadline: str | None = None
    precision: str | None = None
    deadline_text: str | None = None
    recurring: str | None = None


@dataclass
class Head:
    """What a clause without an agency inherits: the agencies of the enclosing head, and its deadline."""

    agencies: list[str] = field(default_factory=list)
    partners: list[str] = field(default_factory=list)
    deadline: Deadline | None = None
    verb: str | None = None  # the directive verb of the head


def _run(text: str, folded: str, mentions: list[Mention], at: int) -> tuple[list[str], int]:
    """The agencies named one after another from `at` ("Bộ Y tế, Bộ Giáo dục và Đào tạo và Bộ Nội vụ"),
    canonical, and where the run ends; ([], at) when no agency starts at `at`."""
    names: list[str] = []
    end = at
    for mention in mentions:
        if mention.start < end:
            continue
        gap = fold(text[end : mention.start]).strip(" ,")
        if gap not in ("", "va", "cung", "cung voi", "va cac", "cac") and not (not names and gap == ""):
            break
        if not names and text[end : mention.start].strip(" "):
            break
        if not mention.agency.issuer and mention.agency.name not in names:
            names.append(mention.agency.name)
        end = mention.end
    return names, end


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\n:,":
        at += 1
    return at


def _clause_starts(text: str) -> list[tuple[int, str]]:
    """Where clauses may start, and after what: "sentence" (the start, a sentence end, a list marker),
    "semi" (a semicolon or colon) or "comma"."""
    starts: dict[int, str] = {0: "sentence"}
    for _, end in _sentence_breaks(text):
        starts[end] = "sentence"
    for match in re.finditer(r"([;:,])\s+", text):
        starts.setdefault(match.end(), "comma" if match.group(1) == "," else "semi")
    out: dict[int, str] = {}
    for s, kind in starts.items():
        while (m := _MARKER.match(text, s)) and m.end() > s:
            s, kind = m.end(), "sentence"
        out[s] = kind if out.get(s) != "sentence" else "sentence"
    return sorted(out.items())


def _open(folded: str, at: int) -> int:
    """Past any clause opener ("Theo đó, ", "Đồng thời, ")."""
    if m := _patterns()["opener"].match(folded, at):
        return m.end()
    return at


def _opener_verb(folded: str, at: int) -> str | None:
    """ "Theo yêu cầu, X …" is a request: the opener carries the verb."""
    return "yêu cầu" if re.match(r"theo\s+yeu\s+cau\b", folded[at:]) else None


# between a subject and its predicate: ", nhất là người đứng đầu," or "(…)"
_APPOSITION = re.compile(r"\s*(?:,\s*nhat la[^,;:]{0,60},|\([^()]{0,80}\))")
_MODAL = re.compile(
    r"\s*(?:cung\s+)?(?:phai|can|co trach nhiem|chiu trach nhiem|duoc giao|khan truong|chu tri|tiep tuc)(?!\w)"
)


# "Đối với những nội dung chưa thể giải quyết ngay, phải có …": an obligation opened by its circumstance
_CIRCUMSTANCE = re.compile(r"(?:doi voi|truong hop|neu)\s[^.;:]{3,160}?,\s*(?:thi\s+)?(?:phai|can)(?!\w)")


def _predicate_after(folded: str, at: int, strong: bool) -> bool:
    if m := _APPOSITION.match(folded, at):
        at = m.end()
    pattern = _MODAL if strong else _patterns()["predicate"]
    return bool(pattern.match(folded, at)) or (not strong and folded[at : at + 1] == ":")


def _anchors(text: str, folded: str, mentions: list[Mention]) -> list[tuple[int, int, list[str], str | None]]:
    """(clause start, action start, agencies, verb) of every clause that assigns: issuer's verb + agencies,
    agencies + passive or predicate. Agencies may be empty (a sentence starting with a predicate)."""
    pats = _patterns()
    found: list[tuple[int, int, list[str], str | None]] = []
    covered = 0
    for start, after in _clause_starts(text):
        if start < covered:
            continue
        at = _open(folded, start)
        # the issuer as subject: "Bộ Chính trị, Ban Bí thư yêu cầu …"
        issuer_end = at
        for mention in mentions:
            if mention.start < issuer_end:
                continue
            if not mention.agency.issuer or text[issuer_end : mention.start].strip(" ,"):
                break
            issuer_end = mention.end
        by_issuer = issuer_end > at
        if by_issuer:
            at = _skip_space(text, issuer_end)
            at = _open(folded, at)
            while m := re.match(r"(?:tiep tuc|nghiem tuc|cung|da)\s+", folded[at:]):
                at += m.end()
        verb = pats["verb"].match(folded, at) if after != "comma" or by_issuer else None
        if verb:
            names, end = _run(text, folded, mentions, _skip_space(text, verb.end()))
            written = _verb_of(verb.group(0))
            if names:
                partners = _partners(text, folded, mentions, end)
                found.append((start, end, names, written))
                covered = _partners_end(text, folded, mentions, end) if partners else end
                continue
            if after == "sentence" or by_issuer:
                found.append((start, verb.end(), [], written))
                continue
        if by_issuer:
            continue  # the issuer's own statement ("… sẽ họp", "… ghi nhận"): not a task
        names, end = _run(text, folded, mentions, at)
        if names:
            strong = after == "comma"
            if strong and not folded.startswith("cac", at):
                continue
            if passive := pats["passive"].match(folded, end):
                found.append((start, passive.end(), names, "giao"))
                covered = passive.end()
            elif _predicate_after(folded, end, strong):
                found.append((start, end, names, _opener_verb(folded, start)))
                covered = _partners_end(text, folded, mentions, end)
            continue
        if after == "sentence" and (
            (pats["predicate"].match(folded, at) and not pats["not_task"].match(folded, at))
            or _CIRCUMSTANCE.match(folded, at)
        ):
            found.append((start, at, [], None))
    return found


@cache
def _verb_forms() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in WORDS.read_text("utf-8").splitlines():
        if line.startswith("verb\t"):
            phrase = line.split("\t", 1)[1].strip()
            out[" ".join(fold(phrase).replace(",", " ").split())] = phrase.split(",")[-1].strip()
    return out


def _verb_of(matched: str) -> str:
    return _verb_forms().get(" ".join(matched.replace(",", " ").split()), matched)


def _partners_end(text: str, folded: str, mentions: list[Mention], at: int) -> int:
    if m := _PARTNER.match(folded, at):
        return _run(text, folded, mentions, m.end())[1]
    return at


def _partners(text: str, folded: str, mentions: list[Mention], at: int) -> list[str]:
    """Agencies that co-ordinate: "… chủ trì, phối hợp với Y", "… phối hợp Y" right after `at`."""
    if m := _PARTNER.match(folded, at):
        return _run(text, folded, mentions, m.end())[0]
    return []


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start] in " \t\n,:;":
        start += 1
    while end > start and text[end - 1] in " \t\n,;:.":
        end -= 1
    return start, end


def _head(context: str, issued: dt.date | None) -> Head:
    """The agencies and deadline an item or a later paragraph inherits from its context: the last assignment
    in the context (the innermost head), and a deadline of its lead-in."""
    if not context:
        return Head()
    last = context.split(" … ")[-1]
    text = context
    folded, _ = aligned_fold(text)
    mentions = agency_names.find(text)
    found = _anchors(text, folded, mentions)
    anchors = [a for a in found if a[2]]
    head = Head(verb=next((a[3] for a in reversed(found) if a[3]), None))
    if anchors:
        _, action, names, _ = anchors[-1]
        head.agencies = names
        head.partners = [p for p in _partners(text, folded, mentions, action) if p not in names]
    if last.rstrip().endswith(":"):
        deadlines = find_deadlines(last, issued)
        head.deadline = deadlines[-1] if deadlines else None
    return head


_DIRECTS = re.compile(r"\s*(?:cung\s+)?(?:can\s+|phai\s+)?(?:lanh dao\s*,\s*)?chi dao\s+")
_ROLE_WORDS = re.compile(r"\s*(?:cung\s+)?(?:can|phai|co trach nhiem|chiu trach nhiem)\s+")
_CHU_TRI = re.compile(r"\s*(?:tiep tuc\s+)?chu tri\s*,\s*phoi hop(?:\s+chat che)?(?:\s+(?:voi|cung))?\s+")


def _collective(name: str) -> bool:
    """A group rather than one body: "Các bộ, ngành", "Ủy ban kiểm tra các cấp"."""
    return name.startswith("Các ") or " các cấp" in name


def _past_role_words(text: str, folded: str, mentions: list[Mention], at: int) -> int:
    """The action starts after modal and role words ("phải", "cần", "có trách nhiệm") and after "chủ trì,
    phối hợp với Y" when that only names the partners of the action that follows."""
    if m := _ROLE_WORDS.match(folded, at):
        at = m.end()
    if m := _CHU_TRI.match(folded, at):
        _, end = _run(text, folded, mentions, m.end())
        if end > m.end() and _patterns()["predicate"].match(folded, end):
            at = end
    return at


def _units(text: str, folded: str, start: int, end: int) -> list[tuple[int, int]]:
    """The clause cut at semicolons; a piece that does not open with a predicate ("về việc …", "sau thời điểm
    này …") stays with the piece before it."""
    pieces: list[tuple[int, int]] = []
    at = start
    for m in re.finditer(r";\s*", text[start:end]):
        pieces.append((at, start + m.start()))
        at = start + m.end()
    pieces.append((at, end))
    units: list[tuple[int, int]] = []
    for p_start, p_end in pieces:
        if units and not _patterns()["predicate"].match(folded, p_start):
            units[-1] = (units[-1][0], p_end)
        else:
            units.append((p_start, p_end))
    return units


def _deadline_groups(
    text: str, folded: str, start: int, end: int, issued: dt.date | None
) -> list[tuple[int, int]]:
    """One action, or several when its semicolon-separated parts have different deadlines: a part with its
    own deadline is a task, the parts around it without one are another. A deadline in brackets that closes
    the whole clause ("… (hoàn thành trước ngày 31/8/2025)") applies to all of it."""
    units = _units(text, folded, start, end)
    if len(units) < 2:
        return [(start, end)]
    found = [find_deadlines(text[u_start:u_end], issued) for u_start, u_end in units]
    dated = [bool(f) for f in found]
    if not any(dated):
        return [(start, end)]
    if dated[-1] and not any(dated[:-1]):
        last_start = units[-1][0]
        lead = found[-1][0].lead if found[-1][0].lead >= 0 else found[-1][0].start
        before = fold(text[last_start : last_start + lead]).rstrip()
        if text[end - 1 : end] == ")" or re.search(r",\s*(?:bao dam|dam bao|nham)(?:\s+\w+){0,3}$", before):
            return [(start, end)]  # "… (hoàn thành …)" or ", bảo đảm mục tiêu trong năm …" closes the whole
    groups: list[tuple[int, int]] = []
    run: tuple[int, int] | None = None
    for (u_start, u_end), has in zip(units, dated, strict=True):
        if has:
            if run:
                groups.append(run)
                run = None
            groups.append((u_start, u_end))
        else:
            run = (run[0], u_end) if run else (u_start, u_end)
    if run:
        groups.append(run)
    return [_trim(text, g_start, g_end) for g_start, g_end in groups]


def _without_deadline(text: str, start: int, end: int, d_start: int, d_end: int) -> tuple[int, int]:
    """The action without a deadline phrase that closes it ("…, hoàn thành trước ngày 31/8/2025",
    "… (hoàn thành trước ngày 31/8/2025)")."""
    tail = text[d_end:end].strip(" .;,)")
    if tail or d_start <= start:
        return start, end
    cut = d_start
    while cut > start and text[cut - 1] in " ,(":
        cut -= 1
    for word in ("bảo đảm", "đảm bảo"):
        if text[start:cut].rstrip().endswith(word) and text[start:cut].rstrip()[: -len(word)].endswith("("):
            cut = text.rindex("(", start, cut)
    while cut > start and text[cut - 1] in " ,(":
        cut -= 1
    return (start, cut) if cut - start >= 8 else (start, end)


def _is_not_task(folded_clause: str) -> bool:
    head = folded_clause[:80]
    return bool(_patterns()["not_task"].search(head))


def extract_passage(passage: Passage, carry: Head) -> tuple[list[Task], Head]:
    """The tasks of one passage, and what the next passage of a text without headings inherits."""
    text = passage.text
    if passage.kind not in TASK_KINDS or not passage.ket_luan:
        return [], carry
    folded, _ = aligned_fold(text)
    mentions = agency_names.find(text)
    head = _head(passage.context, passage.issued)
    inherited = head if head.agencies else carry
    anchors = _anchors(text, folded, mentions)
    if not anchors and passage.kind == "item" and inherited.agencies:
        body = _MARKER.match(text)
        anchors = [(0, body.end() if body else 0, [], None)]  # an item of a lead-in's list is its head's task
    current = inherited
    tasks: list[Task] = []
    sentence_ends = sorted({start for start, _ in _sentence_breaks(text)} | {len(text)})
    for n, (start, action, names, verb) in enumerate(anchors):
        stop = anchors[n + 1][0] if n + 1 < len(anchors) else len(text)
        stop = min([stop, *[e for e in sentence_ends if e > action]])
        clause = folded[start:stop]
        if _is_not_task(clause[: max(0, action - start) + 40]):
            continue
        implicit = not names
        partners = _partners(text, folded, mentions, action)
        if names and (directs := _DIRECTS.match(folded, action)):
            # "X [cần] chỉ đạo Y [chủ trì] …": a named Y heads the task; a collective Y is X's to direct
            named, end = _run(text, folded, mentions, directs.end())
            if named and not any(_collective(a) for a in named):
                names, verb, action = named, "chỉ đạo", end
                partners = _partners(text, folded, mentions, end)
            elif named:  # "X chỉ đạo các bộ, ngành phối hợp với Z …": Z co-ordinates on X's task
                partners = partners or _partners(text, folded, mentions, end)
        if names and verb == "chỉ đạo" and all(_collective(a) for a in names) and current.agencies:
            names, implicit = list(current.agencies), True  # "Chỉ đạo các cơ quan …": the head directs them
        if implicit:
            names = list(current.agencies)
            # the verb of the sentence the agency is taken from, unless the clause has its own ("lưu ý");
            # "Chỉ đạo …" opening a clause without an agency is part of the action
            verb = verb if verb and verb != "chỉ đạo" else current.verb
            if lead := _LEAD_PARTNER.match(folded, action):
                partners = _run(text, folded, mentions, lead.end())[0]
            elif not partners and head.agencies:
                partners = list(head.partners)
        elif verb is None:  # a named agency without a verb of its own: the paragraph's, else its head's
            verb = next((t.verb for t in tasks if t.verb), None) or head.verb
        action = _past_role_words(text, folded, mentions, action)
        a_start, a_end = _trim(text, action, stop)
        if a_end - a_start < 8:
            continue
        if not implicit:
            current = Head(list(names), [p for p in partners if p not in names], verb=verb)
        fallback = head.deadline if implicit or not names else None
        for g_start, g_end in _deadline_groups(text, folded, a_start, a_end, passage.issued):
            task = Task(names, [p for p in partners if p not in names], g_start, g_end, verb, implicit)
            deadlines = find_deadlines(text[g_start:g_end], passage.issued)
            if not deadlines and g_end == a_end:  # a deadline just after the action ("…, hoàn thành trong …")
                deadlines = find_deadlines(text[g_start:stop], passage.issued)
            chosen = deadlines[0] if deadlines else fallback
            if chosen is not None:
                task.deadline = chosen.date.isoformat() if chosen.date else None
                task.precision = chosen.precision
                task.deadline_text = chosen.text
                task.recurring = chosen.recurring
                if deadlines:
                    begin = chosen.lead if chosen.lead >= 0 else chosen.start
                    task.start, task.end = _without_deadline(text, g_start, g_end, g_start + begin,
                                                             g_start + chosen.end)  # fmt: skip
            if task.end - task.start >= 8:
                tasks.append(task)
    if tasks and tasks[-1].agencies:
        carry = Head(tasks[-1].agencies, tasks[-1].partners, verb=tasks[-1].verb)
    if text.rstrip().endswith(":") and tasks:
        return [], Head(
            tasks[-1].agencies, tasks[-1].partners, verb=tasks[-1].verb
        )  # a lead-in: items are tasks
    return tasks, carry


# --- the build stage -------------------------------------------------------------------------------------------
def _key(passage: Passage, carry: Head) -> str:
    state = json.dumps([VERSION, passage.kind, passage.ket_luan, str(passage.issued), passage.context,
                        carry.agencies, carry.partners, carry.verb, passage.text], ensure_ascii=False)  # fmt: skip
    return hashlib.sha1(state.encode("utf-8")).hexdigest()


def _task_row(task: Task) -> dict[str, Any]:
    return task.__dict__.copy()


def load_cache(build: Path | None) -> dict[str, dict[str, Any]]:
    """The per-passage extractions a previous build stored, by key; {} when there are none."""
    if build is None or not (build / CACHE_FILE).exists():
        return {}
    out: dict[str, dict[str, Any]] = {}
    try:
        for line in (build / CACHE_FILE).read_text("utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                out[row["key"]] = row
    except (OSError, ValueError, KeyError):
        return {}
    return out


@dataclass
class Extraction:
    directives: list[Directive]
    references: list[Reference]
    cache_rows: list[dict[str, Any]]
    reused: int


def extract(passages: list[Passage], sources: dict[str, str], cache: dict[str, dict[str, Any]]) -> Extraction:
    """Tasks and references of every Kết luận passage; unchanged passages reuse `cache`."""
    by_doc: dict[str, list[Passage]] = defaultdict(list)
    for p in passages:
        if p.ket_luan:
            by_doc[p.document_id].append(p)
    per_passage: dict[str, list[Task]] = {}
    rows: list[dict[str, Any]] = []
    reused = 0
    for doc_passages in by_doc.values():
        carry = Head()
        for p in sorted(doc_passages, key=lambda q: q.source.start):
            key = _key(p, carry)
            if key in cache:
                row = cache[key]
                tasks = [Task(**t) for t in row["tasks"]]
                carry = Head(row["carry"][0], row["carry"][1], verb=row["carry"][2])
                reused += 1
            else:
                tasks, carry = extract_passage(p, carry)
            per_passage[p.passage_id] = tasks
            rows.append(
                {
                    "key": key,
                    "tasks": [_task_row(t) for t in tasks],
                    "carry": [carry.agencies, carry.partners, carry.verb],
                }
            )
        _share_list_deadline(sorted(doc_passages, key=lambda q: q.source.start), per_passage)
    directives = _directives(passages, sources, per_passage)
    return Extraction(_merge_reports(directives, passages), _references(passages), rows, reused)


_ITEM_ID = re.compile(r"^(.*)\.([^.]+)$")


def _share_list_deadline(passages: list[Passage], per_passage: dict[str, list[Task]]) -> None:
    """A deadline written once after the last item of a list ("(iii) … (hoàn thành trước ngày 31/8/2025).")
    applies to every item of the list that has none."""
    groups: dict[str, list[Passage]] = defaultdict(list)
    for p in passages:
        if p.kind == "item" and (m := _ITEM_ID.match(p.passage_id)):
            groups[m.group(1)].append(p)
    for items in groups.values():
        if len(items) < 2:
            continue
        last = per_passage.get(items[-1].passage_id) or []
        if not last or last[-1].deadline_text is None:
            continue
        tail = items[-1].text.rstrip(" .;")
        if not tail.endswith(")") or last[-1].deadline_text not in tail[-len(last[-1].deadline_text) - 3 :]:
            continue
        for item in items[:-1]:
            for task in per_passage.get(item.passage_id) or []:
                if task.deadline_text is None and task.recurring is None:
                    task.deadline, task.precision = last[-1].deadline, last[-1].precision
                    task.deadline_text, task.recurring = last[-1].deadline_text, last[-1].recurring


def _directives(
    passages: list[Passage], sources: dict[str, str], per_passage: dict[str, list[Task]]
) -> list[Directive]:
    out: list[Directive] = []
    for p in passages:
        for n, task in enumerate(per_passage.get(p.passage_id) or [], start=1):
            start, end = p.source.start + task.start, p.source.start + task.end
            action = p.text[task.start : task.end]
            source_text = sources.get(p.source.file, "")
            if source_text[start:end] != action:  # the passage text is not at its offsets: find it nearby
                found = source_text.find(action, max(0, p.source.start - 200))
                if found < 0:
                    continue
                start, end = found, found + len(action)
            out.append(Directive(
                directive_id=f"{p.passage_id}.t{n}", ket_luan=p.ket_luan or "", document_id=p.document_id,
                issued=p.issued, agencies=task.agencies, partners=task.partners, action=action,
                source=Source(file=p.source.file, start=start, end=end),
                deadline=dt.date.fromisoformat(task.deadline) if task.deadline else None,
                deadline_precision=task.precision if task.deadline or task.recurring else None,  # type: ignore[arg-type]
                deadline_text=task.deadline_text, recurring=task.recurring, passage_id=p.passage_id,
                label=p.label, url=p.url, verb=task.verb, implicit_agency=task.implicit,
            ))  # fmt: skip
    return out


_FILLER = {"va", "cac", "cua", "the", "de", "trong", "nhung", "voi", "ve", "viec", "cho", "tai", "theo", "tiep",
           "tuc", "khan", "truong"}  # fmt: skip


def _bigrams(text: str, first: int | None = None) -> set[tuple[str, str]]:
    words = re.findall(r"\w+", fold(text))[:first]
    return {(a, b) for a, b in itertools.pairwise(words) if not (a in _FILLER and b in _FILLER)}


def _same_task(a: str, b: str, only_candidate: bool) -> float:
    """How alike two tellings of a task are: shared word pairs over the shorter, plus their opening words;
    0 when too unlike to be one task (the only candidate of the same agency needs less)."""
    x, y = _bigrams(a), _bigrams(b)
    overlap = len(x & y) / max(1, min(len(x), len(y)))
    lead = len(_bigrams(a, 10) & _bigrams(b, 10))
    score = overlap + 0.1 * lead
    return score if score >= 0.25 or (only_candidate and (lead or overlap >= 0.1)) else 0.0


def _merge_reports(directives: list[Directive], passages: list[Passage]) -> list[Directive]:
    """The same task told by two texts of one Kết luận (two press reports) is one directive: the official text's
    (else the first file's) is kept with the agencies of both and the deadline either gives; the other's passage
    and span go to `also_in` / `also_sources`. Two tellings are the same task when they give it to the same lead
    agency and say alike what it is; each directive takes at most one telling from each other text."""
    official = {p.document_id for p in passages if "bản tin" not in p.label}
    files = sorted({d.source.file for d in directives})
    first_file: dict[str, str] = {}
    for d in sorted(directives, key=lambda d: (d.document_id not in official, files.index(d.source.file))):
        first_file.setdefault(d.ket_luan, d.document_id)
    kept = [d for d in directives if first_file[d.ket_luan] == d.document_id]
    taken: set[tuple[int, str]] = set()
    out_of_others: list[Directive] = []
    for d in directives:
        if first_file[d.ket_luan] == d.document_id:
            continue
        candidates = [
            j for j, k in enumerate(kept)
            if k.ket_luan == d.ket_luan and d.agencies and k.agencies and k.agencies[0] in d.agencies
            and (j, d.document_id) not in taken and not (k.deadline and d.deadline and k.deadline != d.deadline)
        ]  # fmt: skip
        scored = [(_same_task(kept[j].action, d.action, len(candidates) == 1), j) for j in candidates]
        score, best = max(scored, default=(0.0, -1))
        if score <= 0:
            out_of_others.append(d)
            continue
        k = kept[best]
        taken.add((best, d.document_id))
        kept[best] = k.model_copy(update={
            "agencies": list(dict.fromkeys([*k.agencies, *d.agencies])),
            "partners": list(dict.fromkeys([*k.partners, *d.partners])),
            "also_in": [*k.also_in, d.passage_id], "also_sources": [*k.also_sources, d.source],
            "deadline": k.deadline or d.deadline, "deadline_precision": k.deadline_precision or d.deadline_precision,
            "deadline_text": k.deadline_text or d.deadline_text, "recurring": k.recurring or d.recurring,
        })  # fmt: skip
    position = {d.directive_id: n for n, d in enumerate(directives)}
    return sorted([*kept, *out_of_others], key=lambda d: position[d.directive_id])


def _references(passages: list[Passage]) -> list[Reference]:
    """Every document the Kết luận mention, once per (kind, number), with the passages that mention it."""
    found: dict[tuple[str, str], Reference] = {}
    for p in passages:
        if not p.ket_luan:
            continue
        for r in find_references(p.text, p.issued.year if p.issued else None):
            if r.kind == "Kết luận" and r.number == p.ket_luan:
                continue
            key = (r.kind, r.number)
            old = found.get(key)
            if old is None:
                found[key] = Reference(kind=r.kind, number=r.number, issued=r.issued, issuer=r.issuer,
                                       mentioned_in=[p.passage_id], mention=r.text, title=r.title)  # fmt: skip
            else:
                found[key] = old.model_copy(update={
                    "mentioned_in": list(dict.fromkeys([*old.mentioned_in, p.passage_id])),
                    "issued": old.issued or r.issued, "issuer": old.issuer or r.issuer, "title": old.title or r.title,
                })  # fmt: skip
    return list(found.values())
