#!/usr/bin/python3
"""Times a VM boot for bench/lazy (P4, P4b).

    boot_marker.py CONTROL MARKER TIMEOUT_S -- regdisk run SPEC --console ...

Starts the command (its stderr goes to ours), follows its stdout (the guest's
serial console) and prints one line:
    MARKER_S CONSOLE_S DOWN_AT_MARKER DOWN_AT_EXIT RC
MARKER_S: seconds from the start of the command to the first line holding
MARKER; CONSOLE_S: to the first console output of the guest (SYSLINUX's
banner: the VM is running and has read its boot sector); DOWN_*: bytes the
proxy behind CONTROL (bench/rate_proxy.py --control) moved to its clients
since the command started, at the marker and when the command exited (0
when CONTROL is "-": no proxy, bench/peers). A missing marker gives -1. The command is killed after TIMEOUT_S.
"""
import socket
import subprocess
import sys
import threading
import time


def down(control):
    if control == "-":
        return 0
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(control)
        fields = s.makefile().readline().split()
    return int(fields[fields.index("down") + 1])


def main():
    if len(sys.argv) < 6 or sys.argv[4] != "--":
        sys.exit(__doc__)
    control, marker, timeout = sys.argv[1], sys.argv[2].encode(), float(sys.argv[3])
    base = down(control)
    start = time.monotonic()
    proc = subprocess.Popen(sys.argv[5:], stdout=subprocess.PIPE)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    marker_s = console_s = -1.0
    at_marker = -1
    for line in proc.stdout:
        now = time.monotonic() - start
        if console_s < 0 and b"SYSLINUX" in line:
            console_s = now
        if marker_s < 0 and marker in line:
            marker_s = now
            at_marker = down(control) - base
    rc = proc.wait()
    timer.cancel()
    print(f"{marker_s:.2f} {console_s:.2f} {at_marker} {down(control) - base} {rc}")


if __name__ == "__main__":
    main()
