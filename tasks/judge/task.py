"""The `vlm-judge` task: every sample (image or video) is asked its prompt's aspect-structured yes/no questions and
the quality questions by a frozen vision-language model; a question's score is P(yes) from the next-token logits.

Results: `judge_overall` (per sample, the mean of all its questions; then the mean over samples) and `judge_<aspect>`
(per sample, the mean of its questions of that aspect; then the mean over the samples that have the aspect), each
with per-sample values so `compare` bootstraps CIs. The protocol names the judge, its weights' fingerprint and the
question set's hash, so numbers of different judges or questions never share a column; the question set itself is
stored beside the result (`vlm-judge.questions.jsonl`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evalsuite.errors import InputError, TaskSkipped
from evalsuite.hashing import sha256_file, sha256_json
from evalsuite.score_cache import ScoreCache
from evalsuite.tasks import register
from evalsuite.tasks.base import MetricInfo, Requirements, Task, TaskOutput
from evalsuite.tasks.judge import questions as qs
from evalsuite.tasks.judge.backends import Judge, resolve
from evalsuite.tasks.judge.scoring import aggregate, answer_cache, aspect_means, p_yes

JUDGE_FIX = ("pass --judge transformers:/path/to/Qwen2.5-VL-7B-Instruct (a local model folder, e.g. from "
             "`huggingface-cli download Qwen/Qwen2.5-VL-7B-Instruct --local-dir Qwen2.5-VL-7B-Instruct`) or "
             "--judge python:module:factory")
_ASPECT_HELP = {
    "global": "the whole prompt", "entity": "objects present", "attribute": "colours, materials, sizes",
    "count": "exact counts", "spatial": "spatial relations", "relation": "other relations",
    "action": "actions and motion", "text": "rendered text", "other": "other prompt questions",
    "artifacts": "free of visual artifacts", "anatomy": "correct anatomy", "temporal": "temporal consistency (video)",
    "motion": "smooth, plausible motion (video)"}


@register
class VLMJudgeTask(Task):
    name = "vlm-judge"
    version = "1"
    family = "text-image"  # "video" when it judges videos
    sample_kind = "image"  # "video" when it judges videos
    description = ("VLM judge: aspect-structured yes/no questions (entities, attributes, counts, spatial relations, "
                   "actions, text, quality) answered by a frozen vision-language model, read as P(yes) from its "
                   "next-token logits")
    metrics = {"judge_overall": MetricInfo("higher", "mean over samples of the mean P(yes) over all questions",
                                           primary=True, per_sample="judge_overall"),
               **{f"judge_{a}": MetricInfo("higher", f"mean P(yes), {_ASPECT_HELP[a]} questions",
                                           per_sample=f"judge_{a}") for a in qs.ASPECTS}}

    @dataclass(frozen=True)
    class Options:
        judge: str = field(default="", metadata={"help": "the judge: transformers:PATH (a local VLM folder) | "
                                                         "python:module:factory (also --judge)"})
        questions: str = field(default="", metadata={
            "help": "questions: empty = decomposed from each prompt; PATH (JSON lines of {prompt, questions: "
                    "[{aspect, question}]}) | dpg:PATH (DPG-Bench CSV or folder) | geneval:PATH (metadata.jsonl)"})
        quality: bool = field(default=True, metadata={"help": "also ask the prompt-independent quality questions"})
        media: str = field(default="auto", metadata={"help": "auto (videos when the model makes or holds them) | "
                                                             "image | video"})
        video_frames: int = field(default=8, metadata={"help": "frames of each video shown to the judge, evenly "
                                                               "spaced over the video (first and last included)"})

        def __post_init__(self) -> None:  # checked when the run's options are resolved, before any work
            if self.media not in ("auto", "image", "video"):
                raise InputError(f"vlm-judge.media is {self.media!r}", "pass -o vlm-judge.media=auto|image|video")
            if self.video_frames < 1:
                raise InputError(f"vlm-judge.video_frames is {self.video_frames}",
                                 "pass -o vlm-judge.video_frames=1 or more")

    def requirements(self, options) -> Requirements:
        return Requirements(needs="a judge model: --judge transformers:PATH (local VLM folder) or python:...")

    # ------------------------------------------------------------------------------------------------ running
    def run(self, ctx) -> TaskOutput:
        opts = self.options
        if not opts.judge:
            raise TaskSkipped("the VLM judge needs a judge model", JUDGE_FIX)
        medium = opts.media if opts.media != "auto" else ("video" if ctx.makes_videos() else "image")
        if medium == "video":  # the result belongs to the video model, in the video table
            self.__dict__.update(sample_kind="video", family="video")  # this instance's, not the class's
        question_set = (qs.load(opts.questions, medium, opts.quality) if opts.questions else None)
        judge = resolve(opts.judge, device=ctx.device)
        wanted = list(question_set.by_prompt) if question_set else None
        if medium == "video":
            files, prompts = ctx.video_samples(ctx.video_source(), prompts=wanted)
            prompts = list(prompts) if prompts is not None else [None] * len(files)
        else:
            files, prompts = ctx.image_samples(wanted)
        if question_set is None:
            question_set = qs.automatic([p for p in prompts if p], medium, opts.quality)
        items = list(zip(files, prompts))
        cache = answer_cache(judge)
        batch = max(1, ctx.options.batch_size)
        results = ctx.map_samples(items, lambda shard: [self._judge_one(path, prompt, question_set, judge, cache,
                                                                         medium, batch) for path, prompt in shard],
                                  "VLM judge")
        return self._output(items, results, question_set, judge, cache, medium, ctx)

    def _judge_one(self, path: Path, prompt: str | None, question_set: qs.QuestionSet, judge: Judge,
                   cache: ScoreCache, medium: str, batch: int) -> dict:
        """One sample's answers, or a skip record."""
        questions = question_set.for_prompt(prompt) if prompt else (question_set.quality or None)
        if not questions:
            why = "no prompt is known for this sample" if not prompt else \
                "the question file has no questions for its prompt"
            return {"file": str(path), "reason": why}
        try:
            media, key, frames = open_media(path, medium, self.options.video_frames)
        except InputError as exc:
            return {"file": str(path), "reason": exc.message}
        texts = [f"{q.text} {qs.ANSWER_INSTRUCTION}" for q in questions]
        scores = ask(media, key, texts, judge, cache, batch)
        return {"aspects": [q.aspect for q in questions], "p_yes": scores, "frames": frames}

    def _output(self, items: list, results: list, question_set: qs.QuestionSet, judge: Judge, cache: ScoreCache,
                medium: str, ctx: Any) -> TaskOutput:
        kept = [(item, r) for item, r in zip(items, results) if "reason" not in r]
        skipped = [r for r in results if "reason" in r]
        if not kept:
            raise TaskSkipped(f"no sample could be judged ({skipped[0]['reason'] if skipped else 'no samples'})",
                              "for folder:PATH add prompts.jsonl with {\"file\", \"prompt\"} per line, or pass "
                              "-o vlm-judge.questions=FILE with questions for the samples' prompts")
        per = [aspect_means(r["aspects"], r["p_yes"]) for _, r in kept]
        means = aggregate(per)
        per_sample: dict[str, list] = {"name": [str(path) for (path, _), _ in kept],
                                       "prompt": [prompt for (_, prompt), _ in kept],
                                       "p_yes": [r["p_yes"] for _, r in kept],
                                       "aspects": [r["aspects"] for _, r in kept]}
        for aspect in means:
            per_sample[f"judge_{aspect}"] = [s[aspect] for s in per if aspect in s]
        question_json = question_set.to_json()
        protocol = f"{judge.protocol}-{judge.fingerprint[:12]}-q{question_set.sha256[:10]}"
        ctx.weights_used[judge.protocol] = judge.fingerprint
        details: dict[str, Any] = {
            "judge": judge.protocol, "judge_fingerprint": judge.fingerprint,
            "judge_details": getattr(judge, "details", {}), "medium": medium,
            "questions_sha256": question_set.sha256, "question_source": question_set.source,
            "decomposition_version": qs.DECOMPOSITION_VERSION, "answer_instruction": qs.ANSWER_INSTRUCTION,
            "scoring": "P(yes) = softmax over the log-sum-exp of the next-token logits of every 'yes' and every 'no' "
                       "token; no text generated or parsed",
            "samples_per_aspect": {a: len(per_sample[f"judge_{a}"]) for a in means},
            "cache": {"hits": cache.hits, "misses": cache.misses}}
        if medium == "video":
            details["frames"] = {"count": self.options.video_frames, "rule": "evenly spaced indices "
                                 "round(linspace(0, T - 1, k)), first and last frame included",
                                 "per_video": [r["frames"] for _, r in kept]}
        return TaskOutput(metrics={f"judge_{a}": v for a, v in means.items()}, details=details,
                          per_sample=per_sample, skipped_samples=skipped, num_samples=len(kept), protocol=protocol,
                          artifacts={"questions.jsonl": _jsonl(question_json)})


