"""Compatibility shim: GenEval moved to the `evalsuite.tasks.geneval` package (prompts, scoring, detectors,
color_classifier, task, counting_task). This module re-exports the public names it used to define, for code that
imports `evalsuite.tasks.t2i.geneval`; new code imports the modules of the package."""

from evalsuite.tasks.geneval.color_classifier import (
    COLOR_TEMPLATES,
    GREY_BACKGROUND,
    CLIPColorClassifier,
    color_crop,
)
from evalsuite.tasks.geneval.detectors import (
    MMDetMask2FormerDetector,
    TorchvisionMaskRCNNDetector,
    torchvision_label_map,
)
from evalsuite.tasks.geneval.prompts import (
    COCO_CLASSES,
    COLORS,
    RELATIONS,
    TAG_COUNTS,
    TAGS,
    generate_prompts,
    load_prompts,
    noun_phrase,
    plural,
    validate_metadata,
    write_prompts,
)
from evalsuite.tasks.geneval.scoring import (
    COUNTING_THRESHOLD,
    MAX_OBJECTS,
    POSITION_SHRINK,
    THRESHOLD,
    evaluate,
    filter_detections,
    open_image,
    relative_position,
    score_images,
    summarize,
    write_results,
)
from evalsuite.tasks.t2i.backends import ColorClassifier, Detection, Detector

__all__ = ["CLIPColorClassifier", "COCO_CLASSES", "COLORS", "COLOR_TEMPLATES", "COUNTING_THRESHOLD", "ColorClassifier",
           "Detection", "Detector", "GREY_BACKGROUND", "MAX_OBJECTS", "MMDetMask2FormerDetector", "POSITION_SHRINK",
           "RELATIONS", "TAGS", "TAG_COUNTS", "THRESHOLD", "TorchvisionMaskRCNNDetector", "color_crop", "evaluate",
           "filter_detections", "generate_prompts", "load_prompts", "noun_phrase", "open_image", "plural",
           "relative_position", "score_images", "summarize", "torchvision_label_map", "validate_metadata",
           "write_prompts", "write_results"]
