#!/usr/bin/env bash
# Alternating latency runs of several builds or settings on one machine, so that they share its state (a shared
# 2-core machine drifts by tens of percent within minutes), with the medians of what each variant measured.
# Usage: bench/scripts/alternate-latency.sh ROUNDS "label|ENV=VALUE ...|repo-dir" ["label|...|dir" ...]
#   e.g. bench/scripts/alternate-latency.sh 8 "main||/work/main" "old||/tmp/wA"   (an empty env field sets nothing)
# RAW=1 also measures raw UDP in every run and prints the medians of the ratios each run measured (the figure that
# holds across the machine's swings); LOSS (default 0) is the loss probability of the runs.
# Each dir needs a Release build: dotnet build -c Release src/Whisper.Cli
set -euo pipefail
ROUNDS=$1; shift
LOSS=${LOSS:-0}
RAW=${RAW:-0}
SCENARIOS=$([ "$RAW" = 1 ] && echo udp-raw,whisper || echo whisper)
OUT=$(mktemp); trap 'rm -f "$OUT"' EXIT
for _ in $(seq 1 "$ROUNDS"); do
  for spec in "$@"; do
    IFS='|' read -r label envs dir <<< "$spec"
    # per metric: the raw UDP column (RAW=1) and Whisper's
    # shellcheck disable=SC2086 # the env field is a list of assignments
    line=$(env $envs "$dir/src/Whisper.Cli/bin/Release/net10.0/whisper" bench --scenarios "$SCENARIOS" --loss "$LOSS" --idle 0 --duration 1 2>&1 \
      | grep -E '^lat_(p50|send_p50|first_p50|cpu)_' | awk -v raw="$RAW" '{ if (raw == 1) printf "%s %s ", $2, $4; else printf "- %s ", $4 }')
    echo "$label $line" >> "$OUT"
  done
done
python3 - "$OUT" <<'PY'
import sys, statistics as st, collections
d = collections.defaultdict(list)
for l in open(sys.argv[1]):
    p = l.split()
    if len(p) >= 9:
        d[p[0]].append(p[1:9])
for k, v in d.items():
    wh = [[float(x) for x in r[1::2]] for r in v]  # p50, send, first, cpu
    c = list(zip(*wh))
    line = (f"{k:12s} n={len(v)} lat_p50 {st.median(c[0]):6.1f} [{min(c[0]):.1f}-{max(c[0]):.1f}]  send {st.median(c[1]):6.1f}"
            f"  first {st.median(c[2]):6.1f}  cpu/broadcast {st.median(c[3]):6.1f} [{min(c[3]):.0f}-{max(c[3]):.0f}]")
    if v[0][0] != "-":
        raw = [[float(x) for x in r[0::2]] for r in v]
        lat = [w[0] / r[0] for w, r in zip(wh, raw)]
        cpu = [w[3] / r[3] for w, r in zip(wh, raw)]
        line += (f"  | raw p50 {st.median([r[0] for r in raw]):.1f}  p50 ratio {st.median(lat):.3f}"
                 f" [{min(lat):.2f}-{max(lat):.2f}]  cpu ratio {st.median(cpu):.3f}")
    print(line)
PY
