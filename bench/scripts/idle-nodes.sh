#!/usr/bin/env bash
# Idle cost of real Whisper nodes: starts a discovery server and N `whisper node` processes on 127.0.0.1, lets the
# group settle, then reports each node's CPU (utime+stime from /proc over a window) and resident memory (VmRSS).
# Linux only. Usage: bench/scripts/idle-nodes.sh [nodes=10] [port=17800] [settle_s=14] [window_s=10]
# Build first: dotnet build -c Release src/Whisper.Cli
set -euo pipefail
NODES=${1:-10}; PORT=${2:-17800}; SETTLE=${3:-14}; WINDOW=${4:-10}
DLL="$(cd "$(dirname "$0")/../.." && pwd)/src/Whisper.Cli/bin/Release/net10.0/whisper.dll"
[ -f "$DLL" ] || { echo "build first: dotnet build -c Release src/Whisper.Cli" >&2; exit 2; }
OUT=$(mktemp -d)
cleanup() { pkill -f "whisper.dll node --name idle.* --server 127.0.0.1:$PORT" 2>/dev/null || true; kill "$SP" 2>/dev/null || true; rm -rf "$OUT"; }
dotnet "$DLL" server --port "$PORT" --log-level None >/dev/null 2>&1 & SP=$!
trap cleanup EXIT
sleep 1
for i in $(seq 0 $((NODES - 1))); do
  (sleep $((SETTLE + WINDOW + 5)) | dotnet "$DLL" node --name "idle$i" --server "127.0.0.1:$PORT" --json --log-level None > "$OUT/n$i.out" 2>&1) &
done
sleep "$SETTLE"
PIDS=$(pgrep -f "whisper.dll node --name idle.* --server 127.0.0.1:$PORT")
TICK=$(getconf CLK_TCK); declare -A BEFORE
for p in $PIDS; do BEFORE[$p]=$(awk '{print $14+$15}' "/proc/$p/stat"); done
sleep "$WINDOW"
TOTAL=0; N=0; MAXRSS=0
for p in $PIDS; do
  AFTER=$(awk '{print $14+$15}' "/proc/$p/stat"); TOTAL=$((TOTAL + AFTER - ${BEFORE[$p]})); N=$((N + 1))
  RSS=$(awk '/VmRSS/ {print $2}' "/proc/$p/status"); [ "$RSS" -gt "$MAXRSS" ] && MAXRSS=$RSS
done
JOINED=$(cat "$OUT"/n*.out | grep -c '"event":"joined"' || true)
echo "nodes=$N joined=$JOINED mean_cpu_percent_per_node=$(awk -v t="$TOTAL" -v k="$TICK" -v w="$WINDOW" -v n="$N" 'BEGIN {printf "%.2f", t*100/k/w/n}') max_rss_mb=$((MAXRSS / 1024))"
