#!/usr/bin/env bash
# Alternating runs of several builds, each run measuring raw UDP and Whisper's latency together, with the medians of
# the ratios each run measured: a shared 2-core machine drifts by tens of percent within minutes, so a build is only
# compared with another through runs that share its minutes. LOSS (default 0) is the loss probability of the runs.
# Usage: bench/scripts/alternate-ratio.sh ROUNDS "label=repo-dir" ["label=repo-dir" ...]
#   e.g. bench/scripts/alternate-ratio.sh 8 "old=/tmp/wA" "new=/work/main"
# Each dir needs a Release build: dotnet build -c Release src/Whisper.Cli
set -euo pipefail
ROUNDS=$1; shift
LOSS=${LOSS:-0}
OUT=$(mktemp); trap 'rm -f "$OUT"' EXIT
for _ in $(seq 1 "$ROUNDS"); do
  for spec in "$@"; do
    label=${spec%%=*}; dir=${spec#*=}
    # lat_p50_us and lat_cpu_us_per_broadcast: the raw UDP column, then Whisper's
    line=$("$dir/src/Whisper.Cli/bin/Release/net10.0/whisper" bench --scenarios udp-raw,whisper --loss "$LOSS" --idle 0 --duration 1 2>&1 \
      | grep -E '^lat_(p50|cpu)_' | awk '{printf "%s %s ", $2, $4}')
    echo "$label $line" | tee -a "$OUT"
  done
done
python3 - "$OUT" <<'PY'
import sys, statistics as st, collections
d = collections.defaultdict(list)
for l in open(sys.argv[1]):
    p = l.split()
    if len(p) >= 5:
        d[p[0]].append([float(x) for x in p[1:5]])
for k, v in d.items():
    lat = [w / u for u, w, _, _ in v]
    cpu = [cw / cu for _, _, cu, cw in v]
    print(f"{k:10s} n={len(v)} p50 ratio {st.median(lat):.3f} [{min(lat):.2f}-{max(lat):.2f}]"
          f"  raw {st.median([x[0] for x in v]):.1f} us  whisper {st.median([x[1] for x in v]):.1f} us"
          f"  cpu/broadcast ratio {st.median(cpu):.3f}")
PY
