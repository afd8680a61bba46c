"""DDP, FSDP and DeepSpeed for real on this CPU machine: torchrun, two processes, gloo.

Each test renders a project (tabular regression, no dropout, so the maths is
the same on every rank), trains it with ``tests/helpers/train_ranks.py`` under
real ``torchrun`` agents, and compares the weights every rank ends with:

* DDP: both ranks hold the same weights, equal to one process with the same
  global batch; synced validation metrics equal the one-process values.
* DDP: stopping at step 3 and resuming gives the weights of an unbroken run.
* Two torchrun agents ("nodes") meeting through c10d rendezvous on 127.0.0.1
  train to the same result as one agent with two processes.
* FSDP2: trains to the same weights, writes a sharded checkpoint folder,
  resumes exactly from it, and ``export`` gathers it into the plain model.
* DeepSpeed ZeRO-2 and ZeRO-3 (DeepSpeed's CPU accelerator): with gradient
  accumulation (a short last window) and norm clipping, trains to the weights
  of one plain process, resumes exactly from its checkpoint folder mid-epoch,
  and ``export`` gathers the folder into the plain model.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from conftest import ROOT, make_project, project_env
from venvs import python_for, torch_extensions

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed/gloo"
)

DRIVER = ROOT / "tests" / "helpers" / "train_ranks.py"
ANSWERS = {"project_name": "exp", "task": "tabular_regression", "logger": "none"}


@pytest.fixture(scope="module")
def ddp_project(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("ddp") / "exp"
    return make_project(dest, **ANSWERS, devices=2, strategy="ddp", callbacks=[]).path


@pytest.fixture(scope="module")
def fsdp_project(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("fsdp") / "exp"
    return make_project(dest, **ANSWERS, devices=2, strategy="fsdp", callbacks=[]).path


def _env(project: Path, python: str = sys.executable) -> dict[str, str]:
    extensions = str(torch_extensions(python))  # where its packages' C++ ops are built
    return {**project_env(), "PYTHONPATH": str(project / "src"), "TORCH_EXTENSIONS_DIR": extensions}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(
    project: Path, out: Path, launcher: list[str], python: str = sys.executable, **options
) -> list[dict]:
    """Train under ``torchrun <launcher>`` (with ``python``); return each rank's weights."""
    out.mkdir(parents=True, exist_ok=True)
    command = [str(python), "-m", "torch.distributed.run", *launcher, str(DRIVER)]
    command += [str(project / "src"), str(out), json.dumps(options)]
    env = _env(project, python)
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return _weights(out)


def _weights(out: Path) -> list[dict]:
    ranks = sorted(out.glob("rank*.pt"))
    return [torch.load(path, weights_only=True) for path in ranks]


def _metrics(out: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(out.glob("rank*.json"))]


def _one_process(project: Path, out: Path, **options) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(DRIVER), str(project / "src"), str(out), json.dumps(options)]
    result = subprocess.run(
        command, env=_env(project), capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return _weights(out)[0]


def _assert_same(a: dict, b: dict, *, exact: bool) -> None:
    assert a.keys() == b.keys()
    for name in a:
        if exact:
            assert torch.equal(a[name], b[name]), name
        else:
            torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6, msg=name)


TWO_PROCESSES = ["--standalone", "--nproc_per_node", "2"]


def test_ddp_ranks_agree_and_equal_one_process_with_the_same_global_batch(
    ddp_project: Path, tmp_path: Path
) -> None:
    single = _one_process(ddp_project, tmp_path / "one", devices=1, batch_size=16, max_epochs=2)
    ranks = _torchrun(
        ddp_project, tmp_path / "ddp", TWO_PROCESSES, devices=2, batch_size=8, max_epochs=2
    )
    assert len(ranks) == 2
    _assert_same(ranks[0], ranks[1], exact=True)  # DDP keeps every rank identical
    _assert_same(ranks[0], single, exact=False)  # 2 x 8 samples == 1 x 16 samples
    assert any(not torch.equal(single[k], v) for k, v in _initial(ddp_project).items())

    # sync_dist: each rank validated half the samples; the synced means are the
    # one-process means over all of them.
    # (train_loss is logged without sync_dist: each rank keeps its own, as in Lightning.)
    one, (zero, first) = _metrics(tmp_path / "one")[0], _metrics(tmp_path / "ddp")
    for name in ("val_loss", "val_mae"):
        assert zero[name] == first[name], name
        assert zero[name] == pytest.approx(one[name], rel=1e-5), name
    assert zero["train_loss"] != first["train_loss"]


