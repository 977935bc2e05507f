"""``obliviate chat``: talk to a model, behind a guard or not, as its users would.

The conversation keeps its history (the chat template's turns); a guard's context goes
before the first user message and its filters see every user message and every answer.
Input is bounded: a message is read up to ``MAX_MESSAGE_CHARS`` characters, and the oldest
turns are dropped (then the prompt's start cut) so that prompt and answer fit the model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import torch

from obliviate.data.scenario import evaluation_splits
from obliviate.errors import ObliviateError
from obliviate.guard.guard import Guard, build_guard
from obliviate.models.encoding import PLAIN_TEMPLATE, uses_chat_template
from obliviate.models.loader import LoadedModel, context_tokens, load_model
from obliviate.options import CHAT_NEW_TOKENS, SPLIT
from obliviate.progress import say, warn

#: The longest message read, in characters; the rest of a longer line is dropped.
MAX_MESSAGE_CHARS = 16_000


def read_message(stream: TextIO | None) -> str | None:
    """The next line of ``stream`` (standard input), at most ``MAX_MESSAGE_CHARS``
    characters, or None at its end (or when there is none, or it is closed). Input that is
    not UTF-8 text is one line of error."""
    if stream is None:
        return None
    try:
        line = stream.readline(MAX_MESSAGE_CHARS + 1)
        if len(line) > MAX_MESSAGE_CHARS and not line.endswith("\n"):
            rest = line
            while rest and not rest.endswith("\n"):  # drop the rest of the line
                rest = stream.readline(1 << 16)
            warn(f"the message was cut to its first {MAX_MESSAGE_CHARS} characters")
            line = line[:MAX_MESSAGE_CHARS]
        line.encode("utf-8")  # bytes read with surrogateescape (a C locale) are no text
    except (UnicodeDecodeError, UnicodeEncodeError):
        raise ObliviateError("standard input is not UTF-8 text; send UTF-8") from None
    except (OSError, ValueError):  # closed
        return None
    return line or None


@dataclass
class ChatSession:
    """One conversation with a loaded model; ``respond`` gives the next answer."""

    loaded: LoadedModel
    guard: Guard | None = None
    max_new_tokens: int = CHAT_NEW_TOKENS.default
    turns: list[dict[str, str]] = field(default_factory=list)

    def _prompt(self, message: str) -> str:
        tokenizer = self.loaded.tokenizer
        first = not self.turns
        content = self.guard.wrap(None) if self.guard and first else None
        user = f"{content}\n\n{message}" if content else message
        if not uses_chat_template(tokenizer):
            history = "".join(
                PLAIN_TEMPLATE.format(question=t["user"]) + f" {t['assistant']}\n"
                for t in self.turns
            )
            return history + PLAIN_TEMPLATE.format(question=user)
        messages = []
        for i, turn in enumerate(self.turns):
            text = turn["user"]
            if i == 0 and self.guard and self.guard.context:
                text = f"{self.guard.context}\n\n{text}"
            messages += [
                {"role": "user", "content": text},
                {"role": "assistant", "content": turn["assistant"]},
            ]
        messages.append({"role": "user", "content": user})
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    @torch.no_grad()
    def respond(self, message: str) -> str:
        """The model's greedy answer to ``message`` given the conversation so far, as the
        guard lets it through."""
        tokenizer = self.loaded.tokenizer
        special = not uses_chat_template(tokenizer)
        ids = tokenizer(self._prompt(message), return_tensors="pt", add_special_tokens=special)
        limit = context_tokens(self.loaded)
        room = None if limit is None else max(1, limit - self.max_new_tokens)
        while room is not None and ids["input_ids"].shape[1] > room and self.turns:
            self.turns.pop(0)  # the oldest turn goes first
            ids = tokenizer(self._prompt(message), return_tensors="pt", add_special_tokens=special)
        if room is not None and ids["input_ids"].shape[1] > room:
            ids = {k: v[:, -room:] for k, v in ids.items()}  # the message's end is kept
        model = self.loaded.model
        model.eval()
        output = model.generate(
            input_ids=ids["input_ids"].to(model.device),
            attention_mask=ids["attention_mask"].to(model.device),
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        answer = tokenizer.decode(
            output[0, ids["input_ids"].shape[1] :], skip_special_tokens=True
        ).strip()
        if self.guard is not None:
            answer = self.guard.filter([message], [None], [answer])[0]
        self.turns.append({"user": message, "assistant": answer})
        return answer


def open_chat(
    model: str,
    guard: str | Path | None = None,
    bench: str | Path | None = None,
    split: str = SPLIT.default,
    forget: str | Path | None = None,
    retain: str | Path | None = None,
    max_new_tokens: int = CHAT_NEW_TOKENS.default,
    trust_remote_code: bool = False,
) -> ChatSession:
    """A session with ``model``, behind the ``guard`` built for ``bench``'s forget split
    (or the ``forget`` records), saying what it loads: the start takes a minute or more
    on a large model or guard, and a silent prompt looks hung."""
    started = time.perf_counter()
    built = None
    if guard is not None:
        say(f"chat: building the guard {guard}")
        built = build_guard(guard, evaluation_splits(bench, split, forget, retain, None))
    say(f"chat: loading [bold]{model}[/bold]")
    loaded = load_model(model, trust_remote_code=trust_remote_code)
    say(f"chat: ready ({time.perf_counter() - started:.0f} s)")
    return ChatSession(loaded, built, max_new_tokens)
