"""VBench task: results parsing, VBench's normalisation and Quality/Semantic/Total aggregation, the file layout, the
command line, and the task end to end against a FAKE VBench environment.

tests/data/vbench/mymodel_eval_results.json is a HAND-MADE recording in VBench 0.1.5's `<name>_eval_results.json`
format (all 16 dimensions, a few per-video entries each; invented numbers, not any model's). No real VBench
environment is created or installed here: the fake environment is a small Python script named `python` (its
shebang is this interpreter) beside a stand-in `vbench` package. Probes (`python -c ...`) run against the
stand-in; VBench's launch command (`-m torch.distributed.run ... -m vbench.launch.evaluate ...`) is parsed with
the launch script's own options, and answered by writing the recording's scores for the requested dimensions
(per-video entries for the videos VBench itself would find) into --output_path.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from evalsuite.errors import InputError, TaskSkipped
from evalsuite.runner import ScoreOptions, score
from evalsuite.tasks import vbench as vb
from evalsuite.tasks.vbench.checkpoints import expected_weights, offline_report

RECORDING = Path(__file__).parent / "data" / "vbench" / "mymodel_eval_results.json"

# two VBench prompts (from VBench_full_info.json) for the end-to-end run; a third is in the fake prompt list only
PROMPT_A = "a person swimming in ocean"
PROMPT_B = "a red bicycle"
PROMPT_C = "Turtle swimming in ocean."
QUALITY = ["subject_consistency", "background_consistency", "temporal_flickering", "motion_smoothness",
           "aesthetic_quality", "imaging_quality", "dynamic_degree"]  # VBench's QUALITY_LIST order
SEMANTIC = ["object_class", "multiple_objects", "human_action", "color", "spatial_relationship", "scene",
            "appearance_style", "temporal_style", "overall_consistency"]
FAKE_FULL_INFO = [
    {"prompt_en": PROMPT_A, "dimension": QUALITY + ["overall_consistency"]},
    {"prompt_en": PROMPT_B, "dimension": SEMANTIC},
    {"prompt_en": PROMPT_C, "dimension": ["aesthetic_quality", "imaging_quality"]},
    {"prompt_en": PROMPT_A, "dimension": ["aesthetic_quality"]},  # VBench's list repeats some prompts too
]

FAKE_PYTHON = r'''#!@EXE@
"""Fake interpreter of a VBench environment (tests only)."""
import argparse, json, os, sys

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SITE = os.path.join(HERE, "site")
args = sys.argv[1:]
with open(os.path.join(HERE, "calls.jsonl"), "a") as fh:
    fh.write(json.dumps(args) + "\n")
if os.path.exists(os.path.join(HERE, "BROKEN")):
    sys.exit("ModuleNotFoundError: No module named 'vbench'")
if args[:1] == ["-c"]:
    sys.path.insert(0, SITE)
    sys.argv = ["-c"]
    exec(compile(args[1], "<string>", "exec"), {"__name__": "__main__"})
    sys.exit(0)
launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", "-m", "vbench.launch.evaluate"]
if args[:len(launcher)] == launcher:
    args = args[len(launcher):]
elif args[:1] and args[0].endswith("cpu_launch.py"):  # evalsuite's CPU launch of the same script
    args = args[1:]
else:
    sys.exit("fake python: unexpected command " + " ".join(args))
p = argparse.ArgumentParser()  # the options of vbench/launch/evaluate.py (0.1.5) that evalsuite passes
p.add_argument("--videos_path", required=True)
p.add_argument("--output_path", default="./evaluation_results/")
p.add_argument("--full_json_dir", default=os.path.join(SITE, "vbench", "VBench_full_info.json"))
p.add_argument("--dimension", nargs="+", required=True)
p.add_argument("--mode", choices=["custom_input", "vbench_standard", "vbench_category"], default="vbench_standard")
p.add_argument("--prompt_file")
a = p.parse_args(args)
print("start evaluation")
if os.path.exists(os.path.join(HERE, "FAIL")):
    print("Traceback (most recent call last):\n  File \"vbench/launch/evaluate.py\"\n"
          "RuntimeError: CUDA error: out of memory", file=sys.stderr)
    sys.exit(1)
names = sorted(os.listdir(a.videos_path))
if a.mode == "vbench_standard":  # what VBench.build_full_info_json looks up
    info = json.load(open(a.full_json_dir))
    def videos_for(dim):
        found = [f"{e['prompt_en']}-{i}.mp4" for e in info if dim in e["dimension"] for i in range(5)]
        return [os.path.join(a.videos_path, n) for n in dict.fromkeys(found) if n in names]
else:
    assert not set(a.dimension) & {"object_class", "multiple_objects", "scene", "appearance_style", "color",
                                   "spatial_relationship"}
    if a.prompt_file:
        assert sorted(json.load(open(a.prompt_file))) == names
    def videos_for(dim):
        return [os.path.join(a.videos_path, n) for n in names]
recording = json.load(open(os.path.join(HERE, "recording.json")))
out = {}
for dim in a.dimension:
    videos = videos_for(dim)
    if not videos:
        raise ZeroDivisionError("division by zero")
    values = [e["video_results"] for e in recording[dim][1]]
    out[dim] = [recording[dim][0], [{"video_path": v, "video_results": values[i % len(values)]}
                                    for i, v in enumerate(videos)]]
os.makedirs(a.output_path, exist_ok=True)
with open(os.path.join(a.output_path, "results_2024-06-01-12:00:00_eval_results.json"), "w") as fh:
    json.dump(out, fh)
print("done")
'''


@pytest.fixture(autouse=True)
def _weights_home(tmp_path, monkeypatch):
    """VBench's weight folders (~/.cache/vbench, ~/.cache/clip, torch.hub's, the HF hub's) under a temporary HOME."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("VBENCH_CACHE_DIR", "TORCH_HOME", "XDG_CACHE_HOME", "HF_HOME", "HF_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)


