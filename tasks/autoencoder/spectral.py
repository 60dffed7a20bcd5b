"""`spectral`: blockwise-DCT and radial FFT spectra of latents against the RGB inputs, with a plot."""

from __future__ import annotations

from dataclasses import dataclass, field

from evalsuite.errors import InputError
from evalsuite.spectral import SpectrumAccumulator, plot_spectra
from evalsuite.tasks import register
from evalsuite.tasks.autoencoder.common import (
    AEDataOptions,
    AERunner,
    AutoencoderTask,
    finite_items,
)
from evalsuite.tasks.base import MetricInfo, TaskOutput


@register
class Spectral(AutoencoderTask):
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

        def __post_init__(self) -> None:  # checked when the run's options are resolved, before any work
            super().__post_init__()
            if self.dct_block < 2:
                raise InputError(f"spectral.dct_block is {self.dct_block}", "pass -o spectral.dct_block=2 or more")

    def run(self, ctx) -> TaskOutput:
        runner = AERunner(ctx, self.options)
        block = self.options.dct_block

        def accumulate(shard: list[int]) -> tuple[SpectrumAccumulator, SpectrumAccumulator, int, list[dict]]:
            rgb, latent, n = SpectrumAccumulator(block), SpectrumAccumulator(block), 0
            skipped: list[dict] = []
            for batch in runner.batches(shard):
                indices, x, z = finite_items(batch, runner.encode(batch.x), runner.data.names, skipped)
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
                                             "use a smaller --dct-block or a larger --resolution")
        return TaskOutput(metrics=metrics, details=details,
                          skipped_samples=skipped, num_samples=n, artifacts={"spectrum.png": png})
