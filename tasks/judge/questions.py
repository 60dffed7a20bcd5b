"""The judge's questions: from each prompt, a deterministic decomposition into aspects and yes/no questions, plus
prompt-independent quality questions; or the user's own question file (JSON lines), DPG-Bench's CSV or GenEval's
metadata imported as they are.

The decomposition (`decompose`, rules version `DECOMPOSITION_VERSION`) is a small English rule set, no tagger:
quoted text -> a text-rendering question; the prompt's framing ("a photo of") dropped; clauses split at commas and
"and"/"with"/"while"; a spatial relation ("X to the left of Y", "X above Y", "X next to Y") -> one spatial question;
in each noun phrase a number (word or digits) -> a count question, a colour / material / texture / size / shape word ->
an attribute question, a following "-ing" verb -> an action question, the rest -> the entity ("Is there a dog?").
It is golden-tested on fixed prompts (`tests/test_judge.py`); where a prompt needs precise questions, pass a
question file. The whole question set is stored with every result and its hash is part of the protocol.

>>> [(q.aspect, q.text) for q in decompose("a photo of two red apples to the left of a wooden bowl")]
... # doctest: +NORMALIZE_WHITESPACE
[('entity', 'Are there apples?'), ('count', 'Are there exactly two apples?'), ('attribute', 'Are the apples red?'),
 ('entity', 'Is there a bowl?'), ('attribute', 'Is the bowl wooden?'),
 ('spatial', 'Are the apples to the left of the bowl?')]
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from evalsuite.errors import InputError
from evalsuite.hashing import sha256_json

DECOMPOSITION_VERSION = "1"

#: every aspect a question may belong to (a question file may use only these: they are the result's columns)
PROMPT_ASPECTS = ("global", "entity", "attribute", "count", "spatial", "relation", "action", "text", "other")
QUALITY_ASPECTS = ("artifacts", "anatomy", "temporal", "motion")
ASPECTS = PROMPT_ASPECTS + QUALITY_ASPECTS

#: what the judge is asked after each question (a change here is a new protocol: it is part of the question hash)
ANSWER_INSTRUCTION = "Answer yes or no."

_QUALITY = {
    "image": (("artifacts", "Is this image free of visual artifacts such as distortions, smears or noise?"),
              ("anatomy", "Do the people and animals in this image, if any, have correct anatomy, with no extra or "
                          "missing limbs, fingers or faces?")),
    "video": (("artifacts", "Is this video free of visual artifacts such as distortions, smears or noise?"),
              ("anatomy", "Do the people and animals in this video, if any, have correct anatomy, with no extra or "
                          "missing limbs, fingers or faces?"),
              ("temporal", "Do the objects and the scene in this video keep a consistent appearance from frame to "
                           "frame, without flickering or changing identity?"),
              ("motion", "Does the motion in this video look smooth and physically plausible?")),
}


@dataclass(frozen=True)
class Question:
    """One yes/no question about a sample."""

    aspect: str
    text: str


def quality_questions(media: str) -> list[Question]:
    """The prompt-independent questions for an "image" or a "video"."""
    return [Question(aspect, text) for aspect, text in _QUALITY[media]]


# ------------------------------------------------------------------------------------------------ the rule set
_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
            "ten": 10, "eleven": 11, "twelve": 12}
_ARTICLES = {"a", "an", "the", "some", "its", "his", "her", "their"}
_COLOURS = {"red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "gray", "grey",
            "silver", "golden", "gold", "beige", "turquoise", "violet", "cyan", "magenta"}
_OTHER_ATTRIBUTES = {  # material, texture, size, shape, age, state: the adjectives a question can be asked about
    "wooden", "metal", "metallic", "glass", "plastic", "leather", "stone", "paper", "ceramic", "cotton", "woolen",
    "fluffy", "furry", "shiny", "rusty", "smooth", "rough", "striped", "spotted", "checkered", "transparent",
    "big", "small", "large", "tiny", "huge", "tall", "short", "long", "round", "square", "triangular", "rectangular",
    "old", "young", "new", "broken", "wet", "dry", "empty", "full", "open", "closed", "bright", "dark"}
_FRAMING = re.compile(r"^(?:an?\s+)?(?:high[- ]quality\s+|realistic\s+|close-up\s+)?"
                      r"(?:photo(?:graph)?|image|picture|video|painting|drawing|illustration|render|shot|clip)"
                      r"\s+of\s+")
_RELATIONS = ("to the left of", "on the left of", "left of", "to the right of", "on the right of", "right of",
              "on top of", "in front of", "next to", "beside", "behind", "above", "below", "under", "beneath",
              "inside", "near")
_RELATION_RE = re.compile(r"\s+(" + "|".join(re.escape(r) for r in _RELATIONS) + r")\s+")
_CANONICAL_RELATION = {"on the left of": "to the left of", "left of": "to the left of",
                       "on the right of": "to the right of", "right of": "to the right of", "beneath": "below"}
_CLAUSE_SPLIT = re.compile(r"\s*(?:,|;|\band\b|\bwith\b|\bwhile\b)\s*")
_QUOTED = re.compile(r"[\"“”]([^\"“”]+)[\"“”]|'([^']{2,})'")
_PREPOSITIONS = {"on", "in", "at", "over", "through", "across", "along", "into", "from", "by", "of", "for",
                 "around", "towards", "toward", "during", "under", "near"}
_RELATIVE = {"that", "which", "who", "whose", "where", "says", "reads", "reading", "saying", "written"}
_NOT_VERBS = {"building", "painting", "clothing", "ceiling", "evening", "morning", "king", "ring", "string", "thing",
              "something", "anything", "nothing", "everything", "wedding", "pudding", "spring", "wing", "swing",
              "sibling", "lightning", "stuffing", "frosting", "icing", "awning", "railing", "dumpling", "duckling"}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9][a-z0-9'-]*", text.lower())


@dataclass
class _Phrase:
    noun: str
    count: int | None
    attributes: list[str]
    action: str | None


def _phrase(words: list[str]) -> tuple[_Phrase | None, list[str]]:
    """The first noun phrase's parts ([article] [number] [attributes] noun words [-ing verb]) and the words left
    after it: it ends at a preposition (dropped), a verb in -ing (its action) or a relative word (the rest dropped)."""
    count: int | None = None
    attributes: list[str] = []
    noun: list[str] = []
    action = None
    rest: list[str] = []
    for i, word in enumerate(words):
        if noun and word in _RELATIVE:
            break
        if noun and word in _PREPOSITIONS:
            rest = words[i + 1:]
            break
        if noun and word.endswith("ing") and len(word) > 4 and word not in _NOT_VERBS:
            action, rest = word, words[i + 1:]
            break
        if not noun and word in _ARTICLES:
            continue
        if not noun and count is None and (word in _NUMBERS or word.isdigit()):
            count = _NUMBERS.get(word) or int(word)
            continue
        if not noun and (word in _COLOURS or word in _OTHER_ATTRIBUTES):
            attributes.append(word)
            continue
        if word not in _PREPOSITIONS:
            noun.append(word)
    return (_Phrase(" ".join(noun), count, attributes, action) if noun else None), rest


def _phrases(words: list[str]) -> list[_Phrase]:
    """Every noun phrase of a clause, in order (an action's object and a prepositional phrase are phrases too)."""
    out = []
    while words:
        phrase, words = _phrase(words)
        if phrase is not None:
            out.append(phrase)
    return out


def _plural(phrase: _Phrase) -> bool:
    return phrase.count is not None and phrase.count != 1


def _questions_about(phrase: _Phrase, medium: str) -> list[Question]:
    noun = phrase.noun
    many = _plural(phrase)
    out = [Question("entity", f"Are there {noun}?" if many else f"Is there {_article(noun)} {noun}?")]
    if many:
        number = next((w for w, n in _NUMBERS.items() if n == phrase.count), str(phrase.count))
        out.append(Question("count", f"Are there exactly {number} {noun}?"))
    be = "Are the" if many else "Is the"
    out += [Question("attribute", f"{be} {noun} {attribute}?") for attribute in phrase.attributes]
    if phrase.action:
        out.append(Question("action", f"{be} {noun} {phrase.action}?"))
    return out


def _article(noun: str) -> str:
    return "an" if noun[:1] in "aeiou" else "a"


def decompose(prompt: str, medium: str = "image") -> list[Question]:
    """The prompt's questions by the rule set above (deterministic; duplicates removed, first kept)."""
    text = prompt.strip()
    questions: list[Question] = []
    for match in _QUOTED.finditer(text):
        quoted = (match.group(1) or match.group(2)).strip()
        questions.append(Question("text", f'Does the {medium} contain the text "{quoted}"?'))
    text = _QUOTED.sub(" ", text).lower().strip().rstrip(".!")
    text = _FRAMING.sub("", text)
    for clause in _CLAUSE_SPLIT.split(text):
        parts = _RELATION_RE.split(f" {clause} ")
        if len(parts) >= 3:  # X rel Y (only the first relation of a clause): the phrases next to the relation
            lefts, relation, rights = _phrases(_words(parts[0])), parts[1], _phrases(_words(" ".join(parts[2:])))
            for phrase in lefts + rights:
                questions += _questions_about(phrase, medium)
            if lefts and rights:
                left, right = lefts[-1], rights[0]
                be = "Are the" if _plural(left) else "Is the"
                relation = _CANONICAL_RELATION.get(relation, relation)
                questions.append(Question("spatial", f"{be} {left.noun} {relation} the {right.noun}?"))
            continue
        for phrase in _phrases(_words(clause)):
            questions += _questions_about(phrase, medium)
    return list(dict.fromkeys(questions))


def prompt_questions(prompt: str, medium: str) -> list[Question]:
    """The automatic questions of one prompt: the whole prompt first (aspect "global"), then `decompose`."""
    return [Question("global", f'Does this {medium} show "{prompt.strip()}"?'), *decompose(prompt, medium)]


# ------------------------------------------------------------------------------------------------ question sets
@dataclass
class QuestionSet:
    """Questions per prompt (`by_prompt`), the quality questions asked of every sample, and where they came from."""

    source: str  # "auto" (the rule set), "file:NAME", "dpg:NAME", "geneval:NAME"
    by_prompt: dict[str, list[Question]]
    quality: list[Question]

    def for_prompt(self, prompt: str | None) -> list[Question] | None:
        """The questions of a sample with this prompt (None: the prompt has none in a loaded file)."""
        if prompt is None:
            return None
        found = self.by_prompt.get(prompt)
        return None if found is None else [*found, *self.quality]

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "decomposition_version": DECOMPOSITION_VERSION,
                "answer_instruction": ANSWER_INSTRUCTION,
                "quality": [asdict(q) for q in self.quality],
                "prompts": [{"prompt": p, "questions": [asdict(q) for q in qs]} for p, qs in self.by_prompt.items()]}

    @property
    def sha256(self) -> str:
        """The hash of the whole set (rules version, instruction, every question): part of the protocol."""
        return sha256_json(self.to_json())