def put_weights(dimensions=None) -> list[str]:
    """Empty stand-ins at every path VBench expects for `dimensions` (default all): what the task checks is presence."""
    made = []
    for dim in dimensions or vb.DIMENSIONS:
        for e in expected_weights(dim):
            path = Path(e.path)
            if e.folder:
                path.mkdir(parents=True, exist_ok=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"")
            made.append(e.path)
    return made


def make_fake_env(root: Path, detectron2: bool = True, cuda: bool = True, weights: bool = True) -> Path:
    site = root / "site"
    (site / "vbench").mkdir(parents=True)
    (site / "vbench" / "__init__.py").write_text("")  # like vbench 0.1.5: no __version__
    (site / "vbench" / "utils.py").write_text(  # VBench's cache folder, as vbench/utils.py
        "import os\nCACHE_DIR = os.environ.get('VBENCH_CACHE_DIR') or os.path.join(os.path.expanduser('~'), "
        "'.cache', 'vbench')\n")
    (site / "vbench" / "VBench_full_info.json").write_text(json.dumps(FAKE_FULL_INFO))
    (site / "vbench-0.1.5.dist-info").mkdir()
    (site / "vbench-0.1.5.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: vbench\nVersion: 0.1.5\n")
    (site / "torch").mkdir()
    (site / "torch" / "__init__.py").write_text(
        f"__version__ = '0.0+fake'\nclass cuda:\n    @staticmethod\n    def is_available():\n        return {cuda}\n")
    (site / "pkg_resources").mkdir()  # setuptools<81's, which openai-clip imports
    (site / "pkg_resources" / "__init__.py").write_text("")
    if detectron2:
        (site / "detectron2").mkdir()
        (site / "detectron2" / "__init__.py").write_text("")
    (root / "recording.json").write_text(RECORDING.read_text())
    python = root / "bin" / "python"
    python.parent.mkdir()
    python.write_text(FAKE_PYTHON.replace("@EXE@", sys.executable))
    python.chmod(0o755)
    if weights:
        put_weights()
    return python


def calls(python: Path) -> list[list[str]]:
    log = python.parent.parent / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []


# --------------------------------------------------------------------------- the package and the old module
def test_old_module_reexports_the_package():
    """`evalsuite.tasks.video_vbench` (stored docs, users' scripts) is a re-export of `evalsuite.tasks.vbench`: every
    public name is the same object, and the task is registered once, from `evalsuite.tasks.vbench.task`."""
    from evalsuite.task import BUILTIN_TASK_MODULES, get
    from evalsuite.tasks import video_vbench

    assert sorted(video_vbench.__all__) == sorted(vb.__all__)
    for name in vb.__all__:
        assert getattr(video_vbench, name) is getattr(vb, name), name
    assert "evalsuite.tasks.vbench.task" in BUILTIN_TASK_MODULES
    assert get("vbench") is vb.VBenchTask is video_vbench.VBenchTask
    assert vb.VBenchTask.__module__ == "evalsuite.tasks.vbench.task"


# --------------------------------------------------------------------------- parsing
def test_parse_recording():
    res = vb.parse_results(RECORDING)
    assert sorted(res.scores) == sorted(vb.DIMENSIONS)
    assert res.scores["subject_consistency"] == 0.9541 and res.scores["scene"] == 0.4930
    assert [v["value"] for v in res.videos["dynamic_degree"]] == [1.0, 0.0, 1.0]  # booleans as 0/1
    assert [v["value"] for v in res.videos["human_action"]] == [1.0, 0.0]
    assert res.videos["subject_consistency"][1] == {
        "video_path": "sampled_videos/mymodel/a person swimming in ocean-1.mp4", "value": 0.9470}
    assert res.raw["appearance_style"][1][0]["cur_sim"] == 0.2280  # the raw document is kept as written


