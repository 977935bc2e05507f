"""``obliviate chat``: talk to a model, behind a guard or not, as its users would.

The conversation keeps its history (the chat template's turns); a guard's context goes
before the first user message and its filters see every user message and every answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from obliviate.guard.guard import Guard
from obliviate.models.encoding import PLAIN_TEMPLATE, uses_chat_template
from obliviate.models.loader import LoadedModel
from obliviate.options import CHAT_NEW_TOKENS


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
        prompt = self._prompt(message)
        special = not uses_chat_template(tokenizer)
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=special)
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
