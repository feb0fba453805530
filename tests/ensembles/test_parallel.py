"""Members in parallel (issue 16): loky processes, a local Ray cluster and a Dask LocalCluster
give the predictions of ``n_jobs=1``; workers get their share of threads and a device each; a
failing worker names its member, and what the others finished is stored and reused."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from combiners import MeanCombiner, WeightedCombiner
from ensembles import EnsembleClassifier, EnsembleRegressor
from ensembles.efficient import EFFICIENT_ENSEMBLES
from ensembles.parallel import (
    DeviceLease,
    active_backend,
    fetch_arrays,
    share_arrays,
    threads_per_worker,
    worker_count,
)
from members import NeuralClassifier, NeuralRegressor

ROOT = str(Path(__file__).resolve().parents[2])
X, y = load_digits(return_X_y=True)
X, y = X[:400], y[:400]


class Recorder(ClassifierMixin, BaseEstimator):
    """Records where and how it was fitted: process, torch threads, CUDA_VISIBLE_DEVICES and
    the time span. ``fail=True`` raises instead, after ``wait_for=(folder, n)``: once ``n``
    members are stored in ``folder`` (so that a test knows what the other workers finished)."""

    def __init__(self, seconds=0.0, fail=False, wait_for=None, random_state=None):
        self.seconds = seconds
        self.fail = fail
        self.wait_for = wait_for
        self.random_state = random_state

    def fit(self, X, y):
        start = time.time()
        time.sleep(self.seconds)
        if self.wait_for is not None:
            folder, count = self.wait_for
            deadline = time.time() + 120
            while len(list(Path(folder).glob("*/manifest.json"))) < count:
                assert time.time() < deadline, "the other members never finished"
                time.sleep(0.05)
        if self.fail:
            raise RuntimeError("this member always fails")
        self.classes_ = np.unique(y)
        self.pid_ = os.getpid()
        self.threads_ = torch.get_num_threads()
        self.switches_ = (
            torch.backends.mkldnn.enabled,
            torch.are_deterministic_algorithms_enabled(),
        )
        self.device_ = os.environ.get("CUDA_VISIBLE_DEVICES")
        self.shared_ = isinstance(X, np.memmap) and not X.flags.writeable
        self.span_ = (start, time.time())
        return self

    def predict_proba(self, X):
        return np.full((len(X), len(self.classes_)), 1.0 / len(self.classes_))


# Matrix products' last bits depend on the thread count on some CPUs (MKL on an AMD EPYC here;
# oneDNN's convolutions everywhere): bit-for-bit comparisons pin the caller to one thread, so
# that sequential tasks and workers (which get the caller's threads shared out) all train on one.
ONE_THREAD = 1


def mlps(n=4, epochs=2):
    return [
        (
            f"mlp{i}",
            NeuralClassifier(max_epochs=epochs, module_kwargs={"hidden": (32,)}, random_state=i),
        )
        for i in range(n)
    ]


def never_overlap(spans_by_device):
    for spans in spans_by_device.values():
        spans = sorted(spans)
        for (_, end), (start, _) in zip(spans, spans[1:]):
            assert start >= end, spans


def test_worker_count_and_threads_follow_joblib():
    assert worker_count(None, 5) == 1
    assert worker_count(2, 5) == 2 and worker_count(8, 3) == 3
    assert worker_count(-1, 100) == joblib.cpu_count()
    with joblib.parallel_config(n_jobs=2):
        assert worker_count(None, 5) == 2  # scikit-learn's convention for n_jobs=None
    assert threads_per_worker(1) == joblib.cpu_count()
    assert threads_per_worker(joblib.cpu_count() * 4) == 1


def test_loky_gives_the_sequential_predictions_bit_for_bit():
    """Pinned to one thread (see ONE_THREAD), sequential tasks and workers train alike."""
    members = [*mlps(), ("lr", LogisticRegression(max_iter=300))]
    with caller_torch(threads=ONE_THREAD):
        one = EnsembleClassifier(members, combiner=MeanCombiner(), batched=False).fit(X, y)
        two = EnsembleClassifier(members, combiner=MeanCombiner(), batched=False, n_jobs=2)
        two.fit(X, y)
    np.testing.assert_array_equal(one.predict_proba(X), two.predict_proba(X))
    # cross-fitting: every fold member and refit is a task
    three = EnsembleClassifier(
        members[:2], combiner=WeightedCombiner(), cv=3, n_jobs=2, random_state=0
    )
    one_cv = EnsembleClassifier(members[:2], combiner=WeightedCombiner(), cv=3, random_state=0)
    with caller_torch(threads=ONE_THREAD):
        three.fit(X, y)
        one_cv.fit(X, y)
    np.testing.assert_array_equal(three.oof_predictions_, one_cv.oof_predictions_)
    np.testing.assert_array_equal(three.predict_proba(X), one_cv.predict_proba(X))


def test_ensembles_inside_one_network_train_in_workers_as_they_do_alone():
    """Every method of the registry as a member (each one training task), bit for bit."""
    members = [
        (method, kinds[0](NeuralClassifier(module_kwargs={"hidden": (16,)}, max_epochs=3)))
        for method, kinds in EFFICIENT_ENSEMBLES.items()
    ]
    with caller_torch(threads=ONE_THREAD):
        one = EnsembleClassifier(members, combiner=MeanCombiner(), random_state=0).fit(X, y)
        two = EnsembleClassifier(members, combiner=MeanCombiner(), random_state=0, n_jobs=2)
        two.fit(X, y)
    assert len(two.output_names_) == 4 + 4 + 3 + 16
    np.testing.assert_array_equal(one.predict_proba(X), two.predict_proba(X))


def test_a_batched_group_is_one_task_and_regressors_run_too():
    Xr, yr = X[:, :20], X[:, 20]
    members = [(f"r{i}", NeuralRegressor(max_epochs=2, random_state=i)) for i in range(3)]
    one = EnsembleRegressor(members, combiner=MeanCombiner(), batched=True).fit(Xr, yr)
    two = EnsembleRegressor(members, combiner=MeanCombiner(), batched=True, n_jobs=2).fit(Xr, yr)
    np.testing.assert_array_equal(one.predict(Xr), two.predict(Xr))


def test_workers_are_other_processes_with_their_share_of_threads():
    members = [(f"r{i}", Recorder(seconds=0.5)) for i in range(4)]
    ensemble = EnsembleClassifier(members, n_jobs=2).fit(X, y)
    pids = {member.pid_ for member in ensemble.members_}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert {member.threads_ for member in ensemble.members_} == {threads_per_worker(2)}
    assert torch.get_num_threads() == joblib.cpu_count() or torch.get_num_threads() >= 1


@contextmanager
def caller_torch(threads=None, mkldnn=None, deterministic=None):
    """The caller's torch settings changed for a block, then put back."""
    before = (
        torch.get_num_threads(),
        torch.backends.mkldnn.enabled,
        torch.are_deterministic_algorithms_enabled(),
    )
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        if mkldnn is not None:
            torch.backends.mkldnn.enabled = mkldnn
        if deterministic is not None:
            torch.use_deterministic_algorithms(deterministic)
        yield
    finally:
        torch.set_num_threads(before[0])
        torch.backends.mkldnn.enabled = before[1]
        torch.use_deterministic_algorithms(before[2])


