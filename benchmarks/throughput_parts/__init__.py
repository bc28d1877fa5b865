"""The parts of `benchmarks/throughput.py`, the script that runs them.

    flops     the models measured, their shapes and analytic FLOP counts
    timing    batches, warm-up, timed passes, the machine's matmul peak
    builders  one predict function per implementation (kbert and its peers)
    workers   rows planned in the parent, measured in one subprocess per backend
    report    the table, the ratios and the markdown file
    cli       the command line
"""
