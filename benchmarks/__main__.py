"""``python -m benchmarks [--quick] [--json] [--only NAME[,NAME...]]``: every benchmark, one
table (the same command as ``harness bench``)."""

from harness.bench import bench

if __name__ == "__main__":
    bench.main(prog_name="python -m benchmarks")