def test_workers_train_under_the_callers_torch_switches():
    members = [(f"r{i}", Recorder()) for i in range(2)]
    with caller_torch(threads=1, mkldnn=False, deterministic=True):
        ensemble = EnsembleClassifier(members, n_jobs=2).fit(X, y)
    assert all(os.getpid() != member.pid_ for member in ensemble.members_)
    assert {member.switches_ for member in ensemble.members_} == {(False, True)}
    # the caller's one thread is the budget: each worker gets one, not cpu_count // 2
    assert {member.threads_ for member in ensemble.members_} == {1}
    # a reused worker starts the next fit from its own settings again
    again = EnsembleClassifier(members, n_jobs=2).fit(X, y)
    assert {member.switches_ for member in again.members_} == {(True, False)}


def test_conv_networks_match_bit_for_bit_when_every_task_gets_one_thread():
    """oneDNN's convolution weight gradients depend on the thread count; with the caller's
    torch pinned to one thread, sequential tasks and workers both train on one."""
    Xc = X.astype(np.float32)  # cnn1d reads each row as a one-channel signal
    members = [
        (f"cnn{i}", NeuralClassifier("cnn1d", max_epochs=2, random_state=i)) for i in range(2)
    ]
    with caller_torch(threads=1):
        one = EnsembleClassifier(members, combiner=MeanCombiner(), batched=False).fit(Xc, y)
        two = EnsembleClassifier(members, combiner=MeanCombiner(), batched=False, n_jobs=2).fit(
            Xc, y
        )
    np.testing.assert_array_equal(one.predict_proba(Xc), two.predict_proba(Xc))


