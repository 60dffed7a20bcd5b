"""T2I-CompBench (`t2i-compbench`): the prompt files, the three official formulas and the task end to end.

* BLIP-VQA (colour / shape / texture): the network is checked against Salesforce's own BLIP code as published on
  the registry, LAVIS (`salesforce-lavis` 1.0.2: `BlipVQA.forward_encoder`, `med.py`'s BERT encoder / decoder,
  `vit.py`'s ViT, the same code as T2I-CompBench's BLIPvqa_eval/models), built tiny with random weights; LAVIS's
  `med.py` imports helpers transformers 5 removed, so it runs in a subprocess with `.official/transformers4-env`
  first on the path. The first-token P(yes) / (P(yes) + P(no)) of T2I-CompBench's `vqa_prob`
  (BLIPvqa_eval/models/blip_vqa.py L133-147, not in LAVIS) is written out there as those lines read. The same
  weights, mapped to transformers' BlipForQuestionAnswering (HF's conversion names), go through our loader.
  The phrase rule and the product (BLIP_vqa.py) are hand-worked cases.
* Spatial: UniDet and 2D_spatial_eval.py do not install; hand-worked cases citing its lines.
* Non-spatial: OpenAI's `clip` package (openai-clip 1.0.1: `build_model`, `_transform`, `tokenize`) on a tiny CLIP,
  the cosine as CLIP_similarity.py L72-80 computes it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from evalsuite.errors import InputError, TaskSkipped
from evalsuite.tasks.compbench import blip_vqa, prompts, spatial
from tests.official import OFFICIAL_DIR, official

TRANSFORMERS4 = OFFICIAL_DIR / "transformers4-env"


# ---------------------------------------------------------------- a stand-in for spaCy's parse (tests only)
class _Token:
    def __init__(self, text: str, pos: str):
        self.text, self.pos_ = text, pos


class _Chunk:
    def __init__(self, text: str):
        self.text = text


class _Doc(list):
    noun_chunks: list


class FakeNLP:
    """Scripted parses: prompt -> ([(token, POS)], [noun chunk]) (what en_core_web_sm would give)."""

    def __init__(self, parses: dict):
        self.parses = parses

    def __call__(self, text: str) -> _Doc:
        tokens, chunks = self.parses[text]
        doc = _Doc(_Token(t, p) for t, p in tokens)
        doc.noun_chunks = [_Chunk(c) for c in chunks]
        return doc


# ---------------------------------------------------------------- prompt files
def _repo(tmp_path: Path) -> Path:
    root = tmp_path / "T2I-CompBench"
    d = root / "examples" / "dataset"
    d.mkdir(parents=True)
    (d / "color_val.txt").write_text("a green bench and a blue bowl\na red car\tignored column\n\n")
    (d / "spatial_val.txt").write_text("a girl on the left of a dog\na cat near a car")
    (d / "non_spatial_val.txt").write_text("A person is holding a red umbrella.")
    return root


def test_prompt_files_read_as_inference_eval_reads_them(tmp_path):
    root = _repo(tmp_path)
    for where in (root, root / "examples", root / "examples" / "dataset"):
        assert prompts.dataset_dir(where) == root / "examples" / "dataset"
    # inference_eval.py L86-88: splitlines, strip("\n"), first tab-separated column
    assert prompts.read_prompts(prompts.prompt_file(root, "color")) == ["a green bench and a blue bowl", "a red car"]
    with pytest.raises(TaskSkipped, match="shape_val.txt"):
        prompts.prompt_file(root, "shape")
    with pytest.raises(TaskSkipped, match="prompt files"):
        prompts.dataset_dir(tmp_path / "nowhere")


def test_categories_and_official_names(tmp_path):
    assert prompts.parse_categories("color, spatial,color") == ("color", "spatial")
    with pytest.raises(InputError, match="not covered"):
        prompts.parse_categories("numeracy")
    with pytest.raises(InputError, match="unknown"):
        prompts.parse_categories("colour")
    assert prompts.image_name("a red car", 12) == "a red car_000012.png"
    assert prompts.prompt_of("a red car_000012.png") == "a red car"
    folder = tmp_path / "samples"
    folder.mkdir()
    for name in ("b_000010.png", "a_000002.png", "c_000001.png"):
        Image.new("RGB", (8, 8)).save(folder / name)
    # BLIP_vqa.py L21 / CLIP_similarity.py L48: sorted by the number after the last '_'
    assert [p.name for p in prompts.official_samples(folder)] == ["c_000001.png", "a_000002.png", "b_000010.png"]


# ---------------------------------------------------------------- spatial: 2D_spatial_eval.py, hand-worked
B = spatial.Box


def test_locality_is_the_first_vocabulary_phrase_found():
    # L168-174: substring search in vocab order
    assert spatial.locality("a mouse on side of a key") == "on side of"
    assert spatial.locality("a girl on the top of a frog") == "on the top of"
    assert spatial.locality("a cat on top of a car") == "on top of"
    assert spatial.locality("a cat nearby a car") == "near"  # substring: 'nearby' contains 'near'
    assert spatial.locality("a cat and a car") is None


def test_determine_position_hand_worked():
    left, right = B(0, 0, 100, 100), B(200, 0, 300, 100)
    # L56-60: dx = 250 - 50 = 200 > 0, |dx| > |dy| = 0, IoU 0 < 0.1 -> 1
    assert spatial.determine_position("on the left of", left, right) == 1.0
    # L48-55: 'on the right of' needs dx < 0 -> 0
    assert spatial.determine_position("on the right of", left, right) == 0.0
    assert spatial.determine_position("on the right of", right, left) == 1.0
    # overlap: box2 (50, 0, 150, 100): inter 50*100 = 5000, union 15000, IoU 1/3 >= 0.1 -> 0.1 / (1/3) = 0.3 (L61)
    assert spatial.determine_position("on the left of", left, B(50, 0, 150, 100)) == pytest.approx(0.3)
    # major axis not horizontal: dx = 50, dy = 200 -> 0 (neither branch of L58-61 fires)
    assert spatial.determine_position("on the left of", left, B(50, 200, 150, 300)) == 0.0
    # L70-75: 'on the top of' with dy = 200 > 0 (box2 lower in the image) -> 1; L64-69 bottom needs dy < 0
    assert spatial.determine_position("on the top of", left, B(0, 200, 100, 300)) == 1.0
    assert spatial.determine_position("on the bottom of", left, B(0, 200, 100, 300)) == 0.0
    assert spatial.determine_position("on the bottom of", B(0, 200, 100, 300), left) == 1.0
    # L43-47: near: |dx| = 350 and |dy| = 250 both >= 150 -> 150 / 350; either under 150 -> 1
    assert spatial.determine_position("near", B(0, 0, 100, 100), B(350, 250, 450, 350)) == pytest.approx(150 / 350)
    assert spatial.determine_position("next to", B(0, 0, 100, 100), B(400, 100, 500, 200)) == 1.0
    # 'on top of' is in the vocabulary but not handled by determine_position (L76-77) -> 0
    assert spatial.determine_position("on top of", left, B(0, 200, 100, 300)) == 0.0
    assert spatial.determine_position(None, left, right) == 0.0


class _Det:
    def __init__(self, label, score, box):
        self.label, self.score, self.box = label, score, box


SPATIAL_NLP = FakeNLP({
    "a girl on the left of a dog": ([("a", "DET"), ("girl", "NOUN"), ("on", "ADP"), ("the", "DET"), ("left", "NOUN"),
                                     ("of", "ADP"), ("a", "DET"), ("dog", "NOUN")], []),
    "a cat near a lamp": ([("a", "DET"), ("cat", "NOUN"), ("near", "ADP"), ("a", "DET"), ("lamp", "NOUN")], []),
    "on the left": ([("on", "ADP"), ("the", "DET"), ("left", "ADJ")], []),
})


def test_spatial_score_hand_worked():
    prompt = "a girl on the left of a dog"  # obj1 'girl' -> 'person' (L225, L228-230), obj2 'dog' (L226)
    dets = [_Det("dog", 0.8, (200, 0, 300, 100)), _Det("person", 0.9, (0, 0, 100, 100)),
            _Det("person", 0.6, (250, 0, 350, 100)), _Det("dog", 0.45, (0, 0, 10, 10))]
    out = spatial.score_detections(prompt, dets, SPATIAL_NLP)
    # L233-251: first 'person' by confidence (0.9), first 'dog' (0.8); left-of = 1 -> 0.25*0.9 + 0.25*0.8 + 1/2
    assert (out["obj1"], out["obj2"], out["locality"]) == ("person", "dog", "on the left of")
    assert out["score"] == pytest.approx(0.925)
    # one object only: 0.25 * 0.9 = 0.225 < 0.5 -> 0 (L252-254, L260-261)
    assert spatial.score_detections(prompt, dets[1:2], SPATIAL_NLP)["score"] == 0.0
    # the 0.45 dog is under the detector's 0.5 threshold (model_bank.py L75): only the person is found
    assert spatial.score_detections(prompt, [dets[1], dets[3]], SPATIAL_NLP)["score"] == 0.0
    # both found but the relation fails: 0.25*0.9 + 0.25*0.8 = 0.425 < 0.5 -> 0
    swapped = [_Det("dog", 0.8, (0, 0, 100, 100)), _Det("person", 0.9, (200, 0, 300, 100))]
    assert spatial.score_detections(prompt, swapped, SPATIAL_NLP)["score"] == 0.0
    # a label must equal the noun exactly ('lamp' is not a COCO class): only the cat -> 0.25*0.99 < 0.5 -> 0
    assert spatial.score_detections("a cat near a lamp", [_Det("cat", 0.99, (0, 0, 9, 9))], SPATIAL_NLP)["score"] == 0
    # no noun: the official IndexError (L225) becomes 0 with the reason
    none = spatial.score_detections("on the left", dets, SPATIAL_NLP)
    assert none["score"] == 0.0 and "no noun" in none["reason"]


def test_spatial_resize_is_the_official_transform():
    # experts/model_bank.py L89-91: Resize(size=479, max_size=480): 512x512 -> 479x479; 1024x512 -> 480x240
    assert spatial.official_resize(Image.new("RGB", (512, 512))).size == (479, 479)
    assert spatial.official_resize(Image.new("RGB", (1024, 512))).size == (480, 240)


# ---------------------------------------------------------------- BLIP-VQA: the rule, hand-worked
BLIP_NLP = FakeNLP({
    "a green bench and a blue bowl": ([], ["a green bench", "a blue bowl"]),
    "a cat on the top of the side": ([], ["a cat", "top", "the side"]),
})


def test_noun_phrases_and_questions():
    assert blip_vqa.noun_phrases("a green bench and a blue bowl", BLIP_NLP) == ["a green bench", "a blue bowl"]
    # BLIP_vqa.py L34: 'top', 'the side', 'the left', 'the right' are not asked
    assert blip_vqa.noun_phrases("a cat on the top of the side", BLIP_NLP) == ["a cat"]
    # data/utils.py L31-36: lower-case, . ! " ( ) * # : ; ~ removed, '?' kept
    assert blip_vqa.pre_question('A (Green) "Bench".?  ') == "a green bench?"


def test_image_score_rounds_each_phrase_then_the_product():
    # models/blip_vqa.py L125: each P formatted '{:.4f}': 0.87656 -> 0.8766, 0.55551 -> 0.5555 (read back L95);
    # BLIP_vqa.py L99-101: product over the 8 slots, empty slots 1 (L96-97): 0.8766 * 0.5555 = 0.4869513;
    # L107: '{:.4f}' -> 0.4870 (unrounded phrases would give 0.48694... -> 0.4869)
    assert blip_vqa.image_score([0.87656, 0.55551]) == pytest.approx(0.487, abs=1e-12)
    assert blip_vqa.image_score([]) == 1.0  # a prompt without phrases scores 1 (every slot is 1)
    assert blip_vqa.image_score([0.5] * 9) == pytest.approx(round(0.5 ** 8, 4))  # np_num = 8 slots (L66)


# ---------------------------------------------------------------- BLIP-VQA: the network against LAVIS
D, IMG = 32, 32
WORDS = ["a", "green", "bench", "and", "blue", "bowl", "red", "car", "?", "cat", "big"]
QUESTIONS = ["a green bench?", "a blue bowl?", "a big red car?"]
MED = {"vocab_size": 30524, "hidden_size": D, "num_hidden_layers": 2, "num_attention_heads": 2,
       "intermediate_size": 64, "max_position_embeddings": 64, "layer_norm_eps": 1e-12, "pad_token_id": 0,
       "type_vocab_size": 2, "hidden_act": "gelu", "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
       "encoder_width": D, "add_cross_attention": True, "add_type_embeddings": False}


def _vocab(folder: Path) -> Path:
    """A BERT vocabulary of bert-base-uncased's size with the ids the official relies on: [PAD] 0, [UNK] 100,
    [CLS] 101, [SEP] 102, [MASK] 103, 'no' 2053, 'yes' 2748; [DEC] 30522 and [ENC] 30523 are added by
    init_tokenizer (models/blip.py L186-190)."""
    tokens = [f"[unused{i}]" for i in range(30522)]
    for i, t in {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]", 2053: "no", 2748: "yes"}.items():
        tokens[i] = t
    for i, w in enumerate(WORDS):
        tokens[1000 + i] = w
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(tokens) + "\n")
    return folder / "vocab.txt"


OFFICIAL_SCRIPT = r'''
import json, sys, types
import torch
from PIL import Image

args = json.load(open(sys.argv[1]))
sys.path.append(args["official_dir"])
root = args["official_dir"] + "/lavis"
# lavis/__init__.py and lavis/models/__init__.py import every model, dataset and runner LAVIS has; only vit.py,
# med.py and blip_models/blip_vqa.py are under test, so the packages are bare modules over the same folders.
# Stubbed (irrelevant to the forward pass): checkpoint download / config helpers, omegaconf (configs), fairscale's
# activation checkpointing (training only).
for name in ("lavis", "lavis.models", "lavis.common", "lavis.models.blip_models"):
    module = types.ModuleType(name)
    module.__path__ = [root + name[len("lavis"):].replace(".", "/")]
    sys.modules[name] = module
utils = types.ModuleType("lavis.common.utils")
utils.get_abs_path, utils.is_url = (lambda p: p), (lambda p: False)
dist = types.ModuleType("lavis.common.dist_utils")
dist.download_cached_file, dist.is_dist_avail_and_initialized = None, (lambda: False)
omegaconf = types.ModuleType("omegaconf")
omegaconf.OmegaConf = object
checkpointing = types.ModuleType("fairscale.nn.checkpoint.checkpoint_activations")
checkpointing.checkpoint_wrapper = lambda module, **kw: module
for name, module in {"lavis.common.utils": utils, "lavis.common.dist_utils": dist, "omegaconf": omegaconf,
                     "fairscale": types.ModuleType("fairscale"), "fairscale.nn": types.ModuleType("fairscale.nn"),
                     "fairscale.nn.checkpoint": types.ModuleType("fairscale.nn.checkpoint"),
                     "fairscale.nn.checkpoint.checkpoint_activations": checkpointing}.items():
    sys.modules[name] = module

import transformers
from lavis.models import base_model, med, vit
sys.modules["lavis.models"].BaseModel = base_model.BaseModel  # what registry.register_model checks against
from lavis.models.blip_models import blip, blip_vqa
from torchvision import transforms
from torchvision.transforms.functional import InterpolationMode

# init_tokenizer (blip.py L21-26) reads bert-base-uncased from the hub: the same call, the tiny local vocabulary
real = transformers.BertTokenizer.from_pretrained
blip.BertTokenizer.from_pretrained = classmethod(lambda cls, name, *a, **k: real(args["vocab_dir"]))

torch.manual_seed(0)
config = med.BertConfig.from_dict(args["med"])
visual = vit.VisionTransformerEncoder(img_size=args["img"], patch_size=16, embed_dim=args["d"], depth=2,
                                      num_heads=2, mlp_ratio=4.0)
model = blip_vqa.BlipVQA(visual, med.XBertEncoder(config, add_pooling_layer=False), med.XBertLMHeadDecoder(config),
                         max_txt_len=35).eval()
with torch.no_grad():  # random weights well away from the init's small ones, so every path matters
    for name, p in model.named_parameters():
        if "norm" in name.lower() and name.endswith("weight"):
            p.copy_(1 + 0.1 * torch.randn_like(p))
        else:
            p.copy_(torch.randn_like(p) * 0.5)
assert model.text_decoder.cls.predictions.decoder.weight is model.text_decoder.bert.embeddings.word_embeddings.weight
torch.save(model.state_dict(), args["state"])

# data/__init__.py L22-26 (T2I-CompBench's BLIP; LAVIS's blip_image_eval is the same): the test transform
transform = transforms.Compose([
    transforms.Resize((args["img"], args["img"]), interpolation=InterpolationMode.BICUBIC), transforms.ToTensor(),
    transforms.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))])
out = {}
with torch.no_grad():
    for path in args["images"]:
        image = transform(Image.open(path).convert("RGB")).unsqueeze(0).repeat(len(args["questions"]), 1, 1, 1)
        samples = {"image": image, "text_input": args["questions"]}
        encoder_out, _ = model.forward_encoder(samples)  # L104-121: [ENC] first, ViT, text encoder on the image
        question_states = encoder_out.last_hidden_state
        question_atts = samples["tokenized_text"].attention_mask
        # T2I-CompBench BLIPvqa_eval/models/blip_vqa.py L133-147 (vqa_prob), as written there
        start_ids = torch.tensor(30522).repeat(question_states.size(0), 1)
        start_output = model.text_decoder(start_ids, encoder_hidden_states=question_states,
                                          encoder_attention_mask=question_atts, return_dict=True, reduction="none")
        logits = start_output.logits[:, 0, :]
        prob = torch.softmax(logits, dim=1)
        out[path] = (prob[:, 2748] / (prob[:, 2748] + prob[:, 2053])).tolist()
json.dump(out, open(sys.argv[2], "w"))
'''


def _tiny_config():
    import transformers

    return transformers.BlipConfig(
        text_config=dict(vocab_size=30524, hidden_size=D, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64, encoder_hidden_size=D,
                         layer_norm_eps=1e-12, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0),
        vision_config=dict(hidden_size=D, intermediate_size=4 * D, num_hidden_layers=2, num_attention_heads=2,
                           image_size=IMG, patch_size=16, layer_norm_eps=1e-6))


@pytest.fixture(scope="module")
def blip_agreement(tmp_path_factory):
    if not (TRANSFORMERS4 / "transformers").is_dir() or not (OFFICIAL_DIR / "lavis").is_dir():
        message = "salesforce-lavis 1.0.2 or transformers 4 are not installed: run `bash .ci/install-official`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    tmp = tmp_path_factory.mktemp("blip")
    _vocab(tmp / "bert")
    rng = np.random.default_rng(3)
    images = []
    for i, size in enumerate([(40, 40), (64, 48)]):
        path = tmp / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
        images.append(str(path))
    args = {"official_dir": str(OFFICIAL_DIR), "vocab_dir": str(tmp / "bert"), "med": MED, "img": IMG, "d": D,
            "images": images, "questions": [blip_vqa.pre_question(q) for q in QUESTIONS],
            "state": str(tmp / "state.pt")}
    (tmp / "args.json").write_text(json.dumps(args))
    env = {**os.environ, "PYTHONPATH": str(TRANSFORMERS4), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", OFFICIAL_SCRIPT, str(tmp / "args.json"), str(tmp / "out.json")],
                          capture_output=True, text=True, env=env, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {"tmp": tmp, "images": images, "official": json.loads((tmp / "out.json").read_text()),
            "state": torch.load(tmp / "state.pt", map_location="cpu", weights_only=True)}


def _hf_folder(blip_agreement) -> Path:
    """The LAVIS weights as a transformers BLIP VQA folder with the official tokenizer (what our loader reads)."""
    import transformers

    tmp = blip_agreement["tmp"]
    folder = tmp / "hf-blip"
    if (folder / "config.json").is_file():
        return folder
    config = _tiny_config()
    model = transformers.BlipForQuestionAnswering(config).eval()
    missing, unexpected = model.load_state_dict(blip_vqa.convert_state_dict(blip_agreement["state"]), strict=False)
    assert not unexpected and not [k for k in missing if not k.startswith("text_decoder.cls.predictions.decoder")]
    model.save_pretrained(folder)
    tokenizer = transformers.BertTokenizer(str(tmp / "bert" / "vocab.txt"))
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    tokenizer.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    tokenizer.save_pretrained(folder)
    return folder


def test_blip_yes_probability_equals_lavis(blip_agreement):
    vqa, digest = blip_vqa.load(str(_hf_folder(blip_agreement)), device="cpu", image_size=IMG)
    assert len(digest) == 64
    for path in blip_agreement["images"]:
        ours = vqa.probabilities(Image.open(path), QUESTIONS)
        official_probs = blip_agreement["official"][path]
        assert np.ptp(official_probs) > 1e-3  # the questions give different answers: the text path matters
        np.testing.assert_allclose(ours, official_probs, atol=1e-5, rtol=0)


def test_official_checkpoint_from_the_store_equals_lavis(blip_agreement, tmp_path, monkeypatch):
    """The default path: BLIP's own checkpoint layout ({'model': state dict}, BLIP names) and the vocabulary from the
    weights store (test-made stand-ins), renamed into transformers' BLIP by `convert_state_dict`."""
    from evalsuite import weights
    from tests.conftest import install_standin_weights

    checkpoint = tmp_path / "model_base_vqa_capfilt_large.pth"
    torch.save({"model": blip_agreement["state"], "config": {"image_size": IMG}}, checkpoint)
    install_standin_weights(monkeypatch, blip_vqa.OFFICIAL_WEIGHTS, checkpoint)
    install_standin_weights(monkeypatch, blip_vqa.VOCAB_WEIGHTS, blip_agreement["tmp"] / "bert" / "vocab.txt")
    vqa, digests = blip_vqa.load_official(offline=True, config=_tiny_config(), image_size=IMG)
    assert digests[blip_vqa.OFFICIAL_WEIGHTS] == weights.REGISTRY[blip_vqa.OFFICIAL_WEIGHTS].sha256
    for path in blip_agreement["images"]:
        np.testing.assert_allclose(vqa.probabilities(Image.open(path), QUESTIONS), blip_agreement["official"][path],
                                   atol=1e-5, rtol=0)
    # a checkpoint that is not BLIP VQA is refused, naming the weights
    torch.save({"model": {"visual_encoder.cls_token": torch.zeros(1, 1, D)}}, tmp_path / "other.pth")
    install_standin_weights(monkeypatch, blip_vqa.OFFICIAL_WEIGHTS, tmp_path / "other.pth")
    with pytest.raises(InputError, match="does not fit BLIP VQA"):
        blip_vqa.load_official(offline=True, config=_tiny_config(), image_size=IMG)


