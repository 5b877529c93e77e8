"""The page in a real browser: Debian's Chromium driven by Selenium against the app served by uvicorn on 127.0.0.1.

It opens a clip, paints the dog with mouse events (brush stroke, polygon, eraser and ctrl+z), propagates forward,
checks through the API that every later frame has a mask, paints a correction on a later frame, re-propagates from
there, removes that keyframe again with its button, exports into a folder under the root and saves a screenshot
(``runs/test-app-browser.png``). Skipped only when Chromium is missing and ``SEGGPT_VOS_REQUIRE_BROWSER`` is unset; CI
(``.ci/run``) installs Chromium and sets it, so there it runs.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from seggpt_core.checkpoint import DEFAULT_MODEL
from seggpt_core.predictor import SegGPTPredictor
from vos.masks import read_label_png

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SEQ, N = "dog", 12
SCREENSHOT = Path(__file__).resolve().parents[1] / "runs" / "test-app-browser.png"

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    if os.environ.get("SEGGPT_VOS_REQUIRE_BROWSER"):
        raise RuntimeError("Chromium is required (SEGGPT_VOS_REQUIRE_BROWSER is set): apt-get install -y chromium "
                           "chromium-driver")
    pytest.skip("Chromium not installed (apt-get install -y chromium chromium-driver)", allow_module_level=True)

selenium = pytest.importorskip("selenium")
uvicorn = pytest.importorskip("uvicorn")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

from vos.app.server import AppSettings, create_app  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def root(shared_data, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("browser-root")
    (root / SEQ).mkdir()
    for i in range(N):
        shutil.copy(shared_data / "davis-mini" / "JPEGImages" / "480p" / SEQ / f"{i:05d}.jpg", root / SEQ)
    return root


@pytest.fixture(scope="module")
def ground_truth(shared_data) -> list[np.ndarray]:
    folder = shared_data / "davis-mini" / "Annotations" / "480p" / SEQ
    return [read_label_png(folder / f"{i:05d}.png")[0] for i in range(N)]


@pytest.fixture(scope="module")
def server(root):
    torch.set_num_threads(min(2, torch.get_num_threads()))
    predictor = SegGPTPredictor.from_pretrained(DEFAULT_MODEL, device="cpu", dtype="fp32")
    port = free_port()
    config = uvicorn.Config(create_app(predictor, AppSettings(root=root)), host="127.0.0.1", port=port,
                            log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,950",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def mask_at(server: str, sid: str, index: int) -> np.ndarray:
    from io import BytesIO

    from PIL import Image

    with urllib.request.urlopen(f"{server}/api/sessions/{sid}/masks/{index}.png", timeout=30) as response:
        return np.array(Image.open(BytesIO(response.read())))


def stroke(driver, canvas, points, width: int) -> None:
    """Press, move through ``points`` (frame pixels) and release, as mouse events on the canvas."""
    scale = canvas.size["width"] / width
    centre = (canvas.size["width"] / 2, canvas.size["height"] / 2)
    offset = [(round(x * scale - centre[0]), round(y * scale - centre[1])) for x, y in points]
    actions = ActionChains(driver, duration=20)
    actions.move_to_element_with_offset(canvas, *offset[0]).click_and_hold()
    for (x0, y0), (x1, y1) in zip(offset, offset[1:]):
        actions.move_by_offset(x1 - x0, y1 - y0)
    actions.release().perform()


def click_points(driver, canvas, points, width: int) -> None:
    """Click each of ``points`` (frame pixels) and double-click the last one."""
    scale = canvas.size["width"] / width
    centre = (canvas.size["width"] / 2, canvas.size["height"] / 2)
    for i, (x, y) in enumerate(points):
        actions = ActionChains(driver).move_to_element_with_offset(canvas, round(x * scale - centre[0]),
                                                                   round(y * scale - centre[1]))
        (actions.double_click() if i == len(points) - 1 else actions.click()).pause(0.05).perform()


def outline(mask: np.ndarray) -> list[tuple[int, int]]:
    """Corners of a polygon that follows the object's outer contour."""
    import cv2

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    contour = max(contours, key=cv2.contourArea)
    return [(int(x), int(y)) for x, y in cv2.approxPolyDP(contour, 3, True)[:, 0]]


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    return float((a & b).sum() / max(1, (a | b).sum()))


def interior_stroke(mask: np.ndarray) -> list[tuple[int, int]]:
    """Points along the middle row of the object, inside its middle half."""
    ys, xs = np.nonzero(mask)
    y = int(np.median(ys))
    row = np.nonzero(mask[y])[0]
    left, right = np.percentile(row, 30), np.percentile(row, 70)
    return [(int(x), y) for x in np.linspace(left, right, 6)]


def wait_for(driver, condition, what: str, timeout: float = 120):
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: condition(d), message=what)


@pytest.fixture()
def driver(browser):
    """The browser; a screenshot is saved whatever the outcome."""
    yield browser
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOT))


