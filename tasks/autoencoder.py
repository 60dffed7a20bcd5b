"""Autoencoder tasks: reconstruction quality (`ae-recon`), spectral analysis of latents (`spectral`) and the
decoder's scale-equivariance error (`scale-equivariance`). All read the prepared data from the run context and
call the autoencoder through one helper, so images and videos (frame by frame for image AEs) share one path."""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from evalsuite import imagemetrics
from evalsuite.errors import InputError, MissingWeightsError, TaskSkipped
from evalsuite.metrics import frechet_distance
from evalsuite.spectral import SpectrumAccumulator, plot_spectra
from evalsuite.tasks import register, register_suite
from evalsuite.tasks.base import MetricInfo, Requirements, Task, TaskOutput


@dataclass(frozen=True)
class AEDataOptions:
    """The data an autoencoder task reconstructs (shared by the three tasks: one preparation serves them all)."""

    data: str | None = field(default=None, metadata={
        "help": "skimage (scikit-image's photographs, the default) | folder:PATH of images or videos"})
    resolution: int = field(default=256, metadata={"help": "square crop size (shorter side resized, centre crop)"})
    frames: int = field(default=16, metadata={"help": "video data: frames per clip"})


def _check_data_options(options: AEDataOptions) -> None:
    if options.resolution < 8:
        raise InputError(f"resolution is {options.resolution}", "pass -o resolution=8 or more")
    if options.frames < 1:
        raise InputError(f"frames is {options.frames}", "pass -o frames=1 or more")


class _AutoencoderTask(Task):
    """What the autoencoder tasks share: their data options, and the prepared data their results record."""

    family = "autoencoder"
    sample_kind = "autoencoder"
    Options = AEDataOptions

    def prepared_data(self, ctx: Any) -> Any:
        """The data this task's options prepared in the run (recorded in the result's provenance), or None."""
        return ctx.prepared_ae_data(self.options.data, self.options.resolution, self.options.frames)


@dataclass
class AEBatch:
    """One batch of data in the AE's layout: x in [-1, 1], (B, 3, H, W) or (B, 3, T, H, W)."""

    indices: list[int]
    x: torch.Tensor


