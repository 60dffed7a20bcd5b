"""DPG-Bench (Dense Prompt Graph benchmark, from the ELLA repository's `dpg_bench/`): 1,065 dense prompts, each
decomposed into yes/no questions ("propositions") that form a dependency graph; a VQA model answers every
question on every generated image. One module per job:

* `prompts`: the CSV and `prompts/<item_id>.txt` read into prompts and questions (`load_dpg`);
* `scoring`: the dependency rule, the official numbers of `compute_dpg_bench.py` (quirks included) and the
  corrected ones beside them (`summarize`, `score_dpg`);
* `images`: the 2x2 grid split and finding each prompt's images in a folder (`load_dpg_images`);
* `vqa`: the VQA backends ("mplug", the official mPLUG-large; "transformers:PATH", an open model);
* `task`: the `dpg-bench` task.

Importing the package imports none of them; the task registry imports `task`, the VQA backend registry `vqa`.
"""