def test_parse_merges_files_and_folders(tmp_path):
    doc = json.loads(RECORDING.read_text())
    (tmp_path / "quality_eval_results.json").write_text(json.dumps({k: doc[k] for k in QUALITY}))
    (tmp_path / "semantic_eval_results.json").write_text(
        json.dumps({k.replace("_", " "): doc[k] for k in SEMANTIC}))  # cal_final_score's spelling is accepted
    (tmp_path / "other.json").write_text("not read")
    whole = vb.parse_results(RECORDING)
    assert vb.parse_results(tmp_path).scores == whole.scores
    listed = vb.parse_results([tmp_path / "quality_eval_results.json", tmp_path / "semantic_eval_results.json"])
    assert listed.scores == whole.scores and listed.videos == whole.videos
    (tmp_path / "z_eval_results.json").write_text(json.dumps({"color": [0.5, []]}))
    with pytest.raises(InputError, match="color is in both"):
        vb.parse_results(tmp_path)


@pytest.mark.parametrize("content, match", [
    ("{not json", "cannot be read as JSON"),
    ("[1, 2]", "not a non-empty JSON object"),
    ('{"color": 0.5}', "not a \\[score, \\[per-video results\\]\\] pair"),
    ('{"color": ["high", []]}', "not a finite number"),
    ('{"color": [NaN, []]}', "not a finite number"),
    ('{"color": [0.5, [{"video_results": 1.0}]]}', "lacks video_path or video_results"),
])
def test_parse_malformed(tmp_path, content, match):
    path = tmp_path / "bad_eval_results.json"
    path.write_text(content)
    with pytest.raises(InputError, match=match) as info:
        vb.parse_results(path)
    assert str(path) in info.value.message


def test_parse_missing_inputs(tmp_path):
    with pytest.raises(InputError, match="do not exist"):
        vb.parse_results(tmp_path / "nope.json")
    with pytest.raises(InputError, match="no \\*_eval_results.json"):
        vb.parse_results(tmp_path)


# --------------------------------------------------------------------------- normalisation and aggregation
def test_normalize_two_dimensions_by_hand():
    norm = vb.normalize({"subject_consistency": 0.9541, "scene": 0.4930, "not a dimension": 3.0})
    assert norm["subject_consistency"] == pytest.approx((0.9541 - 0.1462) / (1.0 - 0.1462))  # 0.94624...
    assert norm["scene"] == pytest.approx(0.4930 / 0.8222)  # 0.59961...
    assert norm["subject_consistency"] == pytest.approx(0.946240337, abs=1e-9)
    assert norm["scene"] == pytest.approx(0.599610800, abs=1e-9)
    assert set(norm) == {"subject_consistency", "scene"}
    assert vb.normalize({"temporal flickering": 1.0}) == {"temporal_flickering": pytest.approx(1.0)}


def hand_scores() -> tuple[float, float, float]:
    quality_terms = [(0.9541 - 0.1462) / (1.0 - 0.1462), (0.9653 - 0.2615) / (1.0 - 0.2615),
                     (0.9787 - 0.6293) / (1.0 - 0.6293), (0.9734 - 0.706) / (0.9975 - 0.706),
                     0.5823, 0.6412, 0.5 * 0.4861]  # dynamic degree weighs 0.5
    quality = sum(quality_terms) / 6.5
    semantic = (0.8530 + 0.3127 + 0.8800 + 0.8102 + 0.4215 + 0.4930 / 0.8222 + (0.2267 - 0.0009) / (0.2855 - 0.0009)
                + 0.2431 / 0.364 + 0.2598 / 0.364) / 9
    return quality, semantic, (4 * quality + semantic) / 5


def test_aggregate_by_hand():
    quality, semantic, total = hand_scores()
    agg = vb.aggregate(vb.parse_results(RECORDING).scores)
    assert agg["quality"] == pytest.approx(quality, abs=1e-12)
    assert agg["semantic"] == pytest.approx(semantic, abs=1e-12)
    assert agg["total"] == pytest.approx(total, abs=1e-12)
    assert agg["quality"] == pytest.approx(0.8039490, abs=1e-6)
    assert agg["semantic"] == pytest.approx(0.6724443, abs=1e-6)
    assert agg["total"] == pytest.approx(0.7776481, abs=1e-6)
    assert agg["missing"] == {"quality": [], "semantic": []}
    assert len(agg["normalized"]) == 16


def test_aggregate_with_missing_dimensions():
    scores = vb.parse_results(RECORDING).scores
    quality, _, _ = hand_scores()
    no_color = {k: v for k, v in scores.items() if k != "color"}
    agg = vb.aggregate(no_color)
    assert agg["quality"] == pytest.approx(quality) and agg["semantic"] is None and agg["total"] is None
    assert agg["missing"] == {"quality": [], "semantic": ["color"]}
    agg = vb.aggregate({k: v for k, v in no_color.items() if k not in ("dynamic_degree", "scene")})
    assert agg["quality"] is None and agg["semantic"] is None and agg["total"] is None
    assert agg["missing"] == {"quality": ["dynamic_degree"], "semantic": ["color", "scene"]}
    assert "scene" not in agg["normalized"] and "subject_consistency" in agg["normalized"]


