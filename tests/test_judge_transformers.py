"""The `transformers:PATH` VLM judge on tiny random models of six real families built from their configs here (no
download): Qwen2-VL, Qwen2.5-VL, Qwen3-VL, LLaVA-OneVision (SigLIP + Qwen2) and InternVL (transformers-native) with
a byte-level tokenizer and native video input, and LLaVA (CLIP + Llama) with a metaspace tokenizer and a video as
several images; each with its real processor and image/video processor classes. Checked: the yes/no token sets are
exactly the planted variants; the (n, 2) output equals a forward pass written here (processor inputs, logits at the
last position, logsumexp over the planted ids) and transformers' generate() first step on a left-padded batch;
batched equals one at a time; a 3-frame video runs and
records its video input; the fingerprint is the digest of the weight files and follows them; bad folders give
InputError with a fix."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evalsuite.errors import InputError
from evalsuite.tasks.judge.transformers_judge import TransformersJudge, folder_fingerprint

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

YES_VARIANTS = {"qwen": ["yes", "Yes", "ĠYes", "Ġyes", "YES"], "llava": ["yes", "Yes", "▁Yes", "▁yes", "YES"]}
NO_VARIANTS = {"qwen": ["no", "No", "ĠNo", "NO"], "llava": ["no", "No", "▁No", "▁no"]}
# tokens that contain the letters but do not spell the words: never counted
DECOYS = {"qwen": ["yess", "Ġyesterday", "Ġnot", "nope", "Ġknow", "None"],
          "llava": ["yess", "▁yesterday", "▁not", "nope", "▁know", "None"]}
WORDS = {"qwen": ["user", "assistant", "Ċ", "Is", "Ġthere", "Ġa", "Ġcat", "Ġdog", "Ġred", "Ġin", "Ġthe", "Ġimage",
                  "Ġvideo", "?", ".", "ĠAnswer", "Ġor", "Ġmoving"],
         "llava": ["USER", ":", "ASSISTANT", "▁USER", "▁ASSISTANT", "▁Is", "▁there", "▁a", "▁cat", "▁dog", "▁red",
                   "▁in", "▁the", "▁image", "▁video", "?", ".", "▁Answer", "▁or", "▁moving"]}

# chat templates in the style of each family's real one (the user turn: media placeholders, then the text)
_QWEN_MEDIA = ("{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
               "{% elif c['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>")
_OV_MEDIA = "{% if c['type'] == 'image' %}<image>\n{% elif c['type'] == 'video' %}<video>\n"
_IVL_MEDIA = "{% if c['type'] == 'image' %}<IMG_CONTEXT>\n{% elif c['type'] == 'video' %}<video>\n"


def _chatml(media: str) -> str:
    return ("{% for message in messages %}<|im_start|>{{ message['role'] }}\n{% for c in message['content'] %}"
            + media + "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
            "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


LLAVA_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}USER: {% else %}ASSISTANT: {% endif %}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}<image>\n{% elif c['type'] == 'text' %}"
    "{{ c['text'] }}{% endif %}{% endfor %} {% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}")

_CHATML_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
SPECIAL = {"qwen": _CHATML_SPECIAL + ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"],
           "onevision": _CHATML_SPECIAL + ["<image>", "<video>"],
           "internvl": _CHATML_SPECIAL + ["<img>", "</img>", "<IMG_CONTEXT>", "<video>"],
           "llava": ["<unk>", "<s>", "</s>", "<pad>", "<image>"]}
TEMPLATES = {"qwen": _chatml(_QWEN_MEDIA), "onevision": _chatml(_OV_MEDIA), "internvl": _chatml(_IVL_MEDIA),
             "llava": LLAVA_TEMPLATE}
INTERNVL_TOKENS = {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
                   "video_token": "<video>"}

QUESTIONS = ["Is there a cat? Answer yes or no.",
             "Is there a red dog in the image moving in the video? Answer yes or no.",
             "Is there a dog?"]


def _tokenizer(style: str):
    """A tiny fast tokenizer: WordLevel over the planted vocabulary; byte-level (Ġ) like Qwen's real tokenizer for
    the chat-ML styles, metaspace (▁) like Llama's for LLaVA."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    bpe = "qwen" if style != "llava" else "llava"
    special = SPECIAL[style]
    unk = special[0]
    words = YES_VARIANTS[bpe] + NO_VARIANTS[bpe] + DECOYS[bpe] + WORDS[bpe]
    vocab = {tok: i for i, tok in enumerate(special + words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=unk))
    if bpe == "qwen":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
    else:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in special])
    if bpe == "qwen":
        extra = INTERNVL_TOKENS if style == "internvl" else None
        fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token=unk, pad_token="<|endoftext|>",
                                                    eos_token="<|im_end|>", extra_special_tokens=extra)
    else:
        fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token=unk, pad_token="<pad>",
                                                    bos_token="<s>", eos_token="</s>")
    return fast, vocab


