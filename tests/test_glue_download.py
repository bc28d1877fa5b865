"""The GLUE downloader against a local HTTP server on 127.0.0.1 serving
fixture files built here: zips, MRPC's corpus files, and failures."""

import argparse
import functools
import hashlib
import http.server
import io
import os
import socket
import threading
import zipfile

import pytest

from kbert.commands import download_glue as command
from kbert.errors import DataError
from kbert.glue import DownloadError, download_glue, get_processor
from kbert.glue.download import resolve_urls

pytestmark = pytest.mark.keras_free

COLA = {
    "train.tsv": "gj04\t1\t\tThe cat sat.\ngj04\t0\t*\tCat the sat.\n",
    "dev.tsv": "gj04\t1\t\tA dog barked.\n",
    "test.tsv": "index\tsentence\n0\tBirds fly.\n",
}
# The MSR corpus files: BOM and CRLF as Microsoft ships them.
MSR_HEADER = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n"
MSR_TRAIN = MSR_HEADER + "1\t10\t11\tA b .\tA b c .\r\n0\t12\t13\tC d .\tE f .\r\n1\t14\t15\tG h .\tG h !\r\n"
MSR_TEST = MSR_HEADER + "1\t20\t21\tI j .\tI k .\r\n0\t22\t23\tL m .\tN o .\r\n"
DEV_IDS = "12\t13\n"


