"""Training curves for TensorBoard or Trackio (``--report-to``), through accelerate's trackers.

The loop logs every optimizer step's loss, the method's logged terms and the learning rate
(``accelerator.log``) to ``logs/`` inside the run's staging directory, so the curves are
published with the run, atomically, and a failed run publishes none. The packages are
optional (the ``tracking`` extra): a missing one is refused before the model loads, where
accelerate alone would drop the tracker with a warning and train without it. A light
module (no torch): ``TrainConfig`` checks ``report_to`` with it.
"""

from __future__ import annotations

import os
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from obliviate.errors import ObliviateError

#: The trackers ``--report-to`` takes, and the packages each runs on (accelerate's
#: TensorBoard tracker writes with torch's SummaryWriter, or tensorboardX without it).
TRACKERS: dict[str, tuple[str, ...]] = {
    "tensorboard": ("tensorboard", "tensorboardX"),
    "trackio": ("trackio",),
}
#: The run directory's folder of tracker logs.
LOGS_DIR = "logs"


def check_report_to(value: str | None) -> None:
    """Refuse an unknown tracker, or one whose package is not installed (one line)."""
    if value is None:
        return
    if value not in TRACKERS:
        raise ObliviateError(
            f"--report-to {value!r}: use {' or '.join(TRACKERS)} (or leave it out)"
        )
    if not any(find_spec(package) for package in TRACKERS[value]):
        raise ObliviateError(
            f"--report-to {value} needs the {TRACKERS[value][0]} package, which is not "
            "installed: pip install 'obliviate[tracking]'"
        )


def tracker_options(report_to: str | None, work_dir: Path) -> dict[str, Any]:
    """The ``Accelerator`` keyword arguments of ``report_to``: the tracker and where its logs
    go (``work_dir/logs``); none without a tracker."""
    if report_to is None:
        return {}
    return {"log_with": report_to, "project_dir": str(work_dir / LOGS_DIR)}


def start_tracking(
    accelerator: Any, report_to: str | None, work_dir: Path, name: str, settings: dict[str, Any]
) -> None:
    """Open the tracker's run ``name`` with ``settings`` as its hyper-parameters.

    Trackio reads where it stores its database (``TRACKIO_DIR``) once, when first imported:
    it is pointed at the run directory before that, and a second Trackio run in the same
    process, whose directory differs, is refused rather than logged into the first one's."""
    if report_to is None:
        return
    logs = work_dir / LOGS_DIR
    if report_to == "trackio":
        os.environ["TRACKIO_DIR"] = str(logs)
        imported = sys.modules.get("trackio.utils")
        if imported is not None and Path(imported.TRACKIO_DIR) != logs:
            raise ObliviateError(
                f"trackio already logs to {imported.TRACKIO_DIR} in this process (it reads "
                "TRACKIO_DIR once, when imported); run each --report-to trackio run in a "
                "process of its own"
            )
    accelerator.init_trackers(name, config=_hyperparameters(settings))


def track(accelerator: Any, record: dict[str, float]) -> None:
    """Log one optimizer step's ``record`` (``step``, ``loss``, ``lr``, the method's terms;
    its ``seconds`` are left out) as ``train/NAME`` scalars; nothing without a tracker."""
    values = {f"train/{k}": v for k, v in record.items() if k not in ("step", "seconds")}
    accelerator.log(values, step=record["step"])


def finish_tracking(accelerator: Any) -> None:
    """Close the trackers (flushing their files). Not ``accelerator.end_training()``: that
    also ends a distributed run's process group, which the run still needs afterwards."""
    for tracker in accelerator.trackers:
        tracker.finish()


def _hyperparameters(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` as the plain values trackers store: numbers, strings and booleans
    (anything else as its text; unset ones left out)."""
    plain = (bool, int, float, str)
    return {
        key: value if isinstance(value, plain) else str(value)
        for key, value in settings.items()
        if value is not None
    }