def ask(media: Any, key: str, texts: list[str], judge: Judge, cache: ScoreCache, batch: int) -> list[float]:
    """P(yes) of each question text about one media item (`key` its cache key): cached answers first, the rest
    asked in batches of `batch`, then cached."""
    cached = cache.get_many(key, texts)
    todo = [t for t in dict.fromkeys(texts) if t not in cached]
    cache.hits += len(texts) - len(todo)
    cache.misses += len(todo)
    fresh: dict[str, float] = {}
    for start in range(0, len(todo), batch):
        chunk = todo[start:start + batch]
        logits = judge.yes_no_logits([media] * len(chunk), chunk)
        fresh.update(zip(chunk, p_yes(logits).tolist()))
    if fresh:
        cache.put_many(key, fresh)
    answers = {**cached, **fresh}
    return [answers[t] for t in texts]


def _jsonl(question_json: dict) -> bytes:
    """The question set as JSON lines: a header (source, rules version, instruction, quality questions), then one
    line per prompt (not `.json`: a run folder's JSON files are its results)."""
    header = {k: v for k, v in question_json.items() if k != "prompts"}
    return "".join(json.dumps(line) + "\n" for line in [header, *question_json["prompts"]]).encode()


def frame_indices(total: int, count: int) -> list[int]:
    """`count` evenly spaced frame indices of a video of `total` frames, first and last included (all when fewer).

    >>> frame_indices(16, 4), frame_indices(3, 8)
    ([0, 5, 10, 15], [0, 1, 2])
    """
    if total <= count:
        return list(range(total))
    return [int(i) for i in np.round(np.linspace(0, total - 1, count)).astype(int)]


def open_media(path: Path, medium: str, frames: int) -> tuple[Any, str, list[int] | None]:
    """The media the judge sees (an image, or a video's `frames` evenly spaced frames), its cache key and the frame
    indices; an unreadable file is an InputError naming it."""
    from PIL import Image

    from evalsuite.imageio import read_rgb

    if medium == "image":
        return Image.fromarray(read_rgb(path)), sha256_file(path), None
    from evalsuite.videoio import read_all_frames

    try:
        video = read_all_frames(path)
    except Exception as exc:  # a damaged video: the sample is a counted skip, never a crash
        raise InputError(f"cannot read video {path}: {exc}", "check the file") from None
    if len(video) == 0:
        raise InputError(f"video {path} has no frames", "check the file")
    chosen = frame_indices(len(video), frames)
    key = sha256_json({"video": sha256_file(path), "frames": chosen})
    return [Image.fromarray(np.asarray(video[i])) for i in chosen], key, chosen
