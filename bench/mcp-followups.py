#!/usr/bin/env python3
"""Times follow-up questions to `leakhound mcp` on one snapshot, as a client over stdio sees them.

Usage: bench/mcp-followups.py target/release/leakhound FILE.heapsnapshot
Prints one line per call: tool, round-trip time, whether the snapshot came from the cache, and
the answer's size.
"""
import json, subprocess, sys, time

exe, snap = sys.argv[1], sys.argv[2]
p = subprocess.Popen([exe, "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
n = [0]
def req(method, params):
    n[0] += 1
    p.stdin.write(json.dumps({"jsonrpc":"2.0","id":n[0],"method":method,"params":params})+"\n"); p.stdin.flush()
    while True:
        m = json.loads(p.stdout.readline())
        if m.get("id") == n[0]: return m
req("initialize", {"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"b","version":"1"}})
p.stdin.write(json.dumps({"jsonrpc":"2.0","method":"notifications/initialized"})+"\n"); p.stdin.flush()
def call(tool, args):
    t=time.time(); m=req("tools/call", {"name":tool,"arguments":args}); dt=time.time()-t
    r=m["result"]; sc=r.get("structuredContent") or {}
    print(f"{tool:10s} {dt:7.3f}s  error={r.get('isError')} cache={sc.get('cache')} bytes={len(json.dumps(r))}")
    return sc
s=call("summary", {"snapshot": snap, "top": 5})
call("summary", {"snapshot": snap, "top": 5, "cursor": s.get("next")})
r=call("retainers", {"snapshot": snap, "class": s["classes"][0]["name"], "instances": 1})
oid=r["objects"][0]["object"]["id"]
call("show", {"snapshot": snap, "object": f"@{oid}"})
call("show", {"snapshot": snap, "object": f"@{oid}"})
call("findings", {"snapshot": snap})
p.kill()
