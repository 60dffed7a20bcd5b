"""The leaderboard's streaming video table (leaderboard/stream_section.py): built from `evalsuite.stream-timing/1`
records beside the on-device table, escaped, and checked in headless Chromium (Debian's chromium driven by
playwright, as tests/test_leaderboard.py): the columns are there, sort best first, the TTFF/FPS charts and the
regression line appear, and the page raises no error."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalsuite.device import stream_records
from evalsuite.device.records import TimingRecord
from evalsuite.device.records import write as write_timing
from evalsuite.device.stream_records import StreamRecord
from evalsuite.leaderboard.site import build
from evalsuite.leaderboard.stream_section import COLUMNS, section

XSS = "<img src=x onerror=alert(1)>"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def _stream(store, model, ttff, fps, release, day, device="iPhone17,2", backend="iphone", late=0):
    """A stream of 10 chunks of 4 frames at `fps` after a first chunk of `ttff` ms; `late` chunks 300 ms late."""
    arrivals, t = [float(ttff)], float(ttff)
    for k in range(1, 10):
        t += 4000.0 / fps + (300.0 if k <= late else 0.0)
        arrivals.append(t)
    rec = StreamRecord.from_arrivals(arrivals, model=model, variant="fp16", backend=backend, device_model=device,
                                     compute_unit="ALL", chunk_frames=4, target_fps=10.0, release=release,
                                     timestamp=f"2026-02-{day:02d}T00:00:00+00:00")
    return stream_records.write(store, rec)


@pytest.fixture
def store(tmp_path):
    root = tmp_path / "store"
    for i, (ttff, fps) in enumerate([(300, 12), (305, 12.2), (298, 11.9), (301, 12), (420, 12), (450, 12)]):
        _stream(root, "s2dit-mobile", ttff, fps, f"v{i + 1}", i + 1)  # TTFF regressed at v5, v6
    _stream(root, "video-dit-tiny", 150, 20, "v1", 1, late=0)
    _stream(root, XSS, 900, 6, "v1", 2, late=3)
    _stream(root, "demo-video", 1.2, 5000, "v1", 3, device="Intel(R) Xeon(R) Processor", backend="host")
    write_timing(root, TimingRecord(model="snapgen", variant="fp16", backend="iphone", device_model="iPhone17,2",
                                    latencies_ms=[20.0, 21.0], release="v1"))
    return root


def test_section_rows_and_gate(store):
    sec = section(store)
    assert sec.table is not None and [c.metric for c in sec.table.columns] == [c.metric for c in COLUMNS]
    rows = {r.label.split(" · ")[0]: r for r in sec.table.rows}
    assert set(rows) == {"s2dit-mobile", "video-dit-tiny", XSS, "demo-video"}
    s2 = rows["s2dit-mobile"].cells
    assert s2["stream/ttff_ms"].value == 450.0 and s2["stream/sustained_fps"].value == pytest.approx(12.0)
    assert rows[XSS].cells["stream/deadline_miss_rate"].value == pytest.approx(100.0)  # every chunk late (6 fps)
    best = sec.table.best()
    assert best["stream/ttff_ms"] == rows["demo-video"].key and best["stream/sustained_fps"] == rows["demo-video"].key
    assert any("s2dit-mobile" in r and "ttff" in r for r in sec.regressions)
    assert len(sec.charts) == 2 * 4  # TTFF and FPS per series
    assert section(store.parent / "empty").table is None


def test_site_has_the_stream_table_escaped_and_the_device_table_untouched(store, tmp_path):
    html = build(store, tmp_path / "site").read_text()
    assert 'data-family="video-stream"' in html and 'data-family="on-device"' in html
    assert XSS not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "Streaming regressions" in html and "sustained_fps" in html
    assert "<script src" not in html



def test_browser_shows_and_sorts_stream_columns(store, tmp_path, browser):
    index = build(store, tmp_path / "site")
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    errors: list[str] = []
    dialogs: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(index.as_uri())
    page.wait_for_load_state("load")
    table = 'table[data-family="video-stream"]'
    headers = page.eval_on_selector_all(f"{table} th[data-col]", "hs => hs.map(h => h.innerText)")
    for metric in ("ttff_ms", "sustained_fps", "p50_ms", "p99_ms", "jitter_ms", "deadline_miss_rate"):
        assert any(metric in h for h in headers), (metric, headers)

    def order():
        return page.eval_on_selector_all(f"{table} tbody tr", "rows => rows.map(r => r.dataset.model.split(' · ')[0])")

    page.locator(f"{table} th[data-col]", has_text="ttff_ms").first.click()  # lower is better: smallest first
    assert order()[0] == "demo-video" and order()[-1] == XSS
    page.locator(f"{table} th[data-col]", has_text="deadline_miss_rate").first.click()
    assert order()[-1] == XSS  # the only stream with misses, last
    page.locator(f"{table} th[data-col]", has_text="sustained_fps").first.click()  # higher is better
    assert order()[0] == "demo-video" and order()[-1] == XSS
    assert XSS in page.inner_text(table) and page.locator('table img[src="x"]').count() == 0
    assert page.locator("svg.chart").count() >= 8 and page.locator("#video-stream-history").count() == 1
    assert "Streaming regressions" in page.inner_text("body")
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#video-stream").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "evalsuite.leaderboard-stream.png"), full_page=True)
    assert errors == [] and dialogs == []
    page.close()