# --------------------------------------------------------------------------- layout and command line
def test_layout_names(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    files = []
    for i in range(4):
        f = src / f"{i}.mp4"
        f.write_bytes(b"video %d" % i)
        files.append(f)
    long_prompt = "x" * 300
    entries = vb.write_layout([(PROMPT_A, 0, files[0]), (PROMPT_A, 1, files[1]), ("a cat/dog", 0, files[2]),
                               (long_prompt, 3, files[3])], tmp_path / "layout")
    names = [e.name for e in entries]
    assert names == [f"{PROMPT_A}-0.mp4", f"{PROMPT_A}-1.mp4", "a cat_dog-0.mp4", "x" * 180 + "-3.mp4"]
    assert sorted(os.listdir(tmp_path / "layout")) == sorted(names)
    assert os.path.samefile(tmp_path / "layout" / names[0], files[0])  # a hard link, not a copy
    assert (tmp_path / "layout" / names[2]).read_bytes() == b"video 2"
    assert entries[2].prompt == "a cat/dog" and entries[3].index == 3
    with pytest.raises(InputError, match="not empty"):
        vb.write_layout([(PROMPT_B, 0, files[0])], tmp_path / "layout")
    with pytest.raises(InputError, match="both be named"):
        vb.write_layout([("a/b", 0, files[0]), ("a_b", 0, files[1])], tmp_path / "dup")
    webm = src / "clip.webm"
    webm.write_bytes(b"")
    with pytest.raises(InputError, match="one type, .mp4 or .gif"):
        vb.write_layout([(PROMPT_A, 0, files[0]), (PROMPT_B, 0, webm)], tmp_path / "mixed")


def test_vbench_command():
    cmd = vb.vbench_command("/env/bin/python", "/w/videos", ["subject_consistency", "color"], "/w/out",
                            "vbench_standard", full_info="/env/vbench/VBench_full_info.json")
    assert cmd == ["/env/bin/python", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
                   "-m", "vbench.launch.evaluate", "--videos_path", "/w/videos", "--output_path", "/w/out",
                   "--mode", "vbench_standard", "--full_json_dir", "/env/vbench/VBench_full_info.json",
                   "--dimension", "subject_consistency", "color"]
    custom = vb.vbench_command("py", "v", ["imaging_quality"], "o", "custom_input", prompt_file="o/p.json")
    assert custom[8:] == ["--videos_path", "v", "--output_path", "o", "--mode", "custom_input", "--prompt_file",
                          "o/p.json", "--dimension", "imaging_quality"]


def test_run_vbench_rejects_bad_requests(tmp_path):
    with pytest.raises(InputError, match="custom_input"):
        vb.run_vbench("py", tmp_path, ["color"], tmp_path / "o", "custom_input")
    with pytest.raises(InputError, match="unknown VBench dimension"):
        vb.run_vbench("py", tmp_path, ["sharpness"], tmp_path / "o")
    with pytest.raises(InputError, match="unknown VBench mode"):
        vb.run_vbench("py", tmp_path, ["color"], tmp_path / "o", "vbench_category")


# --------------------------------------------------------------------------- the environment
def test_find_python(tmp_path, isolated_home):
    with pytest.raises(TaskSkipped) as skip:
        vb.find_python(None)
    assert "evalsuite vbench setup" in skip.value.fix and "--vbench-python" in skip.value.fix
    python = make_fake_env(tmp_path / "env")
    assert vb.find_python(str(tmp_path / "env")) == python  # a venv folder works too
    assert vb.find_python(str(python)) == python
    with pytest.raises(InputError, match="no interpreter"):
        vb.find_python(str(tmp_path / "missing" / "python"))
    default = make_fake_env(isolated_home / "vbench-env")
    assert vb.find_python(None) == default


def test_check_env(tmp_path):
    python = make_fake_env(tmp_path / "env", detectron2=False)
    info = vb.check_env(python)
    assert info["vbench"] == "0.1.5" and info["cuda"] is True and info["detectron2"] is False
    assert info["full_info"] == str(tmp_path / "env" / "site" / "vbench" / "VBench_full_info.json")
    assert calls(python)[0][0] == "-c"
    (tmp_path / "env" / "BROKEN").write_text("")
    with pytest.raises(TaskSkipped, match="No module named 'vbench'") as skip:
        vb.check_env(python)
    assert "setup --force" in skip.value.fix
    with pytest.raises(TaskSkipped, match="does not exist"):
        vb.check_env(tmp_path / "nope" / "python")


def test_setup_commands_pin_vbench():
    cmds = vb.setup_commands("/envs/vb", "python3.10")
    assert cmds[0] == ["python3.10", "-m", "venv", "/envs/vb"]
    assert cmds[-1] == ["/envs/vb/bin/python", "-m", "pip", "install", "vbench==0.1.5", "transformers==4.33.2",
                        "numpy<2", "timm<=1.0.12", "setuptools<81"]
    assert any("torch" in c for c in cmds[2])


def test_setup_command_refuses_python_312_and_keeps_working_env(tmp_path):
    fake312 = tmp_path / "python3.12"
    fake312.write_text("#!/bin/sh\necho '3 12'\n")
    fake312.chmod(0o755)
    with pytest.raises(InputError, match="3.12 or newer"):
        vb.setup_command(tmp_path / "new-env", python=str(fake312), echo=lambda s: None)
    assert not (tmp_path / "new-env").exists()
    python = make_fake_env(tmp_path / "env")
    said = []
    assert vb.setup_command(tmp_path / "env", echo=said.append) == python  # works already: nothing is installed
    assert "already set up" in said[0]
    assert [c[0] for c in calls(python)] == ["-c"]


FAKE_BASE_PYTHON = r'''#!/bin/sh
# a base interpreter: `-m venv PATH` makes PATH/bin/python, whose `pip install vbench...` fails until PATH/FIXED exists
if [ "$1" = "-c" ]; then echo "3 11"; exit 0; fi
env="$3"
mkdir -p "$env/bin" && touch "$env/pyvenv.cfg"
cat > "$env/bin/python" <<EOS
#!/bin/sh
echo "python \$*" >> "$env/calls.txt"
case "\$*" in
  *vbench==*) if [ ! -e "$env/FIXED" ]; then
      echo "ERROR: Could not find a version that satisfies the requirement vbench==0.1.5 (from versions: none)"
      echo "ERROR: No matching distribution found for vbench==0.1.5"; exit 1; fi ;;
  "-c "*) exit 3 ;;
esac
echo "Successfully installed something"
EOS
chmod +x "$env/bin/python"
'''


def test_setup_steps_and_torch_pin():
    steps = vb.setup_steps("/envs/vb", "python3.11", torch_spec="torch==2.14.1 torchvision==0.29.1")
    assert [label for label, _ in steps] == [
        "creating the virtualenv", "upgrading pip", "installing torch==2.14.1 torchvision==0.29.1",
        "installing vbench==0.1.5 with its pins (transformers==4.33.2, numpy<2, timm<=1.0.12) and setuptools<81"]
    assert steps[2][1][-2:] == ["torch==2.14.1", "torchvision==0.29.1"]
    assert steps[3][1][-6:] == ["transformers==4.33.2", "numpy<2", "timm<=1.0.12", "setuptools<81", "torch==2.14.1",
                                "torchvision==0.29.1"]  # resolving vbench keeps that torch


def test_pip_failure_names_the_package():
    assert vb.pip_failure(["ERROR: Could not find a version that satisfies the requirement tokenizers<0.14",
                           "ERROR: No matching distribution found for tokenizers<0.14"]) == (
        "tokenizers<0.14: no matching distribution on the index; tokenizers<0.14: no version satisfies the requirement")
    assert vb.pip_failure(["  Failed building wheel for decord"]) == "decord: its wheel failed to build"
    assert vb.pip_failure(["Successfully installed x"]) is None


def test_setup_shows_steps_names_the_failing_package_and_resumes(tmp_path):
    base = tmp_path / "python3.11"
    base.write_text(FAKE_BASE_PYTHON)
    base.chmod(0o755)
    said, pip_lines = [], []
    with pytest.raises(InputError) as failed:
        vb.setup_command(tmp_path / "env", python=str(base), echo=said.append, output=pip_lines.append,
                         torch_spec="torch==2.14.1 torchvision==0.29.1")
    assert [s.split("]")[0] for s in said if s.startswith("[")] == ["[1/4", "[2/4", "[3/4", "[4/4"]
    assert "step 4/4 (installing vbench==0.1.5" in failed.value.message
    assert "vbench==0.1.5: no matching distribution on the index" in failed.value.message
    assert any("No matching distribution" in line for line in pip_lines)  # pip's own output, passed through
    (tmp_path / "env" / "FIXED").write_text("")
    said.clear()
    with pytest.raises(InputError, match="installed but is not usable"):  # the fake env's vbench never imports
        vb.setup_command(tmp_path / "env", python=str(base), echo=said.append, output=pip_lines.append)
    assert "completing it" in said[0] and said[1] == "[1/4] creating the virtualenv: " + str(tmp_path / "env") + \
        " exists, kept"


# --------------------------------------------------------------------------- run_vbench with the fake environment
def _layout(tmp_path: Path, prompts: list[str]) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    videos = []
    for i, p in enumerate(prompts):
        f = src / f"{i}.mp4"
        f.write_bytes(b"fake video")
        videos.append((p, 0, f))
    vb.write_layout(videos, tmp_path / "videos")
    return tmp_path / "videos"


def test_run_vbench_fake_env(tmp_path):
    python = make_fake_env(tmp_path / "env")
    videos = _layout(tmp_path, ["my own prompt", "another/prompt"])
    prompts = {"my own prompt-0.mp4": "my own prompt", "another_prompt-0.mp4": "another/prompt"}
    res = vb.run_vbench(python, videos, ["imaging_quality", "dynamic_degree"], tmp_path / "out", "custom_input",
                        timeout=120, prompts=prompts)
    assert res.scores == {"imaging_quality": 0.6412, "dynamic_degree": 0.4861}
    assert sorted(os.path.basename(v["video_path"]) for v in res.videos["imaging_quality"]) == sorted(prompts)
    launch = calls(python)[-1]
    assert launch[:8] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", "-m",
                          "vbench.launch.evaluate", "--videos_path"]
    assert launch[launch.index("--mode") + 1] == "custom_input"
    assert launch[launch.index("--dimension") + 1:] == ["imaging_quality", "dynamic_degree"]
    assert json.loads((tmp_path / "out" / "evalsuite_prompts.json").read_text()) == prompts
    assert "done" in (tmp_path / "out" / "vbench.log").read_text()


