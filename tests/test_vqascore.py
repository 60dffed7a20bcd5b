"""VQAScore: our CLIP-FlanT5 against t2v-metrics 3.0's own model class, prompt formatting, tokenisation, image
padding and score rule (tests/official.py; its loader cannot run on transformers 5, see
evalsuite.tasks.vqascore.clip_flant5) on a tiny random CLIP-T5 built here (same weights in both); long prompts;
the task end to end; missing folders; the transformers (BLIP) backend."""

from __future__ import annotations

import importlib
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

from evalsuite.errors import InputError
from evalsuite.runner import ScoreOptions, score
from evalsuite.tasks.vqascore import scoring
from evalsuite.tasks.vqascore.clip_flant5 import CLIPFlanT5
from tests.official import OFFICIAL_DIR, official

transformers = pytest.importorskip("transformers")
from safetensors.torch import save_file  # noqa: E402

WORDS = ["▁A", "▁chat", "▁USER", "▁ASSISTANT", "▁Yes", "▁Does", "▁this", "▁figure", "▁show", "▁Please", "▁answer",
         "▁yes", "▁or", "▁no", "▁the", "▁a", "▁cat", "▁dog", "▁red"]
LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,?'\":"
PROMPTS = ["a cat", "a red dog on the chair", " ".join(["a red dog sitting next to the cat"] * 12)]


def _tokenizer(folder: Path):
    vocab = ([("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)] + [(w, -1.0) for w in WORDS]
             + [(c, -3.0) for c in LETTERS] + [("▁" + c, -3.5) for c in LETTERS])
    tok = transformers.T5Tokenizer(vocab=vocab, extra_ids=4)
    tok.save_pretrained(folder)
    return tok


def _checkpoint(root: Path) -> tuple[Path, Path, Path]:
    """A tiny CLIP-T5 in t2v-metrics' layout: T5 keys, vision_tower.vision_tower.*, mm_projector.{0,2}.*; its
    vocabulary 8 rows longer than the tokenizer (as FlanT5's 32128 vs 32100), random weights, fixed seed."""
    tok = _tokenizer(root / "tok")
    torch.manual_seed(0)
    vision = root / "clip"
    vcfg = transformers.CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_attention_heads=2,
                                         num_hidden_layers=3, image_size=28, patch_size=14)
    clip = transformers.CLIPVisionModel(vcfg)
    clip.save_pretrained(vision)
    transformers.CLIPImageProcessor(size={"shortest_edge": 28},
                                    crop_size={"height": 28, "width": 28}).save_pretrained(vision)
    t5cfg = dict(vocab_size=len(tok) + 8, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2,
                 num_heads=4, feed_forward_proj="gated-gelu", tie_word_embeddings=False, decoder_start_token_id=0,
                 pad_token_id=0, eos_token_id=1)
    t5 = transformers.T5ForConditionalGeneration(transformers.T5Config(**t5cfg))
    with torch.no_grad():
        t5.lm_head.weight.mul_(0.02)  # moderate logits: scores well inside (0, 1)
    state = {k: v for k, v in t5.state_dict().items()}
    state.update({f"vision_tower.vision_tower.{k}": v for k, v in clip.state_dict().items()})
    projector = torch.nn.Sequential(torch.nn.Linear(32, 32), torch.nn.GELU(), torch.nn.Linear(32, 32))
    state.update({f"mm_projector.{k}": v for k, v in projector.state_dict().items()})
    model = root / "clip-flant5-tiny"
    cfg = transformers.T5Config(**t5cfg)
    cfg.update(dict(mm_vision_tower=str(vision), mm_hidden_size=32, mm_projector_type="mlp2x_gelu",
                    mm_vision_select_layer=-2, mm_vision_select_feature="patch", use_mm_proj=True))
    cfg.save_pretrained(model)
    saved = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**saved, "model_type": "clip_t5",
                                                   "architectures": ["CLIPT5ForConditionalGeneration"]}))
    save_file({k: v.detach().clone().contiguous() for k, v in state.items()}, str(model / "model.safetensors"),
              metadata={"format": "pt"})
    return model, vision, root / "tok"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _checkpoint(tmp_path_factory.mktemp("vqascore"))


