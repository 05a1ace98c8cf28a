import os
import stat
import sys

from tfcvr.bench.grid import SubprocessRunner


def _script(path, body):
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_child_exception_becomes_a_failed_result(tmp_path):
    result = SubprocessRunner(python=sys.executable).run_task(
        {"task": "no_such_task"}, str(tmp_path / "work"))
    assert result["status"] == "failed"
    assert result["error"].startswith("ValueError: Unknown task 'no_such_task'")
    assert "Traceback" in result["traceback"]
    assert result["returncode"] == 1 and result["peak_rss_mb"] > 0
    assert os.path.exists(result["log"])


def test_killed_child_is_reported_with_its_signal(tmp_path):
    python = _script(tmp_path / "crash.sh", 'echo "about to die"; kill -9 $$')
    result = SubprocessRunner(python=python).run_task({"task": "cell"}, str(tmp_path / "w"))
    assert result["status"] == "failed"
    assert "killed by SIGKILL (out of memory?)" in result["error"]
    assert "about to die" in result["error"]


def test_timeout_kills_the_child(tmp_path):
    python = _script(tmp_path / "slow.sh", "sleep 30")
    result = SubprocessRunner(python=python).run_task(
        {"task": "cell"}, str(tmp_path / "w"), timeout=0.5)
    assert result["status"] == "failed" and "longer than 0.5 s" in result["error"]
    assert result["wall_seconds"] < 20
