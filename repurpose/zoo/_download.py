"""Downloads of Gluon and gluoncv weights from the libraries' own model stores: their URL
scheme, SHA-1 tables, ``MXNET_GLUON_REPO`` mirror variable and cache folders, with errors that
say how to place a file by hand on an offline machine."""
import hashlib
import logging
import os
import re
import shutil
import tempfile
import zipfile

import mxnet as mx

from .._progress import tqdm
from .._validation import brief_list
from ..exceptions import DownloadError, MissingWeightsError

logger = logging.getLogger(__package__)  # records named repurpose.zoo, as before the split


# Seconds to wait for a model store to accept the connection, and for each chunk of data.
_DOWNLOAD_TIMEOUT = (10, 60)


def _gluon_default_root():
    """Gluon's cache folder: ``$MXNET_HOME/models``, else ``~/.mxnet/models``."""
    return os.path.join(os.path.expanduser(mx.base.data_dir()), "models")


def _gluoncv_default_root():
    """gluoncv's cache folder: ``$MXNET_HOME/models`` if set, else ``~/.mxnet/models``."""
    home = os.environ.get("MXNET_HOME", os.path.join("~", ".mxnet"))
    return os.path.expanduser(os.path.join(home, "models"))


def _model_store(family):
    """The library's model-store module: its ``_url_format``, ``apache_repo_url`` and
    ``_model_sha1`` define where each weights file is published and what its SHA-1 is."""
    if family == "gluon":
        from mxnet.gluon.model_zoo import model_store
    else:
        from gluoncv.model_zoo import model_store
    return model_store


def _weights_folder(family, root):
    """The absolute cache folder for ``family``'s weights: ``root`` or the library's default."""
    if root is not None:
        return os.path.abspath(os.path.expanduser(os.fspath(root)))
    return os.path.abspath(_gluon_default_root() if family == "gluon"
                           else _gluoncv_default_root())


def _weights_url(family, weights_file):
    """URL of the zip archive holding ``weights_file``, as the library's ``get_model_file``
    builds it: ``$MXNET_GLUON_REPO`` (default: the store's ``apache_repo_url``) with a
    trailing slash, then the store's ``_url_format``."""
    store = _model_store(family)
    repo_url = os.environ.get("MXNET_GLUON_REPO", store.apache_repo_url)
    if not repo_url.endswith("/"):
        repo_url += "/"
    return store._url_format.format(repo_url=repo_url,
                                    file_name=weights_file[:-len(".params")])


