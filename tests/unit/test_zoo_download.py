"""Zoo weights on request: ``download=True`` / ``fetch_weights`` against a local HTTP server.

A real ``http.server`` on 127.0.0.1 is the ``MXNET_GLUON_REPO`` gluon_mirror. It publishes a small
real Gluon network (``mobilenet0.25``, random Xavier weights) under the URL MXNet's model store
builds, zipped as the store expects, and the test makes that file's SHA-1 the one the store
checks (``monkeypatch.setitem`` on the store's own ``_model_sha1`` table). Other tests serve
a corrupt file, nothing (404), half a file, or no server at all.
"""
import hashlib
import io
import logging
import os
import re
import socket
import time
import zipfile

import mxnet as mx
import numpy as np
import pytest

from repurpose import SourceModel, zoo
from repurpose.exceptions import DownloadError, InvalidParameterError, MissingWeightsError
from repurpose.features import extract_features

NAME = "mobilenet0.25"


def _zip(member, data):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(member, data)
    return buffer.getvalue()


def _left_in(root):
    return sorted(os.listdir(root)) if root.exists() else []


# ------------------------------------------------------------------------------------------
# A good file
# ------------------------------------------------------------------------------------------

def test_download_then_cached_ok(published_gluon_weights, gluon_mirror, gluon_params_bytes, tmp_path):
    url, file_name, _ = published_gluon_weights
    root = tmp_path / "models"
    model = SourceModel.from_zoo(NAME, download=True, root=root)
    assert gluon_mirror.requests == [url[len(gluon_mirror.url):]]
    assert _left_in(root) == [file_name]  # the file and nothing else: no zip, no temporary
    assert (root / file_name).read_bytes() == gluon_params_bytes

    again = SourceModel.from_zoo(NAME, root=root)  # no download: found in the cache
    assert len(gluon_mirror.requests) == 1
    x = mx.nd.array(np.random.RandomState(0).rand(1, 3, 224, 224))
    layer = model.output_layers[0]
    np.testing.assert_allclose(extract_features(model, x, [layer], progress=False)[layer],
                               extract_features(again, x, [layer], progress=False)[layer],
                               rtol=1e-5)


def test_fetch_weights_reports_already_there(published_gluon_weights, gluon_mirror, tmp_path):
    url, file_name, _ = published_gluon_weights
    root = tmp_path / "models"
    first = zoo.fetch_weights(NAME, root=root, progress=False)
    assert first == {"name": NAME, "family": "gluon", "path": str(root / file_name),
                     "url": url, "downloaded": True}
    second = zoo.fetch_weights(NAME, root=root, progress=False)
    assert second["downloaded"] is False and second["path"] == first["path"]
    assert len(gluon_mirror.requests) == 1


def test_cached_file_with_other_sha1_is_downloaded_again(published_gluon_weights, gluon_mirror, gluon_params_bytes,
                                                          tmp_path, caplog):
    _, file_name, sha1 = published_gluon_weights
    root = tmp_path / "models"
    root.mkdir()
    (root / file_name).write_bytes(b"an older or damaged copy")
    with caplog.at_level(logging.WARNING, logger="repurpose.zoo"):
        found = zoo.fetch_weights(NAME, root=root, progress=False)
    assert found["downloaded"] is True and (root / file_name).read_bytes() == gluon_params_bytes
    assert f"but gluon's model store expects {sha1}; downloading it again" in caplog.text


def test_without_download_nothing_is_fetched_error(published_gluon_weights, gluon_mirror, tmp_path):
    root = tmp_path / "models"
    with pytest.raises(MissingWeightsError, match=rf"Weights for '{re.escape(NAME)}' not found"):
        SourceModel.from_zoo(NAME, root=root)
    assert gluon_mirror.requests == [] and not root.exists()