def _images(folder: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i, (w, h) in enumerate([(40, 30), (30, 50), (33, 33)]):  # landscape, portrait, square
        paths.append(folder / f"im{i}.png")
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(paths[-1])
    return paths


def _t2v_metrics():
    """t2v-metrics' clip_t5_model module without its package __init__s (which need ffmpeg, open_clip, hpsv2 and
    every other scorer) and with cv2 stubbed (mm_utils uses it for video frames only)."""
    root = OFFICIAL_DIR / "t2v_metrics"
    saved = {k: sys.modules.get(k) for k in ("t2v_metrics", "t2v_metrics.models",
                                             "t2v_metrics.models.vqascore_models", "cv2")}
    for name, path in (("t2v_metrics", root), ("t2v_metrics.models", root / "models"),
                       ("t2v_metrics.models.vqascore_models", root / "models" / "vqascore_models")):
        stub = types.ModuleType(name)
        stub.__path__ = [str(path)]
        sys.modules[name] = stub
    sys.modules.setdefault("cv2", types.ModuleType("cv2"))
    try:
        # official(): .official on sys.path, a skip with the install command (a failure under CI) when missing
        return (official("t2v_metrics.models.vqascore_models.clip_t5_model"),
                official("t2v_metrics.models.vqascore_models.mm_utils"), official("t2v_metrics.models.model"))
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _official_model(clip_t5_model, model_model, model: Path, tok: Path):
    """t2v-metrics' CLIPT5Model around its CLIPT5ForConditionalGeneration holding our checkpoint: load_pretrained_
    model's steps (tokenizer with model_max_length 2048, resize_token_embeddings(len(tokenizer)), eval) without its
    from_pretrained; float32, as its bfloat16 path needs CUDA autocast (its projector gets float32 features)."""
    from safetensors.torch import load_file

    from_cls = importlib.import_module("t2v_metrics.models.vqascore_models.clip_t5.model")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tok), use_fast=False, model_max_length=2048)
    net = from_cls.CLIPT5ForConditionalGeneration(from_cls.CLIPT5Config.from_pretrained(model))
    state = load_file(str(model / "model.safetensors"))
    state["embed_tokens.weight"] = state["shared.weight"]
    net.load_state_dict(state, strict=True)
    net.resize_token_embeddings(len(tokenizer))
    net.eval().requires_grad_(False)
    wrapper = clip_t5_model.CLIPT5Model.__new__(clip_t5_model.CLIPT5Model)
    wrapper.model_name, wrapper.device, wrapper.image_loader = "clip-flant5-xxl", "cpu", model_model.image_loader
    wrapper.tokenizer, wrapper.model = tokenizer, net
    # transformers 5's CLIPImageProcessor resizes unlike the 4.49 one t2v-metrics pins (up to 0.015 after
    # normalisation); ours reproduces 4.49's, exactly against 4.50.3 in the subprocess test below, so here its
    # processor is that rule and this test compares everything else
    config = json.loads((Path(net.config.mm_vision_tower) / "preprocessor_config.json").read_text())
    wrapper.image_processor = types.SimpleNamespace(
        image_mean=net.get_vision_tower().image_processor.image_mean,
        preprocess=lambda image, return_tensors: {"pixel_values": [scoring.clip_pixels(image, config)]})
    wrapper.image_aspect_ratio, wrapper.conversational_style = "pad", "t5_chat"
    wrapper.context_len = 2048
    return wrapper