def _text_config(vocab: dict[str, int], **extra) -> dict:
    return {"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 512,
            "pad_token_id": 0, **extra}


def _qwen_processors(video_cls=None):
    sizes = {"patch_size": 4, "merge_size": 2, "temporal_patch_size": 2}
    image = transformers.Qwen2VLImageProcessor(min_pixels=8 * 8, max_pixels=16 * 16, **sizes)
    video_cls = video_cls or transformers.Qwen2VLVideoProcessor
    video = video_cls(size={"shortest_edge": 8 * 8, "longest_edge": 16 * 16}, **sizes)
    return image, video


def _qwen_ids(vocab: dict[str, int]) -> dict[str, int]:
    return {"image_token_id": vocab["<|image_pad|>"], "video_token_id": vocab["<|video_pad|>"],
            "vision_start_token_id": vocab["<|vision_start|>"], "vision_end_token_id": vocab["<|vision_end|>"]}


MROPE = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]}


def _qwen2_vl(vocab):
    config = transformers.Qwen2VLConfig(
        text_config=_text_config(vocab, rope_parameters=MROPE),
        vision_config={"depth": 1, "embed_dim": 16, "hidden_size": 32, "num_heads": 2, "mlp_ratio": 2,
                       "patch_size": 4, "spatial_merge_size": 2, "temporal_patch_size": 2},
        **_qwen_ids(vocab))
    return transformers.Qwen2VLProcessor, _qwen_processors(), config, transformers.Qwen2VLForConditionalGeneration


def _qwen2_5_vl(vocab):
    config = transformers.Qwen2_5_VLConfig(
        text_config=_text_config(vocab, rope_parameters=MROPE),
        vision_config={"depth": 1, "hidden_size": 16, "intermediate_size": 32, "num_heads": 2, "out_hidden_size": 32,
                       "patch_size": 4, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 16,
                       "fullatt_block_indexes": [0]},
        **_qwen_ids(vocab))
    return (transformers.Qwen2_5_VLProcessor, _qwen_processors(), config,
            transformers.Qwen2_5_VLForConditionalGeneration)


def _qwen3_vl(vocab):
    config = transformers.Qwen3VLConfig(
        text_config=_text_config(vocab, head_dim=16, rope_parameters={**MROPE, "mrope_interleaved": True}),
        vision_config={"depth": 2, "hidden_size": 16, "intermediate_size": 32, "num_heads": 2, "out_hidden_size": 32,
                       "patch_size": 4, "spatial_merge_size": 2, "temporal_patch_size": 2,
                       "num_position_embeddings": 16, "deepstack_visual_indexes": [0]},
        **_qwen_ids(vocab))
    return (transformers.Qwen3VLProcessor, _qwen_processors(transformers.Qwen3VLVideoProcessor), config,
            transformers.Qwen3VLForConditionalGeneration)


