"""What a drop or a paste carries, beyond what every panel reads (studio.ui.panel): folders, raw
image bytes, a path or file URL given as text, and web addresses the app will not fetch.
``PictureDrops`` is the CycleGAN panel's side of it.

File managers give ``text/uri-list`` with ``file://`` URLs (one or many); browsers give the
picture as image data (``image/png`` ..., which Qt may or may not offer as a QImage), often
beside an ``http(s)://`` URL; some programs give a path or file URL as plain text.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl

WEB_SCHEMES = ("http", "https", "ftp", "data")


def local_paths(mime) -> list[str]:
    """Local files and folders the mime data names, as URLs or as one path or file URL per text line."""
    if mime.hasUrls():
        return [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
    if not mime.hasText():
        return []
    paths = []
    for line in mime.text().splitlines():
        line = line.strip()
        if not line:
            continue
        url = QUrl(line)
        if url.isLocalFile():
            paths.append(url.toLocalFile())
        elif Path(line).is_absolute() and Path(line).exists():
            paths.append(line)
    return paths


def split_folders(paths: list[str]) -> tuple[list[str], list[str]]:
    """(folders, everything else)."""
    folders = [p for p in paths if Path(p).is_dir()]
    return folders, [p for p in paths if p not in folders]


def raw_image_bytes(mime) -> bytes | None:
    """Encoded picture data a browser offers (image/png, image/jpeg, ...), as it came."""
    for fmt in mime.formats():
        if fmt.startswith("image/"):
            data = bytes(mime.data(fmt).data())
            if data:
                return data
    return None


def web_addresses(mime) -> list[str]:
    """Addresses on the web the drop names (the app downloads nothing: the user saves the picture first)."""
    urls = [u for u in mime.urls() if u.scheme() in WEB_SCHEMES] if mime.hasUrls() else []
    if not urls and mime.hasText():
        urls = [QUrl(line.strip()) for line in mime.text().splitlines()
                if QUrl(line.strip()).scheme() in WEB_SCHEMES]
    return [u.toString() for u in urls]


def short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class PictureDrops:
    """Drops and pastes for a panel (mixed in before RenderPanel): pictures go to ``images_dropped``,
    a folder to ``self.folder`` (the folder translation), anything else gets a one-line message."""

    _unnamed = "dropped image"  # what picture data without a file is called

    def paste(self) -> None:
        self._unnamed = "pasted image"
        try:
            super().paste()
        finally:
            self._unnamed = "dropped image"

    def dragEnterEvent(self, event) -> None:
        mime = event.mimeData()
        if mime.hasUrls() or mime.hasImage() or mime.hasText() or raw_image_bytes(mime) is not None:
            event.acceptProposedAction()

    def _take_mime(self, mime, how: str) -> bool:
        """Folders, text paths, raw picture bytes and web addresses, beyond what every panel reads."""
        if mime is None:
            return False
        paths = local_paths(mime)
        folders, files = split_folders(paths)
        if folders:
            self.offer_folder(folders[0], len(folders) - 1)
            if files:
                self.images_dropped(files)
            return True
        if paths and not mime.hasUrls():  # a path or file URL given as text
            self.images_dropped(paths)
            return True
        if super()._take_mime(mime, how):
            return True
        data = raw_image_bytes(mime)
        if data is not None:
            self.images_dropped([data])
            return True
        web = web_addresses(mime)
        if web:
            self.on_error(how, f"{short(web[0])}: a web address; save the picture, then drop the file "
                               "(the app downloads nothing)")
            return True
        return False

    def offer_folder(self, folder: str, others: int = 0) -> None:
        """A dropped folder becomes the folder to translate (its files are not all shown at once)."""
        self.folder.set_source(folder)
        more = f" ({others} more folder{'s' if others > 1 else ''} ignored)" if others else ""
        self.show_info(f"{Path(folder).name}: a folder, set as the folder to translate{more}; "
                       "check the output folder and press Translate folder")

