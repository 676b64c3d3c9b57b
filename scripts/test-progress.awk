# test-progress.awk filters `go test -v` for make test: each top-level test
# is shown when it starts and when it ends (with its time), a skipped
# test with its reason, a failing test with all of its output, and the
# package summary lines. Subtests and passing tests' logs are left out.
# Usage: go test -v ./... 2>&1 | awk -f scripts/test-progress.awk

function flush_fail() { printf "%s", buf; buf = "" }

/^=== RUN   [^\/]+$/      { printf "    run  %s\n", $3; buf = ""; skipping = 0; next }
/^=== (RUN|PAUSE|CONT|NAME) / { skipping = 0; next }
/^--- PASS: [^\/]+ /      { printf "    ok   %s %s\n", $3, $4; buf = ""; skipping = 0; next }
/^--- SKIP: [^\/]+ /      { printf "    SKIP %s %s\n", $3, $4; buf = ""; skipping = 1; next }
/^--- FAIL: /             { flush_fail(); print; skipping = 0; failing = 1; next }
/^    --- (PASS|SKIP)/    { next }
/^    --- FAIL/           { buf = buf $0 "\n"; next }
/^(ok|FAIL|PASS|---|panic:|\?)/ { if ($0 !~ /^PASS$/) print; failing = 0; skipping = 0; next }
skipping && /^ +/         { print; next }
failing && /^ +/          { print; next }
                          { buf = buf $0 "\n" }
END                       { if (buf ~ /FAIL|panic/) flush_fail() }