def _llava_onevision(vocab):
    pinpoints = [[16, 16], [16, 32], [32, 16], [32, 32]]
    image = transformers.LlavaOnevisionImageProcessor(size={"height": 16, "width": 16}, image_grid_pinpoints=pinpoints)
    video = transformers.LlavaOnevisionVideoProcessor(size={"height": 16, "width": 16})
    config = transformers.LlavaOnevisionConfig(
        vision_config={"model_type": "siglip_vision_model", "hidden_size": 16, "intermediate_size": 32,
                       "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": 16, "patch_size": 4},
        text_config={"model_type": "qwen2", **_text_config(vocab)}, image_token_index=vocab["<image>"],
        video_token_index=vocab["<video>"], image_grid_pinpoints=pinpoints, vision_feature_select_strategy="full",
        vision_feature_layer=-1)

    def processor(**kw):
        return transformers.LlavaOnevisionProcessor(num_image_tokens=16, vision_feature_select_strategy="full", **kw)
    return processor, (image, video), config, transformers.LlavaOnevisionForConditionalGeneration


def _internvl(vocab):
    image = transformers.GotOcr2ImageProcessor(size={"height": 16, "width": 16}, crop_to_patches=False)
    video = transformers.InternVLVideoProcessor(size={"height": 16, "width": 16})
    config = transformers.InternVLConfig(
        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": [16, 16], "patch_size": [4, 4]},
        text_config={"model_type": "qwen2", **_text_config(vocab)}, image_token_id=vocab["<IMG_CONTEXT>"],
        image_seq_length=4, downsample_ratio=0.5)

    def processor(**kw):
        return transformers.InternVLProcessor(image_seq_length=4, **kw)
    return processor, (image, video), config, transformers.InternVLForConditionalGeneration


def _llava(vocab):
    image = transformers.CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    config = transformers.LlavaConfig(
        vision_config={"model_type": "clip_vision_model", "hidden_size": 16, "intermediate_size": 32,
                       "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": 16, "patch_size": 4,
                       "projection_dim": 16},
        text_config={"model_type": "llama", **_text_config(vocab, bos_token_id=vocab["<s>"],
                                                           eos_token_id=vocab["</s>"], pad_token_id=vocab["<pad>"])},
        image_token_id=vocab["<image>"], vision_feature_select_strategy="default", vision_feature_layer=-2)

    def processor(**kw):
        return transformers.LlavaProcessor(patch_size=4, vision_feature_select_strategy="default",
                                           num_additional_image_tokens=1, **kw)
    return processor, (image, None), config, transformers.LlavaForConditionalGeneration


#: family -> (tokenizer style, builder, the video input the judge should pick)
FAMILIES = {"qwen2_vl": ("qwen", _qwen2_vl, "native"), "qwen2_5_vl": ("qwen", _qwen2_5_vl, "native"),
            "qwen3_vl": ("qwen", _qwen3_vl, "native"), "llava_onevision": ("onevision", _llava_onevision, "native"),
            "internvl": ("internvl", _internvl, "native"), "llava": ("llava", _llava, "frames")}


def build_family(name: str, folder: Path, seed: int = 0) -> dict[str, int]:
    """Save a tiny random model of the family (config, weights, real processor class, tokenizer, chat template) to
    `folder`; returns the tokenizer's vocabulary."""
    style, builder, _ = FAMILIES[name]
    tokenizer, vocab = _tokenizer(style)
    processor_cls, (image, video), config, model_cls = builder(vocab)
    kwargs = {"image_processor": image, "tokenizer": tokenizer, "chat_template": TEMPLATES[style]}
    if video is not None:
        kwargs["video_processor"] = video
    processor = processor_cls(**kwargs)
    torch.manual_seed(seed)
    model = model_cls(config)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return vocab


def _bpe(name: str) -> str:
    return "llava" if name == "llava" else "qwen"


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request, tmp_path_factory):
    """(family name, folder, planted vocabulary, judge) for each family."""
    folder = tmp_path_factory.mktemp(f"judge-{request.param}")
    vocab = build_family(request.param, folder)
    judge = TransformersJudge(str(folder), device="cpu", batch_size=2)  # 3 pairs: a padded pass of 2, then 1
    return request.param, folder, vocab, judge