def automatic(prompts: list[str], medium: str, quality: bool = True) -> QuestionSet:
    """The rule set's questions for these prompts."""
    return QuestionSet("auto", {p: prompt_questions(p, medium) for p in dict.fromkeys(prompts)},
                       quality_questions(medium) if quality else [])


def load(spec: str, medium: str, quality: bool = True) -> QuestionSet:
    """A question file: `PATH` (JSON lines of {"prompt", "questions": [{"aspect", "question"}]}, or one JSON list of
    them), `dpg:PATH` (DPG-Bench's folder or CSV) or `geneval:PATH` (GenEval's evaluation_metadata.jsonl)."""
    kind, _, rest = spec.partition(":")
    if kind == "dpg" and rest:
        by_prompt = _from_dpg(Path(rest).expanduser())
    elif kind == "geneval" and rest:
        by_prompt = _from_geneval(Path(rest).expanduser(), medium)
    else:
        kind, rest = "file", spec
        by_prompt = _from_file(Path(spec).expanduser())
    return QuestionSet(f"{kind}:{Path(rest).name}", by_prompt, quality_questions(medium) if quality else [])


_FILE_FIX = ('write one JSON object per line: {"prompt": "...", "questions": [{"aspect": "entity", "question": '
             '"Is there a dog?"}]}, aspects among ' + ", ".join(ASPECTS))