@pytest.mark.parametrize("strategy", ["ddp", pytest.param("fsdp", marks=pytest.mark.slow)])
def test_a_layer_unfrozen_between_epochs_trains_on_every_rank_and_resumes(
    request, strategy: str, tmp_path: Path
) -> None:
    # BaseFinetuning freezes the first layer until epoch 1. DDP reduces only the
    # gradients of parameters that trained when it wrapped the model: the engine
    # wraps it again, so the ranks stay identical (Lightning 2.6.6: its issue
    # 20340). A run stopped after the unfreezing resumes with the layer training.
    project = request.getfixturevalue(f"{strategy}_project")
    common = {"max_epochs": 3, "unfreeze_first_layer_at": 1}
    single = _one_process(project, tmp_path / "one", devices=1, batch_size=16, **common)
    common |= {"devices": 2, "batch_size": 8}  # 4 steps an epoch
    ranks = _torchrun(project, tmp_path / "ranks", TWO_PROCESSES, **common)
    _assert_same(ranks[0], ranks[1], exact=True)
    _assert_same(ranks[0], single, exact=False)
    first = next(name for name in single if name.endswith("weight"))
    assert not torch.equal(single[first], _initial(project)[first])  # it trained

    checkpoint = str(tmp_path / "stopped.ckpt")
    _torchrun(project, tmp_path / "stop", TWO_PROCESSES, **common, max_steps=10, save=checkpoint)

    def resume() -> list[dict]:
        return _torchrun(project, tmp_path / "on", TWO_PROCESSES, **common, ckpt_path=checkpoint)

    if strategy == "fsdp":  # FSDP reads the optimizer state before the layer can unfreeze
        with pytest.raises(AssertionError, match="ConfigError: FirstLayerLater: this checkpoint"):
            resume()
        return
    resumed = resume()
    for rank in (0, 1):
        _assert_same(resumed[rank], ranks[rank], exact=True)


@pytest.mark.parametrize("strategy", ["ddp", pytest.param("fsdp", marks=pytest.mark.slow)])
def test_lr_find_gives_every_rank_rank_zeros_rate(request, strategy: str, tmp_path: Path) -> None:
    # Each rank sees its own batches, so its losses differ; as Lightning's, the
    # sweep stops on rank zero's word and every rank keeps rank zero's results,
    # so the suggested rate, and the fit that follows, are the same on both.
    project = request.getfixturevalue(f"{strategy}_project")
    options = {"devices": 2, "batch_size": 8, "max_epochs": 6, "lr_find": 20}  # 4 steps an epoch
    ranks = _torchrun(project, tmp_path, TWO_PROCESSES, **options)
    found = [json.loads(path.read_text()) for path in sorted(tmp_path.glob("lr_find*.json"))]
    assert len(found) == 2 and found[0] == found[1]
    assert len(found[0]["lr"]) == 20 and found[0]["suggestion"] is not None
    assert found[0]["hparam"] == found[0]["suggestion"]
    _assert_same(ranks[0], ranks[1], exact=True)


PREPARE_DRIVER = ROOT / "tests" / "helpers" / "prepare_data_ranks.py"


