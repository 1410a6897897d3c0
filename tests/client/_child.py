"""A child for `permatoken exec` tests: logs its start (pid, token) and the signals it gets.

``_child.py LOG exit CODE`` exits at once with CODE; ``_child.py LOG sleep`` runs until killed
(SIGTERM kills it, as for most programs; SIGHUP is logged).
"""

import os
import signal
import sys
import time

log = sys.argv[1]


def note(line: str) -> None:
    with open(log, "a") as fh:
        fh.write(line + "\n")


signal.signal(signal.SIGHUP, lambda *_: note(f"hup {os.getpid()}"))
note(f"start {os.getpid()} {os.environ.get('WHATSAPP_TOKEN', '-')}")
if sys.argv[2] == "exit":
    sys.exit(int(sys.argv[3]))
while True:
    time.sleep(0.05)
