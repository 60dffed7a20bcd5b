"""Model adapters, chosen by a spec string: `demo`, `folder:PATH`, `python:package.module:factory`, `diffusers:PATH`.

The generation protocol every generator implements (see `ImageGenerator`):

    class MyModel:
        model_id = "snapgen-372m@<checkpoint sha256>"      # identifies the weights; names the sample folder
        def generate(self, prompts: list[str], seeds: list[int]) -> list[PIL.Image.Image | np.ndarray]: ...

`python:my_pkg.my_module:load` calls `load()` and expects such an object back. Each image is a PIL image (8-bit
mode), a uint8 array HxWx3, or a float array/tensor in [0, 1] (1e-3 tolerance) shaped HxWx3 or 3xHxW; videos
(`generate_video`) are (T, H, W, 3) uint8 or float in [0, 1] as (T, H, W, 3) or (T, 3, H, W). Anything else is
refused with the rule, never converted (`evalsuite.imageio.image_from_model`). Without `model_id`, samples are keyed
by the spec plus a fingerprint of the module file(s) and the nn.Module attributes' weights (with a warning).
"""

from evalsuite.models.base import ImageGenerator, ModelSource, register_scheme, resolve_model, schemes

__all__ = ["ImageGenerator", "ModelSource", "register_scheme", "resolve_model", "schemes"]
