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


def render(binary: str, page: str, out: Path, *, size: str = "1280,900", min_bytes: int = 20_000) -> tuple[str, bytes]:
    """The page's DOM after its scripts ran, and a PNG of it at ``out``, from one Chromium launch (a launch costs
    seconds). Fails unless the PNG is a real, non-blank page (at least ``min_bytes``). Both are kept in ARTIFACTS:
    the PNG under ``out``'s name, the DOM as ``<stem>.dom.html``."""
    res = chromium(binary, "--dump-dom", f"--screenshot={out}", f"--window-size={size}", page)
    assert res.returncode == 0 and out.exists(), res.stderr.decode()[-2000:]
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > min_bytes
    html = res.stdout.decode("utf-8", "replace")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / out.name).write_bytes(data)
    (ARTIFACTS / f"{out.stem}.dom.html").write_text(html)
    return html, data
