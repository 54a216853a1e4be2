"""``repurpose fetch NAME...`` and ``source.download`` in job files, against a local gluon_mirror.

A real ``http.server`` on 127.0.0.1 is the ``MXNET_GLUON_REPO`` gluon_mirror; it publishes a small
real Gluon network (``mobilenet0.25``, random Xavier weights) as MXNet's model store expects,
and the test makes its SHA-1 the one the store checks.
"""
import logging

import pytest
import yaml

from repurpose.cli import main
from repurpose.jobs import config_from_dict, load_config
from repurpose.exceptions import InvalidParameterError

NAME = "mobilenet0.25"


@pytest.fixture(autouse=True)
def _restore_logging():
    """``main()`` installs the CLI's handler on the 'repurpose' logger; take it away again."""
    logger = logging.getLogger("repurpose")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


def test_fetch_downloads_then_says_already_there(published_gluon_weights, gluon_mirror,
                                                    tmp_path, capsys):
    published = published_gluon_weights[1]
    root = tmp_path / "models"
    assert main(["fetch", NAME, "digits_cnn", "--root", str(root), "--no-progress"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{NAME}: {root / published} (downloaded from {gluon_mirror.url}/gluon/models/" \
                     f"{published[:-len('.params')]}.zip)"
    assert out[1].startswith("digits_cnn: ") and out[1].endswith(
        "digits_cnn-0000.params (ships with repurpose; nothing to download)")
    assert sorted(p.name for p in root.iterdir()) == [published]

    assert main(["fetch", NAME, "--root", str(root), "--no-progress"]) == 0
    assert capsys.readouterr().out == f"{NAME}: {root / published} (already there)\n"
    assert len(gluon_mirror.requests) == 1


def test_fetch_unknown_name_exits_2_before_any_download(published_gluon_weights, gluon_mirror,
                                                       tmp_path, capsys):
    assert main(["fetch", NAME, "mobilenet0.2", "--root", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "repurpose fetch: error: Unknown zoo model 'mobilenet0.2'. Did you mean" in err
    assert "Traceback" not in err and gluon_mirror.requests == []


def test_fetch_unpublished_weights_exits_2(gluon_mirror, tmp_path, capsys):
    assert main(["fetch", "nasnet_4_1056", "--root", str(tmp_path)]) == 2
    assert "No pretrained weights are published for 'nasnet_4_1056'" in capsys.readouterr().err
    assert gluon_mirror.requests == []


def test_fetch_failed_download_exits_1(gluon_mirror, tmp_path, capsys):
    root = tmp_path / "models"
    assert main(["fetch", "resnet18_v1", "--root", str(root), "--no-progress"]) == 1
    err = capsys.readouterr().err
    url = f"{gluon_mirror.url}/gluon/models/resnet18_v1-a0666292.zip"
    assert err.startswith("repurpose fetch: failed: DownloadError: ")
    assert f"{url} answered HTTP 404" in err and str(root / "resnet18_v1-a0666292.params") in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not root.exists()


def test_fetch_needs_a_name():
    with pytest.raises(SystemExit) as info:
        main(["fetch"])
    assert info.value.code == 2


# ---------------------------------------------------------------------- job files
def _job(tmp_path, **source):
    return {"source": source, "data": {"train": "digits"},
            "run": {"output_dir": str(tmp_path / "out")}}


def test_job_download_true_ok(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(_job(tmp_path, model="resnet18_v1", download=True)))
    job = load_config(path)
    assert job.source.download is True and job.source.model == "resnet18_v1"
    assert config_from_dict(yaml.safe_load(yaml.safe_dump(job.to_dict()))) == job


def test_job_download_default_is_false(tmp_path):
    assert config_from_dict(_job(tmp_path, model="digits_cnn")).source.download is False


@pytest.mark.parametrize("source, match", [
    ({"model": "resnet18_v", "download": True}, r"source.model: Model 'resnet18_v' is neither "
                                                r".* nor a model-zoo name\. Did you mean "
                                                r".*'resnet18_v1'"),
    ({"model": "resnet18_v1", "download": "yes"}, "source.download: must be True or False, "
                                                  "got 'yes'"),
    ({"model": "resnet18_v1", "download": True, "weights": "w.params"},
     "source.download: true, but source.weights names a file"),
    ({"model": "resnet18_v1", "downlaod": True}, "source.downlaod: unknown key. Did you mean "
                                                 "'download'"),
])
def test_job_download_error(tmp_path, source, match):
    (tmp_path / "w.params").write_bytes(b"")
    with pytest.raises(InvalidParameterError, match=match):
        config_from_dict(_job(tmp_path, **source), base_dir=str(tmp_path))


def test_job_download_of_a_model_file_error(tmp_path, tiny_checkpoint):
    prefix, _, _ = tiny_checkpoint
    with pytest.raises(InvalidParameterError, match="source.download: true, but source.model "
                                                    ".* is a model file"):
        config_from_dict(_job(tmp_path, model=prefix, download=True))