def test_agrees_with_t2v_metrics_clip_t5(tiny, tmp_path):
    clip_t5_model, mm_utils, model_model = _t2v_metrics()
    model, vision, tok = tiny
    theirs = _official_model(clip_t5_model, model_model, model, tok)
    ours = CLIPFlanT5("clip-flant5-xxl", model, vision, tok, dtype="float32")
    paths = _images(tmp_path)
    # their forward: one batch of three (image, prompt) pairs of different lengths (padding), from the files
    expected = theirs.forward([str(p) for p in paths], PROMPTS).numpy()
    got = ours.score([Image.open(p) for p in paths], PROMPTS)
    np.testing.assert_allclose(got["vqascore"].numpy(), expected, rtol=1e-6, atol=0)  # equal here, float32
    assert 1e-4 < expected.min() and expected.max() < 0.9 and np.ptp(expected) > 1e-4  # not a flat model
    # one pair at a time (padding out of play) agrees with the batch
    single = [ours.score([Image.open(p)], [t])["vqascore"].item() for p, t in zip(paths, PROMPTS)]
    np.testing.assert_allclose(single, expected, rtol=2e-5)
    # their pure parts: templates, conversation, tokenisation, square padding
    assert (clip_t5_model.default_question_template, clip_t5_model.default_answer_template) == \
        (scoring.QUESTION_TEMPLATE, scoring.ANSWER_TEMPLATE)
    q = scoring.QUESTION_TEMPLATE.format(PROMPTS[1])
    assert clip_t5_model.format_question(q, conversation_style="t5_chat") == scoring.t5_chat(q)
    assert mm_utils.t5_tokenizer_image_token(scoring.t5_chat(q), theirs.tokenizer) == ours.encode(PROMPTS[1])
    mean = tuple(theirs.image_processor.image_mean)
    for p in paths:
        im = Image.open(p).convert("RGB")
        want = mm_utils.expand2square(im, tuple(int(x * 255) for x in mean))
        assert np.array_equal(np.asarray(scoring.pad_to_square(im, mean)), np.asarray(want))
    assert ours.tokenizer.model_max_length == theirs.tokenizer.model_max_length == scoring.CONTEXT_LEN


