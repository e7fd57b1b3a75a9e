"""DualTune's two-phase tool call with transformers + peft, on adapters from `train --decoupled`.

Phase 1, the selector adapter: the model's first token says call or answer (as the grammar's
first choice does at run time); for a call, the tool is the name with the highest likelihood
among the tools offered: a closed set, as a name-enum grammar makes it. Phase 2, that tool's
argument adapter writes the argument object after the fixed prefix; the object is checked
against the tool's schema. The llama.cpp runtime does the same with GGUF adapters switched by
scale; this module is the reference it is compared with.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeagent.decoupled import SELECTOR, arguments_adapter
from edgeagent.tools import Tool
from edgeagent.wireformat import (
    CALL_OPEN,
    SELECT_HEAD,
    ChatRenderer,
    Message,
    call_prefix,
    template_messages,
)


@dataclass
class DecoupledCall:
    name: str | None  # None: the selector chose to answer without a tool
    arguments: dict[str, Any] | None
    error: str | None  # why the arguments are not a valid call, if they are not

    @property
    def valid(self) -> bool:
        return self.name is not None and self.error is None


def load_decoupled(base_model: Any, folder: str | Path) -> Any:
    """A PeftModel holding the selector and every argument adapter of a decoupled folder."""
    from peft import PeftModel

    folder = Path(folder)
    index = json.loads((folder / "decoupled.json").read_text())
    model = PeftModel.from_pretrained(base_model, folder / index["selector"], adapter_name=SELECTOR)
    for tool, sub in index["arguments"].items():
        model.load_adapter(folder / sub, adapter_name=arguments_adapter(tool))
    model.eval()
    return model


def two_phase_call(
    model: Any,
    tokenizer: Any,
    messages: list[Message],
    tools: list[Tool],
    instructions: str | None = None,
    max_new_tokens: int = 96,
) -> DecoupledCall:
    import torch

    renderer = ChatRenderer(tokenizer.chat_template)
    prompt = renderer.render(
        template_messages(messages, tools, instructions), add_generation_prompt=True
    )
    model.set_adapter(SELECTOR)
    ids = _ids(tokenizer, prompt)
    with torch.no_grad():
        first = int(model(torch.tensor([ids])).logits[0, -1].argmax())
    if first != _ids(tokenizer, CALL_OPEN)[0]:
        return DecoupledCall(None, None, None)
    head = SELECT_HEAD
    scores = [_logprob(model, tokenizer, prompt + head, json.dumps(t.name)) for t in tools]
    chosen = tools[max(range(len(tools)), key=scores.__getitem__)]

    adapter = arguments_adapter(chosen.name)
    has_adapter = adapter in model.peft_config
    if has_adapter:
        model.set_adapter(adapter)
    # stop before the space: the model writes ` {` as one token, as it learned to
    prefix = prompt + call_prefix(chosen.name)
    prefix_ids = _ids(tokenizer, prefix)
    with torch.no_grad(), model.disable_adapter() if not has_adapter else contextlib.nullcontext():
        out = model.generate(
            torch.tensor([prefix_ids]),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.eos_token_id,
        )
    text = tokenizer.decode(out[0, len(prefix_ids) :], skip_special_tokens=False)
    try:
        arguments, _ = json.JSONDecoder().raw_decode(text.lstrip())
    except json.JSONDecodeError as exc:
        return DecoupledCall(chosen.name, None, f"arguments are not JSON: {exc.msg}")
    if not isinstance(arguments, dict):
        return DecoupledCall(chosen.name, None, "arguments are not an object")
    try:
        chosen.validate(arguments)
    except Exception as exc:  # the tool's own validation error, as the agent reports it
        return DecoupledCall(chosen.name, arguments, str(exc).splitlines()[0])
    return DecoupledCall(chosen.name, arguments, None)


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _logprob(model: Any, tokenizer: Any, context: str, continuation: str) -> float:
    """log P(continuation | context), summed over its tokens."""
    import torch

    ctx, full = _ids(tokenizer, context), _ids(tokenizer, context + continuation)
    with torch.no_grad():
        logits = model(torch.tensor([full])).logits[0].float().log_softmax(-1)
    return float(sum(logits[i - 1, full[i]] for i in range(len(ctx), len(full))))