def test_official_position_embeddings_are_interpolated_as_blip_does():
    # models/vit.py interpolate_pos_embed: class token kept, the 2x2 grid resized bicubically to 3x3
    pos = torch.arange(5 * 2, dtype=torch.float32).reshape(1, 5, 2)
    out = blip_vqa._interpolate_pos_embed(pos, 9)
    assert out.shape == (1, 10, 2) and torch.equal(out[:, 0], pos[:, 0])
    grid = pos[:, 1:].reshape(1, 2, 2, 2).permute(0, 3, 1, 2)
    expected = torch.nn.functional.interpolate(grid, size=(3, 3), mode="bicubic", align_corners=False)
    torch.testing.assert_close(out[:, 1:], expected.permute(0, 2, 3, 1).reshape(1, 9, 2))
    assert blip_vqa._interpolate_pos_embed(pos, 4) is pos


def test_blip_loader_refuses_what_it_cannot_use(tmp_path):
    with pytest.raises(InputError, match="blip-vqa-capfilt-large"):
        blip_vqa.load(str(tmp_path / "absent"))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "clip"}))
    with pytest.raises(InputError, match="not BLIP VQA"):
        blip_vqa.load(str(tmp_path))


# ---------------------------------------------------------------- non-spatial: OpenAI clip
@pytest.fixture
def openai_clip_package(monkeypatch):
    """OpenAI's `clip` (openai-clip 1.0.1); its `pkg_resources` import only compares torch versions: stubbed where
    setuptools no longer ships it."""
    import importlib.util

    if importlib.util.find_spec("pkg_resources") is None:
        import packaging.version  # noqa: F401

        stub = types.ModuleType("pkg_resources")
        stub.packaging = sys.modules["packaging"]
        monkeypatch.setitem(sys.modules, "pkg_resources", stub)
    for name in [m for m in sys.modules if m == "clip" or m.startswith("clip.")]:
        monkeypatch.delitem(sys.modules, name)
    return official("clip.clip"), official("clip.model")


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_clip_similarity_equals_openai_clip(tiny_openai_clip, openai_clip_package, precision):
    from evalsuite.tasks.compbench.nonspatial import CLIPSimilarity

    clip_module, clip_model = openai_clip_package
    state = torch.load(tiny_openai_clip, map_location="cpu", weights_only=True)
    # clip.load on the CPU: build_model then .float(); on CUDA the fp16 weights stay (run here on the CPU)
    model = clip_model.build_model(state).eval()
    model = model.float() if precision == "fp32" else model
    preprocess = clip_module._transform(224)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in ((256, 256), (240, 320))]
    texts = ["A person is looking at a rainbow and marveling at its beauty.", "a Red car & two dogs"]
    official_cos = []
    with torch.no_grad():  # CLIP_similarity.py L58-80
        for image, prompt in zip(images, texts):
            image_features = model.encode_image(preprocess(image).unsqueeze(0))
            image_features /= image_features.norm(dim=-1, keepdim=True)
            text_features = model.encode_text(clip_module.tokenize(prompt))
            text_features /= text_features.norm(dim=-1, keepdim=True)
            official_cos.append((image_features @ text_features.T).squeeze().item())
    ours = CLIPSimilarity(device="cpu", offline=True, precision=precision)
    got = ours.score(images, texts)
    np.testing.assert_allclose(got["similarity"], official_cos, atol=1e-5 if precision == "fp32" else 2e-3, rtol=0)
    assert not got["long"].any()
    assert ours.protocol == "compbench-clip-vit-b-32-openai" + ("-fp32" if precision == "fp32" else "")