# t2v-metrics' whole path as it runs for users, in a subprocess with transformers 4.50.3 first on the path (t2v-metrics
# pins 4.49.0; `.official/transformers4-env`) and sentencepiece (`.official/sentencepiece-env`): a sentencepiece
# tokenizer trained here with T5's special ids, saved slow and converted to tokenizer.json by that transformers (as
# HF converted FlanT5's); the tiny CLIP-T5 built and saved (.bin) by its own class; CLIPT5Model("tiny") through its
# own load_pretrained_model (a local entry added to CLIP_T5_MODELS), then its forward on the image files.
OFFICIAL_SCRIPT = r'''
import json, sys, types, importlib
from pathlib import Path
args = json.loads(Path(sys.argv[1]).read_text())
root, official_dir = Path(args["root"]), Path(args["official"])
import torch, transformers, sentencepiece as spm
assert transformers.__version__.startswith("4."), transformers.__version__
sys.path.append(str(official_dir))
pkg = official_dir / "t2v_metrics"
for name, path in (("t2v_metrics", pkg), ("t2v_metrics.models", pkg / "models"),
                   ("t2v_metrics.models.vqascore_models", pkg / "models" / "vqascore_models")):
    stub = types.ModuleType(name); stub.__path__ = [str(path)]; sys.modules[name] = stub
sys.modules["cv2"] = types.ModuleType("cv2")
ct5 = importlib.import_module("t2v_metrics.models.vqascore_models.clip_t5_model")
mm_utils = importlib.import_module("t2v_metrics.models.vqascore_models.mm_utils")
from t2v_metrics.models.vqascore_models.clip_t5.model import CLIPT5Config, CLIPT5ForConditionalGeneration
# the tokenizer: a small sentencepiece unigram model with T5's special ids, saved slow (spiece.model) and, converted
# by this transformers 4 as HF converted FlanT5's, fast (tokenizer.json)
tok_dir = root / "tok"; tok_dir.mkdir()
spm.SentencePieceTrainer.train(sentence_iterator=iter(args["corpus"]), model_prefix=str(tok_dir / "spiece"),
                               vocab_size=args["vocab"], model_type="unigram", pad_id=0, eos_id=1, unk_id=2,
                               bos_id=-1, character_coverage=1.0, minloglevel=2)
slow = transformers.T5Tokenizer(str(tok_dir / "spiece.model"), extra_ids=4)
slow.save_pretrained(tok_dir)
transformers.T5TokenizerFast.from_pretrained(str(tok_dir)).save_pretrained(tok_dir)
# the tiny CLIP-T5, built and saved by t2v-metrics' own class (its vision tower from the CLIP folder)
torch.manual_seed(0)
vision = root / "clip"
transformers.CLIPVisionModel(transformers.CLIPVisionConfig(**args["vision"])).save_pretrained(vision)
transformers.CLIPImageProcessor(size={"shortest_edge": 28},
                                crop_size={"height": 28, "width": 28}).save_pretrained(vision)
cfg = CLIPT5Config(vocab_size=len(slow) + 8, mm_vision_tower=str(vision), **args["t5"])
net = CLIPT5ForConditionalGeneration(cfg)
with torch.no_grad():
    net.lm_head.weight.mul_(0.02)
    for param in net.parameters():  # bfloat16-exact, so that load_pretrained_model's cast loses nothing
        param.copy_(param.to(torch.bfloat16).float())
net.save_pretrained(root / "model", safe_serialization=False)  # .bin, as the LLaVA-era checkpoints
# t2v-metrics' loader and forward: CLIPT5Model(name) through load_pretrained_model, with a local entry
ct5.CLIP_T5_MODELS["tiny"] = {"tokenizer": {"path": str(tok_dir), "model_max_length": 2048},
                              "model": {"path": str(root / "model"), "conversation": "t5_chat",
                                        "image_aspect_ratio": "pad"}}
wrapper = ct5.CLIPT5Model("tiny", device="cpu", cache_dir=str(root / "cache"))
with torch.autocast("cpu", dtype=torch.bfloat16):  # its bfloat16 model as loaded, CPU autocast for its CUDA one
    scores_bf16 = wrapper.forward(args["images"], args["prompts"]).tolist()
wrapper.model.float()  # its bfloat16 path needs autocast (the projector gets float32 features)
scores = wrapper.forward(args["images"], args["prompts"]).tolist()
torch.save(wrapper.load_images(args["images"]), root / "pixels.pt")
ids = [mm_utils.t5_tokenizer_image_token(ct5.format_question(ct5.default_question_template.format(p), "t5_chat"),
                                         wrapper.tokenizer) for p in args["prompts"]]
Path(args["out"]).write_text(json.dumps({"scores": scores, "scores_bf16": scores_bf16, "ids": ids,
                                         "len": len(wrapper.tokenizer),
                                         "tokenizer": type(wrapper.tokenizer).__name__,
                                         "transformers": transformers.__version__}))
'''


def test_agrees_with_t2v_metrics_loader_and_sentencepiece_tokenizer(tmp_path):
    envs = [OFFICIAL_DIR / "transformers4-env", OFFICIAL_DIR / "sentencepiece-env"]
    if not all(e.is_dir() for e in envs) or not (OFFICIAL_DIR / "t2v_metrics").is_dir():
        message = "t2v-metrics, its transformers 4 or sentencepiece are not installed: run `bash .ci/install-official`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    paths = _images(tmp_path)
    prompts = [*PROMPTS, 'a "quoted" dog\nwith a newline  and  spaces']
    corpus = [scoring.SYSTEM_MSG, scoring.QUESTION_TEMPLATE, "USER: ASSISTANT: Yes yes no", *PROMPTS,
              "the quick brown fox jumps over the lazy dog", "A red dog, a blue cat; \"quoted\" words?"]
    args = dict(root=str(tmp_path), official=str(OFFICIAL_DIR), corpus=corpus * 3, vocab=90,
                images=[str(p) for p in [*paths, paths[0]]], prompts=prompts, out=str(tmp_path / "out.json"),
                vision=dict(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=3,
                            image_size=28, patch_size=14),
                t5=dict(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
                        feed_forward_proj="gated-gelu", tie_word_embeddings=False, decoder_start_token_id=0,
                        pad_token_id=0, eos_token_id=1, mm_hidden_size=32, mm_projector_type="mlp2x_gelu",
                        mm_vision_select_layer=-2, mm_vision_select_feature="patch", use_mm_proj=True))
    (tmp_path / "args.json").write_text(json.dumps(args))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(e) for e in envs), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", OFFICIAL_SCRIPT, str(tmp_path / "args.json")], env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["transformers"].startswith("4.") and out["tokenizer"] == "T5Tokenizer"  # the sentencepiece one
    ours = CLIPFlanT5("clip-flant5-xxl", tmp_path / "model", tmp_path / "clip", tmp_path / "tok", dtype="float32")
    assert len(ours.tokenizer) == out["len"] and ours.vision_from_checkpoint  # its .bin: vision_model.* keys
    assert [ours.encode(p) for p in prompts] == out["ids"]
    images = [Image.open(p) for p in args["images"]]
    assert torch.equal(ours.pixels(images), torch.load(tmp_path / "pixels.pt"))  # transformers 4's processor
    got = ours.score(images, prompts)["vqascore"].numpy()
    np.testing.assert_allclose(got, out["scores"], rtol=1e-6, atol=0)  # observed equal
    # the default protocol: bfloat16 weights under autocast (CPU autocast here, both sides)
    bf16 = CLIPFlanT5("clip-flant5-xxl", tmp_path / "model", tmp_path / "clip", tmp_path / "tok")
    np.testing.assert_allclose(bf16.score(images, prompts)["vqascore"].numpy(), out["scores_bf16"], rtol=1e-6)

