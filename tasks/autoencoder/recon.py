"""`ae-recon`: reconstruction quality (PSNR, SSIM, MS-SSIM, LPIPS, rFID), compression, speed and memory."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from evalsuite import imagemetrics
from evalsuite.errors import InputError, MissingWeightsError, TaskSkipped
from evalsuite.metrics import frechet_distance
from evalsuite.tasks import register
from evalsuite.tasks.autoencoder.common import (
    AERunner,
    AutoencoderTask,
    PeakMemory,
    finite_rows,
    frames01,
    to_01,
)
from evalsuite.tasks.base import MetricInfo, Requirements, TaskOutput


@register
class AERecon(AutoencoderTask):
    name = "ae-recon"
    version = "2"
    family = "autoencoder"
    sample_kind = "autoencoder"
    description = "Autoencoder reconstruction: PSNR, SSIM, MS-SSIM, LPIPS, rFID, compression, speed, memory"
    metrics = {
        "psnr_mean": MetricInfo("higher", "mean of per-image PSNR (a video: per frame; dB, range [0, 1]); +inf if "
                                "any image is exact", primary=True, allow_inf=True, unit="dB", per_sample="psnr"),
        "psnr": MetricInfo("higher", "PSNR of the pooled MSE over all samples (dB, range [0, 1])",
                           allow_inf=True, unit="dB", per_sample="mse", aggregate="psnr_of_mean"),
        "ssim": MetricInfo("higher", "mean SSIM (torchmetrics, Gaussian 11, σ 1.5)", per_sample="ssim"),
        "ms_ssim": MetricInfo("higher", "mean MS-SSIM (torchmetrics; needs sides >= 161)", per_sample="ms_ssim"),
        "lpips": MetricInfo("lower", "mean LPIPS v0.1 AlexNet", per_sample="lpips"),
        "rfid": MetricInfo("lower", "FID of reconstructions against the originals (8-bit PNGs)"),
        "compression_ratio": MetricInfo("higher", "input elements / latent elements"),
        "encode_ms": MetricInfo("lower", "encode wall time per sample", unit="ms"),
        "decode_ms": MetricInfo("lower", "decode wall time per sample", unit="ms"),
        "peak_memory_mb": MetricInfo("lower", "peak memory added by encode+decode of one batch above what was "
                                     "held before (activations, latents, outputs; weights excluded), max over batches",
                                     unit="MiB"),
    }

    def requirements(self, options) -> Requirements:
        from evalsuite import extractors

        return Requirements(optional_weights=("alexnet-imagenet",
                                              *extractors.weights_needed(options.extractor or "inception")))

    def run(self, ctx) -> TaskOutput:
        runner = AERunner(ctx, self.options)
        lpips = self._lpips(ctx)
        names = runner.data.names
        recon_dir = ctx.store.root / "samples" / "ae" / ctx.store_key(runner.source.model_id, runner.data)
        memory_method: list[str] = []

        def reconstruct(shard: list[int]) -> list[dict]:  # per item: its scores and timing, or a skip record
            records: dict[int, dict] = {}
            for batch in runner.batches(shard):
                with PeakMemory(runner.device) as memory:
                    runner.sync()
                    t0 = time.perf_counter()
                    z = runner.encode(batch.x)
                    runner.sync()
                    t1 = time.perf_counter()
                    recon = runner.decode(z, batch.x)
                    runner.sync()
                    t2 = time.perf_counter()
                memory_method[:] = [memory.method]
                per_item_latent = z.reshape(len(batch.indices), -1)  # an image AE on video: all frames of an item
                latent_shape = list(z.shape[1:]) if z.shape[0] == len(batch.indices) else [
                    z.shape[0] // len(batch.indices), *z.shape[1:]]
                ratio = batch.x[0].numel() / per_item_latent[0].numel()
                ok = finite_rows(per_item_latent) & finite_rows(recon)
                keep = [row for row in range(len(batch.indices)) if ok[row]]
                for row, i in enumerate(batch.indices):
                    if not ok[row]:
                        records[i] = {"file": names[i], "reason": "NaN or inf in the latent or the reconstruction"}
                if not keep:
                    continue
                scores = self._score(batch.x[keep], recon[keep], lpips)
                for j, row in enumerate(keep):  # a batch's wall time is shared by its usable items
                    i = batch.indices[row]
                    records[i] = {**{k: v[j] for k, v in scores.items()}, "name": names[i], "ratio": ratio,
                                  "encode_s": (t1 - t0) / len(keep), "decode_s": (t2 - t1) / len(keep),
                                  "latent_shape": latent_shape, "peak_mb": memory.mib}
                    if batch.x.ndim == 4:  # rFID compares 8-bit reconstructions with the originals
                        records[i]["files"] = (str(self._write_png(recon_dir / f"{i:05d}.png", recon[row])),
                                               str(runner.data.files[i]))
            return [records[i] for i in shard]

        results = ctx.map_samples(runner.indices(), reconstruct, "autoencoder reconstruction")
        done = [r for r in results if "reason" not in r]
        skipped = list(runner.data.skipped) + [r for r in results if "reason" in r]
        if not done:
            raise InputError(f"autoencoder {runner.source.spec} produced no finite reconstruction "
                             f"({len(skipped)} skipped)", "check the autoencoder's outputs for NaN/inf")
        n_done = len(done)
        per = {k: [r[k] for r in done] for k in ("name", "mse", "psnr", "ssim", "ms_ssim", "lpips")}
        enc_time, dec_time = sum(r["encode_s"] for r in done), sum(r["decode_s"] for r in done)
        ratio, latent_shape = done[-1]["ratio"], done[-1]["latent_shape"]
        recon_files = [Path(r["files"][0]) for r in done if "files" in r]
        orig_files = [Path(r["files"][1]) for r in done if "files" in r]
        mse = np.array(per["mse"])
        psnr = np.array(per["psnr"])
        metrics = {"psnr_mean": imagemetrics.mean_psnr(psnr), "psnr": imagemetrics.pooled_psnr(mse),
                   "ssim": float(np.mean(per["ssim"])),
                   "compression_ratio": float(ratio), "encode_ms": 1000 * enc_time / (n_done + 0.0),
                   "decode_ms": 1000 * dec_time / (n_done + 0.0)}
        finite = psnr[np.isfinite(psnr)]
        details: dict[str, Any] = {"latent_shape": latent_shape,
                                   "psnr_infinite_samples": int(np.sum(~np.isfinite(psnr))),
                                   "psnr_headline": "psnr_mean: the mean of per-image PSNR, as autoencoder papers "
                                   "print it (torchmetrics PeakSignalNoiseRatio(data_range=1, dim=(1, 2, 3))); +inf "
                                   "when any image is reconstructed exactly. psnr pools the MSE over all samples "
                                   "(the PeakSignalNoiseRatio class default, dim=None)",
                                   "psnr_mean_finite_only": float(np.mean(finite)) if len(finite) else None,
                                   "reconstructions_dir": str(recon_dir.relative_to(ctx.store.root)),
                                   "metric_space": "float reconstructions clamped to [0, 1]",
                                   "timing_note": "wall time of whole batches divided by their size"}
        if per["ms_ssim"] and per["ms_ssim"][0] is not None:
            metrics["ms_ssim"] = float(np.mean(per["ms_ssim"]))
        else:
            details["ms_ssim_skipped"] = f"images under {imagemetrics.MS_SSIM_MIN_SIDE}px a side"
        if lpips is not None and not isinstance(lpips, str):
            metrics["lpips"] = float(np.mean(per["lpips"]))
            details["lpips"] = lpips.provenance
        else:
            details["lpips_skipped"] = lpips
        rfid, note = self._rfid(ctx, recon_files, orig_files)
        if rfid is not None:
            metrics["rfid"] = rfid
        else:
            details["rfid_skipped"] = note
        metrics["peak_memory_mb"] = max(r["peak_mb"] for r in done)
        details["peak_memory_method"] = (memory_method[0] if memory_method else "") + \
            "; the max over all batches (each rank measures its own process)"
        per = {k: v for k, v in per.items() if v and v[0] is not None}
        return TaskOutput(metrics=metrics, details=details, per_sample=per, skipped_samples=skipped,
                          num_samples=n_done)

    @staticmethod
    def _lpips(ctx):
        try:
            return imagemetrics.LPIPS(ctx.device, ctx.options.offline)
        except MissingWeightsError as exc:
            return f"{exc.message}; fix: {exc.fix}"

    @staticmethod
    def _score(x: torch.Tensor, recon: torch.Tensor, lpips) -> dict[str, list]:
        """Per-sample metrics (None where a metric does not apply); a video's per-frame values are averaged over its
        frames."""
        frames = x.shape[2] if x.ndim == 5 else 1
        xf, rf = frames01(x), frames01(recon)

        def per_video(values):
            return np.asarray(values).reshape(-1, frames).mean(axis=1).tolist()

        mse = imagemetrics.mse_per_sample(xf, rf)
        ms = imagemetrics.ms_ssim_per_sample(xf, rf)
        use_lpips = lpips is not None and not isinstance(lpips, str)
        return {"mse": per_video(mse), "psnr": per_video(imagemetrics.psnr_from_mse(mse)),
                "ssim": per_video(imagemetrics.ssim_per_sample(xf, rf)),
                "ms_ssim": per_video(ms) if ms is not None else [None] * len(x),
                "lpips": per_video(lpips(xf, rf)) if use_lpips else [None] * len(x)}

    @staticmethod
    def _write_png(path, recon: torch.Tensor):
        arr = (to_01(recon).permute(1, 2, 0).cpu().numpy() * 255.0).round().astype(np.uint8)
        from evalsuite.fsutil import atomic_write

        atomic_write(path, lambda tmp: Image.fromarray(arr).save(tmp, format="PNG"), suffix=".png.tmp")
        return path

    @staticmethod
    def _rfid(ctx, recon_files, orig_files) -> tuple[float | None, str | None]:
        if len(recon_files) < 2:
            return None, "rFID needs at least 2 image reconstructions (video rFVD comes with the FVD task)"
        spec = ctx.options.extractor or "inception"
        try:
            ctx.extractor(spec)
        except TaskSkipped as skip:
            return None, f"{skip.reason}; fix: {skip.fix}"
        recon = ctx.features_of(recon_files, spec, "reconstruction")
        orig = ctx.features_of(orig_files, spec, "original")
        return frechet_distance(recon.stats.mean, recon.stats.cov(), orig.stats.mean, orig.stats.cov()), None
