"""What evaluation reads from a model: greedy answers and per-token answer statistics.

Both are batched with examples sorted by length so padding stays small; generation uses
the KV cache and a small token budget, since the answers being checked are short, and
answers scored after the same prompt (a question's true, paraphrased and perturbed
answers) continue from one pass over that prompt, kept as a KV cache, as do a prompt's
greedy answer and its gold answer's score where both are wanted (``generate_and_score``).
The tokens every prompt of a batch opens with (a chat template's system turn, about 60 %
of a short question's prompt) run once for the batch, not once per prompt, and a greedy
answer's row leaves the batch when it ends (``_greedy``).
Prompts and answers are tokenised by the caller once (``tokenize_prompts``,
``encode_fact``) so several models with one tokenizer share that work.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from obliviate.evaluation.mia import TokenStats
from obliviate.models.encoding import (
    IGNORE_INDEX,
    Encoded,
    collate,
    encode_fact,
    format_prompt,
    uses_chat_template,
)

#: Prompts per generation batch. Greedy decoding steps through the batch one token at a
#: time; larger batches amortise each step's weight reads and per-step overhead (the
#: default benchmark's 549 questions on 2 CPU cores: 57 s at 32, 44 s at 64, 40 s at 128,
#: identical answers), while the KV cache grows with it.
GENERATION_BATCH = 64


def _by_length(lengths: Sequence[int]) -> list[int]:
    return sorted(range(len(lengths)), key=lambda i: lengths[i])


def tokenize_prompts(
    tokenizer: object, questions: Sequence[str], context: str | None = None
) -> list[list[int]]:
    """Token ids of each question formatted as the model sees it before answering."""
    special = not uses_chat_template(tokenizer)
    return [
        tokenizer(format_prompt(tokenizer, q, context), add_special_tokens=special)["input_ids"]
        for q in questions
    ]


@torch.no_grad()
def generate_from_ids(
    model: torch.nn.Module,
    tokenizer: object,
    prompt_ids: Sequence[Sequence[int]],
    max_new_tokens: int = 24,
    batch_size: int = GENERATION_BATCH,
    on_batch: Callable[[int], None] | None = None,
) -> list[str]:
    """Greedy continuations of tokenised prompts (decoded, special tokens dropped), in order.

    ``on_batch(n)`` is told after each batch how many prompts it held (for progress bars).
    """
    answers: list[str] = [""] * len(prompt_ids)
    for chunk, ids, mask, _, cache in _prompt_batches(model, tokenizer, prompt_ids, batch_size):
        texts = _greedy(model, tokenizer, ids, mask, max_new_tokens, cache)
        for i, text in zip(chunk, texts, strict=True):
            answers[i] = text
        if on_batch:
            on_batch(len(chunk))
    return answers


def _prompt_batches(
    model: torch.nn.Module,
    tokenizer: object,
    prompt_ids: Sequence[Sequence[int]],
    batch_size: int,
) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor, torch.Tensor, Any]]:
    """Prompts in batches of like lengths: each batch's indices into ``prompt_ids``, its
    left-padded ids and mask, positions as ``generate`` numbers them, and the KV cache of
    all but the last column (one pass over the prompts' shared prefix)."""
    order = _by_length([len(p) for p in prompt_ids])
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        prompts = [prompt_ids[i] for i in chunk]
        shared = _common_prefix(prompts)
        # At least two columns: the cache holds all but the last (a pad column is masked).
        ids, mask = _left_padded(prompts, tokenizer.pad_token_id, 2, shared)
        ids, mask = ids.to(model.device), mask.to(model.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = _prompt_cache(model.get_decoder(), ids, mask, positions, shared, ids.shape[1] - 1)
        yield chunk, ids, mask, positions, cache


def _left_padded(
    prompts: Sequence[Sequence[int]], pad_token_id: int, width: int = 0, shared: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask of prompts left-padded to the longest (or ``width``):
    every prompt ends in the last column, where generation or its answer starts.

    The first ``shared`` tokens, the same in every prompt, stay in the first columns with
    the padding after them, so that one pass over them serves every row
    (``_prompt_cache``); positions counted from the mask are those of unpadded prompts.
    """
    width = max(width, *(len(p) for p in prompts))
    ids = torch.full((len(prompts), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, :shared] = torch.tensor(prompt[:shared], dtype=torch.long)
        ids[row, width - len(prompt) + shared :] = torch.tensor(prompt[shared:], dtype=torch.long)
        mask[row, :shared] = 1
        mask[row, width - len(prompt) + shared :] = 1
    return ids, mask


def _common_prefix(prompts: Sequence[Sequence[int]]) -> int:
    """How many leading tokens every prompt shares (a chat template's system turn, a
    jailbreak template's opening), short of any prompt's last token, which starts its
    answer or generation."""
    first, limit = prompts[0], max(min(len(p) for p in prompts) - 1, 0)
    for j in range(limit):
        if any(p[j] != first[j] for p in prompts):
            return j
    return limit


def _prompt_cache(
    decoder: torch.nn.Module,
    ids: torch.Tensor,
    mask: torch.Tensor,
    positions: torch.Tensor,
    shared: int,
    stop: int,
) -> Any:
    """The KV cache of columns ``[0, stop)`` of prompts laid out by ``_left_padded``: the
    ``shared`` columns run for one row and are copied to the others, the rest for all."""
    cache = None
    if shared:
        cache = decoder(
            input_ids=ids[:1, :shared],
            attention_mask=mask[:1, :shared],
            position_ids=positions[:1, :shared],
            use_cache=True,
        ).past_key_values
        cache.batch_repeat_interleave(ids.shape[0])
    if stop > shared:
        earlier = {} if cache is None else {_cache_argument(decoder): cache}
        cache = decoder(
            input_ids=ids[:, shared:stop],
            attention_mask=mask[:, :stop],
            position_ids=positions[:, shared:stop],
            use_cache=True,
            **earlier,
        ).past_key_values
    return cache


#: Generation settings under which ``generate`` changes the scores before its argmax (a
#: repetition penalty, banned or forced tokens, a minimum length); any of them set, the
#: answers come from ``generate`` itself.
_SCORE_PROCESSORS = (
    "repetition_penalty",
    "no_repeat_ngram_size",
    "bad_words_ids",
    "sequence_bias",
    "min_length",
    "min_new_tokens",
    "forced_bos_token_id",
    "forced_eos_token_id",
    "suppress_tokens",
    "begin_suppress_tokens",
    "exponential_decay_length_penalty",
)


def _plain_argmax(model: torch.nn.Module) -> bool:
    """Whether greedy decoding is a plain argmax: the model generates as transformers
    does (not a wrapper with its own ``generate``) and its generation config leaves the
    scores as they are."""
    from transformers import GenerationConfig, GenerationMixin

    if getattr(type(model), "generate", None) is not GenerationMixin.generate:
        return False
    config, default = getattr(model, "generation_config", None), GenerationConfig()
    return config is None or all(
        getattr(config, name, None) == getattr(default, name, None) for name in _SCORE_PROCESSORS
    )


def _greedy(
    model: torch.nn.Module,
    tokenizer: object,
    ids: torch.Tensor,
    mask: torch.Tensor,
    max_new_tokens: int,
    cache: Any,
) -> list[str]:
    """Greedy continuations of prompts laid out by ``_left_padded``, all but their last
    column already in ``cache`` (which this consumes).

    ``generate`` steps every row of the batch until the last one ends; the answers are
    short (6.5 tokens on average, end of sequence included, in an audit of the default
    model) while one in thirty runs to the 24-token budget, so most of its steps computed
    rows that had finished. Here a row leaves the batch, and its cache, at its end-of-
    sequence token. Up to float rounding in the smaller batches the answers are those of
    ``generate``, which still decodes for models with their own ``generate`` or whose
    generation config processes the scores before the argmax (``_SCORE_PROCESSORS``).
    """
    if not _plain_argmax(model):
        output = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **{_cache_argument(model): cache},
        )
        decoded = tokenizer.batch_decode(output[:, ids.shape[1] :], skip_special_tokens=True)
        return [text.strip() for text in decoded]
    tokens: list[list[int]] = [[] for _ in range(ids.shape[0])]
    rows = torch.arange(ids.shape[0], device=ids.device)
    step_ids, position = ids[:, -1:], mask.sum(-1, keepdim=True) - 1
    for _ in range(max_new_tokens):
        logits = model(
            input_ids=step_ids,
            attention_mask=mask,
            position_ids=position,
            use_cache=True,
            **{_cache_argument(model): cache},
        ).logits[:, -1]
        chosen = logits.argmax(-1)
        for row, token in zip(rows.tolist(), chosen.tolist(), strict=True):
            tokens[row].append(token)
        going = chosen != tokenizer.eos_token_id
        if not going.any():
            break
        if not going.all():
            keep = going.nonzero().squeeze(-1)
            cache.batch_select_indices(keep)
            rows, mask, chosen, position = rows[keep], mask[keep], chosen[keep], position[keep]
        mask = torch.cat([mask, mask.new_ones((len(rows), 1))], dim=1)
        step_ids, position = chosen[:, None], position + 1
    decoded = tokenizer.batch_decode(tokens, skip_special_tokens=True)
    return [text.strip() for text in decoded]


@torch.no_grad()
def generate_and_score(
    model: torch.nn.Module,
    tokenizer: object,
    prompt_ids: Sequence[Sequence[int]],
    answer_ids: Sequence[Sequence[int]],
    max_new_tokens: int = 24,
    batch_size: int = GENERATION_BATCH,
) -> tuple[list[str], list[float]]:
    """Greedy continuations of tokenised prompts, and the mean log-probability of each
    prompt's given answer (an empty answer: 0), from one pass over the prompts.

    Generating and scoring separately runs every prompt twice; with long prompts (a
    context or a jailbreak template before a short question) that second pass is most of
    the scoring. Here each batch's prompts, all but their last token, run once into a KV
    cache; a copy of it continues with the last prompt token and the answer (its token
    log-probabilities), and greedy decoding continues from the cache itself. The answers and
    figures are those of ``generate_from_ids`` and ``score_encoded`` up to float rounding.
    """
    decoder, head = model.get_decoder(), model.get_output_embeddings()
    cache_argument = _cache_argument(decoder)
    texts: list[str] = [""] * len(prompt_ids)
    means: list[float] = [0.0] * len(prompt_ids)
    batches = _prompt_batches(model, tokenizer, prompt_ids, batch_size)
    for chunk, ids, mask, positions, cache in batches:
        answers = collate(
            [
                Encoded((ids_row[-1], *answer_ids[i]), (IGNORE_INDEX, *answer_ids[i]))
                for ids_row, i in zip(ids.tolist(), chunk, strict=True)
            ],
            tokenizer.pad_token_id,
        )
        answers = {k: v.to(model.device) for k, v in answers.items()}
        steps = torch.arange(answers["input_ids"].shape[1], device=model.device)
        hidden = decoder(
            input_ids=answers["input_ids"],
            attention_mask=torch.cat([mask[:, :-1], answers["attention_mask"]], dim=1),
            position_ids=positions[:, -1:] + steps,
            **{cache_argument: copy.deepcopy(cache)},
        ).last_hidden_state[:, :-1]
        labels = answers["labels"][:, 1:]
        picked, _, _, _, counts = _token_stats(head, hidden, labels)
        for i, piece in zip(chunk, picked.split(counts), strict=True):
            means[i] = math.fsum(piece.tolist()) / max(len(piece), 1)
        answered = _greedy(model, tokenizer, ids, mask, max_new_tokens, cache)
        for i, text in zip(chunk, answered, strict=True):
            texts[i] = text
    return texts, means


def generate_answers(
    model: torch.nn.Module,
    tokenizer: object,
    questions: Sequence[str],
    max_new_tokens: int = 24,
    batch_size: int = GENERATION_BATCH,
    context: str | None = None,
) -> list[str]:
    """Greedy answers to ``questions``, in input order."""
    ids = tokenize_prompts(tokenizer, questions, context)
    return generate_from_ids(model, tokenizer, ids, max_new_tokens, batch_size)


#: What ``_token_stats`` returns: per labelled position the label's log p, the mean and
#: standard deviation of log p over the vocabulary, whether the label is the argmax; and
#: the labelled positions per row.
TokenTensors = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, list[int]]


def _token_stats(head: torch.nn.Module, hidden: torch.Tensor, labels: torch.Tensor) -> TokenTensors:
    """Per labelled position (``hidden[i, j]`` predicts ``labels[i, j]``): the label's log
    p, the mean and standard deviation of log p over the vocabulary, whether the label is
    the most probable token, and the count per row.

    A vocabulary entry of probability 0 (a logit of −inf, as some models give padded or
    banned entries) adds nothing to the mean: ``p log p`` is taken as 0 there, its limit,
    rather than ``0 · −inf`` = NaN.
    """
    mask = labels != IGNORE_INDEX
    targets = labels[mask]
    logp = torch.log_softmax(head(hidden[mask]).float(), dim=-1)
    picked = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    greedy = logp.argmax(-1) == targets
    p = logp.exp()
    logp = torch.where(torch.isfinite(logp), logp, 0.0)
    mu = (p * logp).sum(-1)
    sigma = ((p * logp.square()).sum(-1) - mu.square()).clamp(min=0).sqrt()
    return picked, mu, sigma, greedy, mask.sum(-1).tolist()


def _prompt_length(example: Encoded) -> int:
    """Tokens before the first scored label (a first-token label has nothing to predict it)."""
    return next(
        (j for j, label in enumerate(example.labels) if j and label != IGNORE_INDEX),
        len(example.labels),
    )


def _full_passes(
    model: torch.nn.Module, encoded: Sequence[Encoded], indices: Sequence[int], pad_token_id: int
) -> tuple[TokenTensors, list[int]]:
    """Each example run whole (right padding): its statistics, rows in ``indices`` order."""
    batch = {
        k: v.to(model.device)
        for k, v in collate([encoded[i] for i in indices], pad_token_id).items()
    }
    hidden = model.get_decoder()(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
    ).last_hidden_state[:, :-1]
    return _token_stats(model.get_output_embeddings(), hidden, batch["labels"][:, 1:]), list(
        indices
    )


def _cache_argument(decoder: torch.nn.Module) -> str:
    """The name a decoder takes its KV cache by (``past_key_values`` until transformers
    renamed it ``cache``)."""
    parameters = inspect.signature(decoder.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def _shared_prompt_passes(
    model: torch.nn.Module,
    encoded: Sequence[Encoded],
    groups: Sequence[tuple[tuple[int, ...], list[int]]],
    pad_token_id: int,
) -> tuple[TokenTensors, list[int]]:
    """Examples that share a prompt: the prompts run once (left padding, KV cache kept),
    then every answer continues from its prompt's cache. The same figures as whole passes
    (up to float rounding), for the prompt's tokens once instead of once per answer."""
    device, decoder = model.device, model.get_decoder()
    prompt_ids, prompt_mask = _left_padded([prompt for prompt, _ in groups], pad_token_id)
    prompt_ids, prompt_mask = prompt_ids.to(device), prompt_mask.to(device)
    positions = (prompt_mask.cumsum(-1) - 1).clamp(min=0)
    first = decoder(
        input_ids=prompt_ids, attention_mask=prompt_mask, position_ids=positions, use_cache=True
    )
    members = [i for _, indices in groups for i in indices]
    rows = torch.tensor([row for row, (_, ids) in enumerate(groups) for _ in ids], device=device)
    tails = [
        Encoded(encoded[i].input_ids[len(prompt) :], encoded[i].labels[len(prompt) :])
        for prompt, indices in groups
        for i in indices
    ]
    batch = {k: v.to(device) for k, v in collate(tails, pad_token_id).items()}
    cache = first.past_key_values
    cache.batch_select_indices(rows)
    steps = torch.arange(batch["input_ids"].shape[1], device=device)
    hidden = decoder(
        input_ids=batch["input_ids"],
        attention_mask=torch.cat([prompt_mask[rows], batch["attention_mask"]], dim=1),
        position_ids=positions[rows, -1:] + 1 + steps,
        **{_cache_argument(decoder): cache},
    ).last_hidden_state
    # The prompt's last position predicts the first answer token; each answer token the next.
    hidden = torch.cat([first.last_hidden_state[rows, -1:], hidden[:, :-1]], dim=1)
    return _token_stats(model.get_output_embeddings(), hidden, batch["labels"]), members


@torch.no_grad()
def score_encoded(
    model: torch.nn.Module,
    encoded: Sequence[Encoded],
    texts: Sequence[str],
    pad_token_id: int,
    batch_size: int = 32,
    on_batch: Callable[[int], None] | None = None,
) -> list[TokenStats]:
    """Per-token statistics of each example's labelled tokens, in batched passes.

    For every labelled position: the label's log-probability and the mean and standard
    deviation of log p over the model's whole next-token distribution (what Min-K%++
    normalises by) and whether the label is its argmax (exact memorisation, extraction
    strength). ``texts`` are the scored strings, carried along for zlib.
    Where several examples share their prompt (a question with its true, paraphrased and
    perturbed answers), the prompt is run once for all of them (``_shared_prompt_passes``);
    other examples run whole, sorted by length so that padding stays small.
    """
    result: list[TokenStats | None] = [None] * len(encoded)
    by_prompt: dict[tuple[int, ...], list[int]] = {}
    for i, example in enumerate(encoded):
        by_prompt.setdefault(example.input_ids[: _prompt_length(example)], []).append(i)
    shared = sorted(
        ((prompt, ids) for prompt, ids in by_prompt.items() if len(ids) > 1),
        key=lambda group: len(group[0]),
    )
    alone = [ids[0] for ids in by_prompt.values() if len(ids) == 1]
    alone.sort(key=lambda i: len(encoded[i].input_ids))
    passes = [
        (_shared_prompt_passes, shared[start : start + max(1, batch_size // 4)])
        for start in range(0, len(shared), max(1, batch_size // 4))
    ] + [
        (_full_passes, alone[start : start + batch_size])
        for start in range(0, len(alone), batch_size)
    ]
    for run, work in passes:
        (picked, mu, sigma, greedy, counts), order = run(model, encoded, work, pad_token_id)
        offset = 0
        for i, n in zip(order, counts, strict=True):
            piece = slice(offset, offset + n)
            result[i] = TokenStats(
                logprobs=tuple(picked[piece].tolist()),
                mu=tuple(mu[piece].tolist()),
                sigma=tuple(sigma[piece].tolist()),
                text=texts[i],
                greedy=tuple(greedy[piece].tolist()),
            )
            offset += n
        if on_batch:
            on_batch(len(order))
    return result  # type: ignore[return-value]


def score_answers(
    model: torch.nn.Module,
    tokenizer: object,
    pairs: Sequence[tuple[str, str]],
    batch_size: int = 32,
) -> list[TokenStats]:
    """Token statistics of each ``(question, answer)`` pair's answer (and its EOS)."""
    encoded = [encode_fact(tokenizer, q, a) for q, a in pairs]
    return score_encoded(model, encoded, [a for _, a in pairs], tokenizer.pad_token_id, batch_size)


def mean_logprob(stats: TokenStats) -> float:
    """Mean per-token log-probability; exp of it is TOFU's length-normalised probability."""
    return math.fsum(stats.logprobs) / max(len(stats.logprobs), 1)


def answer_logprobs(
    model: torch.nn.Module,
    tokenizer: object,
    pairs: Sequence[tuple[str, str]],
    batch_size: int = 32,
) -> list[float]:
    """Mean per-token log-probability of each ``(question, answer)`` pair's answer."""
    return [mean_logprob(s) for s in score_answers(model, tokenizer, pairs, batch_size)]
