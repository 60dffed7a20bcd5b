"""The VLM judge (`vlm-judge`): aspect-structured yes/no questions about each image or video, answered by a frozen
vision-language model and read at the logit level (P(yes) over the yes/no tokens, never parsed text)."""
