"""Speed of every model type at real RWKV shapes, one table: `rwkv-cpp bench` on random
RWKV-7 (and RWKV-6) models of the 0.4B and 1.5B shapes, converted and quantized to each type
(made once, cached outside the repository), next to the rwkv.cpp and llama.cpp figures.

    python tools/bench_matrix.py                              # everything (long: makes ~20 GB of models)
    python tools/bench_matrix.py --archs 7 --shapes 0.4B --types FP16 Q5_1 --threads 1 2
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from rwkv_cpp.bench import PEERS_DECODE_MS, PEERS_PROMPT_TPS, measure, model_for_shape  # noqa: E402

TYPES = ["FP32", "FP16", "Q8_0", "Q5_1", "Q5_0", "Q4_1", "Q4_0"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", nargs="+", default=["7", "6"], choices=["6", "7"])
    parser.add_argument("--shapes", nargs="+", default=["0.4B", "1.5B"], choices=["0.1B", "0.4B", "1.5B", "3B"])
    parser.add_argument("--types", nargs="+", default=TYPES, choices=TYPES)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--decode-tokens", type=int, default=32)
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--cache-dir", default=os.path.join(os.path.expanduser("~"), ".cache", "rwkv_cpp", "bench"))
    args = parser.parse_args()

    print("| arch | shape | type | threads | decode ms | of floor | rwkv.cpp / llama.cpp ms | prompt tok/s | "
          "of peak | rwkv.cpp / llama.cpp tok/s | peak RSS / file |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for arch in args.archs:
        for shape in args.shapes:
            for type_name in args.types:
                path = model_for_shape(shape, type_name, arch, args.cache_dir)
                result = measure(path, args.threads, args.decode_tokens, args.prompt_tokens)
                peers_ms = PEERS_DECODE_MS.get((shape, type_name))
                peers_tps = PEERS_PROMPT_TPS.get((shape, type_name))
                for row in result["rows"]:
                    peer_cells = ("%s / %s" % peers_ms if peers_ms and row["threads"] == 2 else "",
                                  "%s / %s" % peers_tps if peers_tps and row["threads"] == 2 else "")
                    print(f"| v{arch} | {shape} | {type_name} | {row['threads']} | {row['decode_ms']:.1f} | "
                          f"{row['decode_of_floor']:.0%} | {peer_cells[0]} | {row['prompt_tps']:.1f} | "
                          f"{row['prompt_of_peak']:.0%} | {peer_cells[1]} | "
                          f"{row['peak_rss_bytes'] / result['file_bytes']:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
