"""A real headless Chromium (Debian's ``chromium`` package, which ``make test`` installs) for the page tests: the
service's dashboard and optuna-dashboard over an exported study. Test artifacts (DOM dumps, screenshots) go to
``$AUTORAG_HP_ARTIFACTS`` (default ``build/test-artifacts/``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

ARTIFACTS = Path(os.environ.get("AUTORAG_HP_ARTIFACTS", Path(__file__).resolve().parents[1] / "build" / "test-artifacts"))


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium(binary: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}",
               "--virtual-time-budget=15000", *args]
        return subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)


def dump_dom(binary: str, page: str, artifact: str) -> str:
    """The page's DOM after its scripts ran, kept as ``ARTIFACTS/artifact``."""
    dom = chromium(binary, "--dump-dom", page)
    html = dom.stdout.decode("utf-8", "replace")
    assert dom.returncode == 0, dom.stderr.decode()[-2000:]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / artifact).write_text(html)
    return html


def screenshot(binary: str, page: str, out: Path, *, size: str = "1280,900", min_bytes: int = 20_000) -> bytes:
    """A PNG of the page at ``out`` (and in ARTIFACTS under the same name); fails unless it is a real, non-blank
    page (at least ``min_bytes``)."""
    res = chromium(binary, f"--screenshot={out}", f"--window-size={size}", page)
    assert res.returncode == 0 and out.exists(), res.stderr.decode()[-2000:]
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > min_bytes
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / out.name).write_bytes(data)
    return data