def test_long_prompts_are_not_cut_at_77(tiny, tmp_path):
    model, vision, tok = tiny
    ours = CLIPFlanT5("clip-flant5-xxl", model, vision, tok, dtype="float32")
    image = Image.open(_images(tmp_path)[0])
    long = ours.score([image], [PROMPTS[2]])
    assert long["tokens"][0] > 77 and long["truncated"] == [False]
    # a different ending past token 77 changes the score: the end of the prompt is read
    other = ours.score([image], [PROMPTS[2] + " and a red cat"])["vqascore"].item()
    assert other != pytest.approx(long["vqascore"].item(), rel=1e-6)
    huge = ours.score([image], [" ".join(["the red dog"] * 700)])
    assert huge["tokens"][0] > scoring.CONTEXT_LEN and huge["truncated"] == [True]


def test_old_style_checkpoint_keys_and_bin_files(tiny, tmp_path):
    """A checkpoint saved by transformers 4 (vision keys under vision_model., .bin shards) loads the same."""
    from safetensors.torch import load_file

    model, vision, tok = tiny
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.json").write_text((model / "config.json").read_text())
    state = {k.replace("vision_tower.vision_tower.", "vision_tower.vision_tower.vision_model."): v
             for k, v in load_file(str(model / "model.safetensors")).items()}
    with torch.no_grad():  # the checkpoint's own tower copy wins over the CLIP folder's
        state["vision_tower.vision_tower.vision_model.post_layernorm.bias"] += 0  # same values, other key
    torch.save(state, old / "pytorch_model.bin")
    image, text = Image.open(_images(tmp_path)[1]), [PROMPTS[1]]
    a = CLIPFlanT5("clip-flant5-xxl", model, vision, tok, dtype="float32")
    b = CLIPFlanT5("clip-flant5-xxl", old, vision, tok, dtype="float32")
    assert b.vision_from_checkpoint
    assert b.score([image], text)["vqascore"].item() == pytest.approx(a.score([image], text)["vqascore"].item(),
                                                                        rel=1e-6)
    bf16 = CLIPFlanT5("clip-flant5-xxl", model, vision, tok)  # the default: bfloat16 weights, autocast
    assert bf16.protocol == "vqascore-clip-flant5-xxl-t2v-metrics" and a.protocol.endswith("-fp32")
    assert bf16.score([image], text)["vqascore"].item() == pytest.approx(a.score([image], text)["vqascore"].item(),
                                                                           rel=0.05)


def _opts(**task):
    return ScoreOptions(tasks=["vqascore"], num_samples=5, num_workers=0, progress=False, batch_size=2,
                        task_options={"vqascore": task})


