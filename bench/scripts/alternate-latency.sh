#!/usr/bin/env bash
# Alternating latency runs of several builds or settings on one machine, so that they share its state (a shared
# 2-core machine drifts by tens of percent within minutes), with the medians of what each variant measured.
# Usage: bench/scripts/alternate-latency.sh ROUNDS "label|ENV=VALUE ...|repo-dir" ["label|...|dir" ...]
#   e.g. bench/scripts/alternate-latency.sh 8 "main||/work/main" "old||/tmp/wA"   (an empty env field sets nothing)
# Each dir needs a Release build: dotnet build -c Release src/Whisper.Cli
set -euo pipefail
ROUNDS=$1; shift
OUT=$(mktemp); trap 'rm -f "$OUT"' EXIT
for _ in $(seq 1 "$ROUNDS"); do
  for spec in "$@"; do
    IFS='|' read -r label envs dir <<< "$spec"
    # shellcheck disable=SC2086 # the env field is a list of assignments
    line=$(env $envs "$dir/src/Whisper.Cli/bin/Release/net10.0/whisper" bench --scenarios whisper --loss 0 --idle 0 --duration 1 2>&1 \
      | grep -E '^lat_(p50|send_p50|first_p50|cpu)_' | awk '{printf "%s ", $4}')
    echo "$label $line" >> "$OUT"
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
    c = list(zip(*v))
    print(f"{k:12s} n={len(v)} lat_p50 {st.median(c[0]):6.1f} [{min(c[0]):.1f}-{max(c[0]):.1f}]  send {st.median(c[1]):6.1f}"
          f"  first {st.median(c[2]):6.1f}  cpu/broadcast {st.median(c[3]):6.1f} [{min(c[3]):.0f}-{max(c[3]):.0f}]")
PY
