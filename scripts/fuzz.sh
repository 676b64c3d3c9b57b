#!/usr/bin/env bash
# Runs every Go fuzz target (func FuzzXxx in a _test.go file) of every module
# for FUZZTIME each (default 10s), one at a time: `make test` runs them
# briefly, `make fuzz` for a minute each. Prints one FUZZ line per target with
# its executions; a failure keeps its input in the package's
# testdata/fuzz/<target>/ and stops the run. Minimizing a new input is bounded
# (FUZZ_MINIMIZE, default 2s; go test's is 60s): with a large seed, such as a
# whole inventory, a short run otherwise spends its time minimizing and
# barely fuzzes.
set -euo pipefail
FUZZTIME=${FUZZTIME:-10s}
MODULES=${MODULES:-"events inventory harness services/planner services/migrator services/node-updater services/auditor services/lb-agent cmd/cutover"}
root=$(cd "$(dirname "$0")/.." && pwd)
for m in $MODULES; do
	cd "$root/$m"
	# file:func for every fuzz target of the module
	files=$(grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . 2>/dev/null | sort || true)
	for file in $files; do
		pkg="./$(dirname "${file#./}")"
		for target in $(grep -oE '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
			out=$(go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "${FUZZ_MINIMIZE:-2s}" -parallel "${FUZZ_PARALLEL:-1}" "$pkg" 2>&1) || {
				echo "$out"
				echo "FUZZ FAIL $m $pkg $target (the failing input is in $m/${pkg#./}/testdata/fuzz/$target/)"
				exit 1
			}
			execs=$(echo "$out" | grep -oE 'execs: [0-9]+' | tail -1 | cut -d' ' -f2 || true)
			echo "FUZZ ok $m $pkg $target $FUZZTIME execs=${execs:-?}"
		done
	done
done