def test_task_end_to_end(tiny):
    model, vision, tok = tiny
    (doc,) = score("demo", _opts(checkpoint=str(model), vision_tower=str(vision), tokenizer=str(tok),
                                 dtype="float32")).results
    assert doc["status"] == "ok" and doc["num_samples"] == 5, doc
    per = doc["per_sample"]
    ours = CLIPFlanT5("clip-flant5-xxl", model, vision, tok, dtype="float32")
    want = ours.score([Image.open(n) for n in per["name"]], per["prompt"])["vqascore"].numpy()
    np.testing.assert_allclose(per["vqascore"], want, rtol=2e-5)
    assert doc["metrics"]["vqascore"] == pytest.approx(float(np.mean(want)), rel=2e-5)
    assert doc["protocol"] == "vqascore-clip-flant5-xxl-t2v-metrics-fp32"
    assert per["truncated"] == [False] * 5 and all(t > 0 for t in per["tokens"])
    assert doc["details"]["weights"]["model"]["model.safetensors"]


def test_missing_folders_skip_with_the_download(tmp_path, tiny):
    (doc,) = score("demo", _opts()).results
    assert doc["status"] == "skipped" and "huggingface-cli download zhiqiulin/clip-flant5-xxl" in doc["fix"]
    model, vision, tok = tiny
    (doc,) = score("demo", _opts(checkpoint=str(model), vision_tower=str(tmp_path / "none"))).results
    assert doc["status"] == "skipped" and "openai/clip-vit-large-patch14-336" in doc["fix"]
    (doc,) = score("demo", _opts(checkpoint=str(model), vision_tower=str(vision))).results
    assert doc["status"] == "skipped" and "google/flan-t5-xxl" in doc["fix"]


def _tiny_blip(folder: Path) -> Path:
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", "yes", "no", "does", "this", "figure", "show",
             "a", "cat", "?", "\"", "please", "answer", "or", "."]
    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = transformers.BertTokenizer(str(folder / "vocab.txt"), bos_token="[DEC]")
    image_processor = transformers.BlipImageProcessor(size={"height": 32, "width": 32})
    transformers.BlipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    small = dict(hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=1)
    torch.manual_seed(1)
    config = transformers.BlipConfig(
        text_config=dict(vocab_size=len(vocab), max_position_embeddings=64, encoder_hidden_size=16,
                         bos_token_id=5, pad_token_id=0, sep_token_id=3, eos_token_id=3, **small),
        vision_config=dict(image_size=32, patch_size=16, **small), projection_dim=16)
    transformers.BlipForQuestionAnswering(config).save_pretrained(folder)
    return folder


def test_transformers_blip_backend(tmp_path):
    from evalsuite.tasks.vqascore.transformers_vqa import TransformersVQAScore

    folder = _tiny_blip(tmp_path / "tiny-blip-vqa")
    vqa = TransformersVQAScore(str(folder))
    assert vqa.protocol == "vqascore-tiny-blip-vqa-transformers"
    images = [Image.open(p) for p in _images(tmp_path)[:2]]
    got = vqa.score(images, ["a cat", "a cat a cat a cat"])["vqascore"]
    single = vqa.score(images[:1], ["a cat"])["vqascore"]
    assert 0 < got.min() and got.max() < 1 and single[0].item() == pytest.approx(got[0].item(), rel=1e-5)
    # the rule by hand: the decoder's answer "[DEC] yes [SEP]", mean log-probability of "yes" and "[SEP]"
    model, tok = vqa.model, vqa.processor.tokenizer
    inputs = vqa.processor(images=images[0].convert("RGB"), text=scoring.QUESTION_TEMPLATE.format("a cat"),
                           return_tensors="pt")
    with torch.no_grad():
        img = model.vision_model(pixel_values=inputs.pixel_values).last_hidden_state
        q = model.text_encoder(input_ids=inputs.input_ids, attention_mask=inputs.attention_mask,
                               encoder_hidden_states=img)[0]
        ids = torch.tensor([[5, tok.convert_tokens_to_ids("yes"), 3]])
        logp = model.text_decoder(input_ids=ids, encoder_hidden_states=q,
                                  encoder_attention_mask=inputs.attention_mask).logits.log_softmax(-1)
    want = float(torch.exp((logp[0, 0, ids[0, 1]] + logp[0, 1, 3]) / 2))
    assert single[0].item() == pytest.approx(want, rel=1e-5)
    (doc,) = score("demo", _opts(model=f"transformers:{folder}")).results
    assert doc["status"] == "ok" and doc["protocol"] == vqa.protocol


