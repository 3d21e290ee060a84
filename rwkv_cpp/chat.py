"""`rwkv-cpp chat`: a conversation in the User: / Assistant: turn format RWKV World models are
trained on, with the state kept between turns (the history is never re-read)."""

from __future__ import annotations

import sys
from typing import Optional, TextIO

import numpy as np

HELP = """commands:
  /reset        forget the conversation
  /save FILE    save the conversation state to FILE
  /load FILE    continue a conversation saved with /save
  /help         this text
  /quit         leave (or Ctrl-D)
Ctrl-C stops the reply being written, not the program."""


class Chat:
    """One conversation: feed user messages, stream the replies.

    Example::

        chat = Chat(model, temperature=1.0, top_p=0.3)
        for piece in chat.reply("Hello!"):
            print(piece, end="")
    """

    def __init__(self, model, **sampling) -> None:
        self.model = model
        self.sampling = dict(sampling)
        self.sampling.setdefault("stop", ["\n\n"])
        self.sampling.setdefault("max_tokens", 500)
        self.state: Optional[np.ndarray] = None

    def reset(self) -> None:
        self.state = None

    def reply(self, message: str):
        """Streams the assistant's answer to message; the state then includes both."""
        prompt = f"User: {message.strip()}\n\nAssistant:"
        stream = self.model.generate(prompt, state=self.state, **self.sampling)
        try:
            for piece in stream:
                yield piece
        finally:
            # The state after the reply: the stop string "\n\n" was read too, so the next
            # "User:" follows the trained format. A reply cut short keeps what was read.
            self.state = stream.state
            if stream.stop_reason != "stop":
                self._end_turn()

    def _end_turn(self) -> None:
        tokens = self.model.tokenizer.encode("\n\n")
        _, self.state = self.model.eval_sequence(tokens, self.state)

    def save(self, path: str) -> None:
        self.model.save_state(path, self.state if self.state is not None else self.model.init_state())

    def load(self, path: str) -> None:
        self.state = self.model.load_state(path)


def run(model, *, input_stream: TextIO = sys.stdin, output: TextIO = sys.stdout, **sampling) -> int:
    """The interactive loop; returns the exit status."""
    from .errors import RwkvError

    chat = Chat(model, **sampling)
    print(f"Chatting with {model.path} (RWKV v{model.arch_version}). /help for commands.", file=output)
    while True:
        print("\nUser: ", end="", file=output, flush=True)
        line = input_stream.readline()
        if not line:
            print(file=output)
            return 0
        line = line.strip()
        if not line:
            continue
        command, _, argument = line.partition(" ")
        if command in ("/quit", "/exit"):
            return 0
        if command == "/help":
            print(HELP, file=output)
            continue
        if command == "/reset":
            chat.reset()
            print("(conversation forgotten)", file=output)
            continue
        if command in ("/save", "/load"):
            if not argument:
                print(f"usage: {command} FILE", file=output)
                continue
            try:
                chat.save(argument) if command == "/save" else chat.load(argument)
                print(f"({'saved to' if command == '/save' else 'loaded'} {argument})", file=output)
            except (RwkvError, OSError) as e:
                print(f"error: {e}", file=output)
            continue
        print("\nAssistant:", end="", file=output, flush=True)
        try:
            for piece in chat.reply(line):
                print(piece, end="", file=output, flush=True)
        except KeyboardInterrupt:
            print(" [stopped]", file=output)
        print(file=output)