# ---------------------------------------------------------------- the task end to end
class FakeDetector:
    """Scripted boxes (in the official 479-px frame): a person on the left, a dog on the right."""

    protocol = "scripted-boxes"

    def detect(self, image):
        assert image.size == (479, 479)  # the official resize happened (model_bank.py L89-91)
        return [_Det("person", 0.9, (0, 0, 100, 100)), _Det("dog", 0.8, (300, 0, 400, 100)),
                _Det("cat", 0.3, (0, 0, 479, 479))]


def fake_detector() -> FakeDetector:
    return FakeDetector()


TASK_NLP = FakeNLP({
    "a green bench and a blue bowl": ([], ["a green bench", "a blue bowl"]),
    "a red car": ([], ["a red car"]),
    "a girl on the left of a dog": SPATIAL_NLP.parses["a girl on the left of a dog"],
    "a cat near a car": ([("a", "DET"), ("cat", "NOUN"), ("near", "ADP"), ("a", "DET"), ("car", "NOUN")], []),
})


def _official_layout(folder: Path, root: Path) -> dict:
    """Images named as the official inference_eval.py names them, two per prompt, under <category>/samples/."""
    rng = np.random.default_rng(5)
    made = {}
    for cat in ("color", "spatial", "non_spatial"):
        (folder / cat / "samples").mkdir(parents=True)
        names = []
        for k, prompt in enumerate(prompts.read_prompts(prompts.prompt_file(root, cat))):
            for j in range(2):
                name = prompts.image_name(prompt, 2 * k + j)
                pixels = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / cat / "samples" / name)
                names.append(name)
        made[cat] = names
    return made


