"""Fan-out benchmark: the generated runtime against its peers, side by side in one run.

    python -m bench.fanout [--smoke] [--repeats N] [--output bench/results/fanout.md]
    python -m bench.fanout --processes 2   # scale-out: the generated app in N processes
    python -m bench.fanout --streams 10000 # capacity: 10,000 streams, memory and delivery

See the README's "Benchmarks" for what each server is and what the table says.
"""