def _sha1(path):
    """SHA-1 hex digest of a file (what the model stores' ``check_sha1`` compares)."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _network_reason(err):
    """A short cause from a ``requests`` error, e.g. ``'Connection refused'``."""
    import requests

    if isinstance(err, requests.ConnectTimeout):
        return f"no connection within {_DOWNLOAD_TIMEOUT[0]} s"
    if isinstance(err, requests.Timeout):
        return f"no data for {_DOWNLOAD_TIMEOUT[1]} s"
    if isinstance(err, requests.exceptions.ChunkedEncodingError):
        return "the server closed the connection before the end of the file"
    text = str(err)
    found = re.findall(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if found:
        return found[-1].strip()
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _mirror_advice():
    """What to say about ``MXNET_GLUON_REPO``: unset it if set, or set it to a mirror."""
    mirror = os.environ.get("MXNET_GLUON_REPO")
    if mirror:
        return (f"The mirror MXNET_GLUON_REPO={mirror} is in use: check that it holds the "
                f"file, or unset the variable to use the library's own repository.")
    return "Setting MXNET_GLUON_REPO to a mirror that holds the file works too."


def _by_hand(url, path):
    """The offline recipe: which URL to fetch elsewhere and where to put what it holds."""
    return (f"To install the file by hand, download {url} where the network allows, unzip "
            f"it and put {os.path.basename(path)} at {path}.")


def _download_weights(name, family, url, path, sha1, progress):
    """Download ``url`` (a zip archive holding one ``.params`` file), check the SHA-1 of the
    file inside and move it to ``path``; on any failure leave nothing behind.

    MXNet's and gluoncv's ``get_model_file`` fall short here, so this reuses their URL scheme
    and SHA-1 table instead of calling them: both print to stdout; MXNet's shows no progress
    bar, retries five times and moves the file into place *before* checking its SHA-1 (a
    corrupt file stays in the cache); gluoncv's downloads and unzips straight into the cache
    folder (an interrupted download leaves a partial ``.zip`` or ``.params``). Here
    everything is written into a temporary folder beside the target, which is removed
    whatever happens; only a verified file is moved into place, with ``os.replace`` (atomic
    within one file system, so concurrent downloads of the same file are safe).
    """
    folder, file_name = os.path.split(path)
    created = not os.path.isdir(folder)
    os.makedirs(folder, exist_ok=True)
    temp = tempfile.mkdtemp(prefix=f".{file_name}.", suffix=".download", dir=folder)
    completed = False
    try:
        archive = os.path.join(temp, "archive.zip")
        logger.info("Downloading %s weights for %r from %s", family, name, url)
        received = _receive(name, url, path, archive, progress)
        extracted = _unpack(name, url, path, archive, received)
        actual = _sha1(extracted)
        if actual != sha1:
            raise DownloadError(
                f"The weights of {name!r} downloaded from {url} have SHA-1 {actual}, but "
                f"{family}'s model store expects {sha1}: the file is damaged or another "
                f"version. It was discarded and nothing was written to {folder}. Try "
                f"again. {_mirror_advice()}")
        os.replace(extracted, path)
        completed = True
    finally:
        shutil.rmtree(temp, ignore_errors=True)
        if created and not completed:
            try:
                os.rmdir(folder)  # the cache folder we made, if still empty
            except OSError:
                pass
    logger.info("Saved %s weights for %r to %s (SHA-1 %s checked)", family, name, path, sha1)


def _receive(name, url, path, archive, progress):
    """Stream ``url`` into the file ``archive`` (in the temporary folder) with a progress bar;
    return the number of bytes received, or raise :class:`DownloadError` for ``path``."""
    import requests  # MXNet's and gluoncv's own downloaders use requests too

    where = f"Nothing was written to {os.path.dirname(path)}."
    try:
        response = requests.get(url, stream=True, timeout=_DOWNLOAD_TIMEOUT)
    except requests.RequestException as err:
        raise DownloadError(
            f"Could not download the weights of {name!r} from {url}: "
            f"{_network_reason(err)}. {where} {_by_hand(url, path)} "
            f"{_mirror_advice()}") from err
    with response:
        if response.status_code != 200:
            raise DownloadError(
                f"Could not download the weights of {name!r}: {url} answered HTTP "
                f"{response.status_code} ({response.reason}). {where} "
                f"{_by_hand(url, path)} {_mirror_advice()}")
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        try:
            with open(archive, "wb") as f, tqdm(
                    total=total, unit="B", unit_scale=True, unit_divisor=1024,
                    desc=os.path.basename(path), disable=not progress, leave=False) as bar:
                for chunk in response.iter_content(chunk_size=1 << 16):
                    f.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        except requests.RequestException as err:
            raise DownloadError(
                f"The download of the weights of {name!r} from {url} broke off after "
                f"{received:,} of {f'{total:,}' if total else 'an unknown number of'} "
                f"bytes ({_network_reason(err)}). {where} Try again. "
                f"{_by_hand(url, path)}") from err
        # urllib3 2 raises on a short body itself (above); urllib3 1 did not by default.
        if (total is not None and received < total
                and not response.headers.get("Content-Encoding")):
            raise DownloadError(
                f"The download of the weights of {name!r} from {url} broke off after "
                f"{received:,} of {total:,} bytes. {where} Try again. "
                f"{_by_hand(url, path)}")
    return received


def _unpack(name, url, path, archive, received):
    """Extract the file named as ``path`` from the downloaded zip ``archive`` into the
    archive's folder and return its path, or raise :class:`DownloadError`."""
    file_name = os.path.basename(path)
    where = f"Nothing was written to {os.path.dirname(path)}."
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.namelist()
            if file_name not in members:
                raise DownloadError(
                    f"The archive {url} does not hold {file_name} (it holds "
                    f"{brief_list(members, 4)}), so it is not the weights of {name!r}. "
                    f"{where} {_by_hand(url, path)} {_mirror_advice()}")
            return zf.extract(file_name, os.path.dirname(archive))
    except zipfile.BadZipFile as err:
        raise DownloadError(
            f"What {url} sent ({received:,} bytes) is not a zip archive, so it is not the "
            f"weights of {name!r}: {err}. {where} {_by_hand(url, path)} "
            f"{_mirror_advice()}") from err


def _fetch_library_weights(name, family, card, root, progress):
    """Return ``(path, downloaded)``: the verified cached file, downloaded if not there."""
    if card["weights_file"] is None:
        raise MissingWeightsError(
            f"{family} publishes no pretrained weights for {name!r}, so there is nothing to "
            f"download. Pass weights=PATH to a .params file for this architecture, or "
            f"pretrained=False for random initialisation.")
    path = os.path.join(_weights_folder(family, root), card["weights_file"])
    if os.path.isfile(path):
        actual = _sha1(path)
        if actual == card["weights_sha1"]:
            logger.info("Weights for %r already at %s", name, path)
            return path, False
        logger.warning("%s has SHA-1 %s, but %s's model store expects %s; downloading it "
                       "again.", path, actual, family, card["weights_sha1"])
    url = _weights_url(family, card["weights_file"])
    _download_weights(name, family, url, path, card["weights_sha1"], progress)
    return path, True
