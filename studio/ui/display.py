"""Can a window open here? Checked before Qt starts, which would abort with a core dump.

On Linux Qt needs a display (``DISPLAY`` for X11, ``WAYLAND_DISPLAY`` for
Wayland) and, for X11, a set of system libraries that pip cannot install. Each
missing piece becomes one line naming the fix. No Qt import here.
"""

from __future__ import annotations

import ctypes
import os
import sys

# The shared libraries Qt's xcb platform plugin loads, and the Debian/Ubuntu package of each.
XCB_LIBRARIES: dict[str, str] = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libEGL.so.1": "libegl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}
# What the README lists: every package above (xinerama is loaded by older Qt 6 builds).
LINUX_PACKAGES = sorted(set(XCB_LIBRARIES.values()) | {"libxcb-xinerama0"})


def install_line(packages) -> str:
    return "sudo apt-get install " + " ".join(packages)


def missing_xcb_libraries() -> list[str]:
    """The libraries of XCB_LIBRARIES the dynamic loader cannot find."""
    missing = []
    for lib in XCB_LIBRARIES:
        try:
            ctypes.CDLL(lib)
        except OSError:
            missing.append(lib)
    return missing


def _platform() -> str:
    """The Qt platform plugin that would start: the one asked for, else Linux's default."""
    asked = os.environ.get("QT_QPA_PLATFORM", "").split(":")[0].strip().lower()
    if asked:
        return asked
    if os.environ.get("WAYLAND_DISPLAY") and not os.environ.get("DISPLAY"):
        return "wayland"
    return "xcb"


def display_problem(offscreen_ok: bool = False) -> str | None:
    """None when a window can open; else one line saying what is missing and how to fix it.

    ``offscreen_ok``: the caller only renders to a file (``--screenshot``), so with
    no display it switches Qt to its offscreen platform instead of refusing.
    """
    if not sys.platform.startswith("linux"):
        return None
    platform = _platform()
    if platform not in ("xcb", "wayland"):
        return None  # offscreen, minimal, vnc ...: nothing to check
    has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if not has_display:
        if offscreen_ok:
            os.environ["QT_QPA_PLATFORM"] = "offscreen"
            return None
        return ("error: no display to open a window on (DISPLAY and WAYLAND_DISPLAY are unset): run it "
                "in a desktop session (X11 needs: " + install_line(LINUX_PACKAGES) + "), over ssh -X, "
                "under xvfb-run, or add --screenshot OUT.png to render without a display")
    if platform == "xcb":
        missing = missing_xcb_libraries()
        if missing:
            packages = sorted({XCB_LIBRARIES[lib] for lib in missing})
            return (f"error: Qt's X11 (xcb) plugin needs system libraries that are missing "
                    f"({', '.join(missing)}); install them with: {install_line(packages)}")
    return None
