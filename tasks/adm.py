"""Class-conditional ImageNet as the papers report it: the ADM evaluator's Inception Score, FID, sFID, precision and
recall (openai/guided-diffusion evaluations/evaluator.py; metrics in evalsuite.adm_metrics) against an ADM reference
batch (`--ref adm:PATH/VIRTUAL_imagenet256_labeled.npz`, evalsuite.adm_npz).

Samples: a class-conditional model's (`generate_class`, evalsuite.models.class_conditional: 50 per class x 1000
classes by default, `--num-samples` spread evenly), or a folder of finished samples.

Features: the official path (`-o features=tf`, evalsuite.adm_official) runs the user's evaluator.py with the TF graph
`classify_image_graph_def.pb` (pool_3, mixed_6/conv, softmax/logits MatMul) in its own TensorFlow environment. By
default the features come from the StyleGAN2-ADA TorchScript port of that graph (`inception-2015-12-05.pt`, its
resize inside, as ADM feeds raw images to the TF graph): pool3 features (FID, precision/recall) and its unbiased
softmax (IS, as ADM drops the bias). It exposes no mixed_6/conv, so sFID is skipped with the official path named.
These results carry the protocol `adm-<metric>/torchscript`, never the official column `adm-<metric>`.

The TorchScript features go through evalsuite's feature engine: the samples' pool3 features are the
`inception:legacy_tensorflow` extractor's (the same network call, float32 in [0, 255], resize inside), cached per
image content and sharded over torchrun ranks like FID's; the no-bias softmax is computed from them
(softmax(pool3 · Wᵀ)); the reference batch's arr_0 images are featurised sharded by index and cached as one array
keyed by the extractor and the batch's sha256. The official path (features=tf) runs evaluator.py once, on rank 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evalsuite import adm_metrics, adm_npz
from evalsuite import features as feature_engine
from evalsuite.errors import InputError, TaskSkipped
from evalsuite.models import class_conditional as cc
from evalsuite.tasks import register, register_suite
from evalsuite.tasks.base import MetricInfo, Requirements, Task, TaskOutput

ADM_PROTOCOL_SAMPLES = 50_000
FEATURE_PATHS = ("torchscript", "tf")  # tf: the user's evaluator.py in its TensorFlow environment (adm_official)
TORCHSCRIPT_SPEC = "inception:legacy_tensorflow"  # the whole TorchScript graph, its own resize (ADM feeds raw images)
OFFICIAL_FIX = ("use the official path: -o features=tf -o tf_python=TF_ENV/bin/python -o "
                "evaluator=PATH/evaluator.py -o graph=PATH/classify_image_graph_def.pb; or run it by hand on "
                "`evalsuite export-npz RUN_ID -o samples.npz`: `python evaluations/evaluator.py "
                "VIRTUAL_imagenet256_labeled.npz samples.npz`")
IS_VARIANTS = ("adm", "torch-fidelity", "stylegan2-ada")


@dataclass(frozen=True)
class ADMOptions:
    """Options shared by the ADM tasks."""

    features: str = field(default="torchscript", metadata={
        "help": "torchscript (StyleGAN2-ADA's port of the TF Inception; no sFID) or tf (the official evaluator.py "
                "run in its TensorFlow environment: needs tf_python, evaluator and graph)"})
    protocol_samples: int = field(default=ADM_PROTOCOL_SAMPLES, metadata={"help": "the protocol's sample count"})
    tf_python: str = field(default="", metadata={"help": "features=tf: the TensorFlow environment's interpreter"})
    evaluator: str = field(default="", metadata={"help": "features=tf: guided-diffusion evaluations/evaluator.py"})
    graph: str = field(default="", metadata={"help": "features=tf: classify_image_graph_def.pb"})

    def __post_init__(self) -> None:
        if self.features not in FEATURE_PATHS:
            raise InputError(f"features={self.features!r}", f"use one of {', '.join(FEATURE_PATHS)}; the official "
                                                           "TF path: " + OFFICIAL_FIX)


# ------------------------------------------------------------------------------------------------ shared per run
def _memo(ctx) -> dict:
    """What the five tasks of a run share (samples, features, the reference batch, the evaluator's numbers): the
    run context's memo for the ADM tasks, gone with the run."""
    return ctx.run_memo("adm")


def samples(ctx) -> tuple[list[Path], np.ndarray | None, dict]:
    """The run's sample files, their class labels (None for a folder) and what to record of them."""
    memo = _memo(ctx)
    if "samples" in memo:
        return memo["samples"]
    src = ctx.source
    if src.kind == "generator" and cc.is_class_conditional(src.generator):
        from evalsuite.samples import SampleStore

        classes = cc.num_classes(src.generator)
        n = ctx.options.num_samples or cc.PER_CLASS * classes
        requests = cc.class_requests(n, ctx.options.seed, classes)
        store = SampleStore(ctx.store.root / "samples", src.model_id)
        files, _ = ctx.generate(store, cc.ClassPromptAdapter(src.generator, src.spec), requests, "image")
        labels = cc.class_labels(n, classes)
        info = {"labels": cc.LABEL_RULE, "num_classes": classes, "seed": ctx.options.seed, "num_samples": n,
                "model_id": src.model_id, **cc.class_counts(labels)}  # export-npz rebuilds the requests from these
    elif src.kind == "folder":
        files, labels, info = ctx.sample_files(), None, {"labels": "none (a folder of samples)"}
    else:
        raise TaskSkipped(f"model {src.spec} is not class-conditional (it has no generate_class(labels, seeds))",
                          "score a class-conditional model (python:... returning an object with generate_class, "
                          "demo-class) or a folder:PATH of its samples")
    memo["samples"] = (list(files), labels, info)
    return memo["samples"]


def _network(ctx):
    """The TorchScript Inception (weights verified through the store; missing: a skip naming the fix)."""
    ext = ctx.extractor(TORCHSCRIPT_SPEC)
    net = getattr(ext.forward, "net", None)
    if net is None:
        raise TaskSkipped("the inception extractor does not expose its TorchScript network",
                          "report this; the ADM tasks need inception-2015-12-05.pt's forward")
    return ext, net


SAMPLE_LABEL = "adm sample"  # the feature memo's label: apart from the run's own `sample` files (fid's)
SOFTMAX_SPEC = "adm:softmax-nobias"  # the fallback extractor's name in the run (a network without output.weight)


class _NoBiasSoftmax(torch.nn.Module):
    """net(x, no_output_bias=True): the no-bias softmax as the network's own forward computes it."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, no_output_bias=True).reshape(x.shape[0], -1)


def _softmax_no_bias(ctx, ext, net, files: list[Path], pool: np.ndarray) -> np.ndarray:
    """softmax(pool3 · Wᵀ) without the bias (ADM's _create_softmax_graph), from the pool3 features; a network that
    exposes no output.weight runs its own no_output_bias forward as a second cached, sharded extractor."""
    import dataclasses

    weight = getattr(getattr(net, "output", None), "weight", None)
    if weight is not None:
        with torch.inference_mode():
            logits = torch.from_numpy(pool) @ weight.detach().float().cpu().T
            return torch.softmax(logits, dim=1).numpy()
    with torch.inference_mode():
        dim = int(net(torch.zeros(1, 3, 299, 299, device=ext.device), no_output_bias=True).shape[-1])
    ctx.record_extractor(SOFTMAX_SPEC, dataclasses.replace(  # its own id: its own cache entries
        ext, id=f"{ext.id}/softmax-nobias", dim=dim, forward=_NoBiasSoftmax(net)))
    probs = ctx.features_of(files, SOFTMAX_SPEC, f"{SAMPLE_LABEL} softmax", keep_features=True).features
    assert probs is not None  # (keep_features=True)
    return probs


def sample_features(ctx) -> feature_engine.FeatureResult:
    """The samples' pool3 features through the feature engine (cached per image, sharded over ranks)."""
    memo = _memo(ctx)
    if "sample_feats" not in memo:
        files, _, _ = samples(ctx)
        _network(ctx)  # the weights (a skip naming the fix) and the interface, before any work
        memo["sample_feats"] = ctx.features_of(files, TORCHSCRIPT_SPEC, SAMPLE_LABEL, keep_features=True)
    return memo["sample_feats"]


def sample_activations(ctx) -> tuple[np.ndarray, np.ndarray]:
    """pool3 features (float32) and the no-bias softmax (float32) of the usable samples, in file order."""
    memo = _memo(ctx)
    if "sample_acts" not in memo:
        feats = sample_features(ctx)
        ext, net = _network(ctx)
        pool = feats.features
        assert pool is not None  # (keep_features=True)
        memo["sample_acts"] = (pool, _softmax_no_bias(ctx, ext, net, [Path(f) for f in feats.files], pool))
    return memo["sample_acts"]


def reference(ctx) -> adm_npz.ADMReference:
    spec = ctx.options.ref or ""
    if not spec.startswith("adm:"):
        raise TaskSkipped(f"the ADM tasks compare with an ADM reference batch, got --ref {spec or '(none)'}",
                          "pass --ref adm:PATH/VIRTUAL_imagenet256_labeled.npz (guided-diffusion's reference batch)")
    memo = _memo(ctx)
    if "ref" not in memo:
        memo["ref"] = adm_npz.read_reference_batch(spec[len("adm:"):])
    return memo["ref"]


def _reference_cache(ext) -> feature_engine.FeatureCache:
    """Where the reference batch's pool3 features are kept: the feature cache of the extractor's key (apart from its
    per-image entries), one (images, dim) array per batch file sha256."""
    return feature_engine.FeatureCache({**ext.cache_key, "array": f"adm reference batch {adm_npz.IMAGES_KEY}"})


def _reference_features(ctx, ext, ref: adm_npz.ADMReference) -> tuple[np.ndarray, str]:
    """pool3 features of arr_0's images: from the cache when every rank finds them there, else image i on rank
    i mod W through the same network call as the samples', gathered back in order and cached by rank 0."""
    cache = _reference_cache(ext)
    cached = cache.get(ref.sha256, (ref.num_images, ext.dim))
    if all(ctx.dist.gather(cached is not None)):
        assert cached is not None
        return cached, "cached"
    batch_size = max(1, ctx.options.batch_size)

    def featurise(indices: list[int]) -> list[np.ndarray]:
        wanted, rows = set(indices), []
        for start, block in _numbered(adm_npz.iter_images(ref.path, batch_size)):
            mine = [ext.preprocessing(img) for i, img in enumerate(block, start) if i in wanted]
            rows.extend(feature_engine.run_network(ext, mine))
        return rows

    rows = ctx.map_samples(list(range(ref.num_images)), featurise, "ADM reference batch features")
    feats = np.stack(rows).astype(np.float32)
    if not np.isfinite(feats).all():
        raise InputError(f"the reference batch {ref.path}'s images give NaN or inf features",
                         "check the batch's arr_0 and the extractor weights")
    if ctx.dist.is_main:
        cache.put(ref.sha256, feats)
    return feats, "computed"


def _numbered(batches):
    """(index of the first image, batch) for consecutive batches."""
    start = 0
    for block in batches:
        yield start, block
        start += len(block)


def reference_pool(ctx) -> np.ndarray:
    """pool3 features of the reference batch's images (arr_0), as compute_prec_recall uses."""
    memo = _memo(ctx)
    if "ref_pool" not in memo:
        ref = reference(ctx)
        if ref.images is None:
            raise TaskSkipped(f"reference batch {ref.path} holds no images (arr_0)",
                              "use the full reference batch: precision/recall need its 10,000 images")
        ext, _ = _network(ctx)
        memo["ref_pool"], memo["ref_pool_source"] = _reference_features(ctx, ext, ref)
    return memo["ref_pool"]


def official_numbers(ctx, options: ADMOptions) -> dict[str, float]:
    """The five numbers of the user's evaluator.py (features=tf) on the run's samples written as an ADM sample batch
    and the --ref adm: batch; run once per run for all five tasks."""
    import tempfile

    from evalsuite.adm_official import OfficialSetup, run_evaluator
    from evalsuite.imageio import read_rgb

    memo = _memo(ctx)
    if "official" not in memo:
        setup = OfficialSetup(options.tf_python, options.evaluator, options.graph)
        setup.check()
        ref = reference(ctx)
        files, labels, _ = samples(ctx)

        def evaluate() -> tuple[dict[str, float], str] | None:
            if not ctx.dist.is_main:
                return None  # one evaluator process for the run: rank 0's, its numbers broadcast
            first = read_rgb(files[0])
            with tempfile.TemporaryDirectory(prefix="adm-samples-") as tmp:
                batch = Path(tmp) / "samples.npz"
                adm_npz.write_sample_batch(batch, (read_rgb(f) for f in files), len(files),
                                           (int(first.shape[0]), int(first.shape[1])), labels)
                return run_evaluator(setup, ref.path, batch)

        memo["official"], memo["official_log"] = ctx.dist.broadcast(ctx.dist.collectively(evaluate, "ADM evaluator"))
    return memo["official"]


class _ADMTask(Task):
    family = "imagenet-class-conditional"  # the leaderboard's 'ImageNet 256² class-conditional' table
    sample_kind = "image"
    Options = ADMOptions
    needs_reference = True

    def requirements(self, options) -> Requirements:
        return Requirements(weights=("inception-2015-12-05",), reference=self.needs_reference,
                            needs="a class-conditional model (generate_class) or a folder of its samples; "
                                  "--ref adm:PATH (an ADM reference batch)")

    def output(self, ctx, metrics: dict[str, float], details: dict) -> TaskOutput:
        files, _, info = samples(ctx)
        ref = _memo(ctx).get("ref")
        official = self.options.features == "tf"
        protocol = self.name if official else f"{self.name}/{self.options.features}"
        features = ("the official evaluator.py (guided-diffusion) with classify_image_graph_def.pb in TensorFlow"
                    if official else "StyleGAN2-ADA TorchScript inception-2015-12-05.pt (port of the TF graph ADM "
                                     "uses; official: classify_image_graph_def.pb in TF)")
        details = {"protocol": protocol, "features": features, "samples": info, **details}
        if ref is not None:
            details["reference"] = {"path": str(ref.path), "sha256": ref.sha256, "images": ref.num_images}
        memo = _memo(ctx)
        feats = None if official else memo.get("sample_feats")
        if feats is not None:
            details["n_cached_features"], details["n_computed_features"] = feats.n_cached, feats.n_computed
        if not official and "ref_pool_source" in memo and set(self.metrics) & {"precision", "recall"}:
            details["reference_features"] = memo["ref_pool_source"]  # "computed", or "cached" by an earlier run
        return TaskOutput(metrics=metrics, details=details, num_samples=feats.n if feats is not None else len(files),
                          protocol=protocol, protocol_samples=self.options.protocol_samples,
                          skipped_samples=list(feats.skipped) if feats is not None else [])


@register
class ADMInceptionScore(_ADMTask):
    name = "adm-is"
    version = "1"
    description = "Inception Score as the ADM evaluator computes it (splits of 5000, no bias, TorchScript features)"
    metrics = {"is": MetricInfo("higher", "Inception Score (ADM: mean over splits of 5000)", primary=True)}
    needs_reference = False

    @dataclass(frozen=True)
    class Options(ADMOptions):
        variant: str = field(default="adm", metadata={
            "help": "adm (splits of 5000 rows, evaluator.py:179-192), torch-fidelity (10 shuffled splits, "
                    "seed 2020) or stylegan2-ada (10 splits of num_gen)"})

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.variant not in IS_VARIANTS:
                raise InputError(f"variant={self.variant!r}", f"use one of {', '.join(IS_VARIANTS)}")

    def run(self, ctx) -> TaskOutput:
        if self.options.features == "tf":
            if self.options.variant != "adm":
                raise InputError(f"variant={self.options.variant} needs the probabilities; the official evaluator "
                                 "prints ADM's IS only", "use features=torchscript for the named variants")
            return self.output(ctx, {"is": official_numbers(ctx, self.options)["is"]}, {"variant": "adm"})
        _, probs = sample_activations(ctx)
        details: dict[str, Any] = {"variant": self.options.variant}
        if self.options.variant == "adm":
            value = adm_metrics.inception_score_adm(probs)
            details["split_size"] = adm_metrics.ADM_SPLIT_SIZE
        elif self.options.variant == "stylegan2-ada":
            value, details["std"] = adm_metrics.inception_score_stylegan2ada(probs.astype(np.float64))
        else:
            value, details["std"] = adm_metrics.inception_score_torch_fidelity(np.log(probs.astype(np.float64)))
        out = self.output(ctx, {"is": value}, details)
        if self.options.variant != "adm":
            out.protocol = f"{out.protocol}/{self.options.variant}"
            out.details["protocol"] = out.protocol
        return out


@register
class ADMFID(_ADMTask):
    name = "adm-fid"
    version = "1"
    description = "FID against an ADM reference batch's mu/sigma (ADM's frechet_distance; TorchScript pool3)"
    metrics = {"fid": MetricInfo("lower", "Fréchet distance of pool3 features (ADM evaluator)", primary=True)}

    def run(self, ctx) -> TaskOutput:
        if self.options.features == "tf":
            return self.output(ctx, {"fid": official_numbers(ctx, self.options)["fid"]}, {})
        ref = reference(ctx)
        pool, _ = sample_activations(ctx)
        stats = adm_metrics.statistics_adm(pool)
        value = adm_metrics.frechet_distance_adm(stats.mu, stats.sigma, ref.mu, ref.sigma)
        return self.output(ctx, {"fid": value}, {"reference_statistics": "mu, sigma of the reference batch"})


@register
class ADMsFID(_ADMTask):
    name = "adm-sfid"
    version = "1"
    description = "sFID: FID of mixed_6/conv's first 7 channels (17x17x7) against the batch's mu_s/sigma_s"
    metrics = {"sfid": MetricInfo("lower", "Fréchet distance of spatial features (ADM evaluator)", primary=True)}

    def run(self, ctx) -> TaskOutput:
        if self.options.features == "tf":
            return self.output(ctx, {"sfid": official_numbers(ctx, self.options)["sfid"]}, {})
        raise TaskSkipped("sFID needs the Inception graph's mixed_6/conv activations, which the TorchScript "
                          "inception-2015-12-05.pt does not expose (its forward gives pool3 or the softmax only)",
                          OFFICIAL_FIX)


class _PR(_ADMTask):
    def precision_recall(self, ctx) -> tuple[float, float]:
        if self.options.features == "tf":
            numbers = official_numbers(ctx, self.options)
            return numbers["precision"], numbers["recall"]
        memo = _memo(ctx)
        if "pr" not in memo:
            pool, _ = sample_activations(ctx)
            memo["pr"] = adm_metrics.precision_recall_adm(reference_pool(ctx), pool)
        return memo["pr"]


@register
class ADMPrecision(_PR):
    name = "adm-precision"
    version = "1"
    description = "Precision (ADM's ManifoldEstimator, k = 3) of pool3 features against the reference images"
    metrics = {"precision": MetricInfo("higher", "fraction of samples inside the reference manifold", primary=True)}

    def run(self, ctx) -> TaskOutput:
        return self.output(ctx, {"precision": self.precision_recall(ctx)[0]}, {"k": 3, "distances": "float16"})


@register
class ADMRecall(_PR):
    name = "adm-recall"
    version = "1"
    description = "Recall (ADM's ManifoldEstimator, k = 3) of pool3 features against the reference images"
    metrics = {"recall": MetricInfo("higher", "fraction of reference images inside the samples' manifold",
                                    primary=True)}

    def run(self, ctx) -> TaskOutput:
        return self.output(ctx, {"recall": self.precision_recall(ctx)[1]}, {"k": 3, "distances": "float16"})


ADM_TASKS = ["adm-is", "adm-fid", "adm-sfid", "adm-precision", "adm-recall"]
register_suite("imagenet-adm", ADM_TASKS, "class-conditional ImageNet as the ADM evaluator reports it (IS, FID, "
                                          "sFID, precision, recall) against --ref adm:PATH")
