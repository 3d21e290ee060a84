"""The rwkv-cpp command line: one entry point with subcommands (also `python -m rwkv_cpp`)."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Optional, Sequence

from .quantize import FORMATS as QUANTIZED_FORMATS

EXAMPLES = """examples:
  rwkv-cpp generate "ROMEO:"
  rwkv-cpp convert RWKV-x070-World-0.4B.pth model.bin --type FP16
  rwkv-cpp quantize model.bin model-Q5_1.bin Q5_1
  rwkv-cpp info model.bin
  rwkv-cpp chat model.bin
  rwkv-cpp tokenize "Hello, world"
  rwkv-cpp perplexity model.bin held-out.txt
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
    if args.gpu_layers < 0:
        raise UsageError(f"--gpu-layers must be 0 or more, not {args.gpu_layers}")
    run(args.model, args.shape, args.type, args.threads, args.decode_tokens, args.prompt_tokens, cache_dir, args.gpu_layers,
        arch=args.arch, as_json=args.json)
    return 0


def _open_model(args: argparse.Namespace):
    """The model of --model (or the positional MODEL), else the shipped demo model."""
    from .model import Model, demo_model_path

    path = getattr(args, "model", None) or demo_model_path()
    model = Model(path, thread_count=args.threads)
    if getattr(args, "tokenizer", None):
        from .tokenizers import tokenizer_for_vocab_size

        model.tokenizer = tokenizer_for_vocab_size(model.n_vocab, args.tokenizer)
    return model


def _sampling(args: argparse.Namespace) -> dict:
    sampling = {name: getattr(args, name) for name in (
        "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "presence_penalty",
        "frequency_penalty", "penalty_decay", "seed", "max_tokens") if getattr(args, name, None) is not None}
    if getattr(args, "stop", None):
        sampling["stop"] = args.stop
    return sampling


def _cmd_generate(args: argparse.Namespace) -> int:
    with _open_model(args) as model:
        state = model.load_state(args.state_in) if args.state_in else None
        stream = model.generate(args.prompt, state=state, **_sampling(args))
        if not args.no_echo:
            print(args.prompt, end="", flush=True)
        for piece in stream:
            print(piece, end="", flush=True)
        print()
        if args.state_out:
            model.save_state(args.state_out, stream.state)
    return 0


def _cmd_chat(args: argparse.Namespace) -> int:
    from .chat import run

    with _open_model(args) as model:
        return run(model, **_sampling(args))


def _cmd_tokenize(args: argparse.Namespace) -> int:
    from .tokenizers import tokenizer_for_vocab_size

    if args.model:
        from .model import Model

        with Model(args.model, thread_count=1) as model:
            tokenizer = tokenizer_for_vocab_size(model.n_vocab, args.tokenizer)
    else:
        tokenizer = tokenizer_for_vocab_size(65536, args.tokenizer or "world")
    if args.decode:
        try:
            ids = [int(t) for t in args.text.replace(",", " ").split()]
        except ValueError:
            raise UsageError("--decode expects token ids separated by spaces or commas") from None
        print(tokenizer.decode(ids))
    else:
        ids = tokenizer.encode(args.text)
        print(" ".join(map(str, ids)))
        print(f"({len(ids)} tokens, {len(args.text.encode())} bytes)", file=sys.stderr)
    return 0


def _cmd_perplexity(args: argparse.Namespace) -> int:
    from .perplexity import perplexity

    with open(args.text_file, "rb") as f:
        text = f.read()
    with _open_model(args) as model:
        tokens = model.tokenizer.encode(text)
        if len(tokens) < 2:
            raise UsageError(f"{args.text_file} is too short: it needs at least 2 tokens")
        if args.max_tokens:
            tokens = tokens[:args.max_tokens]
        with _progress(len(tokens) - 1, "tokens", args.quiet) as bar:
            result = perplexity(model, tokens, chunk_size=args.chunk_size, progress=bar)
    print(f"{result.n_tokens} tokens: {result.mean_nll:.4f} nats/token, perplexity {result.perplexity:.3f}")
    return 0


