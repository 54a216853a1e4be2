"""Saving and loading: atomic writes, SHA-256 of files. (Manifests, the class registry and
format migrations for fitted heads and repurposers come with them.)
"""
from ._io import atomic_write, check_writable, file_sha256

__all__ = ["atomic_write", "check_writable", "file_sha256"]
