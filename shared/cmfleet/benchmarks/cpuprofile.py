"""Run a Python script under cProfile with a CPU clock, for the benchmarks' "where does the time go" tables.

    python cpuprofile.py [--on-signal] OUT.prof SCRIPT [ARGS...]

``python -m cProfile`` times with the wall clock, so an event loop's idle waits swamp what it computes; here the
clock is ``time.thread_time`` (CPU of the main thread, the one running the event loop). The stats are written when
the script ends, by SystemExit or Ctrl-C included. With ``--on-signal`` profiling starts at SIGUSR1 and stops at
SIGUSR2, so a server's start-up stays out of the figures.
"""

from __future__ import annotations

import cProfile
import runpy
import signal
import sys
import time


def main() -> None:
    on_signal = sys.argv[1] == "--on-signal"
    args = sys.argv[2:] if on_signal else sys.argv[1:]
    out = args[0]
    sys.argv = args[1:]
    profile = cProfile.Profile(time.thread_time)
    if on_signal:
        signal.signal(signal.SIGUSR1, lambda *_: profile.enable())
        signal.signal(signal.SIGUSR2, lambda *_: profile.disable())
    else:
        profile.enable()
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        profile.disable()
        profile.dump_stats(out)


if __name__ == "__main__":
    main()