def test_run_vbench_failure_reports_the_log(tmp_path):
    python = make_fake_env(tmp_path / "env")
    (tmp_path / "env" / "FAIL").write_text("")
    videos = _layout(tmp_path, [PROMPT_A])
    with pytest.raises(InputError, match="exit 1") as info:
        vb.run_vbench(python, videos, ["subject_consistency"], tmp_path / "out", timeout=120)
    assert "CUDA error: out of memory" in info.value.message
    assert not list((tmp_path / "out").glob("*_eval_results.json"))


# --------------------------------------------------------------------------- the task, end to end
def _prompts_file(tmp_path: Path) -> Path:
    path = tmp_path / "vbench_prompts.txt"
    path.write_text(f"{PROMPT_A}\n{PROMPT_B}\n")
    return path


def test_task_end_to_end_standard_prompts(tmp_path):
    python = make_fake_env(tmp_path / "env")
    store = tmp_path / "store"
    run = score("demo-video", ScoreOptions.with_legacy(tasks=["vbench"], vbench_python=str(python), num_samples=2,
                                           prompts=_prompts_file(tmp_path), store=store, progress=False))
    doc = run.results[0]
    assert doc["status"] == "ok", doc.get("reason")
    quality, semantic, total = hand_scores()
    assert doc["metrics"]["quality"] == pytest.approx(quality)
    assert doc["metrics"]["semantic"] == pytest.approx(semantic)
    assert doc["metrics"]["total"] == pytest.approx(total)
    assert doc["metrics"]["subject_consistency"] == 0.9541  # raw, not normalised
    details = doc["details"]
    assert details["mode"] == "vbench_standard" and details["vbench_version"] == "0.1.5"
    assert sorted(details["dimensions_run"]) == sorted(vb.DIMENSIONS) and details["missing"] == {}
    assert details["normalized"]["scene"] == pytest.approx(0.4930 / 0.8222)
    assert details["coverage"]["aesthetic_quality"] == {"prompts": 1, "of_prompts": 2, "videos": 1, "of_videos": 10}
    assert details["complete_standard_suite"] is False
    assert doc["protocol"] == "vbench-0.1.5-vbench_standard-partial"  # 1 video per prompt, not 5
    per = doc["per_sample"]
    assert per["name"] == [f"{PROMPT_A}-0.mp4", f"{PROMPT_B}-0.mp4"]
    assert per["subject_consistency"] == [0.9612] and per["subject_consistency:name"] == [f"{PROMPT_A}-0.mp4"]
    assert per["overall_consistency"] == [0.2655, 0.2541]  # both prompts, in layout order
    assert doc["num_samples"] == 2
    launch = calls(python)[-1]
    assert launch[launch.index("--full_json_dir") + 1].endswith("VBench_full_info.json")
    assert "--prompt_file" not in launch
    assert details["command"][details["command"].index("--videos_path") + 1] == "$WORK/videos"
    stored = json.loads((store / "runs" / run.run_id / "vbench.json").read_text())
    assert stored["metrics"]["total"] == pytest.approx(total)
    raw = json.loads((store / "runs" / run.run_id / "vbench.eval_results.json").read_text())
    assert raw["color"][0] == 0.8102
    assert not (store / "vbench-work").exists()  # the layout and VBench's output are removed


