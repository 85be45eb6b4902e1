"""The README's trainer examples as a user continues them on a CPU-only machine under torchrun: the HF
example resumes with `.train(resume_from_checkpoint=True)` (as its comment says), and the accelerate
example runs as 2 processes of one group, not as 1 process of 1 in each."""

from __future__ import annotations

import json

import pytest

from tests.workflow.test_readme_trainers import _run, trainer_examples, workdir  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow


def test_hf_trainer_example_resumes_from_its_checkpoint_on_cpu(workdir):  # noqa: F811
    example = trainer_examples()[0]
    assert ".train()  # resume: .train(resume_from_checkpoint=True)" in example
    _run(workdir, "hf_first", example, torchrun=True)
    resumed = example.replace("max_steps=20", "max_steps=30").replace(".train()", ".train(resume_from_checkpoint=True)")
    _run(workdir, "hf_resumed", resumed, torchrun=True)
    state = json.loads((workdir / "out/hf/checkpoint-30/trainer_state.json").read_text())
    assert state["global_step"] == 30
    assert state["stateful_callbacks"]["StreamStateCallback"]["attributes"]["stream_state"]["position"] == 30 * 16


def test_accelerate_example_runs_as_two_processes_of_one_group_on_cpu(workdir):  # noqa: F811
    example = trainer_examples()[1]
    report = ("\nimport json, os\nwith open(f'processes-{accelerator.process_index}.json', 'w') as f:\n"
              "    json.dump([accelerator.process_index, accelerator.num_processes], f)\n")
    _run(workdir, "accelerate_processes", example + report, torchrun=True)
    seen = sorted(json.loads((workdir / f"processes-{i}.json").read_text()) for i in range(2))
    assert seen == [[0, 2], [1, 2]]