def test_large_inputs_reach_the_workers_as_shared_read_only_maps():
    big_X, big_y = np.tile(X, (8, 1)), np.tile(y, 8)  # 1.6 MB: above joblib's 1 MB threshold
    members = [("r0", Recorder()), ("r1", Recorder()), ("mlp", NeuralClassifier(max_epochs=1))]
    ensemble = EnsembleClassifier(members, n_jobs=2).fit(big_X, big_y)
    assert all(member.shared_ for member in ensemble.members_[:2])  # one copy, not one per task
    assert ensemble.score(big_X, big_y) > 0.5  # a network trains on a read-only map too


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_a_failing_worker_names_its_member_and_the_others_are_reused(tmp_path, n_jobs, capsys):
    # in parallel, the failing member waits until the other worker has finished ok0 and ok1
    wait = (str(tmp_path), 2) if n_jobs == 2 else None
    members = [
        ("ok0", Recorder()),
        ("bad", Recorder(fail=True, wait_for=wait)),
        ("ok1", Recorder()),
    ]
    ensemble = EnsembleClassifier(
        members, combiner=MeanCombiner(), n_jobs=n_jobs, checkpoint_dir=tmp_path, verbose=True
    )
    with pytest.raises(RuntimeError, match="always fails") as raised:
        ensemble.fit(X, y)
    assert "member 'bad'" in " ".join(raised.value.__notes__)
    stored = sorted(p.parent.name.split("-")[0] for p in tmp_path.glob("*/manifest.json"))
    # one after another, ok1 never starts; in parallel, the other worker finishes it
    assert stored == (["ok0"] if n_jobs == 1 else ["ok0", "ok1"]), sorted(tmp_path.rglob("*"))
    capsys.readouterr()
    ensemble.set_params(bad=Recorder()).fit(X, y)  # only "bad" trains
    reused = [line for line in capsys.readouterr().out.splitlines() if "reusing" in line]
    assert len(reused) == len(stored), reused


def hold_device(lease, seconds):
    with lease.lease() as device:
        start = time.time()
        time.sleep(seconds)
        return device, (start, time.time())


def test_the_loky_device_lease_never_puts_two_tasks_on_one_device(tmp_path):
    lease = DeviceLease([0, 1], lock_dir=str(tmp_path))
    # durations differ, so index % n_devices would collide
    durations = [0.6, 0.1, 0.1, 0.5, 0.1, 0.3, 0.1, 0.2]
    results = joblib.Parallel(n_jobs=3, backend="loky")(
        joblib.delayed(hold_device)(lease, seconds) for seconds in durations
    )
    by_device: dict[int, list] = {}
    for device, span in results:
        by_device.setdefault(device, []).append(span)
    assert set(by_device) == {0, 1}
    never_overlap(by_device)


# -- Ray and Dask: local clusters, as a user's cluster would run it ----------------------------
@contextmanager
def cluster_environment():
    """The test package importable by cluster workers (``PYTHONPATH``), and the environment
    restored afterwards: a Dask ``LocalCluster`` leaves ``OMP_NUM_THREADS=1`` (and MKL's,
    OpenBLAS's) in this process's environment, which would reach later subprocesses."""
    saved = dict(os.environ)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    from ray.util.joblib import register_ray

    with cluster_environment():
        # two fake GPUs: Ray schedules them and sets CUDA_VISIBLE_DEVICES without any hardware
        ray.init(
            num_cpus=2,
            num_gpus=2,
            include_dashboard=False,
            object_store_memory=200 * 2**20,
            log_to_driver=False,
        )
        register_ray()
        yield ray
        ray.shutdown()


