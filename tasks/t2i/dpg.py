"""Compatibility shim: DPG-Bench moved to the `evalsuite.tasks.dpg` package (prompts, scoring, images, vqa, task).
This module re-exports the public names it used to define, for code that imports `evalsuite.tasks.t2i.dpg`; new
code imports the modules of the package."""

from evalsuite.tasks.dpg.images import DPGImageFolder, load_dpg_images, split_grid
from evalsuite.tasks.dpg.prompts import (
    CSV_NAME,
    PROMPTS_DIR,
    REQUIRED_COLUMNS,
    DPGPrompt,
    DPGQuestion,
    load_dpg,
    parse_dependency,
)
from evalsuite.tasks.dpg.scoring import (
    DPGResult,
    answer_is_yes,
    answer_prompt,
    category_scores,
    normalize_answer,
    official_category_scores,
    official_questions,
    official_score_prompt,
    official_summary,
    score_answers,
    score_dpg,
    score_image,
    score_prompt,
    summarize,
    tuple_categories,
)
from evalsuite.tasks.dpg.vqa import MPLUG_MODEL, MPLUG_PROTOCOL, MPLUGVQA, TransformersVQA

__all__ = ["CSV_NAME", "DPGImageFolder", "DPGPrompt", "DPGQuestion", "DPGResult", "MPLUGVQA", "MPLUG_MODEL",
           "MPLUG_PROTOCOL", "PROMPTS_DIR", "REQUIRED_COLUMNS", "TransformersVQA", "answer_is_yes", "answer_prompt",
           "category_scores", "load_dpg", "load_dpg_images", "normalize_answer", "official_category_scores",
           "official_questions", "official_score_prompt", "official_summary", "parse_dependency", "score_answers",
           "score_dpg", "score_image", "score_prompt", "split_grid", "summarize", "tuple_categories"]
