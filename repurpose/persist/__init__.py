"""Saving and loading: folders of JSON + arrays with a versioned manifest, an explicit class
registry, atomic writes, SHA-256 of files. Never pickle.
"""
from ._format import FileFormat, strict_json, write_json
from ._io import (atomic_write, check_writable, confined_path, explain_full_disk, file_sha256,
                  remove_temporaries)
from ._lock import FolderLock
from ._registry import register, registered_class, registered_names
from ._save import FORMAT_VERSION, MIGRATIONS, load, migrate, register_source_class, save

__all__ = ["FileFormat", "FolderLock", "write_json", "strict_json", "atomic_write",
           "check_writable", "file_sha256", "confined_path", "explain_full_disk",
           "remove_temporaries", "register", "registered_class", "registered_names", "register_source_class", "save", "load", "migrate",
           "FORMAT_VERSION", "MIGRATIONS"]