def _tiny_llava(folder: Path) -> Path:
    """A tiny random LLaVA-1.5 (CLIP vision, Llama text) with a word-level tokenizer and a LLaVA-style chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["<unk>", "<pad>", "<s>", "<image>", "USER", "ASSISTANT", ":", "Does", "this", "figure", "show", "\"",
             "?", "Please", "answer", "yes", "or", "no", ".", "Yes", "a", "cat", "red", "dog"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    template = ("{% for m in messages %}USER: {% for c in m['content'] %}{% if c['type'] == 'image' %}<image> "
                "{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endfor %} ASSISTANT:")
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>",
                                               bos_token="<s>", extra_special_tokens={"image_token": "<image>"})
    processor = transformers.LlavaProcessor(
        image_processor=transformers.CLIPImageProcessor(size={"shortest_edge": 28},
                                                        crop_size={"height": 28, "width": 28}),
        tokenizer=tok, patch_size=14, vision_feature_select_strategy="default", chat_template=template,
        num_additional_image_tokens=1)  # the CLS token, as llava-hf's processors
    torch.manual_seed(2)
    config = transformers.LlavaConfig(
        vision_config=transformers.CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_attention_heads=2,
                                                    num_hidden_layers=2, image_size=28, patch_size=14),
        text_config=transformers.LlamaConfig(vocab_size=len(words), hidden_size=32, intermediate_size=64,
                                             num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2),
        image_token_index=words.index("<image>"), vision_feature_layer=-2, vision_feature_select_strategy="default")
    transformers.LlavaForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def test_transformers_chat_vlm_backend(tmp_path):
    from evalsuite.tasks.vqascore.transformers_vqa import ChatVLMScore, TransformersVQAScore

    folder = _tiny_llava(tmp_path / "tiny-llava")
    vqa = TransformersVQAScore(str(folder))
    assert isinstance(vqa, ChatVLMScore) and vqa.protocol == "vqascore-tiny-llava-transformers"
    question, full = vqa.prompt("a red dog")
    assert question == 'USER: <image> Does this figure show "a red dog"? Please answer yes or no. ASSISTANT:'
    assert full == question + " Yes"
    image = Image.open(_images(tmp_path)[0])
    got = vqa.score([image, image], ["a red dog", "a cat"])
    # by hand: the logits at the last question position give the one answer token
    inputs = vqa.processor(images=[image.convert("RGB")], text=[question], return_tensors="pt")
    assert (inputs.input_ids == 3).sum() == 4  # the image expanded to its 2x2 patches
    with torch.no_grad():
        last = vqa.model(**inputs).logits[0, -1].float().softmax(-1)
    assert got["vqascore"][0].item() == pytest.approx(last[19].item(), rel=1e-5)  # P("Yes")
    assert got["vqascore"][0].item() != pytest.approx(got["vqascore"][1].item(), rel=1e-6)


def test_model_option_takes_the_checkpoint_folder(tmp_path, tiny):
    from evalsuite.tasks.vqascore.clip_flant5 import model_name

    for width, name in ((4096, "clip-flant5-xxl"), (2048, "clip-flant5-xl")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps({"d_model": width}))
        assert model_name(tmp_path / name) == name
    model, vision, tok = tiny
    with pytest.raises(InputError, match="neither CLIP-FlanT5-XXL nor -XL"):  # d_model 32
        score("demo", _opts(model=str(model), vision_tower=str(vision), tokenizer=str(tok)))
    (doc,) = score("demo", _opts(model=str(tmp_path / "clip-flant5-xl"))).results  # no weights: a skip
    assert doc["status"] == "skipped" and "zhiqiulin/clip-flant5-xl" in doc["fix"]
