"""Which ``/data/local-files/?d=...`` references may be read from disk, instead of through Label Studio.

Label Studio serves a local file only under its ``LOCAL_FILES_DOCUMENT_ROOT`` and only when a local
import storage contains it; DALT reads the same files from its own mount of that folder (a download saved)
under the same two rules, applied per task: the file must be inside one of the task's *own project's*
storages, so task data of one project cannot read another project's files from the shared root. A file
outside the scope is not refused here: it is downloaded through Label Studio, which applies its own
permissions.
"""

from __future__ import annotations

import os


class EscapesRoot(ValueError):
    """The reference names a path outside the document root (``..``, an absolute path, a symlink out)."""


class LocalFiles:
    """DALT's view of Label Studio's document root.

    Args:
        root: the folder on this machine (the same files as Label Studio's document root).
        scope: the project's storage paths as Label Studio names them; None: every file under ``root``.
        ls_root: ``root`` as Label Studio names it (its storage paths start with it); default ``root``.
    """

    def __init__(self, root: str, scope: tuple[str, ...] | None = None, ls_root: str | None = None):
        self.root = os.path.realpath(root)
        self.scope = None if scope is None else tuple(os.path.normpath(p) for p in scope)
        self.ls_root = os.path.normpath(ls_root or root)

    def path_of(self, rel: str) -> str | None:
        """The file on disk for ``?d=rel``, or None when it is outside the scope (download it instead).

        Raises:
            EscapesRoot: the path leaves the document root.
        """
        path = os.path.realpath(os.path.join(self.root, rel.lstrip("/")))
        if not rel or os.path.commonpath([path, self.root]) != self.root:
            raise EscapesRoot(rel)
        if self.scope is None:
            return path
        folder = os.path.dirname(os.path.normpath(os.path.join(self.ls_root, os.path.relpath(path, self.root))))
        if any(folder == s or folder.startswith(s.rstrip("/") + "/") for s in self.scope):
            return path
        return None
