#!/usr/bin/env python3
"""What one thread ran while the other waited, from `perf script -F tid,time,ip,sym` output.

The "Attention in place" figures of docs/benchmarks.md: the share of samples where one of a forward's two
threads waited (in rayon's work search or the scheduler), and what the other thread's nearest
sample (within 0.5 ms) was doing then. Usage:

    perf record -o perf.data <native_predict binary> --bench    # as in docs/benchmarks.md
    perf script -i perf.data -F tid,time,ip,sym > samples.txt
    python3 scripts/perf_waiting.py samples.txt
"""
import bisect
import collections
import sys

# Symbols of a thread with nothing to do: rayon's search for work, yielding, the scheduler.
WAITING = ("sched", "yield", "steal", "find_work", "with_handle", "futex", "syscall", "schedule",
           "switch", "spin_unlock", "irq", "Chain", "try_advance", "pop", "x64_sys_call", "its_return")


def main(path):
    samples = collections.defaultdict(list)
    for line in open(path):
        parts = line.split(None, 3)
        if len(parts) == 4:
            samples[int(parts[0])].append((float(parts[1].rstrip(":")), parts[3].strip()))
    if len(samples) < 2:
        sys.exit("need samples of two threads")
    # The forward's two threads are the busiest two (the main thread only loads the bundle).
    a, b = sorted(samples, key=lambda t: len(samples[t]), reverse=True)[:2]
    tally, waiting = collections.Counter(), 0
    for this, other in ((a, b), (b, a)):
        times = [t for t, _ in samples[other]]
        for t, sym in samples[this]:
            if not any(w in sym for w in WAITING):
                continue
            i = bisect.bisect_left(times, t)
            if 0 < i < len(times) and times[i] - times[i - 1] < 0.0005:
                j = i if times[i] - t < t - times[i - 1] else i - 1
                tally[samples[other][j][1][:90]] += 1
                waiting += 1
    total = len(samples[a]) + len(samples[b])
    print(f"samples of one thread waiting: {waiting} of {total} ({100 * waiting / total:.1f} %)")
    for sym, n in tally.most_common(25):
        print(f"{100 * n / max(waiting, 1):5.1f} % {sym}")


if __name__ == "__main__":
    main(sys.argv[1])
