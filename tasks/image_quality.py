"""Distribution metrics on images: FID, KID, precision/recall and CLIP-FID. They share one feature pass per
extractor."""

from __future__ import annotations

from typing import ClassVar

from evalsuite import extractors
from evalsuite.errors import InputError, TaskSkipped
from evalsuite.metrics import frechet_distance, kernel_distance, precision_recall
from tasks import register, register_suite
from tasks.base import MetricInfo, Requirements, Task, TaskOutput


class _FeatureDistanceTask(Task):
    """Shared part: the extractor a task uses, and what it needs."""

    family = "image-quality"
    sample_kind = "image"
    default_extractor: ClassVar[str] = "inception"

    def extractor_spec(self, options) -> str:
        return options.extractor or self.default_extractor

    def requirements(self, options) -> Requirements:
        return Requirements(weights=extractors.weights_needed(self.extractor_spec(options)), reference=True)


@register
class FID(_FeatureDistanceTask):
    name = "fid"
    version = "1"
    description = "Fréchet Inception Distance against reference statistics (clean-fid 'clean' preprocessing)"
    metrics = {"fid": MetricInfo("lower", "Fréchet distance of Inception pool3 features", primary=True)}

    def run(self, ctx) -> TaskOutput:
        spec = self.extractor_spec(ctx.options)
        feats = ctx.sample_features(spec)
        ref = ctx.reference(spec)
        unbiased = not ctx.options.biased_cov
        value = frechet_distance(feats.stats.mean, feats.stats.cov(unbiased), ref.mu, ref.covariance(unbiased))
        return TaskOutput(
            metrics={"fid": value},
            details={"covariance": "unbiased" if unbiased else "biased", "n_reference": ref.n,
                     "n_cached_features": feats.n_cached, "n_computed_features": feats.n_computed},
            num_samples=feats.n, skipped_samples=feats.skipped,
        )


@register
class CLIPFID(FID):
    name = "clip-fid"
    version = "1"
    description = "Fréchet distance of CLIP ViT-B/32 image embeddings (CLIP-FID, Kynkäänniemi et al. 2023)"
    metrics = {"clip-fid": MetricInfo("lower", "Fréchet distance of CLIP ViT-B/32 image features", primary=True)}
    default_extractor = "clip"

    def extractor_spec(self, options) -> str:
        return self.default_extractor  # --extractor selects FID's network; CLIP-FID is always CLIP

    def run(self, ctx) -> TaskOutput:
        out = super().run(ctx)
        out.metrics = {"clip-fid": out.metrics["fid"]}
        return out


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

    def run(self, ctx) -> TaskOutput:
        spec = self.extractor_spec(ctx.options)
        feats = ctx.sample_features(spec, keep_features=True)
        ref = reference_features(ctx, spec, "KID")
        opts = ctx.options
        mean, std = kernel_distance(feats.features, ref.feats, num_subsets=opts.kid_subsets,
                                    subset_size=opts.kid_subset_size, seed=opts.seed)
        return TaskOutput(
            metrics={"kid": mean, "kid_std": std},
            details={"num_subsets": opts.kid_subsets,
                     "subset_size": min(opts.kid_subset_size, feats.n, len(ref.feats)), "kid_seed": opts.seed,
                     "kernel": "(x.y/d + 1)^3", "n_reference": len(ref.feats)},
            num_samples=feats.n, skipped_samples=feats.skipped,
        )


@register
class PrecisionRecall(_FeatureDistanceTask):
    name = "precision-recall"
    version = "1"
    description = ("Improved precision and recall (k-NN manifolds of the features, Kynkäänniemi et al. 2019; "
                   "torch-fidelity's rule, k=3), on the run's FID features")
    needs_all_features = True
    metrics = {"precision": MetricInfo("higher", "share of generated samples inside the real k-NN manifold",
                                       primary=True),
               "recall": MetricInfo("higher", "share of real samples inside the generated k-NN manifold"),
               "f_score": MetricInfo("higher", "2PR / (P + R)")}

    def run(self, ctx) -> TaskOutput:
        spec = self.extractor_spec(ctx.options)
        feats = ctx.sample_features(spec, keep_features=True)
        ref = reference_features(ctx, spec, "precision/recall")
        k = ctx.options.pr_neighbourhood
        if min(feats.n, len(ref.feats)) <= k:
            raise InputError(f"precision/recall with k={k} needs more than {k} samples and reference images, got "
                             f"{feats.n} and {len(ref.feats)}", f"score more samples, or pass --pr-k below {k}")
        return TaskOutput(
            metrics=precision_recall(feats.features, ref.feats, k),
            details={"k": k, "distance": "euclidean, float64", "n_reference": len(ref.feats),
                     "rule": "x is covered when ||x - y|| <= the distance from y to its k-th nearest neighbour, "
                             "for some y of the other set"},
            num_samples=feats.n, skipped_samples=feats.skipped,
        )


register_suite("default", ["fid", "kid"], "Image distribution quality: FID and KID (Inception, clean)")
register_suite("image-quality", ["fid", "kid", "precision-recall", "clip-fid"],
               "FID, KID, precision/recall (one feature pass) and CLIP-FID")
register_suite("demo", ["fid", "kid", "clip-fid", "ae-recon", "spectral", "scale-equivariance", "fvd",
                        "temporal-flickering", "video-speed"],
               "The offline demo: the demo model against its own samples at other seeds, the demo-ae autoencoder "
               "on scikit-image's photographs, and demo-video",
               options={"ref": "model:demo", "num_samples": 64, "autoencoder": "demo-ae", "video_model": "demo-video",
                        "video_ref": "model:demo-video"})