@pytest.mark.parametrize("per_node", ["1", "0"])
def test_prepare_data_runs_once_and_every_rank_waits_for_it(
    ddp_project: Path, tmp_path: Path, per_node: str
) -> None:
    # Lightning runs prepare_data on local rank zero (global rank zero with
    # prepare_data_per_node = False) while the other ranks wait; setup then
    # finds the data everywhere. One node: rank zero either way.
    command = [sys.executable, "-m", "torch.distributed.run", *TWO_PROCESSES, str(PREPARE_DRIVER)]
    command += [str(ddp_project / "src"), str(tmp_path), per_node]
    result = subprocess.run(
        command, env=_env(ddp_project), capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    prepared = sorted(path.name for path in tmp_path.glob("*-prepared-by-*"))
    assert prepared == ["data-prepared-by-rank0", "module-prepared-by-rank0"]
    for rank in (0, 1):
        saw = json.loads((tmp_path / f"setup-rank{rank}.json").read_text())
        assert saw == ["data-prepared-by-rank0"], rank


PLAIN_DRIVER = ROOT / "tests" / "helpers" / "plain_loader_ranks.py"


def _plain_loaders(project: Path, out: Path, mode: str) -> subprocess.CompletedProcess:
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "torch.distributed.run", *TWO_PROCESSES, str(PLAIN_DRIVER)]
    command += [str(project / "src"), str(out), mode]
    return subprocess.run(
        command, env=_env(project), capture_output=True, text=True, timeout=300, check=False
    )


def test_ddp_shards_plain_dataloaders_and_gathers_as_lightning_does(
    ddp_project: Path, tmp_path: Path
) -> None:
    # Lightning code passes DataLoader(dataset, shuffle=True) to fit; under DDP
    # Lightning swaps its sampler for a DistributedSampler(seed=the global seed).
    from torch.utils.data import DistributedSampler

    result = _plain_loaders(ddp_project, tmp_path, "plain")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    samples = list(range(21))
    for epoch in (0, 1):
        for rank in (0, 1):
            sampler = DistributedSampler(samples, num_replicas=2, rank=rank, shuffle=True, seed=7)
            sampler.set_epoch(epoch)
            assert seen[rank][f"train_{epoch}"] == list(sampler), (epoch, rank)
        # Validation: each sample once over the two ranks, none repeated.
        validated = seen[0][f"val_{epoch}"] + seen[1][f"val_{epoch}"]
        assert sorted(validated) == samples
    assert seen[0]["train_0"] != seen[0]["train_1"]  # a new order each epoch
    # A prediction writer on each rank gets the dataset's indices of its share
    # (each sample's value is its index): together, every sample once.
    for rank in (0, 1):
        for indices, values in seen[rank]["predicted"]:
            assert indices == values, rank
        batches = [indices for indices, _ in seen[rank]["predicted"]]
        assert seen[rank]["predicted_epoch"] == [batches], rank
    predicted = [i for r in (0, 1) for indices, _ in seen[r]["predicted"] for i in indices]
    assert sorted(predicted) == samples
    # self.all_gather, as Lightning's: (world_size, ...) on every rank, gradients summed back.
    for rank in (0, 1):
        assert seen[rank]["gathered"] == {
            "values": [3.0, 6.0],
            "grad": 6.0,  # d/dleaf of both ranks' sums of 3 * leaf
            "rows": [[0, 0], [1, 1]],
            "count": [[5, 5], [0.5, 0.5]],
            "dtypes": ["torch.int32", "torch.float32"],
            "plain": False,
        }, rank


def test_ddp_refuses_a_loader_it_cannot_shard_in_one_line(
    ddp_project: Path, tmp_path: Path
) -> None:
    result = _plain_loaders(ddp_project, tmp_path, "weighted")
    assert result.returncode != 0
    assert (
        "the train loader (DataLoader over WeightedRandomSampler) can't give each rank its "
        "part of the data; use a plain DataLoader(dataset, shuffle=...)" in result.stderr
    )


def _initial(project: Path) -> dict:
    sys.path.insert(0, str(project / "src"))
    try:
        from exp.data import TabularDataModule
        from exp.engine.rng import seed_everything
        from exp.module import TabularRegressor

        data = TabularDataModule(num_samples=64, seed=0)
        seed_everything(0)  # as tests/helpers/train_ranks.py builds it
        sizes = {"in_features": data.in_features, "out_features": data.out_features}
        return TabularRegressor(**sizes, dropout=0.0).state_dict()
    finally:
        sys.path.remove(str(project / "src"))
        for name in [m for m in sys.modules if m == "exp" or m.startswith("exp.")]:
            del sys.modules[name]


