"""Quantize an FP32/FP16 rwkv.cpp model file to Q4_0, Q4_1, Q5_0, Q5_1 or Q8_0.

Same command line as rwkv.cpp's python/quantize.py (plus --head):

    python tools/quantize.py rwkv7-0.1B-FP16.bin rwkv7-0.1B-Q5_1.bin Q5_1
    python tools/quantize.py rwkv7-0.1B-FP16.bin rwkv7-0.1B-Q5_1.bin Q5_1 --head Q8_0
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn, Sequence

try:
    from rwkv_cpp import RwkvError
    from rwkv_cpp.quantize import FORMATS, describe_summary, quantize_model_file
except ImportError:  # run from a checkout without the package installed
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from rwkv_cpp import RwkvError
    from rwkv_cpp.quantize import FORMATS, describe_summary, quantize_model_file


class _OneLineErrorParser(argparse.ArgumentParser):
    """Reports a bad command line as a single `error: ...` line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        fail(message)


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _OneLineErrorParser(
        description="Quantize an FP32/FP16 rwkv.cpp model file (2-D matrices except emb and head).",
        epilog="example: python tools/quantize.py model-FP16.bin model-Q5_1.bin Q5_1 [--head Q8_0]")
    parser.add_argument("src_path", help="FP32 or FP16 rwkv.cpp model file")
    parser.add_argument("dest_path", help="quantized model file to write (replaced if it exists)")
    # The library checks the names (exact upper case, as rwkv.cpp) and says what is wrong.
    parser.add_argument("format_name", help=", ".join(FORMATS))
    parser.add_argument("--head", metavar="FORMAT", help="quantize head.weight too, e.g. Q8_0")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        summary = quantize_model_file(args.src_path, args.dest_path, args.format_name, head_format=args.head)
    except (RwkvError, OSError) as error:
        fail(str(error))
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    print(describe_summary(args.dest_path, summary))


if __name__ == "__main__":
    main()
