"""Saving never destroys what it did not write; damage is found and named (hostile cases).

Unrelated folders, a user's ``.partial`` sibling, two processes saving at once, a process
killed during its saves, a crash between the swap's two renames, parameters no load could
rebuild, damaged or mixed files.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from members import NeuralClassifier, persistence
from members.persistence import load, read_manifest, save

SMALL = {"max_epochs": 2, "module_kwargs": {"hidden": (8,)}}


@pytest.fixture(scope="module")
def two_fits(classification_data):
    X, y = classification_data
    return X, [NeuralClassifier(**SMALL, random_state=seed).fit(X, y) for seed in (0, 1)]


def leftovers(folder: Path) -> list[str]:
    """Hidden siblings a save may leave: temporary or set-aside copies, lock files."""
    return sorted(p.name for p in folder.parent.glob(f".{folder.name}.*"))


def test_a_folder_with_an_unrelated_manifest_is_refused_and_kept(two_fits, tmp_path):
    _, (clf, _) = two_fits
    app = tmp_path / "webapp"
    (app / "src").mkdir(parents=True)
    (app / "manifest.json").write_text('{"name": "my app", "start_url": "/"}')
    (app / "index.html").write_text("<html></html>")
    (app / "src" / "main.js").write_text("run()")
    with pytest.raises(FileExistsError, match="is not a saved estimator"):
        clf.save(app)
    assert sorted(p.name for p in app.iterdir()) == ["index.html", "manifest.json", "src"]
    assert (app / "src" / "main.js").read_text() == "run()"
    # a real save plus one extra file of the user's is not ours to replace either
    save(clf, tmp_path / "model")
    (tmp_path / "model" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        save(clf, tmp_path / "model")
    assert (tmp_path / "model" / "notes.txt").read_text() == "mine"


def test_a_users_partial_sibling_is_left_alone(two_fits, tmp_path):
    X, (clf, other) = two_fits
    sibling = tmp_path / "model.partial"
    sibling.mkdir()
    (sibling / "data.csv").write_text("a,b\n1,2\n")
    save(clf, tmp_path / "model")
    save(other, tmp_path / "model")
    assert (sibling / "data.csv").read_text() == "a,b\n1,2\n"
    assert leftovers(tmp_path / "model") == []
    np.testing.assert_array_equal(load(tmp_path / "model").predict_proba(X), other.predict_proba(X))


def test_a_save_swapped_in_while_another_looks_is_not_taken_for_foreign_files(
    two_fits, tmp_path, monkeypatch
):
    # the early look at the target is taken without the lock: another process may swap its
    # save in right then (the folder gone for an instant, then another folder), and the look
    # reads no manifest; that must not be taken for a folder of someone else's files
    X, (clf, other) = two_fits
    target, incoming = save(clf, tmp_path / "shared"), save(other, tmp_path / "incoming")
    real, looks = persistence._is_our_save, []

    def swapped_while_looking(folder):
        looks.append(folder)
        if len(looks) > 1:  # the looks under the lock: nothing moves meanwhile
            return real(folder)
        folder.rename(tmp_path / ".shared.old-x")
        try:
            return real(folder)  # the folder is gone: no manifest to read
        finally:
            incoming.rename(folder)
            shutil.rmtree(tmp_path / ".shared.old-x")

    monkeypatch.setattr(persistence, "_is_our_save", swapped_while_looking)
    save(clf, target)  # the check under the lock decides: a save, replaced
    monkeypatch.undo()
    np.testing.assert_array_equal(load(target).predict_proba(X), clf.predict_proba(X))
    (target / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a saved estimator"):
        save(clf, target)  # a conclusive look still refuses foreign files


SAVER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from members.persistence import load, save

    source, target, count = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    estimator = load(source)
    ready = target.with_name(target.name + "-" + source.name + ".ready")
    for i in range(count):
        save(estimator, target)
        ready.touch()
    """
)


def run_saver(tmp_path, source, target, count):
    script = tmp_path / "saver.py"
    script.write_text(SAVER)
    return subprocess.Popen([sys.executable, str(script), str(source), str(target), str(count)])


def test_two_processes_saving_to_one_path_leave_one_complete_save(two_fits, tmp_path):
    X, fits = two_fits
    sources = [save(clf, tmp_path / f"source{i}") for i, clf in enumerate(fits)]
    target = tmp_path / "shared"
    (tmp_path / "keep.txt").write_text("keep")
    savers = [run_saver(tmp_path, source, target, 15) for source in sources]
    assert [saver.wait(timeout=240) for saver in savers] == [0, 0]
    loaded = load(target).predict_proba(X)
    assert any(np.array_equal(loaded, clf.predict_proba(X)) for clf in fits)
    assert leftovers(target) == []
    assert (tmp_path / "keep.txt").read_text() == "keep"


