#!/usr/bin/env bash
# bench.sh runs every Go benchmark of the repository that has a baseline and
# prints one line per result, so runs can be compared:
#
#   BENCH <name> <value> <unit> baseline <value> ratio <value/baseline>
#
# The raw `go test -bench` output of each run is kept in $BENCH_OUT (default
# .bench/, one file per benchmark). Benchmarks that need Docker or PostgreSQL
# skip themselves when those are absent (the line then says SKIPPED).
#
# Knobs (environment):
#   BENCH_FLEET    fleet sizes to run, a regexp on nodes= (default 100|1000|5000)
#   BENCH_BUS_N    messages per BenchmarkBus run (default 20000)
#   BENCH_REPLACE_N replacements per BenchmarkReplace run (default 10)
#   CUTOVER_BENCH_SIZE_MB   migrator database size (default: the benchmark's 16 MB)
#   CUTOVER_TEST_POSTGRES   PostgreSQL URL for the migrator's PostgreSQL benchmark
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${BENCH_OUT:-$ROOT/.bench}
mkdir -p "$OUT"
GO=${GO:-go}
FLEET=${BENCH_FLEET:-100|1000|5000}

echo "# cutover benchmarks, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, $($GO version | cut -d' ' -f3)"

# run LABEL DIR PKG REGEXP BENCHTIME [TIMEOUT]: runs one benchmark, keeps its output.
run() {
	local label=$1 dir=$2 pkg=$3 re=$4 bt=$5 timeout=${6:-20m}
	local f="$OUT/$label.txt"
	echo "# running $label: (cd $dir && go test -run '^\$' -bench '$re' -benchtime $bt -timeout $timeout $pkg)" >&2
	(cd "$ROOT/$dir" && $GO test -run '^$' -bench "$re" -benchtime "$bt" -timeout "$timeout" "$pkg") >"$f" 2>&1
	if grep -q -- '--- FAIL\|^FAIL' "$f"; then
		echo "BENCH $label FAILED (see $f)"
	elif ! grep -q '^Benchmark.*[0-9]' "$f"; then
		# go test prints a skip's reason only with -v: say what it needs.
		echo "BENCH $label SKIPPED (no result: the benchmark skipped itself; Docker, PostgreSQL via CUTOVER_TEST_POSTGRES or HAProxy missing? see $f)"
	fi
}

# metric FILE BENCH UNIT: the value reported for UNIT on BENCH's line
# (BENCH is matched as a prefix of the name, before the -GOMAXPROCS suffix).
metric() {
	awk -v b="$2" -v u="$3" '
		$1 ~ "^"b"(-[0-9]+)?$" { for (i = 3; i < NF; i++) if ($(i+1) == u) { print $i; exit } }' "$1"
}

# line NAME VALUE UNIT BASELINE: prints one BENCH line (ratio = value/baseline).
line() {
	local name=$1 v=$2 unit=$3 base=$4
	if [ -z "$v" ]; then return; fi
	if [ -z "$base" ]; then
		echo "BENCH $name $v $unit baseline - ratio -"
		return
	fi
	awk -v n="$name" -v v="$v" -v u="$unit" -v b="$base" 'BEGIN {
		r = (b + 0 == 0) ? "-" : sprintf("%.3f", v / b)
		printf "BENCH %s %s %s baseline %s ratio %s\n", n, v, u, b, r }'
}

# Event bus: cutover's codec and consume helper vs raw nats.go (the floor).
run bus events . 'BenchmarkBus' "${BENCH_BUS_N:-20000}x"
f=$OUT/bus.txt
line bus-msgs/s "$(metric "$f" BenchmarkBus/cutover msgs/s)" msgs/s "$(metric "$f" BenchmarkBus/raw msgs/s)"

