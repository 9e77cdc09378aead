"""JupyterLab in a real browser (Debian's chromium and chromium-driver, driven by selenium), as the browser test
needs it: open a notebook, run all its cells, read the cells' prompts and outputs, save, take screenshots."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
DRIVER = "chromedriver"


def browser_missing() -> str:
    """Why no browser can be driven here ("" when one can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e .[dev])"
    if not any(shutil.which(b) for b in CHROMIUM):
        return "no chromium here (scripts/test.sh installs Debian's chromium where it runs as root with apt-get)"
    if not shutil.which(DRIVER):
        return "no chromedriver here (Debian's chromium-driver package)"
    return ""


def wait_for(what: str, condition: Callable[[], T], timeout: float, every: float = 0.25) -> T:
    """Poll ``condition`` until it returns something true; fail saying ``what`` was not reached in time."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout:.0f} s: {what}")
        time.sleep(every)


class JupyterPage:
    """One headless Chromium on a JupyterLab; ``close()`` ends the browser and its driver."""

    def __init__(self, artifacts: Path) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = next(shutil.which(b) for b in CHROMIUM if shutil.which(b))
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    "--window-size=1400,1000", "--no-proxy-server"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(options=options, service=Service(shutil.which(DRIVER)))
        self.artifacts = artifacts
        artifacts.mkdir(parents=True, exist_ok=True)
        self.screenshots: list[Path] = []

    def close(self) -> None:
        self.driver.quit()

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def screenshot(self, name: str) -> Path:
        path = self.artifacts / f"{name}.png"
        self.driver.save_screenshot(str(path))
        self.screenshots.append(path)
        return path

    def console_errors(self) -> list[str]:
        """The browser console's errors since the last call."""
        return [e["message"] for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]

    # -- the notebook ------------------------------------------------------------------------------------------
    def open(self, url: str) -> float:
        """Open ``url`` and wait until the notebook it shows has an idle kernel; returns the seconds it took."""
        started = time.monotonic()
        name = url.split("?")[0].rsplit("/", 1)[-1]
        self.driver.get(url)
        wait_for(f"{name} is the current tab", lambda: self.title().startswith(name), 60)
        self.wait_kernel_idle(90)
        return time.monotonic() - started

    def wait_kernel_idle(self, timeout: float) -> None:
        """Until the current notebook's kernel is idle, as both its toolbar and the status bar say (while a notebook
        loads, its toolbar says idle before its kernel even starts)."""
        wait_for("the notebook's kernel is idle", lambda: self.js(
            "const p = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');"
            "const s = p && p.querySelector('.jp-Notebook-ExecutionIndicator');"
            "const bar = document.querySelector('#jp-main-statusbar');"
            "return !!s && s.getAttribute('data-status') === 'idle' && !!bar && bar.innerText.includes('| Idle');"),
            timeout)

    def title(self) -> str:
        return self.js("const t = document.querySelector('.lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current');"
                       "return t ? t.innerText : '';")

    def dirty(self) -> bool:
        """Whether the current notebook's tab shows unsaved changes."""
        return self.js("const t = document.querySelector('.lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current');"
                       "return !!t && t.classList.contains('jp-mod-dirty');")

    def dialogs(self) -> list[str]:
        """Texts of open dialogs and notification toasts (the news pop-up is one)."""
        return self.js("return [...document.querySelectorAll('.jp-Dialog, .Toastify__toast')]"
                       ".map(e => e.innerText);")

    def command(self, menu: str, command: str) -> None:
        """Click ``menu`` in the menu bar, then the item that runs ``command`` (``runmenu:run-all``)."""
        from selenium.webdriver.common.by import By

        labels = self.driver.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-itemLabel")
        next(label for label in labels if label.text == menu).click()
        item = wait_for(f"the {command} item of the {menu} menu", lambda: self.driver.find_elements(
            By.CSS_SELECTOR, f".lm-Menu-item[data-command='{command}']"), 10)
        item[0].click()

    def prompts(self) -> list[str]:
        """Each code cell's input prompt (``[*]:``, ``[3]:``, ``[ ]:``), in order; '' for other cells."""
        return self.js("const p = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');"
                       "return [...p.querySelectorAll('.jp-Notebook .jp-Cell')].map(c => {"
                       "  const i = c.querySelector('.jp-InputPrompt');"
                       "  return c.classList.contains('jp-CodeCell') && i ? i.innerText.trim() : ''; });")

    def output_html(self, index: int) -> str:
        return self.js("const p = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');"
                       "const c = p.querySelectorAll('.jp-Notebook .jp-Cell')[arguments[0]];"
                       "const o = c && c.querySelector('.jp-OutputArea');"
                       "return o ? o.innerHTML : '';", index)

    def scroll_to(self, index: int) -> None:
        """Bring cell ``index`` to the top of the notebook's view (for a screenshot)."""
        self.js("const p = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');"
                "p.querySelectorAll('.jp-Notebook .jp-Cell')[arguments[0]].scrollIntoView();", index)

    def run_all(self, timeout: float, while_running: Callable[[list[str]], None] = lambda prompts: None) -> float:
        """Run all cells and wait until every code cell ran; ``while_running`` sees the prompts at each poll.
        Returns the seconds it took."""
        started = time.monotonic()
        self.command("Run", "runmenu:run-all")

        def finished() -> bool:  # Run All queues every cell at once ([*]); it stops at a cell that fails
            prompts = self.prompts()
            while_running(prompts)
            return time.monotonic() - started > 1 and "[*]:" not in prompts

        try:
            wait_for("every cell ran", finished, timeout, every=0.5)
            self.wait_kernel_idle(30)
        finally:
            self.screenshot(f"{self.title().split('.')[0]}-after-run-all")
        return time.monotonic() - started

    def save(self) -> None:
        self.command("File", "docmanager:save")
        wait_for("the notebook is saved", lambda: not self.dirty(), 30)
