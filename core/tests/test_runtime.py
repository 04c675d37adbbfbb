"""The runtime settings of procsight's long-running processes."""

from __future__ import annotations

import json
import subprocess
import sys

from core.runtime import YOUNG_GENERATION_THRESHOLD


def test_tuning_freezes_what_exists_and_raises_the_young_threshold() -> None:
    code = ("import gc, json\n"
            "from core.runtime import tune_garbage_collection\n"
            "before = [gc.get_threshold(), gc.get_freeze_count()]\n"
            "tune_garbage_collection()\n"
            "print(json.dumps([before, [gc.get_threshold(), gc.get_freeze_count()]]))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    (threshold_before, frozen_before), (threshold, frozen) = json.loads(done.stdout)
    assert frozen_before == 0 and frozen > 1_000
    assert threshold == [YOUNG_GENERATION_THRESHOLD, *threshold_before[1:]]
    assert threshold_before[0] < YOUNG_GENERATION_THRESHOLD