def test_task_scores_the_official_layout(tmp_path, monkeypatch, tiny_openai_clip, blip_agreement):
    from evalsuite.runner import ScoreOptions, score
    from evalsuite.tasks.compbench import nlp
    from evalsuite.tasks.compbench.nonspatial import CLIPSimilarity

    root = _repo(tmp_path)
    made = _official_layout(tmp_path / "images", root)
    monkeypatch.setattr(nlp, "load_spacy", lambda spec: TASK_NLP)
    blip_folder = _hf_folder(blip_agreement)
    options = {"compbench": str(root), "categories": "color,spatial,non_spatial", "blip": str(blip_folder),
               "detector": "python:tests.test_compbench:fake_detector"}
    (doc,) = score(f"folder:{tmp_path / 'images'}", ScoreOptions(
        tasks=["t2i-compbench"], num_workers=0, progress=False, offline=True,
        task_options={"t2i-compbench": options})).results
    assert doc["status"] == "ok", doc
    per, metrics = doc["per_sample"], doc["metrics"]
    assert per["category"] == ["color"] * 4 + ["spatial"] * 4 + ["non_spatial"] * 2
    assert per["name"][0] == f"color/samples/{made['color'][0]}"
    # spatial: 'a girl on the left of a dog' -> 0.25*0.9 + 0.25*0.8 + 1/2 = 0.925; 'a cat near a car': the cat is
    # under 0.5 confidence, no car -> 0
    np.testing.assert_allclose(per["spatial"], [0.925, 0.925, 0.0, 0.0], atol=1e-12)
    assert metrics["spatial"] == pytest.approx(0.4625)
    # colour: the product rule on our BLIP (checked against LAVIS above) at the official 480 px
    vqa, _ = blip_vqa.load(str(blip_folder))
    expected = [blip_vqa.score_image(Image.open(tmp_path / "images" / "color" / "samples" / n), prompts.prompt_of(n),
                                     vqa, TASK_NLP)["score"] for n in made["color"]]
    np.testing.assert_allclose(per["color"], expected, atol=1e-6)
    clip = CLIPSimilarity(device="cpu", offline=True)
    images = [Image.open(tmp_path / "images" / "non_spatial" / "samples" / n) for n in made["non_spatial"]]
    np.testing.assert_allclose(per["non_spatial"], clip.score(images, [prompts.prompt_of(n) for n in
                                                                        made["non_spatial"]])["similarity"], atol=1e-6)
    assert metrics["average"] == pytest.approx(np.mean([metrics["color"], metrics["spatial"],
                                                         metrics["non_spatial"]]))
    assert "spatial=compbench-2d-rule-scripted-boxes-not-unidet" in doc["protocol"]
    assert "non_spatial=compbench-clip-vit-b-32-openai-fp32" in doc["protocol"]
    assert "color=compbench-blip-vqa-hf-blip-hf384" in doc["protocol"]


