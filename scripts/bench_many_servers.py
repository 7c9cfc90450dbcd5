#!/usr/bin/env python3
"""Runs the shared tracking loader against several servers of one store at once.

Usage: bench_many_servers.py LOADER URL1,URL2[,…] [loader arguments…]

The loader (../shared/bench/tracking_load.py) talks to one URL. Here each of its processes
talks to one of the given servers, taken in turn by process id, with no balancer in between:
the loader's own round robin. Its figures are then those of the servers together.
"""
import importlib.util
import os
import sys

loader_path, urls = sys.argv[1], sys.argv[2].split(",")
spec = importlib.util.spec_from_file_location("tracking_load", loader_path)
tl = importlib.util.module_from_spec(spec)
sys.modules["tracking_load"] = tl
spec.loader.exec_module(tl)

one_server = tl.Client.__init__


def client_of_one_server(self, url):
    # Pool workers are forked, so this patch holds in them too; consecutive process ids
    # spread the loader's processes evenly over the servers.
    if "," in url:
        url = urls[os.getpid() % len(urls)]
    one_server(self, url)


tl.Client.__init__ = client_of_one_server
sys.argv = [loader_path, sys.argv[2], *sys.argv[3:]]
tl.main()
