"""Spectral views of images and latents, streamed over batches:

* blockwise 2D DCT-II (orthonormal, block B, default 8): mean |coefficient| per position over blocks, channels and
  samples, in JPEG zigzag order, divided by the DC entry of that mean (per-block division would explode on
  zero-mean latents);
* radially averaged 2D FFT power spectrum of each mean-removed channel, on frequencies normalised to Nyquist = 1.

Summaries that rank variants: the fraction of (non-DC) power above half the Nyquist frequency, the slope of
log10 power against log10 frequency, and the mean normalised DCT amplitude over the upper half of the zigzag.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import scipy.fft


def zigzag_order(block: int) -> list[tuple[int, int]]:
    """JPEG zigzag: anti-diagonals in turn, alternating direction, starting (0, 0), (0, 1), (1, 0), (2, 0), ..."""
    order = []
    for s in range(2 * block - 1):
        diagonal = [(i, s - i) for i in range(block) if 0 <= s - i < block]
        order.extend(diagonal if s % 2 else diagonal[::-1])
    return order


def _as_images(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) or (N, C, T, H, W) -> (M, H, W) float64 planes."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 5:
        x = x.transpose(0, 2, 1, 3, 4).reshape(-1, x.shape[1], x.shape[3], x.shape[4])
    if x.ndim != 4:
        raise ValueError(f"expected (N, C, H, W) or (N, C, T, H, W), got shape {x.shape}")
    return x.reshape(-1, x.shape[2], x.shape[3])


@dataclass
class SpectrumAccumulator:
    """Sums over batches; `result()` turns them into the two curves and the summary scalars."""

    block: int = 8
    dct_sum: np.ndarray | None = None
    dct_count: int = 0
    radial_sum: np.ndarray | None = None
    radial_count: np.ndarray | None = None
    power_total: float = 0.0
    power_high: float = 0.0
    shape: tuple[int, int] | None = None
    notes: list[str] = field(default_factory=list)

    def update(self, x: np.ndarray) -> None:
        planes = _as_images(x)
        _, h, w = planes.shape
        if self.shape is None:
            self.shape = (h, w)
        elif self.shape != (h, w):
            raise ValueError(f"spectra need one size per accumulator: got {(h, w)} after {self.shape}")
        self._update_dct(planes)
        self._update_fft(planes)

    def _update_dct(self, planes: np.ndarray) -> None:
        b = self.block
        m, h, w = planes.shape
        hb, wb = h // b, w // b
        if hb == 0 or wb == 0:
            if "dct" not in self.notes:
                self.notes.append("dct")
            return
        blocks = planes[:, :hb * b, :wb * b].reshape(m, hb, b, wb, b).transpose(0, 1, 3, 2, 4)
        coefs = np.abs(scipy.fft.dctn(blocks, type=2, axes=(-2, -1), norm="ortho"))
        total = coefs.reshape(-1, b, b).sum(axis=0)
        self.dct_sum = total if self.dct_sum is None else self.dct_sum + total
        self.dct_count += m * hb * wb

    def _update_fft(self, planes: np.ndarray) -> None:
        m, h, w = planes.shape
        centred = planes - planes.mean(axis=(1, 2), keepdims=True)
        power = (np.abs(np.fft.fft2(centred)) ** 2 / (h * w)).sum(axis=0)  # summed over planes
        radius = radial_frequency(h, w)
        nbins = min(h, w) // 2
        bins = np.rint(radius * nbins).astype(int)
        valid = (bins >= 1) & (bins <= nbins)
        sums = np.bincount(bins[valid], weights=power[valid], minlength=nbins + 1)[1:]
        counts = np.bincount(bins[valid], minlength=nbins + 1)[1:] * m
        if self.radial_sum is None:
            self.radial_sum, self.radial_count = sums, counts
        else:
            self.radial_sum, self.radial_count = self.radial_sum + sums, self.radial_count + counts
        nonzero = radius > 0
        self.power_total += float(power[nonzero].sum())
        self.power_high += float(power[radius > 0.5].sum())

    def merge(self, other: "SpectrumAccumulator") -> None:
        """Add another accumulator's sums (another rank's shard); both must hold one image size."""
        if other.radial_sum is None:
            return
        if self.radial_sum is None or self.radial_count is None:  # (set together)
            self.__dict__.update({k: (v.copy() if isinstance(v, np.ndarray) else v)
                                  for k, v in vars(other).items() if k != "notes"})
            self.notes = sorted(set(self.notes) | set(other.notes))
            return
        if self.shape != other.shape or self.block != other.block:
            raise ValueError(f"cannot merge spectra of {other.shape} (block {other.block}) into {self.shape} "
                             f"(block {self.block})")
        if other.dct_sum is not None:
            self.dct_sum = other.dct_sum.copy() if self.dct_sum is None else self.dct_sum + other.dct_sum
        self.dct_count += other.dct_count
        self.radial_sum = self.radial_sum + other.radial_sum
        self.radial_count = self.radial_count + other.radial_count
        self.power_total += other.power_total
        self.power_high += other.power_high
        self.notes = sorted(set(self.notes) | set(other.notes))

    def result(self) -> dict:
        if self.radial_sum is None or self.radial_count is None:
            raise ValueError("no data was accumulated")
        out: dict = {"shape": list(self.shape or ())}
        if self.dct_sum is not None:
            mean_abs = self.dct_sum / self.dct_count
            zz = np.array([mean_abs[i, j] for i, j in zigzag_order(self.block)])
            profile = zz / zz[0] if zz[0] > 0 else zz
            out["dct_profile"] = profile.tolist()
            out["dct_high_half_mean"] = float(profile[len(profile) // 2:].mean())
        nbins = len(self.radial_sum)
        freqs = np.arange(1, nbins + 1) / nbins
        power = self.radial_sum / np.maximum(self.radial_count, 1)
        out["radial_freq"] = freqs.tolist()
        out["radial_power"] = power.tolist()
        out["high_freq_energy_fraction"] = self.power_high / self.power_total if self.power_total > 0 else 0.0
        ok = power > 0
        out["spectral_slope"] = float(np.polyfit(np.log10(freqs[ok]), np.log10(power[ok]), 1)[0]) if ok.sum() >= 2 \
            else float("nan")
        return out


def radial_frequency(h: int, w: int) -> np.ndarray:
    """|f| per FFT bin, normalised so that the Nyquist frequency (0.5 cycles/pixel) is 1."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    return np.sqrt(fy**2 + fx**2) / 0.5


def plot_spectra(curves: dict[str, dict], title: str) -> bytes:
    """PNG overlaying each curve set (e.g. RGB vs latent): zigzag DCT profile and radial power spectrum."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, res in curves.items():
        if "dct_profile" in res:
            ax1.plot(np.arange(len(res["dct_profile"])), res["dct_profile"], label=label)
        ax2.loglog(res["radial_freq"], np.maximum(res["radial_power"], 1e-30),
                   label=f"{label} (slope {res['spectral_slope']:.2f}, >½Nyq {res['high_freq_energy_fraction']:.3f})")
    ax1.set(yscale="log", xlabel="zigzag index", ylabel="mean |DCT coef| / DC", title="blockwise DCT")
    ax2.set(xlabel="frequency (Nyquist = 1)", ylabel="power", title="radially averaged FFT power")
    ax2.axvline(0.5, color="grey", lw=0.8, ls=":")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