# Node-updater: one replacement vs the direct Docker API calls; idle RSS
# (its baseline is issue 3's target, 30 MB).
run replace services/node-updater . 'BenchmarkReplace' "${BENCH_REPLACE_N:-10}x"
f=$OUT/replace.txt
line replace-ms "$(metric "$f" BenchmarkReplace updater-ms)" ms "$(metric "$f" BenchmarkReplace direct-ms)"
run idle-rss services/node-updater . 'BenchmarkIdleRSS' 1x
line node-updater-idle-rss-MB "$(metric "$OUT/idle-rss.txt" BenchmarkIdleRSS idle-rss-MB)" MB 30

# Planner: planning 10,000 nodes vs issue 2's algorithm.
run plan10k services/planner ./plan 'BenchmarkPlan10k' 3x
f=$OUT/plan10k.txt
ns=$(metric "$f" BenchmarkPlan10k/cutover ns/op); bns=$(metric "$f" BenchmarkPlan10k/baseline-issue2 ns/op)
line plan10k-s "$(awk -v x="$ns" 'BEGIN{ if (x != "") printf "%.3f", x/1e9 }')" s "$(awk -v x="$bns" 'BEGIN{ if (x != "") printf "%.3f", x/1e9 }')"
line plan10k-peak-heap-MB "$(metric "$f" BenchmarkPlan10k/cutover peak-heap-MB)" MB "$(metric "$f" BenchmarkPlan10k/baseline-issue2 peak-heap-MB)"

# Migrator: snapshot and restore vs a file copy (the floor).
run migrator-sqlite services/migrator ./sqlite 'BenchmarkSnapshotRestore' 1x
f=$OUT/migrator-sqlite.txt
floor=$(metric "$f" BenchmarkSnapshotRestore floor-copy-ms)
line migrator-sqlite-snapshot-ms "$(metric "$f" BenchmarkSnapshotRestore snap-ms)" ms "$floor"
line migrator-sqlite-restore-ms "$(metric "$f" BenchmarkSnapshotRestore restore-ms)" ms "$floor"
run migrator-postgres services/migrator ./postgres 'BenchmarkSnapshotRestore' 1x
f=$OUT/migrator-postgres.txt
floor=$(metric "$f" BenchmarkSnapshotRestore floor-copy-ms)
line migrator-postgres-snapshot-ms "$(metric "$f" BenchmarkSnapshotRestore template-snap-ms)" ms "$floor"
line migrator-postgres-restore-ms "$(metric "$f" BenchmarkSnapshotRestore template-restore-ms)" ms "$floor"

# Fleet: whole upgrades of N nodes × 20 containers on the simulated runtime,
# zero latencies; events/s against the bus floor measured in the same run;
# time against the 100-node time scaled linearly (ratio 1 = linear growth);
# the planner's peak RSS (it runs in a process of its own) against its peak
# at 100 nodes.
# A size that does not finish in its budget (CUTOVER_BENCH_FLEET_TIMEOUT,
# default 2m/10m/6m for 100/1000/5000 nodes) reports the time it ran and
# waves-done below its waves.
run fleet cmd/cutover ./internal/rehearsal "BenchmarkFleet/nodes=($FLEET)\$" 1x 40m
f=$OUT/fleet.txt
t100=$(metric "$f" BenchmarkFleet/nodes=100 upgrade-s)
h100=$(metric "$f" BenchmarkFleet/nodes=100 peak-heap-MB)
for n in 100 1000 5000; do
	b=BenchmarkFleet/nodes=$n
	t=$(metric "$f" "$b" upgrade-s)
	[ -z "$t" ] && continue
	line "fleet-$n-upgrade-s" "$t" s "$(awk -v t="$t100" -v n="$n" 'BEGIN{ if (t != "") printf "%.3f", t*n/100 }')"
	line "fleet-$n-events/s" "$(metric "$f" "$b" events/s)" events/s "$(metric "$f" "$b" floor-msgs/s)"
	line "fleet-$n-peak-heap-MB" "$(metric "$f" "$b" peak-heap-MB)" MB "$(awk -v h="$h100" -v n="$n" 'BEGIN{ if (h != "") printf "%.1f", h*n/100 }')"
	line "fleet-$n-waves-done" "$(metric "$f" "$b" waves-done)" waves "$(metric "$f" "$b" waves)"
	line "fleet-$n-planner-state-MB" "$(metric "$f" "$b" planner-state-MB)" MB 1
	line "fleet-$n-planner-peak-RSS-MB" "$(metric "$f" "$b" planner-peak-RSS-MB)" MB "$(metric "$f" BenchmarkFleet/nodes=100 planner-peak-RSS-MB)"
