"""GenEval (Ghosh et al., 2023; github.com/djghosh13/geneval), our own implementation of the benchmark's published
protocol, and the `counting` task that counts with its detector rule. One module per job:

* `prompts`: the vocabulary (80 COCO classes as GenEval spells them, colours, relations, tasks), our generator of a
  prompt set in GenEval's metadata format, and reading / checking / writing that format;
* `scoring`: the official rule (thresholds, at most 16 per class, no NMS, colour and position clauses) and summary;
* `detectors`: the detector backends ("mask2former", the official mmdet one; "torchvision-maskrcnn", a stand-in
  with its own protocol name); `color_classifier`: the CLIP ViT-L/14 zero-shot colour backend;
* `task`: the `geneval` task; `counting_task`: the `counting` task.

Importing the package imports none of them (listing tasks stays cheap); the task registry imports the task modules
and the backend registries (`evalsuite.tasks.t2i.backends`) the backend modules.
"""
