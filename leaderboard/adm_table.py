"""The 'ImageNet 256² class-conditional' table: the imagenet-adm tasks' results (and papers' ImageNet numbers) in
five columns per feature path (Inception Score, FID, sFID, precision, recall), each header naming its protocol.

The official column of a metric is the ADM evaluator run as published (`-o features=tf`, protocol `adm-<metric>`);
the TorchScript features (protocol `adm-<metric>/torchscript[/variant]`) get columns of their own, and nothing of
the plain `fid` task (clean-fid protocol, another reference) ever lands here."""

from __future__ import annotations

FAMILY = "imagenet-class-conditional"
TITLE = "ImageNet 256² class-conditional"
PROTOCOL = ("Protocol: OpenAI's ADM evaluator (guided-diffusion evaluations/evaluator.py) against the reference "
            "batch VIRTUAL_imagenet256_labeled.npz, 50,000 samples (50 per class); `evalsuite score MODEL --suite "
            "imagenet-adm --ref adm:PATH`. Columns marked 'official evaluator' come from evaluator.py itself in "
            "TensorFlow (-o features=tf); 'TorchScript features' from StyleGAN2-ADA's port of its Inception graph "
            "(the default; no sFID), never mixed with the official columns.")
TASKS = ("adm-is", "adm-fid", "adm-sfid", "adm-precision", "adm-recall")
METRIC_LABELS = {"adm-is": "Inception Score", "adm-fid": "FID", "adm-sfid": "sFID", "adm-precision": "precision",
                 "adm-recall": "recall"}
# (task, metric, direction, description) of the official columns, shown in this order whether filled or not
OFFICIAL_COLUMNS = (
    ("adm-is", "is", "higher", "Inception Score (ADM: mean over splits of 5000)"),
    ("adm-fid", "fid", "lower", "Fréchet distance of pool3 features against the reference batch's mu/sigma"),
    ("adm-sfid", "sfid", "lower", "Fréchet distance of mixed_6/conv's first 7 channels (mu_s/sigma_s)"),
    ("adm-precision", "precision", "higher", "fraction of samples inside the reference manifold (k = 3)"),
    ("adm-recall", "recall", "higher", "fraction of reference images inside the samples' manifold (k = 3)"),
)
OFFICIAL = "official evaluator (TensorFlow)"
TORCHSCRIPT = "TorchScript features"


def family_of(task: str, family: str) -> str:
    """The table a result belongs to: every ADM task's result here (also those stored before this table existed,
    when the tasks declared image-quality); any other task's stays where its document puts it."""
    return FAMILY if task in TASKS else family


def feature_path(task: str, protocol: str | None) -> tuple[int, str]:
    """(rank, label) of a result's feature path from its protocol: the official evaluator (rank 0), the TorchScript
    features with their variant (1), or a protocol this table does not know (2, named as it is)."""
    if protocol == task:
        return 0, OFFICIAL
    if protocol and protocol.startswith(f"{task}/torchscript"):
        variant = protocol[len(f"{task}/torchscript"):].strip("/")
        return 1, TORCHSCRIPT + (f", IS variant {variant}" if variant else "")
    return 2, f"protocol {protocol or 'not stated'}"


def header(task: str, protocol: str | None, version_note: str = "") -> tuple[str, str, tuple]:
    """A column's (label, protocol line, sort order): 'FID' / 'official evaluator (TensorFlow)', ordered by feature
    path, then IS, FID, sFID, precision, recall."""
    rank, path = feature_path(task, protocol)
    label = METRIC_LABELS.get(task, task) + (f" ({version_note})" if version_note else "")
    order = (rank, path, TASKS.index(task) if task in TASKS else len(TASKS), version_note)
    return label, path, order
