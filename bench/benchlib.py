"""Helpers shared by the benchmark scripts under bench/ (imported as
`benchlib`: a script's own folder is on Python's path)."""
import socket


def free_port(host="127.0.0.1"):
    """A port free on host for both TCP and UDP now (a server started on it
    next may still lose it to another program: bench runs retry nothing)."""
    for _ in range(50):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((host, 0))
        port = s.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind((host, port))
        except OSError:
            continue
        finally:
            u.close()
            s.close()
        return port
    raise RuntimeError("no free port on %s" % host)
