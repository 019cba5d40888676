#!/bin/sh
# Builds addon.node as node-gyp would (-O3), with frame pointers kept (-fno-omit-frame-pointer),
# against the headers of the node on PATH. Usage: build.sh [OUTPUT] (default: beside this file).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/addon.node}
include=$(dirname "$(dirname "$(command -v node)")")/include/node
[ -f "$include/node_api.h" ] || include=/usr/include/node
exec g++ -O3 -fno-omit-frame-pointer -fPIC -shared -DNODE_GYP_MODULE_NAME=leaky_sessions \
  -I"$include" "$here/addon.cc" -o "$out"
