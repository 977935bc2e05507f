"""``python killed_after_checkpoint.py ARGS`` is ``obliviate ARGS``, killed by SIGKILL as soon
as the first checkpoint is on disk: a run cut off mid-way, the way a lost machine or a
pre-empted job ends, for ``test_distributed.py`` to resume.

Launched by ``torchrun``, only the main process writes checkpoints, so it dies first; the
launcher then stops the others, as it would after a real crash.
"""

import os
import signal

from obliviate.cli import main
from obliviate.train import loop

save_checkpoint = loop.save_checkpoint


def save_then_die(*args: object, **kwargs: object) -> None:
    save_checkpoint(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)


loop.save_checkpoint = save_then_die
main()
