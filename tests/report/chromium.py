"""Headless Chromium for the report's browser test: find or install Debian's package, load pages, screenshot.

Pages are checked from inside the browser: `probed_copy` injects a first-in-<head> script that records window
errors (uncaught exceptions and failed resource loads, caught in the capture phase) and console.error calls,
and on the load event (which waits for every image) writes what it saw as JSON into the DOM, with the text a
reader sees (`innerText`, as rendered: title, heading, headline cards, figure captions); `--dump-dom` prints
the DOM after load, so the verdict comes back on stdout without a debugging protocol or a driver
package. Chromium's own console log on stderr is kept as a second witness.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Without the background-networking flags Chromium dials out at start (component updates, sync, QUIC probes)
# and this machine's closed network refuses it; none of it is needed to render a local file.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
RUN_TIMEOUT = 120
INSTALL_TIMEOUT = 1200

PROBE_ID = "kitsync-probe"
PROBE = (
    "<script>(function () {"
    "var seen = [];"
    "window.addEventListener('error', function (e) {"
    " var t = e.target;"
    " seen.push(t && t !== window && t.tagName"
    "  ? 'failed to load ' + t.tagName + ' ' + String(t.src).slice(0, 80) : 'uncaught: ' + e.message);"
    "}, true);"
    "var original = console.error;"
    "console.error = function () { seen.push('console.error: ' + Array.prototype.join.call(arguments, ' '));"
    " return original.apply(console, arguments); };"
    "window.addEventListener('load', function () {"
    " var images = Array.prototype.slice.call(document.images);"
    " var broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })"
    "  .map(function (i) { return i.alt || String(i.src).slice(0, 80); });"
    " function text(el) { return el ? el.innerText.replace(/\\s+/g, ' ').trim() : null; }"
    " function all(selector) { return Array.prototype.slice.call(document.querySelectorAll(selector)); }"
    " var visible = {title: document.title, heading: text(document.querySelector('h1')),"
    "  cards: all('.card').map(function (c) { return {label: text(c.querySelector('.label')),"
    "   value: text(c.querySelector('.value')), detail: text(c.querySelector('.detail'))}; }),"
    "  figures: all('figure').map(function (f) { return {chart: f.getAttribute('data-chart'),"
    "   caption: text(f.querySelector('figcaption'))}; })};"
    " var out = document.createElement('pre'); out.id = '" + PROBE_ID + "';"
    " out.textContent = JSON.stringify({images: images.length, broken: broken, errors: seen,"
    "  visible: visible});"
    " document.body.appendChild(out);"
    "});"
    "})();</script>"
)
_PROBE_OUTPUT = re.compile(r'<pre id="' + PROBE_ID + r'">(.*?)</pre>', re.DOTALL)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


def install_chromium() -> tuple[str | None, str]:
    """Install Debian's chromium package (apt-get update first only if the plain install fails).

    Returns the binary, or None and why not: the caller skips with that reason (fails on CI).
    """
    if not shutil.which("apt-get"):
        return None, "chromium is not installed and this machine has no apt-get to install Debian's package"
    if os.geteuid() != 0:
        return None, "chromium is not installed and installing Debian's package needs root"
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [
        "apt-get",
        "install",
        "-y",
        "--no-install-recommends",
        "-o",
        "DPkg::Lock::Timeout=300",
        "chromium",
    ]
    log = []
    for commands in ([install], [["apt-get", "update", "-o", "DPkg::Lock::Timeout=300"], install]):
        for command in commands:
            try:
                done = subprocess.run(  # noqa: S603 - fixed argv
                    command,
                    capture_output=True,
                    text=True,
                    timeout=INSTALL_TIMEOUT,
                    env=environment,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                return None, f"`{' '.join(command)}` did not finish in {INSTALL_TIMEOUT} s"
            log.append(f"$ {' '.join(command)} -> {done.returncode}\n{done.stderr[-600:]}")
            if done.returncode != 0:
                break
        found = find_chromium()
        if found:
            return found, "installed"
    return None, "could not install Debian's chromium package:\n" + "\n".join(log)


@dataclass(frozen=True)
class Run:
    stdout: str
    stderr: str
    returncode: int


def run_chromium(binary: str, profile: Path, *arguments: str) -> Run:
    """One headless Chromium process with its own throwaway profile directory."""
    profile.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(  # noqa: S603 - argv from the test
        [binary, *FLAGS, f"--user-data-dir={profile}", *arguments],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    return Run(done.stdout, done.stderr, done.returncode)


def probed_copy(page: Path, target: Path) -> Path:
    """A copy of `page` with the probe as the first script of <head>, so it sees every later error."""
    text = page.read_text(encoding="utf-8")
    head = text.find("<head>")
    if head < 0:
        raise ValueError(f"{page} has no <head> to put the probe in")
    at = head + len("<head>")
    target.write_text(text[:at] + PROBE + text[at:], encoding="utf-8")
    return target


def probe(binary: str, page: Path, profile: Path) -> dict[str, Any]:
    """Load a probed copy of `page` and return what the probe saw: images, broken images, errors, and the
    console lines Chromium logged to stderr (a second witness, e.g. for errors before the probe ran)."""
    copy = probed_copy(page, page.with_name(page.stem + ".probed.html"))
    run = run_chromium(binary, profile, "--enable-logging=stderr", "--v=0", "--dump-dom", copy.as_uri())
    match = _PROBE_OUTPUT.search(run.stdout)
    if match is None:
        raise AssertionError(
            f"the probe never reported (load event not reached?); exit {run.returncode}\n{run.stderr[-2000:]}"
        )
    seen = json.loads(html.unescape(match[1]))
    seen["console"] = [line for line in run.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    return seen