def test_draw_propagate_correct_export_in_the_browser(server, driver, root, ground_truth):
    driver.get(server + "/")
    wait_for(driver, lambda d: SEQ in [o.get_attribute("value") for o in d.find_elements(By.CSS_SELECTOR,
                                                                                          "#video-list option")],
             "the video list")
    Select(driver.find_element(By.ID, "video-list")).select_by_value(SEQ)
    driver.find_element(By.ID, "open").click()
    wait_for(driver, lambda d: d.find_element(By.ID, "frame-label").text.startswith(f"frame 0 / {N - 1}"),
             "the first frame")
    sid = get_json(server + "/api/sessions")[0]["id"]
    canvas = driver.find_element(By.ID, "cursor")
    body = driver.find_element(By.TAG_NAME, "body")

    # brush size by keyboard, then one stroke through the dog on frame 0
    body.send_keys("]" * 4)
    assert driver.find_element(By.ID, "size-label").text == "50"
    stroke(driver, canvas, interior_stroke(ground_truth[0] == 1), 854)
    wait_for(driver, lambda d: get_json(f"{server}/api/sessions/{sid}")["keyframes"] == [0], "the keyframe")
    drawn = mask_at(server, sid, 0)
    assert set(np.unique(drawn)) == {0, 1}
    assert 1500 < (drawn == 1).sum() and ((drawn == 1) & (ground_truth[0] == 1)).sum() > 0.8 * (drawn == 1).sum()

    # then the polygon tool around the dog's outline: click the corners, double-click to close
    driver.find_element(By.CSS_SELECTOR, "input[name=tool][value=polygon]").click()
    corners = outline(ground_truth[0] == 1)
    click_points(driver, canvas, corners, 854)
    wait_for(driver, lambda d: jaccard(mask_at(server, sid, 0), ground_truth[0]) > 0.8, "the polygon")
    polygon = mask_at(server, sid, 0)

    # the eraser takes a bite out of it; ctrl+z puts it back
    driver.find_element(By.CSS_SELECTOR, "input[name=tool][value=eraser]").click()
    stroke(driver, canvas, interior_stroke(ground_truth[0] == 1), 854)
    wait_for(driver, lambda d: (mask_at(server, sid, 0) == 1).sum() < (polygon == 1).sum() - 1000, "the eraser")
    ActionChains(driver).key_down(Keys.CONTROL).send_keys("z").key_up(Keys.CONTROL).perform()
    wait_for(driver, lambda d: (mask_at(server, sid, 0) == polygon).all(), "undo of the eraser")
    driver.find_element(By.CSS_SELECTOR, "input[name=tool][value=brush]").click()

    # propagate forward, watch the progress bar finish
    Select(driver.find_element(By.ID, "direction")).select_by_value("forward")
    driver.find_element(By.ID, "propagate").click()
    wait_for(driver, lambda d: "done" in d.find_element(By.ID, "progress-label").text, "propagation to finish")
    assert driver.find_element(By.ID, "progress").get_attribute("value") == "1"
    info = get_json(f"{server}/api/sessions/{sid}")
    assert info["computed"] == list(range(N)) and info["job"]["from"] == 0
    assert all(mask_at(server, sid, i).any() for i in range(1, N))

    # step to frame 6 with the arrow key, paint a correction there, re-propagate from it
    for _ in range(6):
        body.send_keys(Keys.ARROW_RIGHT)
    wait_for(driver, lambda d: d.find_element(By.ID, "frame-label").text.startswith(f"frame 6 / {N - 1}"),
             "frame 6")
    before = mask_at(server, sid, 6)
    stroke(driver, canvas, interior_stroke(ground_truth[6] == 1), 854)
    wait_for(driver, lambda d: get_json(f"{server}/api/sessions/{sid}")["keyframes"] == [0, 6], "the correction")
    assert (mask_at(server, sid, 6) == 1).sum() >= (before == 1).sum()
    driver.find_element(By.ID, "propagate").click()
    wait_for(driver, lambda d: get_json(f"{server}/api/sessions/{sid}")["job"]["from"] == 6, "the second job")
    wait_for(driver, lambda d: "done" in d.find_element(By.ID, "progress-label").text, "re-propagation")
    job = get_json(f"{server}/api/sessions/{sid}")["job"]
    assert (job["state"], job["from"]) == ("done", 6) and N - 6 <= job["total"] < N, job

    # ctrl+z undoes the correction stroke (the frame goes back to its propagated mask: no keyframe there)
    ActionChains(driver).key_down(Keys.CONTROL).send_keys("z").key_up(Keys.CONTROL).perform()
    wait_for(driver, lambda d: get_json(f"{server}/api/sessions/{sid}")["keyframes"] == [0, 6] and
             (mask_at(server, sid, 6) == before).all(), "undo")

    # the keyframe at frame 6 is taken back with its button: frame 6 shows no mask until the next propagation
    remove = driver.find_element(By.ID, "remove-keyframe")
    wait_for(driver, lambda d: remove.is_enabled(), "the remove-keyframe button")
    remove.click()
    wait_for(driver, lambda d: get_json(f"{server}/api/sessions/{sid}")["keyframes"] == [0], "the keyframe removed")
    wait_for(driver, lambda d: d.find_element(By.ID, "frame-label").text == f"frame 6 / {N - 1}", "the label")
    assert not remove.is_enabled() and not mask_at(server, sid, 6).any()

    # export to a folder under the root
    Select(driver.find_element(By.ID, "format")).select_by_value("alpha-png")
    Select(driver.find_element(By.ID, "start-number")).select_by_value("1001")
    driver.find_element(By.ID, "export-folder").send_keys("exports/browser")
    driver.find_element(By.ID, "export").click()
    wait_for(driver, lambda d: "files written" in d.find_element(By.ID, "export-result").text, "the export")
    mattes = sorted((root / "exports" / "browser" / SEQ / "object_1").glob("*.png"))
    assert [p.name for p in mattes] == [f"{SEQ}_object_1.{1001 + i:04d}.png" for i in range(N)]
    assert driver.find_element(By.ID, "message").get_attribute("hidden") is not None, \
        driver.find_element(By.ID, "message").text

    png = driver.get_screenshot_as_png()
    assert len(png) > 10_000
