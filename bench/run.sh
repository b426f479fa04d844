#!/usr/bin/env bash
# Runs factstream's benchmark end to end and writes BENCHMARKS.md.
#
# It builds the server and the load generator (bench/loadgen), then runs
# every scenario (S1 to S4) against a freshly started server on a loopback
# port: the server pinned to CPU 0, the generator to CPU 1. Each scenario
# is bounded in time; the whole run takes about eight minutes.
#
#   bench/run.sh                 # everything, then BENCHMARKS.md
#   bench/run.sh S2 S3           # only these scenarios (BENCHMARKS.md still written)
#   bench/run.sh --report-only   # BENCHMARKS.md again from the last run's
#                                # results, say after editing bench/analysis.md
#   bench/run.sh cluster         # only the cluster scenarios (two instances
#                                # on one Redis, this build beside the one
#                                # before it): their section of BENCHMARKS.md
#   bench/run.sh compare         # S1, S3 and S4 of this build and of
#                                # BENCH_BASELINE in turns, plus the takeover
#                                # writer off: their section of BENCHMARKS.md
#   bench/run.sh compare --report-only   # that section again from the last
#                                        # compare run's results
#
# Environment: BENCH_OUT (work directory, default bench/.out; the bbolt
# file lives there, so keep it on a real disk), BENCH_PORT (first port,
# default 18100), BENCH_PROFILE=0 to skip profiling the server during S3,
# BENCH_WAIT_QUIET=<seconds> to wait up to that long for the machine to be
# idle first (anything else running, a test suite say, lowers the figures).
# For "cluster" and "compare": BENCH_BASELINE, the revision to compare with
# (default: where this branch left main), and BENCH_CLUSTER_ROUNDS or
# BENCH_COMPARE_ROUNDS (default 3); for "compare", BENCH_BASELINE_NAME, how
# the report calls that build (default "the previous build"), and
# BENCH_COMPARE_TITLE, the title of its section.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${BENCH_OUT:-$root/bench/.out}
port=${BENCH_PORT:-18100}
profile=${BENCH_PROFILE:-1}
rel_out=${out#"$root"/}

server_cpu=0
gen_cpu=1
if [ "$(nproc --all)" -lt 2 ]; then
	echo "run.sh: fewer than 2 CPUs: the server and the generator will share one" >&2
	gen_cpu=0
fi

# prepare builds both programs into a clean work directory.
prepare() {
	mkdir -p "$out"
	rm -f "$out"/*.json "$out"/commands.txt "$out"/profile.md "$out"/notes*.md "$out"/run.env
	printf '# the whole run, from the repository root\n%sbench/run.sh%s\n' "$(bench_env)" "${*:+ $*}" >"$out/commands.txt"
	echo "building the server and the load generator"
	go build -o "$out/factstream" .
	go build -o "$out/loadgen" ./bench/loadgen
	ulimit -n "$(ulimit -Hn)"
}

# bench_env prints the BENCH_ settings of this run as shell assignments,
# so that the command recorded for BENCHMARKS.md repeats the run exactly.
bench_env() {
	local v
	for v in BENCH_BASELINE BENCH_BASELINE_NAME BENCH_COMPARE_TITLE BENCH_COMPARE_ROUNDS BENCH_CLUSTER_ROUNDS BENCH_WAIT_QUIET BENCH_PROFILE BENCH_PORT; do
		[ -z "${!v:-}" ] || printf '%s=%q ' "$v" "${!v}"
	done
}

server_pid=
stop_server() {
	[ -n "$server_pid" ] || return 0
	kill -TERM "$server_pid" 2>/dev/null || true
	for _ in $(seq 100); do
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$server_pid" 2>/dev/null || true
	wait "$server_pid" 2>/dev/null || true
	server_pid=
}
trap stop_server EXIT

# record NAME CMD...: remembers a command for BENCHMARKS.md, with the work
# directory shown relative to the repository.
record() {
	local name=$1
	shift
	printf '# %s\n%s\n' "$name" "$(printf '%q ' "$@" | sed -e "s#$out#$rel_out#g" -e 's/ $//')" >>"$out/commands.txt"
}

# server_flags are extra flags of the server for the scenarios that follow
# (see run_scenarios); the report shows them beside those runs' figures and
# judges no target on them.
server_flags=()

# run_timeout bounds one scenario, in seconds.
run_timeout=180

# only lists the scenarios (names or kinds) to run; empty runs them all.
only=()

# server_bin is the build start_server runs: this one, or the baseline in
# the compare scenarios.
server_bin=

# start_server NAME STORE: starts a fresh server_bin on the next port, with
# server_flags; for the store "net/http alone", the generator's floor server
# instead (net/http answering publishes and doing nothing else).
start_server() {
	local name=$1 store=$2
	port=$((port + 1))
	local cmd=(taskset -c "$server_cpu" "${server_bin:-$out/factstream}" --addr "127.0.0.1:$port" --store "$store"
		--log-level warn --max-clients 20000 ${server_flags[@]+"${server_flags[@]}"})
	if [ "$store" = "net/http alone" ]; then
		cmd=(taskset -c "$server_cpu" "$out/loadgen" floor -addr "127.0.0.1:$port")
	fi
	record "$name: server" "${cmd[@]}"
	"${cmd[@]}" 2>"$out/server-$name.log" &
	server_pid=$!
	sleep 0.2
	if ! kill -0 "$server_pid" 2>/dev/null; then
		echo "run.sh: the server did not start:" >&2
		cat "$out/server-$name.log" >&2
		exit 1
	fi
}

# scenario NAME KIND STORE LOADGEN-FLAGS...: one scenario on a fresh server.
scenario() {
	local name=$1 kind=$2 store=$3
	shift 3
	if [ ${#only[@]} -gt 0 ] && ! printf '%s\n' "${only[@]}" | grep -qx -e "$name" -e "$kind"; then
		return 0
	fi
	echo "== $name"
	start_server "$name" "$store"
	local cmd=(taskset -c "$gen_cpu" "$out/loadgen" run -scenario "$kind" -name "$name" -store "$store"
		-addr "127.0.0.1:$port" -server-pid "$server_pid" -server-cpu "$server_cpu" -gen-cpu "$gen_cpu"
		-out "$out/$name.json" "$@")
	if [ ${#server_flags[@]} -gt 0 ]; then
		cmd+=(-variant "${server_flags[*]}")
	fi
	record "$name: load" "${cmd[@]}"
	prof_pid=
	if [ "$name" = S3 ] && [ "$profile" = 1 ]; then
		start_profile
	fi
	timeout "$run_timeout" "${cmd[@]}" || echo "run.sh: $name failed (exit $?)" >&2
	[ -z "$prof_pid" ] || stop_profile
	stop_server
}

# start_profile: profiles the server during S3 with its own pprof endpoint
# when it has one, else with perf when installed; sets prof_pid.
start_profile() {
	rm -f "$out/s3-server.pprof" "$out/s3-server.perf"
	if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/debug/pprof/")" = 200 ]; then
		curl -s -o "$out/s3-server.pprof" "http://127.0.0.1:$port/debug/pprof/profile?seconds=8" &
		prof_pid=$!
	elif command -v perf >/dev/null; then
		perf record -q -F 999 -g -p "$server_pid" -o "$out/s3-server.perf" >/dev/null 2>&1 &
		prof_pid=$!
	fi
}

# stop_profile lets a pprof download finish, or stops perf, then
# summarises the profile for BENCHMARKS.md.
stop_profile() {
	if [ -f "$out/s3-server.perf" ]; then
		kill -INT "$prof_pid" 2>/dev/null || true
	fi
	wait "$prof_pid" 2>/dev/null || true
	prof_pid=
	summarize_profile >"$out/profile.md" || rm -f "$out/profile.md"
}

summarize_profile() {
	if [ -s "$out/s3-server.pprof" ]; then
		echo "CPU profile from the server's pprof endpoint (\`go tool pprof -top $rel_out/s3-server.pprof\`), top entries:"
		echo
		echo '```text'
		go tool pprof -top -nodecount=30 "$out/factstream" "$out/s3-server.pprof" 2>/dev/null | sed -n '1,40p'
		echo '```'
	elif [ -s "$out/s3-server.perf" ]; then
		echo "The server has no pprof endpoint, so \`perf record -g\` sampled it during the whole S3 run"
		echo "(connection of the subscribers included). Self time by symbol, kernel included:"
		echo
		echo '```text'
		perf report -i "$out/s3-server.perf" --no-children --stdio --sort symbol -g none --percent-limit 0.8 2>/dev/null |
			grep -v -e '^#' -e '^$' | sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//' | head -30
		echo '```'
		echo
		echo "Inclusive time (callees included) of the server's own functions:"
		echo
		echo '```text'
		perf report -i "$out/s3-server.perf" --children --stdio --sort symbol -g none 2>/dev/null |
			grep -v -e '^#' -e '^$' | grep -e 'factstream/' -e 'net/http\.' -e 'gin' |
			sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//' | head -25
		echo '```'
	else
		return 1
	fi
}

# busy_pct prints how busy all cores were over one second, in percent:
# anything else running distorts the figures.
busy_pct() {
	local a b
	read -r -a a < <(grep '^cpu ' /proc/stat)
	sleep 1
	read -r -a b < <(grep '^cpu ' /proc/stat)
	local busy=$(((b[1] + b[2] + b[3] + b[6] + b[7]) - (a[1] + a[2] + a[3] + a[6] + a[7])))
	local idle=$(((b[4] + b[5]) - (a[4] + a[5])))
	echo $((100 * busy / (busy + idle + 1)))
}

# cpu_line prints the fields of /proc/stat's line for all CPUs.
cpu_line() {
	grep '^cpu ' /proc/stat
}

# steal_pct A B: the share of the cores' time, between two cpu_line
# readings, that the hypervisor gave to other guests (steal time).
steal_pct() {
	local -a a b
	read -r -a a <<<"$1"
	read -r -a b <<<"$2"
	local total=0 i
	for i in 1 2 3 4 5 6 7 8; do
		total=$((total + b[i] - a[i]))
	done
	echo $((100 * (b[8] - a[8]) / (total + 1)))
}

# wait_quiet measures how busy the machine is and, with BENCH_WAIT_QUIET,
# waits for it to be idle; it sets busy_before, load_before, busy_first
# (before any wait) and waited (seconds).
wait_quiet() {
	busy_before=$(busy_pct)
	busy_first=$busy_before
	waited=0
	while [ "$busy_before" -gt 20 ] && [ "$waited" -lt "${BENCH_WAIT_QUIET:-0}" ]; do
		echo "run.sh: the machine is ${busy_before}% busy: waiting for it to be idle"
		sleep 4
		waited=$((waited + 5))
		busy_before=$(busy_pct)
	done
	load_before=$(cut -d' ' -f1-3 /proc/loadavg)
	if [ "$busy_before" -gt 20 ]; then
		echo "run.sh: the machine is already ${busy_before}% busy: the figures will be lower than they should" >&2
	fi
}

run_scenarios() {
	local bolt_dir="$out/bolt"
	if [ "$(stat -f -c %T "$out")" = tmpfs ]; then
		echo "run.sh: $out is on tmpfs: the bbolt figures will not include a real fsync" >&2
	fi
	# Every scenario runs three times and the report judges the median: one
	# run moves by 10 to 25% from the next on a VM whose host's speed
	# varies, and now and then the host pauses it for tens of milliseconds.
	local round suffix
	for round in 1 2 3; do
		suffix=$(run_suffix "$round")
		scenario "S1-10000$suffix" S1 memory: -subs 10000 -idle 10s
		scenario "S1-19000$suffix" S1 memory: -subs 19000 -idle 10s
	done
	for round in 1 2 3; do
		suffix=$(run_suffix "$round")
		scenario "S2$suffix" S2 memory: -subs 1000 -facts 2000 -rate 200 -pubs 16
		scenario "S2L$suffix" S2L memory: -subs 1000 -facts 400 -rate 20 -pubs 16
	done
	# S3 also varies with how publishing and fan-out interleave on the
	# server's single core.
	for round in 1 2 3; do
		scenario "S3$(run_suffix "$round")" S3 memory: -subs 10000 -facts 200 -pubs 4
	done
	scenario S3-goroutine S3 memory: -subs 10000 -facts 200 -pubs 4 -reader goroutine
	# The takeover writer off: every stream keeps its goroutine, so what the
	# takeover buys in memory (S1) and in deliveries per second (S3) stays
	# measured. One run each, beside the three of the default.
	server_flags=(--stream-takeover=false)
	scenario S1-10000-takeover-off S1 memory: -subs 10000 -idle 10s
	scenario S3-takeover-off S3 memory: -subs 10000 -facts 200 -pubs 4
	server_flags=()
	# S4 in turns with its floor, so that each round of the three sees the
	# host at about the same speed.
	for round in 1 2 3; do
		suffix=$(run_suffix "$round")
		scenario "S4-memory$suffix" S4 memory: -pubs 64 -duration 10s
		rm -rf "$bolt_dir"
		scenario "S4-bolt$suffix" S4 "bolt:${bolt_dir#"$root"/}/facts.db" -pubs 64 -duration 10s
		rm -rf "$bolt_dir"
		# What net/http and the kernel cost alone, for comparison.
		scenario "S4-floor$suffix" S4 "net/http alone" -pubs 64 -duration 10s
	done
}

# run_suffix N names the Nth run of a scenario: the first has no suffix.
run_suffix() {
	[ "$1" -eq 1 ] || echo "-run$1"
}

# report_names lists the runs, in the order the report shows them.
report_names() {
	local base round
	for base in S1-10000 S1-19000 S2 S2L S3; do
		for round in 1 2 3; do
			echo "$base$(run_suffix "$round")"
		done
	done
	echo S3-goroutine S1-10000-takeover-off S3-takeover-off
	for base in S4-memory S4-bolt S4-floor; do
		for round in 1 2 3; do
			echo "$base$(run_suffix "$round")"
		done
	done
}

# speed_change prints a note when the machine's speed, as the sha256 loop
# of the calibrations before and after the run measured it, moved by more
# than a tenth: the host then gave this VM more or less of its CPU midway.
speed_change() {
	local a b
	a=$(sed -n 's/^sha256 \([0-9]*\) MB\/s.*/\1/p' <<<"$calibration_before")
	b=$(sed -n 's/^sha256 \([0-9]*\) MB\/s.*/\1/p' <<<"$calibration_after")
	[ -n "$a" ] && [ -n "$b" ] || return 0
	if [ $((b * 10)) -lt $((a * 9)) ] || [ $((b * 9)) -gt $((a * 10)) ]; then
		cat <<EOF
- **The machine's speed changed during the run**: the sha256 loop on the
  server's core went from $a to $b MB/s. The host gave this VM more or
  less of its CPU midway, so the scenarios ran on two different machines
  in effect; run again before comparing these figures with the targets
  or with another run.
EOF
	fi
}

# write_notes keeps what the report says about this run, so that
# --report-only can write it again.
write_notes() {
	speed_change >"$out/notes-run.md"
	cat >>"$out/notes-run.md" <<EOF
- Before the run the machine was ${busy_before}% busy (load average
  $load_before); the core busy shares in brackets show whether anything
  else competed for the two cores during each scenario. During the run
  the hypervisor took ${steal_during}% of the cores' time for other guests
  (steal time in /proc/stat); when that is high, the figures are lower
  and vary more than the machine alone would make them.
- How fast the machine was (\`loadgen calibrate\`: a CPU-bound loop on the
  server's core; 64-byte round trips over loopback TCP between the two
  cores with blocking system calls on pinned threads, which is the cost of
  a write that wakes a reader on the other core; and the fan-out floor,
  one write to each of 1,000 loopback connections from the server's core
  with nothing but the system calls, read by one epoll loop on the other
  core, which is the least a round of S2 or S2L can take): before the run,
  ${calibration_before}; after it, ${calibration_after}.
- The *net/http alone* rows of the S4 table are not factstream: they are
  \`loadgen floor\`, net/http answering each publish with a fixed 201 and
  doing nothing else, pinned and driven the same way, each run right after
  a \`memory:\` and a bbolt run. The gap between it and \`memory:\` is
  what factstream's own work costs per publish.
- The rows marked \`--stream-takeover=false\` ran once each with the
  takeover writer off: every stream kept its own goroutine. Set beside the
  default rows, they show the memory per stream and the deliveries per
  second that the takeover buys; no target is judged on them.
- The generator reads subscribers with one epoll loop by default; S3 is run
  a second time with one goroutine per connection (\`-reader goroutine\`) to
  compare their cost: see the S3 table's *generator CPU µs per delivery*.
- Every scenario is run three times and the targets take the median run
  (for S3, of the three epoll runs). On a VM the host's speed moves the
  figures by 10 to 25% from one run to the next, and now and then it
  pauses the VM for tens of milliseconds, which shows in a run's latency
  maximum and p99; S3 also varies with how many facts a stream finds
  queued per write, which depends on how publishing and fan-out
  interleave on the server's one core.
- The bbolt file of S4 lives in \`$rel_out/bolt\` on a $(stat -f -c %T "$out") file system.
EOF
	{
		printf 'run_date=%q\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
		printf 'run_revision=%q\n' "$(server_revision)"
	} >"$out/run.env"
}

# server_revision names the last commit that changed what the server is
# built from (tests, documentation, scripts and bench/ left aside) and says
# when the work tree changes it.
server_revision() {
	local paths=(. ':(exclude)bench' ':(exclude)tests' ':(exclude)scripts' ':(exclude).ci'
		':(exclude,glob)**/*.md' ':(exclude,glob)**/*_test.go' ':(exclude,glob)**/testdata/**')
	local rev
	rev=$(git log -1 --format='%h (%cd)' --date=short -- "${paths[@]}" 2>/dev/null) || {
		echo unknown
		return
	}
	git diff --quiet HEAD -- "${paths[@]}" || rev="$rev with uncommitted changes"
	echo "$rev"
}

# write_report writes BENCHMARKS.md from the results in $out, with the
# notes of the run and bench/analysis.md.
write_report() {
	# shellcheck source=/dev/null
	. "$out/run.env"
	cp "$out/notes-run.md" "$out/notes.md"
	if [ -f bench/analysis.md ]; then
		printf '\n' >>"$out/notes.md"
		cat bench/analysis.md >>"$out/notes.md"
	fi
	local results=() name
	for name in $(report_names); do
		# A run from before the repeats has only the first of each.
		if [[ "$name" == *-run* && ! -f "$out/$name.json" ]]; then
			continue
		fi
		results+=("$out/$name.json")
	done
	"$out/loadgen" report -out BENCHMARKS.md -date "$run_date" -revision "$run_revision" \
		-machine "$(nproc --all) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) memory" \
		-kernel "$(uname -r)" -go "$(go version | cut -d' ' -f3-)" \
		-summary bench/summary.md -commands "$out/commands.txt" -profile "$out/profile.md" -notes "$out/notes.md" \
		-calibration "$out/calibration-before.json" -calibration "$out/calibration-after.json" \
		"${results[@]}"
	echo "wrote BENCHMARKS.md"
}

# ---- cluster scenarios -------------------------------------------------
#
# Two instances (A and B) on one redis-server with its AOF on, as a
# deployment runs them: the instances pinned to the server's core, Redis
# and the generator to the other. Each run gets a fresh Redis (an empty
# AOF, so that no run pays for the one before it), with AOF rewrites off so
# that none starts midway. The build under test and the one before it run
# in turns, round after round, so that both see the machine alike.

cluster_pids=()
stop_cluster() {
	local pid
	for pid in "${cluster_pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${cluster_pids[@]}"; do
		for _ in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	cluster_pids=()
}

# free_port prints a loopback TCP port nothing listens on.
free_port() {
	local p low
	# Below the kernel's range of ephemeral ports, which the load
	# generator's thousands of connections draw from.
	read -r low _ </proc/sys/net/ipv4/ip_local_port_range
	while :; do
		p=$((10000 + RANDOM % (low - 10000)))
		if ! ss -Htln "sport = :$p" | grep -q .; then
			echo "$p"
			return
		fi
	done
}

# start_redis FSYNC: a fresh redis-server on a free port; sets redis_port.
start_redis() {
	local fsync=$1 dir="$out/redis"
	rm -rf "$dir"
	mkdir -p "$dir"
	local attempt pid cmd
	# The free port may be taken before redis-server binds it (by an
	# outgoing connection of the previous run, say): try another.
	for attempt in 1 2 3 4 5; do
		redis_port=$(free_port)
		cmd=(taskset -c "$gen_cpu" redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$dir"
			--appendonly yes --appendfsync "$fsync" --save '' --auto-aof-rewrite-percentage 0)
		"${cmd[@]}" >"$dir/redis.log" 2>&1 &
		pid=$!
		for _ in $(seq 100); do
			if [ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ]; then
				record "redis ($fsync)" "${cmd[@]}"
				cluster_pids+=("$pid")
				return 0
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		grep -q "Address already in use" "$dir/redis.log" || break
		echo "run.sh: port $redis_port was taken (attempt $attempt), trying another" >&2
	done
	echo "run.sh: redis-server did not start:" >&2
	cat "$dir/redis.log" >&2
	exit 1
}

# start_instance NAME BINARY: one factstream on the Redis; sets inst_port
# and inst_pid.
start_instance() {
	local name=$1 bin=$2
	inst_port=$(free_port)
	local cmd=(taskset -c "$server_cpu" "$bin" --addr "127.0.0.1:$inst_port" --store "redis://127.0.0.1:$redis_port/0"
		--instance "$name" --log-level warn --max-clients 20000)
	record "instance $name" "${cmd[@]}"
	"${cmd[@]}" 2>"$out/instance-$name.log" &
	inst_pid=$!
	cluster_pids+=("$inst_pid")
}

# cluster_run NAME KIND BINARY FSYNC TARGET LOADGEN-FLAGS...: one run on a
# fresh Redis with instances A and B of BINARY; subscribers (if any) go to
# A, publishes to TARGET (A or B).
cluster_run() {
	local name=$1 kind=$2 bin=$3 fsync=$4 target=$5
	shift 5
	echo "== $name"
	start_redis "$fsync"
	start_instance "$name-a" "$bin"
	local a_port=$inst_port a_pid=$inst_pid
	start_instance "$name-b" "$bin"
	local b_port=$inst_port b_pid=$inst_pid
	local pub_port=$b_port measured=$a_pid
	if [ "$target" = A ]; then
		pub_port=$a_port
	fi
	if [ "$kind" = C3 ]; then
		measured=$b_pid
	fi
	local cmd=(taskset -c "$gen_cpu" "$out/loadgen" run -scenario "$kind" -name "$name" -store "redis appendfsync=$fsync"
		-addr "127.0.0.1:$a_port" -pub-addr "127.0.0.1:$pub_port" -server-pid "$measured" -server-cpu "$server_cpu"
		-gen-cpu "$gen_cpu" -out "$out/$name.json" "$@")
	record "$name: load" "${cmd[@]}"
	timeout 180 "${cmd[@]}" || echo "run.sh: $name failed (exit $?)" >&2
	stop_cluster
}

# redis_floor NAME FSYNC DEPTH: redis-benchmark's XADD from the instances'
# core, 64 clients, DEPTH commands in flight per client.
redis_floor() {
	local name=$1 fsync=$2 depth=$3 n=20000
	[ "$depth" -gt 1 ] && n=200000
	echo "== $name"
	start_redis "$fsync"
	local cmd=(taskset -c "$server_cpu" redis-benchmark -h 127.0.0.1 -p "$redis_port" -c 64 -n "$n" -P "$depth" --csv
		XADD bench:floor '*' info "$(printf 'x%.0s' $(seq 100))")
	record "$name" "${cmd[@]}"
	"${cmd[@]}" >"$out/$name.csv" || echo "run.sh: $name failed (exit $?)" >&2
	stop_cluster
}

# build_baseline builds the server at BENCH_BASELINE from an export of
# that revision (no checkout, no worktree); sets baseline_rev.
build_baseline() {
	baseline_rev=$(git rev-parse --short "${BENCH_BASELINE:-$(git merge-base HEAD main)}")
	echo "building the server at $baseline_rev for comparison"
	rm -rf "$out/baseline-src"
	mkdir -p "$out/baseline-src"
	git archive "$baseline_rev" | tar -x -C "$out/baseline-src"
	(cd "$out/baseline-src" && go build -o "$out/factstream-base" .)
	rm -rf "$out/baseline-src"
}

run_cluster() {
	local rounds=${BENCH_CLUSTER_ROUNDS:-3} fsync round suffix
	for fsync in always everysec; do
		for round in $(seq "$rounds"); do
			suffix=$(run_suffix "$round")
			# Alternate which build goes first.
			if [ $((round % 2)) -eq 1 ]; then
				cluster_run "C3-new-$fsync$suffix" C3 "$out/factstream" "$fsync" B -pubs 64 -duration 10s
				cluster_run "C3-base-$fsync$suffix" C3 "$out/factstream-base" "$fsync" B -pubs 64 -duration 10s
			else
				cluster_run "C3-base-$fsync$suffix" C3 "$out/factstream-base" "$fsync" B -pubs 64 -duration 10s
				cluster_run "C3-new-$fsync$suffix" C3 "$out/factstream" "$fsync" B -pubs 64 -duration 10s
			fi
			# At most 64 subscribers wait for their snapshot at once: each
			# snapshot reads Redis through the instance's pool of connections,
			# and a thousand at once on a busy machine outwait its pool
			# timeout (503, which a browser would retry).
			cluster_run "C1-$fsync$suffix" C1 "$out/factstream" "$fsync" B -subs 1000 -facts 2000 -rate 200 -pubs 16 -inflight 64
			cluster_run "C2-$fsync$suffix" C2 "$out/factstream" "$fsync" A -subs 1000 -facts 2000 -rate 200 -pubs 16 -inflight 64
			redis_floor "floor-$fsync-P1$suffix" "$fsync" 1
			redis_floor "floor-$fsync-P32$suffix" "$fsync" 32
		done
	done
}

# cluster_report writes the cluster section of BENCHMARKS.md from the
# results in $out.
cluster_report() {
	# shellcheck source=/dev/null
	. "$out/cluster.env"
	local results=() floors=() f
	for f in "$out"/C[123]-*.json; do
		[ -e "$f" ] && results+=("$f")
	done
	for f in "$out"/floor-*.csv; do
		[ -e "$f" ] && floors+=(-floor "$(basename "$f" .csv)=$f")
	done
	"$out/loadgen" cluster-report -out BENCHMARKS.md -date "$run_date" -revision "$run_revision" -baseline "$baseline_desc" \
		-machine "$(nproc --all) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) memory, Redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')" \
		-busy "$busy_desc" -commands "$out/cluster-commands.txt" -notes bench/cluster-analysis.md "${floors[@]}" "${results[@]}"
	echo "wrote the cluster section of BENCHMARKS.md"
}

# ---- this build beside an earlier one ----------------------------------
#
# S1, S3 and S4 of this build and of BENCH_BASELINE, in turns, scenario by
# scenario: this build first in odd rounds, the other first in even ones,
# so that a drift of the host's speed over the minutes reaches both. S1
# with the takeover writer off runs in the same rounds, on this build.

# compare_run BUILD SUFFIX NAME KIND STORE LOADGEN-FLAGS...: one scenario of
# BUILD (new, base or takeover-off), named NAME-BUILD and SUFFIX.
compare_run() {
	local build=$1 suffix=$2 name=$3
	shift 3
	server_bin=$out/factstream
	case $build in
	base) server_bin=$out/factstream-base ;;
	takeover-off) server_flags=(--stream-takeover=false) ;;
	esac
	[ "${2#bolt:}" = "$2" ] || rm -rf "$out/bolt"
	scenario "$name-$build$suffix" "$@"
	rm -rf "$out/bolt"
	echo "$out/$name-$build$suffix.json" >>"$out/compare-order.txt"
	server_bin=
	server_flags=()
}

run_compare() {
	local rounds=${BENCH_COMPARE_ROUNDS:-3} round suffix builds b bolt="bolt:${out#"$root"/}/bolt/facts.db"
	for round in $(seq "$rounds"); do
		suffix=$(run_suffix "$round")
		builds=(new base)
		[ $((round % 2)) -eq 1 ] || builds=(base new)
		for b in "${builds[@]}"; do
			compare_run "$b" "$suffix" S1-10000 S1 memory: -subs 10000 -idle 10s
		done
		compare_run takeover-off "$suffix" S1-10000 S1 memory: -subs 10000 -idle 10s
		for b in "${builds[@]}"; do
			compare_run "$b" "$suffix" S1-19000 S1 memory: -subs 19000 -idle 10s
		done
		for b in "${builds[@]}"; do
			compare_run "$b" "$suffix" S3 S3 memory: -subs 10000 -facts 200 -pubs 4
		done
		for b in "${builds[@]}"; do
			compare_run "$b" "$suffix" S4-memory S4 memory: -pubs 64 -duration 10s
		done
		for b in "${builds[@]}"; do
			compare_run "$b" "$suffix" S4-bolt S4 "$bolt" -pubs 64 -duration 10s
		done
	done
	# S3 with a goroutine per stream takes minutes on a busy machine, so
	# it runs once, after the rounds, with more time to drain.
	run_timeout=330
	compare_run takeover-off "" S3 S3 memory: -subs 10000 -facts 200 -pubs 4 -drain 150s
	run_timeout=180
}

# compare_report writes the comparison's section of BENCHMARKS.md from the
# results in $out.
compare_report() {
	# shellcheck source=/dev/null
	. "$out/compare.env"
	local results=() f
	while read -r f; do
		results+=("$f")
	done <"$out/compare-order.txt"
	"$out/loadgen" compare-report -out BENCHMARKS.md -title "$compare_title" -date "$run_date" -revision "$run_revision" \
		-baseline "$baseline_desc" -busy "$busy_desc" \
		-machine "$(nproc --all) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) memory, $(go version | cut -d' ' -f3-)" \
		-commands "$out/commands.txt" -notes bench/compare-analysis.md "${results[@]}"
	echo "wrote the comparison's section of BENCHMARKS.md"
}

if [ "${1:-}" = compare ]; then
	# Its own work directory: the results of the full run stay for
	# --report-only.
	out=$out/compare
	rel_out=${out#"$root"/}
	if [ "${2:-}" != --report-only ]; then
		prepare compare
		rm -f "$out/compare-order.txt"
		build_baseline
		wait_quiet
		cpu_before=$(cpu_line)
		started=$(date +%s)
		run_compare
		steal_during=$(steal_pct "$cpu_before" "$(cpu_line)")
		load_after=$(cut -d' ' -f1-3 /proc/loadavg)
		busy_after=$(busy_pct)
		{
			printf 'run_date=%q\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
			printf 'run_revision=%q\n' "$(server_revision)"
			printf 'compare_title=%q\n' "${BENCH_COMPARE_TITLE:-This build beside an earlier one}"
			printf 'baseline_desc=%q\n' "$baseline_rev ($(git log -1 --format=%cd --date=short "$baseline_rev"), ${BENCH_BASELINE_NAME:-the previous build})"
			printf 'busy_desc=%q\n' "before the run, ${busy_first}% of both cores busy with other work; after waiting ${waited} s (BENCH_WAIT_QUIET=${BENCH_WAIT_QUIET:-0}) still ${busy_before}% (load average $load_before); ${busy_after}% right after the run (load average $load_after, the benchmark's own processes included); ${steal_during}% steal during it; the run took $((($(date +%s) - started + 30) / 60)) min"
		} >"$out/compare.env"
	fi
	compare_report
	exit 0
fi

if [ "${1:-}" = cluster ]; then
	command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || {
		echo "run.sh: cluster needs redis-server and redis-benchmark" >&2
		exit 1
	}
	if [ "${2:-}" != --report-only ]; then
		trap stop_cluster EXIT
		prepare cluster
		rm -f "$out"/C[123]-*.json "$out"/floor-*.csv
		build_baseline
		wait_quiet
		cpu_before=$(cpu_line)
		run_cluster
		steal_during=$(steal_pct "$cpu_before" "$(cpu_line)")
		load_after=$(cut -d' ' -f1-3 /proc/loadavg)
		busy_after=$(busy_pct)
		cp "$out/commands.txt" "$out/cluster-commands.txt"
		# busy_pct reads the cores over a moment: more than a few percent
		# before or after the run means something else was running.
		local_note="Nothing else ran on the machine"
		if [ "${busy_before%.*}" -gt 5 ] || [ "${busy_after%.*}" -gt 5 ]; then
			local_note="Other work shared the machine"
		fi
		{
			printf 'run_date=%q\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
			printf 'run_revision=%q\n' "$(server_revision)"
			printf 'baseline_desc=%q\n' "$baseline_rev ($(git log -1 --format=%cd --date=short "$baseline_rev"), the build before group commit for Redis)"
			printf 'busy_desc=%q\n' "${busy_before}% of both cores busy before the run (load average $load_before), ${busy_after}% after it (load average $load_after); ${steal_during}% steal during it. $local_note; the host's speed drifts all the same: compare the two builds with each other, side by side, rather than with figures of other runs"
		} >"$out/cluster.env"
	fi
	cluster_report
	exit 0
fi

if [ "${1:-}" = --report-only ]; then
	write_report
	exit 0
fi
only=("$@")
prof_pid=
prepare "$@"
wait_quiet
calibration_before=$("$out/loadgen" calibrate -cpu-a "$server_cpu" -cpu-b "$gen_cpu" -json "$out/calibration-before.json")
cpu_before=$(cpu_line)
run_scenarios
steal_during=$(steal_pct "$cpu_before" "$(cpu_line)")
calibration_after=$("$out/loadgen" calibrate -cpu-a "$server_cpu" -cpu-b "$gen_cpu" -json "$out/calibration-after.json")
write_notes
write_report