def _image(seed: int, size: tuple[int, int] = (16, 16)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def test_yes_no_token_sets_are_exactly_the_planted_variants(family):
    name, _, vocab, judge = family
    bpe = _bpe(name)
    assert judge.yes_token_ids == sorted(vocab[t] for t in YES_VARIANTS[bpe])
    assert judge.no_token_ids == sorted(vocab[t] for t in NO_VARIANTS[bpe])
    assert sorted(judge.details["yes_tokens"]) == sorted(YES_VARIANTS[bpe])
    assert sorted(judge.details["no_tokens"]) == sorted(NO_VARIANTS[bpe])


def test_logits_equal_a_forward_pass_written_here(family):
    name, folder, vocab, judge = family
    image, question = _image(1), QUESTIONS[0]
    got = judge.yes_no_logits([image], [question])
    assert got.shape == (1, 2) and got.dtype == np.float64

    processor = transformers.AutoProcessor.from_pretrained(folder, local_files_only=True)
    model = transformers.AutoModelForImageTextToText.from_pretrained(folder, local_files_only=True).eval()
    conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    text = processor.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    assert text.endswith("ASSISTANT:" if name == "llava" else "<|im_start|>assistant\n")
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    with torch.no_grad():
        last = model(**inputs).logits[0, -1].double()
    bpe = _bpe(name)
    yes = torch.logsumexp(last[[vocab[t] for t in YES_VARIANTS[bpe]]], 0).item()
    no = torch.logsumexp(last[[vocab[t] for t in NO_VARIANTS[bpe]]], 0).item()
    np.testing.assert_allclose(got[0], [yes, no], rtol=0, atol=1e-5)


def test_batched_equals_generate_first_step(family):
    """transformers' own generate() on a left-padded batch (its position ids, its caching) gives the same first-step
    logits as our single forward pass."""
    name, folder, vocab, judge = family
    media, questions = [_image(6), _image(7, (24, 16))], QUESTIONS[:2]
    got = judge.yes_no_logits(media, questions)

    processor = transformers.AutoProcessor.from_pretrained(folder, local_files_only=True)
    processor.tokenizer.padding_side = "left"
    model = transformers.AutoModelForImageTextToText.from_pretrained(folder, local_files_only=True).eval()
    texts = [processor.apply_chat_template([{"role": "user", "content": [{"type": "image"},
                                                                         {"type": "text", "text": q}]}],
                                           tokenize=False, add_generation_prompt=True) for q in questions]
    inputs = processor(text=texts, images=[[m] for m in media], padding=True, return_tensors="pt")
    assert (inputs["attention_mask"][:, 0] == 0).any()  # one row is left-padded
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=1, do_sample=False, output_logits=True,
                             return_dict_in_generate=True)
    first = out.logits[0].double()
    bpe = _bpe(name)
    expected = np.stack([torch.logsumexp(first[:, [vocab[t] for t in words]], -1).numpy()
                         for words in (YES_VARIANTS[bpe], NO_VARIANTS[bpe])], axis=1)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_batched_equals_one_at_a_time(family):
    _, _, _, judge = family
    media = [_image(2), _image(3, (24, 16)), _image(4)]
    single = np.concatenate([judge.yes_no_logits([m], [q]) for m, q in zip(media, QUESTIONS)])
    for size in (2, None):  # passes of 2 then 1, and all 3 in one pass
        judge.batch_size = size
        batched = judge.yes_no_logits(media, QUESTIONS)
        np.testing.assert_allclose(batched, single, rtol=0, atol=1e-5)
    judge.batch_size = 2
    assert not np.allclose(batched[0], batched[1])  # the rows differ: padding did not blur them


def test_video_runs_and_records_its_input(family):
    name, _, _, judge = family
    frames = [_image(10 + k) for k in range(3)]
    media = [frames, _image(5), frames]
    out = judge.yes_no_logits(media, [QUESTIONS[1], QUESTIONS[0], QUESTIONS[2]])
    assert out.shape == (3, 2) and np.isfinite(out).all()
    expected = FAMILIES[name][2]
    assert judge.video_input == expected and judge.details["video_input"] == expected
    alone = judge.yes_no_logits([frames], [QUESTIONS[1]])
    np.testing.assert_allclose(out[0], alone[0], rtol=0, atol=1e-5)
    text = judge.prompt(frames, QUESTIONS[1])
    processor = judge._processor
    if expected == "native":
        assert text.count(processor.video_token) == 1 and processor.image_token not in text
        assert judge.details["video_kwargs"]["do_sample_frames"] is False and judge.details["video_fps"] == 2.0
    else:
        assert text.count(processor.image_token) == 3 and judge.details["video_fps"] is None


