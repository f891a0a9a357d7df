"""Data-parallel training of one trial over 2 CPU processes (torch.distributed, gloo)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from autorag_hp.training.distributed import check_backend, ddp_train_lm  # noqa: E402
from autorag_hp.training.lm import LMConfig  # noqa: E402

torch.set_num_threads(1)


def test_two_process_ddp_matches_one_process():
    cfg = LMConfig(width=32, n_layers=1, seq_len=32)
    kw = dict(steps=15, batch_size=8, seed=0, max_bytes=200_000)
    one = ddp_train_lm(cfg, 2.0**-6, world_size=1, **kw)
    two = ddp_train_lm(cfg, 2.0**-6, world_size=2, **kw)
    assert two["world_size"] == 2 and len(set(two["pids"])) == 2
    # the replicas stay identical (gradients are all-reduced every step) ...
    assert two["param_checksums"][0] == two["param_checksums"][1]
    # ... and two ranks with half the batch each take the same steps as one process with the whole batch
    assert two["param_checksums"][0] == pytest.approx(one["param_checksums"][0], rel=1e-4)
    assert two["final_loss"] == pytest.approx(one["final_loss"], rel=1e-4)
    assert two["final_loss"] < two["first_loss"] - 1.0  # it learned


def test_backends_and_bad_input():
    check_backend("gloo")
    if not torch.distributed.is_mpi_available():  # stock wheels: no MPI
        with pytest.raises(RuntimeError, match="no MPI backend"):
            check_backend("mpi")
    with pytest.raises(ValueError, match="backend must be one of"):
        check_backend("ucc")
    with pytest.raises(ValueError, match="world_size"):
        ddp_train_lm(LMConfig(width=32), 1e-3, world_size=0)


def test_training_text_is_the_bundled_corpus_unless_a_folder_is_given(tmp_path):
    """The default corpus ships with the package (no Debian python3.11-doc); an explicit folder still works."""
    from autorag_hp.rag.data import load_bundled_corpus
    from autorag_hp.training.lm import load_python_docs

    first = load_bundled_corpus("python_docs")[0].text.encode("utf-8")
    assert load_python_docs(1000) == first[:1000]
    (tmp_path / "faq").mkdir()
    (tmp_path / "b.rst.txt").write_bytes(b"second")
    (tmp_path / "faq" / "a.rst.txt").write_bytes(b"first")
    assert load_python_docs(root=tmp_path) == b"second\nfirst"  # sorted paths: "b.rst.txt" < "faq/a.rst.txt"
    with pytest.raises(FileNotFoundError, match="root=None for the bundled corpus"):
        load_python_docs(root=tmp_path / "faq" / "nothing")