def test_ddp_resume_is_exact(ddp_project: Path, tmp_path: Path) -> None:
    common = {"devices": 2, "batch_size": 8, "max_epochs": 3}
    straight = _torchrun(ddp_project, tmp_path / "straight", TWO_PROCESSES, **common, max_steps=6)
    checkpoint = tmp_path / "stopped.ckpt"
    stopped = _torchrun(
        ddp_project, tmp_path / "stop", TWO_PROCESSES, **common, max_steps=3, save=str(checkpoint)
    )
    assert checkpoint.is_file()
    # Every weight differs between steps 3 and 6 (the feature and target
    # scaling buffers are statistics of the data: they don't train).
    weights = [k for k in straight[0] if not k.endswith(("_mean", "_std"))]
    assert weights and not any(torch.equal(stopped[0][k], straight[0][k]) for k in weights)
    resumed = _torchrun(
        ddp_project,
        tmp_path / "resumed",
        TWO_PROCESSES,
        **common,
        max_steps=6,
        ckpt_path=str(checkpoint),
    )
    for rank in (0, 1):
        _assert_same(resumed[rank], straight[rank], exact=True)


def test_two_nodes_with_c10d_rendezvous_train_like_one_node(
    ddp_project: Path, tmp_path: Path
) -> None:
    common = {"batch_size": 8, "max_epochs": 2}
    one_node = _torchrun(ddp_project, tmp_path / "one", TWO_PROCESSES, devices=2, **common)

    # Two agents, as on two machines: each starts one process; they find each
    # other through the c10d rendezvous the first one hosts.
    out = tmp_path / "two"
    out.mkdir()
    endpoint = f"127.0.0.1:{_free_port()}"
    options = json.dumps({"devices": 1, "num_nodes": 2, **common})
    agents = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes",
                "2",
                "--nproc_per_node",
                "1",
                "--rdzv_backend",
                "c10d",
                "--rdzv_endpoint",
                endpoint,
                "--rdzv_id",
                "two-node-test",
                str(DRIVER),
                str(ddp_project / "src"),
                str(out),
                options,
            ],
            env=_env(ddp_project),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for agent in agents:
        _, stderr = agent.communicate(timeout=300)
        assert agent.returncode == 0, stderr[-4000:]
    two_nodes = _weights(out)
    assert len(two_nodes) == 2
    _assert_same(two_nodes[0], two_nodes[1], exact=True)
    _assert_same(two_nodes[0], one_node[0], exact=False)


def test_fsdp_trains_saves_shards_resumes_and_exports(
    fsdp_project: Path, ddp_project: Path, tmp_path: Path
) -> None:
    common = {"devices": 2, "batch_size": 8, "max_epochs": 3}
    straight = _torchrun(fsdp_project, tmp_path / "straight", TWO_PROCESSES, **common, max_steps=6)
    _assert_same(straight[0], straight[1], exact=True)  # gathered: every rank agrees
    single = _one_process(ddp_project, tmp_path / "one", devices=1, batch_size=16, max_steps=6)
    _assert_same(straight[0], single, exact=False)  # sharding changes nothing in the maths

    checkpoint = tmp_path / "stopped.ckpt"
    stopped = _torchrun(
        fsdp_project, tmp_path / "stop", TWO_PROCESSES, **common, max_steps=3, save=str(checkpoint)
    )
    # A folder of shards, one file per rank, plus the loop state.
    assert checkpoint.is_dir()
    assert len(list(checkpoint.glob("*.distcp"))) == 2
    assert (checkpoint / "trainer.ckpt").is_file()
    trainer_state = torch.load(checkpoint / "trainer.ckpt", weights_only=True)
    assert trainer_state["global_step"] == 3 and len(trainer_state["rng"]) == 2

    resumed = _torchrun(
        fsdp_project,
        tmp_path / "resumed",
        TWO_PROCESSES,
        **common,
        max_steps=6,
        ckpt_path=str(checkpoint),
    )
    _assert_same(resumed[0], straight[0], exact=True)

    # export: one process, no torchrun, gathers the shards into model.py's network.
    _assert_export_loads_into_the_plain_model(fsdp_project, checkpoint, stopped[0], tmp_path)


