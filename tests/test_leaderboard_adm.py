"""The leaderboard's 'ImageNet 256² class-conditional' table (issue 21 item 5): the imagenet-adm tasks' results in
five columns per feature path (Inception Score, FID, sFID, precision, recall) with the protocol named in the
headers and under the title, the official evaluator's columns apart from the TorchScript ones and from the plain
`fid` task's, the shipped published ImageNet number as a reported row, a paper's relative claim as cited text, and
untrusted strings escaped."""

from __future__ import annotations

import pytest

from evalsuite.leaderboard import adm_table
from evalsuite.leaderboard.data import build_tables, load_claims, load_published
from evalsuite.leaderboard.site import build
from evalsuite.results import ResultsStore
from tests.test_leaderboard import FID_INFO, XSS, _doc, _open

ADM_INFO = {"fid": {"direction": "lower", "description": "Fréchet distance of pool3 features (ADM evaluator)"},
            "is": {"direction": "higher", "description": "Inception Score (ADM: mean over splits of 5000)"},
            "precision": {"direction": "higher", "description": "precision"},
            "recall": {"direction": "higher", "description": "recall"},
            "sfid": {"direction": "lower", "description": "sFID"}}
FAMILY = "imagenet-class-conditional"
OFFICIAL = [("adm-is", "is"), ("adm-fid", "fid"), ("adm-sfid", "sfid"), ("adm-precision", "precision"),
            ("adm-recall", "recall")]


def _adm(run_id, model, task, metric, value, protocol, family=FAMILY, n=50_000):
    doc = _doc(run_id, model, task, {metric: value}, {metric: ADM_INFO[metric]}, family)
    doc.update(protocol=protocol, num_samples=n, sample_count={"used": n, "protocol": 50_000,
                                                               "comparable": n >= 50_000})
    return doc


@pytest.fixture
def store(tmp_path):
    s = ResultsStore(tmp_path / "store")
    # the official evaluator (features=tf): all five numbers
    for (task, metric), value in zip(OFFICIAL, [240.5, 2.3, 4.6, 0.81, 0.58]):
        s.write(_adm(f"tf-{task}", "my-dit", task, metric, value, task))
    # the TorchScript features (default): four numbers, another column each; a result below the protocol's count
    for (task, metric), value in zip([OFFICIAL[0], OFFICIAL[1], OFFICIAL[3], OFFICIAL[4]], [230.0, 2.5, 0.8, 0.6]):
        s.write(_adm(f"ts-{task}", "my-dit", task, metric, value, f"{task}/torchscript"))
    s.write(_adm("ts-small", XSS, "adm-fid", "fid", 9.5, "adm-fid/torchscript", n=20))
    # an IS variant, and a result stored when the tasks still declared image-quality
    s.write(_adm("ts-var", "my-dit", "adm-is", "is", 231.0, "adm-is/torchscript/torch-fidelity"))
    s.write(_adm("old", "old-dit", "adm-fid", "fid", 3.1, "adm-fid/torchscript", family="image-quality"))
    # the plain fid task (clean-fid protocol): its own table, never an ADM column
    s.write(_doc("plain", "my-dit", "fid", {"fid": 7.0}, FID_INFO, "image-quality"))
    return s


def _tables(store, published=None, claims=None):
    return {t.family: t for t in build_tables(store, load_published(published), claims=load_claims(published)
                                              if claims is None else claims)}


