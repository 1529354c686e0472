"""The page in a real browser: Debian's chromium, headless, driven by Selenium, against a real
``pixelwise serve --model camvid`` process on 127.0.0.1.  Uploads a CamVid val image, waits for
the overlay, reads the legend.  The screenshot goes to the test's tmp folder; with
``PIXELWISE_UPDATE_SCREENSHOTS=1`` it also replaces ``docs/img/serve.png`` (the README's)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'pixelwise[serve]')")
pytest.importorskip("selenium", reason="selenium (test extra) is not installed")

from pixelwise.serve.load import server_process  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
IMAGE = "0016E5_07959.png"  # a street scene: road, sky, buildings, cars


def _find(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or (name if os.path.isfile(name) and os.access(name, os.X_OK) else None)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = _find("chromium", "chromium-browser", "/usr/lib/chromium/chromium")
    driver = _find("chromedriver", "/usr/lib/chromium/chromedriver")
    if chromium is None or driver is None:
        pytest.skip(
            "chromium / chromedriver not found (apt-get install chromium chromium-driver; "
            "scripts/test.sh does this when run as root)"
        )
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never try a download
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1240,1040",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ):
        opts.add_argument(arg)
    d = webdriver.Chrome(service=Service(executable_path=driver), options=opts)
    d.set_page_load_timeout(60)
    yield d
    d.quit()


def test_page_segments_an_uploaded_camvid_image(browser, camvid_root, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    image = camvid_root / "val" / IMAGE
    if not image.is_file():
        pytest.skip(f"{image} not found")
    args = ["--model", "camvid", "--no-flip", "--scales", "1", "--threads", "1"]
    with server_process(args, env={"OMP_NUM_THREADS": "1"}) as url:
        browser.get(url + "/")
        wait = WebDriverWait(browser, 120)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
        assert browser.find_element(By.ID, "model").get_attribute("value") == "camvid"
        browser.find_element(By.ID, "file").send_keys(str(image))
        wait.until(lambda d: d.find_element(By.ID, "status").get_attribute("data-state") in ("done", "error"))
        status = browser.find_element(By.ID, "status")
        assert status.get_attribute("data-state") == "done", status.text
        size = browser.execute_script(
            "const o = document.getElementById('overlay');return [o.complete, o.naturalWidth, o.naturalHeight];"
        )
        assert size == [True, 480, 360]
        legend = [li.get_attribute("data-class-name") for li in browser.find_elements(By.CSS_SELECTOR, "#legend li")]
        assert {"Road", "Sky", "Building"} <= set(legend), legend
        shares = [float(e.text.rstrip("%")) for e in browser.find_elements(By.CSS_SELECTOR, "#legend .share")]
        assert shares == sorted(shares, reverse=True) and sum(shares) == pytest.approx(100, abs=0.6)
        assert "ms" in browser.find_element(By.ID, "timing").text
        # the opacity slider drives the overlay
        browser.execute_script(
            "const s = document.getElementById('opacity'); s.value = 20;s.dispatchEvent(new Event('input'));"
        )
        assert browser.execute_script("return document.getElementById('overlay').style.opacity") == "0.2"
        browser.execute_script(
            "const s = document.getElementById('opacity'); s.value = 55;s.dispatchEvent(new Event('input'));"
        )
        # nothing was fetched from anywhere but the server itself
        resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert resources and all(r.startswith((url, "data:", "blob:")) for r in resources)
        shot = tmp_path / "serve.png"
        browser.save_screenshot(str(shot))
        # a file that is not an image: the page shows the server's one-line reason
        notes = tmp_path / "notes.txt"
        notes.write_text("not a picture")
        browser.find_element(By.ID, "file").send_keys(str(notes))
        wait.until(lambda d: d.find_element(By.ID, "status").get_attribute("data-state") == "error")
        assert browser.find_element(By.ID, "status").text.startswith("415: upload has content type 'text/plain'")
    assert shot.stat().st_size > 10_000
    if os.environ.get("PIXELWISE_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(shot, REPO / "docs" / "img" / "serve.png")


def test_page_shows_depth_and_edge_maps(browser, tmp_path):
    """A depth head: its colour map (with colour bar) beside the photo and the depth range; a
    boundary head: the edge probability over the photo and the edge share.  No legend for either."""
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    import pixelwise
    from pixelwise.checkpoint import save_model

    args = ["--no-flip", "--scales", "1", "--threads", "1"]
    for task in ("depth", "boundary"):
        model = pixelwise.get_model("fcn8s_efficientnet_lite0", heads={"out": 1}, tasks={"out": task})
        args += ["--model", f"{task}={save_model(model, tmp_path / f'{task}.safetensors')}"]
    with server_process(args, env={"OMP_NUM_THREADS": "1"}) as url:
        browser.get(url + "/")
        wait = WebDriverWait(browser, 120)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#model option")) == 2)
        for i, task in enumerate(("depth", "boundary")):
            browser.execute_script(
                "const s = document.getElementById('model'); s.value = arguments[0];"
                "s.dispatchEvent(new Event('change'));",
                task,
            )
            assert task in browser.find_element(By.ID, "model-info").text
            photo = tmp_path / f"photo{i}.png"  # a new file each time: the input's change event fires
            Image.new("RGB", (96, 64), (40 * i, 120, 200)).save(photo)
            browser.find_element(By.ID, "file").send_keys(str(photo))
            wait.until(lambda d: d.find_element(By.ID, "status").get_attribute("data-state") in ("done", "error"))
            status = browser.find_element(By.ID, "status")
            assert status.get_attribute("data-state") == "done", status.text
            assert status.text.startswith(f"{photo.name}: done")
            shown = browser.execute_script(
                "const m = document.getElementById('task-map'), o = document.getElementById('overlay');"
                "return [m.hidden, m.naturalWidth, o.hidden, o.naturalWidth, o.naturalHeight];"
            )
            summary = browser.find_element(By.ID, "summary").text
            assert not browser.find_elements(By.CSS_SELECTOR, "#legend li")
            if task == "depth":
                assert shown[0] is False and shown[1] > 96 and shown[2] is True, shown
                assert "median" in summary and summary.endswith(" m"), summary
            else:
                assert shown[0] is True and shown[2:] == [False, 96, 64], shown
                assert "of pixels are edges" in summary, summary


def test_page_takes_a_depth_map_for_an_rgb_hha_model(browser, tmp_path):
    """An RGB-HHA model (the NYUDv2 late-fusion net): the page asks for the photo's depth PNG, sends
    both, and shows the labels; choosing the depth first works too."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from test_predict_depth import H, W, _model, _scene

    photos, depth = _scene(tmp_path, stems=("a", "b"))
    _, path = _model(tmp_path, streams=("image", "hha"))
    with server_process(["--model", f"rgbhha={path}", "--no-flip", "--scales", "1", "--threads", "1"]) as url:
        browser.get(url + "/")
        wait = WebDriverWait(browser, 120)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
        assert browser.find_element(By.ID, "depth-pick").is_displayed()
        state = lambda d: d.find_element(By.ID, "status").get_attribute("data-state")  # noqa: E731
        browser.find_element(By.ID, "file").send_keys(str(photos / "a.png"))
        wait.until(lambda d: state(d) == "waiting")
        assert "choose its depth map" in browser.find_element(By.ID, "status").text
        browser.find_element(By.ID, "depth-file").send_keys(str(depth / "a.png"))
        wait.until(lambda d: state(d) in ("done", "error"))
        assert state(browser) == "done", browser.find_element(By.ID, "status").text
        size = browser.execute_script(
            "const o = document.getElementById('overlay'); return [o.naturalWidth, o.naturalHeight];"
        )
        assert size == [W, H] and browser.find_elements(By.CSS_SELECTOR, "#legend li")
        # depth first, then the photo: sent together at once
        browser.find_element(By.ID, "depth-file").send_keys(str(depth / "b.png"))
        browser.find_element(By.ID, "file").send_keys(str(photos / "b.png"))
        wait.until(lambda d: "b.png: done" in d.find_element(By.ID, "status").text or state(d) == "error")
        assert state(browser) == "done", browser.find_element(By.ID, "status").text
