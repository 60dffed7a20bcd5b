"""What the text-to-image tasks share: the pluggable detector / colour / VQA backends (`backends`), the CLIPScore
scorer (`clipscore`) and the tasks' common helpers (`task_helpers`). GenEval lives in `evalsuite.tasks.geneval`,
DPG-Bench in `evalsuite.tasks.dpg`; `geneval` and `dpg` here are compatibility re-exports of them."""
