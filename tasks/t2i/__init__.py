"""Text-to-image evaluation: prompt sets (GenEval, DPG-Bench, counting), the GenEval folder layout, scoring rules,
and pluggable detector / colour / VQA backends."""
