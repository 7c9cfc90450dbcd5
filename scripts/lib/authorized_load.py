"""Runs a load script (argv[1]) with an Authorization header on every request it sends through
http.client, taken from SEXTANT_BENCH_AUTHORIZATION (none when empty). Used by scripts/bench-auth."""

import http.client
import os
import runpy
import sys

header = os.environ.get("SEXTANT_BENCH_AUTHORIZATION", "")
if header:
    _request = http.client.HTTPConnection.request

    def request(self, method, url, body=None, headers=None, **kw):
        headers = dict(headers or {})
        headers["Authorization"] = header
        return _request(self, method, url, body=body, headers=headers, **kw)

    http.client.HTTPConnection.request = request

script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
