"""
Taru's benchmark: throughput, latency and memory of the real server under
load, driven over loopback by raw-socket clients. Run it with
C{python -m bench}; see L{bench.__main__}.
"""
