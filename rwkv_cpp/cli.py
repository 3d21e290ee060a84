"""The rwkv-cpp command line: one entry point with subcommands (also `python -m rwkv_cpp`)."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Optional, Sequence

import numpy as np

from .quantize import FORMATS as QUANTIZED_FORMATS

EXAMPLES = """examples:
  rwkv-cpp convert RWKV-x070-World-0.4B.pth model.bin --type FP16
  rwkv-cpp quantize model.bin model-Q5_1.bin Q5_1
  rwkv-cpp info model.bin
  rwkv-cpp predict model.bin "The capital of France is"
  rwkv-cpp predict model.bin --tokens 34 105 110
"""


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit status 2."""


def _cmd_convert(args: argparse.Namespace) -> int:
    from .convert import convert_checkpoint

    summary = convert_checkpoint(args.input, args.output, args.type, progress=not args.quiet)
    if not args.quiet:
        print(f"wrote {args.output}: RWKV v{summary['arch_version']}, {summary['n_layer']} layers, "
              f"n_embed {summary['n_embed']}, vocabulary {summary['n_vocab']}, {summary['data_type']}, "
              f"{summary['n_bytes'] / 2**20:.1f} MiB")
    return 0


def _cmd_quantize(args: argparse.Namespace) -> int:
    from .quantize import describe_summary, quantize_model_file

    summary = quantize_model_file(args.input, args.output, args.format, head_format=args.head,
                                  progress=not args.quiet)
    if not args.quiet:
        print(describe_summary(args.output, summary))
    return 0


def _describe(model) -> str:
    lines = [
        f"architecture  RWKV v{model.arch_version}",
        f"layers        {model.n_layer}",
        f"n_embed       {model.n_embed}",
        f"vocabulary    {model.n_vocab}",
        f"state floats  {model.state_len} ({model.state_len * 4 / 1024:.1f} KiB)",
    ]
    return "\n".join(lines)