def test_frames_mode_passes_a_video_as_images(tmp_path):
    folder = tmp_path / "ov"
    build_family("llava_onevision", folder)
    judge = TransformersJudge(str(folder), device="cpu", video="frames")
    frames = [_image(10 + k) for k in range(3)]
    assert judge.video_input == "frames" and judge.protocol.endswith("-videoframes")
    assert judge.prompt(frames, QUESTIONS[0]).count("<image>") == 3
    assert judge.yes_no_logits([frames], [QUESTIONS[0]]).shape == (1, 2)


def test_video_fps_reaches_the_native_video_input(tmp_path):
    folder = tmp_path / "qwen25"
    build_family("qwen2_5_vl", folder)
    frames = [_image(10 + k) for k in range(4)]
    media, questions = [frames, _image(1)], [QUESTIONS[1], QUESTIONS[0]]
    at2 = TransformersJudge(str(folder), device="cpu").yes_no_logits(media, questions)
    at1 = TransformersJudge(str(folder), device="cpu", video_fps=1.0).yes_no_logits(media, questions)
    assert not np.allclose(at2[0], at1[0], rtol=0, atol=1e-7)  # Qwen2.5-VL's temporal positions follow the fps
    np.testing.assert_array_equal(at2[1], at1[1])  # images do not


def test_fingerprint_is_the_weight_files_digest_and_follows_them(tmp_path):
    folder = tmp_path / "qwen"
    build_family("qwen2_vl", folder)
    lines = "".join(f"{p.name}\t{hashlib.sha256(p.read_bytes()).hexdigest()}\n"
                    for p in sorted(folder.glob("*.safetensors")))
    expected = hashlib.sha256(lines.encode()).hexdigest()
    judge = TransformersJudge(str(folder), device="cpu")
    assert judge.fingerprint == expected == folder_fingerprint(folder)[0]
    assert judge.protocol == "judge-qwen2_vl-qwen"
    assert judge.details["dtype"] == "float32" and judge.details["device"] == "cpu"
    assert judge.details["weight_files"] == {"model.safetensors": hashlib.sha256(
        (folder / "model.safetensors").read_bytes()).hexdigest()}

    other = tmp_path / "other"
    build_family("qwen2_vl", other, seed=1)  # same architecture, different weights
    assert folder_fingerprint(other)[0] != expected


def test_bad_folders_raise_input_error_with_a_command(tmp_path):
    cases = [tmp_path / "missing"]
    empty = tmp_path / "empty"
    empty.mkdir()
    cases.append(empty)
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text(json.dumps({"model_type": "qwen2_vl"}))
    cases.append(no_weights)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "qwen2_vl"}))
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    cases.append(broken)
    for folder in cases:
        with pytest.raises(InputError) as err:
            TransformersJudge(str(folder), device="cpu")
        assert str(folder) in err.value.message
        assert err.value.fix and "huggingface-cli download" in err.value.fix
    with pytest.raises(InputError):
        TransformersJudge("", device="cpu")

    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "config.json").write_text(json.dumps({"model_type": "internvl_chat", "auto_map": {
        "AutoModel": "modeling_internvl_chat.InternVLChatModel"}}))
    (remote / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(InputError) as err:
        TransformersJudge(str(remote), device="cpu")
    assert "remote code" in (err.value.fix or "") and "huggingface-cli download" in (err.value.fix or "")


def test_chat_template_from_the_tokenizer_and_none_at_all(tmp_path):
    folder = tmp_path / "llava"
    build_family("llava", folder)
    image = _image(1)
    expected = TransformersJudge(str(folder), device="cpu").yes_no_logits([image], [QUESTIONS[0]])
    template = (folder / "chat_template.jinja").read_text()
    (folder / "chat_template.jinja").unlink()  # an older folder: the template only in tokenizer_config.json
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "chat_template": template}))
    judge = TransformersJudge(str(folder), device="cpu")
    np.testing.assert_array_equal(judge.yes_no_logits([image], [QUESTIONS[0]]), expected)
    assert judge.details["chat_template_sha256"] == hashlib.sha256(template.encode()).hexdigest()

    (folder / "tokenizer_config.json").write_text(json.dumps(config))  # no template anywhere: refused
    with pytest.raises(InputError, match="chat template") as err:
        TransformersJudge(str(folder), device="cpu")
    assert "huggingface-cli download" in (err.value.fix or "")


