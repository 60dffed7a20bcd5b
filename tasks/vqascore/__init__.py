"""VQAScore (Lin et al. 2024, t2v-metrics): P("Yes") of a VQA model asked whether an image shows its prompt."""