def test_task_skips_without_the_prompt_files(tmp_path):
    from evalsuite.runner import ScoreOptions, score

    (tmp_path / "images").mkdir()
    Image.new("RGB", (16, 16)).save(tmp_path / "images" / "x_000000.png")
    (doc,) = score(f"folder:{tmp_path / 'images'}", ScoreOptions(tasks=["t2i-compbench"], num_workers=0,
                                                                 progress=False, offline=True)).results
    assert doc["status"] == "skipped" and "Karine-Huang/T2I-CompBench" in doc["fix"]


def test_categories_without_their_model_are_skipped_by_name(tmp_path, monkeypatch, tiny_openai_clip):
    """No spaCy / no BLIP folder: the attribute and spatial categories are skipped with their fix, the
    non-spatial one is still scored."""
    from evalsuite.runner import ScoreOptions, score
    from evalsuite.tasks.compbench import nlp

    def no_spacy(spec):
        raise TaskSkipped("spaCy is not installed", "pip install spacy")

    monkeypatch.setattr(nlp, "load_spacy", no_spacy)
    root = _repo(tmp_path)
    _official_layout(tmp_path / "images", root)
    (doc,) = score(f"folder:{tmp_path / 'images'}", ScoreOptions(
        tasks=["t2i-compbench"], num_workers=0, progress=False, offline=True,
        task_options={"t2i-compbench": {"compbench": str(root), "categories": "color,spatial,non_spatial"}})).results
    assert doc["status"] == "ok", doc
    assert set(doc["metrics"]) == {"non_spatial", "average"}
    skipped = doc["details"]["skipped_categories"]
    assert set(skipped) == {"color", "spatial"} and skipped["spatial"]["fix"] == "pip install spacy"


def test_task_generates_each_prompt_of_the_files(tmp_path, tiny_openai_clip):
    """A generator: images_per_prompt images of every prompt (prompt-grid layout, tag = category), scored."""
    from evalsuite.runner import ScoreOptions, score

    root = _repo(tmp_path)
    (doc,) = score("demo", ScoreOptions(
        tasks=["t2i-compbench"], num_workers=0, progress=False, offline=True,
        task_options={"t2i-compbench": {"compbench": str(root), "categories": "non_spatial",
                                        "images_per_prompt": 3}})).results
    assert doc["status"] == "ok", doc
    assert doc["per_sample"]["category"] == ["non_spatial"] * 3
    assert doc["details"]["prompt_counts"] == {"non_spatial": 1} and doc["num_samples"] == 3
    assert doc["metrics"]["non_spatial"] == pytest.approx(np.mean(doc["per_sample"]["non_spatial"]))
