"""Convert an RWKV-LM checkpoint (.pth or .safetensors) to an rwkv.cpp .bin file; torch not needed.

Same command line as rwkv.cpp's python/convert_pytorch_to_ggml.py:

    python tools/convert_pytorch_to_ggml.py RWKV-x070-World-0.1B.pth rwkv7-0.1B-FP16.bin FP16
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn, Sequence

try:
    from rwkv_cpp.checkpoint import CheckpointError
    from rwkv_cpp.convert import ConversionError, convert_checkpoint
except ImportError:  # run from a checkout without the package installed
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from rwkv_cpp.checkpoint import CheckpointError
    from rwkv_cpp.convert import ConversionError, convert_checkpoint

DATA_TYPES = ("FP16", "FP32", "float16", "float32")


class _OneLineErrorParser(argparse.ArgumentParser):
    """Reports a bad command line as a single `error: ...` line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        fail(message)


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _OneLineErrorParser(
        description="Convert an RWKV model checkpoint (.pth or .safetensors) to an rwkv.cpp file.",
        epilog="example: python tools/convert_pytorch_to_ggml.py model.pth model-FP16.bin FP16")
    parser.add_argument("src_path", help="PyTorch (.pth) or .safetensors checkpoint")
    parser.add_argument("dest_path", help="rwkv.cpp model file to write (replaced if it exists)")
    parser.add_argument("data_type", nargs="?", default="FP16", choices=DATA_TYPES,
                        metavar="data_type", help="FP16 (default), FP32, float16 or float32")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        summary = convert_checkpoint(args.src_path, args.dest_path, args.data_type)
    except (CheckpointError, ConversionError) as error:
        fail(str(error))
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    print(f"RWKV v{summary['arch_version']}: {summary['n_layer']} layers, n_embed {summary['n_embed']}, "
          f"n_vocab {summary['n_vocab']}; wrote {summary['n_bytes']} bytes ({summary['data_type']}) "
          f"to {args.dest_path}")


if __name__ == "__main__":
    main()