done

# Fleet on a cluster: the same upgrade on a 3-server cluster with 3 replicas
# against one server, in the same run (ratio = cluster / one server); at
# 1,000 nodes also what heartbeats add to the stream in a day.
run fleet-cluster cmd/cutover ./internal/rehearsal "BenchmarkFleetCluster/nodes=($FLEET)\$" 1x 40m
f=$OUT/fleet-cluster.txt
for n in 100 1000; do
	b=BenchmarkFleetCluster/nodes=$n
	line "fleet-cluster-$n-events/s" "$(metric "$f" "$b" events/s-3servers-R3)" events/s "$(metric "$f" "$b" events/s-1server)"
	line "fleet-cluster-$n-upgrade-stream-MB" "$(metric "$f" "$b" upgrade-stream-MB)" MB ""
	line "fleet-cluster-$n-idle-stream-MB/day" "$(metric "$f" "$b" idle-stream-MB/day)" MB/day ""
done

# Auditor: failing health signal to rollback request (issue 6) against a
# bare bus round trip; the metrics recorder's cost per event against none.
if [ -d services/auditor/verdict ]; then
	run signal-to-rollback services/auditor ./verdict 'BenchmarkSignalToRollback' 1x
	f=$OUT/signal-to-rollback.txt
	for q in p50 p99; do
		line "signal-to-rollback-$q-ms" "$(metric "$f" BenchmarkSignalToRollback "signal-to-rollback-$q-ms")" ms "$(metric "$f" BenchmarkSignalToRollback "bus-baseline-$q-ms")"
	done
fi
if [ -d services/auditor/metrics ]; then
	run auditor-observe services/auditor ./metrics 'BenchmarkObserve' 1x
	f=$OUT/auditor-observe.txt
	line auditor-observe-ns/event "$(metric "$f" BenchmarkObserve/observed ns/event)" ns/event "$(metric "$f" BenchmarkObserve/baseline ns/event)"
fi

# Any other benchmark in the repository (e.g. ones added since this script
# was written): run once, every reported metric printed without a baseline.
known='^(BenchmarkBus|BenchmarkReplace|BenchmarkIdleRSS|BenchmarkPlan10k|BenchmarkSnapshotRestore|BenchmarkFleet|BenchmarkFleetCluster|BenchmarkSignalToRollback|BenchmarkObserve)$'
for dir in events inventory harness services/* cmd/cutover; do
	[ -f "$dir/go.mod" ] || continue
	(cd "$dir" && grep -rhoE --include='*_test.go' '^func (Benchmark[A-Za-z0-9_]+)' . | sed 's/^func //' | sort -u) | while read -r fn; do
		[[ $fn =~ $known ]] && continue
		pkgs=$(cd "$dir" && grep -rlE --include='*_test.go' "^func $fn\(" . | xargs -n1 dirname | sort -u | sed 's|^\.|.|')
		for p in $pkgs; do
			label="other-$(echo "$dir/$p/$fn" | tr '/.' '__')"
			run "$label" "$dir" "$p" "^$fn\$" 1x
			awk '/^Benchmark/ { name = $1; sub(/-[0-9]+$/, "", name)
				for (i = 3; i < NF; i += 2) if ($(i+1) != "ns/op" || NF == 4) printf "BENCH %s:%s %s %s baseline - ratio -\n", name, $(i+1), $i, $(i+1) }' "$OUT/$label.txt"
		done
	done
done