class AERunner:
    """Feeds prepared data through an autoencoder, checking shapes and finiteness, timing each call."""

    def __init__(self, ctx: Any, options: AEDataOptions):
        _check_data_options(options)
        self.ctx = ctx
        self.source = ctx.autoencoder_source()
        self.ae = self.source.autoencoder
        self.data = ctx.ae_data(options.data, options.resolution, options.frames)
        self.device = str(getattr(self.ae, "device", ctx.device))
        self.video_ae = getattr(self.ae, "kind", "image") == "video"

    def indices(self) -> list[int]:
        return list(range(len(self.data.files)))

    def batches(self, indices: Sequence[int] | None = None) -> Iterator[AEBatch]:
        """The data items `indices` (default: all) in batches (one clip at a time for video)."""
        indices = self.indices() if indices is None else list(indices)
        size = 1 if self.data.kind == "video" else max(1, self.ctx.options.batch_size)
        for start in range(0, len(indices), size):
            idx = indices[start:start + size]
            arr = np.stack([self.data.load(i) for i in idx])  # (B, H, W, 3) or (B, T, H, W, 3) uint8
            x = torch.from_numpy(arr).float() / 127.5 - 1.0
            x = x.permute(0, 4, 1, 2, 3) if x.ndim == 5 else x.permute(0, 3, 1, 2)
            yield AEBatch(idx, x.contiguous().to(self.device))

    def _frames(self, x: torch.Tensor) -> torch.Tensor:
        """Video (B, 3, T, H, W) -> frames (B*T, 3, H, W) for an image AE."""
        b, c, t, h, w = x.shape
        return x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            if x.ndim == 5 and not self.video_ae:
                return self.ae.encode(self._frames(x))
            return self.ae.encode(x)

    def decode(self, z: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Decode and return in the layout of `like`; a changed shape is an error naming the fix."""
        with torch.inference_mode():
            out = self.ae.decode(z)
        if like.ndim == 5 and not self.video_ae:
            b, c, t, h, w = like.shape
            if out.shape == (b * t, c, h, w):
                out = out.reshape(b, t, c, h, w).permute(0, 2, 1, 3, 4)
        if tuple(out.shape) != tuple(like.shape):
            raise InputError(
                f"autoencoder {self.source.spec} decoded shape {tuple(out.shape)} from input {tuple(like.shape)}",
                "decode(encode(x)) must return x's shape: pick a -o resolution divisible by the AE's downsampling "
                "factor (and frame count by its temporal factor)")
        return out

    def sync(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()


def _finite_rows(t: torch.Tensor) -> torch.Tensor:
    return torch.isfinite(t.reshape(t.shape[0], -1)).all(dim=1)


def _finite_items(batch: AEBatch, z: torch.Tensor, names: list[str], skipped: list[dict]):
    """The batch's items whose latents are finite, as (indices, x, z); the others are counted in `skipped`.
    z's rows are per item, or per frame of each item (an image AE on video)."""
    ok = _finite_rows(z.reshape(len(batch.indices), -1))
    skipped.extend({"file": names[i], "reason": "NaN or inf in the latent"}
                   for row, i in enumerate(batch.indices) if not ok[row])
    if bool(ok.all()):
        return batch.indices, batch.x, z
    keep = ok.nonzero().flatten()
    return ([batch.indices[int(r)] for r in keep], batch.x[keep],
            z.reshape(len(batch.indices), -1, *z.shape[1:])[keep].flatten(0, 1))


def _proc_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def _ru_maxrss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


class PeakMemory:
    """Peak memory growth (MiB) while the `with` block runs: what the autoencoder's encode/decode allocate above what
    was held on entry (its weights and the input batch are not counted).
    CUDA: the caching allocator's peak (torch.cuda.max_memory_allocated after reset_peak_memory_stats) minus the
    memory allocated on entry. Linux CPU: the kernel's peak RSS (VmHWM, reset by writing 5 to /proc/self/clear_refs)
    minus VmRSS on entry; memory the C allocator already holds is reused without growth, so this is a lower bound.
    Elsewhere: growth of the process's lifetime peak RSS (ru_maxrss), 0 unless the block sets a new peak."""

    def __init__(self, device: str):
        self.device = device
        self.mib = 0.0
        self.method = ""

    def __enter__(self) -> "PeakMemory":
        if self.device.startswith("cuda"):
            torch.cuda.synchronize(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.method = "cuda: max_memory_allocated after reset_peak_memory_stats, minus allocated on entry"
            return self
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self._base = _proc_status_kib("VmRSS")
            self.method = "cpu: peak RSS (VmHWM reset via /proc/self/clear_refs) minus RSS on entry"
        except OSError:
            self._base = _ru_maxrss_mib()
            self.method = "cpu: growth of the process peak RSS (ru_maxrss; 0 unless a new process peak)"
        return self

    def __exit__(self, *exc) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize(self.device)
            self.mib = (torch.cuda.max_memory_allocated(self.device) - self._base) / 2**20
        elif self.method.startswith("cpu: peak RSS"):
            self.mib = (_proc_status_kib("VmHWM") - self._base) / 1024
        else:
            self.mib = _ru_maxrss_mib() - self._base
        self.mib = max(0.0, self.mib)


def _to_01(x: torch.Tensor) -> torch.Tensor:
    return ((x.double() + 1.0) / 2.0).clamp(0.0, 1.0)


def _frames01(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] tensor -> [0, 1] frames: video (B, 3, T, H, W) becomes (B*T, 3, H, W)."""
    if x.ndim == 5:
        b, c, t, h, w = x.shape
        x = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
    return _to_01(x)


@register
class AERecon(_AutoencoderTask):
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
                ok = _finite_rows(per_item_latent) & _finite_rows(recon)
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
        xf, rf = _frames01(x), _frames01(recon)

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
        arr = (_to_01(recon).permute(1, 2, 0).cpu().numpy() * 255.0).round().astype(np.uint8)
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


@register
class Spectral(_AutoencoderTask):
    name = "spectral"
    version = "1"
    family = "autoencoder"
    sample_kind = "autoencoder"
    description = "Blockwise-DCT and radial FFT spectra of latents vs RGB, with a plot"
    metrics = {
        "latent_high_freq_fraction": MetricInfo("lower", "fraction of latent power above half Nyquist",
                                                primary=True),
        "rgb_high_freq_fraction": MetricInfo("lower", "fraction of RGB power above half Nyquist (the data)"),
        "latent_spectral_slope": MetricInfo("lower", "slope of log power vs log frequency of the latents"),
        "rgb_spectral_slope": MetricInfo("lower", "slope of log power vs log frequency of the RGB inputs"),
        "latent_dct_high_half": MetricInfo("lower", "mean DC-normalised DCT amplitude, upper half of the zigzag"),
        "rgb_dct_high_half": MetricInfo("lower", "mean DC-normalised DCT amplitude, upper half, RGB"),
    }

    @dataclass(frozen=True)
    class Options(AEDataOptions):
        dct_block: int = field(default=8, metadata={"help": "DCT block size of the blockwise spectrum"})

    def run(self, ctx) -> TaskOutput:
        runner = AERunner(ctx, self.options)
        block = self.options.dct_block
        if block < 2:
            raise InputError(f"spectral.dct_block is {block}", "pass -o spectral.dct_block=2 or more")

        def accumulate(shard: list[int]) -> tuple[SpectrumAccumulator, SpectrumAccumulator, int, list[dict]]:
            rgb, latent, n, skipped = SpectrumAccumulator(block), SpectrumAccumulator(block), 0, []
            for batch in runner.batches(shard):
                indices, x, z = _finite_items(batch, runner.encode(batch.x), runner.data.names, skipped)
                if indices:
                    rgb.update(x.cpu().numpy())
                    latent.update(z.float().cpu().numpy())
                    n += len(indices)
            return rgb, latent, n, skipped

        rgb, latent = SpectrumAccumulator(block), SpectrumAccumulator(block)
        skipped = list(runner.data.skipped)
        n = 0
        for part_rgb, part_latent, part_n, part_skipped in ctx.map_shards(runner.indices(), accumulate,
                                                                          "latent spectra"):
            rgb.merge(part_rgb)
            latent.merge(part_latent)
            n += part_n
            skipped += part_skipped
        if n == 0:
            raise InputError(f"autoencoder {runner.source.spec} gave no finite latents", "check the autoencoder")
        r, lat = rgb.result(), latent.result()
        png = plot_spectra({"RGB input": r, f"latent ({runner.source.spec})": lat},
                           f"{runner.source.model_id} on {runner.data.spec} @ {runner.data.resolution}px")
        metrics = {"latent_high_freq_fraction": lat["high_freq_energy_fraction"],
                   "rgb_high_freq_fraction": r["high_freq_energy_fraction"],
                   "latent_spectral_slope": lat["spectral_slope"], "rgb_spectral_slope": r["spectral_slope"],
                   "rgb_dct_high_half": r["dct_high_half_mean"]}
        details = {"dct_block": block, "rgb": r, "latent": lat}
        if "dct_profile" in lat:
            metrics["latent_dct_high_half"] = lat["dct_high_half_mean"]
        else:  # the FFT view still stands; say why the DCT one is missing
            details["latent_dct_skipped"] = (f"latents of shape {lat['shape']} are smaller than the DCT block {block}; "
                                             "use a smaller -o spectral.dct_block or a larger -o resolution")
        return TaskOutput(metrics=metrics, details=details,
                          skipped_samples=skipped, num_samples=n, artifacts={"spectrum.png": png})


def downsample(x: torch.Tensor, s: int) -> torch.Tensor:
    """Area (average-pool) downsampling by `s` over the last two axes, for (N, C, H, W) or (N, C, T, H, W)."""
    if x.ndim == 5:
        b, c, t, h, w = x.shape
        y = F.avg_pool2d(x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w), s)
        return y.reshape(b, t, c, h // s, w // s).permute(0, 2, 1, 3, 4)
    return F.avg_pool2d(x, s)


@register
class ScaleEquivariance(_AutoencoderTask):
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
                indices, _, z = _finite_items(batch, runner.encode(batch.x), runner.data.names, skipped)
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
            per[f"psnr_s{s}"] = imagemetrics.psnr_from_mse(np.array(mse), data_range=2.0).tolist() if mse else []
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
            raise TaskSkipped(f"latents are smaller than every scale {self.scales}", "use a larger -o resolution")
        return TaskOutput(metrics=metrics, details=details, per_sample=per, skipped_samples=skipped, num_samples=n)


register_suite("autoencoder", ["ae-recon", "spectral", "scale-equivariance"],
               "Autoencoder: reconstruction quality, latent spectra, scale equivariance")
