"""Whether WebRTC media can flow between peers on this machine (see scripts/netns-run.sh).

libwebrtc ignores interfaces flagged LOOPBACK, so media tests need the private network
namespace set up by ``scripts/netns-run.sh``: ``VOICE_WIDGET_E2E_NETNS=1`` and an interface
that is not a loopback one holding a 127.x address.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

NETNS_VARIABLE = "VOICE_WIDGET_E2E_NETNS"
RUN_HINT = "run under scripts/netns-run.sh (as root)"


def _interfaces() -> list[dict]:
    ip = shutil.which("ip") or "/usr/sbin/ip"
    try:
        out = subprocess.run(
            [ip, "-j", "addr", "show"], capture_output=True, text=True, timeout=5, check=True
        ).stdout
        return json.loads(out)
    except (OSError, subprocess.SubprocessError, ValueError):
        return []


def netns_problem() -> str | None:
    """Why media tests cannot run here, or None when they can."""
    if os.environ.get(NETNS_VARIABLE) != "1":
        return f"{NETNS_VARIABLE} is not set: {RUN_HINT}"
    for interface in _interfaces():
        if "LOOPBACK" in interface.get("flags", []) or "UP" not in interface.get("flags", []):
            continue
        for address in interface.get("addr_info", []):
            if address.get("family") == "inet" and address.get("local", "").startswith("127."):
                return None
    return f"no interface that is up, not LOOPBACK, with a 127.x address: {RUN_HINT}"