def test_task_custom_prompts_runs_quality_only(tmp_path):
    python = make_fake_env(tmp_path / "env")
    run = score("demo-video", ScoreOptions.with_legacy(tasks=["vbench"], vbench_python=str(python), num_samples=3,
                                           store=tmp_path / "store", progress=False))
    doc = run.results[0]
    assert doc["status"] == "ok", doc.get("reason")
    assert doc["protocol"] == "vbench-0.1.5-custom_input"
    quality, _, _ = hand_scores()
    assert doc["metrics"]["quality"] == pytest.approx(quality)
    assert "semantic" not in doc["metrics"] and "total" not in doc["metrics"]
    assert doc["details"]["missing"] == {"semantic": SEMANTIC}
    assert "color" in doc["details"]["dimensions_not_run"]
    launch = calls(python)[-1]
    assert launch[launch.index("--dimension") + 1:] == QUALITY
    prompts_json = launch[launch.index("--prompt_file") + 1]
    assert prompts_json.endswith("evalsuite_prompts.json")
    assert len(doc["per_sample"]["imaging_quality"]) == len(doc["per_sample"]["name"]) == 3


def test_task_without_detectron2_skips_those_dimensions(tmp_path):
    python = make_fake_env(tmp_path / "env", detectron2=False)
    doc = score("demo-video", ScoreOptions.with_legacy(tasks=["vbench"], vbench_python=str(python), num_samples=2,
                                           prompts=_prompts_file(tmp_path), store=tmp_path / "store",
                                           progress=False)).results[0]
    assert doc["status"] == "ok"
    assert doc["details"]["dimensions_not_run"]["color"].startswith("detectron2")
    assert "total" not in doc["metrics"] and "quality" in doc["metrics"]
    assert doc["details"]["missing"]["semantic"] == ["object_class", "multiple_objects", "color",
                                                     "spatial_relationship"]


