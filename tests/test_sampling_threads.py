"""Issue #35: the crystals of a run do not depend on the thread count, and the default thread
count leaves out the cores other processes keep busy."""

from __future__ import annotations

import torch

from symmcd.sampling import sample, sample_to_dir
from symmcd.sampling import sampler as sampler_module
from symmcd.sampling.sampler import SAMPLING_THREADS, default_threads, torch_threads


def test_network_runs_on_the_pinned_thread_count(monkeypatch):
    seen = []
    plain = torch.nn.Module.__call__

    def spy(self, *args, **kwargs):
        if type(self).__name__ in ("Denoiser", "Bfloat16Autocast"):
            seen.append(torch.get_num_threads())
        return plain(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "__call__", spy)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        sample(2, steps=2, seed=0, progress=False, max_attempts=1)
        assert torch.get_num_threads() == 2  # restored after the run
    finally:
        torch.set_num_threads(before)
    assert seen and set(seen) == {SAMPLING_THREADS}


def test_cif_bytes_do_not_depend_on_threads(tmp_path):
    files = {}
    for threads in (1, 2):
        out = tmp_path / f"t{threads}"
        summary = sample_to_dir(out, 8, threads=threads, steps=5, seed=0, progress=False)
        assert summary["conditions"]["threads"] == threads
        assert summary["conditions"]["sampling_threads"] == SAMPLING_THREADS
        files[threads] = {p.name: p.read_bytes() for p in sorted((out / "cifs").iterdir())}
    assert len(files[1]) == 8
    assert files[1] == files[2]


def test_default_threads_leave_busy_cores_out():
    assert default_threads(cores=2, load=0.1) == 2
    assert default_threads(cores=2, load=1.0) == 1
    assert default_threads(cores=2, load=2.6) == 1
    assert default_threads(cores=16, load=3.2) == 13
    assert default_threads(cores=1, load=0.0) == 1
    assert default_threads() >= 1


def test_default_is_recorded(tmp_path, monkeypatch):
    monkeypatch.setattr(sampler_module, "default_threads", lambda: 1)
    with torch_threads(None) as used:
        assert used == 1 == torch.get_num_threads()
    summary = sample_to_dir(tmp_path / "s", 1, steps=2, progress=False)
    assert summary["conditions"]["threads"] == 1
