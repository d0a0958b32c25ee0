"""The Ray driver on a real two-node Ray cluster on loopback (head on 127.0.0.2, a
worker on 127.0.0.3): SciFact built in 4 shards as tasks, joined, searched and
mined in parts; every output has the bytes of the single-machine commands.

The cluster lives in its own temp folder; the test stops exactly the processes it
started (their process groups, then any process whose command line names that
folder), never by name."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="ray is not installed (pip install ray)")

import dredge  # noqa: E402
from dredge import ray_driver  # noqa: E402

HEAD, WORKER = "127.0.0.2", "127.0.0.3"
DEADLINE_S = 240


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _ray_bin() -> str:
    return str(Path(sys.executable).with_name("ray"))


def _stop(groups, folder: str) -> None:
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    time.sleep(2)
    mine = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if folder in cmdline and int(pid) != os.getpid():
            mine.append(int(pid))
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in mine:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def cluster():
    # A short folder: Ray's unix sockets live under it (108-byte path limit).
    folder = tempfile.mkdtemp(prefix="drray", dir="/tmp")
    port = _free_port(HEAD)
    common = [
        "--block",
        "--num-cpus=1",
        "--object-store-memory=100000000",
        "--disable-usage-stats",
    ]
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    groups = []
    logs = []
    try:
        head_log = open(os.path.join(folder, "head.log"), "w")
        logs.append(head_log)
        head = subprocess.Popen(
            [_ray_bin(), "start", "--head", f"--node-ip-address={HEAD}", f"--port={port}",
             f"--temp-dir={folder}", "--include-dashboard=false", *common],
            stdout=head_log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
        groups.append(head.pid)
        address = f"{HEAD}:{port}"
        deadline = time.time() + 60
        while True:
            try:
                with socket.create_connection((HEAD, port), timeout=1):
                    break
            except OSError:
                if time.time() > deadline or head.poll() is not None:
                    raise RuntimeError("the Ray head did not start: " + Path(folder, "head.log").read_text())
                time.sleep(0.5)
        worker_log = open(os.path.join(folder, "worker.log"), "w")
        logs.append(worker_log)
        worker = subprocess.Popen(
            [_ray_bin(), "start", f"--address={address}", f"--node-ip-address={WORKER}", *common],
            stdout=worker_log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
        groups.append(worker.pid)
        ray.init(address=address, _node_ip_address=HEAD, logging_level="ERROR")
        deadline = time.time() + 60
        while len([n for n in ray.nodes() if n["Alive"]]) < 2:
            if time.time() > deadline:
                raise RuntimeError("the Ray worker did not join: " + Path(folder, "worker.log").read_text())
            time.sleep(0.5)
        yield {n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]}
    finally:
        try:
            ray.shutdown()
        finally:
            _stop(groups, folder)
            for log in logs:
                log.close()
            shutil.rmtree(folder, ignore_errors=True)


def _dredge_binary() -> str:
    root = Path(__file__).resolve().parents[2]
    for profile in ("debug", "release"):
        path = root / "target" / profile / "dredge"
        if path.exists():
            return str(path)
    found = shutil.which("dredge")
    if found is None:
        pytest.skip("the dredge binary is not built (cargo build)")
    return found


def test_four_shards_on_two_nodes_give_the_bytes_of_one_machine(cluster, scifact, tmp_path):
    assert cluster == {HEAD, WORKER}
    started = time.time()
    data = Path(scifact)
    emb = data / "embeddings" / "all-MiniLM-L6-v2"
    shared = tmp_path / "shared"

    index = ray_driver.build(
        str(data), str(shared), 4, ann="flat",
        vectors=str(emb / "corpus.npy"), vector_ids=str(emb / "corpus.ids.txt"),
    )
    assert len(index) == 5183
    assert sorted(os.listdir(shared / "shards")) == [f"shard-{i:05d}-of-00004" for i in range(4)]
    assert ray_driver.last_build_nodes == {HEAD, WORKER}, "shards are spread over both nodes"

    ray_driver.search(index, str(data), str(tmp_path / "bm25.trec"), split="test", parts=3)
    ray_driver.mine(index, str(tmp_path / "mined.jsonl"), parts=3, queries=str(data),
                    split="train", relative_margin=0.05, sampling="random", seed=7)

    # One machine, with the command line, on an index of the whole corpus.
    one = tmp_path / "one"
    dredge_bin = _dredge_binary()
    subprocess.run([dredge_bin, "index", "--corpus", str(data), "--vectors", str(emb / "corpus.npy"),
                    "--vector-ids", str(emb / "corpus.ids.txt"), "--ann", "flat", "--out", str(one)],
                   check=True, capture_output=True)
    subprocess.run([dredge_bin, "search", "--index", str(one), "--queries", str(data), "--split", "test",
                    "--out", str(tmp_path / "one.trec")], check=True, capture_output=True)
    subprocess.run([dredge_bin, "mine", "--index", str(one), "--queries", str(data), "--split", "train",
                    "--relative-margin", "0.05", "--sampling", "random", "--seed", "7",
                    "--out", str(tmp_path / "one.jsonl")], check=True, capture_output=True)

    assert (tmp_path / "bm25.trec").read_bytes() == (tmp_path / "one.trec").read_bytes()
    # The joined index, one shard at a time, from the package: the same run.
    lazy = dredge.Index(index.path, one_shard_at_a_time=True)
    lazy.write_run(str(data), tmp_path / "lazy.trec", split="test")
    assert (tmp_path / "lazy.trec").read_bytes() == (tmp_path / "one.trec").read_bytes()
    mined = (tmp_path / "mined.jsonl").read_bytes()
    assert mined and mined == (tmp_path / "one.jsonl").read_bytes()
    assert not (tmp_path / "mined.jsonl.parts").exists()

    # A rerun skips the shards already built and verified.
    before = {p: (shared / "shards" / p / "manifest.json").stat().st_mtime_ns
              for p in os.listdir(shared / "shards")}
    ray_driver.build(str(data), str(shared), 4, ann="flat",
                     vectors=str(emb / "corpus.npy"), vector_ids=str(emb / "corpus.ids.txt"))
    after = {p: (shared / "shards" / p / "manifest.json").stat().st_mtime_ns
             for p in os.listdir(shared / "shards")}
    assert before == after
    assert time.time() - started < DEADLINE_S
