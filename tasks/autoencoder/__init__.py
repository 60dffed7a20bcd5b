"""Autoencoder tasks: reconstruction quality (`ae-recon`), spectral analysis of latents (`spectral`) and the
decoder's scale-equivariance error (`scale-equivariance`), one module each. All read the prepared data from the run
context and call the autoencoder through one runner (`common.AERunner`), so images and videos (frame by frame for
image AEs) share one path."""

from evalsuite.tasks import register_suite
from evalsuite.tasks.autoencoder.common import AEBatch, AEDataOptions, AERunner, PeakMemory
from evalsuite.tasks.autoencoder.equivariance import ScaleEquivariance, downsample
from evalsuite.tasks.autoencoder.recon import AERecon
from evalsuite.tasks.autoencoder.spectral import Spectral

register_suite("autoencoder", ["ae-recon", "spectral", "scale-equivariance"],
               "Autoencoder: reconstruction quality, latent spectra, scale equivariance")

__all__ = ["AEBatch", "AEDataOptions", "AERecon", "AERunner", "PeakMemory", "ScaleEquivariance", "Spectral",
           "downsample"]