def _assert_export_loads_into_the_plain_model(
    project: Path, checkpoint: Path, trained: dict, tmp_path: Path
) -> None:
    output = tmp_path / "model.pt"
    exported = subprocess.run(
        [sys.executable, "-m", "exp", "export", "--ckpt_path", str(checkpoint)]
        + ["--output", str(output), "--model.dropout", "0.0"],
        cwd=tmp_path,
        env=_env(project),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert "Warning" not in exported.stderr, exported.stderr[-3000:]  # nothing to act on
    weights = torch.load(output, weights_only=True)
    expected = {k.removeprefix("model."): v for k, v in trained.items()}
    _assert_same(weights, expected, exact=True)
    code = (
        "import sys, torch; from exp.model import MLP; net = MLP(16, 1, dropout=0.0); "
        f"net.load_state_dict(torch.load({str(output)!r}, weights_only=True)); print('ok')"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], env=_env(project), capture_output=True, text=True
    )
    assert loaded.stdout.strip() == "ok", loaded.stderr[-3000:]


# DeepSpeed runs with the slow set (-m slow), with the DeepSpeed projects' own
# suites: on a CPU it first builds its shared-memory collective op, 150 of the
# 271 s this test took in the CI run at 722861e, which kept CI over 30 minutes.
@pytest.fixture(
    scope="module",
    params=[
        pytest.param(2, id="zero2", marks=pytest.mark.slow),
        pytest.param(3, id="zero3", marks=pytest.mark.slow),
    ],
)
def deepspeed_project(request, tmp_path_factory) -> Path:
    pytest.importorskip("deepspeed", reason="needs deepspeed (in scaffold's dev dependencies)")
    dest = tmp_path_factory.mktemp(f"zero{request.param}") / "exp"
    answers = {**ANSWERS, "hardware": "cuda", "devices": 2, "callbacks": []}
    return make_project(dest, **answers, strategy="deepspeed", deepspeed_stage=request.param).path


def test_deepspeed_trains_resumes_mid_epoch_and_exports(
    deepspeed_project: Path, ddp_project: Path, tmp_path: Path
) -> None:
    # 64 samples, 8 per rank per batch: 4 batches an epoch, windows of 3 and a
    # short 1, so 2 optimizer steps an epoch; step 3 is in the middle of epoch 1.
    common = {"devices": 2, "batch_size": 8, "max_epochs": 3, "accumulate_grad_batches": 3}
    common["gradient_clip_val"] = 0.05
    # The project's own venv: its DeepSpeed is the one the DeepSpeed projects'
    # suites share, so its CPU op is built once per run (tests/venvs.py).
    common["python"] = python_for(deepspeed_project)
    straight = _torchrun(
        deepspeed_project, tmp_path / "straight", TWO_PROCESSES, **common, max_steps=6
    )
    _assert_same(straight[0], straight[1], exact=True)
    single = _one_process(
        ddp_project,
        tmp_path / "one",
        devices=1,
        batch_size=16,
        max_steps=6,
        accumulate_grad_batches=3,
        gradient_clip_val=0.05,
    )
    _assert_same(straight[0], single, exact=False)  # DeepSpeed's step is the plain maths

    checkpoint = tmp_path / "stopped.ckpt"
    stopped = _torchrun(
        deepspeed_project,
        tmp_path / "stop",
        TWO_PROCESSES,
        **common,
        max_steps=3,
        save=str(checkpoint),
    )
    # A folder: DeepSpeed's files (one optimizer shard per rank), plus the loop state.
    assert len(list((checkpoint / "deepspeed").glob("*optim_states.pt"))) == 2
    trainer_state = torch.load(checkpoint / "trainer.ckpt", weights_only=True)
    assert trainer_state["global_step"] == 3 and len(trainer_state["rng"]) == 2
    assert trainer_state["loops"]["batches_done"] == 3  # mid-epoch

    resumed = _torchrun(
        deepspeed_project,
        tmp_path / "resumed",
        TWO_PROCESSES,
        **common,
        max_steps=6,
        ckpt_path=str(checkpoint),
    )
    _assert_same(resumed[0], straight[0], exact=True)
    _assert_same(resumed[1], straight[1], exact=True)

    # export: one process, no torchrun, gathers the partitions into model.py's network.
    _assert_export_loads_into_the_plain_model(deepspeed_project, checkpoint, stopped[0], tmp_path)