def _from_file(path: Path) -> dict[str, list[Question]]:
    if not path.is_file():
        raise InputError(f"question file {path} does not exist", _FILE_FIX)
    text = path.read_text(encoding="utf-8")
    try:
        records = json.loads(text) if text.lstrip().startswith("[") else \
            [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise InputError(f"question file {path} is not valid JSON ({exc.msg}, line {exc.lineno})", _FILE_FIX) from None
    out: dict[str, list[Question]] = {}
    for i, record in enumerate(records):
        where = f"question file {path}, record {i + 1}"
        if not isinstance(record, dict) or not isinstance(record.get("prompt"), str) \
                or not isinstance(record.get("questions"), list):
            raise InputError(f"{where} is not an object with a 'prompt' string and a 'questions' list", _FILE_FIX)
        questions = []
        for q in record["questions"]:
            if not isinstance(q, dict) or q.get("aspect") not in ASPECTS or not isinstance(q.get("question"), str) \
                    or not q["question"].strip():
                raise InputError(f"{where}: question {q!r:.80} needs an 'aspect' among {', '.join(ASPECTS)} and a "
                                 "'question' string", _FILE_FIX)
            questions.append(Question(q["aspect"], q["question"].strip()))
        out.setdefault(record["prompt"], []).extend(questions)
    if not out:
        raise InputError(f"question file {path} holds no prompts", _FILE_FIX)
    return out


def _dpg_aspect(broad: str, detailed: str) -> str:
    """DPG-Bench's categories as judge aspects: entity, attribute (count -> count), relation (spatial -> spatial),
    global, other."""
    broad, detailed = broad.strip().lower(), detailed.strip().lower()
    if broad == "attribute" and "count" in detailed:
        return "count"
    if broad == "relation":
        return "spatial" if "spatial" in detailed else "relation"
    return broad if broad in ("entity", "attribute", "global") else "other"


def _from_dpg(path: Path) -> dict[str, list[Question]]:
    from evalsuite.tasks.dpg.prompts import load_dpg

    return {p.prompt: [Question(_dpg_aspect(q.category_broad, q.category_detailed), q.question)
                       for q in p.questions] for p in load_dpg(path)}


def _from_geneval(path: Path, medium: str) -> dict[str, list[Question]]:
    from evalsuite.tasks.geneval.prompts import load_prompts, plural

    out: dict[str, list[Question]] = {}
    for meta in load_prompts(path):
        clauses = meta["include"]
        questions = []
        for clause in clauses:
            name, count = clause["class"], int(clause.get("count", 1))
            many = count > 1
            noun = plural(name) if many else name
            questions.append(Question("entity", f"Are there {noun}?" if many else f"Is there {_article(name)} {name}?"))
            if many:
                questions.append(Question("count", f"Are there exactly {count} {noun}?"))
            if "color" in clause:
                questions.append(Question("attribute", f"{'Are the' if many else 'Is the'} {noun} {clause['color']}?"))
            if "position" in clause:
                relation, target = clause["position"]
                other = clauses[target]["class"]
                relation = _CANONICAL_RELATION.get(relation, relation)
                questions.append(Question("spatial", f"Is the {name} {relation} the {other}?"))
        out[meta["prompt"]] = questions
    return out