def test_adm_table_columns_protocols_and_reported_row(store):
    tables = _tables(store)
    table = tables[FAMILY]
    assert table.title == "ImageNet 256² class-conditional" and "evaluator.py" in table.protocol
    headers = [(c.label, c.protocol) for c in table.columns]
    official = [(label, adm_table.OFFICIAL) for label in ("Inception Score", "FID", "sFID", "precision", "recall")]
    assert headers[:5] == official  # the five official columns first, in the papers' order
    ts = adm_table.TORCHSCRIPT
    assert headers[5:] == [("Inception Score", ts), ("FID", ts), ("precision", ts), ("recall", ts),
                           ("Inception Score", f"{ts}, IS variant torch-fidelity")]
    keys = [c.key for c in table.columns]
    assert keys[:2] == ["adm-is [adm-is]/is", "adm-fid [adm-fid]/fid"] and "adm-fid [adm-fid/torchscript]/fid" in keys
    assert not any(c.task.startswith("fid") for c in table.columns)  # the fid task never shares an ADM column
    image_quality = tables["image-quality"]
    assert [c.key for c in image_quality.columns] == ["fid/fid"]  # no ADM column there (the old result moved)
    assert all(r.cells.get("fid/fid") is None or r.cells["fid/fid"].value == 7.0 for r in image_quality.rows)
    assert not any(r.kind == "reported" for r in image_quality.rows)  # SnapGen's ImageNet FID moved out

    measured = {r.label: r for r in table.rows if r.kind == "measured"}
    assert measured["my-dit"].cells["adm-fid [adm-fid]/fid"].value == 2.3
    assert measured["my-dit"].cells["adm-fid [adm-fid/torchscript]/fid"].value == 2.5
    assert measured["old-dit"].cells["adm-fid [adm-fid/torchscript]/fid"].value == 3.1
    assert not measured[XSS].cells["adm-fid [adm-fid/torchscript]/fid"].comparable  # 20 of 50,000 samples
    assert table.best()["adm-fid [adm-fid/torchscript]/fid"] == "measured:my-dit@1"  # 3.1 > 2.5; 9.5 never best

    (snapgen,) = [r for r in table.rows if r.kind == "reported"]
    assert snapgen.label == "SnapGen" and snapgen.citation == "arXiv:2412.09619"
    assert list(snapgen.cells) == ["adm-fid [adm-fid]/fid"] and snapgen.cells["adm-fid [adm-fid]/fid"].value == 2.06
    assert "does not name the evaluator" in snapgen.cells["adm-fid [adm-fid]/fid"].note
    assert table.best()["adm-fid [adm-fid]/fid"] == "measured:my-dit@1"  # a reported number is never "best"
    assert [c["citation"] for c in table.claims] == ["arXiv:2502.14831"] and "19%" in table.claims[0]["claim"]


def test_only_numbers_from_the_field_notes():
    """Every reported ImageNet number is one the abstracts state; relative claims carry no value."""
    rows = [e for e in load_published() if e["family"] == FAMILY]
    assert [(e["model"], e["metric"], e["value"]) for e in rows] == [("SnapGen", "fid", 2.06)]
    assert all("value" not in c for c in load_claims())


def test_published_only_table_has_the_five_official_columns(tmp_path):
    tables = _tables(ResultsStore(tmp_path / "empty"))
    assert [c.label for c in tables[FAMILY].columns] == ["Inception Score", "FID", "sFID", "precision", "recall"]


def test_site_names_the_protocol_and_escapes(store, tmp_path):
    published = tmp_path / "published.yaml"
    published.write_text(
        "schema: evalsuite.published/1\nresults:\n"
        f"  - {{model: '{XSS}', task: adm-fid, protocol: adm-fid, metric: fid, value: 2.5, direction: lower,\n"
        f"     family: {FAMILY}, setting: 'paper', citation: 'arXiv:0000.00001'}}\n"
        "claims:\n"
        f"  - {{model: 'm', family: {FAMILY}, citation: 'arXiv:0000.00002', claim: '{XSS} lowers FID by 1%'}}\n")
    html = build(store.root, tmp_path / "site", published).read_text()
    assert "ImageNet 256² class-conditional" in html and "guided-diffusion evaluations/evaluator.py" in html
    assert "official evaluator (TensorFlow)" in html and "TorchScript features" in html
    assert "reported, no absolute number" in html and "lowers FID by 1%" in html
    assert XSS not in html and html.count("&lt;img src=x onerror=alert(1)&gt;") >= 3  # measured, reported, claim
    shipped = build(store.root, tmp_path / "site2").read_text()
    assert "SnapGen" in shipped and "2.06" in shipped and "19%" in shipped



def test_browser_sorts_the_adm_table(store, tmp_path, browser):
    index = build(store.root, tmp_path / "site", None)
    page, errors, dialogs = _open(browser, index)
    table = f'table[data-family="{FAMILY}"]'
    headers = page.eval_on_selector_all(f"{table} th[data-col]", "hs => hs.map(h => h.innerText)")
    assert headers[1].startswith("FID") and "official evaluator" in headers[1]
    page.locator(f"{table} th[data-col]").nth(1).click()  # official FID, lower first
    order = page.eval_on_selector_all(f"{table} tbody tr", "rows => rows.map(r => r.dataset.model)")
    assert order[:2] == ["SnapGen", "my-dit"]  # 2.06 (reported, badged) and 2.3; rows without the cell last
    assert errors == [] and dialogs == [] and page.locator("table img[src='x']").count() == 0
    page.close()