def _cmd_info(args: argparse.Namespace) -> int:
    import collections
    import os

    from .model import Model, system_info
    from .model_file import read_tensor_table

    with Model(args.model, thread_count=1) as model:
        header, tensors = read_tensor_table(args.model)
        print(f"file          {args.model} ({os.path.getsize(args.model) / 2**20:.1f} MiB, format version {header.version})")
        print(_describe(model))
    by_type = collections.Counter()
    for t in tensors:
        by_type[t.type_name] += t.n_bytes
    print("tensor types  " + ", ".join(f"{name} {n / 2**20:.1f} MiB" for name, n in by_type.most_common()))
    print(f"system        {system_info()}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    import os

    from .bench import SHAPES, run

    if args.model is None and args.shape is None:
        raise UsageError("give a model file or --shape (" + ", ".join(SHAPES) + ")")
    cache_dir = args.cache_dir or os.path.join(os.path.expanduser("~"), ".cache", "rwkv_cpp", "bench")
    run(args.model, args.shape, args.type, args.threads, args.decode_tokens, args.prompt_tokens, cache_dir)
    return 0


def _prompt_tokens(args: argparse.Namespace, n_vocab: int) -> list[int]:
    if args.tokens:
        return args.tokens
    if args.prompt is None:
        raise UsageError("give a prompt or --tokens")
    if n_vocab != 256:
        raise UsageError(f"this model has a {n_vocab}-token vocabulary: give token ids with --tokens "
                         "(text prompts need the tokenizer, coming with text generation)")
    return list(args.prompt.encode("utf-8"))


def _token_text(token: int, n_vocab: int) -> str:
    return repr(bytes([token]).decode("latin-1")) if n_vocab == 256 else str(token)


def _cmd_predict(args: argparse.Namespace) -> int:
    from .model import Model

    with Model(args.model, thread_count=args.threads) as model:
        tokens = _prompt_tokens(args, model.n_vocab)
        if not tokens:
            raise UsageError("the prompt is empty")
        logits, _ = model.eval_sequence(tokens)
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
    print(f"next-token prediction after {len(tokens)} tokens:")
    for token in np.argsort(-probabilities)[: args.top]:
        print(f"  {int(token):6d} {_token_text(int(token), len(logits)):>8}  p={probabilities[token]:.4f}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rwkv-cpp", description="Run RWKV language models on the CPU.",
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    convert = commands.add_parser("convert", help="convert a PyTorch (.pth) or .safetensors checkpoint to rwkv.cpp's .bin",
                                  epilog="example:\n  rwkv-cpp convert RWKV-x070-World-0.4B.pth model.bin --type FP16",
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    convert.add_argument("input")
    convert.add_argument("output")
    convert.add_argument("--type", default="FP16", choices=["FP16", "FP32", "float16", "float32"])
    convert.add_argument("--quiet", action="store_true", help="no progress bar")
    convert.set_defaults(run=_cmd_convert)

    quantize = commands.add_parser(
        "quantize", help="quantize an FP32/FP16 .bin model to Q4_0, Q4_1, Q5_0, Q5_1 or Q8_0",
        description="Quantize the 2-D matrices of an FP32/FP16 model file, as rwkv.cpp does "
                    "(emb.weight and head.weight keep their type unless --head is given).",
        epilog="examples:\n  rwkv-cpp quantize model-FP16.bin model-Q5_1.bin Q5_1\n"
               "  rwkv-cpp quantize model-FP16.bin model-Q5_1.bin Q5_1 --head Q8_0",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    quantize.add_argument("input")
    quantize.add_argument("output")
    # The library checks the names (upper case only, as rwkv.cpp): one-line error on a bad one.
    quantize.add_argument("format", metavar="FORMAT", help=", ".join(QUANTIZED_FORMATS))
    quantize.add_argument("--head", metavar="FORMAT",
                          help="quantize head.weight too (e.g. Q8_0: smaller file, slightly larger error)")
    quantize.add_argument("--quiet", action="store_true", help="no progress bar, no summary")
    quantize.set_defaults(run=_cmd_quantize)

    info = commands.add_parser("info", help="show a model file's architecture and shape",
                               epilog="example:\n  rwkv-cpp info model.bin", formatter_class=argparse.RawDescriptionHelpFormatter)
    info.add_argument("model")
    info.set_defaults(run=_cmd_info)

    bench = commands.add_parser("bench", help="decode and prompt speed against this machine's memory bandwidth and compute peak",
                                epilog="examples:\n  rwkv-cpp bench model.bin\n  rwkv-cpp bench --shape 1.5B --type Q5_1 --threads 1 2",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    bench.add_argument("model", nargs="?", help="a model file (default: a random model of --shape)")
    bench.add_argument("--shape", choices=["0.1B", "0.4B", "1.5B", "3B"], help="make (once, cached) a random RWKV-7 model of this size")
    bench.add_argument("--type", default="FP16", choices=["FP32", "FP16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"])
    bench.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    bench.add_argument("--decode-tokens", type=int, default=32)
    bench.add_argument("--prompt-tokens", type=int, default=512)
    bench.add_argument("--cache-dir", default=None)
    bench.set_defaults(run=_cmd_bench)

    predict = commands.add_parser("predict", help="print the most likely next tokens after a prompt",
                                  epilog='examples:\n  rwkv-cpp predict model.bin "hello"\n  rwkv-cpp predict model.bin --tokens 34 105 110',
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    predict.add_argument("model")
    predict.add_argument("prompt", nargs="?", help="text (byte-level models) ")
    predict.add_argument("--tokens", type=int, nargs="+", help="token ids instead of text")
    predict.add_argument("--top", type=int, default=5)
    predict.add_argument("--threads", type=int, default=None)
    predict.set_defaults(run=_cmd_predict)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    from .errors import RwkvError

    args = _parser().parse_args(argv)
    user_errors: tuple[type[BaseException], ...] = (UsageError, RwkvError, OSError, ValueError)
    try:
        run: Callable[[argparse.Namespace], int] = args.run
        return run(args)
    except user_errors as e:
        print(f"rwkv-cpp {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
