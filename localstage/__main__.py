"""``python -m localstage`` (what ``make run`` calls): start the local stage until Ctrl-C or SIGTERM."""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
from types import FrameType

from localstage.patches import PatchVersionError, allowed_from_env, check_versions


def version_refusal() -> str | None:
    """Why the stage must not start with the installed packages, or ``None``.

    Checked before the stage's modules are imported, so that a moved moto is a clear message, not an
    import error from deep inside one of them.
    """
    try:
        check_versions(allowed_from_env())
    except (PatchVersionError, ValueError) as exc:
        return f"the local stage cannot start: {exc}"
    return None


def main() -> int:
    refusal = version_refusal()
    if refusal is not None:
        print(refusal, file=sys.stderr)
        return 2
    from localstage.iam.stage import IamConfigError
    from localstage.stage import LocalStage, StageOptions, banner

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # moto's and chalice's per-request access lines drown the stage's own messages.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        options = StageOptions.from_env()
    except ValueError as exc:  # every switch's error names its variable (LOCAL_IAM_REVOKE=..., ...)
        print(f"the local stage cannot start: {exc}", file=sys.stderr)
        return 2
    stage = LocalStage(options)
    try:
        stage.start()
        # What startup built (moto's and botocore's service models, the app, the seeded data) lives as long
        # as the process: frozen, each full collection scans only what came after (about 5 % of the stage's
        # CPU under load, docs/benchmarks.md).
        gc.collect()
        gc.freeze()
        print(banner(stage), flush=True)
        logging.getLogger("localstage").info("startup timings (s since start): %s", stage.timings)
        stop.wait()
    except IamConfigError as exc:  # a revocation naming a grant the function does not have
        print(f"the local stage cannot start: {exc}", file=sys.stderr)
        return 2
    except Exception:
        logging.getLogger("localstage").exception("the local stage could not start")
        return 1
    finally:
        try:
            stage.stop()
        except Exception:  # every step has run (LocalStage.stop); say what failed
            logging.getLogger("localstage").exception("the local stage did not stop cleanly")
    return 0


def exit_with(code: int) -> None:
    """Leave with ``code`` once the stage has stopped.

    Everything is stopped and every worker process reaped by now; what is left is finalising moto's
    in-memory AWS, 1 to 2 s of freeing objects nobody will read. Flush, then leave without it.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_with(main())
