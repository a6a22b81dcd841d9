"""Shared by the test servers in this folder: tells the test where to connect."""
import os


def announce(port, port_file):
    """Writes PORT to `port_file` atomically (if given) and "ready PORT" to stdout."""
    if port_file:
        tmp = port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.rename(tmp, port_file)
    print(f"ready {port}", flush=True)