def test_task_failing_env_stores_nothing(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the failed run's log is kept
    python = make_fake_env(tmp_path / "env")
    (tmp_path / "env" / "FAIL").write_text("")
    store = tmp_path / "store"
    with pytest.raises(InputError, match="VBench failed") as info:
        score("demo-video", ScoreOptions.with_legacy(tasks=["vbench"], vbench_python=str(python), num_samples=2,
                                         prompts=_prompts_file(tmp_path), store=store, progress=False))
    assert "out of memory" in info.value.message and "full log:" in info.value.message
    kept = Path(info.value.message.split("full log: ")[1].strip())
    assert kept.parent == tmp_path and "CUDA error: out of memory" in kept.read_text()
    assert not list(store.glob("runs/*/vbench*.json"))
    assert not (store / "vbench-work").exists()


def test_task_without_env_is_skipped_with_the_fix(tmp_path):
    run = score("demo-video", ScoreOptions(tasks=["vbench"], num_samples=2, store=tmp_path / "store",
                                           progress=False))
    doc = run.results[0]
    assert doc["status"] == "skipped"
    assert "no VBench environment" in doc["reason"]
    assert "evalsuite vbench setup" in doc["fix"] and "--vbench-python" in doc["fix"]
    assert (tmp_path / "store" / "runs" / run.run_id / "vbench.json").is_file()


def test_task_without_cuda_runs_the_launch_script_on_the_cpu(tmp_path):
    python = make_fake_env(tmp_path / "env", cuda=False)
    doc = score("demo-video", ScoreOptions.with_legacy(tasks=["vbench"], vbench_python=str(python), num_samples=2,
                                           store=tmp_path / "store", progress=False)).results[0]
    assert doc["status"] == "ok", doc.get("reason")
    assert doc["details"]["device"] == "cpu" and "main() on the CPU" in doc["details"]["launcher"]
    launch = calls(python)[-1]
    assert launch[0].endswith("cpu_launch.py") and launch[1] == "--videos_path"
    assert launch[launch.index("--dimension") + 1:] == QUALITY
    # asking for VBench's own CUDA launch without CUDA skips, with the fix
    doc = score("demo-video", ScoreOptions.with_legacy(tasks=["vbench"], vbench_python=str(python), num_samples=2,
                                           store=tmp_path / "store2", progress=False,
                                           task_options={"vbench": {"device": "cuda"}})).results[0]
    assert doc["status"] == "skipped" and "CUDA" in doc["reason"] and "vbench.device=cpu" in doc["fix"]


def test_vbench_command_on_the_cpu():
    cmd = vb.vbench_command("/env/bin/python", "/w/videos", ["temporal_flickering"], "/w/out", "custom_input",
                            device="cpu")
    assert cmd[0] == "/env/bin/python" and cmd[1].endswith("tasks/vbench/cpu_launch.py")
    assert cmd[2:] == ["--videos_path", "/w/videos", "--output_path", "/w/out", "--mode", "custom_input",
                       "--dimension", "temporal_flickering"]
    with pytest.raises(InputError, match="device"):
        vb.vbench_command("py", "v", ["temporal_flickering"], "o", device="tpu")


def test_missing_weights_skip_their_dimensions_with_the_file(tmp_path):
    python = make_fake_env(tmp_path / "env", weights=False)
    put_weights(["subject_consistency", "imaging_quality"])
    doc = score("demo-video", ScoreOptions.with_legacy(tasks=["vbench"], vbench_python=str(python), num_samples=2,
                                           store=tmp_path / "store", progress=False)).results[0]
    assert doc["status"] == "ok", doc.get("reason")
    details = doc["details"]
    assert details["dimensions_run"] == ["subject_consistency", "temporal_flickering", "imaging_quality"]
    amt = str(tmp_path / "home" / ".cache" / "vbench" / "amt_model" / "amt-s.pth")
    assert details["weights_missing"]["motion_smoothness"] == [amt]
    reason = details["dimensions_not_run"]["motion_smoothness"]
    assert reason.startswith(f"weights missing: VBench expects the file {amt}")
    assert "huggingface.co/lalala125/AMT" in reason
    clip = str(tmp_path / "home" / ".cache" / "clip" / "ViT-B-32.pt")
    assert details["weights_missing"]["background_consistency"] == [clip]
    launch = calls(python)[-1]
    assert launch[launch.index("--dimension") + 1:] == details["dimensions_run"]
    assert set(doc["metrics"]) == {"subject_consistency", "temporal_flickering", "imaging_quality"}
    # -o vbench.download=true leaves the downloads to VBench
    doc = score("demo-video", ScoreOptions.with_legacy(tasks=["vbench"], vbench_python=str(python), num_samples=2,
                                           store=tmp_path / "store2", progress=False,
                                           task_options={"vbench": {"download": True}})).results[0]
    assert doc["details"]["dimensions_run"] == QUALITY and doc["details"]["weights_missing"] == {}


def test_check_report_lists_offline_dimensions(tmp_path):
    python = make_fake_env(tmp_path / "env", weights=False)
    put_weights(["motion_smoothness"])
    report = vb.check_report(python)
    assert report["offline"] == ["temporal_flickering", "motion_smoothness"]
    row = report["dimensions"]["dynamic_degree"]
    assert row["offline"] is False
    assert row["files"][0]["path"].endswith(".cache/vbench/raft_model/models/raft-things.pth")
    assert not row["files"][0]["present"]
    assert report["cache_dir"] == str(tmp_path / "home" / ".cache" / "vbench")
    assert offline_report({"detectron2": False})["color"]["needs"].startswith("detectron2")


def test_task_generator_without_prompts_uses_vbench_prompt_list(tmp_path, monkeypatch):
    from evalsuite.models import base
    from evalsuite.models.demo_video import DemoVideoGenerator

    base._load_builtin()
    gen = DemoVideoGenerator(32)
    source = base.ModelSource(spec="plainvideo", model_id="plainvideo-test", kind="generator", generator=gen)
    monkeypatch.setitem(base._SCHEMES, "plainvideo", lambda arg: source)  # a generator with no prompts of its own
    python = make_fake_env(tmp_path / "env")
    doc = score("plainvideo", ScoreOptions.with_legacy(tasks=["vbench"], vbench_python=str(python), num_samples=4,
                                           store=tmp_path / "store", progress=False)).results[0]
    assert doc["status"] == "ok", doc.get("reason")
    assert doc["details"]["prompts"].startswith("vbench-standard")
    assert doc["details"]["mode"] == "vbench_standard"
    # the prompt list's distinct prompts in order, cycled: A, B, C, A (the 4th is A's second video)
    assert doc["per_sample"]["name"] == [f"{PROMPT_A}-0.mp4", f"{PROMPT_B}-0.mp4", f"{PROMPT_C}-0.mp4",
                                         f"{PROMPT_A}-1.mp4"]
    assert doc["details"]["coverage"]["aesthetic_quality"] == {"prompts": 2, "of_prompts": 2, "videos": 3,
                                                               "of_videos": 10}
    assert source.prompts is None  # the model is left as it was
    assert doc["provenance"]["samples_generated_this_run"] == 4


def test_task_folder_in_vbench_layout(tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in (f"{PROMPT_A}-0.mp4", f"{PROMPT_A}-1.mp4", f"{PROMPT_A}-7.mp4", f"{PROMPT_B}-0.mp4"):
        (folder / name).write_bytes(b"not decoded by the fake")
    python = make_fake_env(tmp_path / "env")
    doc = score(f"folder:{folder}", ScoreOptions.with_legacy(tasks=["vbench"], vbench_python=str(python),
                                                 store=tmp_path / "store", progress=False)).results[0]
    assert doc["status"] == "ok", doc.get("reason")
    assert doc["details"]["mode"] == "vbench_standard" and doc["details"]["prompts"] == "folder"
    assert sorted(doc["per_sample"]["name"]) == sorted([f"{PROMPT_A}-0.mp4", f"{PROMPT_A}-1.mp4", f"{PROMPT_B}-0.mp4"])
    assert doc["skipped_samples"]["count"] == 1  # index 7: VBench's standard mode reads 0-4 only
    assert "total" in doc["metrics"]