def _zip(files, prefix):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, text in files.items():
            zf.writestr(f"{prefix}{name}", text)
    return buffer.getvalue()


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """Serve tmp_path/www on 127.0.0.1 for the duration of one test."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    www = tmp_path / "www"
    www.mkdir()
    (www / "CoLA.zip").write_bytes(_zip(COLA, "CoLA/"))
    (www / "msr_paraphrase_train.txt").write_bytes(MSR_TRAIN.encode("utf-8"))
    (www / "msr_paraphrase_test.txt").write_bytes(MSR_TEST.encode("utf-8"))
    (www / "mrpc_dev_ids.tsv").write_text(DEV_IDS)
    requests = []

    class Handler(_Handler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(www)))
    httpd.timeout = 5
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield argparse.Namespace(
            url=f"http://127.0.0.1:{httpd.server_address[1]}", www=www, requests=requests
        )
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _leftovers(data_dir):
    return [name for name in os.listdir(data_dir) if name.startswith(".")]


def test_resolve_urls():
    urls = resolve_urls(base_url="http://mirror/x/")
    assert urls["CoLA"] == "http://mirror/x/CoLA.zip"
    assert urls["MRPC-train"] == "http://mirror/x/msr_paraphrase_train.txt"
    assert resolve_urls({"RTE": "http://elsewhere/r.zip"})["RTE"] == "http://elsewhere/r.zip"
    assert resolve_urls()["SST-2"].startswith("https://dl.fbaipublicfiles.com/")


def test_zip_task_downloads_and_parses(server, tmp_path):
    data = tmp_path / "glue"
    digest = hashlib.sha256((server.www / "CoLA.zip").read_bytes()).hexdigest()
    assert download_glue(["cola"], data, base_url=server.url, sha256={"CoLA": digest}) == {"CoLA": "downloaded"}
    assert sorted(os.listdir(data / "CoLA")) == ["dev.tsv", "test.tsv", "train.tsv"]
    assert len(get_processor("cola").train_examples(data)) == 2
    assert _leftovers(data) == []


def test_present_task_is_skipped_without_a_request(server, tmp_path):
    data = tmp_path / "glue"
    download_glue(["CoLA"], data, base_url=server.url)
    before = len(server.requests)
    assert download_glue(["CoLA"], data, base_url=server.url) == {"CoLA": "present"}
    assert len(server.requests) == before


def test_mrpc_is_built_from_the_corpus_files(server, tmp_path):
    data = tmp_path / "glue"
    download_glue(["MRPC"], data, base_url=server.url)
    mrpc = get_processor("mrpc")
    train, dev, test = (mrpc.examples(data, split) for split in ("train", "dev", "test"))
    assert [(e.text_a, e.label) for e in train] == [("A b .", "1"), ("G h .", "1")]
    assert [(e.guid, e.text_b, e.label) for e in dev] == [("dev-1", "E f .", "0")]
    assert [(e.text_a, e.label) for e in test] == [("I j .", None), ("L m .", None)]
    # The layout of the original script: BOM header kept, test re-indexed.
    assert (data / "MRPC" / "train.tsv").read_bytes().startswith(b"\xef\xbb\xbfQuality\t")
    assert (data / "MRPC" / "test.tsv").read_text().splitlines()[1] == "0\t20\t21\tI j .\tI k ."


def test_http_error_names_url_and_status(server, tmp_path):
    data = tmp_path / "glue"
    with pytest.raises(DownloadError) as info:
        download_glue(["rte"], data, base_url=server.url)
    assert f"{server.url}/RTE.zip" in str(info.value) and "404" in str(info.value)
    assert not (data / "RTE").exists() and _leftovers(data) == []


def test_connection_refused(tmp_path):
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/CoLA.zip"
    with pytest.raises(DownloadError) as info:
        download_glue(["cola"], tmp_path / "glue", urls={"CoLA": url})
    assert url in str(info.value) and "failed" in str(info.value)


def test_corrupt_zip_leaves_nothing(server, tmp_path):
    (server.www / "SST-2.zip").write_bytes(b"PK\x03\x04 certainly not a zip")
    data = tmp_path / "glue"
    with pytest.raises(DownloadError, match="not a zip"):
        download_glue(["sst-2"], data, base_url=server.url)
    assert not (data / "SST-2").exists() and _leftovers(data) == []


def test_zip_without_the_task_files(server, tmp_path):
    (server.www / "STS-B.zip").write_bytes(_zip({"train.tsv": "x"}, "STS-B/"))
    with pytest.raises(DownloadError, match="lacks STS-B/dev.tsv, STS-B/test.tsv"):
        download_glue(["sts-b"], tmp_path / "glue", base_url=server.url)


def test_zip_member_outside_its_directory(server, tmp_path):
    (server.www / "WNLI.zip").write_bytes(_zip({**COLA, "../../evil.tsv": "x"}, "WNLI/"))
    with pytest.raises(DownloadError, match="outside"):
        download_glue(["wnli"], tmp_path / "glue", base_url=server.url)
    assert not (tmp_path / "evil.tsv").exists()


def test_sha256_mismatch(server, tmp_path):
    with pytest.raises(DownloadError, match="sha256"):
        download_glue(["cola"], tmp_path / "glue", base_url=server.url, sha256={"CoLA": "0" * 64})
    assert not (tmp_path / "glue" / "CoLA").exists()


def test_unknown_task_before_any_download(server, tmp_path):
    with pytest.raises(DataError, match="unknown GLUE task 'qnli'"):
        download_glue(["cola", "qnli"], tmp_path / "glue", base_url=server.url)
    assert server.requests == []


def test_command(server, tmp_path, capsys, monkeypatch):
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    data = tmp_path / "glue"
    command.run(parser.parse_args(["--tasks", "CoLA, mrpc", "--data-dir", str(data), "--base-url", server.url]))
    command.run(parser.parse_args(["--tasks", "cola", "--data-dir", str(data), "--base-url", server.url]))
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"CoLA: downloaded to {data / 'CoLA'}",
        f"MRPC: downloaded to {data / 'MRPC'}",
        f"CoLA: already present in {data / 'CoLA'}",
    ]
    monkeypatch.delenv("GLUE_DIR", raising=False)
    with pytest.raises(DataError, match="GLUE_DIR"):
        command.run(parser.parse_args(["--tasks", "cola"]))
