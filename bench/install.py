"""Benchmark: install a large tgz bundle with ``opendeploy local`` against ``tar -xzf`` plus ``cp -a``.

Generates a bundle of ``--files`` files totalling about ``--size`` MB (default 20,000 files, 500 MB; half
of them incompressible, half text-like), then, ``--repeat`` times, alternately:

- the baseline: ``tar -xzf bundle.tgz`` into a directory, then ``cp -a`` of that directory's contents
  into a destination (what DownloadBundle and Install amount to);
- ``opendeploy local --type tgz`` of the same bundle, whose AppSpec copies everything (``source: /``)
  into a fresh destination, with a fresh deployment root.

Prints the median wall times, the peak resident memory of each (from ``wait4``'s rusage of the process
tree), and the ratio; the target is within 1.5x of the baseline. Quick run: ``--files 2000 --size 50``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

WORDS = [b"deploy", b"revision", b"bundle", b"hook", b"install", b"lifecycle", b"event", b"agent", b"host"]


@dataclass
class Run:
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float


def _run(argv: list[str], **kwargs: object) -> Run:
    """Run a command; its wall time and the peak RSS of its whole process tree."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)  # type: ignore[call-overload]
    output = process.stdout.read() if process.stdout else b""
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({process.returncode}):\n{output.decode(errors='replace')}")
    return Run(elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def _sizes(files: int, total: int, rng: random.Random) -> list[int]:
    # Many small files and a few large ones, like a real application tree.
    weights = [rng.lognormvariate(0, 1.2) for _ in range(files)]
    scale = total / sum(weights)
    return [max(1, int(w * scale)) for w in weights]


def generate(source: Path, destination: Path, files: int, total_bytes: int, seed: int = 42) -> None:
    rng = random.Random(seed)
    (source / "app").mkdir(parents=True)
    appspec = f"version: 0.0\nos: linux\nfiles:\n  - source: /\n    destination: {destination}\n"
    (source / "appspec.yml").write_text(appspec)
    per_dir = 100
    for index, size in enumerate(_sizes(files, total_bytes, rng)):
        directory = source / "app" / f"module-{index // per_dir:04d}"
        if index % per_dir == 0:
            directory.mkdir()
        if index % 2:
            data = os.urandom(size)
        else:
            chunk = b" ".join(rng.choice(WORDS) for _ in range(64)) + b"\n"
            data = (chunk * (size // len(chunk) + 1))[:size]
        (directory / f"file-{index:05d}.dat").write_bytes(data)


def _tree_summary(root: Path) -> tuple[int, int]:
    count = size = 0
    for directory, _, names in os.walk(root):
        for name in names:
            count += 1
            size += os.lstat(os.path.join(directory, name)).st_size
    return count, size


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=20_000, help="number of files in the bundle")
    parser.add_argument("--size", type=float, default=500, help="total size of the files, in MB")
    parser.add_argument("--repeat", type=int, default=3, help="measurements of each side (median reported)")
    parser.add_argument("--workdir", type=Path, default=None, help="where to work (default: a tmp directory)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="opendeploy-bench-", dir=args.workdir))
    try:
        source = work / "source"
        print(f"generating {args.files} files, {args.size:.0f} MB …", flush=True)
        destination = work / "dest"
        generate(source, destination, args.files, int(args.size * 1024 * 1024))
        bundle = work / "bundle.tgz"
        subprocess.run(["tar", "-czf", str(bundle), "-C", str(source), "."], check=True)
        shutil.rmtree(source)
        print(f"bundle: {bundle.stat().st_size / 1024 / 1024:.0f} MB compressed")

        baseline_extract: list[Run] = []
        baseline_copy: list[Run] = []
        ours: list[Run] = []
        for attempt in range(args.repeat):
            # The baseline: what DownloadBundle + Install do, with the standard tools.
            extracted, copied = work / "baseline-extract", work / "baseline-dest"
            for path in (extracted, copied):
                shutil.rmtree(path, ignore_errors=True)
                path.mkdir()
            baseline_extract.append(_run(["tar", "-xzf", str(bundle), "-C", str(extracted)]))
            baseline_copy.append(_run(["cp", "-a", f"{extracted}/.", str(copied)]))

            # opendeploy local, with a fresh deployment root and destination.
            root = work / "root"
            for path in (root, destination):
                shutil.rmtree(path, ignore_errors=True)
            config = work / "agent.yml"
            config.write_text(f":root_dir: {root}\n:log_dir: {work / 'log'}\n")
            command = [sys.executable, "-m", "opendeploy", "local", "-c", str(config)]
            ours.append(_run([*command, "--bundle-location", str(bundle), "--type", "tgz"]))
            print(
                f"  run {attempt + 1}: tar {baseline_extract[-1].seconds:.2f}s"
                f" + cp {baseline_copy[-1].seconds:.2f}s | opendeploy local {ours[-1].seconds:.2f}s",
                flush=True,
            )
        if _tree_summary(copied) != _tree_summary(destination):
            sys.exit("the installed tree differs from tar + cp's")
        count, size = _tree_summary(destination)

        tar_s = statistics.median(r.seconds for r in baseline_extract)
        cp_s = statistics.median(r.seconds for r in baseline_copy)
        base_s = statistics.median(
            a.seconds + b.seconds for a, b in zip(baseline_extract, baseline_copy, strict=True)
        )
        ours_s = statistics.median(r.seconds for r in ours)
        base_rss = max(r.peak_rss_mb for r in baseline_extract + baseline_copy)
        ours_rss = max(r.peak_rss_mb for r in ours)
        base_cpu = statistics.median(
            a.cpu_seconds + b.cpu_seconds for a, b in zip(baseline_extract, baseline_copy, strict=True)
        )
        ours_cpu = statistics.median(r.cpu_seconds for r in ours)
        print()
        load = os.getloadavg()[0]
        print(
            f"installed: {count} files, {size / 1024 / 1024:.0f} MB"
            f" (median of {args.repeat}; load average {load:.1f})"
        )
        print(f"  tar -xzf            {tar_s:7.2f} s")
        print(f"  cp -a               {cp_s:7.2f} s")
        print(f"  tar -xzf + cp -a    {base_s:7.2f} s   CPU {base_cpu:6.2f} s   peak RSS {base_rss:6.1f} MB")
        print(f"  opendeploy local    {ours_s:7.2f} s   CPU {ours_cpu:6.2f} s   peak RSS {ours_rss:6.1f} MB")
        ratio = ours_s / base_s
        verdict = "OK" if ratio <= 1.5 else "MISSED"
        print(f"  ratio               {ratio:7.2f} x   (target: at most 1.50 x) {verdict}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