def test_ray_gives_the_sequential_predictions(ray_cluster):
    members = [*mlps(3), ("lr", LogisticRegression(max_iter=300))]
    with caller_torch(threads=ONE_THREAD):
        one = EnsembleClassifier(members, combiner=MeanCombiner(), batched=False).fit(X, y)
        with joblib.parallel_config(backend="ray", n_jobs=2):
            on_ray = EnsembleClassifier(members, combiner=MeanCombiner(), batched=False)
            on_ray.fit(X, y)
            # the data travels through Ray's object store, once for all tasks
            [shared] = share_arrays(active_backend(), X)
    np.testing.assert_array_equal(one.predict_proba(X), on_ray.predict_proba(X))
    assert isinstance(shared, ray_cluster.ObjectRef)
    np.testing.assert_array_equal(fetch_arrays(shared)[0], X)
    assert share_arrays(active_backend(), X)[0] is X  # loky: as it is (joblib memory-maps)


def test_ray_gives_each_member_a_gpu_of_its_own(ray_cluster):
    members = [(f"r{i}", Recorder(seconds=1.0)) for i in range(4)]
    with joblib.parallel_config(backend="ray", n_jobs=2, ray_remote_args={"num_gpus": 1}):
        ensemble = EnsembleClassifier(members).fit(X, y)
    by_device: dict[str, list] = {}
    for member in ensemble.members_:
        by_device.setdefault(member.device_, []).append(member.span_)
    assert len(by_device) == 2 and None not in by_device, by_device
    never_overlap(by_device)


def test_a_failing_member_on_ray_is_named_and_the_others_are_stored(ray_cluster, tmp_path):
    bad = Recorder(fail=True, wait_for=(str(tmp_path), 2))
    members = [("ok0", Recorder()), ("bad", bad), ("ok1", Recorder())]
    with joblib.parallel_config(backend="ray", n_jobs=2):
        with pytest.raises(Exception, match="always fails") as raised:
            EnsembleClassifier(members, checkpoint_dir=tmp_path).fit(X, y)
    text = str(raised.value) + " ".join(getattr(raised.value, "__notes__", []))
    assert "member 'bad'" in text
    stored = sorted(p.parent.name.split("-")[0] for p in tmp_path.glob("*/manifest.json"))
    assert stored == ["ok0", "ok1"], (text, sorted(tmp_path.rglob("*")))


def test_dask_gives_the_sequential_predictions():
    distributed = pytest.importorskip("distributed")
    members = [*mlps(3), ("lr", LogisticRegression(max_iter=300))]
    with caller_torch(threads=ONE_THREAD):
        one = EnsembleClassifier(members, combiner=MeanCombiner(), batched=False).fit(X, y)
    with (
        caller_torch(threads=ONE_THREAD),
        cluster_environment(),
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
        joblib.parallel_config(backend="dask"),
    ):
        on_dask = EnsembleClassifier(members, combiner=MeanCombiner(), batched=False).fit(X, y)
    np.testing.assert_array_equal(one.predict_proba(X), on_dask.predict_proba(X))


# -- on a GPU machine --------------------------------------------------------------------------
@pytest.mark.gpu
def test_gpu_members_in_loky_workers_take_turns_on_each_device():
    members = [
        (f"mlp{i}", NeuralClassifier(max_epochs=2, accelerator="gpu", random_state=i))
        for i in range(4)
    ]
    one = EnsembleClassifier(members, combiner=MeanCombiner(), batched=False).fit(X, y)
    two = EnsembleClassifier(members, combiner=MeanCombiner(), batched=False, n_jobs=2).fit(X, y)
    np.testing.assert_allclose(one.predict_proba(X), two.predict_proba(X), atol=1e-5)
    # one member per device at a time: the lease serialises tasks on a device
    lease = DeviceLease(list(range(torch.cuda.device_count())))
    results = joblib.Parallel(n_jobs=4)(joblib.delayed(hold_device)(lease, 0.3) for _ in range(6))
    by_device: dict[int, list] = {}
    for device, span in results:
        by_device.setdefault(device, []).append(span)
    never_overlap(by_device)
