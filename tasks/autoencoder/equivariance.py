"""`scale-equivariance`: the decoder's error ||Dec(down_s z) - down_s Dec(z)|| for s in {2, 4}."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from evalsuite import imagemetrics
from evalsuite.errors import InputError, TaskSkipped
from evalsuite.tasks import register
from evalsuite.tasks.autoencoder.common import (
    AERunner,
    AutoencoderTask,
    finite_items,
)
from evalsuite.tasks.base import MetricInfo, TaskOutput


def downsample(x: torch.Tensor, s: int) -> torch.Tensor:
    """Area (average-pool) downsampling by `s` over the last two axes, for (N, C, H, W) or (N, C, T, H, W)."""
    if x.ndim == 5:
        b, c, t, h, w = x.shape
        y = F.avg_pool2d(x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w), s)
        return y.reshape(b, t, c, h // s, w // s).permute(0, 2, 1, 3, 4)
    return F.avg_pool2d(x, s)


@register
class ScaleEquivariance(AutoencoderTask):
    name = "scale-equivariance"
    version = "1"
    family = "autoencoder"
    sample_kind = "autoencoder"
    description = "Decoder scale-equivariance error ‖Dec(down_s z) − down_s Dec(z)‖, s in {2, 4}"
    metrics = {
        "eq_rel_mse_s2": MetricInfo("lower", "relative MSE, s = 2", primary=True),
        "eq_psnr_s2": MetricInfo("higher", "PSNR between the two paths, s = 2 (range [-1, 1])", allow_inf=True,
                                 unit="dB", per_sample="mse_s2", aggregate="psnr_of_mean", data_range=2.0),
        "eq_rel_mse_s4": MetricInfo("lower", "relative MSE, s = 4"),
        "eq_psnr_s4": MetricInfo("higher", "PSNR between the two paths, s = 4 (range [-1, 1])", allow_inf=True,
                                 unit="dB", per_sample="mse_s4", aggregate="psnr_of_mean", data_range=2.0),
    }
    scales = (2, 4)

    def run(self, ctx) -> TaskOutput:
        runner = AERunner(ctx, self.options)
        scales = self.scales

        def measure(shard: list[int]) -> list[dict]:  # per item: its errors at each scale, or a skip record
            records: dict[int, dict] = {}
            for batch in runner.batches(shard):
                skipped: list[dict] = []
                indices, _, z = finite_items(batch, runner.encode(batch.x), runner.data.names, skipped)
                records.update({i: rec for i, rec in zip([i for i in batch.indices if i not in indices], skipped)})
                if not indices:
                    continue
                rows: list[dict] = [{"name": runner.data.names[i], "too_small": []} for i in indices]
                for s in scales:
                    h, w = z.shape[-2:]
                    if h < s or w < s:
                        for row in rows:
                            row["too_small"].append(s)
                        continue
                    zc = z[..., : h - h % s, : w - w % s]
                    with torch.inference_mode():
                        full = runner.ae.decode(zc)
                        small = runner.ae.decode(downsample(zc, s))
                    target = downsample(full, s).double()
                    if small.shape != target.shape:
                        raise InputError(f"Dec(down_{s}(z)) has shape {tuple(small.shape)} but down_{s}(Dec(z)) "
                                         f"has {tuple(target.shape)}", "the decoder must upsample by a fixed factor")
                    # one value per item: an image AE on video decodes frames, summed here over each video
                    err = ((small.double() - target) ** 2).reshape(len(indices), -1).sum(1)
                    ref = (target ** 2).reshape(len(indices), -1).sum(1)
                    count = target.numel() // len(indices)
                    for row, e, r in zip(rows, err.tolist(), ref.tolist()):
                        row.update({f"err_s{s}": e, f"ref_s{s}": r, f"rel_mse_s{s}": e / max(r, 1e-30),
                                    f"mse_s{s}": e / count})
                records.update(zip(indices, rows))
            return [records[i] for i in shard]

        results = ctx.map_samples(runner.indices(), measure, "scale equivariance")
        done = [r for r in results if "reason" not in r]
        skipped = list(runner.data.skipped) + [r for r in results if "reason" in r]
        n = len(done)
        too_small = {s for r in done for s in r["too_small"]}
        per: dict[str, list] = {"name": [r["name"] for r in done]}
        for s in scales:
            if s in too_small:
                continue
            mse = [r[f"mse_s{s}"] for r in done]
            per[f"rel_mse_s{s}"] = [r[f"rel_mse_s{s}"] for r in done]
            per[f"psnr_s{s}"] = np.asarray(imagemetrics.psnr_from_mse(np.array(mse), data_range=2.0)).tolist() \
                if mse else []
            per[f"mse_s{s}"] = mse
        sums = {s: [sum(r.get(f"err_s{s}", 0.0) for r in done), sum(r.get(f"ref_s{s}", 0.0) for r in done)]
                for s in scales}
        if n == 0:
            raise InputError(f"autoencoder {runner.source.spec} gave no finite latents", "check the autoencoder")
        metrics, details = {}, {"downsampling": "area (average pooling)", "latent_too_small_for": sorted(too_small)}
        for s in self.scales:
            if s in too_small or not per.get(f"mse_s{s}"):
                continue
            metrics[f"eq_rel_mse_s{s}"] = sums[s][0] / sums[s][1] if sums[s][1] > 0 else 0.0
            metrics[f"eq_psnr_s{s}"] = imagemetrics.pooled_psnr(np.array(per[f"mse_s{s}"]), data_range=2.0)
        if not metrics:
            raise TaskSkipped(f"latents are smaller than every scale {self.scales}", "use a larger --resolution")
        return TaskOutput(metrics=metrics, details=details, per_sample=per, skipped_samples=skipped, num_samples=n)
