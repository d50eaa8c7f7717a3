"""The SQLite lock store elects among the beats of one host: a lease taken by a beat of another
host (a file shared over a network file system) is refused, and a file on a network file
system is warned about when opened."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from celeriac import App
from celeriac.beat import Beat, LockStoreError, open_lock_store
from celeriac.beat import store as stores

MOUNTS = """\
/dev/vda1 / ext4 rw,relatime 0 0
proc /proc proc rw 0 0
server:/export/home /home nfs4 rw,relatime 0 0
//nas/share /mnt/my\\040share cifs rw 0 0
tmpfs /home/local tmpfs rw 0 0
"""


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/var/lib/beat.db", "ext4"),
        ("/home/ann/beat.db", "nfs4"),
        ("/home", "nfs4"),
        ("/homework/beat.db", "ext4"),  # a prefix of the name is not a parent directory
        ("/home/local/beat.db", "tmpfs"),  # the longest mount point wins
        ("/mnt/my share/beat.db", "cifs"),  # octal escapes in /proc/mounts
    ],
)
def test_the_file_system_of_a_path(path: str, kind: str) -> None:
    assert stores.filesystem_type(path, MOUNTS) == kind


def test_owner_hosts() -> None:
    assert stores.host_of("beat-12@web-1.example#a1b2c3") == "web-1.example"
    assert stores.host_of("a") is None  # owners given by hand carry no host: not checked


def test_a_lease_taken_on_another_host_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/beat.db"
    here, there = open_lock_store(url, "k", 0.2), open_lock_store(url, "k", 0.2)
    try:
        assert here.acquire("beat-1@host-a#aaaaaa") == 1
        assert here.acquire("beat-2@host-a#bbbbbb") is None  # same host: an ordinary follower
        with pytest.raises(LockStoreError, match=r"host 'host-a'.*redis://.*zookeeper://"):
            there.acquire("beat-3@host-b#cccccc")
        threading.Event().wait(0.3)  # past the lease: an expired lease of theirs says as much
        with pytest.raises(LockStoreError, match="one host only"):
            there.acquire("beat-3@host-b#cccccc")
        assert here.acquire("beat-2@host-a#bbbbbb") == 2  # the host's own beats go on
    finally:
        here.close()
        there.close()


def test_a_beat_stops_on_a_file_another_host_uses(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/beat.db"
    other = open_lock_store(url, "k", 3.0)
    assert other.acquire("beat-1@elsewhere#aaaaaa") == 1
    app = App("per-host", broker="memory://", beat_lock_url=url, beat_lock_key="k")
    beat = Beat(app)
    done = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            beat.run()
        except BaseException as exc:
            failure.append(exc)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    try:
        assert done.wait(10), "the beat kept running on a file another host's beat holds"
        assert len(failure) == 1 and isinstance(failure[0], LockStoreError), failure
        assert "elsewhere" in str(failure[0])
    finally:
        beat.stop()
        other.close()


def test_a_file_on_a_network_file_system_is_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(stores.sqlite, "filesystem_type", lambda path, mounts=None: "nfs4")
    with caplog.at_level(logging.WARNING, logger="celeriac.beat"):
        open_lock_store(f"sqlite:///{tmp_path}/beat.db", "k").close()
    assert "nfs4 file system" in caplog.text and "redis://" in caplog.text
    caplog.clear()
    monkeypatch.setattr(stores.sqlite, "filesystem_type", lambda path, mounts=None: "ext4")
    with caplog.at_level(logging.WARNING, logger="celeriac.beat"):
        open_lock_store(f"sqlite:///{tmp_path}/beat2.db", "k").close()
    assert caplog.text == ""
