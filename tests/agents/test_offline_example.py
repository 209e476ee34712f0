"""The offline agent example, ``examples/agents/clock.yaml``, run as the README says with the real
bundled Gemma 3 270M base model (slow: it really generates): the forced current_time call's
result is the answer, with no key, no network and no base-model notice.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.bundled import require_bundled_model
from tests.models.test_cli_models import cli

require_bundled_model()

pytestmark = pytest.mark.slow
CLOCK = Path(__file__).resolve().parents[2] / "examples" / "agents" / "clock.yaml"


def test_the_clock_example_answers_the_date_with_the_bundled_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    started = datetime.now().astimezone()
    code, out, err = cli(capsys, "agent", "run", "--agent", str(CLOCK), "What is today's date?")
    ended = datetime.now().astimezone()

    assert code == 0, err
    assert "→ current_time" in err and "answer · 1 steps" in err
    assert "base model" not in err  # the model only filled in the arguments
    data = json.loads(out)  # the tool's result is the answer
    assert set(data) == {"timezone", "iso", "weekday"}
    zone = ZoneInfo(data["timezone"])  # the zone the model chose, mostly UTC
    assert started <= datetime.fromisoformat(data["iso"]) <= ended
    assert data["weekday"] == datetime.fromisoformat(data["iso"]).astimezone(zone).strftime("%A")
    assert list(tmp_path.iterdir()) == []
