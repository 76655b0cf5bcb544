"""The bench's py-spy summary: top functions by self and inclusive share of the samples."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.harness.profile import ProfileEntry, summarize

REPO = Path(__file__).resolve().parent.parent

RAW = [
    "<module> (gateway:8);run (app.py:10);answer (ingress.py:40);decode (codec.py:56) 6\n",
    "<module> (gateway:8);run (app.py:10);answer (ingress.py:40) 2\n",
    "<module> (gateway:8);run (app.py:10);send (httptools_impl.py:500) 2\n",
    "not a stack line\n",
]


def test_self_share_counts_the_frame_on_top_of_each_stack() -> None:
    samples, top_self, _ = summarize(RAW)
    assert samples == 10
    assert top_self[0] == ProfileEntry(function="decode", file="codec.py", share=0.6)
    assert {(e.function, e.share) for e in top_self[1:]} == {("answer", 0.2), ("send", 0.2)}


def test_inclusive_share_counts_a_function_once_per_stack_wherever_it_is() -> None:
    _, _, inclusive = summarize(RAW)
    shares = {e.function: e.share for e in inclusive}
    assert shares["run"] == 1.0
    assert shares["answer"] == 0.8
    assert shares["decode"] == 0.6


def test_process_frames_of_subprocess_sampling_are_not_functions() -> None:
    rooted = ['process 41:"python -m app";run (app.py:10);decode (codec.py:56) 4\n']
    samples, top_self, inclusive = summarize(rooted)
    assert samples == 4
    assert {e.function for e in inclusive} == {"run", "decode"}
    assert top_self == [ProfileEntry(function="decode", file="codec.py", share=1.0)]


def test_no_samples_give_empty_lists() -> None:
    assert summarize([]) == (0, [], [])


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="py-spy attaches to another process as root")
def test_quick_ingest_burst_with_a_profile_names_the_servers_functions(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed")
    done = subprocess.run(
        [
            *(sys.executable, "-m", "bench", "ingest-burst", "--quick"),
            *("--systems", "http-ceiling", "--profile-hz", "200"),
            *("--results-dir", str(tmp_path)),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (result_file,) = tmp_path.glob("ingest-burst-*.json")
    (measured,) = json.loads(result_file.read_text())["systems"]
    profile = measured["figures"]["profile"]
    assert profile["samples"] > 0
    # The ceiling is uvicorn serving a small ASGI app: its own code shows up.
    assert any(e["file"] == "http_ceiling.py" for e in profile["top_inclusive"])
    assert "http-ceiling profile" in done.stdout