def test_bad_options_raise_input_error(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"x")
    for kwargs in ({"dtpye": "bfloat16"}, {"dtype": "float64"}, {"video": "native"}, {"video_fps": 0},
                   {"batch_size": 0}, {"video_fps": "fast"}):
        with pytest.raises(InputError):
            TransformersJudge(str(folder), device="cpu", **kwargs)


def test_missing_transformers_names_pip(tmp_path, monkeypatch):
    import importlib.util

    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"x")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "transformers" else real(n, *a))
    with pytest.raises(InputError) as err:
        TransformersJudge(str(folder))
    assert "pip install transformers" in (err.value.fix or "")


def test_tokenizer_without_yes_or_no_is_refused():
    from evalsuite.tasks.judge.transformers_judge import yes_no_token_ids

    tokenizer, _ = _tokenizer("qwen")
    yes, no = yes_no_token_ids(tokenizer)
    assert len(yes) == len(YES_VARIANTS["qwen"]) and len(no) == len(NO_VARIANTS["qwen"])

    class NoYes:
        def get_vocab(self):
            return {"no": 0, "Ġnot": 1}

        def decode(self, ids, **_):
            return {0: "no", 1: " not"}[ids[0]]

    with pytest.raises(InputError, match="yes"):
        yes_no_token_ids(NoYes())


@pytest.mark.parametrize("name", ["qwen2_5_vl", "llava"])  # native video input, and video as frames
def test_score_with_a_tiny_real_family_judge_on_images_and_videos(name, tmp_path):
    """The issue's command end to end, offline: `score MODEL --tasks vlm-judge --judge transformers:PATH` on the
    demo's images and on demo-video's videos; scores are probabilities, the judge's fingerprint and video input are
    recorded, and the protocol names the folder's fingerprint."""
    from typer.testing import CliRunner

    from evalsuite.cli import app

    folder = tmp_path / f"tiny-{name}"
    build_family(name, folder)
    judge = TransformersJudge(str(folder), device="cpu")
    for model in ("demo", "demo-video"):
        result = CliRunner().invoke(app, ["score", model, "--tasks", "vlm-judge", "--judge", f"transformers:{folder}",
                                          "--num-samples", "2", "--store", str(tmp_path / "store"), "--json",
                                          "--workers", "0", "-o", "vlm-judge.video_frames=3"])
        assert result.exit_code == 0, result.output
        (doc,) = [d for d in json.loads(result.stdout)["results"] if d["metric"] == "judge_overall"]
        assert doc["status"] == "ok" and 0.0 < doc["value"] < 1.0
    from evalsuite.results import ResultsStore

    store = ResultsStore(tmp_path / "store")
    docs = [d for run in store.runs() for d in store.load_run(run["run_id"])]
    assert {d["details"]["medium"] for d in docs} == {"image", "video"}
    for d in docs:
        assert d["details"]["judge_fingerprint"] == judge.fingerprint
        assert d["protocol"].startswith(f"{judge.protocol}-{judge.fingerprint[:12]}-q")
    video = next(d for d in docs if d["details"]["medium"] == "video")
    assert video["details"]["judge_details"]["video_input"] == FAMILIES[name][2]
    assert all(len(frames) == 3 for frames in video["details"]["frames"]["per_video"])
