"""One registry type (evalsuite.registry.Registry) behind extractors, video extractors, model spec schemes, weights and
scoring backends: its doctests, its unknown-name errors (one line, with the known names), dict-style patching, and a
third-party package, installed with pip, adding an extractor, a video extractor, a model scheme and a detector backend
through entry points."""

from __future__ import annotations

import doctest
import json
import subprocess
import sys

import pytest

import evalsuite.registry
from evalsuite import extractors, video_features, weights
from evalsuite.errors import UnknownNameError
from evalsuite.models import base as models
from evalsuite.registry import Registry
from evalsuite.tasks.t2i import backends
from tests.plugin_install import install_plugin


def test_registry_doctests():
    result = doctest.testmod(evalsuite.registry, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("lookup,listed", [
    (lambda: extractors.build("nosuch"), ["unknown extractor 'nosuch'", "inception", "python:module:factory"]),
    (lambda: extractors.weights_needed("nosuch"), ["unknown extractor 'nosuch'", "vgg16"]),
    (lambda: video_features.build("nosuch"), ["unknown video extractor 'nosuch'", "i3d", "videomae"]),
    (lambda: models.resolve_model("nosuch:x"), ["unknown model spec 'nosuch:x'", "folder:...", "demo"]),
    (lambda: weights.get_spec("nosuch"), ["unknown weights 'nosuch'", "inception-2015-12-05", "weights list"]),
    (lambda: weights.REGISTRY["nosuch"], ["unknown weights 'nosuch'", "i3d-torchscript"]),
    (lambda: backends.resolve("detector", "nosuch"), ["unknown detector backend 'nosuch'", "torchvision-maskrcnn"]),
    (lambda: backends.resolve("color", "nosuch"), ["unknown color backend 'nosuch'", "clip-vit-l-14"]),
    (lambda: backends.resolve("vqa", "nosuch"), ["unknown vqa backend 'nosuch'", "mplug", "transformers"]),
])
def test_unknown_names_are_one_line_errors_listing_the_known_ones(lookup, listed):
    with pytest.raises(UnknownNameError) as info:
        lookup()
    err = info.value
    assert "\n" not in err.message and "\n" not in err.fix
    assert all(word in f"{err.message} {err.fix}" for word in listed), (err.message, err.fix)


def test_registries_keep_their_public_functions():
    assert {"inception", "clip", "vgg16"} <= {info.name for info in extractors.registered()}
    assert {"i3d", "videomae"} <= {info.name for info in video_features.registered()}
    assert {"demo", "folder", "python", "diffusers", "demo-video", "demo-ae"} <= set(models.schemes())
    assert {"mask2former", "torchvision-maskrcnn"} <= set(backends.registered("detector"))
    assert video_features.is_video_spec("videomae:x.pth") and not video_features.is_video_spec("inception")
    assert isinstance(weights.REGISTRY, Registry) and "vgg16-imagenet1k-v1" in dict(weights.REGISTRY)


def test_patching_an_entry_like_a_dict_is_undone(monkeypatch):
    original = weights.REGISTRY["inception-2015-12-05"]
    with monkeypatch.context() as patch:
        patch.setitem(weights.REGISTRY, "inception-2015-12-05", "stand-in")
        patch.setitem(models.SCHEMES, "test-scheme", lambda arg: arg)
        assert weights.get_spec("inception-2015-12-05") == "stand-in" and "test-scheme" in models.schemes()
    assert weights.REGISTRY["inception-2015-12-05"] is original and "test-scheme" not in models.schemes()


def test_a_name_registered_twice_is_an_error_unless_it_is_the_same_entry():
    reg = Registry("widget")
    reg.register("a", 1)
    reg.register("a", 1)  # equal entry again (a module imported twice): fine
    with pytest.raises(ValueError, match="widget 'a' is registered twice"):
        reg.register("a", 2)


PLUGIN_EXTRACTOR = '''
import torch
from torch import nn

from evalsuite import extractors, video_features
from evalsuite.hashing import sha256_state_dict
from evalsuite.preprocess import Preprocessing


class MeanColour(nn.Module):
    def forward(self, x):
        return x.float().flatten(2).mean(-1)


def _identity(option):
    return "plugin-ext/mean-colour", Preprocessing("none"), 3


def _build(option, device, offline):
    net = MeanColour()
    return extractors.Extractor("plugin-ext/mean-colour", sha256_state_dict(net), Preprocessing("none"), 3, net,
                                torch.device(device))


def _build_video(option, device, offline, sampling):
    net = MeanColour()
    prep = video_features.VideoPreprocessing(Preprocessing("none", input_dtype="uint8"), **sampling)
    return extractors.Extractor("plugin-video/mean-colour", sha256_state_dict(net), prep, 3, net, device)


extractors.register(extractors.ExtractorInfo("plugin-ext", (), "mean colour (a plugin)", _identity, _build))
VIDEO = video_features.VideoExtractorInfo("plugin-video", (), "mean colour of a clip (a plugin)", _build_video)
'''

PLUGIN_MODELS = '''
from evalsuite.models import ModelSource


class Grey:
    model_id = "plugin-grey"

    def generate(self, prompts, seeds):
        import numpy as np

        return [np.full((8, 8, 3), 128, np.uint8) for _ in seeds]


def resolve(arg):
    return ModelSource(spec=f"plugin-scheme:{arg}", model_id=f"plugin-grey-{arg}", kind="generator", generator=Grey())


class NoDetections:
    protocol = "plugin-no-detections"

    def detect(self, image):
        return []


def detector(arg, **options):
    return NoDetections()
'''

CHECK = '''
import json

import torch

from evalsuite import extractors, video_features
from evalsuite.models import resolve_model, schemes
from evalsuite.tasks.t2i import backends

ext = extractors.build("plugin-ext")
video = video_features.build("plugin-video", sampling={"num_frames": 4})
source = resolve_model("plugin-scheme:x")
print(json.dumps({
    "extractor": ext.id, "features": ext.forward(torch.full((2, 3, 8, 8), 3.0)).tolist(),
    "extractors": [info.name for info in extractors.registered()],
    "video": [video.id, video.preprocessing.num_frames, video_features.is_video_spec("plugin-video")],
    "model": [source.model_id, len(source.generator.generate(["a"], [0])), "plugin-scheme" in schemes()],
    "detector": backends.resolve("detector", "plugin-detector").protocol,
}))
'''


def test_plugin_package_adds_extractors_models_and_backends_through_entry_points(tmp_path):
    # module form (`name = pkg.module`: the module registers on import) and object form (`name = pkg.module:object`:
    # the object is registered under the entry point's name)
    env = install_plugin(tmp_path, "evalsuite_plugin_registries", {"extractors": PLUGIN_EXTRACTOR,
                                                                    "models": PLUGIN_MODELS}, {
        "evalsuite.extractors": {"plugin-ext": "evalsuite_plugin_registries.extractors"},
        "evalsuite.video_extractors": {"plugin-video": "evalsuite_plugin_registries.extractors:VIDEO"},
        "evalsuite.models": {"plugin-scheme": "evalsuite_plugin_registries.models:resolve"},
        "evalsuite.detectors": {"plugin-detector": "evalsuite_plugin_registries.models:detector"},
    })
    out = subprocess.run([sys.executable, "-c", CHECK], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["extractor"] == "plugin-ext/mean-colour" and found["features"] == [[3.0] * 3] * 2
    assert {"plugin-ext", "inception", "clip", "vgg16"} <= set(found["extractors"])
    assert found["video"] == ["plugin-video/mean-colour", 4, True]
    assert found["model"] == ["plugin-grey-x", 1, True]
    assert found["detector"] == "plugin-no-detections"
    # without the package, the same names are unknown (this process never saw the plugin)
    with pytest.raises(UnknownNameError, match="plugin-ext"):
        extractors.build("plugin-ext")
    with pytest.raises(UnknownNameError, match="plugin-scheme"):
        models.resolve_model("plugin-scheme:x")