def test_a_process_killed_while_saving_leaves_the_last_complete_save(two_fits, tmp_path):
    X, (clf, _) = two_fits
    source = save(clf, tmp_path / "source")
    target = tmp_path / "model"
    ready = target.with_name("model-source.ready")
    rng = random.Random(0)
    for _ in range(3):
        saver = run_saver(tmp_path, source, target, 10_000)
        deadline = time.monotonic() + 120
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(saver.pid, signal.SIGKILL)
        saver.wait(timeout=30)
        ready.unlink()
        np.testing.assert_array_equal(load(target).predict_proba(X), clf.predict_proba(X))


def test_a_crash_between_the_swaps_two_renames_is_recovered(two_fits, tmp_path, monkeypatch):
    X, (clf, other) = two_fits
    target = save(clf, tmp_path / "model")
    real_rename = Path.rename

    def crash_on_swap_in(self, destination):
        if Path(destination) == target and self.name.startswith(".model.partial-"):
            raise KeyboardInterrupt  # the process dies with the old save set aside
        return real_rename(self, destination)

    monkeypatch.setattr(Path, "rename", crash_on_swap_in)
    with pytest.raises(KeyboardInterrupt):
        save(other, target)
    monkeypatch.undo()
    assert not target.exists() and len(leftovers(target)) == 1  # the old save, set aside
    np.testing.assert_array_equal(load(target).predict_proba(X), clf.predict_proba(X))
    assert target.is_dir() and leftovers(target) == []


def module_level_factory(n_features, n_outputs):
    from torch import nn

    return nn.Linear(n_features, n_outputs)


def test_what_no_load_could_rebuild_is_refused_at_save_time(classification_data, tmp_path):
    X, y = classification_data

    def local_factory(n_features, n_outputs):
        return module_level_factory(n_features, n_outputs)

    for module in (
        lambda n_features, n_outputs: module_level_factory(n_features, n_outputs),
        local_factory,
    ):
        clf = NeuralClassifier(module, max_epochs=1).fit(X, y)
        with pytest.raises(ValueError, match="cannot be imported by name"):
            clf.save(tmp_path / "model")
        assert not (tmp_path / "model").exists() and leftovers(tmp_path / "model") == []
    clf = NeuralClassifier(module_level_factory, max_epochs=1).fit(X, y)
    clf.save(tmp_path / "model")
    name = f"{__name__}.module_level_factory"
    again = NeuralClassifier.load(tmp_path / "model", trusted=[name])
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


def test_damaged_and_mixed_files_are_named(two_fits, tmp_path):
    X, (clf, other) = two_fits
    first, second = save(clf, tmp_path / "first"), save(other, tmp_path / "second")
    # weights from another save: the two files no longer belong together
    (first / "weights.safetensors").write_bytes((second / "weights.safetensors").read_bytes())
    with pytest.raises(ValueError, match=r"first/weights.safetensors does not match the checksum"):
        load(first)
    # a flipped byte
    data = bytearray((second / "estimator.skops").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (second / "estimator.skops").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"second/estimator.skops does not match the checksum"):
        load(second)
    # a truncated manifest
    third = save(clf, tmp_path / "third")
    (third / "manifest.json").write_text('{"format": "torch-fus')
    with pytest.raises(ValueError, match=r"third/manifest.json is not a readable manifest"):
        load(third)


def test_metadata_travels_in_the_manifest_and_version_1_saves_still_load(two_fits, tmp_path):
    X, (clf, _) = two_fits
    folder = save(clf, tmp_path / "model", metadata={"fit_seconds": 1.5})
    manifest = read_manifest(folder)
    assert manifest["metadata"] == {"fit_seconds": 1.5}
    assert set(manifest["files"]) == {"estimator.skops", "weights.safetensors"}
    # a save written before checksums (format version 1)
    del manifest["files"], manifest["metadata"]
    manifest["format_version"] = 1
    (folder / "manifest.json").write_text(json.dumps(manifest))
    np.testing.assert_array_equal(load(folder).predict_proba(X), clf.predict_proba(X))
    assert persistence.FORMAT_VERSION == 2


