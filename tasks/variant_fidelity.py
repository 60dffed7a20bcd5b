"""`variant-fidelity`: how close a variant's samples are to the reference variant's at the same prompt and seed.

Distillation, step reduction and weight compression all ask one question first: does the cheaper variant still
make the same images? Sample i of the scored variant and of the reference variant use the same prompt and seed
(SEED + i), so the pair differs only by what the knobs changed. PSNR: 8-bit images in [0, 1], the PSNR of the mean
squared error over all pairs (like ae-recon's `psnr`; +inf only for an identical set); SSIM: torchmetrics' Gaussian
11, sigma 1.5; both per sample for bootstrap CIs.

The reference is the model at its knobs' defaults (`demo`: the ideal image, no sampler), or
`-o variant-fidelity.reference=SPEC`: a full model spec, or `?knob=value&...` for the same model with other knobs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from evalsuite import imagemetrics, knobs
from evalsuite.errors import InputError, TaskSkipped
from evalsuite.imageio import read_rgb
from evalsuite.models import resolve_model
from evalsuite.tasks import register
from evalsuite.tasks.base import MetricInfo, TaskOutput
from evalsuite.tasks.base import Task as _Task


@register
class VariantFidelity(_Task):
    name = "variant-fidelity"
    version = "1"
    family = "image-quality"
    sample_kind = "image"
    description = ("Fidelity to the reference variant: PSNR and SSIM of each sample against the reference "
                   "variant's sample at the same prompt and seed (weight-free)")
    metrics = {
        "psnr": MetricInfo("higher", "PSNR of the mean squared error over all pairs, 8-bit images in [0, 1] "
                                     "(+inf only if every pair is identical)", primary=True, allow_inf=True,
                           unit="dB", per_sample="mse", aggregate="psnr_of_mean"),
        "ssim": MetricInfo("higher", "mean SSIM to the reference variant's sample (torchmetrics, Gaussian 11, "
                                     "sigma 1.5)", per_sample="ssim"),
    }

    @dataclass(frozen=True)
    class Options:
        reference: str | None = field(default=None, metadata={
            "help": "the reference variant: a model spec, or ?knob=value&... (default: the model's knob defaults)"})

    def run(self, ctx) -> TaskOutput:
        source = ctx.source
        if source.kind != "generator":
            raise TaskSkipped(f"model {source.spec} is not a generator: there is no variant to compare",
                              "score a generator variant (e.g. demo?steps=4), or give -o variant-fidelity.reference")
        ref_spec = self._reference_spec(source)
        ref = resolve_model(ref_spec)
        if ref.kind != "generator":
            raise InputError(f"the reference variant {ref_spec} is not a generator",
                             "pass a generator spec, or ?knob=value& for the scored model's other knob values")
        files = ctx.sample_files()
        ref_files = ctx.samples_of(ref, ctx.options.seed)
        if len(ref_files) != len(files):
            raise InputError(f"the reference variant made {len(ref_files)} samples for {len(files)}",
                             "report this; both sides use the run's prompts and seeds")

        def score(pairs: list) -> list:
            out: list[dict | tuple[float, float]] = []
            for mine, theirs in pairs:
                try:
                    a, b = read_rgb(mine), read_rgb(theirs)
                except InputError as exc:
                    out.append({"file": str(mine), "reason": exc.message})
                    continue
                if a.shape != b.shape:
                    out.append({"file": str(mine), "reason": f"size {a.shape[1]}x{a.shape[0]} differs from the "
                                f"reference variant's {b.shape[1]}x{b.shape[0]}"})
                    continue
                x = torch.tensor(a).permute(2, 0, 1)[None].double() / 255.0
                y = torch.tensor(b).permute(2, 0, 1)[None].double() / 255.0
                mse = imagemetrics.mse_per_sample(x, y)
                out.append((float(mse[0]), float(imagemetrics.ssim_per_sample(x, y)[0])))
            return out

        results = ctx.map_samples(list(zip(files, ref_files)), score, "variant fidelity")
        kept = [(str(f), r) for f, r in zip(files, results) if not isinstance(r, dict)]
        skipped = [r for r in results if isinstance(r, dict)]
        if not kept:
            raise InputError(f"no sample could be compared ({len(skipped)} skipped)", "check the samples")
        mse = np.array([r[0] for _, r in kept])
        psnr = np.asarray(imagemetrics.psnr_from_mse(mse), dtype=float)
        ssim = [r[1] for _, r in kept]
        info = source.info.get("variant", {})
        return TaskOutput(
            metrics={"psnr": imagemetrics.pooled_psnr(mse), "ssim": float(np.mean(ssim))},
            details={"reference": {"spec": ref.spec, "model_id": ref.model_id,
                                   "variant_id": ref.info.get("variant", {}).get("id")},
                     "variant": info or None, "pairs": len(kept),
                     "pairing": "sample i of both variants: prompt i mod P, seed SEED + i"},
            per_sample={"name": [n for n, _ in kept], "mse": mse.tolist(), "psnr": psnr.tolist(), "ssim": ssim},
            skipped_samples=skipped, num_samples=len(kept), protocol=f"fidelity-to:{ref.model_id}")

    def _reference_spec(self, source) -> str:
        given = self.options.reference
        base, _ = knobs.split_spec(source.spec)
        if given:
            return base + given if given.startswith("?") else given
        if not knobs.declared(source.generator):
            raise TaskSkipped(f"model {source.spec} declares no knobs, so it has no default reference variant",
                              "pass -o variant-fidelity.reference=SPEC (the model to compare against)")
        return base