def test_gluoncv_name_uses_gluoncv_store(gluon_mirror, monkeypatch, tmp_path):
    from gluoncv.model_zoo import model_store

    name = "cifar_resnet20_v1"
    block = zoo.resolve_zoo_model(name, pretrained=False)["block"]
    block.save_parameters(str(tmp_path / "w.params"))
    data = (tmp_path / "w.params").read_bytes()
    sha1 = hashlib.sha1(data).hexdigest()
    monkeypatch.setitem(model_store._model_sha1, name, sha1)
    stem = f"{name}-{sha1[:8]}"
    gluon_mirror.files[f"/gluon/models/{stem}.zip"] = _zip(stem + ".params", data)
    root = tmp_path / "models"
    model = SourceModel.from_zoo(f"gluoncv:{name}", download=True, root=root)
    assert model.input_shape == (3, 32, 32)
    assert _left_in(root) == [stem + ".params"]


def test_project_model_needs_no_download(gluon_mirror):
    found = zoo.fetch_weights("digits_cnn", progress=False)
    assert found["downloaded"] is False and found["url"] is None
    assert os.path.isfile(found["path"])
    SourceModel.from_zoo("digits_cnn", download=True)
    assert gluon_mirror.requests == []


def test_default_repository_is_the_stores(monkeypatch):
    from mxnet.gluon.model_zoo import model_store

    monkeypatch.delenv("MXNET_GLUON_REPO", raising=False)
    assert zoo._weights_url("gluon", "resnet18_v1-a0666292.params") == \
        model_store.apache_repo_url + "gluon/models/resnet18_v1-a0666292.zip"
    monkeypatch.setenv("MXNET_GLUON_REPO", "http://gluon_mirror.example/")
    assert zoo._weights_url("gluon", "resnet18_v1-a0666292.params") == \
        "http://gluon_mirror.example/gluon/models/resnet18_v1-a0666292.zip"


# ------------------------------------------------------------------------------------------
# Failures leave nothing behind and say what to do
# ------------------------------------------------------------------------------------------

