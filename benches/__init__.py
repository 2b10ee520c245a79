"""syshub benchmark harness: ``python -m benches [--quick] [--scenario NAME] [--out DIR]``.

Scenarios live in ``benches/scenarios``; the C workload generator in
``benches/workloads/loop.c``; the C + libbpf ceiling in ``benches/ceiling``.
See docs/benchmarks.md."""
