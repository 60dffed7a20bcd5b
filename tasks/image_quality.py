"""Distribution metrics on images: FID, KID, precision/recall, CLIP-FID, CMMD and FD-DINOv2. They share one feature
pass per extractor (FID and KID on Inception; precision/recall on VGG-16 unless --pr-extractor names the same
network)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from evalsuite import extractors, sample_count
from evalsuite.errors import IncompatibleStatsError, InputError, TaskSkipped
from evalsuite.metrics import CMMD_SCALE, CMMD_SIGMA, cmmd, frechet_distance, kernel_distance, precision_recall
from evalsuite.sample_count import CMMD_PROTOCOL_SAMPLES, FID_PROTOCOL_SAMPLES, SampleCountOptions
from evalsuite.tasks import register, register_suite
from evalsuite.tasks.base import MetricInfo, Requirements, Task, TaskOutput


class _FeatureDistanceTask(Task):
    """Shared part: the extractor a task uses, and what it needs."""

    family = "image-quality"
    sample_kind = "image"
    default_extractor: ClassVar[str] = "inception"

    def extractor_spec(self, options) -> str:
        return options.extractor or self.default_extractor

    def requirements(self, options) -> Requirements:
        return Requirements(weights=extractors.weights_needed(self.extractor_spec(options)), reference=True)

    def feature_protocol(self, spec: str) -> str | None:
        """None on the task's own network (its column is the published protocol's: FID is Inception, clean); on any
        other feature space (`--extractor clip`, `inception:legacy_pytorch`, a user's network) the task and the
        space, so such a number never shares a column with the published one."""
        if spec in (self.default_extractor, f"{self.default_extractor}:clean"):
            return None
        return f"{self.name}-{feature_space(spec)}"

    def counted(self, out: TaskOutput, base_protocol: str | None = None,
                default: int = FID_PROTOCOL_SAMPLES) -> TaskOutput:
        """`out` with its protocol's sample count (`evalsuite.sample_count`): recorded with the result, and a
        non-default count named in the protocol (its own leaderboard column)."""
        wanted = self.options.protocol_samples
        out.protocol_samples = wanted
        out.protocol = sample_count.protocol_name(base_protocol, self.name, wanted, default)
        return out


@register
class FID(_FeatureDistanceTask):
    name = "fid"
    version = "1"
    description = "Fréchet Inception Distance against reference statistics (clean-fid 'clean' preprocessing)"
    metrics = {"fid": MetricInfo("lower", "Fréchet distance of Inception pool3 features", primary=True)}

    @dataclass(frozen=True)
    class Options(SampleCountOptions):
        biased_cov: bool = field(default=False, metadata={"help": "covariance divided by N, not N - 1 "
                                                                  "(StyleGAN-V style)"})
        bootstrap: int = field(default=0, metadata={
            "help": "resamples of the generated samples' features for a 95% sampling interval of the distance (0: "
                    "none; e.g. 200); no network runs again, the reference is fixed; each costs one pass over the "
                    "features"})

        def __post_init__(self) -> None:  # checked when the run's options are resolved, before any work
            super().__post_init__()
            if self.bootstrap < 0 or self.bootstrap == 1:
                raise InputError(f"bootstrap is {self.bootstrap}", "pass -o bootstrap=0 (none) or 2 and more "
                                                                   "resamples (e.g. 200)")

    def run(self, ctx) -> TaskOutput:
        spec = self.extractor_spec(ctx.options)
        feats = ctx.sample_features(spec, keep_features=self.options.bootstrap > 0)
        ref = ctx.reference(spec)
        unbiased = not self.options.biased_cov
        value = frechet_distance(feats.stats.mean, feats.stats.cov(unbiased), ref.mu, ref.covariance(unbiased))
        details = {"covariance": "unbiased" if unbiased else "biased", "n_reference": ref.n,
                   "n_cached_features": feats.n_cached, "n_computed_features": feats.n_computed}
        if self.options.bootstrap:
            details["sampling_interval"] = sampling_interval(
                feats.features, ref.mu, ref.covariance(unbiased), self.options.bootstrap, ctx.options.seed,
                unbiased, ctx.options.progress and ctx.dist.is_main)
        return self.counted(TaskOutput(metrics={"fid": value}, details=details, num_samples=feats.n,
                                       skipped_samples=feats.skipped), self.feature_protocol(spec))


def sampling_interval(features, mu, sigma, n_boot: int, seed: int, unbiased: bool, progress: bool) -> dict:
    """A Fréchet distance's 95% percentile interval over resampled generated features, with its replicates (so
    `compare` can give the interval of a difference between two runs), labelled as a sampling interval."""
    import numpy as np

    from evalsuite.metrics import frechet_bootstrap

    replicates = frechet_bootstrap(features, mu, sigma, n_boot=n_boot, seed=seed, unbiased=unbiased,
                                   progress=progress)
    low, high = np.percentile(replicates, [2.5, 97.5])
    return {"kind": "sampling", "level": 0.95, "low": float(low), "high": float(high), "n_boot": n_boot, "seed": seed,
            "method": "percentile bootstrap over the generated samples' features (rows drawn with replacement, "
                      "numpy default_rng(seed)); the reference statistics fixed; no new network passes: the "
                      "variability of the estimate from this many samples, not of the model",
            "replicates": [float(r) for r in replicates]}


@register
class CLIPFID(FID):
    name = "clip-fid"
    version = "2"  # 2: clean-fid's clip_vit_b_32 preprocessing (shorter side 224 + centre crop), was a squashing resize
    description = ("Fréchet distance of CLIP ViT-B/32 image embeddings (CLIP-FID, Kynkäänniemi et al. 2023; "
                   "clean-fid's clip_vit_b_32 preprocessing)")
    metrics = {"clip-fid": MetricInfo("lower", "Fréchet distance of CLIP ViT-B/32 image features", primary=True)}
    default_extractor = "clip"

    def extractor_spec(self, options) -> str:
        return self.default_extractor  # --extractor selects FID's network; CLIP-FID is always CLIP

    def run(self, ctx) -> TaskOutput:
        out = super().run(ctx)
        out.metrics = {"clip-fid": out.metrics["fid"]}
        return self.counted(out)


@register
class FDDINOv2(FID):
    name = "fd-dinov2"
    version = "1"
    description = ("FD-DINOv2 (Stein et al. 2023, dgm-eval): Fréchet distance of DINOv2 ViT-L/14 CLS features "
                   "(dgm-eval's PIL bicubic 224x224 + ImageNet normalisation, float32)")
    metrics = {"fd-dinov2": MetricInfo("lower", "Fréchet distance of DINOv2 ViT-L/14 CLS features", primary=True)}
    default_extractor = "dinov2-vitl14"
    protocol = "fd-dinov2-vitl14"

    def extractor_spec(self, options) -> str:
        return self.default_extractor  # --extractor selects FID's network; FD-DINOv2 is always DINOv2 ViT-L/14

    def run(self, ctx) -> TaskOutput:
        out = super().run(ctx)  # FID's Fréchet path on the DINOv2 features
        out.metrics = {"fd-dinov2": out.metrics["fid"]}
        return self.counted(out, self.protocol)


def reference_features(ctx, spec: str, task: str):
    """Reference statistics that keep every feature vector (KID and precision/recall need them, not mu/sigma)."""
    ref = ctx.reference(spec, need_features=True)
    if ref.feats is None:
        raise TaskSkipped(f"reference '{ref.name}' stores no features (only mu/sigma), and {task} needs them",
                          "build the reference with `evalsuite ref build NAME --from FOLDER` (it keeps features), "
                          "pass --ref folder:PATH, or import clean-fid's *_kid.npz")
    return ref


@register
class KID(_FeatureDistanceTask):
    name = "kid"
    version = "1"
    description = "Kernel Inception Distance: cubic-kernel unbiased MMD², 100 subsets of 1000, seeded (mean ± std)"
    needs_all_features = True
    metrics = {"kid": MetricInfo("lower", "mean unbiased MMD² over subsets", primary=True),
               "kid_std": MetricInfo("lower", "standard deviation of MMD² over subsets")}

    @dataclass(frozen=True)
    class Options(SampleCountOptions):
        subsets: int = field(default=100, metadata={"help": "random subsets the MMD² is averaged over"})
        subset_size: int = field(default=1000, metadata={"help": "samples per subset (capped at the set sizes)"})

        def __post_init__(self) -> None:  # checked when the run's options are resolved, before any work
            super().__post_init__()
            if self.subsets < 1 or self.subset_size < 2:
                raise InputError(f"kid.subsets={self.subsets}, kid.subset_size={self.subset_size}",
                                 "pass at least 1 subset of at least 2 samples")

    def run(self, ctx) -> TaskOutput:
        opts, seed = self.options, ctx.options.seed
        spec = self.extractor_spec(ctx.options)
        feats = ctx.sample_features(spec, keep_features=True)
        ref = reference_features(ctx, spec, "KID")
        mean, std = kernel_distance(feats.features, ref.feats, num_subsets=opts.subsets,
                                    subset_size=opts.subset_size, seed=seed)
        return self.counted(TaskOutput(
            metrics={"kid": mean, "kid_std": std},
            details={"num_subsets": opts.subsets,
                     "subset_size": min(opts.subset_size, feats.n, len(ref.feats)), "kid_seed": seed,
                     "kernel": "(x.y/d + 1)^3", "n_reference": len(ref.feats)},
            num_samples=feats.n, skipped_samples=feats.skipped,
        ), self.feature_protocol(spec))


@register
class CMMD(_FeatureDistanceTask):
    name = "cmmd"
    version = "1"
    description = ("CMMD (Jayasumana et al. 2024, google-research cmmd): Gaussian-RBF MMD (sigma 10, x1000, the "
                   "official biased estimator) of unit-norm CLIP ViT-L/14@336px embeddings")
    needs_all_features = True
    # no per_sample: MMD is a mean over pairs of samples, not over samples
    metrics = {"cmmd": MetricInfo("lower", "1000 x biased MMD² of CLIP ViT-L/14@336px embeddings, Gaussian RBF "
                                           "kernel, sigma 10", primary=True)}
    default_extractor = "clip-l14-336"
    protocol = "cmmd-clip-l14-336-sigma10"

    @dataclass(frozen=True)
    class Options(SampleCountOptions):
        protocol_samples: int = field(default=CMMD_PROTOCOL_SAMPLES, metadata={
            "help": "the sample count of the protocol (COCO-30K, as Jayasumana et al. report CMMD); a result from "
                    "fewer samples is marked 'not comparable'; another count names its own protocol"})
        official_batch_size: int = field(default=32, metadata={
            "help": "the official compute_embeddings_for_dir batches with drop_remainder=True, so each side loses its "
                    "last N mod batch_size images (sorted file order); 32 is its default --batch_size; 0 keeps "
                    "every image (protocol ...-all)"})

    def extractor_spec(self, options) -> str:
        return self.default_extractor  # --extractor selects FID's network; CMMD is always CLIP ViT-L/14@336px

    def _kept(self, feats, side: str):
        """The first N - N mod batch_size embeddings (cmmd/io_util.py: batch(..., drop_remainder=True))."""
        batch = self.options.official_batch_size
        if batch < 0:
            raise InputError(f"cmmd.official_batch_size is {batch}",
                             "pass -o cmmd.official_batch_size=32 (official) or 0 (every image)")
        if batch == 0:
            return feats
        kept = len(feats) - len(feats) % batch
        if kept == 0:
            raise TaskSkipped(f"CMMD's official protocol drops the last N mod {batch} images of each side, and the "
                              f"{side} has only {len(feats)}", f"use at least {batch} images, or pass "
                              "-o cmmd.official_batch_size=0 to keep every image (protocol ...-all)")
        return feats[:kept]

    def run(self, ctx) -> TaskOutput:
        spec = self.extractor_spec(ctx.options)
        feats = ctx.sample_features(spec, keep_features=True)
        ref = reference_features(ctx, spec, "CMMD")
        ref_used, used = self._kept(ref.feats, "reference"), self._kept(feats.features, "sample set")
        value = cmmd(ref_used, used)  # official order: mmd(ref_embs, eval_embs) (symmetric anyway)
        batch = self.options.official_batch_size
        protocol = self.protocol + ("" if batch == 32 else "-all" if batch == 0 else f"-batch{batch}")
        return self.counted(TaskOutput(
            metrics={"cmmd": value},
            details={"sigma": CMMD_SIGMA, "scale": CMMD_SCALE, "estimator": "biased (V-statistic), float64, blockwise",
                     "n_reference": len(ref.feats), "n_reference_used": len(ref_used), "n_samples_used": len(used),
                     "drop_remainder_batch": batch},
            num_samples=feats.n, skipped_samples=feats.skipped), protocol, CMMD_PROTOCOL_SAMPLES)


def feature_space(spec: str) -> str:
    """A feature space as protocols name it: vgg16-fc2relu, inception-pool3, inception-pool3-legacy_pytorch,
    clip-vit-b-32, or the extractor spec itself (dinov2-vitl14, python:...)."""
    name, _, option = spec.partition(":")
    space = {"vgg16": "vgg16-fc2relu", "inception": "inception-pool3", "clip": "clip-vit-b-32"}.get(name, spec)
    if name == "inception" and option not in ("", "clean"):
        space += f"-{option}"
    return space


def _pr_protocol(spec: str, k: int) -> str:
    """Protocol name of precision/recall in a feature space: prc-vgg16-fc2relu-k3 (the default), prc-inception-
    pool3-k3, prc-clip-vit-b-32-k3, prc-python:...-k3; a non-clean Inception mode is named too."""
    return f"prc-{feature_space(spec)}-k{k}"


@register
class PrecisionRecall(_FeatureDistanceTask):
    name = "precision-recall"
    version = "2"  # 2: VGG-16 fc2_relu features by default (paper, torch-fidelity), was the run's Inception pass
    description = ("Improved precision and recall (k-NN manifolds of the features, Kynkäänniemi et al. 2019; "
                   "torch-fidelity's prc, k=3) on VGG-16 fc2_relu features (--pr-extractor to change)")
    needs_all_features = True
    metrics = {"precision": MetricInfo("higher", "share of generated samples inside the real k-NN manifold",
                                       primary=True),
               "recall": MetricInfo("higher", "share of real samples inside the generated k-NN manifold"),
               "f_score": MetricInfo("higher", "2PR / (P + R)")}

    @dataclass(frozen=True)
    class Options:
        k: int = field(default=3, metadata={"help": "k of the k-nearest-neighbour balls"})
        extractor: str = field(default="vgg16", metadata={
            "help": "feature space: vgg16 (the paper's and torch-fidelity's fc2_relu) | inception | clip | python:..."})

        def __post_init__(self) -> None:  # checked when the run's options are resolved, before any work
            if self.k < 1:
                raise InputError(f"precision-recall.k is {self.k}", "pass -o precision-recall.k=1 or more (--pr-k)")

    def extractor_spec(self, options) -> str:
        """This task's extractor option (default vgg16), not the run's FID extractor; the feature pass is shared
        when they agree."""
        return self.options.extractor or "vgg16"

    def run(self, ctx) -> TaskOutput:
        spec = self.extractor_spec(ctx.options)
        try:
            ref = reference_features(ctx, spec, "precision/recall")
        except IncompatibleStatsError as exc:  # e.g. an Inception-only reference: FID and KID still run
            raise TaskSkipped(f"{exc.message}; precision/recall uses --pr-extractor {spec}",
                              f"build the reference with `evalsuite ref build NAME --from FOLDER --extractor {spec}`,"
                              " pass --ref folder:PATH, or pass the reference's extractor as --pr-extractor") from exc
        feats = ctx.sample_features(spec, keep_features=True)
        k = self.options.k
        if min(feats.n, len(ref.feats)) <= k:
            raise InputError(f"precision/recall with k={k} needs more than {k} samples and reference images, got "
                             f"{feats.n} and {len(ref.feats)}", f"score more samples, or pass --pr-k below {k}")
        return TaskOutput(
            metrics=precision_recall(feats.features, ref.feats, k),
            details={"k": k, "distance": "euclidean, float64", "n_reference": len(ref.feats),
                     "feature_space": spec,
                     "rule": "x is covered when ||x - y|| <= the distance from y to its k-th nearest neighbour, "
                             "for some y of the other set"},
            num_samples=feats.n, skipped_samples=feats.skipped, protocol=_pr_protocol(spec, k),
        )


register_suite("default", ["fid", "kid"], "Image distribution quality: FID and KID (Inception, clean)")
register_suite("image-quality", ["fid", "kid", "precision-recall", "clip-fid", "cmmd", "fd-dinov2", "aesthetic"],
               "FID and KID (one Inception pass), precision/recall (VGG-16), CLIP-FID, CMMD (CLIP ViT-L/14@336px), "
               "FD-DINOv2 (DINOv2 ViT-L/14) and the LAION aesthetic predictor")
register_suite("demo", ["fid", "kid", "clip-fid", "ae-recon", "spectral", "scale-equivariance", "fvd",
                        "temporal-flickering", "video-speed"],
               "The offline demo: the demo model against its own samples at other seeds, the demo-ae autoencoder "
               "on scikit-image's photographs, and demo-video",
               options={"ref": "model:demo", "num_samples": 64, "autoencoder": "demo-ae", "video_model": "demo-video",
                        "video_ref": "model:demo-video"})
