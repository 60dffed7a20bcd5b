"""T2I-CompBench (Huang et al. 2023): attribute binding (BLIP-VQA), spatial (detector rule), non-spatial (CLIP)."""
