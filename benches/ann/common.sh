# Sourced by the benches/ann/*-steps.sh scripts: paths, the peers' Python, the bench
# driver, and `step`, which logs the time and load average and appends the step's
# JSON output to $res. Expects `rows` and `res` to be set by the caller.
root=$PWD; out=$root/benches/out/ann; data=$out/data/$rows
py=("$root/benches/.venv-ann/bin/python" "$root/benches/ann/peers.py")
bench=${BENCH:?set BENCH to the ann bench driver (cargo build --release -p dredge-ann --example ann_bench: target/release/examples/ann_bench)}
step() { echo "## $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg): $*"; "$@" | tee -a "$res"; }
