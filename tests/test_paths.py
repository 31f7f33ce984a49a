"""paths.py and safe_io.py: plain-words reasons, containment, and permission problems never called corruption."""

from __future__ import annotations

import builtins
import errno
import os

import pytest
import torch
from safetensors.torch import save_file

from leanbert.errors import UserError
from leanbert.paths import contained_file, describe_os_error, regular_file_inside, why_not_regular
from leanbert.safe_io import read_json_object, read_safetensors


def test_os_errors_name_the_path_and_the_errno_meaning():
    assert describe_os_error(OSError(errno.EBUSY, "Device or resource busy", ".")) == ".: device or resource busy"
    assert describe_os_error(PermissionError(errno.EACCES, "x", "a/b")) == "a/b: permission denied"


def test_reasons_tell_special_files_apart(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    os.symlink(tmp_path / "b", tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "b")
    os.symlink(tmp_path / "gone", tmp_path / "dangling")
    (tmp_path / "file").write_text("x")
    assert why_not_regular(tmp_path / "file") is None
    assert "FIFO" in why_not_regular(tmp_path / "fifo")
    assert why_not_regular(tmp_path / "a") == "a symlink loop"
    assert why_not_regular(tmp_path / "dangling") == "a broken symlink"
    assert why_not_regular(tmp_path / "nope") == "no such file or directory"
    assert "directory" in why_not_regular(tmp_path)
    assert "device" in why_not_regular("/dev/zero")


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "..", ".", "", "a/b", 7, None, "a\x00b"])
def test_manifest_names_must_be_plain(tmp_path, name):
    with pytest.raises(UserError, match="not a plain file name"):
        contained_file(tmp_path, name, tmp_path / "manifest.json")


def test_a_plain_name_symlinked_out_is_refused(tmp_path):
    (tmp_path / "inner").mkdir()
    (tmp_path / "outside").write_text("secret")
    os.symlink(tmp_path / "outside", tmp_path / "inner" / "shard")
    with pytest.raises(UserError, match="points outside"):
        contained_file(tmp_path / "inner", "shard", "manifest.json")
    with pytest.raises(UserError, match="outside"):
        regular_file_inside(tmp_path / "inner", "shard")
    assert regular_file_inside(tmp_path / "inner", "absent") is None
    os.symlink(tmp_path / "outside", tmp_path / "link-in")  # a link inside the directory itself is fine
    assert regular_file_inside(tmp_path, "link-in") == tmp_path / "link-in"


def test_unreadable_weights_are_a_permission_problem_not_corruption(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    assert torch.equal(read_safetensors(path)["w"], torch.zeros(2))
    real_open = builtins.open

    def deny(file, *args, **kwargs):  # chmod does not stop root, so refuse the open the way the OS would
        if str(file) == str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", deny)
    with pytest.raises(UserError, match="permission denied") as info:
        read_safetensors(path)
    assert "corrupted" not in str(info.value)


def test_json_objects_only(tmp_path):
    (tmp_path / "list.json").write_text("[1]")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(UserError, match="holds a JSON list, expected an object"):
        read_json_object(tmp_path / "list.json", "a config")
    with pytest.raises(UserError, match="not valid JSON"):
        read_json_object(tmp_path / "bad.json", "a config")
    with pytest.raises(UserError, match="a directory, not a file"):
        read_json_object(tmp_path, "a config")


def test_a_hugging_face_cache_snapshot_may_link_into_its_blobs_but_nowhere_else(tmp_path):
    """HF's cache keeps snapshots/REV/tokenizer.json -> ../../blobs/HASH: the cache's own store, not outside."""
    repo = tmp_path / "models--org--name"
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / "abc123").write_text("{}")
    snapshot = repo / "snapshots" / "rev1"
    snapshot.mkdir(parents=True)
    os.symlink("../../blobs/abc123", snapshot / "tokenizer.json")
    (tmp_path / "secret").write_text("root:x:0:0")
    os.symlink(tmp_path / "secret", snapshot / "vocab.txt")
    assert regular_file_inside(snapshot, "tokenizer.json") == snapshot / "tokenizer.json"
    with pytest.raises(UserError, match="outside"):
        regular_file_inside(snapshot, "vocab.txt")
    plain = tmp_path / "plain"  # the same links from a folder that is not a cache snapshot are refused
    plain.mkdir()
    os.symlink(repo / "blobs" / "abc123", plain / "tokenizer.json")
    with pytest.raises(UserError, match="outside"):
        regular_file_inside(plain, "tokenizer.json")