class _progress:
    """A tqdm bar when tqdm is installed and wanted, else nothing; called with a count."""

    def __init__(self, total: int, unit: str, quiet: bool) -> None:
        self._bar = None
        if not quiet:
            try:
                from tqdm import tqdm

                self._bar = tqdm(total=total, unit=unit, file=sys.stderr)
            except ImportError:
                pass

    def __enter__(self):
        return self

    def __call__(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def __exit__(self, *exc_info) -> None:
        if self._bar is not None:
            self._bar.close()


def _add_sampling_arguments(parser: argparse.ArgumentParser, *, max_tokens: int) -> None:
    group = parser.add_argument_group("sampling")
    group.add_argument("--max-tokens", type=int, default=max_tokens)
    group.add_argument("--temperature", type=float, help="0 is greedy (default 1.0)")
    group.add_argument("--top-p", type=float, help="nucleus sampling (default 0.85)")
    group.add_argument("--top-k", type=int)
    group.add_argument("--min-p", type=float)
    group.add_argument("--repetition-penalty", type=float)
    group.add_argument("--presence-penalty", type=float)
    group.add_argument("--frequency-penalty", type=float)
    group.add_argument("--penalty-decay", type=float)
    group.add_argument("--seed", type=int, help="same seed, same text")
    group.add_argument("--stop", action="append", help="stop when this text appears (repeatable)")


def _add_model_arguments(parser: argparse.ArgumentParser, *, positional: bool = False) -> None:
    if positional:
        parser.add_argument("model", nargs="?", help="a model file (default: the shipped Shakespeare demo model)")
    else:
        parser.add_argument("-m", "--model", help="a model file (default: the shipped Shakespeare demo model)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--tokenizer", choices=["world", "neox", "bytes"], help="override the tokenizer picked from the vocabulary size")


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
                                epilog="examples:\n  rwkv-cpp bench model.bin\n  rwkv-cpp bench --shape 1.5B --type Q5_1 --threads 1 2\n"
                                       "  rwkv-cpp bench --shape 3B --gpu-layers 33 --threads 2",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    bench.add_argument("model", nargs="?", help="a model file (default: a random model of --shape)")
    bench.add_argument("--shape", choices=["0.1B", "0.4B", "1.5B", "3B"], help="make (once, cached) a random RWKV-7 model of this size")
    bench.add_argument("--type", default="FP16", choices=["FP32", "FP16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"])
    bench.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    bench.add_argument("--decode-tokens", type=int, default=32)
    bench.add_argument("--prompt-tokens", type=int, default=512)
    bench.add_argument("--arch", default="7", choices=["6", "7"], help="architecture of the random --shape model")
    bench.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    bench.add_argument("--cache-dir", default=None)
    bench.add_argument("--gpu-layers", type=int, default=0, metavar="N",
                       help="the first N layers on the GPU (the head too when N > n_layer), reported against the GPU's peaks")
    bench.set_defaults(run=_cmd_bench)

    generate = commands.add_parser("generate", help="continue a prompt (streams text)",
                                   epilog='examples:\n  rwkv-cpp generate "ROMEO:"\n'
                                          '  rwkv-cpp generate -m model.bin "The Eiffel tower is" --temperature 0.7 --max-tokens 100',
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    generate.add_argument("prompt")
    _add_model_arguments(generate)
    _add_sampling_arguments(generate, max_tokens=200)
    generate.add_argument("--state-in", help="continue from a state saved with --state-out or /save")
    generate.add_argument("--state-out", help="save the state after the generation to this file")
    generate.add_argument("--no-echo", action="store_true", help="do not print the prompt first")
    generate.set_defaults(run=_cmd_generate)

    chat = commands.add_parser("chat", help="chat with a model (User: / Assistant: turns; /help inside)",
                               epilog="example:\n  rwkv-cpp chat RWKV-x070-World-1.5B-Q5_1.bin --temperature 1.0 --top-p 0.3",
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_model_arguments(chat, positional=True)
    _add_sampling_arguments(chat, max_tokens=500)
    chat.set_defaults(run=_cmd_chat)

    tokenize = commands.add_parser("tokenize", help="text to token ids (or back with --decode)",
                                   epilog='examples:\n  rwkv-cpp tokenize "Hello, world"\n  rwkv-cpp tokenize --decode "33155 45 1793"',
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    tokenize.add_argument("text")
    tokenize.add_argument("-m", "--model", help="use the tokenizer for this model's vocabulary (default: World)")
    tokenize.add_argument("--tokenizer", choices=["world", "neox", "bytes"])
    tokenize.add_argument("--decode", action="store_true", help="TEXT is token ids: print their text")
    tokenize.set_defaults(run=_cmd_tokenize)

    perplexity = commands.add_parser("perplexity", help="a model's perplexity on a text file",
                                     epilog="example:\n  rwkv-cpp perplexity model.bin held-out.txt",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_model_arguments(perplexity, positional=True)
    perplexity.add_argument("text_file")
    perplexity.add_argument("--chunk-size", type=int, default=256)
    perplexity.add_argument("--max-tokens", type=int, help="score only the first N tokens")
    perplexity.add_argument("--quiet", action="store_true", help="no progress bar")
    perplexity.set_defaults(run=_cmd_perplexity)
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