ALTERNATING_SAVER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from members.persistence import load, save

    sources, target, count = sys.argv[1:3], Path(sys.argv[3]), int(sys.argv[4])
    estimators = [load(source) for source in sources]
    save(estimators[0], target)
    target.with_name("saver.ready").touch()
    while not target.with_name("reader.ready").exists():
        time.sleep(0.01)
    i = 0  # at least count saves, and on until the reader is done: every load meets saves
    while i < count or not target.with_name("reader.done").exists():
        save(estimators[i % 2], target)
        i += 1
    print(i)
    """
)
READER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import numpy as np
    from members.persistence import load

    target, count, data = Path(sys.argv[1]), int(sys.argv[2]), np.load(sys.argv[3])
    X, expected = data["X"], [data["first"], data["second"]]
    while not target.with_name("saver.ready").exists():
        time.sleep(0.01)
    target.with_name("reader.ready").touch()
    outcomes = []
    for _ in range(count):
        try:
            proba = load(target).predict_proba(X)
        except Exception as error:
            outcomes.append(f"{type(error).__name__}: {error}")
            continue
        matches = [i for i, e in enumerate(expected) if np.array_equal(proba, e)]
        outcomes.append(matches[0] if matches else "hybrid")
    target.with_name("reader.done").touch()
    print(json.dumps(outcomes))
    """
)


def save_and_read_at_once(two_fits, tmp_path, count):
    """One process saves two models alternately to one path ``count`` times while another
    loads it ``count`` times: what each load returned."""
    X, fits = two_fits
    sources = [str(save(clf, tmp_path / f"source{i}")) for i, clf in enumerate(fits)]
    np.savez(
        tmp_path / "data.npz", X=X, first=fits[0].predict_proba(X), second=fits[1].predict_proba(X)
    )
    target = tmp_path / "shared" / "model"
    (tmp_path / "saver.py").write_text(ALTERNATING_SAVER)
    (tmp_path / "reader.py").write_text(READER)
    saver = subprocess.Popen(
        [sys.executable, str(tmp_path / "saver.py"), *sources, str(target), str(count)]
    )
    reader = subprocess.run(
        [
            sys.executable,
            str(tmp_path / "reader.py"),
            str(target),
            str(count),
            str(tmp_path / "data.npz"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert saver.wait(timeout=600) == 0  # no spurious error in the writer
    assert reader.returncode == 0, reader.stderr
    return json.loads(reader.stdout), target


def test_a_reader_gets_one_complete_save_while_another_process_saves(two_fits, tmp_path):
    outcomes, target = save_and_read_at_once(two_fits, tmp_path, 150)
    assert len(outcomes) == 150
    assert [o for o in outcomes if o not in (0, 1)] == []  # no hybrid, no error
    # the loads did overlap the saves: both models were read
    assert set(outcomes) == {0, 1}
    leftover = sorted(
        p.name for p in target.parent.iterdir() if not p.name.endswith((".ready", ".done"))
    )
    assert leftover == ["model"]  # no lock file, no temporary copy


@pytest.mark.slow
def test_a_reader_gets_one_complete_save_in_a_long_run(two_fits, tmp_path):
    outcomes, _ = save_and_read_at_once(two_fits, tmp_path, 1500)
    assert [o for o in outcomes if o not in (0, 1)] == []


def test_every_file_of_a_save_follows_the_umask(two_fits, tmp_path):
    _, (clf, _) = two_fits
    previous = os.umask(0o022)
    try:
        folder = save(clf, tmp_path / "model")
    finally:
        os.umask(previous)
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in folder.iterdir()}
    assert modes == dict.fromkeys(
        ["estimator.skops", "manifest.json", "weights.safetensors"], "0o644"
    )
    assert oct(folder.stat().st_mode & 0o777) == "0o755"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no lock file beside it


def test_a_full_disk_names_the_users_path_not_the_temporary_one(two_fits, tmp_path, monkeypatch):
    X, (clf, other) = two_fits
    target = save(clf, tmp_path / "model")

    def full_disk(tensors, filename, *args, **kwargs):
        raise OSError(28, "No space left on device", str(filename))

    monkeypatch.setattr("safetensors.torch.save_file", full_disk)
    with pytest.raises(OSError, match=r"cannot save to path='.*model': No space left") as info:
        save(other, target)
    assert ".partial" not in str(info.value)
    monkeypatch.undo()
    assert leftovers(target) == []  # the temporary copy is gone, the earlier save intact
    np.testing.assert_array_equal(load(target).predict_proba(X), clf.predict_proba(X))