def test_corrupt_file_error(published_gluon_weights, gluon_mirror, gluon_params_bytes, tmp_path):
    url, file_name, sha1 = published_gluon_weights
    damaged = bytearray(gluon_params_bytes)
    damaged[len(damaged) // 2] ^= 0xFF
    gluon_mirror.files[url[len(gluon_mirror.url):]] = _zip(file_name, bytes(damaged))
    got = hashlib.sha1(bytes(damaged)).hexdigest()
    root = tmp_path / "models"
    root.mkdir()
    with pytest.raises(DownloadError, match=rf"weights of '{re.escape(NAME)}' downloaded from "
                                            rf"{re.escape(url)} have SHA-1 {got}, but gluon's "
                                            rf"model store expects {sha1}") as info:
        SourceModel.from_zoo(NAME, download=True, root=root)
    assert f"nothing was written to {root}" in str(info.value)
    assert isinstance(info.value, OSError)
    assert _left_in(root) == []  # no .params, no .zip, no temporary folder


def test_missing_file_error(gluon_mirror, gluon_params_bytes, monkeypatch, tmp_path):
    from mxnet.gluon.model_zoo import model_store

    sha1 = hashlib.sha1(gluon_params_bytes).hexdigest()
    monkeypatch.setitem(model_store._model_sha1, NAME, sha1)  # published_gluon_weights nowhere
    url = f"{gluon_mirror.url}/gluon/models/{NAME}-{sha1[:8]}.zip"
    root = tmp_path / "models"
    target = root / f"{NAME}-{sha1[:8]}.params"
    with pytest.raises(DownloadError) as info:
        zoo.fetch_weights(NAME, root=root, progress=False)
    message = str(info.value)
    assert f"{url} answered HTTP 404" in message
    assert f"put {target.name} at {target}" in message
    assert f"MXNET_GLUON_REPO={gluon_mirror.url} is in use" in message
    assert _left_in(root) == [] and not root.exists()  # the folder it made is gone too


def test_server_stops_mid_file_error(published_gluon_weights, gluon_mirror, tmp_path):
    url, file_name, _ = published_gluon_weights
    gluon_mirror.truncate.add(url[len(gluon_mirror.url):])
    root = tmp_path / "models"
    root.mkdir()
    with pytest.raises(DownloadError, match=rf"from {re.escape(url)} broke off after "
                                            r"[\d,]+ of [\d,]+ bytes") as info:
        zoo.fetch_weights(NAME, root=root, progress=False)
    assert f"put {file_name} at {root / file_name}" in str(info.value)
    assert _left_in(root) == []


def test_not_a_zip_archive_error(published_gluon_weights, gluon_mirror, tmp_path):
    url, _, _ = published_gluon_weights
    gluon_mirror.files[url[len(gluon_mirror.url):]] = b"<html>a captive portal</html>"
    root = tmp_path / "models"
    root.mkdir()
    with pytest.raises(DownloadError, match=rf"What {re.escape(url)} sent \(29 bytes\) is not "
                                            r"a zip archive"):
        zoo.fetch_weights(NAME, root=root, progress=False)
    assert _left_in(root) == []


def test_archive_without_the_file_error(published_gluon_weights, gluon_mirror, gluon_params_bytes, tmp_path):
    url, file_name, _ = published_gluon_weights
    gluon_mirror.files[url[len(gluon_mirror.url):]] = _zip("other.params", gluon_params_bytes)
    root = tmp_path / "models"
    root.mkdir()
    with pytest.raises(DownloadError, match=rf"does not hold {re.escape(file_name)} \(it holds "
                                            r"'other.params'\)"):
        zoo.fetch_weights(NAME, root=root, progress=False)
    assert _left_in(root) == []


def test_offline_error(monkeypatch, tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MXNET_GLUON_REPO", f"http://127.0.0.1:{port}/")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    card = zoo.get_model_card("resnet18_v1")
    url = f"http://127.0.0.1:{port}/gluon/models/resnet18_v1-a0666292.zip"
    root = tmp_path / "models"
    started = time.monotonic()
    with pytest.raises(DownloadError, match=rf"Could not download the weights of 'resnet18_v1' "
                                            rf"from {re.escape(url)}: Connection refused") as info:
        SourceModel.from_zoo("resnet18_v1", download=True, root=root)
    assert time.monotonic() - started < 15  # no retries, no long waits
    assert f"put {card['weights_file']} at {root / card['weights_file']}" in str(info.value)
    assert not root.exists()


# ------------------------------------------------------------------------------------------
# Arguments
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    ({"download": "yes"}, "download must be True or False, got 'yes'"),
    ({"download": True, "weights": "w.params"}, "download=True was given with weights="),
    ({"download": True, "pretrained": False}, "download=True was given with pretrained=False"),
    ({"download": True, "progress": 1}, "progress must be True or False"),
])
def test_download_arguments_error(kwargs, match, gluon_mirror):
    with pytest.raises(InvalidParameterError, match=match):
        zoo.resolve_zoo_model(NAME, **kwargs)
    assert gluon_mirror.requests == []


def test_fetch_unknown_name_error(gluon_mirror):
    with pytest.raises(InvalidParameterError, match="Unknown zoo model 'mobilenet0.2'. "
                                                    "Did you mean"):
        zoo.fetch_weights("mobilenet0.2")
    assert gluon_mirror.requests == []


def test_fetch_unpublished_weights_error(tmp_path):
    with pytest.raises(MissingWeightsError, match="gluoncv publishes no pretrained weights for "
                                                  "'nasnet_4_1056', so there is nothing to "
                                                  "download"):
        zoo.fetch_weights("nasnet_4_1056", root=tmp_path)


def test_from_spec_download_of_a_model_file_error(tiny_checkpoint):
    prefix, epoch, _ = tiny_checkpoint
    with pytest.raises(InvalidParameterError, match="only model-zoo weights are downloaded"):
        SourceModel.from_spec(prefix, download=True)
