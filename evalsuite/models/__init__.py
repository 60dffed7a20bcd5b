"""Model adapters, chosen by a spec string: `demo`, `folder:PATH`, `python:package.module:factory`, `diffusers:PATH`.

The generation protocol every generator implements (see `ImageGenerator`):

    class MyModel:
        model_id = "snapgen-372m@<checkpoint sha256>"      # identifies the weights; names the sample folder
        def generate(self, prompts: list[str], seeds: list[int]) -> list[PIL.Image.Image | np.ndarray]: ...

`python:my_pkg.my_module:load` calls `load()` and expects such an object back.
"""

from evalsuite.models.base import ImageGenerator, ModelSource, register_scheme, resolve_model, schemes

__all__ = ["ImageGenerator", "ModelSource", "register_scheme", "resolve_model", "schemes"]
