"""The ADM tasks' official path (features=tf: the user's guided-diffusion evaluator.py, run as it is in its own
TensorFlow environment) and the agreement of evalsuite.adm_metrics with that file's own functions under TensorFlow.

The wiring tests need no TensorFlow (a stand-in evaluator script prints the evaluator's lines). The agreement tests run
the real evaluator.py with TensorFlow on a tiny random graph with the node names the evaluator reads (`ExpandDims`,
`pool_3`, `mixed_6/conv` with 768 channels at 17x17, `softmax/logits/MatMul` 2048 -> 1008), built in the test; they
need EVALSUITE_ADM_TF_PYTHON (a TensorFlow environment's interpreter: tensorflow-cpu, scipy, requests, tqdm) and
EVALSUITE_ADM_EVALUATOR (a copy of guided-diffusion evaluations/evaluator.py; no registry package ships it), and are
skipped without them (failed under CI when only one is set). Observed with tensorflow-cpu 2.21.0 / numpy 2.4.6:
IS and FID bit-equal, sFID 1.2e-8 relative (a 2023-d sqrtm under another BLAS), precision and recall equal (default
and 16x24 batches, and with features x300, the float16 overflow fallback); TF's float16 distances (CPU kernel) and
our float16 emulation agree within 2 float16 steps at the squared norms' scale (56% bit-equal).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from evalsuite import adm_metrics as am
from evalsuite import adm_npz
from evalsuite.adm_official import OfficialSetup, parse_output, run_evaluator
from evalsuite.errors import InputError
from evalsuite.runner import ScoreOptions, score

FAKE_EVALUATOR = '''
import os, sys
import numpy as np
ref, sample = sys.argv[1], sys.argv[2]
assert os.path.isfile("classify_image_graph_def.pb")  # linked into its working directory
with np.load(sample) as s, np.load(ref) as r:
    assert "mu" not in s and s["arr_0"].dtype == np.uint8 and s["arr_0"].ndim == 4
    n, m = len(s["arr_0"]), len(r["arr_0"])
    print("Inception Score:", float(n))
    print("FID:", float(s["arr_1"].sum()))
    print("sFID:", float(r["mu_s"][0]))
    print("Precision:", 1.0 / n)
    print("Recall:", 1.0 / m)
'''


def _reference(path, n=6):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2048, 3)), rng.normal(size=(2023, 3))
    np.savez(path, arr_0=rng.integers(0, 256, size=(n, 16, 16, 3), dtype=np.uint8), mu=rng.normal(size=2048),
             sigma=a @ a.T, mu_s=np.full(2023, 7.5), sigma_s=b @ b.T)
    return path


def test_parse_output():
    text = "warming up\nInception Score: 3.5\nFID: 12.25\nsFID: 4e-1\nPrecision: 0.75\nRecall: 0.5\n"
    assert parse_output(text) == {"is": 3.5, "fid": 12.25, "sfid": 0.4, "precision": 0.75, "recall": 0.5}
    with pytest.raises(InputError, match="sFID"):
        parse_output("Inception Score: 1\nFID: 2\n")


def test_official_path_wiring(tmp_path):
    evaluator = tmp_path / "evaluator.py"
    evaluator.write_text(FAKE_EVALUATOR)
    graph = tmp_path / "graph.pb"
    graph.write_bytes(b"stand-in")
    ref = _reference(tmp_path / "ref.npz")
    setup = {"features": "tf", "tf_python": sys.executable, "evaluator": str(evaluator), "graph": str(graph)}
    opts = ScoreOptions(suite="imagenet-adm", ref=f"adm:{ref}", num_samples=12, num_workers=0, progress=False,
                        store=tmp_path / "store", task_options={"*": setup})
    docs = {d["task"]: d for d in score("demo-class", opts).results}
    assert all(d["status"] == "ok" for d in docs.values()), {t: d.get("reason") for t, d in docs.items()}
    assert docs["adm-is"]["metrics"]["is"] == 12.0  # the evaluator read our 12 samples
    assert docs["adm-fid"]["metrics"]["fid"] == float(sum(range(12)))  # and their labels (arr_1)
    assert docs["adm-sfid"]["metrics"]["sfid"] == 7.5  # and the reference batch
    assert docs["adm-recall"]["metrics"]["recall"] == pytest.approx(1 / 6)
    assert docs["adm-fid"]["protocol"] == "adm-fid"  # the official column (torchscript: adm-fid/torchscript)


def test_official_path_needs_its_setup(tmp_path):
    ref = _reference(tmp_path / "ref.npz")
    opts = ScoreOptions(tasks=["adm-fid"], ref=f"adm:{ref}", num_samples=4, num_workers=0, progress=False,
                        store=tmp_path / "store", task_options={"*": {"features": "tf"}})
    (doc,) = score("demo-class", opts).results
    assert doc["status"] == "skipped" and "tf_python, evaluator, graph" in doc["reason"]
    with pytest.raises(InputError, match="does not exist"):
        OfficialSetup(str(tmp_path / "nope"), str(tmp_path), str(tmp_path)).check()


# ------------------------------------------------------------------------------------ the real file, under TF
TF_PYTHON, EVALUATOR = os.environ.get("EVALSUITE_ADM_TF_PYTHON"), os.environ.get("EVALSUITE_ADM_EVALUATOR")


def _need_tf():
    if not (TF_PYTHON and EVALUATOR):
        message = "set EVALSUITE_ADM_TF_PYTHON and EVALSUITE_ADM_EVALUATOR to run guided-diffusion's evaluator.py"
        if os.environ.get("CI") and (TF_PYTHON or EVALUATOR):
            pytest.fail(message)
        pytest.skip(message)


MAKE_GRAPH = '''
import sys
import numpy as np
import tensorflow.compat.v1 as tf
tf.disable_eager_execution()
rng = np.random.default_rng(0)
g = tf.Graph()
with g.as_default():
    x = tf.placeholder(tf.float32, [None, None, None, 3], name="ExpandDims")
    r = tf.image.resize(x, [17, 17])
    w1 = tf.constant(rng.normal(size=(3, 3, 3, 768)) * 0.3, tf.float32)
    with tf.name_scope("mixed_6"):
        conv = tf.nn.relu(tf.nn.conv2d(r / 128.0 - 1, w1, 1, "SAME"), name="conv")
    w2 = tf.constant(rng.normal(size=(1, 1, 768, 2048)) * 0.05, tf.float32)
    pool = tf.reduce_mean(tf.nn.relu(tf.nn.conv2d(conv, w2, 1, "SAME")), axis=[1, 2], keepdims=True, name="pool_3")
    w3 = tf.constant(rng.normal(size=(2048, 1008)) * 0.2, tf.float32)
    with tf.name_scope("softmax"), tf.name_scope("logits"):
        logits = tf.matmul(tf.reshape(pool, [-1, 2048]), w3, name="MatMul")
    tf.nn.softmax(logits, name="probs")
open(sys.argv[1], "wb").write(g.as_graph_def().SerializeToString())
'''

# calls evaluator.py's own classes on seeded images and saves their inputs and outputs (run in the TF environment,
# working directory = the graph's folder, where the evaluator reads classify_image_graph_def.pb)
OFFICIAL_VALUES = '''
import importlib.util, sys
import numpy as np
if not hasattr(np, "bool"):
    np.bool = bool  # evaluate_pr L343-344 on numpy 1.24-1.26
spec = importlib.util.spec_from_file_location("evaluator", sys.argv[1])
ev = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ev)
def imgs(n, seed):
    r = np.random.default_rng(seed)
    base = r.uniform(0, 255, (n, 1, 1, 3))
    return np.clip(base + r.normal(0, 40, (n, 32, 32, 3)), 0, 255).astype(np.uint8)
ref_imgs, s_imgs = imgs(60, 1), imgs(70, 2)
e = ev.Evaluator(ev.tf.Session(config=ev.tf.ConfigProto(allow_soft_placement=True)))
ref_acts = e.compute_activations([ref_imgs[i:i + 64] for i in range(0, 60, 64)])
s_acts = e.compute_activations([s_imgs[i:i + 64] for i in range(0, 70, 64)])
probs = e.sess.run(e.softmax, {e.softmax_input: s_acts[0]})
fid = e.compute_statistics(s_acts[0]).frechet_distance(e.compute_statistics(ref_acts[0]))
sfid = e.compute_statistics(s_acts[1]).frechet_distance(e.compute_statistics(ref_acts[1]))
me = ev.ManifoldEstimator(e.sess, row_batch_size=16, col_batch_size=24)
r1, r2 = me.manifold_radii(ref_acts[0]), me.manifold_radii(s_acts[0])
small = me.evaluate_pr(ref_acts[0], r1, s_acts[0], r2)
np.savez(sys.argv[2], ref_pool=ref_acts[0], ref_spatial=ref_acts[1], s_pool=s_acts[0], s_spatial=s_acts[1],
         probs=probs, is_=e.compute_inception_score(s_acts[0], split_size=30),
         is_default=e.compute_inception_score(s_acts[0]), fid=fid, sfid=sfid,
         pr=np.array(e.compute_prec_recall(ref_acts[0], s_acts[0])), r1=r1,
         pr_small=np.array([small[0][0], small[1][0]]),
         pr_big=np.array(e.compute_prec_recall(ref_acts[0] * 300, s_acts[0] * 300)),
         d16=e.manifold_estimator.distance_block.pairwise_distances(ref_acts[0], s_acts[0]))
'''


@pytest.fixture(scope="module")
def tf_graph(tmp_path_factory):
    _need_tf()
    folder = tmp_path_factory.mktemp("adm-tf")
    graph = folder / "classify_image_graph_def.pb"
    subprocess.run([TF_PYTHON, "-c", MAKE_GRAPH, str(graph)], check=True, capture_output=True, timeout=600)
    return graph


def test_metrics_equal_evaluator_under_tf(tf_graph):
    out = tf_graph.parent / "values.npz"
    proc = subprocess.run([TF_PYTHON, "-c", OFFICIAL_VALUES, EVALUATOR, str(out)], cwd=tf_graph.parent,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    v = np.load(out)
    assert am.inception_score_adm(v["probs"], 30) == pytest.approx(float(v["is_"]), rel=1e-9)
    assert am.inception_score_adm(v["probs"]) == pytest.approx(float(v["is_default"]), rel=1e-9)
    for key, tol in (("pool", 1e-9), ("spatial", 1e-6)):  # sFID: a 2023-d sqrtm under the other env's BLAS
        s, r = am.statistics_adm(v[f"s_{key}"]), am.statistics_adm(v[f"ref_{key}"])
        want = float(v["fid" if key == "pool" else "sfid"])
        assert am.frechet_distance_adm(s.mu, s.sigma, r.mu, r.sigma) == pytest.approx(want, rel=tol)
    assert am.precision_recall_adm(v["ref_pool"], v["s_pool"]) == tuple(v["pr"])
    small = am.ManifoldEstimatorADM(16, 24)
    assert am.precision_recall_adm(v["ref_pool"], v["s_pool"], small) == tuple(v["pr_small"])
    assert am.precision_recall_adm(v["ref_pool"] * 300, v["s_pool"] * 300) == tuple(v["pr_big"])
    # |u|^2 - 2 u.v + |v|^2 rounds at the squared norms' scale: two float16 steps there bound the difference
    ours = am.pairwise_distances_adm(v["ref_pool"], v["s_pool"])
    norms = np.concatenate([np.square(v["ref_pool"]).sum(1), np.square(v["s_pool"]).sum(1)])
    step = float(np.spacing(np.float16(norms.max())))
    assert np.abs(ours - v["d16"]).max() <= 2 * step
    np.testing.assert_allclose(small.manifold_radii(v["ref_pool"]), v["r1"], rtol=0, atol=2 * step)


def test_evaluator_reads_our_export_under_tf(tf_graph, tmp_path):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2048, 60)), rng.normal(size=(2023, 60))
    ref = tmp_path / "ref.npz"
    np.savez(ref, arr_0=rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8), mu=rng.random(2048),
             sigma=a @ a.T / 60, mu_s=rng.random(2023), sigma_s=b @ b.T / 60)
    images = rng.integers(0, 256, (50, 32, 32, 3), dtype=np.uint8)
    adm_npz.write_sample_batch(tmp_path / "s.npz", iter(images), 50, (32, 32), np.arange(50) % 10)
    numbers, log = run_evaluator(OfficialSetup(str(TF_PYTHON), str(EVALUATOR), str(tf_graph)), ref,
                                 tmp_path / "s.npz", timeout=600)
    assert set(numbers) == {"is", "fid", "sfid", "precision", "recall"}, log
    assert all(np.isfinite(list(numbers.values()))), json.dumps(numbers)


def test_script_text_is_our_own():
    # the scripts above call evaluator.py's classes; none of its code is reproduced in them
    assert "def frechet_distance" not in OFFICIAL_VALUES + MAKE_GRAPH
    assert textwrap.dedent(FAKE_EVALUATOR).count("print(") == 5
